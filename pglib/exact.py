r"""Exact quantities of a tabular MDP under a softmax policy, in float64.

Everything here is a deterministic function of ``(mdp, logits)`` and differentiable in
``logits``; Monte Carlo estimates elsewhere in pglib are checked against these.

Notation: :math:`\pi = \mathrm{softmax}(\theta)` row-wise, :math:`P_\pi[s, s'] = \sum_a \pi(a|s) P(s'|s, a)`,
:math:`r_\pi[s] = \sum_a \pi(a|s)\, r(s, a)`.

- Infinite horizon (``mdp.horizon is None``): :math:`V = (I - \gamma P_\pi)^{-1} r_\pi`,
  :math:`Q = R + \gamma P V`, :math:`J = \mu_0^\top V`.
- Finite horizon ``T``: backward recursion :math:`V_T = 0`, :math:`Q_t = R + \gamma P V_{t+1}`,
  :math:`V_t = \sum_a \pi Q_t`, and :math:`J = \mu_0^\top V_0`. Here :math:`Q_t(s,a)` is the expected
  discounted reward-to-go :math:`\mathbb{E}[\sum_{k\ge t}\gamma^{k-t} r_k \mid s_t=s, a_t=a]`.

The exact means of estimators and losses (their biases, shown exactly) are in :mod:`pglib.expected`.
"""

from __future__ import annotations

import torch

from pglib import validate
from pglib.mdp import DTYPE, TabularMDP
from pglib.returns import discount_weights

__all__ = ["time_q_values", "time_state_values", "state_values", "q_values", "advantages", "objective", "gradient",
           "time_occupancy", "occupancy", "softmax_score_expectation", "theorem_gradient", "need_finite_horizon"]


def _check(mdp, logits) -> torch.Tensor:
    """The door of every function here: ``mdp`` is a TabularMDP and ``logits`` fit it (float64)."""
    validate.instance(mdp, "mdp", TabularMDP, "a TabularMDP")
    return mdp.check_logits(logits)


def _pieces(mdp: TabularMDP, logits) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(pi [S,A], P_pi [S,S], r_pi [S])."""
    pi = torch.softmax(_check(mdp, logits), -1)
    P_pi = torch.einsum("sa,sat->st", pi, mdp.transitions)
    r_pi = (pi * mdp.rewards).sum(-1)
    return pi, P_pi, r_pi


def need_finite_horizon(mdp: TabularMDP, what: str) -> int:
    """The horizon ``T`` of ``mdp``; a ValueError naming ``what`` when it has none."""
    validate.instance(mdp, "mdp", TabularMDP, "a TabularMDP")
    if mdp.horizon is None:
        raise ValueError(f"{what} needs a finite horizon; this MDP has horizon=None (use mdp.with_(horizon=T))")
    return mdp.horizon


def _need_infinite(mdp: TabularMDP, what: str) -> None:
    validate.instance(mdp, "mdp", TabularMDP, "a TabularMDP")
    if mdp.horizon is not None:
        raise ValueError(f"{what} is the discounted infinite-horizon form; this MDP has horizon={mdp.horizon} "
                         "(use mdp.with_(horizon=None) with gamma < 1)")


def time_q_values(mdp: TabularMDP, logits) -> torch.Tensor:
    """Time-indexed action values ``Q_t(s, a)``, shape ``[T, S, A]`` (finite horizon)."""
    T = need_finite_horizon(mdp, "time_q_values")
    pi = torch.softmax(_check(mdp, logits), -1)
    V_next = torch.zeros(mdp.n_states, dtype=DTYPE)
    Qs = []
    for _ in range(T):  # backward in time: t = T-1, ..., 0
        Q = mdp.rewards + mdp.gamma * torch.einsum("sat,t->sa", mdp.transitions, V_next)
        Qs.append(Q)
        V_next = (pi * Q).sum(-1)
    return torch.stack(Qs[::-1])


def time_state_values(mdp: TabularMDP, logits) -> torch.Tensor:
    """Time-indexed state values ``V_t(s)``, shape ``[T, S]`` (finite horizon)."""
    pi = torch.softmax(_check(mdp, logits), -1)
    return (pi[None] * time_q_values(mdp, logits)).sum(-1)


def state_values(mdp: TabularMDP, logits) -> torch.Tensor:
    """State values ``V(s)``, shape ``[S]``: the infinite-horizon solution, or ``V_0`` for a finite horizon."""
    _check(mdp, logits)
    if mdp.horizon is not None:
        return time_state_values(mdp, logits)[0]
    _, P_pi, r_pi = _pieces(mdp, logits)
    eye = torch.eye(mdp.n_states, dtype=DTYPE)
    return torch.linalg.solve(eye - mdp.gamma * P_pi, r_pi)


def q_values(mdp: TabularMDP, logits) -> torch.Tensor:
    """Action values ``Q(s, a)``, shape ``[S, A]`` (``Q_0`` for a finite horizon)."""
    _check(mdp, logits)
    if mdp.horizon is not None:
        return time_q_values(mdp, logits)[0]
    V = state_values(mdp, logits)
    return mdp.rewards + mdp.gamma * torch.einsum("sat,t->sa", mdp.transitions, V)


def advantages(mdp: TabularMDP, logits) -> torch.Tensor:
    """Advantages ``A(s, a) = Q(s, a) - V(s)``, shape ``[S, A]`` (time 0 for a finite horizon)."""
    pi = torch.softmax(_check(mdp, logits), -1)
    Q = q_values(mdp, logits)
    return Q - (pi * Q).sum(-1, keepdim=True)


def objective(mdp: TabularMDP, logits) -> torch.Tensor:
    r"""The expected discounted return :math:`J(\theta) = \mu_0^\top V`, a differentiable scalar."""
    V = state_values(mdp, logits)
    return mdp.initial @ V


def gradient(mdp: TabularMDP, logits) -> torch.Tensor:
    """``dJ/dlogits`` by automatic differentiation of :func:`objective`, shape ``[S, A]``."""
    theta = _check(mdp, logits).detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(objective(mdp, theta), theta)
    return grad


def time_occupancy(mdp: TabularMDP, logits, horizon: int | None = None) -> torch.Tensor:
    """State distribution at each step, ``p_t(s) = P(s_t = s)``, shape ``[T, S]``.

    ``horizon`` defaults to ``mdp.horizon``; it is required for an infinite-horizon MDP.
    """
    validate.instance(mdp, "mdp", TabularMDP, "a TabularMDP")
    if horizon is None:
        T = need_finite_horizon(mdp, "time_occupancy without a horizon argument")
    else:
        T = validate.steps(horizon, "horizon")
        validate.memory(validate.nbytes(T, mdp.n_states), f"time_occupancy over {T} steps")
    _, P_pi, _ = _pieces(mdp, logits)
    p, out = mdp.initial, []
    for _ in range(T):
        out.append(p)
        p = p @ P_pi
    return torch.stack(out)


def occupancy(mdp: TabularMDP, logits) -> torch.Tensor:
    r"""Normalized discounted state occupancy ``d(s)``, shape ``[S]``, summing to 1.

    Infinite horizon: :math:`d = (1-\gamma)\,\mu_0^\top (I - \gamma P_\pi)^{-1}`.
    Finite horizon: :math:`d \propto \sum_{t<T} \gamma^t p_t`, normalized by
    :math:`\sum_{t<T}\gamma^t`.
    The unnormalized occupancy is ``d / (1 - gamma)`` (infinite horizon).
    """
    _check(mdp, logits)
    if mdp.horizon is not None:
        p = time_occupancy(mdp, logits)
        w = discount_weights(mdp.horizon, mdp.gamma, like=mdp.rewards)
        return (w[:, None] * p).sum(0) / w.sum()
    _, P_pi, _ = _pieces(mdp, logits)
    eye = torch.eye(mdp.n_states, dtype=DTYPE)
    d = torch.linalg.solve((eye - mdp.gamma * P_pi).T, mdp.initial)
    return (1 - mdp.gamma) * d


def softmax_score_expectation(pi: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    r"""``E_{a~pi(s)}[grad_{theta_s} log pi(a|s) * weights(s, a)]`` for softmax logits, shape ``[..., S, A]``.

    With :math:`\partial \log\pi(a|s) / \partial\theta_{s,b} = 1[a=b] - \pi(b|s)` this is
    :math:`\pi(b|s)\,(w(s,b) - \sum_a \pi(a|s) w(s,a))`.
    """
    pi, weights = _check_policy_weights(pi, weights)
    return pi * (weights - (pi * weights).sum(-1, keepdim=True))


def _check_policy_weights(pi, weights) -> tuple[torch.Tensor, torch.Tensor]:
    pi = validate.floats(pi, "pi", min_ndim=1)
    validate.distribution(pi, "pi", "rows (the last axis)")
    weights = validate.floats(weights, "weights", min_ndim=1)
    try:
        torch.broadcast_shapes(pi.shape, weights.shape)
    except RuntimeError:
        raise ValueError(f"weights must broadcast with pi {tuple(pi.shape)}; got {tuple(weights.shape)}") from None
    if weights.shape[-1] != pi.shape[-1]:
        raise ValueError(f"weights must have one entry per action, [..., {pi.shape[-1]}]; got {tuple(weights.shape)}")
    return pi, weights


def theorem_gradient(mdp: TabularMDP, logits) -> torch.Tensor:
    r"""The policy-gradient theorem (Sutton et al. 2000), infinite horizon, shape
    ``[S, A]``:

    .. math:: \nabla J = \frac{1}{1-\gamma}\,
              \mathbb{E}_{s\sim d,\ a\sim\pi}\big[\nabla \log\pi(a|s)\, Q(s,a)\big]

    with ``d`` the normalized discounted occupancy. No derivative of ``d`` is taken.
    """
    _need_infinite(mdp, "theorem_gradient")
    with torch.no_grad():
        pi, d = mdp.policy(logits), occupancy(mdp, logits)
        Q = q_values(mdp, logits)
        return d[:, None] * softmax_score_expectation(pi, Q) / (1 - mdp.gamma)
