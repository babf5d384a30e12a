r"""Per-trajectory score-function gradient estimates for the tabular softmax policy.

Every estimator here returns one gradient estimate per trajectory, shape ``[N, S, A]``, so that
the Monte Carlo estimate is ``est.mean(0)`` and its covariance, standard errors and tests are one
line each (:mod:`pglib.stats`). All of them have the form

.. math:: \hat g(\tau) = \sum_{t<T} m_t\, \psi_t\, \nabla_\theta \log\pi_\theta(a_t|s_t)

with :math:`m_t` the mask (real decisions only) and a per-step weight :math:`\psi_t` that names
the estimator. For softmax logits :math:`\theta \in \mathbb{R}^{S\times A}`,

.. math:: \frac{\partial \log \pi(a|s)}{\partial \theta_{s',b}} = 1[s'=s]\,\big(1[b=a] - \pi(b|s)\big),

nonzero only in row :math:`s`, and each row sums to zero, so every estimate has rows summing to
zero. :func:`weighted_score_sum` computes the sum with one scatter-add, without building an
``[N, T, S, A]`` tensor.

Which :math:`\psi_t` (``R`` the discounted return :math:`\sum_k\gamma^k r_k`,
:math:`G_t = \sum_{k\ge t}\gamma^{k-t} r_k` the reward-to-go, ``b`` a baseline):

- :func:`reinforce` ``credit="return"``: :math:`\psi_t = R - b` (Williams 1992), unbiased for
  :math:`\nabla J`;
- ``credit="reward_to_go"``: :math:`\psi_t = \gamma^t (G_t - b)`, unbiased for :math:`\nabla J`;
  with ``discount_score=False``, :math:`\psi_t = G_t - b`, which is what most code computes and is
  biased for :math:`\gamma < 1` (its expectation is :func:`pglib.exact.expected_direction`
  with ``discount_score=False``; Thomas 2014, Nota & Thomas 2020);
- a baseline that depends on the state (and time) keeps the estimator unbiased; one that depends
  on the sampled action (``action_baseline``) does not, see :func:`pglib.exact.expected_action_baseline`;
- :func:`past_reward_terms`: :math:`\psi_t = \sum_{k<t}\gamma^k r_k`, the terms that the
  reward-to-go form drops from the return form; mean zero;
- :func:`importance_weighted`: off-policy estimates from a behaviour policy's trajectories.
"""

from __future__ import annotations

import torch

from pglib import importance, validate
from pglib.mdp import DTYPE, TabularMDP
from pglib.returns import discount_weights, reward_to_go
from pglib.sampling import Trajectories

__all__ = [
    "weighted_score_sum", "step_baseline", "reinforce", "past_reward_terms",
    "importance_weighted",
]

_CREDITS = ("return", "reward_to_go")
_KINDS = ("trajectory", "per_decision", "step")


# ----------------------------------------------------------------------------- checks


def _check_weights(weights, traj: Trajectories, name: str = "weights") -> torch.Tensor:
    return validate.floats(weights, name, shape=(traj.n, traj.horizon), dims="[N, T]")


# ----------------------------------------------------------------------------- the core


def weighted_score_sum(traj: Trajectories, logits, weights) -> torch.Tensor:
    r"""Per-trajectory :math:`\sum_t m_t\, w_t\, \nabla_\theta \log\pi(a_t|s_t)`, shape ``[N, S, A]``.

    The core of every estimator. With :math:`c_{n}(s,a) = \sum_t m_t w_t 1[s_t=s, a_t=a]` (one
    scatter-add of the ``N x T`` weights into ``N x S x A`` bins) and :math:`c_n(s) = \sum_a c_n(s,a)`,
    the sum is :math:`c_n(s,a) - c_n(s)\,\pi(a|s)`; no ``[N, T, S, A]`` tensor is built.

    Args:
        traj: the batch (``mask`` selects the real steps).
        logits: ``[S, A]`` softmax-policy logits at which the score is taken.
        weights: ``[N, T]`` per-step weights :math:`w_t` (values at masked steps are ignored).

    Example (one trajectory, one step in state 0 taking action 1, weight 2, uniform policy over 2
    actions): ``[[[-1.0, 1.0]]]``.
    """
    logits = validate.batch_logits(traj, logits)
    weights = _check_weights(weights, traj)
    return _weighted_score_sum(traj, logits, weights)


def _weighted_score_sum(traj: Trajectories, logits: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    S, A = logits.shape
    N = traj.n
    pi = torch.softmax(logits, -1)
    # Work on the time-major [T, N] views: the sampler stores batches that way, so the flattening
    # below is free (a contiguous [N, T] batch from elsewhere is simply copied once).
    states, actions, mask, w = traj.states.T, traj.actions.T, traj.mask.T, w.T
    index = (states * A + actions).add_(torch.arange(N) * (S * A))  # n * S*A + s * A + a, shape [T, N]
    if not bool(mask.all()):  # a cheap pass over booleans saves a pass over floats when nothing is masked
        w = w.masked_fill(~mask, 0.0)
    c_sa = torch.zeros(N * S * A, dtype=DTYPE).index_add_(0, index.reshape(-1), w.reshape(-1)).view(N, S, A)
    c_s = c_sa.view(N * S, A) @ torch.ones(A, dtype=DTYPE)  # sum_t m_t w_t 1[s_t = s] (a matvec: faster than .sum(-1))
    return c_sa.sub_(c_s.view(N, S, 1) * pi)


# ----------------------------------------------------------------------------- on-policy


def step_baseline(traj: Trajectories, baseline=None, action_baseline=None) -> torch.Tensor:
    r"""The baseline value :math:`b_t` at every step, shape ``[N, T]``.

    Args:
        baseline: ``None`` (zero), a number (constant), a tensor ``[S]`` (state baseline
            :math:`b(s_t)`, e.g. :func:`pglib.exact.state_values` for an infinite horizon), or a
            tensor ``[T, S]`` (time-and-state baseline :math:`b_t(s_t)`, e.g.
            :func:`pglib.exact.time_state_values` for a finite horizon).
        action_baseline: ``None`` or a tensor ``[S, A]``: :math:`b(s_t, a_t)`, which depends on the
            sampled action and therefore biases the estimator (a negative control). Added to
            ``baseline`` if both are given.
    """
    traj = validate.batch(traj)
    N, T = traj.n, traj.horizon
    b = torch.zeros(N, T, dtype=DTYPE)
    if baseline is None and action_baseline is None:
        return b
    if baseline is not None:
        if callable(baseline) and not isinstance(baseline, torch.Tensor):
            raise validate.ArgumentTypeError("baseline must be a number or a tensor [S] or [T, S], not a callable; "
                            "for anything else build weights and call weighted_score_sum")
        bt = validate.floats(baseline, "baseline")
        S = traj.n_states if traj.n_states is not None else (int(traj.states.max()) + 1 if traj.n else 0)
        if bt.ndim == 0:
            b = b + bt
        elif bt.ndim == 1:
            if bt.shape[0] < S or (traj.n_states is not None and bt.shape[0] != S):
                raise ValueError(f"baseline of shape [S] must cover the batch's {S} states; got {tuple(bt.shape)}")
            b = bt[traj.states]
        elif bt.ndim == 2:
            if bt.shape[0] != T or bt.shape[1] < S or (traj.n_states is not None and bt.shape[1] != S):
                raise ValueError(
                    f"a 2-D baseline must be time-and-state, shape [T, S] = [{T}, {S}]; got {tuple(bt.shape)} "
                    "(an action-dependent [S, A] baseline goes in action_baseline)")
            b = bt[torch.arange(T)[None, :], traj.states]
        else:
            raise ValueError(f"baseline must be a number, [S] or [T, S]; got shape {tuple(bt.shape)}")
    if action_baseline is not None:
        ab = validate.floats(action_baseline, "action_baseline", ndim=2)
        if traj.n_states is not None and tuple(ab.shape) != (traj.n_states, traj.n_actions):
            raise ValueError(f"action_baseline must have shape [S, A] = [{traj.n_states}, {traj.n_actions}]; "
                             f"got {tuple(ab.shape)}")
        if traj.n and (int(traj.states.max()) >= ab.shape[0] or int(traj.actions.max()) >= ab.shape[1]):
            raise ValueError(f"action_baseline must have shape [S, A] covering the batch; got {tuple(ab.shape)}")
        b = b + ab[traj.states, traj.actions]
    return b


def reinforce(traj: Trajectories, logits, gamma: float, credit: str = "reward_to_go",
              baseline=None, discount_score: bool = True,
              action_baseline=None) -> torch.Tensor:
    r"""REINFORCE per-trajectory gradient estimates (Williams 1992), shape
    ``[N, S, A]``.

    .. math:: \hat g(\tau)
              = \sum_{t<T} m_t\, \psi_t\, \nabla_\theta\log\pi_\theta(a_t|s_t)

    ==================  ==================  ==========================================
    ``credit``          ``discount_score``  :math:`\psi_t`
    ==================  ==================  ==========================================
    ``"return"``        True (only)         :math:`R(\tau) - b_t`,
                                            :math:`R = \sum_k \gamma^k r_k`
    ``"reward_to_go"``  True (default)      :math:`\gamma^t\,(G_t - b_t)`  (unbiased)
    ``"reward_to_go"``  False               :math:`G_t - b_t`
                                            (biased for :math:`\gamma<1`)
    ==================  ==================  ==========================================

    ``credit`` names the rewards that the score of step ``t`` is credited with:
    ``"return"``, all of them (the whole discounted return); ``"reward_to_go"``, only
    those from step ``t`` on (the rewards before an action do not depend on it). It
    fixes :math:`\psi_t` up to the baseline, with
    :math:`G_t = \sum_{k\ge t}\gamma^{k-t} r_k` and :math:`b_t` from
    :func:`step_baseline` (``baseline``: constant, ``[S]`` or ``[T, S]``;
    ``action_baseline``: ``[S, A]``, biased). The first two rows are unbiased for
    :func:`pglib.exact.gradient` when ``baseline`` does not depend on the action
    (finite horizon; for a truncated infinite horizon, up to the truncated tail).
    Rewards to go are computed within the held ``T`` steps.

    Example::

        traj = sampling.sample_trajectories(m, logits, n=10_000, seed=0)
        g_hat = reinforce(traj, logits, m.gamma).mean(0)
        # compare with exact.gradient(m, logits)
    """
    traj, logits, gamma = _check_reinforce(traj, logits, gamma, credit, discount_score)
    G = reward_to_go(traj.masked_rewards, gamma)  # [N, T]
    if credit == "return":
        psi = G[:, :1].expand(-1, traj.horizon)
    else:
        psi = G
    if baseline is not None or action_baseline is not None:
        psi = psi - step_baseline(traj, baseline, action_baseline)
    if credit == "reward_to_go" and discount_score:
        psi = psi * discount_weights(traj.horizon, gamma, like=psi)
    return _weighted_score_sum(traj, logits, psi)


def _check_reinforce(traj, logits, gamma, credit, discount_score) -> tuple[Trajectories, torch.Tensor, float]:
    traj = validate.batch(traj)
    gamma = validate.gamma(gamma)
    validate.one_of(credit, "credit", _CREDITS)
    validate.flag(discount_score, "discount_score")
    if credit == "return" and not discount_score:
        raise ValueError("discount_score=False applies to credit='reward_to_go' only: the total return "
                         "R = sum_k gamma^k r_k already carries the discount of every reward")
    return traj, validate.batch_logits(traj, logits), gamma


def past_reward_terms(traj: Trajectories, logits, gamma: float) -> torch.Tensor:
    r"""The terms the reward-to-go estimator drops, shape ``[N, S, A]``; mean zero.

    .. math::
        \sum_{t<T} m_t \Big(\sum_{k<t}\gamma^k r_k\Big)
        \nabla_\theta\log\pi_\theta(a_t|s_t)

    An action cannot change rewards received before it, so each term has expectation
    zero, and ``reinforce(..., "return")`` equals
    ``reinforce(..., "reward_to_go") + past_reward_terms(...)``.
    """
    logits = validate.batch_logits(traj, logits)
    gamma = validate.gamma(gamma)
    r = traj.masked_rewards
    disc_r = r * discount_weights(traj.horizon, gamma, like=r)
    past = disc_r.cumsum(1) - disc_r  # exclusive cumulative sum: rewards before t
    return _weighted_score_sum(traj, logits, past)


# ----------------------------------------------------------------------------- off-policy


def importance_weighted(traj: Trajectories, target_logits, behaviour_logits,
                        gamma: float, kind: str = "per_decision") -> torch.Tensor:
    r"""Off-policy gradient estimates at the target policy from a behaviour policy's
    batch, ``[N, S, A]``.

    ``traj`` was sampled under
    :math:`\beta = \mathrm{softmax}(\text{behaviour\_logits})`; the scores are taken at
    :math:`\pi = \mathrm{softmax}(\text{target\_logits})`;
    :math:`\rho_t = \pi(a_t|s_t)/\beta(a_t|s_t)` (:func:`pglib.importance.step_ratios`).

    - ``"trajectory"``:
      :math:`\big(\prod_{k<T}\rho_k\big) \sum_t \gamma^t G_t \nabla\log\pi(a_t|s_t)`
      (whole-trajectory importance sampling times REINFORCE). Unbiased for
      :math:`\nabla J(\pi)`; variance grows exponentially with ``T``.
    - ``"per_decision"``:
      :math:`\sum_t\nabla\log\pi(a_t|s_t)\sum_{k\ge t}\gamma^k r_k\prod_{j\le k}\rho_j`
      (Precup, Sutton & Singh 2000): reward :math:`r_k` is weighted only by the ratios
      of the actions before it. Unbiased, lower variance.
    - ``"step"``: :math:`\sum_t \rho_t\, \gamma^t G_t\, \nabla\log\pi(a_t|s_t)`, the
      one-step correction used by PPO-style surrogates. Biased: states come from
      :math:`\beta`'s distribution and :math:`G_t` follows :math:`\beta` after ``t``;
      its exact expectation is :func:`pglib.expected.step_importance`.
      Unbiased when :math:`\pi = \beta`.
    """
    traj, gamma = validate.batch(traj), validate.gamma(gamma)
    validate.one_of(kind, "kind", _KINDS)
    target_logits = validate.batch_logits(traj, target_logits, "target_logits")
    r = traj.masked_rewards
    disc = discount_weights(traj.horizon, gamma, like=r)
    if kind == "trajectory":
        W = importance.trajectory_ratios(traj, target_logits, behaviour_logits)
        return W[:, None, None] * reinforce(traj, target_logits, gamma)
    if kind == "per_decision":
        c = importance.per_decision_ratios(traj, target_logits, behaviour_logits)
        x = disc * c * r  # gamma^k r_k prod_{j<=k} rho_j
        psi = x.flip(1).cumsum(1).flip(1)  # sum over k >= t
        return _weighted_score_sum(traj, target_logits, psi)
    rho = importance.step_ratios(traj, target_logits, behaviour_logits)
    psi = rho * disc * reward_to_go(r, gamma)
    return _weighted_score_sum(traj, target_logits, psi)
