"""pglib.practice.rollout against a single-environment, step-by-step reference, plus the invariants of
next-step autoreset on the native vectorized CartPole."""

import gymnasium as gym
import numpy as np
import pytest

from pglib.practice.rollout import VectorCollector, make_vec_env

LIMIT = 20  # a short time limit, so that segments contain both terminations and truncations


def pseudo_random_action(obs, rng=None):
    """A deterministic function of the observation (so the reference can replay it), that still
    lets some episodes fall (terminated) and others reach the time limit (truncated)."""
    obs = np.atleast_2d(obs)
    return ((np.abs(obs).sum(-1) * 1e4).astype(np.int64) % 4 != 0).astype(np.int64) * (obs[:, 2] > 0) + \
        ((np.abs(obs).sum(-1) * 1e4).astype(np.int64) % 4 == 0) * (obs[:, 2] <= 0)


def reference_rows(num_envs, seed, n_steps):
    """Each environment alone, stepped one step at a time, reset by hand after an episode ends."""
    rows = []
    for i in range(num_envs):
        env = gym.make("CartPole-v1", max_episode_steps=LIMIT)
        obs, _ = env.reset(seed=seed + i)  # SyncVectorEnv seeds sub-environment i with seed + i
        row, t = [], 0
        while t < n_steps:
            a = int(pseudo_random_action(obs)[0])
            nxt, r, term, trunc, _ = env.step(a)
            row.append((obs, a, r, term, trunc, nxt))
            t += 1
            obs = nxt
            if term or trunc:
                obs, _ = env.reset()
                t += 1  # the vector env spends one step on the reset
        rows.append(row)
    return rows


def test_segment_matches_single_env_reference():
    N, seed, T = 3, 5, 70
    envs = gym.make_vec("CartPole-v1", num_envs=N, vectorization_mode="sync", max_episode_steps=LIMIT)
    batch = VectorCollector(envs, seed=seed).segment(pseudo_random_action, T)
    ref = reference_rows(N, seed, T)
    assert batch.terminated.any() and batch.truncated.any()
    for n in range(N):
        real = np.flatnonzero(batch.mask[n])
        assert len(real) == len(ref[n])
        for k, t in enumerate(real):
            obs, a, r, term, trunc, nxt = ref[n][k]
            np.testing.assert_array_equal(batch.obs[n, t], obs)
            assert batch.actions[n, t] == a and batch.rewards[n, t] == r
            assert batch.terminated[n, t] == term and batch.truncated[n, t] == trunc
            np.testing.assert_array_equal(batch.next_obs[n, t], nxt)  # the true final obs, not a reset one
    assert (batch.rewards[~batch.mask] == 0).all()


def test_native_cartpole_autoreset_invariants():
    envs = make_vec_env("CartPole-v1", 8, max_episode_steps=LIMIT)
    assert "CartPoleVectorEnv" in type(envs.unwrapped).__name__
    collector = VectorCollector(envs, seed=0)
    sample = lambda obs, rng: rng.integers(0, 2, size=len(obs))
    batches = [collector.segment(sample, 50) for _ in range(2)]
    total = 0
    for b in batches:
        end = b.episode_end
        assert (b.rewards[b.mask] == 1).all() and (b.rewards[~b.mask] == 0).all()
        # the step right after an episode ends is the autoreset step: never data
        assert not (end[:, :-1] & b.mask[:, 1:]).any()
        assert (b.mask[:, 1:] | end[:, :-1]).all()  # and it is the only kind of masked step
        # inside an episode the next observation is the following step's observation
        within = b.mask[:, :-1] & ~end[:, :-1]
        np.testing.assert_array_equal(b.next_obs[:, :-1][within], b.obs[:, 1:][within])
        assert (b.episode_lengths <= LIMIT).all() and (b.episode_lengths[b.episode_lengths < LIMIT] > 0).all()
        total += b.n_steps
    # a time limit is reached at exactly LIMIT real steps and is a truncation, never a termination
    lengths = np.concatenate([b.episode_lengths for b in batches])
    assert (lengths == LIMIT).any()
    assert collector.total_steps == total


def test_episodes_mode_gives_one_whole_episode_per_env():
    envs = make_vec_env("CartPole-v1", 6)
    collector = VectorCollector(envs, seed=1)
    sample = lambda obs, rng: rng.integers(0, 2, size=len(obs))
    for _ in range(2):
        b = collector.episodes(sample)
        assert len(b.episode_returns) == 6
        ends = b.episode_end.sum(1)
        assert (ends == 1).all()
        last_real = b.mask.shape[1] - 1 - np.argmax(b.mask[:, ::-1], axis=1)
        assert b.episode_end[np.arange(6), last_real].all()
        assert b.mask[:, 0].all() and (np.diff(b.mask.astype(int), axis=1) <= 0).all()  # real steps form a prefix
        np.testing.assert_allclose(np.sort(b.rewards.sum(1)), np.sort(b.episode_returns))
        np.testing.assert_array_equal(np.sort(b.mask.sum(1)), np.sort(b.episode_lengths))


def test_same_seed_same_batch_and_box_actions_are_clipped_for_the_env_only():
    def run(seed):
        c = VectorCollector(make_vec_env("Pendulum-v1", 2), seed=seed)
        return c.segment(lambda obs, rng: 5.0 * rng.standard_normal((len(obs), 1)), 10)

    a, b, c = run(0), run(0), run(1)
    np.testing.assert_array_equal(a.obs, b.obs)
    np.testing.assert_array_equal(a.rewards, b.rewards)
    assert not np.array_equal(a.obs, c.obs)
    assert np.abs(a.actions).max() > 2.0  # stored as sampled (for log-probabilities)
    # Pendulum's reward depends on the applied torque: recompute with the clipped action
    th = np.arctan2(a.obs[..., 1], a.obs[..., 0])
    u = np.clip(a.actions[..., 0], -2, 2)
    want = -(((th + np.pi) % (2 * np.pi) - np.pi) ** 2 + 0.1 * a.obs[..., 2] ** 2 + 0.001 * u**2)
    np.testing.assert_allclose(a.rewards, want, rtol=1e-4, atol=1e-4)


def test_bad_inputs():
    with pytest.raises(ValueError, match="num_envs"):
        make_vec_env("CartPole-v1", 0)
    c = VectorCollector(make_vec_env("CartPole-v1", 2), seed=0)
    with pytest.raises(ValueError, match="n_steps"):
        c.segment(lambda o, r: np.zeros(2, dtype=int), 0)
    same_step = gym.make_vec("CartPole-v1", num_envs=2, vectorization_mode="sync",
                             vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP})
    with pytest.raises(ValueError, match="NEXT_STEP"):
        VectorCollector(same_step)


def test_steps_per_env_runs_whole_episodes_until_each_env_has_k_steps():
    from pglib.practice.rollout import VectorCollector, make_vec_env

    c = VectorCollector(make_vec_env("CartPole-v1", 3), seed=2)
    b = c.episodes(lambda obs, rng: rng.integers(0, 2, size=len(obs)), steps_per_env=60)
    for n in range(3):  # plain loop: every real step belongs to an episode that ends inside the batch
        real = np.flatnonzero(b.mask[n])
        assert len(real) >= 60
        assert b.terminated[n, real[-1]] or b.truncated[n, real[-1]]
        ends = np.flatnonzero(b.terminated[n] | b.truncated[n])
        assert (np.cumsum(b.mask[n])[ends[:-1]] < 60).all()  # a new episode starts only below 60 steps
    assert b.episode_lengths.sum() == b.mask.sum() and len(b.episode_returns) == (b.terminated | b.truncated).sum()


def plain_episode_time(mask_row, end_row, carried=0):
    """Step index within its episode, one step at a time (only where mask_row)."""
    out, t = np.zeros(len(mask_row), dtype=np.int64), carried
    for k, (real, end) in enumerate(zip(mask_row, end_row)):
        if real:
            out[k], t = t, (0 if end else t + 1)
    return out


def test_episode_time_and_simulated_steps_by_hand():
    c = VectorCollector(make_vec_env("CartPole-v1", 3, max_episode_steps=LIMIT), seed=4)
    sample = lambda obs, rng: rng.integers(0, 2, size=len(obs))  # noqa: E731
    batches = [c.episodes(sample, steps_per_env=50), c.segment(sample, 17), c.segment(sample, 23)]
    carried = np.zeros(3, dtype=np.int64)
    for b in batches:
        for n in range(3):
            want = plain_episode_time(b.mask[n], b.episode_end[n], carried[n])
            np.testing.assert_array_equal(b.time[n][b.mask[n]], want[b.mask[n]])
            ends = np.flatnonzero(b.episode_end[n])
            real = np.flatnonzero(b.mask[n])
            carried[n] = want[real[-1]] + 1 if not len(ends) or ends[-1] < real[-1] else 0
    assert c.simulated_steps == sum(b.mask.size for b in batches) > c.total_steps


def test_evaluate_is_reproducible_and_separate():
    from pglib.practice.rollout import evaluate

    act = lambda obs: (obs[:, 2] > 0).astype(np.int64)  # noqa: E731  (lean with the pole)
    first, second = evaluate(act, "CartPole-v1", 5, seed=3), evaluate(act, "CartPole-v1", 5, seed=3)
    np.testing.assert_array_equal(first, second)
    assert first.shape == (5,) and (first >= 1).all()
    with pytest.raises(ValueError, match="episodes"):
        evaluate(act, "CartPole-v1", 0)
