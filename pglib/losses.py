r"""Surrogate losses: functions of log-probabilities whose gradients are policy-gradient estimators.

A surrogate loss is not a performance measure. It is built so that its gradient, with the sampled
actions, the advantages and the behaviour log-probabilities held fixed, is the estimator we want.
Every function here returns a quantity to **minimize** (the negative of a surrogate objective),
as ``torch.optim`` expects.

Inputs share one shape: a batch ``[N, T]`` of ``N`` trajectories of ``T`` steps (time is the last
axis, as everywhere in pglib), a single trajectory ``[T]``, or any ``[..., T]``.

- ``logp``, ``logp_new``: :math:`\log\pi_\theta(a_t|s_t)` of the sampled actions under the policy being
  optimized (differentiable);
- ``logp_old``: :math:`\log\pi_{\theta_\mathrm{old}}(a_t|s_t)` under the behaviour policy that collected the data
  (treated as a constant: it is detached);
- ``advantages``: :math:`\hat A_t` (treated as a constant: detached);
- ``mask``: optional bool, True where step ``t`` is a real decision; other steps contribute 0.

``reduction`` says how the per-step terms :math:`\ell_{n,t}` become the loss:

- ``"trajectory"`` (default): sum over time, mean over the rest,
  :math:`\frac1N\sum_n\sum_t \ell_{n,t}`; its gradient is the mean of the per-trajectory estimates;
- ``"mean"``: mean over every element (the convention of PPO implementations on flattened batches);
- ``"none"``: the per-step terms themselves, shape ``[..., T]`` (masked steps are 0).

With :math:`\rho_t = \pi_\theta(a_t|s_t)/\pi_{\theta_\mathrm{old}}(a_t|s_t)` the per-step terms are

- :func:`surrogate_loss`: :math:`-\log\pi_\theta(a_t|s_t)\,\hat A_t` (Williams 1992);
- :func:`ratio_surrogate`: :math:`-\rho_t\,\hat A_t` (Kakade & Langford 2002);
- :func:`clipped_surrogate`: :math:`-\min(\rho_t\hat A_t,\ \mathrm{clip}(\rho_t, 1-\epsilon, 1+\epsilon)\hat A_t)` (Schulman et al. 2017);
- :func:`entropy_bonus`: :math:`-\mathcal H(\pi_\theta(\cdot|s_t))`, the entropy of the policy at the visited state;
- :func:`kl_penalty`: an estimate of :math:`\mathrm{KL}(\pi_{\theta_\mathrm{old}}(\cdot|s_t)\,\|\,\pi_\theta(\cdot|s_t))`.

Their gradients: :math:`\nabla(-\log\pi\,\hat A) = -\nabla\log\pi\,\hat A` (the REINFORCE term);
:math:`\nabla(-\rho\hat A) = -\rho\,\nabla\log\pi_\theta\,\hat A` (the importance-weighted term, equal
to the REINFORCE term at :math:`\theta = \theta_\mathrm{old}`); the clipped term has the same gradient as the
ratio term except where :func:`clip_mask` is True, where it is zero.
"""

from __future__ import annotations

import torch

from pglib import validate
from pglib.returns import discount_weights, reward_to_go

__all__ = ["surrogate_loss", "importance_ratio", "ratio_surrogate", "clipped_surrogate", "clip_mask",
           "categorical_kl", "kl_penalty", "entropy_bonus", "reduce_terms", "surrogate_values"]

_REDUCTIONS = ("trajectory", "mean", "none")
_LOGP = ("logp", "logp_new", "logp_old")  # inputs that are log-probabilities (<= 0)


def _as_tensor(x, name: str, like: torch.Tensor | None = None) -> torch.Tensor:
    """A real ``[..., T]`` tensor (a floating tensor keeps its dtype; others take ``like``'s or float64);
    NaN is refused everywhere, infinities only at real steps (see :func:`_check_steps`)."""
    dtype = None if isinstance(x, torch.Tensor) else (like.dtype if like is not None else torch.float64)
    x = validate.floats(x, name, dtype=dtype, allow_nonfinite=True)
    if x.ndim < 1:
        raise ValueError(f"{name} must have a time axis as its last dimension, shape [..., T]; got a scalar")
    if bool(torch.isnan(x.detach()).any()):
        raise ValueError(f"{name} contains NaN; expected finite values (mask ended steps, do not fill them with NaN)")
    return x


def _check_steps(mask, reduction: str, density: bool = False, **tensors) -> tuple:
    """The door of every loss: per-step inputs ``[..., T]`` of one shape (the first names it), a bool
    ``mask`` of that shape (or None), a known ``reduction``; finite values and log-probabilities <= 0
    at the real steps (padding at masked steps may hold anything but NaN); ``density=True``: ``logp``
    holds log-densities of continuous actions, which may be positive."""
    density = validate.flag(density, "density")
    validate.one_of(reduction, "reduction", _REDUCTIONS)
    names = list(tensors)
    out, like = {}, None
    for name in names:
        out[name] = _as_tensor(tensors[name], name, like)
        like = out[names[0]]
    validate.same_shape(names[0], like, **{n: out[n] for n in names[1:]})
    m = None if mask is None else validate.mask(mask, "mask", shape=tuple(like.shape), dims=f"of {names[0]}")
    if reduction != "none" and like.numel() == 0:  # a mean over nothing is NaN, not a loss
        raise ValueError(f"{names[0]} must hold at least one step to reduce with reduction={reduction!r}; "
                         f"got shape {tuple(like.shape)} (an empty batch)")
    for name, x in out.items():
        real = x.detach() if m is None else x.detach()[m]
        if not bool(torch.isfinite(real).all()):
            raise ValueError(f"{name} must be finite at the real steps (mask True); got {real[~torch.isfinite(real)][0]}")
        if name in _LOGP and not density and bool((real > 1e-12).any()):
            raise ValueError(f"{name} must hold log-probabilities (<= 0); the largest is {real.max().item():.4g}")
    return (*out.values(), m)


def reduce_terms(terms: torch.Tensor, mask: torch.Tensor | None, reduction: str) -> torch.Tensor:
    """Per-step loss terms ``[..., T]`` (masked steps set to 0) reduced as every loss here reduces them:
    ``"trajectory"`` sums over steps and averages over trajectories, ``"mean"`` averages over all
    entries, ``"none"`` keeps ``[..., T]``. Masked steps may hold inf or NaN (a ratio of padding):
    they are replaced, never multiplied."""
    terms = validate.floats(terms, "terms", dtype=None, min_ndim=1, allow_nonfinite=True, integers=False)
    if mask is not None:
        mask = validate.mask(mask, "mask", shape=tuple(terms.shape), dims="of terms")
    reduction = validate.one_of(reduction, "reduction", ("trajectory", "mean", "none"))
    if mask is not None:
        # torch.where, not multiplication: a masked step may hold inf (e.g. a ratio of padding) and 0*inf = nan.
        terms = torch.where(mask, terms, torch.zeros((), dtype=terms.dtype))
    if reduction == "none":
        return terms
    if reduction == "mean":
        return terms.mean()
    return terms.sum(-1).mean() if terms.ndim > 1 else terms.sum(-1)


def surrogate_loss(logp, advantages, mask=None, reduction: str = "trajectory",
                   density: bool = False) -> torch.Tensor:
    r"""The on-policy surrogate loss :math:`-\log\pi_\theta(a_t|s_t)\,\hat A_t`, reduced
    by ``reduction``.

    Its gradient with the reduction ``"trajectory"`` is minus the REINFORCE estimate
    :math:`\frac1N\sum_n\sum_t \nabla\log\pi_\theta(a_{n,t}|s_{n,t})\,\hat A_{n,t}`
    (Williams 1992).

    Shapes: ``logp`` ``[..., T]``, ``advantages`` ``[..., T]``, ``mask`` bool
    ``[..., T]`` or None; returns a scalar (``"trajectory"``, ``"mean"``) or
    ``[..., T]`` (``"none"``).
    ``density=True``: ``logp`` are log-densities of continuous actions, which may be
    positive, so the check that they are <= 0 is skipped.

    Example::

        >>> logp = torch.log(torch.tensor([[0.5, 0.25]]))
        >>> surrogate_loss(logp, torch.tensor([[1.0, 2.0]]))
        tensor(3.4657)   # = -(log 0.5 * 1 + log 0.25 * 2)
    """
    logp, advantages, mask = _check_steps(mask, reduction, density=density, logp=logp,
                                          advantages=advantages)
    return reduce_terms(-logp * advantages.detach(), mask, reduction)


def importance_ratio(logp_new, logp_old) -> torch.Tensor:
    r"""Per-step ratios :math:`\rho_t = \exp(\log\pi_\theta(a_t|s_t) - \log\pi_{\theta_\mathrm{old}}(a_t|s_t))`.

    Differentiable in ``logp_new``; ``logp_old`` is detached. Shapes ``[..., T]`` -> ``[..., T]``.
    """
    return torch.exp(_log_ratio(logp_new, logp_old))


def _log_ratio(logp_new, logp_old, density: bool = False) -> torch.Tensor:
    r"""Checked :math:`\log\rho_t` = ``logp_new - logp_old.detach()``, ``[..., T]``."""
    logp_new, logp_old, _ = _check_steps(None, "none", density=density, logp_new=logp_new,
                                         logp_old=logp_old)
    return logp_new - logp_old.detach()


def ratio_surrogate(logp_new, logp_old, advantages, mask=None, reduction: str = "trajectory") -> torch.Tensor:
    r"""The importance-weighted surrogate loss :math:`-\rho_t\,\hat A_t` (Kakade & Langford 2002).

    Its gradient is :math:`-\rho_t\,\nabla\log\pi_\theta(a_t|s_t)\,\hat A_t` per step: the single-step
    importance-weighted estimator. With data from :math:`\pi_{\theta_\mathrm{old}}` it corrects the *action*
    distribution at the visited states, not the distribution of the states themselves.

    Shapes: ``logp_new``, ``logp_old``, ``advantages``, ``mask`` all ``[..., T]``.

    Example::

        >>> lp_old = torch.log(torch.tensor([0.5]))
        >>> ratio_surrogate(torch.log(torch.tensor([0.75])), lp_old, torch.tensor([2.0]))
        tensor(-3.)       # = -(0.75 / 0.5) * 2
    """
    logp_new, logp_old, adv, mask = _check_steps(mask, reduction, logp_new=logp_new, logp_old=logp_old,
                                                 advantages=advantages)
    rho = importance_ratio(logp_new, logp_old)
    return reduce_terms(-rho * adv.detach(), mask, reduction)


def clipped_surrogate(logp_new, logp_old, advantages, eps: float = 0.2, mask=None,
                      reduction: str = "trajectory",
                      density: bool = False) -> torch.Tensor:
    r"""PPO's clipped surrogate loss (Schulman et al. 2017, eq. 7), per step

    .. math:: -\min\big(\rho_t\hat A_t,
              \ \mathrm{clip}(\rho_t, 1-\epsilon, 1+\epsilon)\,\hat A_t\big).

    The minimum makes the objective pessimistic: moving :math:`\rho_t` beyond the clip
    range in the direction the advantage favours earns nothing, so the gradient of that
    step is zero (see :func:`clip_mask`); moving it the other way is charged in full.
    Where no step is clipped the value and gradient equal :func:`ratio_surrogate`'s.

    Shapes: ``logp_new``, ``logp_old``, ``advantages``, ``mask`` all ``[..., T]``;
    ``0 < eps < 1``. ``density=True``: log-densities of continuous actions (may be > 0).

    Example::

        >>> lp_old = torch.log(torch.tensor([0.5, 0.5]))
        >>> lp_new = torch.log(torch.tensor([0.75, 0.75]))
        >>> clipped_surrogate(lp_new, lp_old, torch.tensor([1.0, -1.0]), eps=0.2)
        tensor(0.3000)    # = -(min(1.5, 1.2) * 1) - (min(-1.5, -1.2)) = -1.2 + 1.5
    """
    eps = validate.clip_eps(eps)
    logp_new, logp_old, adv, mask = _check_steps(mask, reduction, density=density, logp_new=logp_new,
                                                 logp_old=logp_old, advantages=advantages)
    rho, adv = torch.exp(logp_new - logp_old.detach()), adv.detach()
    terms = -torch.minimum(rho * adv, torch.clamp(rho, 1.0 - eps, 1.0 + eps) * adv)
    return reduce_terms(terms, mask, reduction)


def clip_mask(ratio, advantages, eps: float = 0.2) -> torch.Tensor:
    r"""Where the clipped surrogate's gradient is zero: bool, same shape as ``ratio``.

    True where :math:`\hat A_t > 0` and :math:`\rho_t > 1+\epsilon`, or
    :math:`\hat A_t < 0` and :math:`\rho_t < 1-\epsilon`: the ratio is already outside
    the clip range on the side the advantage pushes it towards. (Where
    :math:`\hat A_t = 0` the gradient is zero anyway; the mask says False.)

    Example::

        >>> ratio = torch.tensor([1.5, 1.5, 0.5, 0.5])
        >>> clip_mask(ratio, torch.tensor([1.0, -1.0, 1.0, -1.0]), eps=0.2)
        tensor([ True, False, False,  True])
    """
    eps = validate.clip_eps(eps)
    ratio, adv, _ = _check_steps(None, "none", ratio=ratio, advantages=advantages)
    if (ratio.detach() < 0).any():
        raise ValueError(f"ratio must be >= 0 (a ratio of probabilities); "
                         f"the smallest is {ratio.min().item():.4g}")
    ratio, adv = ratio.detach(), adv.detach()
    return ((adv > 0) & (ratio > 1.0 + eps)) | ((adv < 0) & (ratio < 1.0 - eps))


def categorical_kl(logits_p, logits_q) -> torch.Tensor:
    r"""Exact :math:`\mathrm{KL}(p\,\|\,q) = \sum_a p(a)\,(\log p(a) - \log q(a))` of two categorical
    distributions given by logits over the last axis. Shapes ``[..., A]``, ``[..., A]`` -> ``[...]``.

    Example::

        >>> categorical_kl(torch.log(torch.tensor([0.5, 0.5])), torch.log(torch.tensor([0.9, 0.1])))
        tensor(0.5108)    # = 0.5 log(0.5/0.9) + 0.5 log(0.5/0.1)
    """
    lp, lq, _ = _check_steps(None, "none", logits_p=logits_p, logits_q=logits_q)
    lp, lq = torch.log_softmax(lp, -1), torch.log_softmax(lq, -1)
    p = lp.exp()
    # 0 * log 0 = 0: where p(a) = 0 the term vanishes whatever q(a) is.
    return torch.where(p > 0, p * (lp - lq), torch.zeros((), dtype=p.dtype)).sum(-1)


_KL_ESTIMATORS = ("k1", "k3")


def kl_penalty(logp_new, logp_old, mask=None, estimator: str = "k3", reduction: str = "trajectory",
               density: bool = False) -> torch.Tensor:
    r"""A sample estimate of :math:`\mathrm{KL}(\pi_{\theta_\mathrm{old}}(\cdot|s_t)\,\|\,\pi_\theta(\cdot|s_t))` per step,
    from actions drawn from the behaviour policy; add ``beta * kl_penalty(...)`` to a loss
    (the KL-penalized objective of Schulman et al. 2017, section 4).

    With :math:`\rho_t = \pi_\theta(a_t|s_t)/\pi_{\theta_\mathrm{old}}(a_t|s_t)`, :math:`a_t\sim\pi_{\theta_\mathrm{old}}`:

    - ``"k1"``: :math:`-\log\rho_t`; unbiased, can be negative;
    - ``"k3"`` (default): :math:`(\rho_t - 1) - \log\rho_t \ge 0`; unbiased because :math:`\mathbb{E}[\rho_t]=1`,
      and of lower variance when the policies are close.

    Both have expected gradient :math:`\nabla_\theta\mathrm{KL}(\pi_{\theta_\mathrm{old}}\|\pi_\theta)`
    (:math:`\mathbb{E}_{\mathrm{old}}[\rho\nabla\log\pi_\theta] = \mathbb{E}_\theta[\nabla\log\pi_\theta] = 0`), which is zero at
    :math:`\theta=\theta_\mathrm{old}`. For the exact per-state value use :func:`categorical_kl`.

    Shapes: ``logp_new``, ``logp_old``, ``mask`` all ``[..., T]``. ``density=True``:
    log-densities of continuous actions (may be > 0).

    Example::

        >>> kl_penalty(torch.log(torch.tensor([0.25])), torch.log(torch.tensor([0.5])))
        tensor(0.1931)    # = (0.5 - 1) - log 0.5
    """
    validate.one_of(estimator, "estimator", _KL_ESTIMATORS)
    logp_new, logp_old, mask = _check_steps(mask, reduction, density=density, logp_new=logp_new,
                                            logp_old=logp_old)
    log_rho = logp_new - logp_old.detach()
    rho = torch.exp(log_rho)
    terms = -log_rho if estimator == "k1" else (rho - 1.0) - log_rho
    return reduce_terms(terms, mask, reduction)


def surrogate_values(traj, logits, gamma: float) -> torch.Tensor:
    r"""Per-trajectory :math:`\sum_t m_t\,\gamma^t\log\pi_\theta(a_t|s_t)\,G_t`, shape ``[N]``; its mean
    estimates :func:`pglib.expected.surrogate`. ``traj``: a :class:`pglib.sampling.Trajectories` batch."""
    logits = validate.batch_logits(traj, logits)
    gamma = validate.gamma(gamma)
    log_pi = torch.log_softmax(logits, -1)[traj.states, traj.actions]  # [N, T]
    G = reward_to_go(torch.where(traj.mask, traj.rewards, torch.zeros((), dtype=validate.DTYPE)), gamma)
    disc = discount_weights(traj.horizon, gamma, like=G)
    return torch.where(traj.mask, disc * log_pi * G, torch.zeros((), dtype=validate.DTYPE)).sum(-1)


def entropy_bonus(entropy, mask=None, reduction: str = "trajectory") -> torch.Tensor:
    r"""Minus the policy's entropy at the visited states, :math:`-\mathcal H(\pi_\theta(\cdot|s_t))`
    per step, reduced by ``reduction``; add ``beta * entropy_bonus(...)`` to a loss (PPO's entropy
    term, Schulman et al. 2017, eq. 9).

    ``entropy`` is the differentiable per-state entropy, e.g. ``policy(obs).entropy()``: exact, not a
    sample. The gradient of the term holds the visited states fixed: it is
    :math:`-\sum_t\nabla_\theta\mathcal H(\pi_\theta(\cdot|s_t))`, the part of
    :math:`\nabla_\theta\,\mathbb E[\sum_t \mathcal H(\pi_\theta(\cdot|s_t))]` that acts through the
    action probabilities. The part that acts through which states are visited is missing (chapter 12
    measures it exactly); it is the score-function term of a reward :math:`\mathcal H(s_t)`.

    Shapes: ``entropy``, ``mask`` ``[..., T]``; differential entropies of continuous actions may be
    negative.

    Example::

        >>> entropy_bonus(torch.tensor([[0.5, 0.25]]))
        tensor(-0.7500)
    """
    entropy, mask = _check_steps(mask, reduction, entropy=entropy)
    return reduce_terms(-entropy, mask, reduction)
