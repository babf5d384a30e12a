r"""REINFORCE / vanilla policy gradient on gymnasium tasks, one config, one loop.

Each iteration: run the current policy for whole episodes in ``num_envs`` environments
(:meth:`pglib.practice.rollout.VectorCollector.episodes`), weight every log-probability by an
advantage estimate (:func:`step_weights`), take one gradient step on
:func:`pglib.losses.surrogate_loss` averaged over the :math:`N` trajectories,

.. math:: \mathcal L(\theta) = -\frac1N\sum_{i=1}^{N}\sum_t
   \log\pi_\theta(a_{i,t}\mid s_{i,t})\,\gamma^t\hat A_{i,t},

and, with a learned baseline, regress :math:`V_\phi` on the returns.

**The estimand.** With the default ``gamma=1`` the objective is the time-limited
undiscounted return, the number gymnasium scores (CartPole-v1: the sum of rewards up to
the 500-step limit), and truncated episodes are *not* bootstrapped. With ``gamma < 1``
the objective is the discounted return and step ``t`` keeps its factor :math:`\gamma^t`
(chapters 2 and 4: without it the estimator is the gradient of no objective).
``bootstrap_truncated=True`` continues the return after a time limit with
:math:`\gamma V_\phi(s_T)`: it then estimates the gradient of the infinite-horizon
discounted return instead, a different objective.

**Solved** means the mean return of the current policy on ``eval_episodes`` fresh
episodes of a separate environment with fixed seeds (:func:`pglib.practice.rollout.evaluate`)
reaches the threshold; it is checked every ``eval_every`` simulated steps, and the
evaluation's time is kept apart from the training time.

Sources: Williams (1992) for REINFORCE; Sutton et al. (2000) for the baseline/advantage
form; Schulman et al. (2016) for GAE(lambda); the single-file loop follows CleanRL.
"""

from __future__ import annotations

import time
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass, field
from typing import Literal

import gymnasium as gym
import numpy as np
import torch

from pglib import validate
from pglib.practice.device import resolve_device
from pglib.losses import surrogate_loss
from pglib.practice.policies import GaussianMLP, ValueMLP, policy_for
from pglib.returns import check_gamma, discounts, gae, reward_to_go_episodic
from pglib.practice.rollout import Batch, VectorCollector, evaluate, make_vec_env


@dataclass(frozen=True)
class Config:
    """Every knob of :func:`train`; the defaults learn CartPole-v1 reliably.
    ``benchmarks/bench_cartpole.py`` times a setting chosen for wall-clock to solve."""

    env_id: str = "CartPole-v1"  # flat Box observations; Discrete or Box actions
    total_steps: int = 300_000  # budget of simulated steps (lockstep waste included)
    num_envs: int = 16  # parallel environments, each giving whole episodes to an update
    # None: one episode per env; k: episodes while < k steps
    steps_per_env: int | None = None
    # weight a_t by the rewards from t on, or by the whole return
    reward_to_go: bool = True
    # 0, batch mean, or V_phi(s_t)
    baseline: Literal["none", "constant", "value"] = "value"
    normalize_advantages: bool = True  # rescale the batch's advantages to mean 0, sd 1
    gamma: float = 1.0  # 1: the time-limited return the task scores; < 1: discounted
    # GAE lambda with a learned baseline; 1.0 is REINFORCE with baseline
    lam: float = 1.0
    bootstrap_truncated: bool = False  # add gamma * V(s_T) at a time limit (gamma < 1)
    lr: float = 0.01  # Adam step size of the policy
    value_lr: float = 0.01  # Adam step size of the value baseline
    value_steps: int = 5  # full-batch regression steps of V_phi per update
    hidden: tuple[int, ...] = (64, 64)  # hidden widths of the policy and value MLPs
    log_std: float = 0.0  # initial log standard deviation (Gaussian policies)
    seed: int = 0  # fixes the initial weights, the environments and the action noise
    device: str | None = None  # None: pglib.practice.device.default_device() (CUDA when present)
    torch_threads: int | None = 1  # small networks run fastest (and steadiest) on one
    # None: the task's reward_threshold (CartPole: 475)
    solve_return: float | None = None
    # evaluate every this many simulated steps (None: never)
    eval_every: int | None = 5_000
    eval_episodes: int = 20  # fresh evaluation episodes, one per env of a separate env
    eval_seed: int = 10_000  # their reset seeds: eval_seed, eval_seed + 1, ...
    eval_mean_action: bool = False  # Gaussian policies: evaluate the mean action
    stop_when_solved: bool = True  # end training at the first verified solve
    progress: bool = True  # tqdm progress bar (extra `progress`; none without tqdm)
    # for gym.make_vec (max_episode_steps)
    env_kwargs: dict = field(default_factory=dict)

    def __post_init__(self):  # refuse a bad setting here, before anything is built
        if not isinstance(self.env_id, str) or self.env_id not in gym.registry:
            raise ValueError("env_id must name a registered gymnasium task (e.g. "
                             f"'CartPole-v1'), got {self.env_id!r}")
        validate.gamma(self.gamma, "gamma")
        validate.real(self.lam, "lam", low=0.0, high=1.0)
        validate.one_of(self.baseline, "baseline", ("none", "constant", "value"))
        for name in ("reward_to_go", "normalize_advantages", "bootstrap_truncated",
                     "eval_mean_action", "stop_when_solved", "progress"):
            validate.flag(getattr(self, name), name)
        if self.bootstrap_truncated and (self.baseline != "value" or self.gamma >= 1):
            raise ValueError("bootstrap_truncated=True needs baseline='value' and "
                             "gamma < 1 (the bootstrapped target is an infinite-horizon"
                             " "
                             "discounted return); got "
                             f"baseline={self.baseline!r}, gamma={self.gamma!r}")
        for name in ("total_steps", "num_envs", "value_steps", "eval_episodes"):
            validate.positive_int(getattr(self, name), name)
        for name in ("steps_per_env", "eval_every", "torch_threads"):
            if getattr(self, name) is not None:
                validate.positive_int(getattr(self, name), name)
        for name in ("lr", "value_lr"):
            validate.real(getattr(self, name), name, low=0.0, low_open=True)
        # a NaN threshold could never be reached: the run would never count as solved
        validate.real_or_none(self.solve_return, "solve_return")
        validate.mapping(self.env_kwargs, "env_kwargs", "a dict of keyword arguments for gym.make_vec")
        validate.real(self.log_std, "log_std")
        validate.seed(self.seed)
        validate.seed(self.eval_seed, "eval_seed")
        if not isinstance(self.hidden, (tuple, list)):
            raise TypeError(f"hidden must be a tuple of positive integer widths, got "
                            f"{self.hidden!r}")
        for k, width in enumerate(self.hidden):
            validate.positive_int(width, f"hidden[{k}]")
        # ValueError: an unknown device, or CUDA without CUDA
        resolve_device(self.device)


@dataclass
class History:
    """What a run did, in plain lists a plot can read.

    Per finished training episode: ``episode_steps`` (used steps so far when it ended),
    ``episode_returns`` (undiscounted). Per update: ``update_steps`` (used steps),
    ``simulated_steps`` (every step the environments ran), ``policy_loss``,
    ``value_loss``, ``explained_variance`` (of the returns by :math:`V_\\phi` before its
    fit; NaN without a critic), ``wall_time`` (training seconds, evaluation excluded).
    Per evaluation: ``eval_steps`` (simulated steps), ``eval_returns`` (mean return of
    the fresh episodes). ``eval_seconds``: total evaluation time. Only the times differ
    between identical reruns.
    """

    config: dict
    episode_steps: list[int] = field(default_factory=list)
    episode_returns: list[float] = field(default_factory=list)
    update_steps: list[int] = field(default_factory=list)
    simulated_steps: list[int] = field(default_factory=list)
    policy_loss: list[float] = field(default_factory=list)
    value_loss: list[float] = field(default_factory=list)
    explained_variance: list[float] = field(default_factory=list)
    wall_time: list[float] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)
    eval_returns: list[float] = field(default_factory=list)
    eval_seconds: float = 0.0
    solved_at_step: int | None = None  # used steps at the verified solve
    solved_at_simulated: int | None = None  # simulated steps at the verified solve
    solved_at_time: float | None = None  # training seconds at the verified solve

    @property
    def solved(self) -> bool:
        return self.solved_at_step is not None


def step_weights(batch: Batch, cfg: Config, value: ValueMLP | None = None):
    r"""Advantages :math:`\gamma^t\hat A_{i,t}` ``[N, T]`` (0 where ``batch.mask`` is
    False) and the value targets :math:`G_{i,t}` ``[N, T]`` (None without a critic).

    full return: :math:`G_{i,0}` (discounted from the episode's start) at every step;
    reward-to-go: :math:`\gamma^t G_{i,t}`; minus a baseline (times :math:`\gamma^t`);
    then optionally normalized. Without ``bootstrap_truncated`` a time limit ends the
    return: the time-limited objective the task scores.
    """
    validate.instance(batch, "batch", Batch, "a pglib.rollout.Batch")
    validate.instance(cfg, "cfg", Config, "a pglib.train.Config")
    value = None if value is None else validate.function(value, "value", "value(obs [N, obs_dim]) -> [N]")
    m = batch.mask
    V = V_next = None
    if value is not None:
        with torch.no_grad():
            V = value(batch.obs).double().cpu().numpy()
            if cfg.bootstrap_truncated or cfg.lam < 1:
                V_next = value(batch.next_obs).double().cpu().numpy()
    boot = V_next if cfg.bootstrap_truncated else None
    G = reward_to_go_episodic(batch.rewards, cfg.gamma, batch.terminated,
                              batch.truncated, boot, m)
    weight = G
    if not cfg.reward_to_go:  # the return of the whole episode: G at its first step
        first = np.arange(m.shape[1]) - batch.time
        weight = np.take_along_axis(G, np.where(m, first, 0), axis=1)
    if cfg.baseline == "value" and cfg.lam < 1 and cfg.reward_to_go:
        ends = batch.terminated if cfg.bootstrap_truncated else batch.episode_end
        adv, _ = gae(batch.rewards, V, V_next, ends, batch.truncated, cfg.gamma,
                     cfg.lam, m)
    elif cfg.baseline == "value":
        adv = weight - V
    elif cfg.baseline == "constant":
        adv = weight - weight[m].mean()  # the batch's mean (a constant, up to O(1/N))
    else:
        adv = weight
    if cfg.reward_to_go:
        # the objective's discount (1 when gamma = 1)
        adv = adv * discounts(cfg.gamma, batch.time)
    if cfg.normalize_advantages and m.sum() > 1:
        adv = (adv - adv[m].mean()) / (adv[m].std(ddof=1) + 1e-8)
    adv = torch.as_tensor(np.where(m, adv, 0.0))
    return adv, (torch.as_tensor(np.where(m, G, 0.0)) if value is not None else None)


def fit_value(value, opt, obs, targets, steps: int) -> tuple[float, float]:
    """``steps`` full-batch Adam steps of :math:`V_\\phi` on the returns; returns the
    last loss and the explained variance :math:`1-\\mathrm{Var}(G-V)/\\mathrm{Var}(G)`
    before the fit. ``obs [N, obs_dim]``, ``targets [N]`` (the shape of ``value(obs)``: no
    broadcasting of ``[N, 1]`` against ``[N]``)."""
    validate.instance(value, "value", torch.nn.Module, "a value network (a torch.nn.Module)")
    validate.instance(opt, "opt", torch.optim.Optimizer, "a torch optimizer")
    steps = validate.positive_int(steps, "steps", maximum=validate.MAX_STEPS)
    obs = validate.floats(obs, "obs", dtype=None, ndim=2, dims="[N, obs_dim]")
    targets = validate.floats(targets, "targets", dtype=None, shape=(obs.shape[0],), dims="[N] (one per observation)")
    dim = getattr(value, "obs_dim", None)
    if dim is not None and obs.shape[1] != dim:
        raise ValueError(f"obs must have shape [N, obs_dim] = [N, {dim}] (the value network's input); got "
                         f"{tuple(obs.shape)}")
    if obs.shape[0] < 2:
        raise ValueError(f"obs must hold at least 2 observations (a variance is taken); got {obs.shape[0]}")
    for k in range(steps):
        pred = value(obs)
        if k == 0 and tuple(pred.shape) != tuple(targets.shape):
            raise ValueError(f"value(obs) must have the shape of targets, {tuple(targets.shape)}; got "
                             f"{tuple(pred.shape)}")
        loss = ((pred - targets) ** 2).mean()
        if k == 0:
            residual = (targets - pred.detach()).var()
            explained = 1 - float(residual / targets.var().clamp_min(1e-12))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return float(loss.detach()), explained


def actor(policy, mean_action: bool = False, seed: int = 0):
    """``obs -> actions`` for :func:`pglib.practice.rollout.evaluate`: samples of the current
    policy with a numpy generator seeded ``seed`` (or, for a Gaussian policy, its mean
    action)."""
    validate.instance(policy, "policy", torch.nn.Module, "a pglib policy (CategoricalMLP or GaussianMLP)")
    if not hasattr(policy, "sampler"):
        raise validate.ArgumentTypeError(f"policy must have a sampler() method (a pglib policy); got "
                                         f"{type(policy).__name__}")
    mean_action = validate.flag(mean_action, "mean_action")
    seed = validate.positive_int(seed, "seed", minimum=0)
    if mean_action and isinstance(policy, GaussianMLP):
        def act(obs):
            with torch.no_grad():
                return policy.mean(obs).double().cpu().numpy()
        return act
    sample, rng = policy.sampler(), np.random.default_rng(seed)
    return lambda obs: sample(obs, rng)


@contextmanager
def torch_threads(n: int | None):
    """Run the block with ``n`` torch threads (None: as is); restored on any exit."""
    if n is not None:
        n = validate.positive_int(n, "n", maximum=4096)
    before = torch.get_num_threads()
    try:
        if n:
            torch.set_num_threads(n)
        yield
    finally:
        torch.set_num_threads(before)


def train(cfg: Config = Config()) -> tuple[torch.nn.Module, History]:
    """Run REINFORCE as configured; returns ``(policy, history)``."""
    validate.instance(cfg, "cfg", Config, "a pglib.train.Config")
    device = resolve_device(cfg.device)
    with torch_threads(cfg.torch_threads), progress_bar(cfg) as bar, \
            closing(make_vec_env(cfg.env_id, cfg.num_envs, **cfg.env_kwargs)) as envs:
        collector = VectorCollector(envs, seed=cfg.seed)
        policy, value = _networks(envs, cfg, device)
        opt = torch.optim.Adam(policy.parameters(), lr=cfg.lr)
        value_opt = None
        if value is not None:
            value_opt = torch.optim.Adam(value.parameters(), lr=cfg.value_lr)
        hist, train_time, next_eval = History(config=asdict(cfg)), 0.0, cfg.eval_every
        while collector.simulated_steps < cfg.total_steps:
            start = time.perf_counter()
            # 1. act: whole episodes of the current policy
            batch = collector.episodes(policy.sampler(),
                                       steps_per_env=cfg.steps_per_env)
            # 2. weigh every action
            adv, targets = step_weights(batch, cfg, value)
            # 3. step on the surrogate loss, averaged over trajectories ([N, T] arrays)
            m = torch.as_tensor(batch.mask, device=device)
            obs = torch.as_tensor(batch.obs[batch.mask], device=device)
            actions = torch.as_tensor(batch.actions[batch.mask], device=device)
            logp_real = policy(obs).log_prob(actions)
            logp = logp_real.new_zeros(m.shape).index_put((m,), logp_real)
            loss = surrogate_loss(logp, adv.to(device, logp.dtype), m,
                                  density=isinstance(policy, GaussianMLP))
            opt.zero_grad()
            loss.backward()
            opt.step()
            # 4. fit the baseline to the returns
            value_loss = explained = float("nan")
            if value is not None:
                value_targets = targets.to(device, logp.dtype)[m]
                value_loss, explained = fit_value(value, value_opt, obs, value_targets,
                                                  cfg.value_steps)
            train_time += time.perf_counter() - start
            # 5. record
            hist.episode_returns += batch.episode_returns.tolist()
            hist.episode_steps += batch.episode_end_steps.tolist()
            hist.update_steps.append(collector.total_steps)
            hist.simulated_steps.append(collector.simulated_steps)
            hist.policy_loss.append(float(loss.detach()))
            hist.value_loss.append(value_loss)
            hist.explained_variance.append(explained)
            hist.wall_time.append(train_time)
            bar.update(collector.simulated_steps - bar.n)
            # 6. evaluate on the schedule (untimed); stop at a verified solve
            if next_eval is not None and collector.simulated_steps >= next_eval:
                while next_eval <= collector.simulated_steps:
                    next_eval += cfg.eval_every
                if check_solve(policy, cfg, hist, collector) and cfg.stop_when_solved:
                    break
    return policy, hist


#: what :func:`check_solve` reads of a configuration
_EVAL_FIELDS = ("env_id", "solve_return", "eval_mean_action", "eval_seed", "eval_episodes", "env_kwargs")


def check_solve(policy, cfg: Config, hist: History, collector: VectorCollector) -> bool:
    """One scheduled evaluation of the current policy; records it and the first solve.
    True if solved. ``cfg`` is a :class:`Config` or a :class:`pglib.practice.ppo.PPOConfig` (their
    evaluation fields are the same; ppo builds on this module, so it is recognised by them)."""
    if not isinstance(cfg, Config) and not all(hasattr(cfg, f) for f in _EVAL_FIELDS):
        raise validate.ArgumentTypeError(f"cfg must be a pglib.train.Config or a pglib.ppo.PPOConfig; "
                                         f"got {type(cfg).__name__}")
    validate.instance(hist, "hist", History, "a pglib.train.History")
    validate.instance(collector, "collector", VectorCollector, "a pglib.rollout.VectorCollector")
    threshold = cfg.solve_return
    if threshold is None:
        # None for some tasks (Pendulum)
        threshold = gym.spec(cfg.env_id).reward_threshold
    start = time.perf_counter()
    act = actor(policy, cfg.eval_mean_action, cfg.eval_seed)
    returns = evaluate(act, cfg.env_id, cfg.eval_episodes, cfg.eval_seed,
                       **cfg.env_kwargs)
    hist.eval_seconds += time.perf_counter() - start
    hist.eval_steps.append(collector.simulated_steps)
    hist.eval_returns.append(float(returns.mean()))
    solved = threshold is not None and returns.mean() >= threshold
    if solved and hist.solved_at_step is None:
        hist.solved_at_step = collector.total_steps
        hist.solved_at_simulated = collector.simulated_steps
        hist.solved_at_time = hist.wall_time[-1]
    return bool(solved)


def _networks(envs, cfg: Config, device):
    """The policy for the task's spaces and, with ``baseline='value'``, a critic."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        policy = policy_for(envs.single_observation_space, envs.single_action_space,
                            cfg.hidden, log_std=cfg.log_std).to(device)
        value = None
        if cfg.baseline == "value":
            value = ValueMLP(policy.obs_dim, cfg.hidden).to(device)
    return policy, value


class _NoBar:
    """Stands in for a tqdm bar when none is shown (progress=False, or tqdm not installed)."""

    n = 0

    def update(self, k: int) -> None:
        self.n += k

    def close(self) -> None:
        pass


@contextmanager
def progress_bar(cfg: Config):
    """A tqdm bar over ``cfg.total_steps`` while the block runs (a silent stand-in without
    ``cfg.progress`` or without tqdm); closed on any exit."""
    if not all(hasattr(cfg, f) for f in ("total_steps", "progress")):
        raise validate.ArgumentTypeError(f"cfg must be a pglib.train.Config or PPOConfig; got {type(cfg).__name__}")
    # tqdm is optional (extra `progress`): without it, or without a bar, nothing is shown
    try:
        from tqdm.auto import tqdm
    except ImportError:
        tqdm = None
    bar = tqdm(total=cfg.total_steps, unit="step") if cfg.progress and tqdm is not None else _NoBar()
    try:
        yield bar
    finally:
        bar.close()
