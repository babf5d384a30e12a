"""Finite Markov decision processes, small named problems, and a gymnasium view.

A :class:`TabularMDP` is the problem every exact computation in pglib runs on:
transition probabilities ``P[s, a, s']``, expected rewards ``r[s, a]`` (the ``rewards`` tensor), an initial
distribution ``mu0[s]``, a discount ``gamma`` and an optional finite ``horizon``.

Objective (the book's convention):

- ``horizon=T``:    :math:`J = \\mathbb{E}[\\sum_{t=0}^{T-1} \\gamma^t r_t]`, any gamma in [0, 1];
- ``horizon=None``: :math:`J = \\mathbb{E}[\\sum_{t=0}^{\\infty} \\gamma^t r_t]`, gamma < 1.

Terminal states are absorbing with zero reward, so the formulas above need no special
case for them; samplers and the gymnasium view end an episode when one is entered.
"""

from __future__ import annotations

from typing import Sequence

import gymnasium as gym
import numpy as np
import torch

from pglib import validate

__all__ = ["DTYPE", "TabularMDP", "TabularEnv", "as_float64", "bandit", "chain", "two_state", "random_mdp",
           "short_corridor",
           "SequenceMDP", "sequence_problem"]

DTYPE = validate.DTYPE  # defined once, in pglib.validate


def as_float64(x, name: str) -> torch.Tensor:
    """``x`` (array-like or tensor) as a finite float64 tensor (see :func:`pglib.validate.floats`)."""
    return validate.floats(x, name)


class TabularMDP:
    """A finite MDP with validated, float64 torch tensors.

    Args:
        transitions: ``P``, shape ``[S, A, S]``; ``P[s, a]`` is a distribution over next states.
        rewards: ``R``, shape ``[S, A]``, expected reward of taking ``a`` in ``s``.
        initial: ``mu0``, shape ``[S]``, distribution of the first state.
        gamma: discount in ``[0, 1]``; must be ``< 1`` when ``horizon is None``.
        horizon: number of decisions ``T`` (finite horizon), or ``None`` (infinite horizon).
        terminal: optional boolean mask ``[S]`` of terminal states (absorbing, zero reward).
        state_names, action_names: optional labels for figures.

    Example::

        >>> P = [[[1.0, 0.0], [0.0, 1.0]], [[0.0, 1.0], [0.0, 1.0]]]
        >>> mdp = TabularMDP(P, rewards=[[0.0, 1.0], [0.0, 0.0]], initial=[1.0, 0.0],
        ...                  gamma=0.9, horizon=None, terminal=[False, True])
        >>> mdp.n_states, mdp.n_actions
        (2, 2)
    """

    def __init__(
        self,
        transitions,
        rewards,
        initial,
        gamma: float,
        horizon: int | None = None,
        terminal=None,
        state_names: Sequence[str] | None = None,
        action_names: Sequence[str] | None = None,
    ) -> None:
        # copies: the caller's tensors can change afterwards without changing this MDP
        P = validate.floats(transitions, "transitions", ndim=3, copy=True)
        if P.shape[0] != P.shape[2] or P.shape[0] == 0 or P.shape[1] == 0:
            raise ValueError(f"transitions must have shape [S, A, S] with S, A >= 1; got {tuple(P.shape)}")
        S, A = P.shape[0], P.shape[1]
        validate.distribution(P, "transitions", "rows P[s, a, :]")
        R = validate.floats(rewards, "rewards", copy=True)
        if tuple(R.shape) != (S, A):
            raise ValueError(f"rewards must have shape [S, A] = [{S}, {A}] to match transitions; got {tuple(R.shape)}")
        mu0 = validate.floats(initial, "initial", copy=True)
        if tuple(mu0.shape) != (S,):
            raise ValueError(f"initial must have shape [S] = [{S}]; got {tuple(mu0.shape)}")
        validate.distribution(mu0, "initial", "entries")
        gamma = validate.gamma(gamma)
        if horizon is None:
            if gamma >= 1.0:
                raise ValueError(
                    "gamma must be < 1 when horizon=None (infinite horizon): the return would not be finite; "
                    "give a finite horizon to use gamma=1"
                )
        else:
            horizon = validate.steps(horizon, "horizon")
        if terminal is None:
            term = torch.zeros(S, dtype=torch.bool)
        else:
            term = validate.mask(terminal, "terminal", shape=(S,)).clone()
            for s in torch.nonzero(term).flatten().tolist():
                if not torch.allclose(P[s, :, s], torch.ones(A, dtype=DTYPE), atol=1e-9):
                    raise ValueError(f"terminal state {s} must be absorbing: P[{s}, a, {s}] = 1 for every action")
                if R[s].abs().max() > 0:
                    raise ValueError(f"terminal state {s} must have zero reward; got rewards {R[s].tolist()}")
        for label, names, n in (("state_names", state_names, S), ("action_names", action_names, A)):
            if names is None:
                continue
            if isinstance(names, str) or not all(isinstance(x, str) for x in names):
                raise validate.ArgumentTypeError(f"{label} must be a sequence of {n} strings; got {validate.describe(names)}")
            if len(names) != n:
                raise ValueError(f"{label} must have {n} entries, got {len(names)}")
        fields = dict(transitions=P, rewards=R, initial=mu0, terminal=term, gamma=gamma, horizon=horizon,
                      state_names=list(state_names) if state_names is not None else [f"s{i}" for i in range(S)],
                      action_names=list(action_names) if action_names is not None else [f"a{i}" for i in range(A)])
        for key, value in fields.items():
            object.__setattr__(self, key, value)
        object.__setattr__(self, "_versions", validate.versions(P, R, mu0, term))

    def __setattr__(self, key, value) -> None:
        raise AttributeError(f"a TabularMDP cannot be changed after it is built (it was checked then); "
                             f"make a changed copy instead: mdp.with_({key}=...)")

    __delattr__ = __setattr__

    def _recheck(self, name: str = "mdp") -> None:
        """Check again if a tensor was edited in place since the last check (see
        :func:`pglib.validate.unchanged`): the same errors as the constructor."""
        now = validate.versions(self.transitions, self.rewards, self.initial, self.terminal)
        if now == self._versions:
            return
        try:
            self.with_()
        except (TypeError, ValueError) as e:
            raise type(e)(f"{name} was edited in place after it was built and is no longer a valid "
                          f"TabularMDP: {e}") from None
        object.__setattr__(self, "_versions", now)

    @property
    def n_states(self) -> int:
        return self.transitions.shape[0]

    @property
    def n_actions(self) -> int:
        return self.transitions.shape[1]

    def __repr__(self) -> str:
        h = "infinite" if self.horizon is None else self.horizon
        return f"TabularMDP(S={self.n_states}, A={self.n_actions}, gamma={self.gamma}, horizon={h}, terminal={self.terminal.sum().item()})"

    def check_logits(self, logits) -> torch.Tensor:
        """Validate softmax-policy logits ``[S, A]`` and return them as float64 (differentiable)."""
        return validate.mdp_logits(self, logits)

    def policy(self, logits) -> torch.Tensor:
        """Softmax policy ``pi[s, a]`` from logits ``[S, A]`` (differentiable)."""
        return torch.softmax(self.check_logits(logits), dim=-1)

    def with_(self, **changes) -> "TabularMDP":
        """A copy with some fields replaced, e.g. ``mdp.with_(gamma=1.0, horizon=20)``."""
        fields = dict(
            transitions=self.transitions, rewards=self.rewards, initial=self.initial, gamma=self.gamma,
            horizon=self.horizon, terminal=self.terminal, state_names=self.state_names, action_names=self.action_names,
        )
        fields.update(changes)
        return TabularMDP(**fields)

    def to_env(self) -> "TabularEnv":
        """A gymnasium ``Env`` that samples this MDP (see :class:`TabularEnv`)."""
        return TabularEnv(self)


class TabularEnv(gym.Env):
    """Gymnasium view of a :class:`TabularMDP`.

    Observations and actions are integers (``Discrete``). ``terminated`` is True when a
    terminal state is entered, and also after ``mdp.horizon`` steps: in a finite-horizon MDP the
    objective itself stops at ``T`` (nothing is left to bootstrap), so the horizon is part of the
    problem, not an outside time limit. ``truncated`` is always False; to cut an infinite-horizon
    MDP short, wrap it in ``gymnasium.wrappers.TimeLimit``, which reports truncation correctly.
    """

    metadata = {"render_modes": []}

    def __init__(self, mdp: TabularMDP) -> None:
        self.mdp = validate.instance(mdp, "mdp", TabularMDP)
        self.observation_space = gym.spaces.Discrete(mdp.n_states)
        self.action_space = gym.spaces.Discrete(mdp.n_actions)
        self._P = mdp.transitions.numpy()
        self._R = mdp.rewards.numpy()
        self._mu0 = mdp.initial.numpy()
        self._terminal = mdp.terminal.numpy()
        self._state = 0
        self._t = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._state = int(self.np_random.choice(self.mdp.n_states, p=self._mu0))
        self._t = 0
        return self._state, {}

    def step(self, action):
        a = validate.nonnegative_int(action, "action", maximum=self.mdp.n_actions - 1)
        s = self._state
        reward = float(self._R[s, a])
        self._state = int(self.np_random.choice(self.mdp.n_states, p=self._P[s, a]))
        self._t += 1
        terminated = bool(self._terminal[self._state]) or (self.mdp.horizon is not None and self._t >= self.mdp.horizon)
        return self._state, reward, terminated, False, {}


# ----------------------------------------------------------------------------- named problems


def bandit(means: Sequence[float] = (1.0, 0.8, 0.2), gamma: float = 1.0) -> TabularMDP:
    """A one-step multi-armed bandit: one state, ``len(means)`` arms, reward ``means[a]``, horizon 1."""
    means = validate.floats(means, "means", ndim=1)
    if means.numel() < 2:
        raise ValueError(f"means must be a 1-D sequence with at least 2 arms; got shape {tuple(means.shape)}")
    A = means.numel()
    return TabularMDP(torch.ones(1, A, 1, dtype=DTYPE), means[None, :], torch.ones(1, dtype=DTYPE), gamma=gamma,
                      horizon=1, action_names=[f"arm {a}" for a in range(A)])


def chain(n_states: int = 5, slip: float = 0.1, gamma: float = 0.9, horizon: int | None = None,
          left_reward: float = 0.2, right_reward: float = 1.0) -> TabularMDP:
    """A chain with a trap: ``left`` (action 0) and ``right`` (action 1) move one state, slipping the
    other way with probability ``slip``. Taking ``left`` at the left end pays a small
    ``left_reward``; taking ``right`` at the right end pays ``right_reward``. Start at the left end."""
    S = validate.positive_int(n_states, "n_states", minimum=2)
    slip = validate.probability(slip, "slip")
    left_reward, right_reward = validate.real(left_reward, "left_reward"), validate.real(right_reward, "right_reward")
    validate.memory(validate.nbytes(S, 2, S), f"chain(n_states={S}) (transitions [S, 2, S])")
    P = torch.zeros(S, 2, S, dtype=DTYPE)
    for s in range(S):
        left, right = max(s - 1, 0), min(s + 1, S - 1)
        P[s, 0, left] += 1 - slip
        P[s, 0, right] += slip
        P[s, 1, right] += 1 - slip
        P[s, 1, left] += slip
    R = torch.zeros(S, 2, dtype=DTYPE)
    R[0, 0] = left_reward
    R[S - 1, 1] = right_reward
    mu0 = torch.zeros(S, dtype=DTYPE)
    mu0[0] = 1.0
    return TabularMDP(P, R, mu0, gamma=gamma, horizon=horizon, action_names=["left", "right"])


def two_state(gamma: float = 0.9, horizon: int | None = None) -> TabularMDP:
    """Two states, two actions: ``stay`` (0) or ``switch`` (1), each succeeding with probability 0.9.
    Staying in state 0 pays 1; switching out of state 1 pays 2; everything else pays 0."""
    P = torch.tensor(
        [[[0.9, 0.1], [0.1, 0.9]],
         [[0.1, 0.9], [0.9, 0.1]]], dtype=DTYPE)
    R = torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=DTYPE)
    return TabularMDP(P, R, torch.tensor([0.5, 0.5], dtype=DTYPE), gamma=gamma, horizon=horizon,
                      action_names=["stay", "switch"])


def random_mdp(n_states: int = 5, n_actions: int = 3, seed: int = 0, gamma: float = 0.9,
               horizon: int | None = None, concentration: float = 1.0) -> TabularMDP:
    """A random MDP: transition rows from a Dirichlet(``concentration``), rewards uniform in [0, 1),
    initial distribution from a Dirichlet(1). Reproducible from ``seed``."""
    n_states, n_actions = validate.positive_int(n_states, "n_states"), validate.positive_int(n_actions, "n_actions")
    concentration = validate.real(concentration, "concentration", low=0.0, low_open=True)
    validate.memory(validate.nbytes(n_states, n_actions, n_states),
                    f"random_mdp(n_states={n_states}, n_actions={n_actions}) (transitions [S, A, S])")
    rng = np.random.default_rng(validate.seed(seed))
    P = rng.dirichlet(np.full(n_states, concentration), size=(n_states, n_actions))
    R = rng.uniform(0.0, 1.0, size=(n_states, n_actions))
    mu0 = rng.dirichlet(np.ones(n_states))
    return TabularMDP(P, R, mu0, gamma=gamma, horizon=horizon)


def short_corridor(gamma: float = 1.0, horizon: int | None = 100) -> TabularMDP:
    """The short corridor with switched actions (Sutton & Barto 2018, Example 13.1).

    Three non-terminal states and a terminal goal (state 3); reward -1 per step. Action 0 is
    ``left``, action 1 is ``right``, except in state 1 where they are switched. ``left`` in state 0
    stays put. The states look identical to the agent, so the policy is one row of logits shared by
    all states (``logits = theta.expand(4, 2)``); then the best policy is stochastic, with
    ``P(right) = 2 - sqrt(2) ~ 0.586`` for ``gamma = 1`` and an infinite horizon.
    """
    S, A = 4, 2
    P = torch.zeros(S, A, S, dtype=DTYPE)
    P[0, 0, 0] = 1.0
    P[0, 1, 1] = 1.0
    P[1, 0, 2] = 1.0  # switched: "left" moves right
    P[1, 1, 0] = 1.0
    P[2, 0, 1] = 1.0
    P[2, 1, 3] = 1.0
    P[3, :, 3] = 1.0
    R = torch.full((S, A), -1.0, dtype=DTYPE)
    R[3] = 0.0
    mu0 = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=DTYPE)
    return TabularMDP(P, R, mu0, gamma=gamma, horizon=horizon, terminal=[False, False, False, True],
                      state_names=["start", "switched", "last", "goal"], action_names=["left", "right"])


# ----------------------------------------------------------------------------- sequence problems


class SequenceMDP(TabularMDP):
    """A :class:`TabularMDP` whose states are (prompt, prefix): a language model in miniature.

    Made by :func:`sequence_problem`; besides the MDP it records, per state ``s``,
    ``prompt[s]`` (the prompt index, ``-1`` for the end state) and ``depth[s]`` (the prefix
    length), and ``eos`` (the end-of-sequence action) and ``targets`` (the prompts' answers).
    A trajectory is one response: its sequence reward is ``traj.rewards.sum(1)`` and its length
    ``|o| = traj.lengths`` (tokens, the end token included). ``with_`` returns a plain
    :class:`TabularMDP`.
    """

    prompt: torch.Tensor
    depth: torch.Tensor
    eos: int
    targets: tuple

    @property
    def n_prompts(self) -> int:
        return len(self.targets)

    def prompts_of(self, states: torch.Tensor) -> torch.Tensor:
        """The prompt of each trajectory, ``[N]``, from its states ``[N, T]``."""
        return self.prompt[states[:, 0]]


def sequence_problem(targets: Sequence[int] = (0, 1, 2), vocab_size: int = 2, max_length: int = 3,
                     prompt_probs: Sequence[float] | None = None) -> SequenceMDP:
    r"""Prompts, responses of variable length, and a verifiable reward: a tabular LLM.

    Prompt ``q`` asks for a response with exactly ``targets[q]`` copies of the last content
    token (``"b"`` for the default two-token vocabulary ``a, b``). A response is a sequence of
    tokens from ``vocab_size`` content tokens and an end token ``<eos>`` (action 0), at most
    ``max_length`` tokens; it is right (reward 1, paid on ``<eos>``) when it ends with
    ``<eos>`` and holds the target count, and wrong (reward 0) otherwise, in particular when it
    runs to ``max_length`` content tokens without ending. So prompts differ in difficulty
    (target 0 is easy: one token suffices; a large target needs a long answer) and length
    matters (right answers are short for easy prompts, wrong answers include every truncated
    one).

    States: one per (prompt, prefix) with prefix length below ``max_length``, plus one absorbing
    end state; transitions are deterministic; ``gamma = 1`` and ``horizon = max_length``, so
    :math:`J = \mathbb E_q\,\mathbb E_{o\sim\pi(\cdot|q)}[r(q, o)]` and every response can be
    enumerated (:func:`pglib.enumeration.all_trajectories`): ``n_prompts *
    (V^(L+1) - 1) / (V - 1)`` of them for ``V = vocab_size``, ``L = max_length``.

    Args:
        targets: per prompt, the required count of the last content token (``0 <= target <= L-1``).
        vocab_size: content tokens ``V >= 1`` (actions ``1..V``; action 0 is ``<eos>``).
        max_length: ``L``, the most tokens of a response.
        prompt_probs: the prompts' distribution (default uniform).

    Example::

        >>> m = sequence_problem()
        >>> m.n_states, m.n_actions, m.horizon
        (22, 3, 3)
    """
    if isinstance(targets, (str, bytes)) or not hasattr(targets, "__len__") or len(targets) == 0:
        raise validate.ArgumentTypeError(f"targets must be a non-empty sequence of integers; "
                                         f"got {validate.describe(targets)}")
    V = validate.positive_int(vocab_size, "vocab_size")
    L = validate.positive_int(max_length, "max_length")
    targets = tuple(validate.nonnegative_int(t, f"targets[{i}]", maximum=L - 1) for i, t in enumerate(targets))
    Q = len(targets)
    per_prompt = sum(V ** d for d in range(L))  # prefixes of length 0..L-1
    S = Q * per_prompt + 1
    validate.memory(validate.nbytes(S, V + 1, S), f"sequence_problem with {S} states (transitions [S, A, S])")
    if prompt_probs is None:
        mu_q = torch.full((Q,), 1.0 / Q, dtype=DTYPE)
    else:
        mu_q = validate.floats(prompt_probs, "prompt_probs", ndim=1)
        if mu_q.numel() != Q:
            raise ValueError(f"prompt_probs must have one entry per prompt ({Q}); got {mu_q.numel()}")
        validate.distribution(mu_q, "prompt_probs", "entries")
    names = [chr(ord("a") + v) if V <= 26 else f"t{v}" for v in range(V)]
    end = S - 1
    P = torch.zeros(S, V + 1, S, dtype=DTYPE)
    R = torch.zeros(S, V + 1, dtype=DTYPE)
    prompt = torch.full((S,), -1, dtype=torch.long)
    depth = torch.zeros(S, dtype=torch.long)
    state_names = [""] * S
    index = {}
    for q in range(Q):
        prefixes = [()]
        for d in range(L):
            for p in prefixes:
                index[(q, p)] = len(index)
            prefixes = [p + (v,) for p in prefixes for v in range(V)]
    for (q, p), s in index.items():
        prompt[s], depth[s] = q, len(p)
        state_names[s] = f"q{q}:" + "".join(names[v] for v in p)
        P[s, 0, end] = 1.0  # <eos> ends the response; right when the count matches
        R[s, 0] = float(sum(1 for v in p if v == V - 1) == targets[q])
        for v in range(V):
            nxt = index.get((q, p + (v,)), end)  # a full-length prefix is cut off (wrong)
            P[s, v + 1, nxt] = 1.0
    P[end, :, end] = 1.0
    state_names[end] = "end"
    mu0 = torch.zeros(S, dtype=DTYPE)
    mu0[[index[(q, ())] for q in range(Q)]] = mu_q
    terminal = torch.zeros(S, dtype=torch.bool)
    terminal[end] = True
    mdp = SequenceMDP(P, R, mu0, gamma=1.0, horizon=L, terminal=terminal, state_names=state_names,
                      action_names=["<eos>", *names])
    for key, value in dict(prompt=prompt, depth=depth, eos=0, targets=targets).items():
        object.__setattr__(mdp, key, value)  # a TabularMDP refuses later assignment
    return mdp
