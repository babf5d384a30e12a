r"""Vectorized sampling of trajectories from a :class:`~pglib.mdp.TabularMDP` under a softmax policy.

All ``N`` trajectories advance together, one time step per loop iteration: there is no Python
loop over trajectories. Every random choice (the first state, each action, each next state) is
made by *inverse-CDF sampling* with one uniform draw :math:`u \sim U[0, 1)`: the choice is the
smallest index :math:`k` with :math:`F(k) > u`, where :math:`F` is the cumulative sum of the
row of probabilities. A trajectory of length ``T`` therefore costs exactly ``2 T`` uniforms
(one first state, ``T`` actions, ``T - 1`` transitions), all drawn in float64 from one
``torch.Generator``, so a batch is reproducible from its seed.

Batch layout (time is the last axis, as everywhere in pglib), :class:`Trajectories`:

==========  ===========  ====================================================================
field       shape        meaning
==========  ===========  ====================================================================
states      [N, T] long  :math:`s_t`; after a terminal state is entered it stays there
actions     [N, T] long  :math:`a_t`; still drawn (valid) at masked steps, but meaningless there
rewards     [N, T] f64   :math:`r_t = r(s_t, a_t)`; 0 at masked steps
mask        [N, T] bool  True where step ``t`` is a real decision (:math:`s_t` is not terminal)
logp        [N, T] f64   :math:`\log\pi(a_t|s_t)` under the sampling policy; 0 where ``mask`` is False
==========  ===========  ====================================================================

Horizon: for a finite-horizon MDP the batch has ``T = mdp.horizon`` steps. For an infinite-horizon
MDP a ``horizon`` must be given and is a *truncation*: the batch holds the first ``T`` steps
only, so discounted sums computed from it miss the tail :math:`\sum_{t \ge T} \gamma^t r_t`
(at most :math:`\gamma^T \max|r| / (1-\gamma)`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from pglib import validate
from pglib.mdp import DTYPE, TabularMDP

__all__ = ["Trajectories", "sample_trajectories", "iter_trajectories", "inverse_cdf_table", "make_generator",
           "resolve_horizon"]


@dataclass(frozen=True)
class Trajectories:
    """A batch of ``N`` trajectories of ``T`` steps (see the module docstring for the fields).

    ``logp`` may be ``None`` for hand-built batches; the estimators recompute scores from logits
    and never read it. ``n_states`` / ``n_actions`` are recorded by the sampler (the batch then is
    known to fit logits of that shape, which saves a validation pass); ``None`` for hand-built
    batches. The ``[N, T]`` fields made by the sampler are transposed views of time-major storage
    (not ``is_contiguous()``); use ``.reshape``, not ``.view``, on them.

    Example::

        >>> import torch
        >>> from pglib import mdp, sampling
        >>> m = mdp.short_corridor(horizon=10)
        >>> traj = sampling.sample_trajectories(m, torch.zeros(4, 2), n=3, seed=0)
        >>> traj.n, traj.horizon, traj.states.shape
        (3, 10, torch.Size([3, 10]))
    """

    states: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    mask: torch.Tensor
    logp: torch.Tensor | None = None
    n_states: int | None = None
    n_actions: int | None = None

    def __post_init__(self) -> None:
        # A hand-built batch is validated and copied (the caller keeps no handle on it); the
        # sampler builds its batches with trusted, skipping both.
        states = validate.integers(self.states, "states", ndim=2, copy=True)
        shape = tuple(states.shape)
        actions = validate.integers(self.actions, "actions", copy=True)
        rewards = validate.floats(self.rewards, "rewards", copy=True)
        mask = validate.mask(self.mask, "mask").clone()
        logp = None if self.logp is None else validate.floats(self.logp, "logp", copy=True)
        validate.same_shape("states", states, actions=actions, rewards=rewards, mask=mask,
                            **({} if logp is None else {"logp": logp}))
        if logp is not None and bool((logp[mask] > 1e-12).any()):
            raise ValueError(f"logp must hold log-probabilities (<= 0); the largest is {logp[mask].max().item():.4g}")
        if (self.n_states is None) != (self.n_actions is None):
            raise ValueError("give both n_states and n_actions, or neither")
        if self.n_states is not None:
            S = validate.positive_int(self.n_states, "n_states")
            A = validate.positive_int(self.n_actions, "n_actions")
            validate.integers(states, "states", high=S)
            validate.integers(actions, "actions", high=A)
            object.__setattr__(self, "n_states", S)
            object.__setattr__(self, "n_actions", A)
        for name, value in (("states", states), ("actions", actions), ("rewards", rewards), ("mask", mask),
                            ("logp", logp)):
            object.__setattr__(self, name, value)
        object.__setattr__(self, "_versions", self._current_versions())

    def _current_versions(self) -> tuple:
        return validate.versions(self.states, self.actions, self.rewards, self.mask, self.logp)

    def _recheck(self, name: str = "traj") -> None:
        """Check again if a tensor was edited in place since the last check (see
        :func:`pglib.validate.unchanged`): the same errors as the constructor."""
        now = self._current_versions()
        if now == self._versions:
            return
        try:
            Trajectories(self.states, self.actions, self.rewards, self.mask, self.logp, self.n_states,
                         self.n_actions)
        except (TypeError, ValueError) as e:
            raise type(e)(f"{name} was edited in place after it was built and is no longer a valid "
                          f"Trajectories batch: {e}") from None
        object.__setattr__(self, "_versions", now)

    @classmethod
    def trusted(cls, states, actions, rewards, mask, logp=None, n_states=None, n_actions=None) -> "Trajectories":
        """A batch from pglib's own samplers: fields known to be valid, not copied or checked again."""
        self = object.__new__(cls)
        for name, value in (("states", states), ("actions", actions), ("rewards", rewards), ("mask", mask),
                            ("logp", logp), ("n_states", n_states), ("n_actions", n_actions)):
            object.__setattr__(self, name, value)
        object.__setattr__(self, "_versions", self._current_versions())
        return self

    @property
    def masked_rewards(self) -> torch.Tensor:
        """``rewards`` with 0 at every masked step (what the estimators use: a value stored at a
        masked step never leaks into an estimate)."""
        if bool(self.mask.all()):
            return self.rewards
        return torch.where(self.mask, self.rewards, torch.zeros((), dtype=DTYPE))

    @property
    def n(self) -> int:
        """Number of trajectories ``N``."""
        return self.states.shape[0]

    @property
    def horizon(self) -> int:
        """Number of time steps ``T`` held (a truncation length for infinite-horizon MDPs)."""
        return self.states.shape[1]

    @property
    def lengths(self) -> torch.Tensor:
        """Number of real decisions in each trajectory, ``mask.sum(1)``, shape ``[N]``."""
        return self.mask.sum(1)

    def __getitem__(self, index) -> "Trajectories":
        """A sub-batch, e.g. ``traj[:100]`` (indexes the trajectory axis)."""
        if isinstance(index, (bool, np.bool_)) or isinstance(index, (str, float)):
            raise validate.ArgumentTypeError(f"index must be an integer, a slice or an index tensor; got {validate.describe(index)}")
        if isinstance(index, (int, np.integer)):
            i = int(index)
            if not -self.n <= i < self.n:
                raise IndexError(f"index {i} is out of range for a batch of {self.n} trajectories")
            i %= self.n
            index = slice(i, i + 1)
        pick = lambda x: None if x is None else x[index]  # noqa: E731
        return Trajectories.trusted(pick(self.states), pick(self.actions), pick(self.rewards), pick(self.mask),
                                     pick(self.logp), self.n_states, self.n_actions)

    @staticmethod
    def concatenate(parts: list["Trajectories"]) -> "Trajectories":
        """Join batches of the same horizon along the trajectory axis."""
        if isinstance(parts, Trajectories) or not parts:
            raise ValueError("parts must be a non-empty list of Trajectories batches")
        for i, p in enumerate(parts):
            validate.instance(p, f"parts[{i}]", Trajectories)
            if p.horizon != parts[0].horizon:
                raise ValueError(f"parts must share one horizon; parts[0] has T = {parts[0].horizon}, "
                                 f"parts[{i}] has T = {p.horizon}")
        logp = None if any(p.logp is None for p in parts) else torch.cat([p.logp for p in parts])
        return Trajectories.trusted(torch.cat([p.states for p in parts]), torch.cat([p.actions for p in parts]),
                                     torch.cat([p.rewards for p in parts]), torch.cat([p.mask for p in parts]), logp,
                                     *_common_shape(parts))


def _common_shape(parts: list[Trajectories]) -> tuple[int | None, int | None]:
    shapes = {(p.n_states, p.n_actions) for p in parts}
    return shapes.pop() if len(shapes) == 1 else (None, None)


def inverse_cdf_table(probs: torch.Tensor) -> torch.Tensor:
    r"""Cumulative sums along the last axis, made exact for inverse-CDF sampling.

    Returns ``F`` with ``F[..., k] = sum_{j<=k} p_j`` and ``F[..., k] = 1`` exactly from the last
    index with positive probability onwards, so ``#{k : F[k] <= u}`` for ``u`` in ``[0, 1)`` is
    always a valid index and never one of probability zero (rounding in ``cumsum`` cannot push
    ``u`` past the end of the row).

    Example: ``inverse_cdf_table([0.2, 0.8, 0.0]) == [0.2, 1.0, 1.0]``.
    """
    probs = validate.floats(probs, "probs", min_ndim=1)
    validate.distribution(probs, "probs", "rows (the last axis)")
    F = probs.cumsum(-1)
    # mass strictly after k; where it is exactly zero, no later index can be chosen: F = 1
    after = probs.flip(-1).cumsum(-1).flip(-1) - probs
    return torch.where(after <= 0, torch.ones_like(F), F)


def make_generator(seed: int | None = None, generator: torch.Generator | None = None) -> torch.Generator:
    """A ``torch.Generator`` from a seed, or the given generator (not both); fresh entropy if neither."""
    if generator is not None:
        if seed is not None:
            raise ValueError("give seed or generator, not both")
        return validate.instance(generator, "generator", torch.Generator, "a torch.Generator")
    seed = validate.seed(seed)
    g = torch.Generator()
    if seed is None:
        g.seed()
    else:
        g.manual_seed(seed)
    return g


_check_count = validate.positive_int  # the name pglib.fused imports


def resolve_horizon(mdp: TabularMDP, horizon) -> int:
    """The number of steps to sample: ``horizon``, or the MDP's own (required when it has none)."""
    validate.instance(mdp, "mdp", TabularMDP, "a TabularMDP")
    if horizon is None:
        if mdp.horizon is None:
            raise ValueError(
                "horizon is required for an infinite-horizon MDP (mdp.horizon is None): it is the truncation "
                "length T of the sampled trajectories"
            )
        return mdp.horizon
    return validate.steps(horizon, "horizon")


#: bytes per trajectory step held while sampling: uniforms 2 x 8, states/actions/pairs 3 x 8,
#: rewards and logp 2 x 8, the mask 1
_BYTES_PER_STEP = 57


def _check_size(n: int, T: int) -> None:
    validate.memory(validate.nbytes(n, T, itemsize=_BYTES_PER_STEP), f"sampling {n} trajectories of {T} steps")


class _Sampler:
    """Precomputed inverse-CDF tables for one (mdp, logits) pair."""

    def __init__(self, mdp: TabularMDP, logits, horizon: int) -> None:  # after resolve_horizon checked mdp
        with torch.no_grad():
            logits = mdp.check_logits(logits).detach()
            S, A = mdp.n_states, mdp.n_actions
            self.S, self.A, self.T = S, A, horizon
            self.log_pi = torch.log_softmax(logits, -1).reshape(-1).contiguous()  # [S*A]
            # threshold columns of the inverse-CDF tables, built once per (mdp, logits)
            self.policy_cols = self._columns(inverse_cdf_table(torch.softmax(logits, -1)))  # A-1 of [S]
            self.next_cols = self._columns(inverse_cdf_table(mdp.transitions.reshape(S * A, S)))  # S-1 of [S*A]
            self.initial_cols = self._columns(inverse_cdf_table(mdp.initial)[None, :])  # S-1 of [1]
            self.reward = mdp.rewards.reshape(-1).contiguous()  # [S*A]
            self.terminal = mdp.terminal.clone()
            self.any_terminal = bool(self.terminal.any())

    @staticmethod
    def _columns(cdf: torch.Tensor) -> list[torch.Tensor]:
        # one contiguous vector per threshold column but the last (F = 1): the choice is sum_k 1[u >= F[row, k]]
        return [cdf[..., k].contiguous() for k in range(cdf.shape[-1] - 1)]

    @staticmethod
    def _choose(columns: list[torch.Tensor], rows: torch.Tensor, u: torch.Tensor, out: torch.Tensor,
                buf: torch.Tensor) -> torch.Tensor:
        """Inverse-CDF choice ``#{k : F[rows, k] <= u}`` for every entry of ``u``, written into ``out``.

        The last threshold (F = 1) is not in ``columns``: it is never <= u < 1. ``buf`` is float64 scratch.
        """
        if not columns:
            return out.zero_()
        torch.ge(u, torch.index_select(columns[0], 0, rows, out=buf), out=out)
        for col in columns[1:]:
            out.add_(u >= torch.index_select(col, 0, rows, out=buf))
        return out

    def sample(self, n: int, gen: torch.Generator, group_size: int = 1) -> Trajectories:
        S, A, T = self.S, self.A, self.T
        # one uniform per choice; row j of u is the j-th choice of every trajectory:
        # s_0, a_0, s_1, a_1, ..., s_{T-1}, a_{T-1}
        u = torch.rand(2 * T, n, generator=gen, dtype=DTYPE)
        policy_cols, next_cols = self.policy_cols, self.next_cols
        # time-major storage [T, N]: each step writes one contiguous row; the batch is returned as
        # [N, T] views (.T) of it, so loops over time (reward_to_go) also touch contiguous rows.
        states = torch.empty(T, n, dtype=torch.long)
        actions = torch.empty(T, n, dtype=torch.long)
        pairs = torch.empty(T, n, dtype=torch.long)  # s_t * A + a_t
        buf = torch.empty(n, dtype=DTYPE)
        if group_size == 1:
            s = self._choose(self.initial_cols, torch.zeros(n, dtype=torch.long), u[0], states[0], buf)
        else:  # one first state per group, from the group's first uniform, shared by its G members
            k = n // group_size
            first = self._choose(self.initial_cols, torch.zeros(k, dtype=torch.long), u[0, ::group_size].contiguous(),
                                 torch.empty(k, dtype=torch.long), torch.empty(k, dtype=DTYPE))
            s = states[0]
            s.copy_(first.repeat_interleave(group_size))
        for t in range(T):
            if t > 0:
                s = self._choose(next_cols, pairs[t - 1], u[2 * t], states[t], buf)
                if self.any_terminal:  # terminal states are absorbing: keep them explicitly
                    stay = self.terminal.index_select(0, states[t - 1])
                    s.copy_(torch.where(stay, states[t - 1], s))
            a = self._choose(policy_cols, s, u[2 * t + 1], actions[t], buf)
            torch.add(a, s, alpha=A, out=pairs[t])
        flat = pairs.view(-1)
        rewards = self.reward.index_select(0, flat).view(T, n)
        logp = self.log_pi.index_select(0, flat).view(T, n)
        if self.any_terminal:
            mask = ~self.terminal.index_select(0, states.view(-1)).view(T, n)
            rewards.masked_fill_(~mask, 0.0)
            logp.masked_fill_(~mask, 0.0)
        else:
            mask = torch.ones(T, n, dtype=torch.bool)
        return Trajectories.trusted(states.T, actions.T, rewards.T, mask.T, logp.T, n_states=S, n_actions=A)


def sample_trajectories(mdp: TabularMDP, logits, n: int, seed: int | None = None, *,
                        generator: torch.Generator | None = None, horizon: int | None = None,
                        group_size: int | None = None) -> Trajectories:
    r"""Sample ``n`` trajectories of ``mdp`` under the softmax policy :math:`\pi = \mathrm{softmax}(\text{logits})`.

    Args:
        mdp: the problem.
        logits: ``[S, A]`` policy logits (not differentiated through).
        n: number of trajectories ``N >= 1``.
        seed: integer seed (or give ``generator``, a ``torch.Generator`` that is advanced).
        horizon: number of steps ``T``; defaults to ``mdp.horizon``. Required when ``mdp.horizon`` is
            ``None``, where it truncates the infinite-horizon process after ``T`` steps.
        group_size: ``G`` (dividing ``n``): the batch is ``n // G`` consecutive groups of ``G``
            trajectories, each group sharing one first state (a prompt) drawn from
            ``mdp.initial``; within a group the responses are independent given that state, as
            in GRPO-style training. ``None`` or 1: every first state is drawn independently
            (the same batch as without the argument).

    Returns:
        :class:`Trajectories` with ``[N, T]`` fields. Steps at or after entering a terminal state
        have ``mask = False``, reward 0 and ``logp = 0``; the state stays terminal.

    The same seed gives the same batch. Uniforms are drawn choice by choice across the batch
    (a ``[2T, N]`` block), so the batch depends on ``n``: the first 10 of ``n=100`` are not the
    trajectories of ``n=10``.

    Example::

        >>> import torch
        >>> from pglib import mdp
        >>> m = mdp.chain(5, horizon=20)
        >>> traj = sample_trajectories(m, torch.zeros(5, 2), n=1000, seed=0)
        >>> traj.rewards.shape
        torch.Size([1000, 20])
    """
    n = validate.positive_int(n, "n")
    G = validate.group_size(group_size, n)
    T = resolve_horizon(mdp, horizon)
    _check_size(n, T)
    gen = make_generator(seed, generator)
    return _Sampler(mdp, logits, T).sample(n, gen, G)


def iter_trajectories(mdp: TabularMDP, logits, n: int, chunk_size: int = 100_000, seed: int | None = None, *,
                      generator: torch.Generator | None = None, horizon: int | None = None) -> Iterator[Trajectories]:
    """Stream ``n`` trajectories as batches of at most ``chunk_size``, in bounded memory.

    Use it when ``N x T`` is too large to hold at once (e.g. 10^6 trajectories): reduce each chunk
    (sum of estimates, sum of squares) and drop it. Reproducible from ``(seed, chunk_size)``;
    a different ``chunk_size`` gives a different (equally distributed) batch.

    Example::

        total = sum(chunk.rewards.sum() for chunk in iter_trajectories(m, logits, 10**6, seed=0))
    """
    n = validate.positive_int(n, "n")
    chunk_size = validate.positive_int(chunk_size, "chunk_size")
    T = resolve_horizon(mdp, horizon)
    _check_size(min(n, chunk_size), T)
    gen = make_generator(seed, generator)
    # checked now, not when the first chunk is asked for
    return _chunks(_Sampler(mdp, logits, T), n, chunk_size, gen)


def _chunks(sampler: _Sampler, n: int, chunk_size: int, gen: torch.Generator) -> Iterator[Trajectories]:
    done = 0
    while done < n:
        m = min(chunk_size, n - done)
        yield sampler.sample(m, gen)
        done += m
