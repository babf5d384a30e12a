r"""Claim checks: the one place where a chapter turns a number into a verdict.

Every check takes a ``claim_id`` first: a dotted lowercase identifier such as ``"rtg.unbiased"``
or ``"baseline.action_dependent.detected"`` (regex :data:`CLAIM_ID`). On success it prints
**exactly one line**

    ``PASS [claim_id] <what was measured, rounded to 3-4 significant digits>``

and returns the underlying result; on failure it raises :class:`ClaimFailed` (an
``AssertionError``) whose message starts with ``FAIL [claim_id]`` and says what was expected and
what was measured. Numbers are rounded (statistics to 4 significant digits, p-values to 2) so that
a rerun prints the same text. The book's ledger (``tests/ledger.py``) collects these lines.

Every check, passed or failed, is also appended to :data:`RECORD` as a dict with keys ``id``,
``kind``, ``passed``, ``text`` (the measured text) and ``expected``. Rerunning a cell appends
again; a collector should keep the last entry per id. Bad *arguments* (wrong shapes, NaN, a
malformed id) raise ``ValueError`` before anything is measured and are not recorded.

=====================  ===========================================  ==============================
check                  passes when                                  measured text
=====================  ===========================================  ==============================
:func:`unbiased`       the unbiasedness test does **not** reject     T², rank, n, p, α
:func:`biased`         the test **does** reject (negative control)   T², rank, n, p, α
:func:`close`          ``|measured - expected| <= atol + rtol|exp|``  max abs difference, tolerance
:func:`smaller_variance` the whole CI of Var(a)/Var(b) lies below 1   ratio and interval
:func:`holds`          ``condition`` is true                         the caller's text
=====================  ===========================================  ==============================
"""

from __future__ import annotations

import math
import re

import numpy as np

from pglib import stats
from pglib.stats import _to_numpy

__all__ = ["ALPHA", "CLAIM_ID", "RECORD", "use_alpha", "ClaimFailed", "unbiased", "biased", "close", "smaller_variance", "holds"]

#: The form of a claim id: dotted lowercase words of ``[a-z0-9_]``.
CLAIM_ID = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)*$")

#: Every check made in this process, in order: dicts with id, kind, passed, text, expected.
RECORD: list[dict] = []

#: The false-alarm rate :func:`unbiased` and :func:`biased` use when no ``alpha`` is given.
ALPHA: float = 0.01


def use_alpha(alpha: float) -> None:
    """Set the default false-alarm rate of :func:`unbiased` / :func:`biased` for this session.

    A chapter with ``k`` no-bias tests calls ``use_alpha(0.01 / k)`` (Bonferroni), so that all of
    them together raise a false alarm with probability at most 1% whatever the seed.
    """
    global ALPHA
    if not (isinstance(alpha, (int, float)) and 0.0 < float(alpha) < 1.0):
        raise ValueError(f"alpha must be a number in (0, 1), got {alpha!r}")
    ALPHA = float(alpha)


class ClaimFailed(AssertionError):
    """A claim check measured something other than what the claim says."""


def _check_id(claim_id) -> str:
    if not isinstance(claim_id, str) or not CLAIM_ID.fullmatch(claim_id):
        raise ValueError(
            "claim_id must be a dotted lowercase identifier matching ^[a-z0-9_]+(\\.[a-z0-9_]+)*$ "
            f"(like 'rtg.unbiased'); got {claim_id!r}"
        )
    return claim_id


def _one_line(text) -> str:
    return " ".join(str(text).split())


def _verdict(claim_id: str, kind: str, passed: bool, text: str, expected: str) -> None:
    text, expected = _one_line(text), _one_line(expected)
    RECORD.append(dict(id=claim_id, kind=kind, passed=bool(passed), text=text, expected=expected))
    if not passed:
        raise ClaimFailed(f"FAIL [{claim_id}] expected: {expected}; measured: {text}")
    _emit(claim_id, f"PASS [{claim_id}] {text}")


def anchor(claim_id: str) -> str:
    """The HTML id of a claim's line in the rendered book: ``rtg.unbiased`` -> ``claim-rtg-unbiased``."""
    return "claim-" + claim_id.replace(".", "-").replace("_", "-")


def _emit(claim_id: str, line: str) -> None:
    """Print ``line``; inside a Jupyter kernel also give it an HTML anchor the ledger can link to."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        get_ipython = None
    shell = get_ipython() if get_ipython is not None else None
    if shell is None or not hasattr(shell, "kernel"):
        print(line)
        return
    import html

    markup = f'<pre class="claim-check" id="{anchor(claim_id)}">{html.escape(line)}</pre>'
    display({"text/plain": line, "text/html": markup}, raw=True)


def _alpha_text(alpha: float, method: str) -> str:
    bound = "≤ " if method == "bonferroni" else ""
    return f"(false-alarm rate {bound}{alpha * 100:.3g}%)"


def _test_text(result: stats.UnbiasednessResult) -> str:
    rel = "<" if result.reject else "≥"
    return f"{result.statistic_text()}, {stats._fmt_p(result.p_value)} {rel} α={result.alpha:g}"


def unbiased(claim_id: str, samples, exact, alpha: float | None = None, method: str = "hotelling") -> stats.UnbiasednessResult:
    """Claim: ``samples[N, ...]`` average to ``exact[...]``; passes when the test does not reject.

    Uses :func:`pglib.stats.unbiasedness_test` (``method="hotelling"`` or ``"bonferroni"``; see
    there for which to prefer). A correct estimator fails this check with probability ``alpha``
    (at most ``alpha`` for Bonferroni; default :data:`ALPHA`, see :func:`use_alpha`); the printed
    line states that false-alarm rate::

        PASS [rtg.unbiased] Hotelling T²=9.871, rank 10, n=20000, p=0.45 ≥ α=0.01 (false-alarm rate 1%)
    """
    _check_id(claim_id)
    result = stats.unbiasedness_test(samples, exact, alpha=ALPHA if alpha is None else alpha, method=method)
    text = f"{_test_text(result)} {_alpha_text(result.alpha, method)}"
    expected = f"{method} test does not reject H0 E[samples]=exact at α={result.alpha:g} (p ≥ α)"
    _verdict(claim_id, "unbiased", not result.reject, text, expected)
    return result


def biased(claim_id: str, samples, exact, alpha: float | None = None, method: str = "hotelling") -> stats.UnbiasednessResult:
    """Negative control: passes when the unbiasedness test **does** reject ``E[samples] = exact``.

    Shows that the test has the power to see the bias in question at this sample size::

        PASS [baseline.action_dependent.detected] Hotelling T²=512.3, rank 10, n=20000, p<1e-16 < α=0.01 (bias detected)
    """
    _check_id(claim_id)
    result = stats.unbiasedness_test(samples, exact, alpha=ALPHA if alpha is None else alpha, method=method)
    text = f"{_test_text(result)} (bias detected)" if result.reject else _test_text(result)
    expected = f"{method} test rejects H0 E[samples]=exact at α={result.alpha:g} (p < α)"
    _verdict(claim_id, "biased", result.reject, text, expected)
    return result


def close(claim_id: str, measured, expected, atol: float = 1e-9, rtol: float = 0.0) -> float:
    r"""Claim: an identity, ``|measured - expected| <= atol + rtol * |expected|`` elementwise.

    Returns the largest absolute difference. Shapes must match exactly (no broadcasting). The
    printed difference has 2 significant digits; a difference at float64 rounding level (below
    ``64 * eps * max|expected|``, which can change between CPUs) is printed as that bound instead,
    so the line is the same on every machine::

        PASS [returns.rtg_recursion] max |measured − expected| = 0 ≤ atol=1e-09 + rtol=0·|expected|
    """
    _check_id(claim_id)
    x, _ = _to_numpy(measured, "measured")
    y, _ = _to_numpy(expected, "expected")
    if x.shape != y.shape:
        raise ValueError(f"measured and expected must have the same shape; got {x.shape} and {y.shape}")
    for name, value in (("atol", atol), ("rtol", rtol)):
        if not isinstance(value, (int, float, np.floating, np.integer)) or not (0 <= value < math.inf):
            raise ValueError(f"{name} must be a finite non-negative number; got {value!r}")
    diff = np.abs(x - y)
    max_diff = float(diff.max()) if diff.size else 0.0
    passed = bool((diff <= atol + rtol * np.abs(y)).all())
    scale = float(np.abs(y).max()) if y.size else 0.0
    rounding = 64 * np.finfo(np.float64).eps * max(scale, np.finfo(np.float64).tiny)
    if max_diff == 0:
        shown = "= 0"
    elif max_diff <= rounding:
        shown = f"< {rounding:.1e} (float64 rounding)"
    else:
        shown = f"= {max_diff:.1e}"
    tol = f"atol={atol:.2g}" + (f" + rtol={rtol:.2g}·|expected|" if rtol else "")
    text = f"max |measured − expected| {shown} {'≤' if passed else '>'} {tol}"
    _verdict(claim_id, "close", passed, text, f"|measured − expected| ≤ {tol} everywhere")
    return max_diff


def smaller_variance(claim_id: str, a, b, confidence: float = 0.99, paired: bool | None = None) -> stats.VarianceRatio:
    """Claim: estimator ``a`` has smaller total variance than ``b``; passes when the whole
    ``confidence`` interval of Var(a)/Var(b) lies below 1.

    ``a[N, ...]``, ``b[M, ...]``; ``paired`` as in :func:`pglib.stats.variance_ratio` (default:
    paired when ``N == M``, e.g. two estimators on the same trajectories)::

        PASS [baseline.reduces_variance] Var(a)/Var(b)=0.4123, 99% CI [0.3987, 0.4264] < 1 (paired, n=20000)
    """
    _check_id(claim_id)
    result = stats.variance_ratio(a, b, confidence=confidence, paired=paired)
    passed = result.high < 1.0
    pairing = f"paired, n={result.n_a}" if result.paired else f"independent, n={result.n_a} and {result.n_b}"
    text = (f"Var(a)/Var(b)={stats._fmt(result.ratio, 4)}, {result.confidence * 100:g}% CI "
            f"[{stats._fmt(result.low, 4)}, {stats._fmt(result.high, 4)}] {'< 1' if passed else 'not below 1'} "
            f"({pairing})")
    expected = f"the {result.confidence * 100:g}% CI of Var(a)/Var(b) entirely below 1"
    _verdict(claim_id, "smaller_variance", passed, text, expected)
    return result


def holds(claim_id: str, condition, measured: str, expected: str) -> bool:
    """Generic claim: passes when ``condition`` is true. ``measured`` is the text printed after
    ``PASS [claim_id]`` (round the numbers in it yourself); ``expected`` says what should hold and
    appears in the failure message::

        claims.holds("ess.drops", ess < 0.5 * n, f"ESS={ess:.4g} of n={n}", "ESS below half of n")
        PASS [ess.drops] ESS=312.5 of n=1000
    """
    _check_id(claim_id)
    try:
        passed = bool(condition)
    except Exception as exc:  # e.g. a multi-element numpy array or tensor
        raise ValueError(f"condition must be a single truth value; got {type(condition).__name__} ({exc})") from None
    _verdict(claim_id, "holds", passed, str(measured), str(expected))
    return passed
