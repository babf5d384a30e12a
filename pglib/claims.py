r"""Claim checks: the one place where a chapter turns a number into a verdict.

Every check takes a ``claim_id`` first: a dotted lowercase identifier such as ``"rtg.unbiased"``
(regex :data:`CLAIM_ID`). On success it prints

    ``PASS [claim_id] <what was measured, rounded>``

wrapped at :data:`WIDTH` characters (continuation lines indented four spaces), and returns the
underlying result; on failure it raises :class:`ClaimFailed` (an ``AssertionError``) whose
message starts with ``FAIL [claim_id]`` and says what was expected and what was measured.
Numbers are rounded so that a rerun prints the same text. Bad *arguments* (wrong shapes, NaN,
a malformed id) raise ``ValueError`` before anything is measured and are not recorded.

**What a check could have missed.** Every check records ``fail_rate``: the probability that it
fails although its claim is true, i.e. the chance it stops a correct build. For a no-bias test
that is its level ``alpha``; for a negative control it is one minus the test's power at the
control's bias; for a variance claim, the chance that the interval reaches 1 although the
ratio is below it; exact identities have rate 0; :func:`holds` must be told. A chapter adds
them up with :func:`within_budget` (a union bound), so its false-alarm rate is stated, not
hoped for. Every no-bias line also prints the test's power: the bias it would detect with
probability 80%, relative to ``|reference|`` (by default ``|exact|``), along the reference
and in the least favourable direction.

========================  =============================================  =========================
check                     passes when                                    fail_rate (claim true)
========================  =============================================  =========================
:func:`unbiased`          the unbiasedness test does **not** reject      ``alpha``
:func:`biased`            the test **does** reject (negative control)    1 - power at its bias
:func:`close`             ``|measured - expected| <= atol + rtol|exp|``  ``fail_rate`` (default 0)
:func:`smaller_variance`  the CI of Var(a)/Var(b) lies below 1           P(CI reaches 1)
:func:`holds`             ``condition`` is true                          ``fail_rate`` (required)
:func:`raises`            ``fn()`` raises the stated error               0
========================  =============================================  =========================

Records: every check, passed or failed, appends a dict to :data:`RECORD` (``id``, ``kind``,
``passed``, ``text``, ``expected``, ``fail_rate``, ``alpha``, ``statistic``, ``p_value``,
``detectable_bias`` ...). When the environment variable ``PGLIB_CLAIM_LOG`` names a file, the
record (with ``seconds``, the time since the previous check) is also appended to it as one
JSON line; the seed audit reads that. In a Jupyter kernel the record travels in the output's
metadata (key ``pglib.claim``), which nbval does not compare and the ledger reads.
"""

from __future__ import annotations

import contextlib
import html
import json
import math
import os
import re
import textwrap
import time

import numpy as np
import scipy.stats

from pglib import stats, validate
from pglib.stats import as_numpy
from pglib.stats import format_percent as pct  # claims.pct: the name the ledger tool uses

__all__ = [
    "ALPHA", "CLAIM_ID", "RECORD", "WIDTH", "use_alpha", "ClaimFailed", "anchor", "pct",
    "unbiased", "biased", "close", "smaller_variance", "holds", "raises", "group",
    "within_budget", "spent",
]

#: The form of a claim id: dotted lowercase words of ``[a-z0-9_]``.
CLAIM_ID = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)*$")

#: Every check made in this process, in order (see the module docstring for the keys).
RECORD: list[dict] = []

#: The false-alarm rate :func:`unbiased` and :func:`biased` use when no ``alpha`` is given.
ALPHA: float = 0.01

#: Printed lines are wrapped at this width (the book's page width in characters).
WIDTH = 88

_POWER = 0.8
_GROUP: list | None = None
_LAST_TIME = [time.perf_counter()]


def use_alpha(alpha: float) -> None:
    """Set the default false-alarm rate of :func:`unbiased` / :func:`biased` for this session."""
    global ALPHA
    alpha = validate.real(alpha, "alpha", low=0.0, high=1.0, low_open=True, high_open=True)
    ALPHA = alpha


class ClaimFailed(AssertionError):
    """A claim check measured something other than what the claim says."""


# ----------------------------------------------------------------------------- formatting


def _sig(x: float, digits: int = 4):
    """``x`` rounded to ``digits`` significant digits (None and non-finite values pass)."""
    if not isinstance(x, float) or not math.isfinite(x) or x == 0:
        return x
    return float(f"{x:.{digits}g}")


def _check_id(claim_id) -> str:
    if not isinstance(claim_id, str) or not CLAIM_ID.fullmatch(claim_id):
        raise ValueError(
            "claim_id must be a dotted lowercase identifier matching ^[a-z0-9_]+(\\.[a-z0-9_]+)*$ "
            f"(like 'rtg.unbiased'); got {claim_id!r}"
        )
    return claim_id


def _check_rate(value, name: str = "fail_rate") -> float:
    return validate.probability(value, name)


def _one_line(text) -> str:
    return " ".join(str(text).split())


def _wrap(line: str) -> str:
    return "\n".join(textwrap.wrap(line, WIDTH, subsequent_indent="    ", break_long_words=True,
                                   break_on_hyphens=False))


def anchor(claim_id: str) -> str:
    """The HTML id of a claim's line in the rendered book: ``rtg.unbiased`` -> ``claim-rtg-unbiased``."""
    return "claim-" + claim_id.replace(".", "-").replace("_", "-")


# ----------------------------------------------------------------------------- the verdict


def _verdict(claim_id: str, kind: str, passed: bool, text: str, expected: str, **facts) -> None:
    now = time.perf_counter()
    seconds, _LAST_TIME[0] = now - _LAST_TIME[0], now
    text, expected = _one_line(text), _one_line(expected)
    record = dict(id=claim_id, kind=kind, passed=bool(passed), text=text, expected=expected,
                  **{k: _sig(v) for k, v in facts.items()})
    RECORD.append(record)
    log = os.environ.get("PGLIB_CLAIM_LOG")
    if log:
        with open(log, "a") as f:
            f.write(json.dumps(dict(record, seconds=round(seconds, 4))) + "\n")
    if not passed:
        raise ClaimFailed(f"FAIL [{claim_id}] expected: {expected}; measured: {text}")
    line = f"PASS [{claim_id}] {text}"
    if _GROUP is not None:
        _GROUP.append((record, line))
    else:
        _emit([(record, line)])


def _json_safe(record: dict) -> dict:
    """The record with non-finite floats (a T² of inf) as strings: Jupyter metadata is JSON."""
    return {k: (repr(v) if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in record.items()}


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


def _emit(entries: list[tuple[dict, str]], title: str | None = None) -> None:
    """Show claim lines: plain text outside Jupyter; in a kernel, text plus HTML anchors."""
    plain = "\n".join(_wrap(line) for _, line in entries)
    if not _in_kernel():
        print(plain)
        return
    from IPython.display import display

    if title is None:
        (record, line), = entries
        markup = f'<pre class="claim-check" id="{anchor(record["id"])}">{html.escape(_wrap(line))}</pre>'
        display({"text/plain": plain, "text/html": markup}, raw=True,
                metadata={"pglib.claim": [_json_safe(record)]})
        return
    rows = []
    for record, _ in entries:
        rows.append(
            f'<tr id="{anchor(record["id"])}"><td><code>{html.escape(record["id"])}</code></td>'
            f"<td>{html.escape(record['text'])}</td><td>PASS</td></tr>")
    n = len(entries)
    summary = f"{html.escape(title)}: {n} check{'s' if n != 1 else ''}, all pass"
    markup = (f'<details class="claim-table"><summary>{summary}</summary><table>'
              "<thead><tr><th>claim</th><th>measured (power or tolerance)</th><th>verdict</th>"
              f"</tr></thead><tbody>{''.join(rows)}</tbody></table></details>")
    display({"text/plain": plain, "text/html": markup}, raw=True,
            metadata={"pglib.claim": [_json_safe(r) for r, _ in entries]})


@contextlib.contextmanager
def group(title: str = "Evidence"):
    """Collect the checks made inside the block and show them as one folded table.

    The plain text (what nbval compares and a terminal prints) is the same ``PASS`` lines; the
    HTML is one collapsed table whose rows carry the ``#claim-...`` anchors. A failing check
    still raises at once::

        with claims.group("Unbiased, by sampling"):
            claims.unbiased("mc.unbiased", X, grad, alpha=ALPHA)
            claims.biased("mc.myopic.detected", myopic, grad, alpha=ALPHA, true_mean=m)
    """
    global _GROUP
    if not isinstance(title, str) or not title.strip():
        raise ValueError(f"title must be a non-empty string; got {title!r}")
    if _GROUP is not None:
        raise RuntimeError("claims.group() blocks cannot be nested")
    _GROUP = []
    try:
        yield
    finally:
        entries, _GROUP = _GROUP, None
        if entries:
            _emit(entries, title=title)


# ----------------------------------------------------------------------------- no-bias tests


def _test_text(result: stats.UnbiasednessResult) -> str:
    rel = "<" if result.reject else "≥"
    return f"{result.statistic_text()}, {stats.format_p(result.p_value)} {rel} α={pct(result.alpha)}"


def _reference(reference, exact, result) -> np.ndarray | None:
    ref = exact if reference is None else reference
    r, _ = as_numpy(ref, "reference")
    if r.size != result.dims:
        raise ValueError(f"reference must have the shape of exact ({result.dims} entries); got {r.shape}")
    return r.reshape(-1) if np.linalg.norm(r) > 0 else None


def _power_facts(result: stats.UnbiasednessResult, ref: np.ndarray | None) -> dict:
    if result.rank == 0 and not result.null_rejected:
        return dict(detectable_bias=None, detectable_bias_worst=None, detectable_bias_rel=None,
                    detectable_bias_worst_rel=None)
    worst = result.detectable_bias(None, _POWER)
    if ref is None:
        return dict(detectable_bias=None, detectable_bias_worst=worst, detectable_bias_rel=None,
                    detectable_bias_worst_rel=None)
    along = result.detectable_bias(ref, _POWER)
    norm = float(np.linalg.norm(ref))
    return dict(detectable_bias=along, detectable_bias_worst=worst, detectable_bias_rel=along / norm,
                detectable_bias_worst_rel=worst / norm)


def _power_text(facts: dict, method: str, name: str) -> str:
    bound = "at most " if method == "bonferroni" else ""
    if facts["detectable_bias_rel"] is not None:
        return (f"80% power at a bias of {bound}{pct(facts['detectable_bias_rel'])} of {name} along it, "
                f"{pct(facts['detectable_bias_worst_rel'])} in the worst direction")
    if facts["detectable_bias_worst"] is not None:
        return f"80% power at a bias of norm {bound}{facts['detectable_bias_worst']:.2g} (worst direction)"
    return "nothing varies: any bias is seen exactly"


def unbiased(claim_id: str, samples, exact, alpha: float | None = None, method: str = "hotelling",
             reference=None, name: str = "|exact|") -> stats.UnbiasednessResult:
    """Claim: ``samples[N, ...]`` average to ``exact[...]``; passes when the test does not reject.

    Uses :func:`pglib.stats.unbiasedness_test`. A correct estimator fails with probability
    ``alpha`` (at most ``alpha`` for Bonferroni; default :data:`ALPHA`). The line states that rate
    and the test's power: the bias it detects with probability 80%, as a share of
    ``|reference|`` (default ``exact``; give e.g. the gradient when ``exact`` is zero), along the
    reference and in the worst direction; ``name`` is how the line calls ``|reference|``::

        PASS [mc.unbiased] Hotelling T²=5.092, rank 2, n=100000, p=0.078 ≥ α=0.02%; 80% power
            at a bias of 4.1% of |∇J| along it, 11% in the worst direction
    """
    _check_id(claim_id)
    result = stats.unbiasedness_test(samples, exact, alpha=ALPHA if alpha is None else alpha, method=method)
    facts = _power_facts(result, _reference(reference, exact, result))
    text = f"{_test_text(result)}; {_power_text(facts, method, name)}"
    expected = f"{method} test does not reject H0 E[samples]=exact at α={pct(result.alpha)} (p ≥ α)"
    _verdict(claim_id, "unbiased", not result.reject, text, expected, fail_rate=result.alpha,
             alpha=result.alpha, statistic=result.statistic, p_value=result.p_value, n=result.n,
             method=method, **facts)
    return result


def biased(claim_id: str, samples, exact, alpha: float | None = None, method: str = "hotelling",
           true_mean=None) -> stats.UnbiasednessResult:
    """Negative control: passes when the unbiasedness test **does** reject ``E[samples] = exact``.

    ``true_mean`` is the control's exact mean (e.g. from :mod:`pglib.enumeration`): the line then
    prints the test's power at that bias, and one minus it is the chance this control fails a
    correct build (``fail_rate``). Without it the power is estimated at the measured mean::

        PASS [mc.myopic.detected] Hotelling T²=2.074e+05, rank 2, n=100000, p<1e-16 < α=0.02%
            (bias detected; power 100% at its exact bias)
    """
    _check_id(claim_id)
    result = stats.unbiasedness_test(samples, exact, alpha=ALPHA if alpha is None else alpha, method=method)
    e, _ = as_numpy(exact, "exact")
    if true_mean is None:
        x, _ = as_numpy(samples, "samples")
        shift, basis = x.mean(axis=0) - e, "estimated"
    else:
        t, _ = as_numpy(true_mean, "true_mean")
        if t.shape != e.shape:
            raise ValueError(f"true_mean must have the shape of exact {e.shape}; got {t.shape}")
        shift, basis = t - e, "exact"
    power = result.power(shift)
    where = "at its exact bias" if basis == "exact" else "at the measured bias (estimated)"
    verdict = "bias detected" if result.reject else "bias missed"
    text = f"{_test_text(result)} ({verdict}; power {_power_pct(power)} {where})"
    expected = f"{method} test rejects H0 E[samples]=exact at α={pct(result.alpha)} (p < α)"
    _verdict(claim_id, "biased", result.reject, text, expected, fail_rate=1.0 - power, fail_rate_basis=basis,
             alpha=result.alpha, statistic=result.statistic, p_value=result.p_value, n=result.n,
             method=method, power=power, bias_norm=float(np.linalg.norm(shift)))
    return result


def _power_pct(power: float) -> str:
    miss = 1.0 - power
    return ">99.99%" if miss < 5e-5 else pct(power)


# ----------------------------------------------------------------------------- other checks


def close(claim_id: str, measured, expected, atol: float = 1e-9, rtol: float = 0.0,
          fail_rate: float = 0.0) -> float:
    r"""Claim: an identity, ``|measured - expected| <= atol + rtol * |expected|`` elementwise.

    Returns the largest absolute difference. Shapes must match exactly (no broadcasting). A
    difference at float64 rounding level (below ``64 * eps * max|expected|``) is printed as that
    bound, so the line is the same on every machine. ``fail_rate`` is 0 for an exact identity;
    when ``measured`` is random, pass the probability that it falls outside the tolerance::

        PASS [returns.rtg_recursion] max |measured − expected| = 0 ≤ atol=1e-09
    """
    _check_id(claim_id)
    fail_rate = _check_rate(fail_rate)
    x, _ = as_numpy(measured, "measured")
    y, _ = as_numpy(expected, "expected")
    if x.shape != y.shape:
        raise ValueError(f"measured and expected must have the same shape; got {x.shape} and {y.shape}")
    for name, value in (("atol", atol), ("rtol", rtol)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) \
                or not (0 <= value < math.inf):
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
    if fail_rate:
        text += f" (fails by chance with prob. ≤ {pct(fail_rate)})"
    _verdict(claim_id, "close", passed, text, f"|measured − expected| ≤ {tol} everywhere",
             fail_rate=fail_rate, statistic=max_diff)
    return max_diff


def smaller_variance(claim_id: str, a, b, confidence: float = 0.99, paired: bool | None = None,
                     exact_ratio: float | None = None) -> stats.VarianceRatio:
    """Claim: estimator ``a`` has smaller total variance than ``b``; passes when the whole
    ``confidence`` interval of Var(a)/Var(b) lies below 1.

    An equal-variance pair passes with probability ``(1 - confidence) / 2``. A true claim fails
    when the interval reaches 1: with ``exact_ratio`` (e.g. from enumeration) that chance is
    :math:`\\Phi(z - |\\log \\rho| / se)`, else it is estimated at the measured ratio. ``a[N, ...]``,
    ``b[M, ...]``; ``paired`` as in :func:`pglib.stats.variance_ratio`::

        PASS [baseline.reduces_variance] Var(a)/Var(b)=0.4123, 99% CI [0.3987, 0.4264] < 1
            (paired, n=20000; fails a true claim with prob. < 1e-16)
    """
    _check_id(claim_id)
    result = stats.variance_ratio(a, b, confidence=confidence, paired=paired)
    if exact_ratio is not None:
        rho, basis = validate.real(exact_ratio, "exact_ratio", low=0.0, low_open=True), "exact"
    else:
        rho, basis = result.ratio, "estimated"
    z = float(scipy.stats.norm.isf((1 - result.confidence) / 2))
    se = math.log(result.high / result.ratio) / z if result.high > result.ratio else 0.0
    fail = float(scipy.stats.norm.sf(-math.log(rho) / se - z)) if se > 0 else float(rho >= 1)
    passed = result.high < 1.0
    pairing = f"paired, n={result.n_a}" if result.paired else f"independent, n={result.n_a} and {result.n_b}"
    chance = "< 1e-16" if fail < 1e-16 else ("≈ " if basis == "estimated" else "") + pct(fail)
    text = (f"Var(a)/Var(b)={stats.format_sig(result.ratio, 4)}, {result.confidence * 100:g}% CI "
            f"[{stats.format_sig(result.low, 4)}, {stats.format_sig(result.high, 4)}] {'< 1' if passed else 'not below 1'} "
            f"({pairing}; fails a true claim with prob. {chance})")
    expected = f"the {result.confidence * 100:g}% CI of Var(a)/Var(b) entirely below 1"
    _verdict(claim_id, "smaller_variance", passed, text, expected, fail_rate=fail, fail_rate_basis=basis,
             statistic=result.ratio, ci_low=result.low, ci_high=result.high, n=result.n_a)
    return result


def holds(claim_id: str, condition, measured: str, expected: str, *, fail_rate: float) -> bool:
    """Generic claim: passes when ``condition`` is true.

    ``measured`` is the text printed after ``PASS [claim_id]`` (round the numbers in it yourself);
    ``expected`` says what should hold and appears in the failure message. ``fail_rate`` is
    required: the probability that ``condition`` is false although the claim is true (0 when
    it is exact or does not depend on the seed; otherwise a computed bound)::

        claims.holds("ess.drops", ess < 0.5 * n, f"ESS={ess:.4g} of n={n}", "ESS below half of n",
                     fail_rate=0.0)
    """
    _check_id(claim_id)
    fail_rate = _check_rate(fail_rate)
    try:
        passed = bool(condition)
    except Exception as exc:  # e.g. a multi-element numpy array or tensor
        raise ValueError(f"condition must be a single truth value; got {type(condition).__name__} ({exc})") from None
    text = str(measured)
    if fail_rate:
        text += f" (fails by chance with prob. ≤ {pct(fail_rate)})"
    _verdict(claim_id, "holds", passed, text, str(expected), fail_rate=fail_rate)
    return passed


def raises(claim_id: str, fn, exception: type[BaseException], match: str) -> BaseException:
    """Claim: calling ``fn()`` raises ``exception`` with a message matching the regex ``match``.

    Use it where a chapter shows a refusal (a deterministic policy has no score): the cell then
    runs under every executor, and the check fails if the error is not raised or says something
    else. Returns the exception::

        PASS [limits.deterministic.refused] ValueError: sigma must be positive ...
    """
    _check_id(claim_id)
    if not callable(fn):
        raise TypeError(f"fn must be a callable taking no arguments; got {type(fn).__name__}")
    if not (isinstance(exception, type) and issubclass(exception, BaseException)):
        raise TypeError(f"exception must be an exception class; got {exception!r}")
    if not isinstance(match, str) or not match:
        raise ValueError(f"match must be a non-empty regular expression; got {match!r}")
    expected = f"{exception.__name__} with a message matching {match!r}"
    try:
        fn()
    except exception as exc:
        message = _one_line(str(exc))
        passed = re.search(match, str(exc)) is not None
        text = f"{type(exc).__name__}: {message}"
        _verdict(claim_id, "raises", passed, text, expected, fail_rate=0.0)
        return exc
    except Exception as exc:  # the wrong kind of error
        _verdict(claim_id, "raises", False, f"{type(exc).__name__}: {_one_line(str(exc))}", expected,
                 fail_rate=0.0)
    _verdict(claim_id, "raises", False, "no exception was raised", expected, fail_rate=0.0)


# ----------------------------------------------------------------------------- the budget


def spent() -> tuple[float, int]:
    """``(sum of fail_rate, number of checks)`` over this session's checks (last record per id)."""
    last = {r["id"]: r for r in RECORD}
    return float(sum(r.get("fail_rate", 0.0) or 0.0 for r in last.values())), len(last)


def within_budget(claim_id: str, limit: float) -> float:
    """Claim: the checks made so far fail a correct build with probability at most ``limit``.

    The union bound: the chance that any check fails although every claim is true is at most
    the sum of their ``fail_rate``. A chapter ends with this check; its own rate is 0. Returns
    the sum::

        PASS [mc.budget] 14 checks (6 random) fail a correct build with prob. ≤ 0.099% ≤ 0.1%
    """
    _check_id(claim_id)
    limit = _check_rate(limit, "limit")
    total, n = spent()
    random = sum(1 for r in {r["id"]: r for r in RECORD}.values() if (r.get("fail_rate") or 0) > 0)
    passed = total <= limit
    text = (f"{n} checks ({random} random) fail a correct build with prob. ≤ {pct(total)} "
            f"{'≤' if passed else '>'} {pct(limit)} (union bound)")
    _verdict(claim_id, "budget", passed, text, f"sum of fail_rate ≤ {pct(limit)}", fail_rate=0.0,
             statistic=total)
    return total
