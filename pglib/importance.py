r"""Importance ratios between two tabular softmax policies, and how far apart the policies are.

A batch sampled under a behaviour policy :math:`\beta = \mathrm{softmax}(\text{behaviour\_logits})`
can estimate expectations under a target policy :math:`\pi = \mathrm{softmax}(\text{target\_logits})`
by reweighting. With :math:`\rho_t = \pi(a_t|s_t) / \beta(a_t|s_t)`:

- :func:`step_ratios`          :math:`\rho_t`, shape ``[N, T]`` (1 at masked steps);
- :func:`per_decision_ratios`  :math:`\prod_{j\le t}\rho_j`, shape ``[N, T]`` (Precup, Sutton & Singh 2000);
- :func:`trajectory_ratios`    :math:`\prod_{t<T}\rho_t = p_\pi(\tau)/p_\beta(\tau)`, shape ``[N]``
  (the dynamics cancel: they are the same under both policies);
- :func:`effective_sample_size` Kish's :math:`(\sum w)^2/\sum w^2` (from :mod:`pglib.stats`);
- :func:`kl_divergence`        per-state :math:`\mathrm{KL}(\pi_p(\cdot|s)\,\|\,\pi_q(\cdot|s))`, optionally averaged over states.

Ratios are computed in log space (differences of log-softmax) and exponentiated once.
"""

from __future__ import annotations

import torch

from pglib import exact, losses, validate
from pglib.mdp import DTYPE, TabularMDP
from pglib.sampling import Trajectories
from pglib.stats import effective_sample_size

__all__ = ["log_step_ratios", "step_ratios", "per_decision_ratios", "trajectory_ratios",
           "effective_sample_size", "kl_divergence"]

_LOGP_ATOL = 1e-9


def _logits(x, name: str) -> torch.Tensor:
    return validate.logits(x, name).detach()


def _check_pair(traj, target_logits, behaviour_logits) -> tuple[Trajectories, torch.Tensor, torch.Tensor]:
    traj = validate.batch(traj)
    tl, bl = _logits(target_logits, "target_logits"), _logits(behaviour_logits, "behaviour_logits")
    if tl.shape != bl.shape:
        raise ValueError(f"target_logits and behaviour_logits must have the same shape [S, A]; "
                         f"got {tuple(tl.shape)} and {tuple(bl.shape)}")
    try:
        validate.batch_logits(traj, tl, "target_logits")
    except ValueError as e:
        raise ValueError(f"the batch's states and actions do not fit the logits: {e}") from None
    return traj, tl, bl


def log_step_ratios(traj: Trajectories, target_logits, behaviour_logits) -> torch.Tensor:
    r""":math:`\log\rho_t = \log\pi(a_t|s_t) - \log\beta(a_t|s_t)`, shape ``[N, T]``, 0 at masked steps.

    If ``traj.logp`` is present it must agree with ``behaviour_logits`` (the batch must have been
    sampled under the behaviour policy given); a mismatch raises ``ValueError``.
    """
    traj, tl, bl = _check_pair(traj, target_logits, behaviour_logits)
    S, A = tl.shape
    flat = traj.states * A + traj.actions
    log_b = torch.log_softmax(bl, -1).reshape(-1)[flat]
    if traj.logp is not None:
        off = torch.where(traj.mask, (traj.logp - log_b).abs(), 0.0)
        if traj.n and off.max() > _LOGP_ATOL:
            raise ValueError(
                "behaviour_logits do not match traj.logp (the log-probabilities recorded when the batch was "
                f"sampled): they differ by up to {off.max().item():.3g}; pass the logits the batch was sampled with")
    log_t = torch.log_softmax(tl, -1).reshape(-1)[flat]
    return torch.where(traj.mask, log_t - log_b, 0.0)


def step_ratios(traj: Trajectories, target_logits, behaviour_logits) -> torch.Tensor:
    r"""Per-step ratios :math:`\rho_t = \pi(a_t|s_t)/\beta(a_t|s_t)`, shape ``[N, T]``; 1 where ``mask`` is False.

    Example: for identical logits every ratio is 1.
    """
    return log_step_ratios(traj, target_logits, behaviour_logits).exp()


def per_decision_ratios(traj: Trajectories, target_logits, behaviour_logits) -> torch.Tensor:
    r"""Cumulative ratios :math:`c_t = \prod_{j\le t}\rho_j` (up to and including ``t``), shape ``[N, T]``.

    :math:`c_t` reweights anything that depends on the trajectory up to step ``t`` only, e.g. the
    reward :math:`r_t` (Precup, Sutton & Singh 2000, per-decision importance sampling).
    """
    return log_step_ratios(traj, target_logits, behaviour_logits).cumsum(1).exp()


def trajectory_ratios(traj: Trajectories, target_logits, behaviour_logits) -> torch.Tensor:
    r"""Whole-trajectory ratios :math:`\prod_{t<T}\rho_t = p_\pi(\tau)/p_\beta(\tau)`, shape ``[N]``; mean 1."""
    return log_step_ratios(traj, target_logits, behaviour_logits).sum(1).exp()


def kl_divergence(states, logits_p, logits_q) -> torch.Tensor:
    r"""KL divergence between two softmax policies, per state or averaged over states.

    .. math:: \mathrm{KL}_s = \sum_a p(a|s)\,\big(\log p(a|s) - \log q(a|s)\big),\qquad
              \bar{\mathrm{KL}} = \sum_s d(s)\,\mathrm{KL}_s

    Args:
        states: what to average over: ``None`` (return the per-state vector ``[S]``), a state
            distribution ``d`` of shape ``[S]``, or a :class:`~pglib.mdp.TabularMDP`, in which case
            ``d`` is its normalized discounted occupancy under ``p`` (:func:`pglib.exact.occupancy`),
            the states the old policy visits (as in TRPO, Schulman et al. 2015).
        logits_p, logits_q: ``[S, A]`` logits of :math:`p` and :math:`q` (differentiable).

    Returns: ``[S]`` per-state divergences, or a scalar tensor.

    Example: ``kl_divergence(None, zeros(1, 2), tensor([[0., log(3)]]))`` is
    :math:`\tfrac12\log\tfrac{1/2}{1/4} + \tfrac12\log\tfrac{1/2}{3/4} = 0.1438`.
    """
    lp, lq = validate.logits(logits_p, "logits_p"), validate.logits(logits_q, "logits_q")
    if lp.shape != lq.shape:
        raise ValueError(f"logits_p and logits_q must have the same shape [S, A]; got {tuple(lp.shape)}, {tuple(lq.shape)}")
    per_state = losses.categorical_kl(lp, lq)
    if states is None:
        return per_state
    if isinstance(states, TabularMDP):
        if (states.n_states, states.n_actions) != tuple(lp.shape):
            raise ValueError(f"logits_p must have shape [S, A] = [{states.n_states}, {states.n_actions}] to match "
                             f"the MDP; got {tuple(lp.shape)}")
        with torch.no_grad():
            d = exact.occupancy(states, lp.detach())
    else:
        d = validate.floats(states, "states", dims="[S]")
        if tuple(d.shape) != (lp.shape[0],):
            raise ValueError(f"states must be None, a TabularMDP or a distribution of shape [S] = [{lp.shape[0]}]; "
                             f"got shape {tuple(d.shape)}")
        validate.distribution(d, "states", "(a probability distribution over states) entries")
    return (d * per_state).sum()
