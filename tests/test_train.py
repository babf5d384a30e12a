"""pglib.practice.train: config validation, the advantage weights against hand computations (the
discount gamma^t kept), the verified solve against its own evaluation record, determinism,
bad environments refused, torch's thread count restored, and a short learning run."""

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch

import pglib.practice.rollout
from pglib.losses import surrogate_loss
from pglib.returns import reward_to_go
from pglib.practice.rollout import VectorCollector, evaluate, make_vec_env
from pglib.practice.train import Config, actor, step_weights, train


class _Endless(gym.Env):
    """A real (tiny) gymnasium task whose episodes never end; reward ``reward`` per step."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float64)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, reward=1.0, terminate_after=None):
        self.reward, self.terminate_after = reward, terminate_after

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(2), {}

    def step(self, action):
        self.t += 1
        done = self.terminate_after is not None and self.t >= self.terminate_after
        return np.zeros(2), self.reward, done, False, {}


gym.register("pglib-test/Endless-v0", entry_point=_Endless)


@pytest.mark.parametrize("kwargs, name", [
    (dict(baseline="learned"), "baseline"), (dict(gamma=1.2), "gamma"), (dict(num_envs=0), "num_envs"),
    (dict(lr=0.0), "lr"), (dict(lam=-1), "lam"), (dict(hidden=(0,)), "hidden"),
    (dict(hidden=(32, 2.5)), "hidden"), (dict(torch_threads=-2), "torch_threads"),
    (dict(env_id="NoSuchTask-v9"), "env_id"), (dict(device="tpu-7"), "device"),
    (dict(bootstrap_truncated=True), "gamma"), (dict(eval_every=0), "eval_every"),
    (dict(value_lr=float("inf")), "value_lr"), (dict(steps_per_env=-1), "steps_per_env")])
def test_config_rejects_bad_values(kwargs, name):
    with pytest.raises(ValueError, match=name):
        Config(**kwargs)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_config_refuses_cuda_without_cuda():
    with pytest.raises(ValueError, match="CUDA"):
        Config(device="cuda")


@pytest.fixture(scope="module")
def batch():
    c = VectorCollector(make_vec_env("CartPole-v1", 5), seed=3)
    return c.episodes(lambda obs, rng: rng.integers(0, 2, size=len(obs)))


def real(x, batch):
    return np.asarray(x)[batch.mask]


def test_step_weights_keep_the_discount_of_the_objective(batch):
    cfg = Config(reward_to_go=False, baseline="none", normalize_advantages=False, gamma=0.9)
    adv, targets = step_weights(batch, cfg, None)
    assert targets is None and adv.shape == batch.mask.shape and (adv.numpy()[~batch.mask] == 0).all()
    rows = [batch.rewards[n, batch.mask[n]] for n in range(5)]
    want = np.concatenate([np.full(len(r), reward_to_go(r, 0.9)[0]) for r in rows])  # G_0 at every step
    np.testing.assert_allclose(real(adv, batch), want, atol=1e-12)
    adv, _ = step_weights(batch, dataclasses.replace(cfg, reward_to_go=True), None)
    want = np.concatenate([0.9 ** np.arange(len(r)) * reward_to_go(r, 0.9) for r in rows])  # gamma^t G_t
    np.testing.assert_allclose(real(adv, batch), want, atol=1e-12)
    cfg = dataclasses.replace(cfg, reward_to_go=True, gamma=1.0, baseline="constant", normalize_advantages=True)
    adv = real(step_weights(batch, cfg, None)[0], batch)
    np.testing.assert_allclose([adv.mean(), adv.std(ddof=1)], [0.0, 1.0], atol=1e-9)


class Constant(torch.nn.Module):  # V(s) = 2 everywhere
    def forward(self, obs):
        return torch.full(np.asarray(obs).shape[:-1], 2.0)


def test_step_weights_learned_baseline_and_bootstrapping_only_when_asked(batch):
    cfg = Config(baseline="value", normalize_advantages=False, gamma=0.9)
    adv, targets = step_weights(batch, cfg, Constant())
    t = real(batch.time, batch)
    np.testing.assert_allclose(real(adv, batch), 0.9 ** t * (real(targets, batch) - 2.0), atol=1e-12)
    # every episode cut at its last step by a time limit
    cut = dataclasses.replace(batch, terminated=np.zeros_like(batch.terminated), truncated=batch.episode_end)
    last = np.cumsum(batch.mask.sum(1)) - 1
    _, targets = step_weights(cut, cfg, Constant())  # the time-limited return: no bootstrap
    np.testing.assert_allclose(real(targets, batch)[last], 1.0)
    _, targets = step_weights(cut, dataclasses.replace(cfg, bootstrap_truncated=True), Constant())
    np.testing.assert_allclose(real(targets, batch)[last], 1 + 0.9 * 2.0)


def test_loss_is_the_trajectory_average_of_the_surrogate(batch):
    logp = -torch.rand(batch.mask.shape, dtype=torch.float64)
    adv, _ = step_weights(batch, Config(normalize_advantages=False, baseline="none"), None)
    want = -(logp * adv * torch.as_tensor(batch.mask)).sum() / batch.mask.shape[0]
    torch.testing.assert_close(surrogate_loss(logp, adv, torch.as_tensor(batch.mask)), want)


def history_without_time(h):
    d = dataclasses.asdict(h)
    for key in ("wall_time", "solved_at_time", "eval_seconds"):
        d.pop(key)
    return d


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_same_seed_same_history(env_id):
    cfg = Config(env_id=env_id, total_steps=2_000, num_envs=4, seed=7, progress=False, eval_every=1_000,
                 eval_episodes=2)
    _, h1 = train(cfg)
    _, h2 = train(cfg)
    assert history_without_time(h1) == history_without_time(h2)
    _, h3 = train(dataclasses.replace(cfg, seed=8))
    assert history_without_time(h3)["episode_returns"] != history_without_time(h1)["episode_returns"]


def test_short_run_learns_cartpole_and_counts_simulated_steps():
    _, h = train(Config(total_steps=20_000, seed=0, progress=False, stop_when_solved=False, eval_every=None))
    first, last = np.mean(h.episode_returns[:20]), np.mean(h.episode_returns[-20:])
    assert last > 2 * first and last > 100, (first, last)
    assert h.simulated_steps[-1] >= 20_000 and len(h.policy_loss) == len(h.update_steps)
    assert all(s >= u for s, u in zip(h.simulated_steps, h.update_steps))  # lockstep waste is counted
    assert h.simulated_steps[-1] > h.update_steps[-1] and not h.eval_steps
    assert len(h.explained_variance) == len(h.update_steps) and all(np.isfinite(h.explained_variance))


def test_solve_is_verified_on_fresh_episodes_on_schedule():
    cfg = Config(total_steps=60_000, seed=0, progress=False, solve_return=150, eval_every=4_000)
    policy, h = train(cfg)
    assert h.solved and h.eval_returns[-1] >= 150 and max(h.eval_returns[:-1], default=0) < 150
    assert h.solved_at_simulated == h.eval_steps[-1] == h.simulated_steps[-1]
    assert all(b // 4_000 > a // 4_000 for a, b in zip(h.eval_steps, h.eval_steps[1:]))
    again = evaluate(actor(policy, seed=cfg.eval_seed), "CartPole-v1", 20, cfg.eval_seed)  # the same check
    assert again.mean() == h.eval_returns[-1] and h.solved_at_time <= h.wall_time[-1]


def test_threads_restored_on_every_exit(monkeypatch):
    torch.set_num_threads(2)
    try:
        with pytest.raises(TypeError):  # the environment refuses its keyword, after the threads changed
            train(Config(total_steps=1_000, progress=False, env_kwargs=dict(no_such_option=1)))
        assert torch.get_num_threads() == 2
        train(Config(total_steps=1_000, num_envs=2, progress=False, eval_every=None))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)


def test_endless_episode_is_an_error_naming_the_task(monkeypatch):
    monkeypatch.setattr(pglib.practice.rollout, "EPISODE_STEP_CAP", 200)
    with pytest.raises(ValueError, match=r"Endless-v0.*200 steps"):
        train(Config(env_id="pglib-test/Endless-v0", total_steps=1_000, num_envs=2, progress=False))


def test_infinite_reward_is_an_error_not_a_nan_policy():
    gym.register("pglib-test/InfReward-v0", entry_point=_Endless,
                 kwargs=dict(reward=np.inf, terminate_after=5))
    with pytest.raises(ValueError, match=r"InfReward-v0.*non-finite reward"):
        train(Config(env_id="pglib-test/InfReward-v0", total_steps=1_000, num_envs=2, progress=False))


@pytest.mark.gpu
def test_trains_on_cuda():
    policy, h = train(Config(total_steps=3_000, num_envs=4, progress=False, device="cuda"))
    assert next(policy.parameters()).device.type == "cuda" and len(h.update_steps) > 0
