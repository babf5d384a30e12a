"""pglib.returns against independent computations: plain recursions, explicit per-episode sums,
and Stable-Baselines3's RolloutBuffer (a test-only peer)."""

import numpy as np
import pytest
import torch

from pglib.returns import gae, reward_to_go, reward_to_go_episodic

GAMMAS = [0.0, 0.5, 0.9, 0.99, 1.0]
LAMS = [0.0, 0.5, 0.95, 1.0]


def plain_rtg(rewards, gamma):
    """G_t = sum_k gamma^(k-t) r_k by explicit double sum (one trajectory)."""
    T = len(rewards)
    return [sum(gamma ** (k - t) * rewards[k] for k in range(t, T)) for t in range(T)]


# ---- existing reward_to_go ---------------------------------------------------------------

@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("as_torch", [False, True])
def test_reward_to_go_matches_double_sum(gamma, as_torch):
    rng = np.random.default_rng(0)
    r = rng.normal(size=(3, 7))
    out = reward_to_go(torch.tensor(r) if as_torch else r, gamma)
    assert isinstance(out, torch.Tensor) == as_torch
    want = np.array([plain_rtg(row, gamma) for row in r])
    np.testing.assert_allclose(np.asarray(out), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("gamma", GAMMAS)
def test_reward_to_go_single_trajectory_and_list(gamma):
    r = [1.0, -2.0, 3.0, 0.5]
    np.testing.assert_allclose(reward_to_go(r, gamma), plain_rtg(r, gamma), rtol=1e-12, atol=1e-12)


def test_reward_to_go_does_not_modify_input():
    r = np.ones(4)
    reward_to_go(r, 0.9)
    assert (r == 1).all()


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), "x"])
def test_reward_to_go_rejects_bad_gamma(bad):
    with pytest.raises(ValueError, match="gamma"):
        reward_to_go(np.ones(3), bad)


# ---- episode-boundary-aware reward-to-go ---------------------------------------------------

def random_segments(seed, N=4, T=12, p_end=0.2):
    rng = np.random.default_rng(seed)
    r = rng.normal(size=(N, T))
    end = rng.random((N, T)) < p_end
    term = end & (rng.random((N, T)) < 0.5)
    trunc = end & ~term
    next_values = rng.normal(size=(N, T))
    return r, term, trunc, next_values


def plain_rtg_episodic(r, term, trunc, next_values, gamma):
    """Split each row into episodes explicitly; sum each one's rewards; add gamma^len * V at a cut."""
    N, T = r.shape
    out = np.zeros_like(r)
    for n in range(N):
        start = 0
        for t in range(T):
            if term[n, t] or trunc[n, t] or t == T - 1:
                ep = list(r[n, start:t + 1])
                boot = 0.0 if term[n, t] or next_values is None else next_values[n, t]
                for k in range(len(ep)):
                    out[n, start + k] = plain_rtg(ep, gamma)[k] + gamma ** (len(ep) - k) * boot
                start = t + 1
    return out


@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("bootstrap", [False, True])
def test_reward_to_go_episodic_matches_per_episode_sums(gamma, bootstrap):
    for seed in range(3):
        r, term, trunc, nv = random_segments(seed)
        got = reward_to_go_episodic(r, gamma, term, trunc, nv if bootstrap else None)
        np.testing.assert_allclose(got, plain_rtg_episodic(r, term, trunc, nv if bootstrap else None, gamma), atol=1e-12)


def test_reward_to_go_episodic_without_boundaries_is_reward_to_go():
    r = np.random.default_rng(1).normal(size=(2, 6))
    flags = np.zeros_like(r, dtype=bool)
    np.testing.assert_allclose(reward_to_go_episodic(r, 0.9, flags, flags), reward_to_go(r, 0.9), atol=1e-12)


def test_reward_to_go_episodic_docstring_example_and_torch():
    r = torch.ones(4, dtype=torch.float64)
    term = torch.tensor([False, True, False, False])
    got = reward_to_go_episodic(r, 0.5, term, torch.zeros(4, dtype=torch.bool))
    assert isinstance(got, torch.Tensor)
    torch.testing.assert_close(got, torch.tensor([1.5, 1.0, 1.5, 1.0], dtype=torch.float64))


def test_reward_to_go_episodic_terminated_and_truncated_together_does_not_bootstrap():
    # gymnasium may report both flags on one step; the state is terminal, so V(s_{t+1}) must not be added
    r, term, trunc, nv = random_segments(4)
    both = term | trunc
    got = reward_to_go_episodic(r, 0.9, both, both, nv)
    np.testing.assert_allclose(got, plain_rtg_episodic(r, both, np.zeros_like(both), nv, 0.9), atol=1e-12)


@pytest.mark.parametrize("gamma", GAMMAS)
def test_reward_to_go_episodic_torch_matches_numpy(gamma):
    r, term, trunc, nv = random_segments(5, N=3, T=30)
    want = plain_rtg_episodic(r, term, trunc, nv, gamma)
    got = reward_to_go_episodic(torch.as_tensor(r), gamma, torch.as_tensor(term), torch.as_tensor(trunc), torch.as_tensor(nv))
    np.testing.assert_allclose(got.numpy(), want, atol=1e-12)


def test_reward_to_go_episodic_mask_zeroes_padding():
    r = np.array([[1.0, 1.0, 0.0, 0.0]])
    term = np.array([[False, True, False, False]])
    mask = np.array([[True, True, False, False]])
    np.testing.assert_allclose(reward_to_go_episodic(r, 1.0, term, np.zeros_like(term), mask=mask), [[2.0, 1.0, 0.0, 0.0]])


def test_reward_to_go_episodic_bad_inputs():
    r = np.ones((2, 3))
    ok = np.zeros((2, 3), dtype=bool)
    with pytest.raises(ValueError, match="terminated"):
        reward_to_go_episodic(r, 0.9, np.zeros((2, 2), dtype=bool), ok)
    with pytest.raises(ValueError, match="truncated"):
        reward_to_go_episodic(r, 0.9, ok, np.zeros((2, 3)))
    with pytest.raises(ValueError, match="next_values"):
        reward_to_go_episodic(r, 0.9, ok, ok, np.ones((3, 2)))
    with pytest.raises(ValueError, match="rewards"):
        reward_to_go_episodic(np.full((2, 3), np.nan), 0.9, ok, ok)
    with pytest.raises(ValueError, match="gamma"):
        reward_to_go_episodic(r, 1.1, ok, ok)


# ---- GAE -----------------------------------------------------------------------------------

def plain_gae(r, v, nv, term, trunc, gamma, lam):
    """Per-element loop, written from the definition A_t = sum_l (gamma lam)^l delta_{t+l} within an episode."""
    N, T = r.shape
    adv = np.zeros_like(r)
    for n in range(N):
        for t in range(T):
            total, k = 0.0, t
            while True:
                delta = r[n, k] + gamma * (0.0 if term[n, k] else nv[n, k]) - v[n, k]
                total += (gamma * lam) ** (k - t) * delta
                if term[n, k] or trunc[n, k] or k == T - 1:
                    break
                k += 1
            adv[n, t] = total
    return adv


def consistent_values(seed, N=3, T=10):
    """Random data where next_values[t] == values[t+1] inside an episode (as in a real rollout)."""
    r, term, trunc, nv = random_segments(seed, N, T, p_end=0.25)
    v = np.random.default_rng(seed + 100).normal(size=(N, T))
    inside = ~(term | trunc)
    nv[:, :-1] = np.where(inside[:, :-1], v[:, 1:], nv[:, :-1])
    return r, v, nv, term, trunc


@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("lam", LAMS)
def test_gae_matches_plain_loop(gamma, lam):
    r, v, nv, term, trunc = consistent_values(int(gamma * 10 + lam * 100))
    adv, ret = gae(r, v, nv, term, trunc, gamma, lam)
    np.testing.assert_allclose(adv, plain_gae(r, v, nv, term, trunc, gamma, lam), atol=1e-12)
    np.testing.assert_allclose(ret, adv + v, atol=1e-12)


@pytest.mark.parametrize("gamma", GAMMAS)
def test_gae_lambda_one_is_reward_to_go_minus_baseline(gamma):
    r, v, nv, term, trunc = consistent_values(7)
    adv, ret = gae(r, v, nv, term, trunc, gamma, 1.0)
    np.testing.assert_allclose(ret, reward_to_go_episodic(r, gamma, term, trunc, nv), atol=1e-10)


def test_gae_lambda_zero_is_td_error_and_torch_in_torch_out():
    r, v, nv, term, trunc = (torch.tensor(a) for a in consistent_values(3))
    adv, _ = gae(r, v, nv, term, trunc, 0.9, 0.0)
    assert isinstance(adv, torch.Tensor)
    torch.testing.assert_close(adv, r + 0.9 * (~term) * nv - v)


def test_gae_mask_and_bad_inputs():
    r, v, nv, term, trunc = consistent_values(4)
    mask = np.ones_like(term)
    mask[:, -1] = False
    adv, ret = gae(r, v, nv, term, trunc, 0.9, 0.9, mask)
    assert (adv[:, -1] == 0).all() and (ret[:, -1] == 0).all()
    with pytest.raises(ValueError, match="values"):
        gae(r, v[:, :-1], nv, term, trunc, 0.9, 0.9)
    with pytest.raises(ValueError, match="lam"):
        gae(r, v, nv, term, trunc, 0.9, 1.5)


@pytest.mark.parametrize("gamma", [0.9, 0.98, 1.0])
@pytest.mark.parametrize("lam", [0.0, 0.8, 0.95, 1.0])
def test_gae_matches_stable_baselines3_rollout_buffer(gamma, lam):
    """SB3 stores [T, N], marks episode *starts*, and handles a time limit in the algorithm by adding
    gamma * V(final obs) to the last reward and treating the step as done; feed it the same data that way."""
    gym = pytest.importorskip("gymnasium")
    buffers = pytest.importorskip("stable_baselines3.common.buffers")
    N, T = 3, 16
    r, v, nv, term, trunc = consistent_values(11, N, T)
    buf = buffers.RolloutBuffer(T, gym.spaces.Box(-1, 1, (1,)), gym.spaces.Discrete(2), device="cpu",
                                gae_lambda=lam, gamma=gamma, n_envs=N)
    end = term | trunc
    for t in range(T):
        sb3_reward = r[:, t] + gamma * trunc[:, t] * nv[:, t]
        episode_start = end[:, t - 1] if t > 0 else np.ones(N, dtype=bool)
        buf.add(np.zeros((N, 1)), np.zeros((N, 1)), sb3_reward, episode_start,
                torch.tensor(v[:, t]), torch.zeros(N))
    buf.compute_returns_and_advantage(last_values=torch.tensor(nv[:, -1]), dones=end[:, -1])
    adv, ret = gae(r, v, nv, term, trunc, gamma, lam)
    np.testing.assert_allclose(adv, buf.advantages.T, rtol=1e-5, atol=1e-5)  # SB3 stores float32
    np.testing.assert_allclose(ret, buf.returns.T, rtol=1e-5, atol=1e-5)
