r"""Every trajectory of a small finite-horizon MDP, with its probability: exact expectations of estimators.

A Monte Carlo estimator is a function of one trajectory (or of a batch). For a small
finite-horizon :class:`~pglib.mdp.TabularMDP` the trajectories can be listed exhaustively,
so the expectation *and the variance* of any per-trajectory estimator are exact sums

.. math:: \mathbb{E}[f(\tau)] = \sum_\tau p_\theta(\tau)\, f(\tau), \qquad
          p_\theta(\tau) = \mu_0(s_0) \prod_{t} \pi_\theta(a_t|s_t)\, P(s_{t+1}|s_t, a_t).

This covers estimators with no closed form, e.g. one that standardizes the rewards-to-go
*within* each episode. The number of trajectories grows like ``(A * S)**T``; the
function refuses to build more than ``max_trajectories`` of them.

Layout: the same as a sampled batch (time is the last axis, ``[M, T]``), with
``mask[m, t]`` True where step ``t`` is a real decision (the state is not terminal);
after a terminal state is entered, actions are 0 and rewards 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pglib import validate
from pglib.mdp import DTYPE, TabularMDP
from pglib.sampling import Trajectories

__all__ = ["Enumeration", "all_trajectories"]

#: bytes held per (trajectory, step) of an enumeration: states, actions (8 each), rewards (8), mask (1)
_BYTES_PER_STEP = 25


@dataclass(frozen=True)
class Enumeration:
    """All trajectories of a finite-horizon MDP under a policy.

    Attributes: ``states``, ``actions`` (long ``[M, T]``), ``rewards`` (float64 ``[M, T]``),
    ``mask`` (bool ``[M, T]``), ``prob`` (float64 ``[M]``, sums to 1).
    """

    states: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    mask: torch.Tensor
    prob: torch.Tensor

    @property
    def trajectories(self):
        """The same trajectories as a :class:`pglib.sampling.Trajectories` batch (for the estimators)."""
        return Trajectories.trusted(self.states, self.actions, self.rewards, self.mask)

    def __len__(self) -> int:
        return self.prob.shape[0]

    def expectation(self, values: torch.Tensor) -> torch.Tensor:
        r""":math:`\sum_m p_m\, v_m` for per-trajectory ``values`` ``[M, ...]``; returns ``[...]``."""
        values = _check_values(values, len(self))
        return torch.einsum("m,m...->...", self.prob, values)

    def total_variance(self, values: torch.Tensor) -> torch.Tensor:
        r"""Trace of the covariance, :math:`\mathbb{E}\|v - \mathbb{E}v\|^2`, for ``values`` ``[M, ...]`` (a scalar)."""
        values = _check_values(values, len(self))
        centred = values - self.expectation(values)
        return self.expectation((centred.reshape(len(self), -1) ** 2).sum(-1))


def _check_values(values, m: int) -> torch.Tensor:
    values = validate.floats(values, "values", min_ndim=1)
    if values.shape[0] != m:
        raise ValueError(f"values must have one row per trajectory, shape [M={m}, ...]; got {tuple(values.shape)}")
    return values


def all_trajectories(mdp: TabularMDP, logits, horizon: int | None = None,
                     max_trajectories: int = 200_000) -> Enumeration:
    """List every trajectory of ``horizon`` decisions (default ``mdp.horizon``) with positive probability.

    Zero-probability branches are dropped; the next state after the last decision is not
    enumerated (it does not change any estimator). Shapes: see :class:`Enumeration`.

    Example (a two-armed bandit: two trajectories)::

        >>> from pglib.mdp import bandit
        >>> e = all_trajectories(bandit(means=[1.0, 0.0]), torch.zeros(1, 2))
        >>> e.actions.tolist(), e.prob.tolist()
        ([[0], [1]], [0.5, 0.5])
    """
    validate.instance(mdp, "mdp", TabularMDP, "a TabularMDP")
    if horizon is None and mdp.horizon is None:
        raise ValueError("horizon must be given for an infinite-horizon MDP (mdp.horizon is None)")
    T = validate.steps(horizon if horizon is not None else mdp.horizon, "horizon")
    max_trajectories = validate.positive_int(max_trajectories, "max_trajectories")
    with torch.no_grad():
        pi = mdp.policy(logits)
        S, A = mdp.n_states, mdp.n_actions
        P, R, term = mdp.transitions, mdp.rewards, mdp.terminal
        s = torch.nonzero(mdp.initial > 0).flatten()
        prob = mdp.initial[s].clone()
        states, actions, rewards, mask = [], [], [], []
        for t in range(T):
            last = t == T - 1
            live = ~term[s]
            # Branch weight of (a, s') for each path: pi(a|s) P(s'|s,a); a terminal path has one branch (0, s).
            w = pi[s][:, :, None] * (P[s] if not last else torch.full((len(s), A, 1), 1.0, dtype=DTYPE))
            stay = torch.zeros_like(w)
            stay[torch.arange(len(s)), 0, s if not last else 0] = 1.0
            w = torch.where(live[:, None, None], w, stay)
            path, a, s2 = torch.nonzero(w > 0, as_tuple=True)
            if len(path) > max_trajectories:
                raise ValueError(f"the enumeration would hold {len(path)} > max_trajectories={max_trajectories} "
                                 "paths; use a shorter horizon or a smaller MDP")
            validate.memory(validate.nbytes(len(path), T, itemsize=_BYTES_PER_STEP),
                            f"enumerating {len(path)} trajectories of {T} steps")
            prob = prob[path] * w[path, a, s2]
            states = [x[path] for x in states] + [s[path]]
            actions = [x[path] for x in actions] + [a]
            on = live[path]
            rewards = [x[path] for x in rewards] + [torch.where(on, R[s[path], a], torch.zeros((), dtype=DTYPE))]
            mask = [x[path] for x in mask] + [on]
            s = s2 if not last else s[path]
        return Enumeration(torch.stack(states, -1), torch.stack(actions, -1), torch.stack(rewards, -1),
                           torch.stack(mask, -1), prob)
