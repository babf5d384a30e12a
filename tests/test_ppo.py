"""pglib.practice.ppo: the first minibatch step is the REINFORCE step, the KL stop, determinism, doors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from pglib.practice.policies import CategoricalMLP, ValueMLP
from pglib.practice.ppo import PPOConfig, ppo_update, train_ppo


def _batch(B=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(B, 4, generator=g)
    actions = torch.randint(0, 2, (B,), generator=g)
    adv = torch.randn(B, generator=g)
    ret = torch.randn(B, generator=g)
    return obs, actions, adv, ret


def _nets(seed=0):
    torch.manual_seed(seed)
    return CategoricalMLP(4, 2, (8,)), ValueMLP(4, (8,))


def test_first_minibatch_step_is_the_reinforce_step():
    # One epoch, one minibatch, ratio 1, plain SGD: the step must be lr times the REINFORCE
    # estimate mean(grad log pi * A), computed here from a separate loss.
    obs, actions, adv, ret = _batch()
    policy, value = _nets()
    ref = CategoricalMLP(4, 2, (8,))
    ref.load_state_dict(policy.state_dict())
    with torch.no_grad():
        logp_old = policy(obs).log_prob(actions)
    lr = 0.1
    opt = torch.optim.SGD([*policy.parameters(), *value.parameters()], lr=lr)
    cfg = PPOConfig(epochs=1, minibatch_size=64, normalize_advantages=False, max_grad_norm=None,
                    vf_coef=0.0)
    stats = ppo_update(policy, value, opt, obs, actions, logp_old, adv, ret, cfg,
                       np.random.default_rng(0))
    assert stats["clip_fraction"] == 0.0 and stats["approx_kl"] == pytest.approx(0.0, abs=1e-6)  # float32
    logp = torch.stack([torch.log_softmax(ref.net(o), -1)[a] for o, a in zip(obs, actions)])
    grads = torch.autograd.grad((logp * adv).mean(), list(ref.parameters()))
    for p_new, p_ref, g in zip(policy.parameters(), ref.parameters(), grads):
        assert torch.allclose(p_new.detach(), p_ref.detach() + lr * g, atol=1e-6)


def test_kl_early_stop_skips_the_rest():
    obs, actions, adv, ret = _batch(B=128)
    policy, value = _nets()
    with torch.no_grad():
        logp_old = policy(obs).log_prob(actions)
    opt = torch.optim.Adam([*policy.parameters(), *value.parameters()], lr=0.5)
    cfg = PPOConfig(epochs=5, minibatch_size=32, target_kl=1e-9)
    stats = ppo_update(policy, value, opt, obs, actions, logp_old, adv, ret, cfg, np.random.default_rng(0))
    assert stats["epochs_run"] == 0  # the first step moved the policy; the second minibatch stops
    assert stats["approx_kl"] > 1.5e-9
    cfg = PPOConfig(epochs=3, minibatch_size=32)
    stats = ppo_update(policy, value, opt, obs, actions, logp_old, adv, ret, cfg, np.random.default_rng(0))
    assert stats["epochs_run"] == 3 and stats["clip_fraction"] > 0  # a large step size clips


def test_train_ppo_is_deterministic_and_logs():
    cfg = PPOConfig(total_steps=1024, num_envs=2, n_steps=64, minibatch_size=64, eval_every=None,
                    device="cpu", ent_coef=0.01, target_kl=0.05)
    _, h1 = train_ppo(cfg)
    _, h2 = train_ppo(cfg)
    assert h1.simulated_steps[-1] >= 1024 and len(h1.clip_fraction) == len(h1.update_steps) == 8
    assert h1.episode_returns == h2.episode_returns and h1.approx_kl == h2.approx_kl
    assert all(0 <= c <= 1 for c in h1.clip_fraction) and all(e > 0 for e in h1.entropy)


def test_train_ppo_evaluates_on_schedule_and_records_the_solve():
    # the verified-solve protocol of pglib.train (check_solve) runs on a PPOConfig too
    cfg = PPOConfig(total_steps=512, num_envs=2, n_steps=64, minibatch_size=64, eval_every=256, eval_episodes=2,
                    solve_return=1.0, device="cpu")
    _, h = train_ppo(cfg)
    assert h.eval_steps == [256]  # the solve (any episode returns >= 1) stops the run at the first evaluation
    assert h.solved_at_simulated == 256 and len(h.eval_returns) == 1 and h.eval_returns[0] >= 1.0
    _, h = train_ppo(dataclasses.replace(cfg, solve_return=10_000.0))  # never solved: every evaluation runs
    assert h.eval_steps == [256, 512] and h.solved_at_simulated is None


def test_train_ppo_gaussian_runs():
    cfg = PPOConfig(env_id="Pendulum-v1", total_steps=256, num_envs=2, n_steps=64, minibatch_size=32,
                    eval_every=None, device="cpu")
    _, h = train_ppo(cfg)
    assert len(h.update_steps) == 2 and np.isfinite(h.approx_kl).all()


@pytest.mark.parametrize("name, value", [("clip", 1.5), ("lam", -0.1), ("epochs", 0),
                                         ("target_kl", 0.0), ("env_id", "NoSuchEnv-v0"),
                                         ("minibatch_size", 2.5)])
def test_bad_config_names_the_argument(name, value):
    with pytest.raises((ValueError, TypeError), match=name):
        PPOConfig(**{name: value})
