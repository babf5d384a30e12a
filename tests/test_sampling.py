"""pglib.sampling against independent computations: exact time-indexed occupancies (chi-square),
a plain loop through the gymnasium view, and hand-checked inverse-CDF edge cases."""

import numpy as np
import pytest
import scipy.stats
import torch

from pglib import exact, mdp
from pglib.sampling import Trajectories, inverse_cdf_table, iter_trajectories, sample_trajectories

P_MIN = 1e-4  # fixed seeds make these deterministic; a healthy sampler sits far above this


def _chi2_p(counts: np.ndarray, probs: np.ndarray) -> float:
    """Pearson chi-square goodness-of-fit p-value, cells with zero probability must have zero counts."""
    counts, probs = np.asarray(counts, float), np.asarray(probs, float)
    assert counts[probs == 0].sum() == 0, "a zero-probability outcome was sampled"
    keep = probs > 0
    expected = probs[keep] * counts.sum()
    stat = ((counts[keep] - expected) ** 2 / expected).sum()
    return float(scipy.stats.chi2.sf(stat, keep.sum() - 1))


@pytest.mark.parametrize("seed", [0, 1])
def test_state_action_frequencies_match_exact_time_occupancy(seed):
    m = mdp.random_mdp(4, 3, seed=seed, gamma=0.9, horizon=6)
    logits = torch.from_numpy(np.random.default_rng(seed).normal(size=(4, 3)))
    traj = sample_trajectories(m, logits, n=40_000, seed=seed)
    p_t = exact.time_occupancy(m, logits).detach().numpy()  # [T, S]
    pi = m.policy(logits).detach().numpy()
    pvals = []
    for t in range(m.horizon):
        joint = (p_t[t][:, None] * pi).ravel()  # P(s_t = s, a_t = a)
        flat = (traj.states[:, t] * 3 + traj.actions[:, t]).numpy()
        pvals.append(_chi2_p(np.bincount(flat, minlength=12), joint))
    assert min(pvals) * m.horizon > P_MIN, pvals  # Bonferroni over time steps


def test_transitions_rewards_and_logp():
    m = mdp.random_mdp(3, 2, seed=5, gamma=1.0, horizon=8, concentration=0.5)
    logits = torch.tensor([[0.3, -0.2], [1.0, 0.0], [-0.5, 0.5]], dtype=torch.float64)
    traj = sample_trajectories(m, logits, n=20_000, seed=3)
    s, a, s_next = traj.states[:, :-1].reshape(-1), traj.actions[:, :-1].reshape(-1), traj.states[:, 1:].reshape(-1)
    P = m.transitions.numpy()
    for si in range(3):
        for ai in range(2):
            sel = (s == si) & (a == ai)
            counts = np.bincount(s_next[sel].numpy(), minlength=3)
            assert _chi2_p(counts, P[si, ai]) > P_MIN / 6
    R, logpi = m.rewards.numpy(), torch.log_softmax(logits, -1).numpy()
    np.testing.assert_array_equal(traj.rewards.numpy(), R[traj.states.numpy(), traj.actions.numpy()])
    np.testing.assert_allclose(traj.logp.numpy(), logpi[traj.states.numpy(), traj.actions.numpy()], rtol=0, atol=1e-15)
    assert traj.mask.all()


def test_zero_probability_outcomes_never_sampled():
    # rows with zeros at the start, middle and end; deterministic rows; a policy with a -inf-like logit
    P = torch.zeros(3, 2, 3, dtype=torch.float64)
    P[0, 0] = torch.tensor([0.0, 0.5, 0.5])
    P[0, 1] = torch.tensor([0.5, 0.0, 0.5])
    P[1, 0] = torch.tensor([0.3, 0.7, 0.0])
    P[1, 1] = torch.tensor([0.0, 0.0, 1.0])
    P[2, :, 0] = 1.0
    m = mdp.TabularMDP(P, torch.zeros(3, 2), [0.0, 1.0, 0.0], gamma=1.0, horizon=12)
    logits = torch.tensor([[0.0, 0.0], [0.0, -800.0], [0.0, 0.0]], dtype=torch.float64)  # pi(1|1) = 0 in float64
    traj = sample_trajectories(m, logits, n=20_000, seed=0)
    s, a, s_next = traj.states[:, :-1], traj.actions[:, :-1], traj.states[:, 1:]
    prob = P[s, a, s_next]
    assert (prob > 0).all()
    assert not ((traj.states == 1) & (traj.actions == 1)).any()
    assert (traj.states[:, 0] == 1).all()


def test_inverse_cdf_table_edges():
    F = inverse_cdf_table([0.2, 0.8, 0.0])
    assert F.tolist() == [0.2, 1.0, 1.0]
    # rows whose floating cumsum falls short of 1 still end exactly at 1 from the last positive entry
    p = torch.full((7,), 1 / 7, dtype=torch.float64)
    p = torch.cat([p, torch.zeros(2, dtype=torch.float64)])
    F = inverse_cdf_table(p)
    assert F[6:].tolist() == [1.0, 1.0, 1.0]
    # choice = #{k: F[k] <= u}: u = 0 picks the first positive-probability index
    F = inverse_cdf_table([0.0, 0.0, 1.0])
    assert int((F[:-1] <= 0.0).sum()) == 2


def _env_lengths(m, p_right, episodes, seed):
    """Episode lengths from a plain loop through the gymnasium view, actions from numpy."""
    env = m.to_env()
    rng = np.random.default_rng(seed)
    lengths = []
    for ep in range(episodes):
        env.reset(seed=seed * 100_000 + ep)
        steps, done = 0, False
        while not done:
            a = int(rng.random() < p_right)
            _, _, done, truncated, _ = env.step(a)
            done = done or truncated
            steps += 1
        lengths.append(steps)
    return np.array(lengths)


def test_short_corridor_terminal_handling_and_lengths():
    m = mdp.short_corridor(horizon=15)
    theta = torch.tensor([-0.3, 0.3], dtype=torch.float64)
    logits = theta.expand(4, 2).clone()
    traj = sample_trajectories(m, logits, n=20_000, seed=1)
    goal = traj.states == 3
    # once the goal is entered the trajectory stays there; every step from then on is masked
    entered = goal.cumsum(1) > 0
    assert torch.equal(goal, entered)
    assert torch.equal(traj.mask, ~goal)
    assert (traj.rewards[~traj.mask] == 0).all() and (traj.logp[~traj.mask] == 0).all()
    assert (traj.rewards[traj.mask] == -1).all()
    assert ((traj.actions >= 0) & (traj.actions < 2)).all()
    # episode lengths: vectorized sampler vs a single-env loop (two-sample chi-square on the histogram)
    p_right = torch.softmax(theta, 0)[1].item()
    env_len = _env_lengths(m, p_right, episodes=3000, seed=7)
    ours = traj.lengths.numpy()
    bins = np.arange(1, 17)
    table = np.stack([np.bincount(ours, minlength=17)[bins], np.bincount(env_len, minlength=17)[bins]])
    table = table[:, table.sum(0) > 0]
    assert scipy.stats.chi2_contingency(table)[1] > P_MIN
    # and the mean length against the exact expectation sum_t P(s_t != goal)
    p_t = exact.time_occupancy(m, logits).detach().numpy()
    expected_len = (1 - p_t[:, 3]).sum()
    assert abs(ours.mean() - expected_len) < 5 * ours.std() / np.sqrt(len(ours))


def test_infinite_horizon_truncation_and_horizon_override():
    m = mdp.chain(4, gamma=0.9, horizon=None)
    with pytest.raises(ValueError, match="horizon"):
        sample_trajectories(m, torch.zeros(4, 2), n=5, seed=0)
    traj = sample_trajectories(m, torch.zeros(4, 2), n=5, seed=0, horizon=7)
    assert (traj.n, traj.horizon) == (5, 7)
    finite = mdp.chain(4, gamma=0.9, horizon=3)
    assert sample_trajectories(finite, torch.zeros(4, 2), n=2, seed=0).horizon == 3
    assert sample_trajectories(finite, torch.zeros(4, 2), n=2, seed=0, horizon=9).horizon == 9


def test_bandit_single_state():
    m = mdp.bandit([1.0, 0.5, 0.0])
    logits = torch.tensor([[0.0, 1.0, 2.0]], dtype=torch.float64)
    traj = sample_trajectories(m, logits, n=30_000, seed=0)
    assert (traj.states == 0).all()
    assert _chi2_p(np.bincount(traj.actions[:, 0].numpy(), minlength=3), m.policy(logits)[0].numpy()) > P_MIN


def test_reproducible_from_seed_and_generator():
    m = mdp.random_mdp(5, 3, seed=0, horizon=10)
    logits = torch.randn(5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    a = sample_trajectories(m, logits, n=100, seed=42)
    b = sample_trajectories(m, logits, n=100, seed=42)
    c = sample_trajectories(m, logits, n=100, seed=43)
    for field in ("states", "actions", "rewards", "mask", "logp"):
        assert torch.equal(getattr(a, field), getattr(b, field))
    assert not torch.equal(a.states, c.states)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    x1, y1 = sample_trajectories(m, logits, 50, generator=g1), sample_trajectories(m, logits, 50, generator=g1)
    x2 = sample_trajectories(m, logits, 50, generator=g2)
    assert torch.equal(x1.states, x2.states) and not torch.equal(x1.states, y1.states)
    with pytest.raises(ValueError, match="seed or generator"):
        sample_trajectories(m, logits, 5, seed=1, generator=g1)


def test_iter_trajectories_chunks():
    m = mdp.random_mdp(3, 2, seed=1, horizon=4)
    logits = torch.zeros(3, 2, dtype=torch.float64)
    chunks = list(iter_trajectories(m, logits, n=250, chunk_size=100, seed=0))
    assert [c.n for c in chunks] == [100, 100, 50]
    again = Trajectories.concatenate(list(iter_trajectories(m, logits, n=250, chunk_size=100, seed=0)))
    assert torch.equal(Trajectories.concatenate(chunks).states, again.states)
    assert again.n == 250 and again.n_states == 3 and again[:10].n == 10
    with pytest.raises(ValueError, match="chunk_size"):
        next(iter_trajectories(m, logits, n=10, chunk_size=0))


@pytest.mark.parametrize("kwargs, match", [
    (dict(n=0), "n must be a positive integer"),
    (dict(n=2.5), "n must be a positive integer"),
    (dict(n="3"), "n must be a positive integer"),
    (dict(n=3, horizon=0), "horizon must be a positive integer"),
    (dict(n=3, logits=torch.zeros(3, 3)), "logits must have shape"),
    (dict(n=3, logits=torch.tensor([[0.0, float("nan")]] * 3)), "NaN"),
    (dict(n=3, seed=-1), "seed"),
    (dict(n=3, mdp="not an mdp"), "mdp must be a TabularMDP"),
])
def test_bad_inputs(kwargs, match):
    args = dict(mdp=mdp.random_mdp(3, 2, seed=0, horizon=4), logits=torch.zeros(3, 2))
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        sample_trajectories(**args)


def test_trajectories_validation():
    s = torch.zeros(2, 3, dtype=torch.long)
    with pytest.raises(ValueError, match="rewards must have the shape"):
        Trajectories(s, s, torch.zeros(2, 4, dtype=torch.float64), torch.ones(2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="mask must be torch.bool"):
        Trajectories(s, s, torch.zeros(2, 3, dtype=torch.float64), torch.ones(2, 3))
    t = Trajectories([[0, 1]], [[1, 0]], [[0.5, 1.0]], [[True, True]])  # lists are converted
    assert t.states.dtype == torch.long and t.rewards.dtype == torch.float64 and t.horizon == 2
