r"""Exact expectations of off-policy gradient estimators on a finite-horizon tabular MDP.

Data come from a behaviour policy :math:`\pi_\mathrm{old} = \mathrm{softmax}(\theta_\mathrm{old})`; the
gradient is wanted at the target :math:`\pi_\theta = \mathrm{softmax}(\theta)`. With
:math:`\rho_t = \pi_\theta(a_t|s_t)/\pi_\mathrm{old}(a_t|s_t)`, :math:`p^{\mathrm{old}}_t(s) = P_\mathrm{old}(s_t = s)`,
and :math:`w_t = \gamma^t` the score weights (so that on-policy the estimators are unbiased for
:func:`pglib.exact.gradient`):

- whole-trajectory and per-decision importance sampling are unbiased: their expectation is
  :func:`pglib.exact.gradient` at :math:`\theta` (Precup, Sutton & Singh 2000);
- the single-step ratio :math:`\sum_t w_t\,\rho_t\nabla\log\pi_\theta(a_t|s_t)\,\hat Q_t` is not; its
  expectation (:func:`single_step_expectation`) is the policy-gradient theorem evaluated with the
  behaviour policy's state distribution, and, when :math:`\hat Q_t` is the sampled reward-to-go, with
  the behaviour policy's action values;
- the variance of importance weights is governed by :func:`weight_second_moment`; its inverse is the
  fraction of the sample that the effective sample size keeps as the sample grows
  (:func:`limiting_ess_fraction`);
- :func:`surrogate_objective` is the exact expectation of the ratio or clipped surrogate of
  :mod:`pglib.losses` over behaviour data (Kakade & Langford 2002; Schulman et al. 2017); its autodiff
  gradient is the exact expectation of the corresponding gradient estimator.

Everything is float64 and needs ``mdp.horizon`` to be finite.
"""

from __future__ import annotations

import torch

from pglib import exact, losses, validate
from pglib.returns import discount_weights
from pglib.mdp import DTYPE, TabularMDP

__all__ = ["single_step_expectation", "time_kl", "trajectory_kl", "weight_second_moment", "limiting_ess_fraction",
           "surrogate_objective", "surrogate_gradient", "clip_fraction"]

_CRITICS = ("behaviour", "target")


def _need_horizon(mdp: TabularMDP, what: str, *logits) -> int:
    """The door of every function here: the horizon T of ``mdp`` (a ValueError naming ``what`` if it
    has none), and each of ``logits`` (given as ``(value, name)``) fits the MDP."""
    T = exact.need_finite_horizon(mdp, what)
    for value, name in logits:
        validate.mdp_logits(mdp, value, name)
    return T


def _behaviour_advantage(mdp: TabularMDP, behaviour_logits) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The behaviour policy ``mu [S, A]``, its state distribution ``p_old [T, S]`` and its advantages
    ``A_old [T, S, A]`` = Q_t - E_mu Q_t (constants: no gradient)."""
    with torch.no_grad():
        mu = mdp.policy(behaviour_logits)
        Q = exact.time_q_values(mdp, behaviour_logits)
        return mu, exact.time_occupancy(mdp, behaviour_logits), Q - (mu[None] * Q).sum(-1, keepdim=True)


def _state_kl(mdp: TabularMDP, logits_p, logits_q) -> torch.Tensor:
    """Per-state KL(p || q), ``[S]``; 0 at terminal states, which take no decision."""
    return torch.where(mdp.terminal, torch.zeros((), dtype=DTYPE), losses.categorical_kl(logits_p, logits_q))


def _score_weights(mdp: TabularMDP, T: int) -> torch.Tensor:
    return discount_weights(T, mdp.gamma, like=mdp.rewards)


def single_step_expectation(mdp: TabularMDP, logits, behaviour_logits,
                            critic: str = "behaviour") -> torch.Tensor:
    r"""Exact expectation of the single-step importance-weighted estimator, shape
    ``[S, A]``.

    The estimator, on trajectories from :math:`\pi_\mathrm{old}`, is
    :math:`\sum_t \gamma^t\,\rho_t\,\nabla\log\pi_\theta(a_t|s_t)\,\hat Q_t`. Its
    expectation is

    .. math:: \sum_t \gamma^t \sum_s p^{\mathrm{old}}_t(s)
              \sum_a \pi_\theta(a|s)\,\nabla\log\pi_\theta(a|s)\,Q_t^{c}(s,a)

    where ``critic`` picks :math:`Q^c`:

    - ``"behaviour"``: :math:`\hat Q_t` is the sampled reward-to-go of the behaviour
      data, whose conditional mean is :math:`Q^{\mathrm{old}}_t`;
    - ``"target"``: :math:`\hat Q_t = Q^{\theta}_t(s_t, a_t)`, an exact critic of the
      target policy; then the only error left is the state distribution
      :math:`p^{\mathrm{old}}_t` in place of :math:`p^\theta_t`.

    With ``behaviour_logits == logits`` both equal :func:`pglib.exact.gradient`. With
    ``critic="behaviour"`` this is the expectation of
    ``pglib.estimators.importance_weighted(..., kind="step")`` (also given by
    :func:`pglib.expected.step_importance`); the difference between the two
    critics splits the estimator's bias into a state-distribution part and a value part.
    """
    _need_horizon(mdp, "single_step_expectation", (logits, "logits"),
                  (behaviour_logits, "behaviour_logits"))
    validate.one_of(critic, "critic", _CRITICS)
    T = mdp.horizon
    with torch.no_grad():
        pi = mdp.policy(logits)
        p_old = exact.time_occupancy(mdp, behaviour_logits)  # [T, S]
        critic_logits = behaviour_logits if critic == "behaviour" else logits
        Q = exact.time_q_values(mdp, critic_logits)  # [T, S, A]
        per_t = p_old[:, :, None] * exact.softmax_score_expectation(pi[None], Q)
        return torch.einsum("t,tsa->sa", _score_weights(mdp, T), per_t)


def time_kl(mdp: TabularMDP, logits, behaviour_logits) -> torch.Tensor:
    r"""Expected per-step divergence, shape ``[T]``, at the states the behaviour policy
    visits (terminal states count 0):

    .. math:: \sum_s p^{\mathrm{old}}_t(s)\,
              \mathrm{KL}(\pi_\mathrm{old}(\cdot|s)\,\|\,\pi_\theta(\cdot|s))

    with the target :math:`\pi_\theta` = softmax(``logits``) and the behaviour policy
    :math:`\pi_\mathrm{old}` = softmax(``behaviour_logits``). The behaviour policy comes
    first in the KL (the direction whose expectation a behaviour batch estimates) but
    second in the arguments, as everywhere in pglib (target before behaviour).

    By the chain rule of KL its sum over ``t`` is the divergence between the two
    trajectory distributions,
    :math:`\mathrm{KL}(p_\mathrm{old}(\tau)\,\|\,p_\theta(\tau))` (see
    :func:`trajectory_kl`).
    """
    _need_horizon(mdp, "time_kl", (logits, "logits"),
                  (behaviour_logits, "behaviour_logits"))
    with torch.no_grad():
        kl = _state_kl(mdp, mdp.check_logits(behaviour_logits), mdp.check_logits(logits))          # [S]
        return exact.time_occupancy(mdp, behaviour_logits) @ kl


def trajectory_kl(mdp: TabularMDP, logits, behaviour_logits) -> torch.Tensor:
    r""":math:`\mathrm{KL}(p_\mathrm{old}(\tau)\,\|\,p_\theta(\tau))` over trajectories of ``mdp.horizon`` decisions
    (a scalar): the transition probabilities cancel, so it is ``time_kl(...).sum()``."""
    return time_kl(mdp, logits, behaviour_logits).sum()


def weight_second_moment(mdp: TabularMDP, logits, behaviour_logits) -> torch.Tensor:
    r"""Exact :math:`\mathbb{E}_\mathrm{old}[W_{0:t}^2]` of the products
    :math:`W_{0:t}=\prod_{k\le t}\rho_k`, shape ``[T]``.

    Forward recursion over the weighted state measure
    :math:`m_t(s) = \mathbb{E}_\mathrm{old}[W_{0:t-1}^2\,1(s_t=s)]`, with
    :math:`c(s,a) = \pi_\theta(a|s)^2/\pi_\mathrm{old}(a|s)`: :math:`m_0 = \mu_0`,
    :math:`m_{t+1}(s') = \sum_{s,a} m_t(s)\,c(s,a)\,P(s'|s,a)`, and
    :math:`\mathbb{E}[W_{0:t}^2] = \sum_{s,a} m_t(s)\,c(s,a)`. A terminal state takes no
    decision, so its ratio is 1. Since :math:`\mathbb{E}_\mathrm{old}[W_{0:t}] = 1`, the
    variance of the weight is this minus one; it grows geometrically in ``t`` whenever
    the policies differ.
    """
    _need_horizon(mdp, "weight_second_moment", (logits, "logits"),
                  (behaviour_logits, "behaviour_logits"))
    T = mdp.horizon
    with torch.no_grad():
        pi, mu = mdp.policy(logits), mdp.policy(behaviour_logits)
        if ((mu == 0) & (pi > 0)).any():
            raise ValueError("behaviour_logits give probability 0 to an action the "
                             "target takes: the ratio is unbounded")
        c = torch.where(mu > 0, pi ** 2 / mu, torch.zeros((), dtype=DTYPE))  # [S, A]
        K = torch.einsum("sa,sat->st", c, mdp.transitions)  # [S, S]
        eye = torch.eye(mdp.n_states, dtype=DTYPE)
        K = torch.where(mdp.terminal[:, None], eye, K)
        row = torch.where(mdp.terminal, torch.ones((), dtype=DTYPE), c.sum(-1))
        m, out = mdp.initial, []
        for _ in range(T):
            out.append(m @ row)
            m = m @ K
        return torch.stack(out)


def limiting_ess_fraction(mdp: TabularMDP, logits, behaviour_logits) -> torch.Tensor:
    r"""The large-sample limit of ESS/N for the weights :math:`W_{0:t}`, shape ``[T]``:
    :math:`(\mathbb{E}W)^2/\mathbb{E}W^2 = 1/\mathbb{E}_\mathrm{old}[W_{0:t}^2]`.

    With :math:`\mathrm{ESS} = (\sum_i W_i)^2/\sum_i W_i^2` (Kong 1992), the law of large numbers gives
    :math:`\mathrm{ESS}/N \to 1/\mathbb{E}[W^2]`. For heavy-tailed weights the convergence is slow and a
    finite sample usually *overstates* the limit (the rare huge weights that dominate
    :math:`\mathbb{E}W^2` have not been drawn yet).
    """
    return 1.0 / weight_second_moment(mdp, logits, behaviour_logits)


def surrogate_objective(mdp: TabularMDP, logits, behaviour_logits, eps: float | None = None,
                        beta: float = 0.0) -> torch.Tensor:
    r"""Exact expectation over behaviour trajectories of the ratio (``eps=None``) or clipped surrogate
    *objective* (minus the loss of :mod:`pglib.losses`), with the exact behaviour advantage
    :math:`\hat A_t = \gamma^t A^{\mathrm{old}}_t(s_t,a_t)` as the advantage input:

    .. math:: L(\theta) = \sum_t \gamma^t \sum_s p^{\mathrm{old}}_t(s) \sum_a \pi_\mathrm{old}(a|s)\,
              m\big(\rho(s,a),\,A^{\mathrm{old}}_t(s,a)\big),

    :math:`m(\rho, A) = \rho A` or :math:`\min(\rho A, \mathrm{clip}(\rho, 1-\epsilon, 1+\epsilon)A)`, minus
    ``beta`` times the KL penalty :math:`\sum_t \sum_s p^{\mathrm{old}}_t(s)\,\mathrm{KL}(\pi_\mathrm{old}(\cdot|s)\,\|\,\pi_\theta(\cdot|s))`
    (the expectation of ``beta * pglib.losses.kl_penalty`` with the ``"trajectory"`` reduction). A differentiable
    scalar in ``logits``; zero at ``logits = behaviour_logits``, where its gradient is
    :func:`pglib.exact.gradient` (Kakade & Langford 2002). For the ratio form,
    :math:`J(\theta_\mathrm{old}) + L(\theta)` is the first-order model of :math:`J(\theta)` that ignores the
    change of state distribution.
    """
    T = _need_horizon(mdp, "surrogate_objective", (behaviour_logits, "behaviour_logits"))
    logits = mdp.check_logits(logits)
    beta = validate.real(beta, "beta", low=0.0)
    eps = None if eps is None else validate.clip_eps(eps)
    mu, p_old, A_old = _behaviour_advantage(mdp, behaviour_logits)                            # [S, A], [T, S], [T, S, A]
    A_old = _score_weights(mdp, T)[:, None, None] * A_old
    weight = p_old[:, :, None] * mu[None]                                                      # P_old(s_t=s, a_t=a)
    logp_new = torch.log_softmax(logits, -1).expand(T, -1, -1)
    logp_old = torch.log(mu).expand(T, -1, -1)
    keep = weight > 0   # actions the behaviour never takes carry no weight (and may have log 0)
    if eps is None:
        terms = losses.ratio_surrogate(logp_new, logp_old, A_old, mask=keep, reduction="none")
    else:
        terms = losses.clipped_surrogate(logp_new, logp_old, A_old, eps=eps, mask=keep, reduction="none")
    objective = -torch.where(keep, weight * terms, torch.zeros((), dtype=DTYPE)).sum()
    if beta:
        kl = _state_kl(mdp, torch.log(mu), logits)                                             # [S], differentiable
        objective = objective - beta * (p_old.sum(0) * kl).sum()
    return objective


def surrogate_gradient(mdp: TabularMDP, logits, behaviour_logits, eps: float | None = None,
                       beta: float = 0.0) -> torch.Tensor:
    r"""Autodiff gradient of :func:`surrogate_objective`, shape ``[S, A]``: the exact expectation of the
    per-trajectory estimator :math:`\sum_t \nabla_\theta m(\rho_t, \gamma^t A^{\mathrm{old}}_t(s_t,a_t))` on
    behaviour data. For ``eps=None`` it equals ``single_step_expectation(..., critic="behaviour")``;
    for the clipped form, each step where :func:`pglib.losses.clip_mask` holds contributes zero;
    ``beta`` adds the expected gradient of ``-beta * kl_penalty`` (either estimator).
    """
    _need_horizon(mdp, "surrogate_gradient", (behaviour_logits, "behaviour_logits"))
    theta = mdp.check_logits(logits).detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(surrogate_objective(mdp, theta, behaviour_logits, eps, beta), theta)
    return grad


def clip_fraction(mdp: TabularMDP, logits, behaviour_logits, eps: float) -> torch.Tensor:
    r"""Exact fraction of behaviour decisions whose clipped-surrogate gradient is zero, shape ``[T]``:
    :math:`P_\mathrm{old}(\text{clip\_mask}(\rho_t, A^{\mathrm{old}}_t(s_t,a_t), \epsilon) \mid s_t \text{ not terminal})`
    with the exact behaviour advantage (as in :func:`surrogate_objective`)."""
    T = _need_horizon(mdp, "clip_fraction", (logits, "logits"), (behaviour_logits, "behaviour_logits"))
    eps = validate.clip_eps(eps)
    with torch.no_grad():
        pi = mdp.policy(logits)
        mu, p_old, A_old = _behaviour_advantage(mdp, behaviour_logits)
        rho = torch.where(mu > 0, pi / mu, torch.zeros((), dtype=DTYPE)).expand(T, -1, -1)
        clipped = losses.clip_mask(rho, A_old, eps).to(DTYPE)
        live = p_old * (~mdp.terminal).to(DTYPE)                                                # [T, S]
        return (live[:, :, None] * mu[None] * clipped).sum((1, 2)) / live.sum(1)
