r"""Statistics for checking Monte Carlo estimates against exact values.

Every function is pure, accepts numpy arrays, torch tensors (detached and moved to the CPU)
or nested lists, computes in float64 and returns plain floats, numpy arrays, or small frozen
dataclasses with a deterministic ``summary()`` string.

Axis convention: a batch of ``N`` independent estimates of a quantity of shape ``[...]`` is
``samples[N, ...]`` (the sample axis is the **first** axis); the value it should average to is
``exact[...]``.

What is here, and when to use it:

- :func:`mean_and_se`, :func:`z_scores`: per-coordinate summaries (looking, not testing).
- :func:`unbiasedness_test`: one test of :math:`H_0:\ \mathbb E[x] = \text{exact}` over all
  coordinates at once, with a stated false-alarm rate ``alpha``. ``method="hotelling"`` is the
  joint test in the rank of the data (the default); ``method="bonferroni"`` is the robust,
  conservative alternative for heavy tails.
- :func:`variance_ratio`: total-variance ratio of two estimators with a confidence interval.
- :func:`effective_sample_size`, :func:`binomial_interval`, :func:`cosine_similarity`.

Degenerate coordinates and directions
-------------------------------------
Score-function gradient estimates of a tabular softmax policy have rows summing to zero, and a
state that no sampled trajectory visited contributes exactly zero. The sample covariance is then
singular. pglib treats a coordinate (or direction) in which the samples do not vary as **known
exactly**: if the sample mean there differs from ``exact`` by more than rounding
(:data:`NULL_RTOL` relative to that coordinate's magnitude), that is a bias the data prove, and
the tests reject with statistic ``inf`` and p-value 0. The flip side: a state the true
distribution reaches with small probability ``p`` but the batch never visited looks like such a
bias whenever the exact gradient there is not zero; use ``N >> 1/p``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import scipy.optimize
import scipy.stats
import torch

from pglib import validate

__all__ = [
    "as_numpy",
    "format_p",
    "format_percent",
    "format_sig",
    "NULL_RTOL",
    "RANK_RTOL",
    "DECISION_MARGIN",
    "format_interval",
    "Result",
    "UnbiasednessResult",
    "VarianceRatio",
    "mean_and_se",
    "z_scores",
    "unbiasedness_test",
    "hotelling_power",
    "variance_ratio",
    "effective_sample_size",
    "binomial_interval",
    "cosine_similarity",
]

#: Relative tolerance for "the samples do not vary here" and "the mean equals exact here",
#: relative to each coordinate's magnitude ``max(max_i |x_ij|, |exact_j|)``. It is far above
#: float64 rounding (2.2e-16) and far below any bias worth reporting. For float32/float16 inputs
#: the tolerance used is ``max(NULL_RTOL, 1000 * eps(dtype))`` (1.2e-4 for float32).
NULL_RTOL = 1e-9

#: Relative tolerance on the standard deviations along the principal directions of the
#: per-coordinate standardized samples (square roots of the eigenvalues of the sample correlation
#: matrix): directions below ``RANK_RTOL * largest`` are null directions (for float32/float16
#: inputs: ``max(RANK_RTOL, 1000 * eps(dtype))``). Rounding puts the null directions of float64
#: score vectors near ``sqrt(d * eps)`` ~ 1e-7; genuine directions lie far above 1e-5 unless two
#: coordinates are correlated to within 1e-10 of one.
RANK_RTOL = 1e-5

#: The margin of every cut-off decision above (constant column, mean off in it, null direction,
#: error in a null direction): the value compared must lie at least this factor away from its
#: cut-off, on either side. Rounding noise differs between machines (CPU vendor, BLAS path,
#: thread count) by far less than a factor of 10, so the decision, hence the rank, T² and the
#: printed line, cannot change with the arithmetic; a value inside the band raises ValueError.
DECISION_MARGIN = 10.0


# --------------------------------------------------------------------------------------------
# input handling
# --------------------------------------------------------------------------------------------


def as_numpy(x, name: str) -> tuple[np.ndarray, float]:
    """``x`` as a float64 numpy array, and the machine epsilon of the dtype it arrived in. ``name``
    is the argument's name in messages."""
    name = validate.string(name, "name")
    if isinstance(x, torch.Tensor):
        t = x.detach().cpu()
        eps = float(torch.finfo(t.dtype).eps) if t.is_floating_point() else float(np.finfo(np.float64).eps)
        if t.is_complex():
            raise ValueError(f"{name} must be real; got a complex tensor of dtype {t.dtype}")
        arr = t.to(torch.float64).numpy()
    else:
        try:
            raw = np.asarray(x)
        except Exception as exc:  # ragged lists, objects
            raise ValueError(f"{name} must be a numeric array or tensor; got {type(x).__name__} ({exc})") from None
        if raw.dtype == object or not (np.issubdtype(raw.dtype, np.number) or raw.dtype == bool):
            raise ValueError(f"{name} must be a numeric array or tensor; got dtype {raw.dtype}")
        if np.iscomplexobj(raw):
            raise ValueError(f"{name} must be real; got dtype {raw.dtype}")
        eps = float(np.finfo(raw.dtype).eps) if np.issubdtype(raw.dtype, np.floating) else float(np.finfo(np.float64).eps)
        arr = raw.astype(np.float64)
    if not np.isfinite(arr).all():
        n_bad = int((~np.isfinite(arr)).sum())
        raise ValueError(f"{name} must be finite; got {n_bad} NaN/inf entr{'y' if n_bad == 1 else 'ies'}")
    return arr, eps


def _samples(samples, name: str = "samples", min_n: int = 2) -> tuple[np.ndarray, float]:
    x, eps = as_numpy(samples, name)
    if x.ndim < 1:
        raise ValueError(f"{name} must have a leading sample axis, shape [N, ...]; got a scalar")
    if x.shape[0] < min_n:
        raise ValueError(f"{name} must hold at least N={min_n} samples along axis 0; got shape {x.shape}")
    return x, eps


def _samples_and_exact(samples, exact) -> tuple[np.ndarray, np.ndarray, float]:
    x, eps_x = _samples(samples)
    e, eps_e = as_numpy(exact, "exact")
    if x.shape[1:] != e.shape:
        raise ValueError(
            f"samples must have shape [N, *exact.shape] = [N, {', '.join(map(str, e.shape))}]; "
            f"got samples of shape {x.shape} and exact of shape {e.shape}"
        )
    return x, e, max(eps_x, eps_e)


def _check_level(value, name: str) -> float:
    v = validate.real(value, name, allow_inf=True)  # a real number: never a string or a bool
    if not (0.0 < v < 1.0):
        raise ValueError(f"{name} must lie strictly between 0 and 1; got {value!r}")
    return v


def _null_rtol(eps: float) -> float:
    return max(NULL_RTOL, 1000.0 * eps)


def _rank_rtol(eps: float) -> float:
    return max(RANK_RTOL, 1000.0 * eps)


def _scalar_or_array(a: np.ndarray):
    return float(a) if a.ndim == 0 else a


def _decided(values: np.ndarray, cut, what: str) -> None:
    """Refuse a cut-off decision that a last-bit change could move (see :data:`DECISION_MARGIN`)."""
    values, cut = np.asarray(values, dtype=float), np.broadcast_to(np.asarray(cut, dtype=float), np.shape(values))
    near = (cut > 0) & (values > cut / DECISION_MARGIN) & (values < cut * DECISION_MARGIN)
    if near.any():
        i = int(np.flatnonzero(near.reshape(-1))[0])
        raise ValueError(
            f"samples: {what} is {values.reshape(-1)[i]:.3g}, within a factor {DECISION_MARGIN:g} of its cut-off "
            f"{cut.reshape(-1)[i]:.3g}: the decision could differ on another machine. Rescale the samples, "
            f"drop the nearly constant coordinate, or use more samples")


def _degenerate(x: np.ndarray, e: np.ndarray, rtol: float):
    """Per-coordinate (flattened) mean, sd, magnitude, and masks: constant / constant-but-off."""
    n = x.shape[0]
    flat = x.reshape(n, -1)
    ef = e.reshape(-1)
    mean = flat.mean(axis=0)
    sd = flat.std(axis=0, ddof=1)
    magnitude = np.maximum(np.abs(flat).max(axis=0), np.abs(ef))
    tol = rtol * magnitude
    _decided(sd, tol, "a coordinate's standard deviation")
    constant = sd <= tol  # includes exactly constant columns (sd == 0, magnitude may be 0)
    _decided(np.where(constant, np.abs(mean - ef), 0.0), tol, "the error of a coordinate that never varies")
    off = constant & (np.abs(mean - ef) > tol)
    return flat, ef, mean, sd, magnitude, constant, off


# --------------------------------------------------------------------------------------------
# per-coordinate summaries
# --------------------------------------------------------------------------------------------


def mean_and_se(samples):
    r"""Sample mean and its standard error, per coordinate.

    .. math:: \bar x = \frac1N \sum_i x_i, \qquad
              \mathrm{se} = \frac{s}{\sqrt N},\quad s^2 = \frac{1}{N-1}\sum_i (x_i - \bar x)^2

    Shapes: ``samples[N, ...] -> (mean[...], se[...])`` as float64 numpy arrays (plain floats for
    ``samples[N]``). Needs ``N >= 2``.

    Example: ``mean_and_se([1.0, 2.0, 3.0]) == (2.0, 1/sqrt(3))`` since ``s = 1``.
    """
    x, _ = _samples(samples)
    mean = x.mean(axis=0)
    se = x.std(axis=0, ddof=1) / math.sqrt(x.shape[0])
    return _scalar_or_array(mean), _scalar_or_array(se)


def z_scores(samples, exact):
    r"""Per-coordinate z-scores :math:`z_j = (\bar x_j - \text{exact}_j) / \mathrm{se}_j`.

    Coordinates where the samples do not vary (standard deviation within :data:`NULL_RTOL` of the
    coordinate's magnitude) get ``z = 0`` when the mean equals ``exact`` within the same tolerance,
    and ``z = ±inf`` (the sign of the error) otherwise: an error where nothing varies is not noise.

    Shapes: ``samples[N, ...], exact[...] -> z[...]`` (float64 numpy; a float for ``samples[N]``).

    Example: ``z_scores([1.0, 2.0, 3.0], 1.0) == (2 - 1) / (1 / sqrt(3)) = 1.732...``.
    """
    x, e, eps = _samples_and_exact(samples, exact)
    flat, ef, mean, sd, _, constant, off = _degenerate(x, e, _null_rtol(eps))
    se = sd / math.sqrt(x.shape[0])
    z = np.zeros_like(mean)
    live = ~constant
    z[live] = (mean[live] - ef[live]) / se[live]
    z[off] = np.copysign(np.inf, mean[off] - ef[off])
    return _scalar_or_array(z.reshape(e.shape))


# --------------------------------------------------------------------------------------------
# unbiasedness test
# --------------------------------------------------------------------------------------------


def format_sig(x: float, sig: int) -> str:
    """``x`` with ``sig`` significant digits (``inf`` stays ``inf``)."""
    x = validate.real(x, "x", allow_inf=True)
    sig = validate.positive_int(sig, "sig", maximum=17)
    if math.isinf(x):
        return "inf"
    return f"{x:.{sig}g}"


def format_interval(estimate: float, low: float, high: float) -> tuple[str, str, str]:
    """An estimate and its interval, to the digits the interval supports: the last printed digit
    is the second significant digit of the interval's width (``0.39287, 0.38731, 0.39854 ->
    '0.393', '0.387', '0.399'``). Digits below that are noise of the sample, and their last
    bits noise of the machine. An infinite end (an unbounded interval) prints 4 digits."""
    estimate = validate.real(estimate, "estimate", allow_inf=True)
    low = validate.real(low, "low", allow_inf=True)
    high = validate.real(high, "high", low=low, allow_inf=True)
    width = high - low
    if not (math.isfinite(width) and width > 0):
        return format_sig(estimate, 4), format_sig(low, 4), format_sig(high, 4)
    decimals = max(0, 1 - math.floor(math.log10(width)))
    return tuple(f"{v:.{decimals}f}" for v in (estimate, low, high))


def format_p(p: float, label: str = "p") -> str:
    """A p-value with 2 significant digits, below 1e-16 only as ``<1e-16`` (those digits are not
    trustworthy): ``format_p(0.0123) == "p=0.012"``, ``format_p(1e-20) == "p<1e-16"``; with
    ``label=""`` just ``"0.012"`` or ``"<1e-16"``."""
    p = validate.probability(p, "p")
    label = validate.string(label, "label")
    text = "<1e-16" if p < 1e-16 else f"{p:.2g}"
    if not label:
        return text
    return f"{label}{text}" if text.startswith("<") else f"{label}={text}"


def format_percent(p: float) -> str:
    """A probability as a percentage with two significant digits: ``0.0016667 -> '0.17%'``."""
    p = validate.real(p, "p", low=0.0, allow_inf=True)  # inf is a valid share (an infinite detectable bias)
    if p == 0:
        return "0%"
    if p < 1e-6:
        return f"{p:.0e}".replace("e-0", "e-")
    x = 100 * p
    return f"{x:.2g}%" if x < 10 else f"{x:.3g}%"


class Result:
    """The one family of outcomes pglib reports (:class:`UnbiasednessResult`,
    :class:`pglib.verify.Report`, :class:`pglib.verify.checklist.Verdict`): ``passed`` says whether
    the check passed, and ``str()`` says in a few lines what was measured."""

    __slots__ = ()

    @property
    def passed(self) -> bool:
        raise NotImplementedError


@dataclass(frozen=True)
class UnbiasednessResult(Result):
    """Outcome of :func:`unbiasedness_test`.

    Attributes:
        method: ``"hotelling"`` or ``"bonferroni"``.
        statistic: Hotelling :math:`T^2`, or the largest :math:`|t_j|` for Bonferroni; ``inf``
            when the mean is off where the samples do not vary.
        p_value: p-value of the whole test (Bonferroni: ``min(1, m * min_j p_j)``).
        alpha: false-alarm rate; ``reject`` is ``p_value < alpha``.
        reject: whether :math:`H_0:\\ \\mathbb E[x] = \\text{exact}` is rejected.
        n: number of samples ``N``.
        rank: Hotelling: the numerical rank ``r`` of the sample covariance; Bonferroni: the number
            ``m`` of non-degenerate coordinates tested.
        dims: number of coordinates ``d`` (the flattened size of ``exact``).
        df: degrees of freedom of the reference distribution: ``(r, n - r)`` for the F
            distribution (Hotelling), ``(n - 1,)`` for Student's t (Bonferroni).
        f_statistic: Hotelling's :math:`F = \\frac{n-r}{r(n-1)} T^2` (``nan`` for Bonferroni).
        null_bias: the largest error of the mean, relative to the coordinate's magnitude, in the
            directions where the samples do not vary.
        null_tolerance: the tolerance ``null_bias`` is compared with.
    """

    method: str
    statistic: float
    p_value: float
    alpha: float
    reject: bool
    n: int
    rank: int
    dims: int
    df: tuple
    f_statistic: float
    null_bias: float
    null_tolerance: float
    # The geometry the power calculations need (not part of the printed result):
    # Hotelling: ``live`` columns, their ``sd``, and the kept eigenpairs of their
    # correlation matrix; Bonferroni: ``live`` columns and their ``sd``.
    _live: np.ndarray | None = field(default=None, repr=False, compare=False)
    _sd: np.ndarray | None = field(default=None, repr=False, compare=False)
    _eigvals: np.ndarray | None = field(default=None, repr=False, compare=False)
    _eigvecs: np.ndarray | None = field(default=None, repr=False, compare=False)
    _magnitude: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def passed(self) -> bool:
        """``not reject``: the data are consistent with the exact mean at ``alpha``."""
        return not self.reject

    @property
    def null_rejected(self) -> bool:
        """True when the rejection comes from a bias where the samples do not vary."""
        return self.null_bias > self.null_tolerance

    def statistic_text(self) -> str:
        """The measured statistic, rounded: e.g. ``Hotelling T²=12.35, rank 10, n=20000``."""
        if self.method == "hotelling":
            head = f"Hotelling T²={format_sig(self.statistic, 3)}, rank {self.rank}, n={self.n}"
        else:
            head = f"Bonferroni max|t|={format_sig(self.statistic, 3)} over {self.rank} coordinates, n={self.n}"
        if self.null_rejected:
            head += (f", mean off by {self.null_bias:.2g} (relative) where the samples never vary"
                     f" (tolerance {self.null_tolerance:.2g})")
        return head

    # ---------------------------------------------------------------- power

    def _shift_vector(self, shift, name: str) -> np.ndarray:
        v, _ = as_numpy(shift, name)
        if v.size != self.dims:
            raise ValueError(f"{name} must have {self.dims} entries (the shape of exact); "
                             f"got shape {v.shape}")
        return v.reshape(-1)

    def _noncentrality(self, delta: np.ndarray) -> float:
        """``n * delta' S^+ delta`` for a mean shift ``delta`` (flattened), ``inf`` when part of
        ``delta`` lies where the samples do not vary (such a shift is seen exactly)."""
        live, sd = self._live, self._sd
        dead = delta[~live]
        if dead.size and (np.abs(dead) > self.null_tolerance * self._magnitude[~live]).any():
            return math.inf
        z = delta[live] / sd
        if self.method == "bonferroni":
            return float(self.n * np.max(z**2)) if z.size else 0.0
        v, lam = self._eigvecs, self._eigvals
        w = v.T @ z
        perp = (z - v @ w) * sd
        if perp.size and (np.abs(perp) > self.null_tolerance * self._magnitude[live]).any():
            return math.inf
        return float(self.n * np.sum(w**2 / lam)) if lam.size else 0.0

    def _critical(self) -> float:
        if self.method == "bonferroni":
            return float(scipy.stats.t.isf(self.alpha / (2 * max(self.rank, 1)), self.n - 1))
        return float(scipy.stats.f.isf(self.alpha, self.rank, self.n - self.rank))

    def _power_at(self, lam: float) -> float:
        """Probability of rejecting when the noncentrality is ``lam``."""
        if lam == math.inf:
            return 1.0
        if self.rank == 0:
            return 0.0
        c = self._critical()
        if self.method == "bonferroni":  # the most sensitive coordinate alone (a lower bound)
            x = math.sqrt(lam)
            return float(min(1.0, scipy.stats.norm.sf(c - x) + scipy.stats.norm.cdf(-c - x)))
        return float(scipy.stats.ncf.sf(c, self.rank, self.n - self.rank, lam))

    def _lambda_for(self, power: float) -> float:
        """The noncentrality at which the test rejects with probability ``power``."""
        hi = 1.0
        while self._power_at(hi) < power:
            hi *= 2.0
        return float(scipy.optimize.brentq(lambda lam: self._power_at(lam) - power, 0.0, hi,
                                           xtol=1e-10, rtol=1e-10))

    def power(self, shift) -> float:
        r"""Probability that this test (same ``n``, ``alpha`` and sample covariance) rejects
        when the true mean is ``exact + shift``.

        Hotelling: :math:`P(F' > F_{1-\alpha}(r, n-r))` for the noncentral
        :math:`F'(r, n - r, \lambda)`, :math:`\lambda = n\,\delta^\top S^+ \delta`. Bonferroni:
        the power of the most sensitive single coordinate (a lower bound on the whole
        test's power). A shift with a part where the samples never vary is seen exactly
        (power 1).
        """
        delta = self._shift_vector(shift, "shift")
        if not np.any(delta):
            return float(self.alpha) if self.method == "hotelling" else 0.0
        return self._power_at(self._noncentrality(delta))

    def detectable_bias(self, direction=None, power: float = 0.8) -> float:
        r"""Norm of the smallest mean shift along ``direction`` that this test rejects with
        probability ``power`` (the minimum detectable bias).

        ``direction`` has the shape of ``exact`` (only its direction matters); ``None`` means
        the least favourable direction, the top eigenvector of the sample covariance,
        where :math:`\lVert\delta\rVert = \sqrt{\lambda^\ast \ell_{\max} / n}` with
        :math:`\lambda^\ast` the noncentrality at which the noncentral F gives ``power``.
        For Bonferroni the result is an upper bound (the power of one coordinate).
        A direction with a part where the samples do not vary returns the tiny shift that
        the exact-null rule catches. Example: with ``n`` samples of a unit-variance
        coordinate, ``alpha = 0.05``, the detectable bias is about ``2.80 / sqrt(n)``.
        """
        power = _check_level(power, "power")
        if power <= (self.alpha if self.method == "hotelling" else 0.0):
            raise ValueError(f"power must exceed the false-alarm rate alpha={self.alpha:g}; "
                             f"got {power!r}")
        if self.rank == 0:
            return math.inf if direction is None else self._null_shift(direction)
        lam_star = self._lambda_for(power)
        if direction is None:
            return math.sqrt(lam_star * self._largest_variance() / self.n)
        u = self._shift_vector(direction, "direction")
        norm = float(np.linalg.norm(u))
        if norm == 0:
            raise ValueError("direction must not be the zero vector; got norm 0")
        u = u / norm
        lam_unit = self._noncentrality(u)
        if lam_unit == math.inf:
            return self._null_shift(u)
        if lam_unit == 0:
            return math.inf
        return math.sqrt(lam_star / lam_unit)

    def project_to_range(self, direction) -> np.ndarray:
        """The part of ``direction`` (shape of ``exact``, flattened) that the samples vary along:
        its orthogonal projection onto the range of their covariance (zero where they never
        vary). A bias outside that range is caught exactly by the null rule, so a detectable
        bias "along" a reference is only meaningful for this part."""
        u = self._shift_vector(direction, "direction")
        out = np.zeros_like(u, dtype=float)
        live = self._live
        if live is None or not live.any():
            return out
        if self.method == "bonferroni" or self._eigvecs is None:
            out[live] = u[live]
            return out
        basis, _ = np.linalg.qr(self._sd[:, None] * self._eigvecs)  # columns span the range
        out[live] = basis @ (basis.T @ u[live])
        return out

    def _null_shift(self, direction) -> float:
        """Size of a shift along ``direction`` that the exact-null rule starts to see."""
        u = self._shift_vector(direction, "direction")
        u = u / max(float(np.linalg.norm(u)), np.finfo(float).tiny)
        live = self._live
        parts = [np.abs(u[~live]) / np.maximum(self._magnitude[~live], np.finfo(float).tiny)]
        if self.method == "hotelling" and self._eigvecs is not None and live.any():
            z = u[live] / self._sd
            perp = (z - self._eigvecs @ (self._eigvecs.T @ z)) * self._sd
            parts.append(np.abs(perp) / self._magnitude[live])
        seen = max((float(p.max()) for p in parts if p.size), default=0.0)
        return math.inf if seen == 0 else self.null_tolerance / seen

    def _largest_variance(self) -> float:
        """Largest variance of the samples along any direction of their covariance's range."""
        sd = self._sd
        if self.method == "bonferroni":
            return float(np.sum(sd**2))  # u_j ∝ sd_j equalizes every coordinate's t
        b = sd[:, None] * self._eigvecs  # columns span the range
        cov = (b * self._eigvals) @ b.T
        return float(np.linalg.eigvalsh(cov)[-1])

    def summary(self) -> str:
        """One deterministic line: statistic (4 significant digits), p (2), decision."""
        rel = "<" if self.reject else "≥"
        verdict = "rejected" if self.reject else "not rejected"
        return (f"{self.statistic_text()}, {format_p(self.p_value)} {rel} α={self.alpha:g}: "
                f"H0 E[x]=exact {verdict}")


def unbiasedness_test(samples, exact, alpha: float = 0.01, method: str = "hotelling") -> UnbiasednessResult:
    r"""Test :math:`H_0:\ \mathbb E[x] = \text{exact}` from ``N`` i.i.d. samples, at level ``alpha``.

    ``samples[N, ...]`` and ``exact[...]`` are flattened to ``d`` coordinates. Under :math:`H_0`
    the test rejects with probability ``alpha`` (approximately: both methods rely on the central
    limit theorem for the sample mean).

    **method="hotelling"** (Hotelling 1931, "The generalization of Student's ratio", Ann. Math.
    Statist. 2(3)): the joint test. With :math:`\bar x` the mean and :math:`S` the sample covariance,

    .. math:: T^2 = n\,(\bar x - \mu_0)^\top S^{+} (\bar x - \mu_0), \qquad
              F = \frac{n - r}{r\,(n-1)}\,T^2 \sim F(r,\ n - r),

    where :math:`r` is the numerical rank of :math:`S` and :math:`S^+` its pseudo-inverse on the
    non-null eigenspace. Softmax score vectors have rows summing to zero, so :math:`S` is singular
    (rank at most :math:`S(A-1)`); using the full dimension ``d`` instead of ``r`` would make the
    test wrong in either direction. Computation: columns in which the samples do not vary are set
    aside; the others are standardized (which leaves :math:`T^2` unchanged and makes the rank
    decision scale-free); principal directions of the sample correlation matrix whose standard
    deviation is below :data:`RANK_RTOL` times the largest are null directions. The mean error
    must have no component in the null directions (nor in the constant columns) beyond
    :data:`NULL_RTOL` times the coordinate magnitude: a bias in a direction where the samples never
    vary is still a bias, and it rejects with :math:`T^2 = \infty`, ``p = 0``. The sample
    covariance has the same range as the true one only when the rank is not capped by the sample
    size, so ``N - 1 > r`` is required; prefer ``N >> d``. Exact for Gaussian data; for other
    data it leans on the CLT (with N in the thousands and score-function vectors it is well
    calibrated; see ``tests/test_stats.py``).

    **method="bonferroni"**: per-coordinate two-sided t-tests (:math:`t_j = (\bar x_j - \mu_{0j}) /
    \mathrm{se}_j`, Student's t with ``N - 1`` degrees of freedom, which is the z-test for large N)
    over the ``m`` non-degenerate coordinates, rejecting when some :math:`p_j < \alpha/m`
    (Bonferroni 1936; Dunn 1961). The reported p-value is :math:`\min(1, m \min_j p_j)`. The
    false-alarm rate is *at most* ``alpha`` whatever the dependence between coordinates, so it is
    conservative and has less power than Hotelling against biases spread over many coordinates,
    but each coordinate needs only its own CLT, and nothing is inverted: prefer it for heavy tails
    (importance-weighted estimates) or when ``N`` is not much larger than ``d``. Constant
    coordinates follow the same rule as above.

    **Both methods** need the mean of every coordinate to be close to normal. A coordinate driven
    by rare events (an action of probability ~ 1/N, a huge importance weight) breaks that: its
    standard error is underestimated in the batches that miss the rare event, and either test
    over-rejects. Use ``N`` large against the rarest event that matters.

    Returns an :class:`UnbiasednessResult`; ``result.summary()`` is a deterministic one-line text.

    Example::

        x = rng.normal(size=(1000, 3)) + [1.0, 2.0, 3.0]
        unbiasedness_test(x, [1.0, 2.0, 3.0]).reject      # False with probability 0.99
    """
    x, e, eps = _samples_and_exact(samples, exact)
    alpha = _check_level(alpha, "alpha")
    if method not in ("hotelling", "bonferroni"):
        raise ValueError(f"method must be 'hotelling' or 'bonferroni'; got {method!r}")
    n = x.shape[0]
    null_tol = _null_rtol(eps)
    flat, ef, mean, sd, magnitude, constant, off = _degenerate(x, e, null_tol)
    d = ef.size
    diff = mean - ef
    live = ~constant
    # the error in constant columns, relative to each column's magnitude
    with np.errstate(divide="ignore", invalid="ignore"):
        rel_const = np.where(off, np.abs(diff) / np.where(magnitude > 0, magnitude, 1.0), 0.0)
    null_bias = float(rel_const.max()) if d else 0.0

    if method == "bonferroni":
        m = int(live.sum())
        t = diff[live] / (sd[live] / math.sqrt(n))
        if null_bias > null_tol:
            stat, p = math.inf, 0.0
        elif m == 0:
            stat, p = 0.0, 1.0
        else:
            p_each = 2.0 * scipy.stats.t.sf(np.abs(t), df=n - 1)
            stat, p = float(np.abs(t).max()), float(min(1.0, m * p_each.min()))
        return UnbiasednessResult("bonferroni", stat, p, alpha, bool(p < alpha), n, m, d, (n - 1,), math.nan,
                                  null_bias, null_tol, live, sd[live], None, None, magnitude)

    # Hotelling in the standardized non-constant columns.
    z_data = (flat[:, live] - mean[live]) / sd[live]
    z_diff = diff[live] / sd[live]
    if z_data.shape[1] > 0:
        # eigh of the sample correlation matrix (k x k): O(N k^2) and fast; its rounding error
        # (about k * eps relative on the eigenvalues) lies far below RANK_RTOL**2.
        corr = (z_data.T @ z_data) / (n - 1)
        lam_all, vec_all = np.linalg.eigh(corr)
        cut = _rank_rtol(eps) * math.sqrt(max(lam_all[-1], 0.0))
        _decided(np.sqrt(np.clip(lam_all, 0.0, None)), cut, "the standard deviation along a principal direction")
        keep = lam_all > cut ** 2
        r = int(keep.sum())
        v, lam = vec_all[:, keep], lam_all[keep]  # eigenvectors [k, r] and eigenvalues
        w = v.T @ z_diff
        perp = z_diff - v @ w  # the error in the null directions, standardized units
        perp_orig = perp * sd[live]
        rel_perp = np.abs(perp_orig) / magnitude[live]
        if r < keep.size:
            _decided(rel_perp, null_tol, "the error in a direction where the samples never vary")
        null_bias = max(null_bias, float(rel_perp.max()))
    else:
        r, w, lam, v = 0, np.zeros(0), np.zeros(0), np.zeros((0, 0))
    if r > 0 and n - 1 <= r:
        raise ValueError(
            f"samples: the Hotelling test needs more samples than the rank of their covariance plus one "
            f"(N - 1 > rank, better N >> {d}); got N={n} with rank {r} (capped by N). Use more samples "
            f"or method='bonferroni'"
        )
    if null_bias > null_tol:
        t2, f_stat, p = math.inf, math.inf, 0.0
    elif r == 0:
        t2, f_stat, p = 0.0, 0.0, 1.0
    else:
        t2 = float(n * np.sum(w**2 / lam))
        f_stat = (n - r) / (r * (n - 1)) * t2
        p = float(scipy.stats.f.sf(f_stat, r, n - r))
    return UnbiasednessResult("hotelling", t2, p, alpha, bool(p < alpha), n, r, d, (r, n - r), f_stat,
                              null_bias, null_tol, live, sd[live], lam, v, magnitude)


def hotelling_power(shift, covariance, n: int, alpha: float) -> float:
    r"""Predicted power of the Hotelling test from an **exact** covariance.

    The probability that :func:`unbiasedness_test` (``method="hotelling"``) on ``n`` samples
    with covariance ``covariance[d, d]`` rejects at level ``alpha`` when the mean is off by
    ``shift[d]``: :math:`P(F' > F_{1-\alpha}(r, n-r))` with :math:`F'` noncentral F with
    :math:`\lambda = n\,\delta^\top \Sigma^+ \delta` and ``r`` the rank of :math:`\Sigma`
    (large-``n`` theory: the sample covariance is treated as exact). A shift with a part
    outside the range of :math:`\Sigma` is seen exactly (power 1). Use it to predict how
    often a near-null negative control is rejected, e.g. with the covariance from
    :mod:`pglib.enumeration`. Example: ``d = 1``, unit variance, ``alpha = 0.05`` and
    ``shift = 2.8 / sqrt(n)`` give power 0.80.
    """
    delta, _ = as_numpy(shift, "shift")
    sigma, _ = as_numpy(covariance, "covariance")
    delta = delta.reshape(-1)
    d = delta.size
    if sigma.shape != (d, d):
        raise ValueError(f"covariance must have shape [d, d] = [{d}, {d}] for a shift of {d} entries; "
                         f"got {sigma.shape}")
    sigma = validate.covariance(sigma, "covariance")  # symmetric PSD within validate.COV_RTOL
    n = _count(n, "n")
    alpha = _check_level(alpha, "alpha")
    lam_all, vec_all = np.linalg.eigh((sigma + sigma.T) / 2)
    keep = lam_all > _rank_rtol(np.finfo(np.float64).eps) ** 2 * max(lam_all[-1], 0.0)
    r = int(keep.sum())
    if r == 0 or n - 1 <= r:
        raise ValueError(f"covariance must have rank r >= 1 with n - 1 > r; got rank {r} and n={n}")
    v, lam = vec_all[:, keep], lam_all[keep]
    w = v.T @ delta
    outside = delta - v @ w
    if np.linalg.norm(outside) > 1e-9 * max(np.linalg.norm(delta), np.finfo(float).tiny):
        return 1.0
    nc = float(n * np.sum(w**2 / lam))
    crit = float(scipy.stats.f.isf(alpha, r, n - r))
    return float(scipy.stats.ncf.sf(crit, r, n - r, nc)) if nc > 0 else alpha


# --------------------------------------------------------------------------------------------
# variance ratio
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VarianceRatio:
    """Outcome of :func:`variance_ratio`: ``ratio`` = Var(a)/Var(b) and its confidence interval.

    Attributes: ratio, low, high, confidence, paired (whether the pairing covariance was used),
    n_a, n_b, var_a, var_b (the total variances).
    """

    ratio: float
    low: float
    high: float
    confidence: float
    paired: bool
    n_a: int
    n_b: int
    var_a: float
    var_b: float

    def summary(self) -> str:
        """One deterministic line, 4 significant digits: ``Var(a)/Var(b)=0.4123, 99% CI [0.3987, 0.4264] ...``."""
        pairing = f"paired, n={self.n_a}" if self.paired else f"independent, n={self.n_a} and {self.n_b}"
        ratio, low, high = format_interval(self.ratio, self.low, self.high)
        return f"Var(a)/Var(b)={ratio}, {self.confidence * 100:g}% CI [{low}, {high}] ({pairing})"


def variance_ratio(a, b, confidence: float = 0.99, paired: bool | None = None) -> VarianceRatio:
    r"""Ratio of total variances :math:`\mathrm{tr\,Cov}(a) / \mathrm{tr\,Cov}(b)` with a confidence interval.

    The total variance is the mean squared distance from the mean, summed over coordinates:
    with :math:`u_i = \lVert a_i - \bar a \rVert^2` and :math:`v_i = \lVert b_i - \bar b\rVert^2`,
    :math:`\widehat{\mathrm{Var}}(a) = \frac{1}{N-1}\sum_i u_i`. The interval is built on the log
    scale with the delta method (e.g. Casella & Berger, *Statistical Inference*, 2nd ed., §5.5.4):

    .. math:: \log \hat R \pm z_{(1+c)/2}\ \mathrm{se}, \qquad
              \mathrm{se}^2 = \frac{s_u^2}{N \bar u^2} + \frac{s_v^2}{M \bar v^2}
              - 2\,[\text{paired}]\ \frac{s_{uv}}{N \bar u \bar v}.

    ``paired=True`` (needs ``N == M``) means ``a[i]`` and ``b[i]`` come from the same randomness,
    e.g. two estimators computed on the same trajectories; their covariance :math:`s_{uv}` then
    enters (it usually narrows the interval a lot). ``paired=False`` treats the batches as
    independent. ``paired=None`` (default) pairs exactly when ``N == M``: pairing independent
    batches of equal size is harmless (the estimated covariance is near zero), while ignoring a
    real pairing is wrong.

    Shapes: ``a[N, ...]``, ``b[M, ...]`` with ``a.shape[1:] == b.shape[1:]``. The interval leans on
    the CLT for the mean of :math:`u` and :math:`v`, so it needs their fourth moments (heavy-tailed
    estimators need large ``N``).

    Example: ``variance_ratio(2 * x, x).ratio == 4`` exactly (paired, for any ``x``).
    """
    xa, _ = _samples(a, "a")
    xb, _ = _samples(b, "b")
    confidence = _check_level(confidence, "confidence")
    if xa.shape[1:] != xb.shape[1:]:
        raise ValueError(f"a and b must hold estimates of the same shape; got a of shape {xa.shape} "
                         f"and b of shape {xb.shape} (trailing shapes {xa.shape[1:]} vs {xb.shape[1:]})")
    n, m = xa.shape[0], xb.shape[0]
    if paired is None:
        paired = n == m
    elif not isinstance(paired, (bool, np.bool_)):
        raise ValueError(f"paired must be True, False or None; got {paired!r}")
    paired = bool(paired)
    if paired and n != m:
        raise ValueError(f"paired=True needs as many samples in a as in b; got a with N={n} and b with M={m}")
    u = ((xa - xa.mean(axis=0)) ** 2).reshape(n, -1).sum(axis=1)
    v = ((xb - xb.mean(axis=0)) ** 2).reshape(m, -1).sum(axis=1)
    var_a, var_b = u.sum() / (n - 1), v.sum() / (m - 1)
    if var_a == 0 or var_b == 0:
        which = "a" if var_a == 0 else "b"
        raise ValueError(f"{which} must vary across samples for a variance ratio; got zero total variance")
    ratio = var_a / var_b
    ubar, vbar = u.mean(), v.mean()
    se2 = u.var(ddof=1) / (n * ubar**2) + v.var(ddof=1) / (m * vbar**2)
    if paired:
        cov = np.cov(u, v, ddof=1)[0, 1]
        se2 -= 2.0 * cov / (n * ubar * vbar)
    se = math.sqrt(max(se2, 0.0))
    zq = float(scipy.stats.norm.ppf(0.5 + confidence / 2.0))
    low, high = ratio * math.exp(-zq * se), ratio * math.exp(zq * se)
    return VarianceRatio(float(ratio), float(low), float(high), confidence, paired, n, m, float(var_a), float(var_b))


# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------


def effective_sample_size(importance_weights) -> float:
    r"""Kish's effective sample size of importance weights: :math:`(\sum_i w_i)^2 / \sum_i w_i^2`.

    It is ``N`` for equal weights and 1 when one weight carries everything (Kish 1965, *Survey
    Sampling*; Owen 2013, *Monte Carlo theory, methods and examples*, §9.3).

    Shapes: ``importance_weights[N] -> float``. They must be finite, non-negative, not all zero.

    Example: ``effective_sample_size([1, 1, 2]) == 16 / 6 = 2.667``.
    """
    w, _ = as_numpy(importance_weights, "importance_weights")
    if w.ndim != 1 or w.size == 0:
        raise ValueError("importance_weights must be a non-empty 1-D array [N]; "
                         f"got shape {w.shape}")
    if (w < 0).any():
        raise ValueError(f"importance_weights must be non-negative; got minimum {w.min():.3g}")
    if not (w > 0).any():
        raise ValueError("importance_weights must not all be zero; got all zeros")
    scale = w.max()  # rescale first: (sum w)^2 overflows for weights near 1e155
    w = w / scale
    return float(w.sum() ** 2 / (w**2).sum())


def _count(value, name: str) -> int:
    return validate.nonnegative_int(value, name)


def binomial_interval(k: int, n: int, confidence: float = 0.99) -> tuple[float, float]:
    r"""Clopper-Pearson ("exact") confidence interval for a binomial proportion ``k / n``.

    .. math:: \bigl[B_{\alpha/2}(k, n-k+1),\ B_{1-\alpha/2}(k+1, n-k)\bigr], \quad \alpha = 1 - c,

    with :math:`B_q(a, b)` the ``q`` quantile of the Beta(a, b) distribution, low = 0 when ``k = 0``
    and high = 1 when ``k = n`` (Clopper & Pearson 1934, Biometrika 26(4)). Its coverage is at
    least ``confidence`` for every true proportion.

    Example: ``binomial_interval(10, 200, 0.99) == (0.0188, 0.1040)`` (rounded).
    """
    k, n = _count(k, "k"), _count(n, "n")
    if n < 1:
        raise ValueError(f"n must be a positive number of trials; got n={n}")
    if not 0 <= k <= n:
        raise ValueError(f"k must lie in [0, n] = [0, {n}]; got k={k}")
    confidence = _check_level(confidence, "confidence")
    a = 1.0 - confidence
    low = 0.0 if k == 0 else float(scipy.stats.beta.ppf(a / 2, k, n - k + 1))
    high = 1.0 if k == n else float(scipy.stats.beta.ppf(1 - a / 2, k + 1, n - k))
    return low, high


def cosine_similarity(a, b) -> float:
    r"""Cosine of the angle between ``a`` and ``b`` flattened: :math:`a\cdot b / (\lVert a\rVert \lVert b\rVert)`.

    Shapes: any two arrays with the same number of entries. Neither may be the zero vector.

    Example: ``cosine_similarity([1, 0], [1, 1]) == 1/sqrt(2)``.
    """
    x, _ = as_numpy(a, "a")
    y, _ = as_numpy(b, "b")
    x, y = x.reshape(-1), y.reshape(-1)
    if x.size != y.size:
        raise ValueError(f"a and b must have the same number of entries; got {x.size} and {y.size}")
    na, nb = np.linalg.norm(x), np.linalg.norm(y)
    if na == 0 or nb == 0:
        raise ValueError(f"{'a' if na == 0 else 'b'} must not be the zero vector; got norm 0")
    return float(np.clip(x @ y / (na * nb), -1.0, 1.0))
