r"""Proximal policy optimization (PPO-Clip), in one readable loop built from the book's parts.

Each iteration (Schulman et al. 2017, algorithm 1):

1. **act**: ``n_steps`` vector steps of the current policy in ``num_envs`` environments
   (:meth:`pglib.practice.rollout.VectorCollector.segment`; episodes run on across iterations);
2. **weigh**: GAE(:math:`\gamma,\lambda`) advantages from the value network
   (:func:`pglib.returns.gae`: bootstraps at a time limit and at the segment's end, not at
   a terminal state);
3. **optimize**: ``epochs`` passes over the batch in shuffled minibatches of
   ``minibatch_size`` steps, each one Adam step on

   .. math:: \mathcal L = \mathcal L^{\mathrm{clip}}(\rho_t, \hat A_t)
             + \beta\,\big(-\mathcal H(\pi_\theta(\cdot|s_t))\big)
             + c_V\,(V_\phi(s_t) - \hat R_t)^2,

   averaged over the minibatch (:func:`pglib.losses.clipped_surrogate`,
   :func:`pglib.losses.entropy_bonus`; :math:`\hat R_t = \hat A_t + V(s_t)`), with the
   gradient's norm clipped at ``max_grad_norm``. With ``target_kl`` set, the epochs stop at
   the first minibatch whose estimated :math:`\mathrm{KL}(\pi_{\mathrm{old}}\|\pi_\theta)`
   exceeds ``1.5 * target_kl`` (Stable-Baselines3's rule), before its step.

At the first minibatch of the first epoch :math:`\rho_t = 1` and the clipped loss's gradient
is the REINFORCE estimate with GAE weights; every later step starts from a policy that has
moved, so its gradient is an importance-weighted, clipped estimate at :math:`\theta_\mathrm{old}`'s
data (chapter 12 measures how far it drifts from :math:`\nabla J(\theta_\mathrm{old})`).

The defaults are the PPO setting ``benchmarks/sweep_cartpole.py`` chose for CartPole-v1 with
Stable-Baselines3 (4 environments, 128 steps, 4 epochs of minibatches of 256, Adam 2.5e-3,
:math:`\gamma=0.98`, :math:`\lambda=0.8`, clip 0.2, no entropy term); the networks (separate
64-64 tanh actor and critic, orthogonal initialization, Adam's eps 1e-5, per-minibatch
advantage normalization) follow SB3 and CleanRL, so that the two can be compared step for
step. **Solved** is judged as in :mod:`pglib.practice.train` (fresh evaluation episodes, untimed).

Example::

    policy, history = train_ppo(PPOConfig(total_steps=50_000, seed=0))
    history.clip_fraction[-1], history.approx_kl[-1]
"""

from __future__ import annotations

import time
from contextlib import closing
from dataclasses import asdict, dataclass, field

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.distributions import Independent, Normal

from pglib import validate
from pglib.losses import clipped_surrogate, entropy_bonus
from pglib.practice.device import resolve_device
from pglib.practice.policies import GaussianMLP, ValueMLP, policy_for
from pglib.practice.rollout import VectorCollector, make_vec_env
from pglib.practice.train import History, check_solve, progress_bar, torch_threads
from pglib.returns import gae

__all__ = ["PPOConfig", "PPOHistory", "train_ppo", "ppo_update"]


@dataclass
class PPOConfig:
    """Every knob of :func:`train_ppo` (defaults: the tuned CartPole setting, see the module)."""

    env_id: str = "CartPole-v1"
    total_steps: int = 300_000  # budget of simulated steps
    num_envs: int = 4
    n_steps: int = 128  # vector steps per iteration: a batch of num_envs * n_steps
    epochs: int = 4  # passes over each batch
    minibatch_size: int = 256
    gamma: float = 0.98
    lam: float = 0.8  # GAE lambda
    lr: float = 2.5e-3  # one Adam for the policy and the value network
    adam_eps: float = 1e-5
    clip: float = 0.2  # epsilon of the clipped surrogate
    ent_coef: float = 0.0  # beta of the entropy bonus
    vf_coef: float = 0.5
    max_grad_norm: float | None = 0.5  # None: no clipping of the gradient's norm
    target_kl: float | None = None  # None: always run every epoch
    normalize_advantages: bool = True  # per minibatch, as SB3 and CleanRL
    hidden: tuple[int, ...] = (64, 64)
    log_std: float = 0.0  # Gaussian policies
    seed: int = 0
    device: str | None = None  # None: CUDA when present
    torch_threads: int | None = 1
    solve_return: float | None = None  # None: the task's reward_threshold
    eval_every: int | None = 5_000
    eval_episodes: int = 20
    eval_seed: int = 10_000
    eval_mean_action: bool = False
    stop_when_solved: bool = True
    progress: bool = False
    env_kwargs: dict = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.env_id, str) or self.env_id not in gym.registry:
            raise ValueError("env_id must name a registered gymnasium task (e.g. "
                             f"'CartPole-v1'), got {self.env_id!r}")
        for name in ("total_steps", "num_envs", "n_steps", "epochs", "minibatch_size",
                     "eval_episodes"):
            validate.positive_int(getattr(self, name), name)
        for name in ("eval_every", "torch_threads"):
            if getattr(self, name) is not None:
                validate.positive_int(getattr(self, name), name)
        validate.gamma(self.gamma, "gamma")
        validate.real(self.lam, "lam", low=0.0, high=1.0)
        for name in ("lr", "adam_eps"):
            validate.real(getattr(self, name), name, low=0.0, low_open=True)
        validate.real(self.clip, "clip", low=0.0, high=1.0, low_open=True, high_open=True)
        for name in ("ent_coef", "vf_coef"):
            validate.real(getattr(self, name), name, low=0.0)
        for name in ("max_grad_norm", "target_kl"):
            if getattr(self, name) is not None:
                validate.real(getattr(self, name), name, low=0.0, low_open=True)
        for name in ("normalize_advantages", "eval_mean_action", "stop_when_solved", "progress"):
            validate.flag(getattr(self, name), name)
        validate.real(self.log_std, "log_std")
        validate.seed(self.seed)
        validate.seed(self.eval_seed, "eval_seed")
        if not isinstance(self.hidden, (tuple, list)):
            raise TypeError(f"hidden must be a tuple of positive integer widths, got {self.hidden!r}")
        for k, width in enumerate(self.hidden):
            validate.positive_int(width, f"hidden[{k}]")
        resolve_device(self.device)


@dataclass
class PPOHistory(History):
    """:class:`pglib.practice.train.History` plus, per iteration, what PPO logs: ``clip_fraction``
    (share of minibatch steps with :math:`|\\rho_t - 1| > \\epsilon`, over the iteration),
    ``approx_kl`` (the k3 estimate of :math:`\\mathrm{KL}(\\pi_{\\mathrm{old}}\\|\\pi_\\theta)` at the
    last minibatch), ``entropy`` (mean entropy at the batch's states before the update) and
    ``epochs_run`` (fewer than ``epochs`` after a KL stop)."""

    clip_fraction: list[float] = field(default_factory=list)
    approx_kl: list[float] = field(default_factory=list)
    entropy: list[float] = field(default_factory=list)
    epochs_run: list[int] = field(default_factory=list)


def _orthogonal(net: nn.Sequential, last_gain: float) -> None:
    """Orthogonal weights (gain sqrt 2 in hidden layers, ``last_gain`` at the output), zero biases."""
    linears = [m for m in net if isinstance(m, nn.Linear)]
    for k, layer in enumerate(linears):
        nn.init.orthogonal_(layer.weight, np.sqrt(2) if k < len(linears) - 1 else last_gain)
        if layer.bias is not None:
            nn.init.zeros_(layer.bias)


def _networks(envs, cfg: PPOConfig, device):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        policy = policy_for(envs.single_observation_space, envs.single_action_space,
                            cfg.hidden, log_std=cfg.log_std)
        value = ValueMLP(policy.obs_dim, cfg.hidden)
        _orthogonal(policy.net, 0.01)
        _orthogonal(value.net, 1.0)
    return policy.to(device), value.to(device)


def _log_prob_entropy(policy, obs: torch.Tensor, actions: torch.Tensor):
    """``log pi(a|s)`` and the entropy of ``pi(.|s)``, ``[B]`` each, from the policy's network on
    observations already checked (the update's inner loop skips the per-call door)."""
    if isinstance(policy, GaussianMLP):
        mu = policy.net(obs)
        dist = Independent(Normal(mu, policy.log_std.exp().expand_as(mu), validate_args=False), 1,
                           validate_args=False)
        return dist.log_prob(actions), dist.entropy()
    logp_all = torch.log_softmax(policy.net(obs), -1)
    return logp_all.gather(-1, actions[:, None]).squeeze(-1), -(logp_all.exp() * logp_all).sum(-1)


def _check_update(policy, value, opt, obs, actions, logp_old, advantages, returns, cfg, rng) -> None:
    """The door of :func:`ppo_update`."""
    validate.instance(policy, "policy", torch.nn.Module, "a pglib policy (CategoricalMLP or GaussianMLP)")
    validate.instance(value, "value", torch.nn.Module, "a pglib.policies.ValueMLP")
    validate.instance(opt, "opt", torch.optim.Optimizer, "a torch optimizer")
    validate.instance(cfg, "cfg", PPOConfig, "a pglib.ppo.PPOConfig")
    validate.instance(rng, "rng", np.random.Generator, "a numpy Generator (np.random.default_rng)")
    obs = validate.floats(obs, "obs", dtype=None, ndim=2, dims="[B, obs_dim]")
    B = (obs.shape[0],)
    for name, x in (("logp_old", logp_old), ("advantages", advantages), ("returns", returns)):
        validate.floats(x, name, dtype=None, shape=B, dims="[B] (one per step of obs)")
    if not isinstance(actions, torch.Tensor) or actions.ndim < 1 or actions.shape[0] != B[0]:
        raise validate.ArgumentTypeError(f"actions must be a tensor [B] or [B, act_dim] with B = {B[0]}; "
                                         f"got {validate.describe(actions)}")


def ppo_update(policy, value, opt, obs, actions, logp_old, advantages, returns,
               cfg: PPOConfig, rng: np.random.Generator) -> dict:
    """PPO's optimization phase on one batch of ``B`` real steps: flat tensors on the
    networks' device, ``obs [B, obs_dim]``, ``actions [B]`` or ``[B, act_dim]``,
    ``logp_old``, ``advantages``, ``returns`` ``[B]``. Returns the logged statistics."""
    _check_update(policy, value, opt, obs, actions, logp_old, advantages, returns, cfg, rng)
    density = isinstance(policy, GaussianMLP)
    params = [p for group in opt.param_groups for p in group["params"]]
    B = len(obs)
    clipped = seen = epochs_run = 0
    kl, losses = float("nan"), []
    for epoch in range(cfg.epochs):
        order = torch.as_tensor(rng.permutation(B), device=obs.device)
        stop = False
        for start in range(0, B, cfg.minibatch_size):
            idx = order[start:start + cfg.minibatch_size]
            logp, entropy = _log_prob_entropy(policy, obs[idx], actions[idx])
            adv = advantages[idx]
            if cfg.normalize_advantages and len(idx) > 1:
                adv = (adv - adv.mean()) / (adv.std() + 1e-8)
            with torch.no_grad():  # logged: k3 estimate of KL(old || new), clipping
                log_ratio = logp - logp_old[idx]
                kl = float(((log_ratio.exp() - 1) - log_ratio).mean())
                n_clipped = int(((log_ratio.exp() - 1).abs() > cfg.clip).sum())
            if cfg.target_kl is not None and kl > 1.5 * cfg.target_kl:
                stop = True
                break
            clipped, seen = clipped + n_clipped, seen + len(idx)
            v = value.net(obs[idx]).squeeze(-1)
            loss = (clipped_surrogate(logp, logp_old[idx], adv, cfg.clip,
                                      reduction="mean", density=density)
                    + cfg.ent_coef * entropy_bonus(entropy, reduction="mean")
                    + cfg.vf_coef * ((v - returns[idx]) ** 2).mean())
            opt.zero_grad()
            loss.backward()
            if cfg.max_grad_norm is not None:
                nn.utils.clip_grad_norm_(params, cfg.max_grad_norm, foreach=True)
            opt.step()
            losses.append(float(loss.detach()))
        if stop:
            break
        epochs_run = epoch + 1
    return dict(clip_fraction=clipped / max(seen, 1), approx_kl=kl,
                epochs_run=epochs_run, loss=losses[-1] if losses else float("nan"))


def train_ppo(cfg: PPOConfig = PPOConfig()) -> tuple[torch.nn.Module, PPOHistory]:
    """Run PPO as configured; returns ``(policy, history)``."""
    validate.instance(cfg, "cfg", PPOConfig, "a pglib.ppo.PPOConfig")
    device = resolve_device(cfg.device)
    with torch_threads(cfg.torch_threads), progress_bar(cfg) as bar, \
            closing(make_vec_env(cfg.env_id, cfg.num_envs, **cfg.env_kwargs)) as envs:
        collector = VectorCollector(envs, seed=cfg.seed)
        policy, value = _networks(envs, cfg, device)
        opt = torch.optim.Adam([*policy.parameters(), *value.parameters()], lr=cfg.lr,
                               eps=cfg.adam_eps, foreach=True)
        rng = np.random.default_rng(cfg.seed)
        hist, train_time, next_eval = PPOHistory(config=asdict(cfg)), 0.0, cfg.eval_every
        while collector.simulated_steps < cfg.total_steps:
            start = time.perf_counter()
            # 1. act: a segment of the current policy (numpy sampler, same weights)
            batch = collector.segment(policy.sampler(), cfg.n_steps)
            m = batch.mask
            obs = torch.as_tensor(batch.obs[m], device=device, dtype=policy.dtype)
            actions = torch.as_tensor(batch.actions[m], device=device)
            # 2. weigh: GAE from the value network, before any update
            with torch.no_grad():
                logp_old, entropy = _log_prob_entropy(policy, obs, actions)
                V = value(batch.obs).double().cpu().numpy()
                V_next = value(batch.next_obs).double().cpu().numpy()
            adv, ret = gae(batch.rewards, V, V_next, batch.terminated, batch.truncated,
                           cfg.gamma, cfg.lam, m)
            advantages = torch.as_tensor(adv[m], device=device, dtype=policy.dtype)
            returns = torch.as_tensor(ret[m], device=device, dtype=policy.dtype)
            explained = 1 - float(np.var(ret[m] - V[m]) / max(np.var(ret[m]), 1e-12))
            # 3. optimize: epochs of minibatches on the clipped loss
            stats = ppo_update(policy, value, opt, obs, actions, logp_old, advantages, returns,
                               cfg, rng)
            train_time += time.perf_counter() - start
            # 4. record
            hist.episode_returns += batch.episode_returns.tolist()
            hist.episode_steps += batch.episode_end_steps.tolist()
            hist.update_steps.append(collector.total_steps)
            hist.simulated_steps.append(collector.simulated_steps)
            hist.policy_loss.append(stats["loss"])
            hist.value_loss.append(float("nan"))
            hist.explained_variance.append(explained)
            hist.wall_time.append(train_time)
            hist.clip_fraction.append(stats["clip_fraction"])
            hist.approx_kl.append(stats["approx_kl"])
            hist.entropy.append(float(entropy.mean()))
            hist.epochs_run.append(stats["epochs_run"])
            bar.update(collector.simulated_steps - bar.n)
            # 5. evaluate on the schedule (untimed); stop at a verified solve
            if next_eval is not None and collector.simulated_steps >= next_eval:
                while next_eval <= collector.simulated_steps:
                    next_eval += cfg.eval_every
                if check_solve(policy, cfg, hist, collector) and cfg.stop_when_solved:
                    break
    return policy, hist
