r"""Batched collection from gymnasium vector environments.

Layout (the axis convention of :mod:`pglib.returns`: time is the last *batch* axis):
``N`` environments by ``T`` vector steps, so rewards are ``[N, T]`` and observations
``[N, T, obs_dim]``.

Two things gymnasium 1.x makes easy to get wrong, handled here once:

**Termination is not truncation.** ``terminated[n, t]`` means the state after step ``t`` is
terminal: the return after it is exactly 0. ``truncated[n, t]`` means a time limit cut the
episode: the state after it is *not* terminal, and ``next_obs[n, t]`` holds it so that a value
baseline can bootstrap, :math:`G_t = r_t + \gamma V(s_{t+1})` (see
:func:`pglib.returns.reward_to_go_episodic` and :func:`pglib.returns.gae`).

**Next-step autoreset.** Vector environments (``CartPoleVectorEnv`` natively, ``SyncVectorEnv``
by default) reset an environment on the step *after* its episode ended: that call ignores the
action, returns reward 0 and the first observation of the next episode. That step is not data:
``mask[n, t]`` is False there, its reward is stored as 0 and it is not a *used* step.

**Simulated is not used.** In lockstep, an environment whose episode has ended keeps stepping
until the batch ends (its steps are masked out). ``VectorCollector.simulated_steps`` counts
every environment step the simulator ran (vector steps x environments), ``total_steps`` only
the used ones; a fair step count for a benchmark is the simulated one.

Example::

    envs = make_vec_env("CartPole-v1", num_envs=8)
    collector = VectorCollector(envs, seed=0)
    batch = collector.episodes(policy.sampler())     # one whole episode per environment
    batch.rewards.shape, batch.mask.sum()             # (8, T_max), real steps
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode

Sampler = Callable[[np.ndarray, np.random.Generator], np.ndarray]

EPISODE_STEP_CAP = 100_000  # vector steps after which an episode that has not ended is an error


def make_vec_env(env_id: str, num_envs: int, **kwargs) -> gym.vector.VectorEnv:
    """``gym.make_vec`` with the native vectorized implementation when the task has one
    (CartPole: ``vectorization_mode="vector_entry_point"``), else ``SyncVectorEnv``.

    ``AsyncVectorEnv`` is not used: on small machines its inter-process traffic costs more
    than the environments. Extra keyword arguments go to the environment (e.g. ``max_episode_steps``).
    """
    if int(num_envs) != num_envs or num_envs < 1:
        raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
    spec = gym.spec(env_id)
    mode = "vector_entry_point" if spec.vector_entry_point is not None else "sync"
    return gym.make_vec(env_id, num_envs=int(num_envs), vectorization_mode=mode, **kwargs)


@dataclass
class Batch:
    r"""Transitions from ``N`` environments over ``T`` vector steps (arrays are numpy).

    obs [N, T, obs_dim]; actions [N, T] (discrete) or [N, T, act_dim] (as sampled, before clipping);
    rewards [N, T] float64 (0 where ``mask`` is False); terminated, truncated, mask [N, T] bool;
    next_obs [N, T, obs_dim] (the true last observation at an episode's end, never a reset one);
    time [N, T] int: the index of step t within its episode (0 at an episode's first step; only
    meaningful where ``mask``), for the discount :math:`\gamma^t` of the discounted objective;
    episode_returns, episode_lengths [E]: undiscounted returns and lengths of the episodes that
    ended inside this batch; episode_end_steps [E]: the collector's used-step count when
    each ended (for learning curves against environment steps).
    """

    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    mask: np.ndarray
    next_obs: np.ndarray
    episode_returns: np.ndarray
    episode_lengths: np.ndarray
    episode_end_steps: np.ndarray
    time: np.ndarray

    @property
    def episode_end(self) -> np.ndarray:
        """``terminated | truncated``: an episode ends after step t, [N, T]."""
        return self.terminated | self.truncated

    @property
    def n_steps(self) -> int:
        """Number of real environment steps (``mask.sum()``)."""
        return int(self.mask.sum())

    @property
    def simulated_steps(self) -> int:
        """Environment steps the simulator ran for this batch, masked ones included (``mask.size``)."""
        return int(self.mask.size)


class VectorCollector:
    """Runs a policy in a vector environment; keeps the environment state between calls.

    ``seed`` fixes everything random in the collection: the environments' reset seeds and the
    numpy generator handed to the sampler. ``total_steps`` counts real (used) steps,
    ``simulated_steps`` every step the environments ran, masked ones included.
    """

    def __init__(self, envs: gym.vector.VectorEnv, seed: int = 0):
        mode = envs.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
        if mode != AutoresetMode.NEXT_STEP:
            raise ValueError(f"envs must use AutoresetMode.NEXT_STEP (gymnasium's default), got {mode!r}")
        if not isinstance(envs.single_action_space, (spaces.Discrete, spaces.Box)):
            raise ValueError(f"envs must have a Discrete or Box action space, got {envs.single_action_space!r}")
        self.envs = envs
        self.num_envs = envs.num_envs
        self.rng = np.random.default_rng(seed)
        space = envs.single_action_space
        self._clip = (space.low, space.high) if isinstance(space, spaces.Box) else None
        self.obs, _ = envs.reset(seed=int(seed))
        self._pending_reset = np.zeros(self.num_envs, dtype=bool)  # this env's next step is an autoreset step
        self._ep_return = np.zeros(self.num_envs)
        self._ep_length = np.zeros(self.num_envs, dtype=np.int64)
        self.total_steps = 0
        self.simulated_steps = 0

    def segment(self, sample: Sampler, n_steps: int) -> Batch:
        """``n_steps`` vector steps from wherever the environments are (episodes continue across calls).

        An episode still running at the end is cut by the segment, not by the task: bootstrap it
        from ``next_obs[:, -1]``.
        """
        if int(n_steps) != n_steps or n_steps < 1:
            raise ValueError(f"n_steps must be a positive integer, got {n_steps!r}")
        return self._run(sample, int(n_steps), stop_after_one_episode=False)

    def episodes(self, sample: Sampler, max_steps: int | None = None, steps_per_env: int | None = None) -> Batch:
        r"""Whole episodes, all starting from a fresh reset: one per environment (``steps_per_env=None``),
        or, with ``steps_per_env=k``, as many as each environment starts while it has taken fewer
        than ``k`` steps in this batch (every started episode is run to its end).

        Environments that finish early keep stepping (the vector steps in lockstep) but their
        steps are masked out. A batch of whole episodes is an unbiased sample of trajectories;
        keeping only the episodes that happen to finish inside a fixed step budget would
        over-represent short ones. The ``steps_per_env`` rule avoids that bias: whether an
        environment starts another episode depends only on the episodes it has *finished*, a
        stopping rule, so by Wald's identity the sum of the per-episode REINFORCE terms has
        expectation :math:`\mathbb E[K]\,\nabla J` (``K`` = episodes in the batch).
        It keeps environments busy: fewer masked, wasted steps than one episode each.
        """
        if steps_per_env is not None and (int(steps_per_env) != steps_per_env or steps_per_env < 1):
            raise ValueError(f"steps_per_env must be a positive integer or None, got {steps_per_env!r}")
        if max_steps is None:  # an episode that never ends would loop forever: stop at a stated cap
            max_steps, cap = EPISODE_STEP_CAP, True
        else:
            cap = False
        self.obs, _ = self.envs.reset()
        self._pending_reset[:] = False
        self._ep_return[:] = 0.0
        self._ep_length[:] = 0
        batch = self._run(sample, max_steps, stop_after_one_episode=True,
                          steps_per_env=None if steps_per_env is None else int(steps_per_env))
        if cap and batch.mask[:, -1].any() and not batch.episode_end[:, -1][batch.mask[:, -1]].all():
            raise ValueError(f"environment {_env_name(self.envs)}: an episode did not end within "
                             f"EPISODE_STEP_CAP = {EPISODE_STEP_CAP} steps; expected episodes that end "
                             "(give the task a time limit, e.g. max_episode_steps, or pass max_steps)")
        return batch

    def _run(self, sample: Sampler, n_steps: int | None, stop_after_one_episode: bool,
             steps_per_env: int | None = None) -> Batch:
        # The loop only stores what the environments return; masks, rewards and episode records are
        # computed afterwards with whole-array operations (fewer Python-level calls per vector step).
        N = self.num_envs
        obs_l, act_l, rew_l, term_l, trunc_l, real_l, next_l = [], [], [], [], [], [], []
        active = np.ones(N, dtype=bool)  # episodes mode: this env may still take real steps
        taken = np.zeros(N, dtype=np.int64)  # steps_per_env: real steps of each env in this batch
        pending = self._pending_reset
        clip, rng, obs = self._clip, self.rng, self.obs
        env_step = self.envs.step
        step = (lambda a: env_step(np.clip(a, *clip).astype(np.float32))) if clip else env_step
        obs_a, act_a, rew_a, term_a, trunc_a = (obs_l.append, act_l.append, rew_l.append, term_l.append,
                                                trunc_l.append)
        real_a, next_a = real_l.append, next_l.append
        one_episode = stop_after_one_episode and steps_per_env is None
        t = 0
        if one_episode:
            # Fast path for one episode per environment. episodes() has just reset the environments, so
            # no step is an autoreset step and a step is real exactly while its environment's first
            # episode has not ended: the loop only tracks `done`, and the mask is rebuilt afterwards
            # from the stored terminated/truncated flags (same batch as the general loop below).
            done = np.zeros(N, dtype=bool)
            while n_steps is None or t < n_steps:
                actions = sample(obs, rng)
                next_obs, reward, terminated, truncated, _ = step(actions)
                obs_a(obs); act_a(actions); rew_a(reward); term_a(terminated); trunc_a(truncated); next_a(next_obs)
                obs = next_obs
                t += 1
                done |= terminated
                done |= truncated
                if done.all():
                    break
            term_all, trunc_all = np.stack(term_l, axis=1), np.stack(trunc_l, axis=1)
            ended = term_all | trunc_all
            mask = np.cumsum(ended, axis=1) - ended == 0  # no episode end strictly before step t, per env
            pending = ended[:, -1].copy()
        while not one_episode and (n_steps is None or t < n_steps) and active.any():
            actions = sample(obs, rng)
            next_obs, reward, terminated, truncated, _ = step(actions)
            real = active & ~pending
            ended = terminated | truncated
            obs_a(obs); act_a(actions); rew_a(reward); term_a(terminated)
            trunc_a(truncated); real_a(real); next_a(next_obs)
            if stop_after_one_episode:  # with steps_per_env (one episode each took the fast path above)
                taken += real
                active &= ~(ended & real & (taken >= steps_per_env))
            pending = ended  # the env resets itself on its next step
            obs = next_obs
            t += 1
        self.obs, self._pending_reset = obs, pending
        if not one_episode:
            mask = np.stack(real_l, axis=1)
            term_all, trunc_all = np.stack(term_l, axis=1), np.stack(trunc_l, axis=1)
        rewards = np.where(mask, np.stack(rew_l, axis=1), 0.0).astype(np.float64)
        if not np.isfinite(rewards).all():
            n, t = np.argwhere(~np.isfinite(rewards))[0]
            raise ValueError(f"environment {_env_name(self.envs)} returned a non-finite reward "
                             f"{rewards[n, t]} (environment {n}, vector step {t}); expected finite "
                             "rewards: one infinite return makes every gradient NaN")
        terminated = term_all & mask
        truncated = trunc_all & mask
        # episode records, in the order the episodes ended (time, then environment)
        steps_after = self.total_steps + np.cumsum(mask.sum(axis=0))  # collector's step count after each t
        end = terminated | truncated
        ret, length = self._ep_return.copy(), self._ep_length.copy()
        self._ep_length_at_start = length.copy()
        ep_returns, ep_lengths, ep_steps = [], [], []
        cum_r = np.cumsum(rewards, axis=1)
        cum_n = np.cumsum(mask, axis=1)
        last_r, last_n = np.zeros(N), np.zeros(N, dtype=np.int64)  # cumulative sums at each env's last episode end
        ts, ns = np.nonzero(end.T)
        for t_end, n in zip(ts.tolist(), ns.tolist()):
            ep_returns.append(ret[n] + cum_r[n, t_end] - last_r[n])
            ep_lengths.append(length[n] + cum_n[n, t_end] - last_n[n])
            ep_steps.append(steps_after[t_end])
            ret[n], length[n] = 0.0, 0
            last_r[n], last_n[n] = cum_r[n, t_end], cum_n[n, t_end]
        self._ep_return = ret + cum_r[:, -1] - last_r
        self._ep_length = length + cum_n[:, -1] - last_n
        self.total_steps = int(steps_after[-1])
        self.simulated_steps += int(mask.size)
        return Batch(
            obs=np.stack(obs_l, axis=1),
            actions=np.stack(act_l, axis=1),
            rewards=rewards,
            terminated=terminated,
            truncated=truncated,
            mask=mask,
            next_obs=np.stack(next_l, axis=1),
            episode_returns=np.asarray(ep_returns, dtype=np.float64),
            episode_lengths=np.asarray(ep_lengths, dtype=np.int64),
            episode_end_steps=np.asarray(ep_steps, dtype=np.int64),
            time=_episode_time(mask, end, self._ep_length_at_start),
        )


def _env_name(envs: gym.vector.VectorEnv) -> str:
    spec = getattr(envs, "spec", None)
    return repr(spec.id) if spec is not None else type(envs).__name__


def _episode_time(mask: np.ndarray, end: np.ndarray, carried: np.ndarray) -> np.ndarray:
    """Index of each step within its episode, [N, T]: the number of real steps since the episode
    began (``carried[n]`` steps before this batch for an episode that continues into it)."""
    n_real = np.cumsum(mask, axis=1)  # real steps up to and including t
    before = np.where(end, n_real, 0)  # at an episode's last step: the real steps up to its end
    began = np.maximum.accumulate(np.concatenate([np.zeros((len(mask), 1), np.int64), before[:, :-1]],
                                                 axis=1), axis=1)
    first = began == 0  # still in the episode that was running when the batch began
    return np.where(first, carried[:, None], 0) + n_real - began - 1


def evaluate(act: Callable[[np.ndarray], np.ndarray], env_id: str, episodes: int = 20, seed: int = 10_000,
             max_steps: int = EPISODE_STEP_CAP, **env_kwargs) -> np.ndarray:
    """Undiscounted returns of ``episodes`` fresh episodes of ``act`` (``obs [B, obs_dim] -> actions``),
    one per environment of a new vector environment reset with seeds ``seed, seed + 1, ...``.

    A separate environment, so that evaluating leaves training untouched; the same seeds every
    time, so that two evaluations differ only through the policy (and ``act``'s own randomness).
    Box actions are clipped to the bounds, as in training.
    """
    if int(episodes) != episodes or episodes < 1:
        raise ValueError(f"episodes must be a positive integer, got {episodes!r}")
    envs = make_vec_env(env_id, int(episodes), **env_kwargs)
    space = envs.single_action_space
    try:
        obs, _ = envs.reset(seed=int(seed))
        returns, running = np.zeros(envs.num_envs), np.ones(envs.num_envs, dtype=bool)
        for _ in range(int(max_steps)):
            actions = act(obs)
            if isinstance(space, spaces.Box):
                actions = np.clip(actions, space.low, space.high).astype(np.float32)
            obs, reward, terminated, truncated, _ = envs.step(actions)
            returns += np.where(running, reward, 0.0)
            running &= ~(terminated | truncated)
            if not running.any():
                return returns
    finally:
        envs.close()
    raise ValueError(f"environment {env_id!r}: an evaluation episode did not end within {max_steps} steps; "
                     "expected episodes that end (give the task a time limit)")
