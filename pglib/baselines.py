r"""Baselines for score-function gradient estimators: what to subtract from the returns, and how.

A baseline :math:`b` turns the per-step weight :math:`G_t` of the reward-to-go estimator into
:math:`G_t - b_t`. It leaves the expectation unchanged when :math:`b_t` does not depend on the
action :math:`a_t` (nor on anything that happens after it), because
:math:`\mathbb{E}_{a\sim\pi(\cdot|s)}[\nabla_\theta\log\pi_\theta(a|s)]\, b = 0`
(Williams 1992, Sutton et al. 2000). This module holds the baselines the book measures:

- :func:`optimal_constant_baseline`  the constant that minimizes the total variance,
  :math:`b^* = \mathbb{E}[\langle X, g\rangle] / \mathbb{E}[\lVert g\rVert^2]`
  (Weaver & Tao 2001; Greensmith, Bartlett & Baxter 2004);
- :func:`optimal_linear_baseline`    the same for a baseline :math:`\sum_c \beta_c \phi_c` with several
  coefficients, e.g. a table :math:`b_t(s)` (one coefficient per time and state): least squares;
- :func:`leave_one_out_mean`         the batch mean of the *other* trajectories (no self-influence);
- :func:`fit_tabular_values`         a state (and time) value table fitted by least squares on returns;
- :func:`values_at`                  a value table read off along sampled trajectories, ``[N, T]``;
- :func:`standardize`                advantage normalization, over the batch or within each episode.

Shapes follow pglib's convention: trajectories are ``[N, T]`` (time last); per-trajectory gradient
estimates are ``[N, *param_shape]``.
"""

from __future__ import annotations

import torch

from pglib import validate
from pglib.estimators import weighted_score_sum
from pglib.mdp import DTYPE

__all__ = ["optimal_constant_baseline", "optimal_linear_baseline", "time_state_features", "leave_one_out_mean", "fit_tabular_values", "values_at", "standardize"]


def _check_rows(estimates, scores, sample_weights) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``X [N, *P]``, ``g [N, *P]`` and row weights ``w [N]`` (non-negative; default 1/N)."""
    X = validate.floats(estimates, "estimates", min_ndim=1)
    g = validate.floats(scores, "scores", min_ndim=1)
    if X.shape != g.shape:
        raise ValueError(f"estimates and scores must have the same shape [N, ...]; got {tuple(X.shape)} and "
                         f"{tuple(g.shape)}")
    return X, g, _row_weights(sample_weights, X.shape[0])


def _row_weights(sample_weights, n: int) -> torch.Tensor:
    if n < 1:
        raise ValueError("estimates must hold at least one row (N >= 1)")
    if sample_weights is None:
        return torch.full((n,), 1.0 / n, dtype=DTYPE)
    w = validate.floats(sample_weights, "sample_weights", shape=(n,), dims="[N]")
    if bool((w < 0).any()):
        raise ValueError(f"sample_weights must be non-negative; got minimum {w.min().item():.3g}")
    return w


def optimal_constant_baseline(estimates, scores, sample_weights=None) -> torch.Tensor:
    r"""The constant :math:`b` that minimizes the total variance of :math:`X - b\,g`.

    Let :math:`X` be a per-trajectory gradient estimate without a baseline and :math:`g`
    the trajectory's summed score :math:`\sum_t\nabla_\theta\log\pi_\theta(a_t|s_t)` (so
    :math:`\mathbb{E}[g] = 0`). Subtracting a constant :math:`b` from every return gives
    :math:`X - b\,g`, whose total variance (the trace of its covariance)

    .. math::
        \mathbb{E}\lVert X\rVert^2 - 2b\,\mathbb{E}\langle X, g\rangle
        + b^2\,\mathbb{E}\lVert g\rVert^2 - \lVert\mathbb{E}X\rVert^2

    is a parabola in :math:`b` with its minimum at

    .. math:: b^* = \frac{\mathbb{E}[\langle X, g\rangle]}{\mathbb{E}[\lVert g\rVert^2]}
              \quad\Big(= \frac{\mathbb{E}[\lVert g\rVert^2 R]}
              {\mathbb{E}[\lVert g\rVert^2]}
              \text{ for the total-return estimator } X = g\,R\Big)

    (Weaver & Tao 2001; Greensmith, Bartlett & Baxter 2004, JMLR 5). The expectations
    are replaced by ``sample_weights``-weighted averages over the rows: equal weights (a
    sample: the plug-in estimate) or the trajectory probabilities of an enumeration (the
    exact value).

    Args:
        estimates: ``X``, shape ``[N, *P]``.
        scores: ``g``, shape ``[N, *P]`` (the same shape).
        sample_weights: optional ``[N]`` non-negative weights of the rows (e.g. the
            trajectory probabilities of an enumeration); default equal.

    Returns:
        a float64 scalar tensor.

    Example: a 2-armed bandit with rewards ``(1, 0)`` and policy ``(0.5, 0.5)`` has
    ``X = g * r``, ``|g|^2 = 0.5`` for both arms, so ``b* = 0.5`` (the mean reward)::

        >>> g = torch.tensor([[0.5, -0.5], [-0.5, 0.5]]); r = torch.tensor([1.0, 0.0])
        >>> optimal_constant_baseline(g * r[:, None], g).item()
        0.5
    """
    estimates, scores, sample_weights = _check_rows(estimates, scores, sample_weights)
    X, g, w = estimates, scores, sample_weights
    n = X.shape[0]
    cross = (X * g).reshape(n, -1).sum(-1)
    norm2 = (g * g).reshape(n, -1).sum(-1)
    denominator = (w * norm2).sum()
    if denominator <= 0:
        raise ValueError("scores are zero on every (weighted) row; the optimal "
                         "constant baseline is undefined")
    return (w * cross).sum() / denominator


def optimal_linear_baseline(estimates, features, sample_weights=None) -> torch.Tensor:
    r"""Coefficients :math:`\beta` minimizing the total variance of :math:`X - \sum_c \beta_c \phi_c`.

    Each feature :math:`\phi_c` is a score-weighted sum with mean zero, e.g.
    :math:`\phi_{(t,s)} = 1[s_t = s]\,\nabla_\theta\log\pi_\theta(a_t|s_t)` (see
    :func:`time_state_features`): subtracting :math:`\sum_c\beta_c\phi_c` is subtracting the
    baseline table :math:`b_t(s) = \beta_{(t,s)}` from :math:`G_t`. Since the mean does not move,
    minimizing the variance is least squares, :math:`\min_\beta \mathbb{E}\lVert X - \sum_c\beta_c\phi_c\rVert^2`,
    solved by the normal equations

    .. math:: \sum_{c'} \mathbb{E}\langle\phi_c, \phi_{c'}\rangle\,\beta_{c'} = \mathbb{E}\langle X, \phi_c\rangle .

    With one feature :math:`\phi = g` this is :func:`optimal_constant_baseline`. Expectations are
    ``sample_weights``-weighted averages over rows (default equal). Coefficients of features that are zero
    on every row are set to 0 (minimum-norm solution).

    Args:
        estimates: ``X``, ``[N, *P]``.
        features: ``[N, C, *P]``.
        sample_weights: optional ``[N]`` non-negative row weights.

    Returns:
        ``[C]`` float64.
    """
    X = validate.floats(estimates, "estimates", min_ndim=1)
    F = validate.floats(features, "features")
    if F.ndim != X.ndim + 1 or F.shape[0] != X.shape[0] or F.shape[2:] != X.shape[1:]:
        raise ValueError(f"features must have shape [N, C, *P] for estimates of shape [N, *P] = {tuple(X.shape)}; "
                         f"got {tuple(F.shape)}")
    n, C = X.shape[0], F.shape[1]
    w = _row_weights(sample_weights, n)
    Xf, Ff = X.reshape(n, -1), F.reshape(n, C, -1)
    gram = torch.einsum("n,ncp,ndp->cd", w, Ff, Ff)
    rhs = torch.einsum("n,ncp,np->c", w, Ff, Xf)
    return torch.linalg.pinv(gram, hermitian=True) @ rhs


def time_state_features(traj, logits) -> torch.Tensor:
    r"""Features :math:`\phi_{(t,s)} = m_t\,1[s_t = s]\,\nabla_\theta\log\pi_\theta(a_t|s_t)`, shape ``[N, T*S, S, A]``.

    ``-sum_c beta_c phi_c`` is the change that subtracting the table :math:`b_t(s) = \beta_{(t,s)}`
    (flattened as ``t * S + s``) makes to a reward-to-go estimate (undiscounted score). Use with
    :func:`optimal_linear_baseline` to find the variance-optimal time-and-state baseline.
    """
    logits = validate.batch_logits(traj, logits)
    S = logits.shape[0]
    N, T = traj.states.shape
    validate.memory(validate.nbytes(N, T * S, *logits.shape), f"time_state_features [N, T*S, S, A] = "
                    f"[{N}, {T * S}, {S}, {logits.shape[1]}]")
    feats = []
    for t in range(T):
        for s in range(S):
            w = torch.zeros(N, T, dtype=DTYPE)
            w[:, t] = (traj.states[:, t] == s).to(DTYPE)
            feats.append(weighted_score_sum(traj, logits, w))
    return torch.stack(feats, 1)


def leave_one_out_mean(values, dim: int = 0) -> torch.Tensor:
    r"""For each entry, the mean of the *other* entries along ``dim``: :math:`b_i = \frac{1}{B-1}\sum_{j\ne i} v_j`.

    Used as a baseline for trajectory ``i``, it is independent of trajectory ``i`` (when the
    trajectories are independent), so the estimator stays unbiased; the plain batch mean
    :math:`\frac1B\sum_j v_j` contains :math:`v_i` itself and shrinks the expected gradient
    by the factor :math:`1 - 1/B`.

    Shapes: ``values[..., B, ...]`` -> the same shape; ``B >= 2`` along ``dim``.

    Example: ``leave_one_out_mean([1., 2., 6.]) == [4., 3.5, 1.5]``.
    """
    v = validate.floats(values, "values", dtype=None, min_ndim=1)
    dim = validate.positive_int(dim, "dim", minimum=-v.ndim, maximum=v.ndim - 1)
    B = v.shape[dim]
    if B < 2:
        raise ValueError(f"values needs at least 2 entries along dim={dim} for a leave-one-out mean; got {B}")
    return (v.sum(dim, keepdim=True) - v) / (B - 1)


def _check_batch(states, targets, mask, n_states: int | None = None):
    states = validate.integers(states, "states", ndim=2, dims="[N, T]", high=n_states)
    targets = validate.floats(targets, "targets")
    validate.same_shape("states", states, targets=targets)
    mask = torch.ones(states.shape, dtype=torch.bool) if mask is None else \
        validate.mask(mask, "mask", shape=tuple(states.shape), dims="of states")
    return states, targets, mask


def fit_tabular_values(states, targets, n_states: int, mask=None, time_indexed: bool = True,
                       fill: float | None = None) -> torch.Tensor:
    r"""Least-squares tabular value estimate from Monte Carlo targets (e.g. rewards-to-go).

    With one-hot features for the cell :math:`c = (t, s_t)` (``time_indexed=True``) or
    :math:`c = s_t` (``False``), least squares
    :math:`\min_V \sum_{i,t} \mathrm{mask}_{i,t}\,(V_c - G_{i,t})^2` is solved by the average of the
    targets that fell in each cell: Monte Carlo policy evaluation (Sutton & Barto 2018, §5.1).
    Cells with no data get ``fill`` (default: the mean of all targets).

    Args:
        states: long ``[N, T]``.
        targets: float ``[N, T]``, e.g. ``reward_to_go(rewards, gamma)``.
        n_states: ``S``.
        mask: bool ``[N, T]``; only True steps are fitted (default: all).
        time_indexed: fit ``V[t, s]`` (finite horizon: the value depends on the time left) or ``V[s]``.
        fill: value of unvisited cells.

    Returns:
        ``[T, S]`` (``time_indexed``) or ``[S]``, float64.

    Example: ``fit_tabular_values([[0, 1], [0, 0]], [[3., 1.], [5., 2.]], 2, time_indexed=False)``
    is ``[10/3, 1.]``.
    """
    S = validate.positive_int(n_states, "n_states")
    states, targets, mask = _check_batch(states, targets, mask, S)
    time_indexed = validate.flag(time_indexed, "time_indexed")
    fill = None if fill is None else validate.real(fill, "fill")
    if not mask.any():
        raise ValueError("mask selects no step; nothing to fit")
    T = states.shape[1]
    cell = (torch.arange(T)[None, :] * S + states) if time_indexed else states
    n_cells = T * S if time_indexed else S
    w = mask.to(DTYPE)
    sums = torch.zeros(n_cells, dtype=DTYPE).index_add_(0, cell[mask], targets[mask])
    counts = torch.zeros(n_cells, dtype=DTYPE).index_add_(0, cell[mask], w[mask])
    default = float(targets[mask].mean()) if fill is None else fill
    V = torch.where(counts > 0, sums / counts.clamp(min=1), torch.full_like(sums, default))
    return V.reshape(T, S) if time_indexed else V


def values_at(values, states, mask=None) -> torch.Tensor:
    r"""A value table read along trajectories: :math:`b_{i,t} = V_t(s_{i,t})` (or :math:`V(s_{i,t})`), 0 where masked.

    Args:
        values: ``[T, S]`` (time-indexed) or ``[S]``.
        states: long ``[N, T]``.
        mask: bool ``[N, T]`` (default: all True).

    Returns:
        ``[N, T]`` float64.

    Example: ``values_at([[1., 2.], [3., 4.]], [[1, 0]]) == [[2., 3.]]``.
    """
    V = validate.floats(values, "values")
    if V.ndim not in (1, 2) or V.shape[-1] < 1:
        raise ValueError(f"values must have shape [S] or [T, S]; got {tuple(V.shape)}")
    states = validate.integers(states, "states", ndim=2, dims="[N, T]", high=V.shape[-1],
                               why=f"to index values of shape {tuple(V.shape)}")
    mask = torch.ones(states.shape, dtype=torch.bool) if mask is None else \
        validate.mask(mask, "mask", shape=tuple(states.shape), dims="of states")
    T = states.shape[1]
    if V.ndim == 1:
        out = V[states]
    elif V.ndim == 2:
        if V.shape[0] < T:
            raise ValueError(f"values must have at least T = {T} rows (one per step); got {tuple(V.shape)}")
        out = V[torch.arange(T)[None, :].expand_as(states), states]
    else:
        raise ValueError(f"values must have shape [S] or [T, S]; got {tuple(V.shape)}")
    return torch.where(mask, out, torch.zeros((), dtype=DTYPE))


def _check_standardize(advantages, mask, per_episode, eps) -> tuple[torch.Tensor, torch.Tensor, float]:
    A = validate.floats(advantages, "advantages", ndim=2, dims="[N, T]")
    mask = torch.ones(A.shape, dtype=torch.bool) if mask is None else \
        validate.mask(mask, "mask", shape=tuple(A.shape), dims="of advantages")
    if not bool(mask.any(-1).all() if validate.flag(per_episode, "per_episode") else mask.any()):
        raise ValueError("mask leaves an episode (or the batch) with no real step to standardize over")
    return A, mask, validate.real(eps, "eps", low=0.0)


def standardize(advantages, mask=None, per_episode: bool = False,
                eps: float = 1e-8) -> torch.Tensor:
    r"""Advantage normalization, :math:`\tilde A = (\hat A - \mathrm{mean}(\hat A))
    / (\mathrm{std}(\hat A) + \epsilon)`.

    ``per_episode=False``: mean and (population) standard deviation over every real step
    of the batch, the common habit of PPO-style code. ``per_episode=True``: within each
    row (episode) separately, a habit of some tutorials. Masked steps are ignored and
    set to 0.

    Neither is an unbiased baseline: the mean subtracted from :math:`\hat A_{i,t}`
    contains :math:`\hat A_{i,t}` itself (and, per episode, the returns of later actions
    of the same episode); the book measures the bias this causes.

    Shapes: ``[N, T] -> [N, T]``.

    Example: ``standardize([[1., 3.]])`` is ``[[-1., 1.]]`` (up to ``eps``).
    """
    advantages, mask, eps = _check_standardize(advantages, mask, per_episode, eps)
    A = advantages
    w = mask.to(DTYPE)
    dims = (-1,) if per_episode else (0, 1)
    count = w.sum(dims, keepdim=True)
    mean = (w * A).sum(dims, keepdim=True) / count
    std = ((w * (A - mean) ** 2).sum(dims, keepdim=True) / count).sqrt()
    normalized = (A - mean) / (std + eps)
    return torch.where(mask, normalized, torch.zeros((), dtype=DTYPE))
