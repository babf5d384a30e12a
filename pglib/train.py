r"""REINFORCE / vanilla policy gradient on gymnasium tasks, one config, one loop.

Each iteration: run the current policy for one whole episode in each of ``num_envs``
environments (:meth:`pglib.rollout.VectorCollector.episodes`), weight every log-probability by
an advantage estimate (:func:`weights`), take one gradient step on the surrogate loss

.. math:: \mathcal L_{\mathrm{PG}}(\theta) = -\frac{1}{|\mathcal D|}\sum_{(i,t)\in\mathcal D}\log\pi_\theta(a_{i,t}\mid s_{i,t})\,\hat A_{i,t},

and, with a learned baseline, regress :math:`V_\phi` on the returns. Averaging over the steps
:math:`\mathcal D` of the batch (rather than over episodes, as in the notes) rescales the
gradient by one positive number per batch; Adam's update is insensitive to that scale.

Sources: Williams (1992) for REINFORCE; Sutton et al. (2000) for the baseline/advantage form;
Schulman et al. (2016) for GAE(lambda); the loop layout follows CleanRL and Spinning Up.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Literal

import gymnasium as gym
import numpy as np
import torch

from pglib.device import resolve_device
from pglib.policies import ValueMLP, policy_for
from pglib.returns import check_gamma, gae, reward_to_go_episodic
from pglib.rollout import Batch, VectorCollector, make_vec_env


@dataclass
class Config:
    """Every knob of :func:`train`; the defaults learn CartPole-v1 reliably. ``benchmarks/bench_cartpole.py``
    times a setting tuned for wall-clock to solve (22 environments, 32-32 networks, Adam 0.04, one value step)."""

    env_id: str = "CartPole-v1"  # any gymnasium task with a flat Box observation, Discrete or Box actions
    total_steps: int = 300_000  # budget of environment steps (autoreset steps are not counted)
    num_envs: int = 16  # parallel environments; each contributes whole episodes to every update
    steps_per_env: int | None = None  # None: one episode per env per update; k: each env starts episodes while it has < k steps
    reward_to_go: bool = True  # weight a_t by rewards from t on (True) or by the whole episode's return
    baseline: Literal["none", "constant", "value"] = "value"  # subtract nothing, the batch mean, or V_phi(s_t)
    normalize_advantages: bool = True  # rescale the batch's advantages to mean 0, std 1
    gamma: float = 0.99  # discount of the returns
    lam: float = 1.0  # GAE lambda with a learned baseline; 1.0 is REINFORCE with baseline
    bootstrap_truncated: bool = True  # at a time limit add gamma * V(s_T) (needs baseline="value")
    lr: float = 0.01  # Adam step size of the policy
    value_lr: float = 0.01  # Adam step size of the value baseline
    value_steps: int = 5  # full-batch regression steps of V_phi per update
    hidden: tuple[int, ...] = (64, 64)  # hidden widths of the policy and value MLPs
    log_std: float = 0.0  # initial log standard deviation (Gaussian policies)
    seed: int = 0  # fixes the initial weights, the environments and the action noise
    device: str | None = None  # None: pglib.device.default_device() (CUDA when present)
    torch_threads: int | None = 1  # small networks run fastest (and steadiest) on one thread
    solve_return: float | None = None  # None: the task's reward_threshold (475 for CartPole-v1; Pendulum has none)
    solve_window: int = 20  # solved = mean return of the last solve_window finished episodes >= solve_return
    stop_when_solved: bool = True  # end training at the first solve
    progress: bool = True  # tqdm progress bar
    env_kwargs: dict = field(default_factory=dict)  # passed to gym.make_vec (e.g. max_episode_steps)

    def __post_init__(self):
        check_gamma(self.gamma, "gamma")
        check_gamma(self.lam, "lam")
        if self.baseline not in ("none", "constant", "value"):
            raise ValueError(f"baseline must be 'none', 'constant' or 'value', got {self.baseline!r}")
        if self.steps_per_env is not None and (int(self.steps_per_env) != self.steps_per_env or self.steps_per_env < 1):
            raise ValueError(f"steps_per_env must be a positive integer or None, got {self.steps_per_env!r}")
        for name in ("total_steps", "num_envs", "value_steps", "solve_window"):
            value = getattr(self, name)
            if int(value) != value or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name in ("lr", "value_lr"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")


@dataclass
class History:
    """What a run did, in plain lists a plot can read (:func:`pglib.plotting.learning_curves`).

    Per finished episode: ``episode_steps`` (environment steps so far when it ended), ``episode_returns``
    (undiscounted). Per update: ``update_steps``, ``policy_loss``, ``value_loss``, ``wall_time`` (seconds
    since the start; the only field that differs between identical reruns).
    """

    config: dict
    episode_steps: list[int] = field(default_factory=list)
    episode_returns: list[float] = field(default_factory=list)
    update_steps: list[int] = field(default_factory=list)
    policy_loss: list[float] = field(default_factory=list)
    value_loss: list[float] = field(default_factory=list)
    wall_time: list[float] = field(default_factory=list)
    solved_at_step: int | None = None
    solved_at_time: float | None = None

    @property
    def solved(self) -> bool:
        return self.solved_at_step is not None


def solve_point(episode_returns, episode_steps, threshold: float, window: int = 20) -> int | None:
    """First environment-step count at which the mean of the last ``window`` finished episodes is
    ``>= threshold``, or None. Example: returns ``[500]*20`` ending at steps 500..10000 -> ``10000``."""
    r = np.asarray(episode_returns, dtype=np.float64)
    if len(r) < window:
        return None
    means = np.convolve(r, np.ones(window) / window, mode="valid")  # means[k] covers episodes k..k+window-1
    hit = np.flatnonzero(means >= threshold - 1e-9)
    return None if len(hit) == 0 else int(episode_steps[hit[0] + window - 1])


def weights(batch: Batch, cfg: Config, value: ValueMLP | None,
            values_real: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    r"""Advantage estimates :math:`\hat A_{i,t}` for the real steps of ``batch`` (flattened, ``[n_steps]``),
    and the value targets (or None without a learned baseline). ``values_real``: :math:`V_\phi` at the
    real steps (``value(batch.obs[batch.mask])``) when the caller has already computed it.

    full return: :math:`\hat A_{i,t} = G_{i,0}`; reward-to-go: :math:`G_{i,t}`; minus a baseline;
    then optionally normalized. Truncated episodes bootstrap from :math:`V_\phi` when there is one;
    without a critic the time-limited return is used as is, which is exactly the objective the
    task scores (the sum of rewards up to the time limit), so the estimator stays unbiased for it.
    """
    m = batch.mask
    use_gae = value is not None and cfg.reward_to_go and cfg.lam < 1.0
    bootstrap = cfg.bootstrap_truncated and value is not None
    values = next_values = None
    if value is not None:  # V only where it is used: the real steps, and the next state at a truncation
        values, next_values = np.zeros(m.shape), np.zeros(m.shape)
        with torch.no_grad():
            values[m] = (value(batch.obs[m]) if values_real is None else values_real).double().cpu().numpy()
            need = m if use_gae else batch.truncated & bootstrap  # GAE: V(s_{t+1}) at every step
            if need.any():
                next_values[need] = value(batch.next_obs[need]).double().cpu().numpy()
    G = reward_to_go_episodic(batch.rewards, cfg.gamma, batch.terminated, batch.truncated,
                              next_values if bootstrap else None, m)
    if not cfg.reward_to_go:  # every step gets G_0 of its own episode (a row may hold several episodes)
        starts = m & ~np.concatenate([np.zeros((m.shape[0], 1), bool), m[:, :-1] & ~batch.episode_end[:, :-1]], axis=1)
        first = np.maximum.accumulate(np.where(starts, np.arange(m.shape[1]), 0), axis=1)  # its episode's start
        G = np.take_along_axis(G, first, axis=1) * m
    if cfg.baseline == "value":
        if use_gae:  # GAE; without bootstrapping a time limit ends like a terminal
            ends = batch.terminated if bootstrap else batch.episode_end
            adv, _ = gae(batch.rewards, values, next_values, ends, batch.truncated, cfg.gamma, cfg.lam, m)
        else:
            adv = G - values
    elif cfg.baseline == "constant":
        adv = G - G[m].mean()  # the batch's mean return: a constant baseline (up to an O(1/N) effect)
    else:
        adv = G
    adv = torch.as_tensor(adv[m])
    if cfg.normalize_advantages and adv.numel() > 1:
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    targets = torch.as_tensor(G[m]) if value is not None else None
    return adv, targets


def train(cfg: Config = Config()) -> tuple[torch.nn.Module, History]:
    """Run REINFORCE as configured; returns ``(policy, history)``. Same ``cfg`` -> identical history."""
    if cfg.progress:
        from tqdm.auto import tqdm
    else:  # tqdm.auto would import the notebook widget machinery (and warn) only to stay hidden
        from tqdm.std import tqdm

    device, threads = resolve_device(cfg.device), torch.get_num_threads()
    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    envs = make_vec_env(cfg.env_id, cfg.num_envs, **cfg.env_kwargs)
    collector = VectorCollector(envs, seed=cfg.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        policy = policy_for(envs.single_observation_space, envs.single_action_space, cfg.hidden, log_std=cfg.log_std).to(device)
        value = ValueMLP(policy.obs_dim, cfg.hidden).to(device) if cfg.baseline == "value" else None
    opt = torch.optim.Adam(policy.parameters(), lr=cfg.lr, foreach=True)  # foreach: one call for all tensors
    value_opt = torch.optim.Adam(value.parameters(), lr=cfg.value_lr, foreach=True) if value is not None else None
    threshold = cfg.solve_return if cfg.solve_return is not None else gym.spec(cfg.env_id).reward_threshold
    hist, start = History(config=asdict(cfg)), time.perf_counter()
    bar = tqdm(total=cfg.total_steps, disable=not cfg.progress, unit="step")
    try:
        while collector.total_steps < cfg.total_steps:
            batch = collector.episodes(policy.sampler(), steps_per_env=cfg.steps_per_env)  # 1. act (numpy fast path, same weights)
            obs = torch.as_tensor(batch.obs[batch.mask], device=device)
            v_obs = value(obs) if value is not None else None  # one forward pass of V for steps 2 and 4
            adv, targets = weights(batch, cfg, value, None if v_obs is None else v_obs.detach())  # 2. weigh each action
            actions = torch.as_tensor(batch.actions[batch.mask], device=device)
            loss = -(policy(obs).log_prob(actions) * adv.to(device, torch.float32)).mean()  # 3. surrogate
            opt.zero_grad()
            loss.backward()
            opt.step()
            value_loss = float("nan")
            targets = None if targets is None else targets.to(device, torch.float32)
            for k in range(cfg.value_steps if value is not None else 0):  # 4. fit the baseline
                value_loss_t = (((v_obs if k == 0 else value(obs)) - targets) ** 2).mean()
                value_opt.zero_grad()
                value_loss_t.backward()
                value_opt.step()
                value_loss = float(value_loss_t.detach())
            hist.episode_returns += batch.episode_returns.tolist()  # 5. record
            hist.episode_steps += batch.episode_end_steps.tolist()
            hist.update_steps.append(collector.total_steps)
            hist.policy_loss.append(float(loss.detach()))
            hist.value_loss.append(value_loss)
            hist.wall_time.append(time.perf_counter() - start)
            bar.update(collector.total_steps - bar.n)
            bar.set_postfix(ret=np.mean(hist.episode_returns[-cfg.solve_window:]))
            if hist.solved_at_step is None and threshold is not None:
                hist.solved_at_step = solve_point(hist.episode_returns, hist.episode_steps, threshold, cfg.solve_window)
                if hist.solved_at_step is not None:
                    hist.solved_at_time = hist.wall_time[-1]
                    if cfg.stop_when_solved:
                        break
    finally:
        bar.close()
        envs.close()
        torch.set_num_threads(threads)
    return policy, hist
