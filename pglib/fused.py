r"""A fused, compiled path for many reward-to-go REINFORCE estimates (optional: needs ``numba``).

:func:`reinforce_estimates` returns what ``estimators.reinforce(sampling.sample_trajectories(...),
logits, gamma)`` returns, per-trajectory estimates ``[N, S, A]`` of

.. math:: \hat g(\tau) = \sum_{t<T} m_t\, \gamma^t G_t\, \big(e_{a_t} - \pi(\cdot|s_t)\big) \otimes e_{s_t},
          \qquad G_t = \sum_{k\ge t}\gamma^{k-t} r_k,

but each trajectory is sampled and turned into its estimate in ONE compiled pass (no ``[N, T]``
intermediates), which makes 10^6 trajectories cost little more than drawing their random numbers.
:func:`reinforce_moments` streams the same estimates in chunks and keeps only their mean and
per-coordinate variance (bounded memory for any ``N``).

Sampling semantics are those of :mod:`pglib.sampling`: every choice is an inverse-CDF choice
``#{k : F[k] <= u}`` with ``F = sampling.inverse_cdf_table(p)`` and one uniform ``u``; a trajectory
consumes ``2 T`` uniforms in the order ``s_0, a_0, s_1, a_1, ..., s_{T-1}, a_{T-1}``; terminal states
are absorbing, and from the first step at which ``s_t`` is terminal on the mask is False (no
reward, no score term), so the pass stops there. For an infinite-horizon MDP ``horizon`` truncates.

Random numbers: the uniforms are drawn with numpy, ``numpy.random.default_rng(seed)``, as one
``[N, 2T]`` float64 block in row order (trajectory ``n`` uses row ``n``). They are drawn chunk by
chunk, but since numpy fills rows in order the result does not depend on ``chunk_size``. The
stream is numpy's, not torch's, so the batches differ from :func:`pglib.sampling.sample_trajectories`
for the same seed (same distribution). Given the same uniforms (torch's ``[2T, N]`` block transposed)
the estimates agree with the torch path to rounding; see ``tests/test_fused.py``.

``numba`` is optional (a test/benchmark requirement, not a pglib dependency): without it these
functions raise ``ImportError``; the torch path (:mod:`pglib.sampling` + :func:`pglib.estimators.reinforce`)
computes the same estimates, about an order of magnitude more slowly.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from pglib import validate
from pglib.mdp import TabularMDP
from pglib.returns import discount_weights
from pglib.sampling import resolve_horizon, inverse_cdf_table

__all__ = ["reinforce_estimates", "reinforce_moments", "Moments", "available", "estimates_from_uniforms"]

_KERNELS = None
_LANES = 4  # trajectories sampled in lockstep by the kernels


def available() -> bool:
    """Whether ``numba`` can be imported (the functions of this module need it)."""
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def _kernels():
    """Compile (once, lazily; cached on disk by numba) and return the two kernels."""
    global _KERNELS
    if _KERNELS is not None:
        return _KERNELS
    try:
        import numba
    except ImportError as e:
        raise ImportError(
            "pglib.fused needs numba, an optional extra: pip install 'policy-gradients-executable[fast]' "
            "(or pip install numba==0.68.1). "
            "Without it use the torch path: estimators.reinforce(sampling.sample_trajectories(mdp, logits, n, seed), "
            "logits, gamma), or sampling.iter_trajectories for large n."
        ) from e

    B = _LANES

    @numba.njit(inline="always")
    def forward(U, n0, nb, F0, Fp, Fn, R, term, st, ac, rw, L, s):
        """Sample trajectories n0 .. n0+nb-1 (nb <= B) in lockstep, one lane each, into st/ac/rw [B, T] and L [B].

        Lockstep: the B independent chains (state -> table row -> comparisons -> action -> row -> next state)
        interleave, which hides their load and compare latencies (about 2x over one trajectory at a time).
        Inverse CDF: #{k < K-1 : F[row, k] <= u}; the last entry of each row is exactly 1 > u. Spare lanes
        (j >= nb) repeat the last trajectory and are ignored.
        """
        T = st.shape[1]
        A = Fp.shape[1]
        for j in range(B):
            u = U[n0 + min(j, nb - 1), 0]
            k = 0
            for i in range(F0.shape[1] - 1):
                k += np.int64(u >= F0[0, i])  # branch-free: data-dependent branches mispredict
            s[j] = k
            L[j] = T
        for t in range(T):
            for j in range(B):
                n = n0 + min(j, nb - 1)
                sj = s[j]
                if term[sj] and L[j] == T:  # mask is False from the first terminal state on
                    L[j] = t
                u = U[n, 2 * t + 1]
                a = 0
                for i in range(A - 1):
                    a += np.int64(u >= Fp[sj, i])
                st[j, t] = sj
                ac[j, t] = a
                rw[j, t] = R[sj * A + a]
                if t + 1 < T and not term[sj]:  # terminal states are absorbing
                    r = sj * A + a
                    u = U[n, 2 * t + 2]
                    k = 0
                    for i in range(Fn.shape[1] - 1):
                        k += np.int64(u >= Fn[r, i])
                    s[j] = k

    @numba.njit(inline="always")
    def backward(j, L, st, ac, rw, disc, gamma, pi, A, g, c_s):
        """Lane j's estimate into g [S*A]: reward to go backward, weight gamma^t G_t, then c(s, a) - c(s) pi(a|s)."""
        for i in range(g.shape[0]):
            g[i] = 0.0
        for i in range(c_s.shape[0]):
            c_s[i] = 0.0
        G = 0.0
        for t in range(L[j] - 1, -1, -1):
            G = rw[j, t] + gamma * G
            w = disc[t] * G
            sj = st[j, t]
            g[sj * A + ac[j, t]] += w
            c_s[sj] += w
        for i in range(g.shape[0]):
            g[i] = g[i] - c_s[i // A] * pi[i]

    @numba.njit(cache=True, nogil=True)
    def estimates_kernel(U, F0, Fp, Fn, R, term, disc, gamma, pi, out):
        N, T = U.shape[0], disc.shape[0]
        S, A = Fp.shape
        st, ac, rw = np.empty((B, T), np.int64), np.empty((B, T), np.int64), np.empty((B, T), np.float64)
        L, s, c_s = np.empty(B, np.int64), np.empty(B, np.int64), np.empty(S, np.float64)
        for n0 in range(0, N, B):
            nb = min(B, N - n0)
            forward(U, n0, nb, F0, Fp, Fn, R, term, st, ac, rw, L, s)
            for j in range(nb):
                backward(j, L, st, ac, rw, disc, gamma, pi, A, out[n0 + j], c_s)

    @numba.njit(cache=True, nogil=True)
    def moments_kernel(U, F0, Fp, Fn, R, term, disc, gamma, pi, total, total_sq):
        """Adds the estimates of the rows of U, and their squares, into total / total_sq [S*A]."""
        N, T = U.shape[0], disc.shape[0]
        S, A = Fp.shape
        st, ac, rw = np.empty((B, T), np.int64), np.empty((B, T), np.int64), np.empty((B, T), np.float64)
        L, s, c_s = np.empty(B, np.int64), np.empty(B, np.int64), np.empty(S, np.float64)
        g = np.empty(S * A, np.float64)
        for n0 in range(0, N, B):
            nb = min(B, N - n0)
            forward(U, n0, nb, F0, Fp, Fn, R, term, st, ac, rw, L, s)
            for j in range(nb):
                backward(j, L, st, ac, rw, disc, gamma, pi, A, g, c_s)
                for i in range(S * A):
                    total[i] += g[i]
                    total_sq[i] += g[i] * g[i]

    _KERNELS = (estimates_kernel, moments_kernel)
    return _KERNELS


class _Tables(NamedTuple):
    F0: np.ndarray    # [1, S]      initial inverse-CDF table
    Fp: np.ndarray    # [S, A]      policy tables
    Fn: np.ndarray    # [S*A, S]    transition tables
    R: np.ndarray     # [S*A]
    term: np.ndarray  # [S] bool
    disc: np.ndarray  # [T]  gamma^t
    gamma: float
    pi: np.ndarray    # [S*A]
    S: int
    A: int
    T: int


def _tables(mdp, logits, horizon, gamma) -> _Tables:
    T = resolve_horizon(mdp, horizon)  # also checks that mdp is a TabularMDP
    gamma = mdp.gamma if gamma is None else validate.gamma(gamma)
    with torch.no_grad():
        logits = mdp.check_logits(logits).detach()
        S, A = mdp.n_states, mdp.n_actions
        pi = torch.softmax(logits, -1)
        F0 = inverse_cdf_table(mdp.initial)[None, :]
        Fp = inverse_cdf_table(pi)
        Fn = inverse_cdf_table(mdp.transitions.reshape(S * A, S))
    c = np.ascontiguousarray
    return _Tables(c(F0.numpy()), c(Fp.numpy()), c(Fn.numpy()), c(mdp.rewards.detach().numpy().reshape(-1)),
                   c(mdp.terminal.numpy()), discount_weights(T, gamma), float(gamma),
                   c(pi.numpy().reshape(-1)), S, A, T)


def _check_uniforms(uniforms, T: int) -> np.ndarray:
    if not isinstance(uniforms, np.ndarray):
        raise validate.ArgumentTypeError(f"uniforms must be a float64 numpy array [N, 2T]; got "
                                         f"{validate.describe(uniforms)}")
    U = uniforms
    if U.dtype != np.float64 or U.ndim != 2 or U.shape[1] != 2 * T:
        raise ValueError(f"uniforms must be a float64 array of shape [N, 2T] with 2T = {2 * T}; "
                         f"got {U.dtype} {tuple(U.shape)}")
    if U.size and not (U.min() >= 0.0 and U.max() < 1.0):  # also catches NaN
        raise ValueError("uniforms must lie in [0, 1)")
    return np.ascontiguousarray(U)


def _rng(seed) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(validate.seed(seed))


def estimates_from_uniforms(mdp: TabularMDP, logits, uniforms, horizon=None, gamma=None) -> np.ndarray:
    """Per-trajectory estimates ``[N, S, A]`` from given uniforms ``[N, 2T]`` (row n: trajectory n's choices
    ``s_0, a_0, s_1, a_1, ...``). The deterministic core of :func:`reinforce_estimates`, exposed for tests."""
    tb = _tables(mdp, logits, horizon, gamma)
    U = _check_uniforms(uniforms, tb.T)
    est_k, _ = _kernels()
    out = np.empty((U.shape[0], tb.S * tb.A), dtype=np.float64)
    est_k(U, tb.F0, tb.Fp, tb.Fn, tb.R, tb.term, tb.disc, tb.gamma, tb.pi, out)
    return out.reshape(U.shape[0], tb.S, tb.A)


def reinforce_estimates(mdp: TabularMDP, logits, n: int, seed=None, horizon: int | None = None,
                        gamma: float | None = None, chunk_size: int = 8192) -> np.ndarray:
    r"""``n`` reward-to-go REINFORCE estimates ``[n, S, A]`` (float64 numpy), sampled and reduced in one pass each.

    Same estimator as ``estimators.reinforce(traj, logits, gamma)`` (``credit="reward_to_go"``,
    discounted score): unbiased for :func:`pglib.exact.gradient` (finite horizon). ``gamma`` defaults
    to ``mdp.gamma``; ``horizon`` to ``mdp.horizon`` (required, as a truncation, when that is None).
    ``seed``: int, ``numpy.random.Generator`` (advanced) or None. ``chunk_size`` only bounds the
    uniform buffer; it does not change the result. Needs numba (``ImportError`` otherwise).

    Example::

        g_hat = fused.reinforce_estimates(m, logits, 10**5, seed=0).mean(0)   # ~ exact.gradient(m, logits)
    """
    n = validate.positive_int(n, "n")
    chunk_size = validate.positive_int(chunk_size, "chunk_size")
    tb = _tables(mdp, logits, horizon, gamma)
    validate.memory(validate.nbytes(n, tb.S * tb.A) + validate.nbytes(min(chunk_size, n), 2 * tb.T),
                    f"reinforce_estimates of {n} trajectories ([n, S, A] = [{n}, {tb.S}, {tb.A}])")
    rng = _rng(seed)
    est_k, _ = _kernels()
    out = np.empty((n, tb.S * tb.A), dtype=np.float64)
    buf = np.empty((min(chunk_size, n), 2 * tb.T), dtype=np.float64)
    for lo in range(0, n, chunk_size):
        m = min(chunk_size, n - lo)
        U = buf[:m]
        rng.random(out=U)
        est_k(U, tb.F0, tb.Fp, tb.Fn, tb.R, tb.term, tb.disc, tb.gamma, tb.pi, out[lo:lo + m])
    return out.reshape(n, tb.S, tb.A)


class Moments(NamedTuple):
    """Mean ``[S, A]``, per-coordinate sample variance ``[S, A]`` (``ddof=1``; 0 when ``n == 1``) and count."""

    mean: np.ndarray
    var: np.ndarray
    n: int

    @property
    def stderr(self) -> np.ndarray:
        """Standard error of the mean, ``sqrt(var / n)``."""
        return np.sqrt(self.var / self.n)


def reinforce_moments(mdp: TabularMDP, logits, n: int, seed=None, horizon: int | None = None,
                      gamma: float | None = None, chunk_size: int = 8192) -> Moments:
    """Mean and variance of the :func:`reinforce_estimates` of ``n`` trajectories, in bounded memory.

    Same draws and estimates as ``reinforce_estimates(mdp, logits, n, seed, ...)`` (for the same seed)
    without storing them: the kernel adds each chunk's estimates and their squares (chunk mean and sum of
    squared deviations follow), and chunks are combined with Chan, Golub & LeVeque's pairwise update. Memory is ``O(chunk_size * T)`` whatever ``n``.
    """
    n = validate.positive_int(n, "n")
    chunk_size = validate.positive_int(chunk_size, "chunk_size")
    tb = _tables(mdp, logits, horizon, gamma)
    validate.memory(validate.nbytes(min(chunk_size, n), 2 * tb.T), f"a chunk of {min(chunk_size, n)} trajectories")
    rng = _rng(seed)
    _, mom_k = _kernels()
    SA = tb.S * tb.A
    mean, m2, count = np.zeros(SA), np.zeros(SA), 0
    cm, c2 = np.empty(SA), np.empty(SA)
    buf = np.empty((min(chunk_size, n), 2 * tb.T), dtype=np.float64)
    for lo in range(0, n, chunk_size):
        m = min(chunk_size, n - lo)
        U = buf[:m]
        rng.random(out=U)
        cm[:], c2[:] = 0.0, 0.0
        mom_k(U, tb.F0, tb.Fp, tb.Fn, tb.R, tb.term, tb.disc, tb.gamma, tb.pi, cm, c2)  # chunk sum, sum of squares
        cm /= m
        c2 -= m * cm * cm  # chunk M2 (a chunk is small: little cancellation), then Chan et al.'s combination
        total = count + m
        delta = cm - mean
        mean = mean + delta * (m / total)
        m2 = m2 + c2 + delta * delta * (count * m / total)
        count = total
    var = m2 / (count - 1) if count > 1 else np.zeros(SA)
    return Moments(mean.reshape(tb.S, tb.A), var.reshape(tb.S, tb.A), count)
