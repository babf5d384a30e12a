"""Returns and reward-to-go.

Axis convention (used everywhere in pglib): time is the **last** axis. A batch of
``N`` trajectories of length ``T`` is ``[N, T]``; a single trajectory is ``[T]``.
Positions after an episode has ended must hold reward 0 (the samplers do this).
"""

from __future__ import annotations

import math
from typing import TypeVar

import numpy as np
import torch

Array = TypeVar("Array", np.ndarray, torch.Tensor)


def check_gamma(gamma: float, name: str = "gamma") -> float:
    """Return ``gamma`` as a float, or raise ``ValueError`` unless it lies in [0, 1]."""
    try:
        g = float(gamma)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in [0, 1], got {gamma!r}") from None
    if not (0.0 <= g <= 1.0) or math.isnan(g):
        raise ValueError(f"{name} must lie in [0, 1], got {gamma!r}")
    return g


def _check_rewards(rewards: Array) -> None:
    if rewards.ndim < 1:
        raise ValueError(
            f"rewards must have a time axis as its last dimension, shape [..., T]; got a scalar of shape {tuple(rewards.shape)}"
        )
    bad = torch.isnan(rewards).any() if isinstance(rewards, torch.Tensor) else np.isnan(rewards).any()
    if bad:
        raise ValueError("rewards contain NaN; expected finite rewards (mask ended steps with 0, not NaN)")


def reward_to_go(rewards: Array, gamma: float) -> Array:
    r"""Discounted reward-to-go along the last axis.

    .. math:: G_t = \sum_{k=t}^{T-1} \gamma^{k-t} r_k

    Shapes: ``[..., T] -> [..., T]``; numpy in, numpy out; torch in, torch out.

    Example: ``reward_to_go([x0, x1, x2], g) == [x0 + g*x1 + g**2*x2, x1 + g*x2, x2]``.
    """
    if not isinstance(rewards, (np.ndarray, torch.Tensor)):
        rewards = np.asarray(rewards, dtype=np.float64)
    gamma = check_gamma(gamma)
    _check_rewards(rewards)
    out = rewards.clone() if isinstance(rewards, torch.Tensor) else np.array(rewards, dtype=np.result_type(rewards, np.float64))
    # A loop over time (not over trajectories): G_t = r_t + gamma * G_{t+1}.
    for t in range(out.shape[-1] - 2, -1, -1):
        out[..., t] = out[..., t] + gamma * out[..., t + 1]
    return out


def total_return(rewards: Array, gamma: float = 1.0) -> Array:
    r"""Discounted return of each trajectory, :math:`R = \sum_t \gamma^t r_t`. Shapes ``[..., T] -> [...]``."""
    return reward_to_go(rewards, gamma)[..., 0]


def discount_weights(horizon: int, gamma: float, like: Array | None = None) -> Array:
    r"""Per-step discount factors :math:`[\gamma^0, \gamma^1, \dots, \gamma^{T-1}]`, shape ``[T]``.

    ``gamma = 0`` gives ``[1, 0, 0, ...]`` (the convention :math:`0^0 = 1`).
    """
    gamma = check_gamma(gamma)
    if int(horizon) != horizon or horizon < 0:
        raise ValueError(f"horizon must be a non-negative integer, got {horizon!r}")
    w = np.array([gamma**t for t in range(int(horizon))], dtype=np.float64)
    if isinstance(like, torch.Tensor):
        return torch.as_tensor(w, dtype=like.dtype if like.is_floating_point() else torch.float64, device=like.device)
    return w
