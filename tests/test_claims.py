"""pglib.claims: the printed PASS line, ClaimFailed messages, the RECORD, claim id validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ledger import LINE  # the ledger's parser: the printed lines must be of exactly this form
from pglib import claims

RNG = np.random.default_rng(0)
X = RNG.normal(size=(2000, 3)) + np.array([1.0, 2.0, 3.0])
MU = np.array([1.0, 2.0, 3.0])


@pytest.fixture(autouse=True)
def fresh_record(monkeypatch):
    monkeypatch.setattr(claims, "RECORD", [])


def one_line(capsys, claim_id: str) -> str:
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert len(lines) == 1 and out.endswith("\n"), out
    m = LINE.match(lines[0])
    assert m and m.group(1) == "PASS" and m.group(2) == claim_id, lines[0]
    return m.group(3)


def test_unbiased_pass_line(capsys):
    result = claims.unbiased("rtg.unbiased", X, MU)
    text = one_line(capsys, "rtg.unbiased")
    assert not result.reject
    assert text == (f"Hotelling T²={result.statistic:.4g}, rank 3, n=2000, p={result.p_value:.2g} ≥ α=0.01 "
                    "(false-alarm rate 1%)")
    assert claims.RECORD == [dict(id="rtg.unbiased", kind="unbiased", passed=True, text=text,
                                  expected=claims.RECORD[0]["expected"])]


def test_unbiased_bonferroni_and_torch(capsys):
    claims.unbiased("rtg.unbiased_bonferroni", torch.from_numpy(X), torch.from_numpy(MU), alpha=0.05,
                    method="bonferroni")
    text = one_line(capsys, "rtg.unbiased_bonferroni")
    assert text.startswith("Bonferroni max|t|=") and "over 3 coordinates" in text
    assert text.endswith("≥ α=0.05 (false-alarm rate ≤ 5%)")


def test_unbiased_failure_message(capsys):
    with pytest.raises(claims.ClaimFailed) as info:
        claims.unbiased("rtg.unbiased", X, MU + [0.0, 0.0, 0.3])
    message = str(info.value)
    assert isinstance(info.value, AssertionError)
    assert message.startswith("FAIL [rtg.unbiased] expected: hotelling test does not reject")
    assert "measured: Hotelling T²=" in message and "p<1e-16 < α=0.01" in message
    assert capsys.readouterr().out == ""  # nothing printed on failure
    assert claims.RECORD[-1]["passed"] is False and claims.RECORD[-1]["id"] == "rtg.unbiased"


def test_biased_is_a_negative_control(capsys):
    claims.biased("baseline.action_dependent.detected", X, MU + [0.0, 0.0, 0.3])
    text = one_line(capsys, "baseline.action_dependent.detected")
    assert text.endswith("< α=0.01 (bias detected)")
    with pytest.raises(claims.ClaimFailed, match=r"FAIL \[baseline.missed\] expected: hotelling test rejects.*p=0"):
        claims.biased("baseline.missed", X, MU)
    assert [r["passed"] for r in claims.RECORD] == [True, False]


def test_biased_reports_bias_where_nothing_varies(capsys):
    x = X.copy()
    x[:, 2] = 0.0  # a coordinate that never varies, but whose exact value is not 0
    claims.biased("null.detected", x, np.array([1.0, 2.0, 1e-3]))
    text = one_line(capsys, "null.detected")
    assert "T²=inf" in text and "where the samples never vary" in text


def test_close(capsys):
    assert claims.close("rtg.identity", np.array([0.1 + 0.2, 1.0]), np.array([0.3, 1.0])) < 1e-15
    text = one_line(capsys, "rtg.identity")
    assert text == "max |measured − expected| < 1.4e-14 (float64 rounding) ≤ atol=1e-09"
    claims.close("rtg.exact_zero", torch.zeros(3), torch.zeros(3))
    assert one_line(capsys, "rtg.exact_zero") == "max |measured − expected| = 0 ≤ atol=1e-09"
    claims.close("rtg.rtol", np.array([101.0]), np.array([100.0]), atol=0.0, rtol=0.02)
    assert one_line(capsys, "rtg.rtol") == "max |measured − expected| = 1.0e+00 ≤ atol=0 + rtol=0.02·|expected|"
    with pytest.raises(claims.ClaimFailed) as info:
        claims.close("rtg.off", np.array([1.0, 2.5]), np.array([1.0, 2.0]), atol=1e-6)
    assert str(info.value) == ("FAIL [rtg.off] expected: |measured − expected| ≤ atol=1e-06 everywhere; "
                               "measured: max |measured − expected| = 5.0e-01 > atol=1e-06")
    with pytest.raises(ValueError, match="measured and expected"):
        claims.close("rtg.shape", np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="atol"):
        claims.close("rtg.tol", np.zeros(3), np.zeros(3), atol=-1.0)


def test_smaller_variance(capsys):
    noise = np.random.default_rng(1).normal(size=X.shape)
    result = claims.smaller_variance("baseline.reduces_variance", 0.5 * (X - MU) + 0.1 * noise, X)
    text = one_line(capsys, "baseline.reduces_variance")
    assert result.paired and result.high < 1
    assert text == (f"Var(a)/Var(b)={result.ratio:.4g}, 99% CI [{result.low:.4g}, {result.high:.4g}] < 1 "
                    "(paired, n=2000)")
    with pytest.raises(claims.ClaimFailed, match=r"FAIL \[variance.same\] expected: the 99% CI .* below 1; "
                                                 r"measured: Var\(a\)/Var\(b\)=.* not below 1 \(independent"):
        claims.smaller_variance("variance.same", X, noise[:1000], paired=False)


def test_holds(capsys):
    assert claims.holds("ess.drops", np.bool_(True), "ESS=312.5 of n=1000", "ESS below half of n") is True
    assert one_line(capsys, "ess.drops") == "ESS=312.5 of n=1000"
    claims.holds("multi.line", torch.tensor(True), "a\nb", "x")
    assert one_line(capsys, "multi.line") == "a b"
    with pytest.raises(claims.ClaimFailed) as info:
        claims.holds("ess.drops", 3 > 4, "ESS=900 of n=1000", "ESS below half of n")
    assert str(info.value) == "FAIL [ess.drops] expected: ESS below half of n; measured: ESS=900 of n=1000"
    with pytest.raises(ValueError, match="condition"):
        claims.holds("ess.drops", np.array([True, False]), "m", "e")


def test_record_collects_every_check(capsys):
    claims.holds("a.one", True, "m1", "e1")
    with pytest.raises(claims.ClaimFailed):
        claims.holds("a.two", False, "m2", "e2")
    claims.close("a.three", 1.0, 1.0)
    assert [(r["id"], r["kind"], r["passed"]) for r in claims.RECORD] == [
        ("a.one", "holds", True), ("a.two", "holds", False), ("a.three", "close", True)]
    assert claims.RECORD[1]["text"] == "m2" and claims.RECORD[1]["expected"] == "e2"


def test_printed_text_is_identical_on_rerun(capsys):
    claims.unbiased("rerun.same", X, MU)
    first = capsys.readouterr().out
    claims.unbiased("rerun.same", X.copy(), MU.copy())
    assert capsys.readouterr().out == first


@pytest.mark.parametrize("bad", ["RTG.unbiased", "rtg..unbiased", "rtg.", ".rtg", "", "rtg-unbiased",
                                 " rtg", "rtg unbiased", "rtg.unbiased\n", 3, None])
def test_claim_id_validation(bad):
    for call in (lambda: claims.holds(bad, True, "m", "e"),
                 lambda: claims.unbiased(bad, X, MU),
                 lambda: claims.close(bad, 1.0, 1.0)):
        with pytest.raises(ValueError, match="claim_id"):
            call()
    assert claims.RECORD == []


@pytest.mark.parametrize("good", ["rtg", "rtg.unbiased", "baseline.action_dependent.detected", "ch3.x_2"])
def test_claim_id_accepted(good, capsys):
    claims.holds(good, True, "ok", "ok")
    assert one_line(capsys, good) == "ok"


def test_use_alpha_sets_the_default_false_alarm_rate(capsys):
    import numpy as np

    from pglib import claims

    rng = np.random.default_rng(0)
    samples = rng.normal(size=(500, 3))
    before = claims.ALPHA
    try:
        claims.use_alpha(0.002)
        result = claims.unbiased("test.use_alpha", samples, np.zeros(3))
        assert result.alpha == 0.002
        assert "α=0.002" in capsys.readouterr().out
        assert claims.unbiased("test.use_alpha.explicit", samples, np.zeros(3), alpha=0.001).alpha == 0.001
        for bad in (0, 1, -0.1, "0.01"):
            with pytest.raises(ValueError, match="alpha"):
                claims.use_alpha(bad)
    finally:
        claims.use_alpha(before)
