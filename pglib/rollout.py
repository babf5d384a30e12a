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
``mask[n, t]`` is False there, its reward is stored as 0 and it is not counted as an
environment step.

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
    """Transitions from ``N`` environments over ``T`` vector steps (arrays are numpy).

    obs [N, T, obs_dim]; actions [N, T] (discrete) or [N, T, act_dim] (as sampled, before clipping);
    rewards [N, T] float64 (0 where ``mask`` is False); terminated, truncated, mask [N, T] bool;
    next_obs [N, T, obs_dim] (the true last observation at an episode's end, never a reset one);
    episode_returns, episode_lengths [E]: undiscounted returns and lengths of the episodes that
    ended inside this batch; episode_end_steps [E]: the collector's environment-step count when
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

    @property
    def episode_end(self) -> np.ndarray:
        """``terminated | truncated``: an episode ends after step t, [N, T]."""
        return self.terminated | self.truncated

    @property
    def n_steps(self) -> int:
        """Number of real environment steps (``mask.sum()``)."""
        return int(self.mask.sum())


class VectorCollector:
    """Runs a policy in a vector environment; keeps the environment state between calls.

    ``seed`` fixes everything random in the collection: the environments' reset seeds and the
    numpy generator handed to the sampler. ``total_steps`` counts real steps only.
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

    def segment(self, sample: Sampler, n_steps: int) -> Batch:
        """``n_steps`` vector steps from wherever the environments are (episodes continue across calls).

        An episode still running at the end is cut by the segment, not by the task: bootstrap it
        from ``next_obs[:, -1]``.
        """
        if int(n_steps) != n_steps or n_steps < 1:
            raise ValueError(f"n_steps must be a positive integer, got {n_steps!r}")
        return self._run(sample, int(n_steps), stop_after_one_episode=False)

    def episodes(self, sample: Sampler, max_steps: int | None = None) -> Batch:
        """One whole episode from each environment, all starting from a fresh reset.

        Environments that finish early keep stepping (the vector steps in lockstep) but their
        steps are masked out. A batch of whole episodes is an unbiased sample of trajectories;
        keeping only the episodes that happen to finish inside a fixed step budget would
        over-represent short ones.
        """
        self.obs, _ = self.envs.reset()
        self._pending_reset[:] = False
        self._ep_return[:] = 0.0
        self._ep_length[:] = 0
        return self._run(sample, max_steps, stop_after_one_episode=True)

    def _run(self, sample: Sampler, n_steps: int | None, stop_after_one_episode: bool) -> Batch:
        N = self.num_envs
        cols: dict[str, list[np.ndarray]] = {k: [] for k in ("obs", "actions", "rewards", "terminated", "truncated", "mask", "next_obs")}
        ep_returns, ep_lengths, ep_steps = [], [], []
        active = np.ones(N, dtype=bool)  # episodes mode: this env has not finished its episode yet
        t = 0
        while (n_steps is None or t < n_steps) and active.any():
            actions = sample(self.obs, self.rng)
            env_actions = np.clip(actions, *self._clip).astype(np.float32) if self._clip else actions
            next_obs, reward, terminated, truncated, _ = self.envs.step(env_actions)
            real = ~self._pending_reset & active
            done = (terminated | truncated) & real
            cols["obs"].append(self.obs)
            cols["actions"].append(actions)
            cols["rewards"].append(np.where(real, reward, 0.0))
            cols["terminated"].append(terminated & real)
            cols["truncated"].append(truncated & real)
            cols["mask"].append(real)
            cols["next_obs"].append(next_obs)
            self._ep_return += np.where(real, reward, 0.0)
            self._ep_length += real
            self.total_steps += int(real.sum())
            for n in np.flatnonzero(done):
                ep_returns.append(self._ep_return[n])
                ep_lengths.append(self._ep_length[n])
                ep_steps.append(self.total_steps)
            self._ep_return[done] = 0.0
            self._ep_length[done] = 0
            self._pending_reset = terminated | truncated  # the env resets itself on its next step
            if stop_after_one_episode:
                active &= ~done
            self.obs = next_obs
            t += 1
        stacked = {k: np.stack(v, axis=1) for k, v in cols.items()}
        stacked["rewards"] = stacked["rewards"].astype(np.float64)
        return Batch(
            **stacked,
            episode_returns=np.asarray(ep_returns, dtype=np.float64),
            episode_lengths=np.asarray(ep_lengths, dtype=np.int64),
            episode_end_steps=np.asarray(ep_steps, dtype=np.int64),
        )
