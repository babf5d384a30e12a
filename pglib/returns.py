"""Returns and reward-to-go.

Axis convention (used everywhere in pglib): time is the **last** axis. A batch of
``N`` trajectories of length ``T`` is ``[N, T]``; a single trajectory is ``[T]``.
Positions after an episode has ended must hold reward 0 (the samplers do this).
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

from pglib import validate

__all__ = ["check_gamma", "reward_to_go", "total_return", "discounts", "discount_weights", "reward_to_go_episodic",
           "gae"]

Array = TypeVar("Array", np.ndarray, torch.Tensor)


def check_gamma(gamma: float, name: str = "gamma") -> float:
    """Return ``gamma`` as a float in [0, 1], or raise (see :func:`pglib.validate.gamma`)."""
    return validate.gamma(gamma, name)


def reward_to_go(rewards: Array, gamma: float) -> Array:
    r"""Discounted reward-to-go along the last axis.

    .. math:: G_t = \sum_{k=t}^{T-1} \gamma^{k-t} r_k

    Shapes: ``[..., T] -> [..., T]``; numpy in, numpy out; torch in, torch out.

    Example: ``reward_to_go([x0, x1, x2], g) == [x0 + g*x1 + g**2*x2, x1 + g*x2, x2]``.
    """
    gamma = validate.gamma(gamma)
    out = validate.float_array(rewards, "rewards", min_ndim=1)  # a float copy: ints become float64
    # A loop over time (not over trajectories): G_t = r_t + gamma * G_{t+1}.
    for t in range(out.shape[-1] - 2, -1, -1):
        out[..., t] = out[..., t] + gamma * out[..., t + 1]
    return out


def total_return(rewards: Array, gamma: float = 1.0) -> Array:
    r"""Discounted return of each trajectory, :math:`R = \sum_t \gamma^t r_t`. Shapes ``[..., T] -> [...]``."""
    return reward_to_go(rewards, gamma)[..., 0]


def discounts(gamma: float, t: Array) -> Array:
    r""":math:`\gamma^t` at each entry of the step indices ``t`` (numpy or torch, any shape): the one
    place pglib raises the discount to a power. Entries the caller masks out (a rollout's padding
    holds -1) are raised like any other; ``t`` is checked for its kind, not its values."""
    gamma = validate.gamma(gamma)
    if not isinstance(t, (np.ndarray, torch.Tensor)) or t.dtype in (torch.bool, np.bool_) \
            or (t.is_complex() if isinstance(t, torch.Tensor) else np.iscomplexobj(t)) \
            or (isinstance(t, np.ndarray) and t.dtype.kind not in "iuf"):
        raise validate.ArgumentTypeError(f"t must be a real numpy array or torch tensor of step indices; "
                                         f"got {validate.describe(t)}")
    return gamma ** t


def discount_weights(horizon: int, gamma: float, like: Array | None = None) -> Array:
    r"""Per-step discount factors :math:`[\gamma^0, \gamma^1, \dots, \gamma^{T-1}]`, shape ``[T]``.

    ``gamma = 0`` gives ``[1, 0, 0, ...]`` (the convention :math:`0^0 = 1`).
    """
    gamma = validate.gamma(gamma)
    horizon = validate.steps(horizon, "horizon", minimum=0)
    if like is not None and not isinstance(like, (np.ndarray, torch.Tensor)):
        raise validate.ArgumentTypeError(f"like must be None, a numpy array or a torch tensor; got {type(like).__name__}")
    w = discounts(gamma, torch.arange(horizon, dtype=torch.float64))
    if isinstance(like, torch.Tensor):
        return w.to(dtype=like.dtype if like.is_floating_point() else torch.float64, device=like.device)
    return w.numpy()


# ---------------------------------------------------------------------------
# Batches with episode boundaries (vector-environment rollouts) and GAE.
# ---------------------------------------------------------------------------


def _as_float_flags(flags, like: Array, name: str) -> Array:
    """Boolean flags ``[..., T]`` as 0./1. in the float type (and library) of ``like``."""
    f = validate.mask(flags, name, shape=tuple(like.shape), dims="of rewards")
    if isinstance(like, torch.Tensor):
        return f.to(device=like.device, dtype=like.dtype)
    return f.numpy().astype(like.dtype)


def _float_copy(x, name: str) -> Array:
    return validate.float_array(x, name, min_ndim=1)


def reward_to_go_episodic(
    rewards: Array,
    gamma: float,
    terminated,
    truncated,
    next_values: Array | None = None,
    mask=None,
) -> Array:
    r"""Reward-to-go that restarts at every episode boundary inside a batch of segments.

    For a row of a vector-environment rollout (time last, ``[..., T]``)

    .. math::
        G_t = r_t + \gamma\,\begin{cases}
            0 & \text{terminated after } t,\\
            \hat V(s_{t+1}) & \text{truncated after } t \text{, or } t = T-1 \text{ (segment's end)},\\
            G_{t+1} & \text{otherwise,}
        \end{cases}

    with :math:`\hat V(s_{t+1})` = ``next_values[..., t]`` (0 when ``next_values`` is None: no
    bootstrap, the time-limited return). A time limit is not a terminal state: bootstrapping
    from a value estimate there targets the return the episode would have continued to earn.

    ``mask`` (bool ``[..., T]``, optional) marks real steps; masked steps (autoreset steps,
    padding after an episode) get ``G = 0`` and must follow an episode end.

    Shapes: rewards, terminated, truncated, next_values, mask ``[..., T]`` -> ``[..., T]``.

    Example: rewards ``[1, 1, 1, 1]``, terminated after step 1, gamma ``g``, no bootstrap:
    ``[1 + g, 1, 1 + g, 1]``.
    """
    gamma = validate.gamma(gamma)
    out = _float_copy(rewards, "rewards")
    term = _as_float_flags(terminated, out, "terminated")
    trunc = _as_float_flags(truncated, out, "truncated")
    boot = None if next_values is None else _float_copy(next_values, "next_values")
    if boot is not None and tuple(boot.shape) != tuple(out.shape):
        raise ValueError(f"next_values must have the shape of rewards {tuple(out.shape)}, got {tuple(boot.shape)}")
    if out.shape[-1] == 0:
        return out
    cut = term + trunc - term * trunc  # logical or, as floats: G_{t+1} does not carry over after t
    cut[..., -1] = 1.0  # the segment's end cuts too
    if boot is not None:  # r_t + gamma * V(s_{t+1}) where an episode is cut without terminating
        out += gamma * (cut * ((1.0 - term) * boot))
    keep = gamma * (1.0 - cut)  # gamma inside an episode, 0 at a cut
    # G_t = out_t + keep_t * G_{t+1}, from the back: two whole-batch operations per time step
    for t in range(out.shape[-1] - 2, -1, -1):
        out[..., t] += keep[..., t] * out[..., t + 1]
    if mask is not None:
        out = out * _as_float_flags(mask, out, "mask")
    return out


def gae(
    rewards: Array,
    values: Array,
    next_values: Array,
    terminated,
    truncated,
    gamma: float,
    lam: float,
    mask=None,
) -> tuple[Array, Array]:
    r"""Generalized advantage estimation, GAE(:math:`\gamma,\lambda`) (Schulman et al., 2016).

    .. math::
        \delta_t = r_t + \gamma\,(1-\mathrm{term}_t)\,V(s_{t+1}) - V(s_t),\qquad
        \hat A_t = \delta_t + \gamma\lambda\,(1-\mathrm{end}_t)\,\hat A_{t+1},

    where :math:`\mathrm{end}_t` = terminated or truncated after step :math:`t`, and the
    segment's last step is an end too. Returns ``(advantages, returns)`` with
    ``returns = advantages + values`` (the regression targets of the value baseline).

    :math:`\lambda = 1` gives reward-to-go minus the baseline,
    ``reward_to_go_episodic(rewards, gamma, terminated, truncated, next_values) - values``
    (the REINFORCE-with-baseline weight); :math:`\lambda = 0` gives the one-step TD error
    (actor-critic). ``values[..., t]`` is :math:`V(s_t)`, ``next_values[..., t]`` is
    :math:`V(s_{t+1})` (the true next state, also at a truncation).

    Shapes: every input ``[..., T]``; outputs ``[..., T]``. Masked steps get 0.

    Example (one step, not terminal): ``gae([r], [v], [v1], [False], [False], g, l)`` is
    ``([r + g*v1 - v], [r + g*v1])``.
    """
    gamma = validate.gamma(gamma)
    lam = validate.gamma(lam, "lam")
    r = _float_copy(rewards, "rewards")
    v = _float_copy(values, "values")
    nv = _float_copy(next_values, "next_values")
    for name, x in (("values", v), ("next_values", nv)):
        if tuple(x.shape) != tuple(r.shape):
            raise ValueError(f"{name} must have the shape of rewards {tuple(r.shape)}, got {tuple(x.shape)}")
    term = _as_float_flags(terminated, r, "terminated")
    trunc = _as_float_flags(truncated, r, "truncated")
    end = term + trunc - term * trunc
    delta = r + gamma * (1.0 - term) * nv - v
    adv = delta  # overwritten in place from the back; delta is a fresh array
    carry = gamma * lam * (1.0 - end)  # gamma * lambda inside an episode, 0 after its last step
    for t in range(r.shape[-1] - 2, -1, -1):
        adv[..., t] += carry[..., t] * adv[..., t + 1]
    if mask is not None:
        m = _as_float_flags(mask, r, "mask")
        adv = adv * m
        return adv, (adv + v) * m
    return adv, adv + v
