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
"""

from __future__ import annotations

import torch

from pglib import validate
from pglib.mdp import DTYPE, TabularMDP

__all__ = ["time_q_values", "time_state_values", "state_values", "q_values", "advantages", "objective", "gradient",
           "time_occupancy", "occupancy", "softmax_score_expectation", "theorem_gradient", "expected_direction",
           "expected_action_baseline", "expected_step_importance"]


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


def _need_finite(mdp: TabularMDP, what: str) -> int:
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
    T = _need_finite(mdp, "time_q_values")
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
        T = _need_finite(mdp, "time_occupancy without a horizon argument")
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
        w = mdp.gamma ** torch.arange(mdp.horizon, dtype=DTYPE)
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


def expected_direction(mdp: TabularMDP, logits,
                       discount_score: bool = True) -> torch.Tensor:
    r"""Exact mean of the reward-to-go estimator, finite horizon, shape ``[S, A]``.

    .. math:: &\mathbb{E}\Big[\sum_{t<T} w_t\, \nabla\log\pi(a_t|s_t)\, G_t\Big]\\
              &\quad= \sum_t w_t \sum_s p_t(s) \sum_a \pi(a|s)\,
              \nabla\log\pi(a|s)\, Q_t(s,a)

    with :math:`w_t = \gamma^t` (``discount_score=True``: equals :func:`gradient`) or
    :math:`w_t = 1` (``False``: the direction most implementations follow; for gamma < 1
    it is in general not the gradient of any objective, as Nota & Thomas 2020 show with
    an MDP where it is not; Thomas 2014).
    """
    T = _need_finite(mdp, "expected_direction")
    discount_score = validate.flag(discount_score, "discount_score")
    with torch.no_grad():
        pi = mdp.policy(logits)
        p, Q = time_occupancy(mdp, logits), time_q_values(mdp, logits)
        t = torch.arange(T, dtype=DTYPE)
        w = mdp.gamma ** t if discount_score else torch.ones(T, dtype=DTYPE)
        per_t = p[:, :, None] * softmax_score_expectation(pi[None], Q)  # [T, S, A]
        return (w[:, None, None] * per_t).sum(0)


def expected_action_baseline(mdp: TabularMDP, logits, action_baseline) -> torch.Tensor:
    r"""Exact mean of ``estimators.reinforce(traj, logits, gamma, action_baseline=b)``
    (reward-to-go, discounted score), finite horizon, shape ``[S, A]``:

    .. math:: \nabla J - \sum_{t<T}\gamma^t \sum_s p_t(s) \sum_a \pi(a|s)\,
              \nabla\log\pi(a|s)\, b(s,a)

    The subtracted sum is the bias; it vanishes when ``b(s, a)`` does not depend on ``a``.
    """
    T = _need_finite(mdp, "expected_action_baseline")
    b = validate.floats(action_baseline, "action_baseline", shape=(mdp.n_states, mdp.n_actions))
    grad = gradient(mdp, logits)
    with torch.no_grad():
        pi = mdp.policy(logits)
        p = time_occupancy(mdp, logits)  # [T, S]
        w = mdp.gamma ** torch.arange(T, dtype=DTYPE)
        bias = (w[:, None] * p).sum(0)[:, None] * softmax_score_expectation(pi, b)
        return grad - bias


def expected_step_importance(mdp: TabularMDP, target_logits, behaviour_logits) -> torch.Tensor:
    r"""Exact mean of ``estimators.importance_weighted(..., kind="step")``, finite horizon,
    shape ``[S, A]``:

    .. math:: \sum_{t<T}\gamma^t \sum_s p^{\mathrm{old}}_t(s) \sum_a \pi(a|s)\,
              \nabla\log\pi(a|s)\, Q^{\mathrm{old}}_t(s,a)

    with :math:`p^{\mathrm{old}}_t` and :math:`Q^{\mathrm{old}}_t` the behaviour policy's state distribution and
    time-indexed action values. Equals :func:`gradient` at ``target_logits`` when the two
    policies coincide.
    """
    from pglib import offpolicy  # offpolicy builds on this module

    _need_finite(mdp, "expected_step_importance")
    validate.mdp_logits(mdp, target_logits, "target_logits")
    validate.mdp_logits(mdp, behaviour_logits, "behaviour_logits")
    return offpolicy.single_step_expectation(mdp, target_logits, behaviour_logits, critic="behaviour")
