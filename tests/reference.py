"""Plain reference implementations that several test modules check pglib against."""

from __future__ import annotations

import itertools

import torch


def central_differences(f, x, h=1e-6):
    """Gradient of scalar f at x (any shape) by central differences."""
    g = torch.zeros_like(x)
    for idx in itertools.product(*map(range, x.shape)):
        e = torch.zeros_like(x)
        e[idx] = h
        g[idx] = (f(x + e) - f(x - e)) / (2 * h)
    return g


def softmax_score(pi, s, a):
    """d log pi(a|s) / d logits for the softmax policy pi = softmax(logits), one (s, a), by the one-hot formula."""
    g = torch.zeros_like(pi)
    g[s] = -pi[s]
    g[s, a] += 1.0
    return g


def clipped_by_cases(rho, adv, eps):
    """PPO's per-step objective written out case by case (not with min/clamp)."""
    if adv >= 0:
        return (1 + eps) * adv if rho > 1 + eps else rho * adv
    return (1 - eps) * adv if rho < 1 - eps else rho * adv
