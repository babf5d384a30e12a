"""pglib.train: config validation, the advantage weights against hand computations, the solve
criterion against a plain loop, determinism, and a short learning run."""

import dataclasses

import numpy as np
import pytest
import torch

from pglib.returns import reward_to_go
from pglib.rollout import VectorCollector, make_vec_env
from pglib.train import Config, solve_point, train, weights


def plain_solve_point(returns, steps, threshold, window):
    for k in range(window, len(returns) + 1):
        if sum(returns[k - window:k]) / window >= threshold:
            return steps[k - 1]
    return None


def test_solve_point_matches_plain_loop():
    rng = np.random.default_rng(0)
    returns = list(np.minimum(500, np.arange(200) * 4 + rng.integers(0, 60, 200)).astype(float))
    steps = list(np.cumsum(returns).astype(int))
    for window in (1, 5, 20):
        for threshold in (100, 475, 500, 600):
            assert solve_point(returns, steps, threshold, window) == plain_solve_point(returns, steps, threshold, window)


@pytest.mark.parametrize("kwargs, name", [(dict(baseline="learned"), "baseline"), (dict(gamma=1.2), "gamma"),
                                          (dict(num_envs=0), "num_envs"), (dict(lr=0.0), "lr"),
                                          (dict(lam=-1), "lam")])
def test_config_rejects_bad_values(kwargs, name):
    with pytest.raises(ValueError, match=name):
        Config(**kwargs)


@pytest.fixture(scope="module")
def batch():
    c = VectorCollector(make_vec_env("CartPole-v1", 5), seed=3)
    return c.episodes(lambda obs, rng: rng.integers(0, 2, size=len(obs)))


def test_weights_full_return_and_reward_to_go_by_hand(batch):
    cfg = Config(reward_to_go=False, baseline="none", normalize_advantages=False, gamma=1.0)
    adv, targets = weights(batch, cfg, None)
    assert targets is None
    want = np.concatenate([np.full(batch.mask[n].sum(), batch.rewards[n].sum()) for n in range(5)])
    np.testing.assert_allclose(adv.numpy(), want)
    cfg = dataclasses.replace(cfg, reward_to_go=True, gamma=0.9)
    adv, _ = weights(batch, cfg, None)
    want = np.concatenate([reward_to_go(batch.rewards[n, batch.mask[n]], 0.9) for n in range(5)])
    np.testing.assert_allclose(adv.numpy(), want, atol=1e-12)
    cfg = dataclasses.replace(cfg, baseline="constant", normalize_advantages=True)
    adv, _ = weights(batch, cfg, None)
    np.testing.assert_allclose([adv.mean().item(), adv.std().item()], [0.0, 1.0], atol=1e-6)


def test_weights_learned_baseline_subtracts_value_and_bootstraps_truncation(batch):
    class Constant(torch.nn.Module):  # V(s) = 2 everywhere
        def forward(self, obs):
            return torch.full(np.asarray(obs).shape[:-1], 2.0)

    cfg = Config(baseline="value", normalize_advantages=False, gamma=0.9)
    adv, targets = weights(batch, cfg, Constant())
    np.testing.assert_allclose(adv.numpy(), targets.numpy() - 2.0, atol=1e-12)
    # truncate every episode at its last step: now the last target is r + gamma * V(s_T) = 1 + 0.9 * 2
    cut = dataclasses.replace(batch, terminated=np.zeros_like(batch.terminated), truncated=batch.episode_end)
    _, targets = weights(cut, cfg, Constant())
    last = np.cumsum(batch.mask.sum(1)) - 1
    np.testing.assert_allclose(targets.numpy()[last], 1 + 0.9 * 2.0)


def history_without_time(h):
    d = dataclasses.asdict(h)
    d.pop("wall_time"), d.pop("solved_at_time")
    return d


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_same_seed_same_history(env_id):
    cfg = Config(env_id=env_id, total_steps=2_000, num_envs=4, seed=7, progress=False)
    _, h1 = train(cfg)
    _, h2 = train(cfg)
    assert history_without_time(h1) == history_without_time(h2)
    _, h3 = train(dataclasses.replace(cfg, seed=8))
    assert history_without_time(h3)["episode_returns"] != history_without_time(h1)["episode_returns"]


def test_short_run_learns_cartpole():
    _, h = train(Config(total_steps=20_000, seed=0, progress=False, stop_when_solved=False))
    first, last = np.mean(h.episode_returns[:20]), np.mean(h.episode_returns[-20:])
    assert last > 2 * first and last > 100, (first, last)
    assert h.update_steps[-1] >= 20_000 and len(h.policy_loss) == len(h.update_steps)


def test_solved_run_stops_and_records_when():
    _, h = train(Config(total_steps=60_000, seed=0, progress=False, solve_return=150))
    assert h.solved and h.solved_at_step == plain_solve_point(h.episode_returns, h.episode_steps, 150, 20)
    assert h.update_steps[-1] < 60_000


@pytest.mark.gpu
def test_trains_on_cuda():
    policy, h = train(Config(total_steps=3_000, num_envs=4, progress=False, device="cuda"))
    assert next(policy.parameters()).device.type == "cuda" and len(h.update_steps) > 0
