"""The book's figure style for training runs: learning curves over seeds with confidence bands.

A run's curve is the mean undiscounted return of its last ``window`` finished episodes, read off
at each point of a grid of environment steps (the quantity the CartPole "solved" criterion uses);
curves of several seeds are averaged, with a two-sided 95% Student-t band for the mean.
"""

from __future__ import annotations

import warnings
from typing import Mapping, Sequence

import numpy as np
from scipy import stats

from pglib import validate

__all__ = ["running_return", "mean_and_band", "learning_curves"]


def running_return(episode_steps: Sequence[int], episode_returns: Sequence[float], grid: np.ndarray,
                   window: int = 20) -> np.ndarray:
    """Mean return of the last ``window`` episodes finished by each step in ``grid`` (NaN before the first).

    Example: episodes ending at steps [10, 20] with returns [1, 3], window 2, grid [5, 15, 25] -> [nan, 1, 2].
    """
    steps = validate.integers(episode_steps, "episode_steps", ndim=1).numpy()
    r = validate.floats(episode_returns, "episode_returns", ndim=1).numpy()
    grid = validate.floats(grid, "grid", ndim=1).numpy()
    window = validate.positive_int(window, "window")
    if steps.shape != r.shape:
        raise ValueError(f"episode_steps and episode_returns must have the same length, got {steps.shape} and {r.shape}")
    if steps.size and bool((np.diff(steps) < 0).any()):
        raise ValueError("episode_steps must be non-decreasing (the step at which each episode finished, in order)")
    csum = np.concatenate([[0.0], np.cumsum(r)])
    k = np.searchsorted(steps, np.asarray(grid), side="right")  # episodes finished by each grid point
    lo = np.maximum(k - window, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (csum[k] - csum[lo]) / (k - lo)
    return np.where(k > 0, out, np.nan)


def mean_and_band(curves: np.ndarray, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Across-seed mean of ``curves [n_seeds, G]`` and a Student-t confidence band ``(low, high)``."""
    curves = validate.floats(curves, "curves", ndim=2, dims="[n_seeds, G]", allow_nonfinite=True).numpy()
    if bool(np.isinf(curves).any()):
        raise ValueError("curves must hold finite numbers or NaN (no data yet); got an infinity")
    confidence = validate.real(confidence, "confidence", low=0.0, high=1.0, low_open=True, high_open=True)
    n = np.sum(~np.isnan(curves), axis=0)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(curves, axis=0)
        sem = np.nanstd(curves, axis=0, ddof=1) / np.sqrt(n)
    half = stats.t.ppf(0.5 + confidence / 2, np.maximum(n - 1, 1)) * np.where(n > 1, sem, np.nan)
    return mean, mean - half, mean + half


def learning_curves(ax, runs: Mapping[str, Sequence], grid: np.ndarray, window: int = 20, confidence: float = 0.95,
                    title: str | None = None, ylabel: str = "return (mean of last 20 episodes)", threshold: float | None = None):
    """Plot, for each label, the across-seed mean running return vs environment steps with a confidence band.

    ``runs[label]`` is a list of :class:`pglib.practice.train.History` (one per seed). Returns ``ax``.
    """
    if not isinstance(runs, Mapping) or not runs:
        raise validate.ArgumentTypeError(f"runs must be a non-empty mapping label -> list of histories; "
                                         f"got {validate.describe(runs)}")
    if threshold is not None:
        threshold = validate.real(threshold, "threshold")
    for label, histories in runs.items():
        curves = np.stack([running_return(h.episode_steps, h.episode_returns, grid, window) for h in histories])
        mean, low, high = mean_and_band(curves, confidence)
        (line,) = ax.plot(grid, mean, label=f"{label} ({len(histories)} seeds)")
        ax.fill_between(grid, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
    if threshold is not None:
        ax.axhline(threshold, color="gray", linestyle="--", linewidth=1, label=f"solved ({threshold:g})")
    ax.set_xlabel("environment steps")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(fontsize="small")
    return ax
