"""pglib.claims: printed lines, failure messages, fail rates, power, records, the budget.

Every check of the library is run once on a deliberately wrong input and must fail
(``test_every_check_can_fail``): a check that cannot fail proves nothing.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import scipy.stats
import torch

from ledger import LINE  # the ledger's parser: the printed lines must be of exactly this form
from pglib import claims, stats

RNG = np.random.default_rng(0)
X = RNG.normal(size=(2000, 3)) + np.array([1.0, 2.0, 3.0])
MU = np.array([1.0, 2.0, 3.0])


@pytest.fixture(autouse=True)
def fresh_record(monkeypatch):
    monkeypatch.setattr(claims, "RECORD", [])
    monkeypatch.delenv("PGLIB_CLAIM_LOG", raising=False)


def joined(capsys, claim_id: str) -> str:
    """The one printed claim, continuation lines joined; every line within the width."""
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines and out.endswith("\n"), out
    assert all(len(line) <= claims.WIDTH for line in lines), lines
    assert all(line.startswith("    ") for line in lines[1:]), lines
    m = LINE.match(" ".join(line.strip() for line in lines))
    assert m and m.group(1) == "PASS" and m.group(2) == claim_id, lines
    return m.group(3)


def test_pct_prints_sensible_precision():
    assert claims.pct(0.01 / 6) == "0.17%"
    assert claims.pct(0.002) == "0.2%"
    assert claims.pct(0.05) == "5%"
    assert claims.pct(0.8) == "80%"
    assert claims.pct(0.0) == "0%"
    assert claims.pct(3e-9) == "3e-9"


def test_unbiased_line_states_rate_and_power(capsys):
    result = claims.unbiased("rtg.unbiased", X, MU)
    text = joined(capsys, "rtg.unbiased")
    assert not result.reject
    assert text.startswith(f"Hotelling T²={result.statistic:.3g}, rank 3, n=2000, p={result.p_value:.2g} ≥ α=1%; ")
    along = result.detectable_bias(MU) / np.linalg.norm(MU)
    worst = result.detectable_bias() / np.linalg.norm(MU)
    assert f"80% power at a bias of {claims.pct(along)} of |exact| along it" in text
    assert f"{claims.pct(worst)} in the worst direction" in text
    rec = claims.RECORD[0]
    assert rec["kind"] == "unbiased" and rec["passed"] and rec["fail_rate"] == 0.01 and rec["alpha"] == 0.01
    assert rec["detectable_bias_rel"] == pytest.approx(along, rel=1e-3)


def test_detectable_bias_matches_the_one_dimensional_formula():
    # one coordinate of unit variance: the z-test detects a shift d with power
    # Phi(d sqrt(n) - z_{1-alpha/2}) (+ the negligible other tail), so d = (z_a + z_p) / sqrt(n)
    x = np.random.default_rng(3).normal(size=(40_000, 1))
    result = claims.stats.unbiasedness_test(x, np.zeros(1), alpha=0.05)
    sd = x.std(ddof=1)
    d = (scipy.stats.norm.isf(0.025) + scipy.stats.norm.ppf(0.8)) * sd / math.sqrt(len(x))
    assert result.detectable_bias([1.0]) == pytest.approx(d, rel=2e-3)
    assert result.detectable_bias() == pytest.approx(d, rel=2e-3)


def test_unbiased_reference_for_a_zero_mean(capsys):
    claims.unbiased("zero.mean", X - X.mean(0), np.zeros(3), reference=MU, name="|∇J|")
    assert "of |∇J| along it" in joined(capsys, "zero.mean")
    claims.unbiased("zero.mean2", X - X.mean(0), np.zeros(3))
    assert "bias of norm" in joined(capsys, "zero.mean2")


def test_unbiased_bonferroni_and_torch(capsys):
    claims.unbiased("rtg.unbiased_bonferroni", torch.from_numpy(X), torch.from_numpy(MU), alpha=0.05,
                    method="bonferroni")
    text = joined(capsys, "rtg.unbiased_bonferroni")
    assert text.startswith("Bonferroni max|t|=") and "over 3 coordinates" in text
    assert "≥ α=5%" in text and "bias of at most" in text


def test_unbiased_failure_message(capsys):
    with pytest.raises(claims.ClaimFailed) as info:
        claims.unbiased("rtg.unbiased", X, MU + [0.0, 0.0, 0.3])
    message = str(info.value)
    assert isinstance(info.value, AssertionError)
    assert message.startswith("FAIL [rtg.unbiased] expected: hotelling test does not reject")
    assert "measured: Hotelling T²=" in message and "p<1e-16 < α=1%" in message
    assert capsys.readouterr().out == ""  # nothing printed on failure
    assert claims.RECORD[-1]["passed"] is False and claims.RECORD[-1]["id"] == "rtg.unbiased"


def test_biased_reports_power_and_fail_rate(capsys):
    shift = np.array([0.0, 0.0, 0.3])
    result = claims.biased("baseline.action_dependent.detected", X, MU + shift, true_mean=MU)
    text = joined(capsys, "baseline.action_dependent.detected")
    assert "(bias detected; power >99.99% at its exact bias)" in text
    assert claims.RECORD[-1]["fail_rate"] == pytest.approx(1 - result.power(-shift), abs=1e-12)
    with pytest.raises(claims.ClaimFailed, match=r"FAIL \[baseline.missed\] expected: hotelling test rejects"):
        claims.biased("baseline.missed", X, MU)
    assert [r["passed"] for r in claims.RECORD] == [True, False]
    with pytest.raises(ValueError, match="true_mean"):
        claims.biased("baseline.shape", X, MU, true_mean=np.zeros(2))


def test_biased_reports_bias_where_nothing_varies(capsys):
    x = X.copy()
    x[:, 2] = 0.0  # a coordinate that never varies, but whose exact value is not 0
    claims.biased("null.detected", x, np.array([1.0, 2.0, 1e-3]))
    text = joined(capsys, "null.detected")
    assert "T²=inf" in text and "where the samples never vary" in text


def test_close(capsys):
    assert claims.close("rtg.identity", np.array([0.1 + 0.2, 1.0]), np.array([0.3, 1.0])) < 1e-15
    assert joined(capsys, "rtg.identity") == "max |measured − expected| ≤ atol=1e-09"
    claims.close("rtg.exact_zero", torch.zeros(3), torch.zeros(3))
    assert joined(capsys, "rtg.exact_zero") == "max |measured − expected| ≤ atol=1e-09"
    claims.close("rtg.rtol", np.array([101.0]), np.array([100.0]), atol=0.0, rtol=0.02)
    assert joined(capsys, "rtg.rtol") == "max |measured − expected| ≤ atol=0 + rtol=0.02·|expected|"
    claims.close("rtg.random", np.array([1.01]), np.array([1.0]), atol=0.05, fail_rate=1e-4)
    assert joined(capsys, "rtg.random").endswith("(fails by chance with prob. ≤ 0.01%)")
    assert claims.RECORD[-1]["fail_rate"] == 1e-4 and claims.RECORD[0]["fail_rate"] == 0.0
    with pytest.raises(claims.ClaimFailed) as info:
        claims.close("rtg.off", np.array([1.0, 2.5]), np.array([1.0, 2.0]), atol=1e-6)
    assert str(info.value) == ("FAIL [rtg.off] expected: |measured − expected| + 256 ulp ≤ atol=1e-06 everywhere; "
                               "measured: max |measured − expected| = 0.5 > atol=1e-06")


def test_close_prints_the_same_line_whatever_the_residual(capsys):
    """Rounding noise of any size below the tolerance prints one text: no residual digits."""
    lines = set()
    for i, noise in enumerate((0.0, 2.9e-16, 3.3e-16, 7e-14, 1e-12)):
        claims.close(f"same.line{i}", np.array([1.0 + noise, 2.0]), np.array([1.0, 2.0]), atol=1e-9)
        lines.add(joined(capsys, f"same.line{i}"))
    assert lines == {"max |measured − expected| ≤ atol=1e-09"}


def test_close_margin_makes_the_verdict_portable():
    """A residual within CLOSE_MARGIN_ULPS units in the last place (of the values) of its tolerance
    is undecidable and fails on every machine; a tolerance at the rounding level cannot pass."""
    ulp = np.finfo(np.float64).eps
    scale, atol = 1e3, 1e-9
    margin = claims.CLOSE_MARGIN_ULPS * ulp * scale
    assert margin < atol / 10
    with pytest.raises(claims.ClaimFailed, match="too close to decide"):
        claims.close("margin.inside", np.array([scale + 0.99 * atol]), np.array([scale]), atol=atol)
    claims.close("margin.clear", np.array([scale + atol - 2 * margin]), np.array([scale]), atol=atol)
    with pytest.raises(claims.ClaimFailed, match="too close to decide"):  # a tolerance of 4 ulp
        claims.close("margin.ulps", np.array([0.5]), np.array([0.5]), atol=4 * ulp * 0.5)
    claims.close("margin.ulps_clear", np.array([0.5]), np.array([0.5]), atol=512 * ulp * 0.5)


    with pytest.raises(ValueError, match="measured and expected"):
        claims.close("rtg.shape", np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="atol"):
        claims.close("rtg.tol", np.zeros(3), np.zeros(3), atol=-1.0)
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="fail_rate"):
            claims.close("rtg.rate", np.zeros(3), np.zeros(3), fail_rate=bad)


def test_smaller_variance(capsys):
    noise = np.random.default_rng(1).normal(size=X.shape)
    result = claims.smaller_variance("baseline.reduces_variance", 0.5 * (X - MU) + 0.1 * noise, X)
    text = joined(capsys, "baseline.reduces_variance")
    assert result.paired and result.high < 1
    assert text.startswith("Var(a)/Var(b)={}, 99% CI [{}, {}] < 1 ".format(
                               *stats.fmt_interval(result.ratio, result.low, result.high)) +
                           "(paired, n=2000; fails a true claim with prob.")
    with pytest.raises(claims.ClaimFailed, match=r"FAIL \[variance.same\] expected: the 99% CI .* below 1; "
                                                 r"measured: Var\(a\)/Var\(b\)=.* not below 1 \(independent"):
        claims.smaller_variance("variance.same", X, noise[:1000], paired=False)


def test_smaller_variance_fail_rate_from_the_exact_ratio(capsys):
    # log-scale interval: a true ratio rho fails when the upper end reaches 1, with probability
    # Phi(z - |log rho| / se); here rho = 0.95 exactly and se is read off the interval
    a = np.random.default_rng(5).normal(size=(40_000, 2))
    result = claims.smaller_variance("var.ratio", math.sqrt(0.95) * a[:20_000], a[20_000:], paired=False,
                                     exact_ratio=0.95)
    z = scipy.stats.norm.isf(0.005)
    se = math.log(result.high / result.ratio) / z
    expected = scipy.stats.norm.sf(-math.log(0.95) / se - z)
    assert claims.RECORD[-1]["fail_rate"] == pytest.approx(expected, rel=1e-3)
    capsys.readouterr()


def test_smaller_variance_on_equal_variances_passes_at_half_the_interval_level():
    # b* + d and b* - d have exactly equal variance; the check must pass only at the
    # one-sided level (1 - confidence) / 2 = 0.5%: measured over 2000 seeded pairs
    passes = 0
    for seed in range(2000):
        rng = np.random.default_rng(seed)
        common, d = rng.normal(size=(500, 2)), rng.normal(size=(500, 2))
        r = claims.stats.variance_ratio(common + d, common - d, 0.99)
        passes += r.high < 1
    low, high = claims.stats.binomial_interval(passes, 2000, 0.99)
    assert low <= 0.005 <= high, (passes, low, high)


def test_holds_requires_a_fail_rate(capsys):
    assert claims.holds("ess.drops", np.bool_(True), "ESS=312.5 of n=1000", "ESS below half of n",
                        fail_rate=0.0) is True
    assert joined(capsys, "ess.drops") == "ESS=312.5 of n=1000"
    claims.holds("multi.line", torch.tensor(True), "a\nb", "x", fail_rate=0.002)
    assert joined(capsys, "multi.line") == "a b (fails by chance with prob. ≤ 0.2%)"
    with pytest.raises(claims.ClaimFailed) as info:
        claims.holds("ess.drops", 3 > 4, "ESS=900 of n=1000", "ESS below half of n", fail_rate=0.0)
    assert str(info.value) == "FAIL [ess.drops] expected: ESS below half of n; measured: ESS=900 of n=1000"
    with pytest.raises(ValueError, match="condition"):
        claims.holds("ess.drops", np.array([True, False]), "m", "e", fail_rate=0.0)
    with pytest.raises(TypeError):
        claims.holds("ess.drops", True, "m", "e")  # no fail_rate: refused
    with pytest.raises(TypeError, match="fail_rate"):
        claims.holds("ess.drops", True, "m", "e", fail_rate="0")


def test_raises(capsys):
    exc = claims.raises("limits.refused", lambda: int("x"), ValueError, r"invalid literal")
    assert isinstance(exc, ValueError)
    assert joined(capsys, "limits.refused").startswith("ValueError: invalid literal")
    with pytest.raises(claims.ClaimFailed, match="no exception was raised"):
        claims.raises("limits.none", lambda: 1, ValueError, "x")
    with pytest.raises(claims.ClaimFailed, match="KeyError"):
        claims.raises("limits.other", lambda: {}["a"], ValueError, "x")
    with pytest.raises(claims.ClaimFailed, match="expected: ValueError with a message matching 'sigma'"):
        claims.raises("limits.message", lambda: int("x"), ValueError, "sigma")
    with pytest.raises(TypeError, match="fn"):
        claims.raises("limits.bad", 3, ValueError, "x")


def test_group_prints_the_same_lines(capsys):
    with claims.group("Evidence"):
        claims.close("g.one", 1.0, 1.0)
        claims.holds("g.two", True, "fine", "fine", fail_rate=0.0)
    out = capsys.readouterr().out.splitlines()
    assert out == ["PASS [g.one] max |measured − expected| ≤ atol=1e-09", "PASS [g.two] fine"]
    with pytest.raises(claims.ClaimFailed):
        with claims.group("Evidence"):
            claims.close("g.three", 1.0, 1.0)
            claims.close("g.four", 1.0, 2.0)
    assert capsys.readouterr().out.splitlines() == ["PASS [g.three] max |measured − expected| ≤ atol=1e-09"]


def test_budget_sums_fail_rates(capsys):
    claims.unbiased("b.one", X, MU, alpha=0.0004)
    claims.holds("b.two", True, "m", "e", fail_rate=0.0003)
    claims.holds("b.two", True, "m", "e", fail_rate=0.0003)  # a rerun counts once
    claims.close("b.three", 1.0, 1.0)
    assert claims.within_budget("b.budget", 0.001) == pytest.approx(0.0007)
    assert "3 checks (2 random) fail a correct build with prob. ≤ 0.07% ≤ 0.1%" in capsys.readouterr().out
    with pytest.raises(claims.ClaimFailed, match="> 0.05%"):
        claims.within_budget("b.budget", 0.0005)


def test_claim_log_is_json_lines(tmp_path, monkeypatch, capsys):
    log = tmp_path / "claims.jsonl"
    monkeypatch.setenv("PGLIB_CLAIM_LOG", str(log))
    claims.unbiased("log.one", X, MU)
    with pytest.raises(claims.ClaimFailed):
        claims.holds("log.two", False, "m", "e", fail_rate=0.0)
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["log.one", "log.two"]
    assert rows[0]["p_value"] > 0 and rows[0]["alpha"] == 0.01 and rows[0]["seconds"] >= 0
    assert rows[0]["detectable_bias_rel"] > 0 and rows[1]["passed"] is False
    capsys.readouterr()


def test_record_collects_every_check(capsys):
    claims.holds("a.one", True, "m1", "e1", fail_rate=0.0)
    with pytest.raises(claims.ClaimFailed):
        claims.holds("a.two", False, "m2", "e2", fail_rate=0.0)
    claims.close("a.three", 1.0, 1.0)
    assert [(r["id"], r["kind"], r["passed"]) for r in claims.RECORD] == [
        ("a.one", "holds", True), ("a.two", "holds", False), ("a.three", "close", True)]
    assert claims.RECORD[1]["text"] == "m2" and claims.RECORD[1]["expected"] == "e2"


def test_printed_text_is_identical_on_rerun(capsys):
    claims.unbiased("rerun.same", X, MU)
    first = capsys.readouterr().out
    claims.unbiased("rerun.same", X.copy(), MU.copy())
    assert capsys.readouterr().out == first


def test_every_check_can_fail():
    """Each check of the library, given a deliberately wrong input, fails."""
    wrong = {
        "unbiased": lambda: claims.unbiased("w.unbiased", X, MU + 0.2),
        "biased": lambda: claims.biased("w.biased", X, MU),
        "close": lambda: claims.close("w.close", 1.0, 1.1),
        "smaller_variance": lambda: claims.smaller_variance("w.var", X, 0.5 * X),
        "holds": lambda: claims.holds("w.holds", False, "m", "e", fail_rate=0.0),
        "raises": lambda: claims.raises("w.raises", lambda: None, ValueError, "x"),
        "within_budget": lambda: (claims.holds("w.rate", True, "m", "e", fail_rate=0.5),
                                  claims.within_budget("w.budget", 0.01)),
    }
    names = {n for n in claims.__all__ if callable(getattr(claims, n)) and n not in
             ("use_alpha", "anchor", "pct", "group", "spent", "ClaimFailed")}
    assert names == set(wrong), "every check needs a wrong input here"
    for name, call in wrong.items():
        with pytest.raises(claims.ClaimFailed):
            call()


@pytest.mark.parametrize("bad", ["RTG.unbiased", "rtg..unbiased", "rtg.", ".rtg", "", "rtg-unbiased",
                                 " rtg", "rtg unbiased", "rtg.unbiased\n", 3, None])
def test_claim_id_validation(bad):
    for call in (lambda: claims.holds(bad, True, "m", "e", fail_rate=0.0),
                 lambda: claims.unbiased(bad, X, MU),
                 lambda: claims.close(bad, 1.0, 1.0),
                 lambda: claims.raises(bad, lambda: 1, ValueError, "x")):
        with pytest.raises(ValueError, match="claim_id"):
            call()
    assert claims.RECORD == []


@pytest.mark.parametrize("good", ["rtg", "rtg.unbiased", "baseline.action_dependent.detected", "ch3.x_2"])
def test_claim_id_accepted(good, capsys):
    claims.holds(good, True, "ok", "ok", fail_rate=0.0)
    assert joined(capsys, good) == "ok"


def test_use_alpha_sets_the_default_false_alarm_rate(capsys):
    samples = np.random.default_rng(0).normal(size=(500, 3))
    before = claims.ALPHA
    try:
        claims.use_alpha(0.002)
        result = claims.unbiased("test.use_alpha", samples, np.zeros(3))
        assert result.alpha == 0.002
        assert "α=0.2%" in capsys.readouterr().out
        assert claims.unbiased("test.use_alpha.explicit", samples, np.zeros(3), alpha=0.001).alpha == 0.001
        for bad in (0, 1, -0.1, "0.01", True):
            with pytest.raises(ValueError, match="alpha"):
                claims.use_alpha(bad)
    finally:
        claims.use_alpha(before)
