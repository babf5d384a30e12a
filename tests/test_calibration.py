"""Calibration of the claim machinery on the estimators the chapters use.

(a) False alarms: the Hotelling unbiasedness test applied to the (correct) reward-to-go estimator
    over many independent seeds rejects at a rate whose 99% Clopper-Pearson interval contains alpha.
(b) Power: at the sample sizes the chapters use (N = 20000 trajectories, horizon 15, a 5-state
    3-action random MDP, gamma = 0.9) the same test rejects the two classic mistakes: an
    action-dependent baseline b(s, a) = Q_0(s, a), and dropping the gamma^t factor on the score.

Run with ``pytest -s tests/test_calibration.py`` to see the measured rates.
"""

import torch

from pglib import estimators, exact, mdp, stats
from pglib.sampling import sample_trajectories

ALPHA = 0.05


def test_false_alarm_rate_of_hotelling_on_reward_to_go():
    m = mdp.random_mdp(4, 3, seed=3, gamma=0.9, horizon=8)
    logits = 0.7 * torch.randn(4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    grad = exact.gradient(m, logits)
    seeds = 300
    rejections = 0
    for seed in range(seeds):
        traj = sample_trajectories(m, logits, n=2000, seed=seed)
        rejections += stats.unbiasedness_test(estimators.reinforce(traj, logits, m.gamma), grad, ALPHA).reject
    low, high = stats.binomial_interval(rejections, seeds, confidence=0.99)
    print(f"\nfalse alarms: {rejections}/{seeds} = {rejections / seeds:.3f} at alpha={ALPHA}; "
          f"99% Clopper-Pearson interval [{low:.4f}, {high:.4f}]")
    assert low <= ALPHA <= high, (rejections, seeds, low, high)


def test_power_against_action_baseline_and_dropped_discount():
    m = mdp.random_mdp(5, 3, seed=0, gamma=0.9, horizon=15)
    logits = 0.5 * torch.randn(5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    grad = exact.gradient(m, logits)
    Q0 = exact.time_q_values(m, logits)[0].detach()
    seeds = 20
    hits = {"action_baseline": 0, "dropped_discount": 0}
    for seed in range(seeds):
        traj = sample_trajectories(m, logits, n=20_000, seed=1000 + seed)
        bad = {
            "action_baseline": estimators.reinforce(traj, logits, m.gamma, action_baseline=Q0),
            "dropped_discount": estimators.reinforce(traj, logits, m.gamma, discount_score=False),
        }
        for name, est in bad.items():
            hits[name] += stats.unbiasedness_test(est, grad, ALPHA).reject
    print(f"\npower at N=20000, T=15, alpha={ALPHA}: "
          + ", ".join(f"{k} {v}/{seeds}" for k, v in hits.items()))
    for name, k in hits.items():
        assert k >= seeds - 1, (name, k)


# ---------------------------------------------------------------------------------------------
# The committed calibration at the levels the book uses (tools/calibration.py, run by make audit)
# ---------------------------------------------------------------------------------------------

import json  # noqa: E402
import math  # noqa: E402
import pathlib  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "calibration.json"
FAMILIES = ("hotelling_softmax", "bonferroni_importance", "variance_ratio", "binomial_interval")


def _check(results: dict) -> None:
    assert results["reps"] >= 10_000 and results["alpha"] == 0.001
    for family in FAMILIES:
        assert results[family], family
    for name, v in results["hotelling_softmax"].items():
        assert v["alpha_inside"], (name, v["rejections"], v["interval"])
        assert v["ks_p"] > 1e-3, (name, v["ks_p"])  # uniform p-values
    for name, v in results["bonferroni_importance"].items():
        assert v["at_most_alpha"], (name, v["rejections"], v["interval"])  # conservative by design
    for name, v in results["variance_ratio"].items():
        assert v["nominal_inside"], (name, v["coverage"], v["interval"])
    for name, v in results["binomial_interval"].items():
        assert v["at_least_nominal"], (name, v["coverage"], v["interval"])


def test_committed_calibration_covers_every_family_and_meets_its_criteria():
    _check(json.loads(RESULTS.read_text()))


def test_calibration_page_is_current():
    sys.path.insert(0, str(ROOT / "tools"))
    import calibration

    results = json.loads(RESULTS.read_text())
    assert (ROOT / "book" / "calibration.md").read_text() == calibration.page(results), \
        "book/calibration.md is stale: python tools/calibration.py --render-only"


def test_power_formula_predicts_the_rejection_rate_of_a_near_null_shift():
    """A shift of exactly the reported 80%-detectable size is rejected about 80% of the time."""
    m = mdp.two_state(gamma=1.0, horizon=5)
    logits = torch.tensor([[0.3, -0.2], [-0.6, 0.4]], dtype=torch.float64)
    grad = exact.gradient(m, logits)
    n, alpha, seeds = 2000, 0.01, 300
    reference = stats.unbiasedness_test(
        estimators.reinforce(sample_trajectories(m, logits, n=20 * n, seed=999), logits, 1.0, credit="return"),
        grad, alpha)
    # the detectable bias at n samples: the reference was built from 20n samples, so scale by sqrt(20)
    size = reference.detectable_bias(grad, 0.8) * math.sqrt(20)
    shift = size * grad / grad.norm()
    hits = 0
    for seed in range(seeds):
        x = estimators.reinforce(sample_trajectories(m, logits, n=n, seed=seed), logits, 1.0, credit="return")
        hits += stats.unbiasedness_test(x, grad + shift, alpha).reject  # the estimator is off by -shift
    low, high = stats.binomial_interval(hits, seeds, 0.99)
    print(f"\nrejections at the 80%-detectable shift: {hits}/{seeds}, 99% interval [{low:.3f}, {high:.3f}]")
    assert low <= 0.8 <= high


# ---------------------------------------------------------------------------------------------
# Each check of the book at its own alpha, in its own setting (tools/calibration.py --where-used)
# ---------------------------------------------------------------------------------------------


def _calibration_module():
    sys.path.insert(0, str(ROOT / "tools"))
    import calibration

    return calibration


def test_where_used_rows_are_at_the_alpha_and_n_each_check_uses():
    """Every committed row is for a check the book makes, at that check's alpha and n (read
    from the claim records in the notebooks' output metadata), with at least 10^4 simulated
    tests, and its rejection rate is not shown to exceed alpha."""
    calibration = _calibration_module()
    used = {t["id"]: t for t in calibration.book_tests() if t["kind"] == "unbiased"}
    rows = json.loads(RESULTS.read_text())["where_used"]
    assert rows, "no check calibrated in its own setting: python tools/calibration.py --where-used"
    for cid, v in rows.items():
        assert cid in used, f"{cid}: calibrated but no longer a check of the book"
        t = used[cid]
        assert (v["alpha"], v["n"], v["chapter"]) == (t["alpha"], t["n"], t["chapter"]), (
            f"{cid}: calibrated at alpha={v['alpha']}, n={v['n']}; the book uses "
            f"alpha={t['alpha']}, n={t['n']} (rerun tools/calibration.py --where-used)")
        at = [r for r in v["rows"] if r["alpha"] == t["alpha"]]
        assert len(at) == 1 and at[0]["tests"] >= 10_000, (cid, at)
        assert at[0]["not_above_alpha"], (cid, at[0])


def test_every_no_bias_check_is_calibrated_where_used_or_listed_as_not_yet():
    """The appendix accounts for every Hotelling/Bonferroni no-bias check of the book:
    simulated in its own setting, or named in its list of those still to do."""
    calibration = _calibration_module()
    text = (ROOT / "book" / "calibration.md").read_text()
    rows = json.loads(RESULTS.read_text())["where_used"]
    listed = text.split("### Not yet calibrated in their own setting", 1)[-1]
    for t in calibration.book_tests():
        if t["kind"] != "unbiased":
            continue
        assert t["id"] in rows or f"| `{t['id']}` |" in listed, t


def test_rate_law_was_miscalibrated_on_1000_repetitions_and_is_not_on_the_chapters():
    """Chapter 3's 1/N-law test: the committed simulation shows the excess that made the
    chapter move from 1,000 to 10,000 repetitions, and none at the chapter's size."""
    v = json.loads(RESULTS.read_text())["where_used"]["mc.rate.inverse_n"]
    before = {r["alpha"]: r for r in v["before"]["rows"]}
    assert before[1e-3]["interval"][0] > 1e-3  # 1,000 repetitions: too many rejections
    assert v["n"] == 10_000 and all(r["not_above_alpha"] for r in v["rows"])


def test_unvisited_state_chance_is_below_double_precision_where_used():
    rows = json.loads(RESULTS.read_text())["unvisited"]
    assert rows and all(v["chance"] < 1e-16 for v in rows.values()), rows


def test_a_committed_where_used_row_is_reproduced_by_the_tool():
    """The cheapest committed row (chapter 3's Bernoulli exercise, 10^5 tests) recomputed
    from scratch equals the committed one: the JSON is the tool's output, not edited."""
    calibration = _calibration_module()
    fresh = calibration.where_used(only={"exercise.mc.3"})["exercise.mc.3"]
    committed = json.loads(RESULTS.read_text())["where_used"]["exercise.mc.3"]
    def counts(rows):
        return [(r["alpha"], r["tests"], r["rejections"]) for r in rows]

    assert counts(fresh["rows"]) == counts(committed["rows"])
