r"""Exact expectations of estimators and losses on a small tabular MDP: their biases, shown exactly.

:mod:`pglib.exact` holds the quantities of the problem itself (:math:`J, V, Q, A, d, \nabla J`); this
module holds what an estimator or a surrogate *averages to*, computed without sampling, so that a
chapter can print a bias as a number rather than as a noisy mean:

- :func:`direction`        the mean of the reward-to-go estimator, with or without :math:`\gamma^t` on the score;
- :func:`action_baseline`  the mean with a baseline that depends on the action (biased);
- :func:`step_importance`  the mean of the one-step importance-weighted estimator (biased off-policy);
- :func:`surrogate`        the expected value of the surrogate objective (not :math:`J`).

The other exact off-policy expectations (weight moments, clipped surrogates) are in :mod:`pglib.offpolicy`.
Everything is float64 and needs a finite horizon.
"""

from __future__ import annotations

import torch

from pglib import exact, offpolicy, validate
from pglib.mdp import TabularMDP
from pglib.returns import discount_weights

__all__ = ["direction", "action_baseline", "step_importance", "surrogate"]


def direction(mdp: TabularMDP, logits, discount_score: bool = True) -> torch.Tensor:
    r"""Exact mean of the reward-to-go estimator, finite horizon, shape ``[S, A]``.

    .. math:: \mathbb{E}\Big[\sum_{t<T} w_t\, \nabla\log\pi(a_t|s_t)\, G_t\Big]
              = \sum_t w_t \sum_s p_t(s) \sum_a \pi(a|s)\,\nabla\log\pi(a|s)\, Q_t(s,a)

    with :math:`w_t = \gamma^t` (``discount_score=True``: equals
    :func:`pglib.exact.gradient`) or :math:`w_t = 1` (``False``: the direction most
    implementations follow; for gamma < 1 it is in general not the gradient of any
    objective, as Nota & Thomas 2020 show with an MDP where it is not; Thomas 2014).
    """
    exact.need_finite_horizon(mdp, "direction")
    discount_score = validate.flag(discount_score, "discount_score")
    with torch.no_grad():
        pi = mdp.policy(logits)
        p = exact.time_occupancy(mdp, logits)
        Q = exact.time_q_values(mdp, logits)
        gamma = mdp.gamma if discount_score else 1.0
        w = discount_weights(mdp.horizon, gamma, like=p)
        per_t = p[:, :, None] * exact.softmax_score_expectation(pi[None], Q)
        return (w[:, None, None] * per_t).sum(0)  # per_t: [T, S, A]


def action_baseline(mdp: TabularMDP, logits, action_baseline) -> torch.Tensor:
    r"""Exact mean of ``estimators.reinforce(traj, logits, gamma, action_baseline=b)``
    (reward-to-go, discounted score), finite horizon, shape ``[S, A]``:

    .. math:: \nabla J - \sum_{t<T}\gamma^t \sum_s p_t(s) \sum_a \pi(a|s)\,
              \nabla\log\pi(a|s)\, b(s,a)

    The subtracted sum is the bias; it vanishes when ``b(s, a)`` does not depend on ``a``.
    """
    exact.need_finite_horizon(mdp, "action_baseline")
    b = validate.floats(action_baseline, "action_baseline", shape=(mdp.n_states, mdp.n_actions))
    grad = exact.gradient(mdp, logits)
    with torch.no_grad():
        pi = mdp.policy(logits)
        p = exact.time_occupancy(mdp, logits)  # [T, S]
        w = discount_weights(mdp.horizon, mdp.gamma, like=p)
        bias = (w[:, None] * p).sum(0)[:, None] * exact.softmax_score_expectation(pi, b)
        return grad - bias


def step_importance(mdp: TabularMDP, target_logits, behaviour_logits) -> torch.Tensor:
    r"""Exact mean of ``estimators.importance_weighted(..., kind="step")``, finite horizon,
    shape ``[S, A]``:

    .. math:: \sum_{t<T}\gamma^t \sum_s p^\beta_t(s) \sum_a \pi(a|s)\,
              \nabla\log\pi(a|s)\, Q^\beta_t(s,a)

    with :math:`p^\beta_t` and :math:`Q^\beta_t` the behaviour policy's state distribution and
    time-indexed action values. Equals :func:`pglib.exact.gradient` at ``target_logits`` when the two
    policies coincide.
    """
    exact.need_finite_horizon(mdp, "step_importance")
    validate.mdp_logits(mdp, target_logits, "target_logits")
    validate.mdp_logits(mdp, behaviour_logits, "behaviour_logits")
    return offpolicy.single_step_expectation(mdp, target_logits, behaviour_logits, critic="behaviour")


def surrogate(mdp: TabularMDP, logits) -> torch.Tensor:
    r"""Exact expected value of the (discounted reward-to-go) surrogate objective, finite horizon:

    .. math:: S(\theta) = \mathbb E_{\tau\sim\pi_\theta}\Big[\sum_{t<T}\gamma^t\log\pi_\theta(a_t|s_t)\,G_t\Big]
              = \sum_{t<T}\gamma^t\sum_s p_t(s)\sum_a\pi_\theta(a|s)\log\pi_\theta(a|s)\,Q_t(s,a),

    with :math:`G_t` the reward-to-go and :math:`p_t(s) = P(s_t = s)`. The sampled surrogate loss of a batch
    estimates :math:`-S(\theta)`; its gradient at fixed samples estimates :math:`\nabla J`, but :math:`S`
    itself is a different function of :math:`\theta` than :math:`J`. A scalar tensor (not differentiable:
    the gradient of this expectation is not the policy gradient).
    """
    exact.need_finite_horizon(mdp, "surrogate")
    with torch.no_grad():
        logits = mdp.check_logits(logits)
        log_pi = torch.log_softmax(logits, -1)
        pi = log_pi.exp()
        p = exact.time_occupancy(mdp, logits)  # [T, S]
        Q = exact.time_q_values(mdp, logits)  # [T, S, A]
        disc = discount_weights(mdp.horizon, mdp.gamma, like=p)
        return torch.einsum("t,ts,sa,tsa->", disc, p, pi * log_pi, Q)
