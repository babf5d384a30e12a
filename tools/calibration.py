"""Calibration of every test family the book uses, at the levels the chapters use.

    python tools/calibration.py [--reps 10000] [--quick]

For each family, many seeded repetitions on a small problem whose exact answer is known:

- ``hotelling_softmax``: Hotelling's T^2 on tabular softmax score-function estimates
  (REINFORCE on the two-state MDP, T = 5, and reward-to-go on a random 5x3 MDP, T = 10);
- ``bonferroni_importance``: the Bonferroni test on importance-weighted estimates
  (chapter 7's problem: per-decision and whole-trajectory weights, T = 8);
- ``variance_ratio``: coverage of the 99% interval of Var(a)/Var(b) (reward-to-go against
  the full return on the same trajectories; the exact ratio from enumeration);
- ``binomial_interval``: coverage of the 99% Clopper-Pearson interval used by the rate checks.

For the tests: the rejection rate at alpha = 0.001 with its 99% binomial interval, a
Kolmogorov-Smirnov test of the p-values' uniformity, and a 20-bin p-value histogram. Writes
``benchmarks/results/calibration.json``, the figure ``book/figures/calibration.png`` and the
appendix page ``book/calibration.md``. ``make audit`` runs it; ``tests/test_calibration.py``
checks that the committed results cover every family and meet their criteria.
"""

from __future__ import annotations

import argparse
import json
import math
import pathlib
import sys
import time

import numpy as np
import scipy.stats
import torch

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pglib import enumeration, estimators, exact, mdp, sampling, stats  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "calibration.json"
FIGURE = ROOT / "book" / "figures" / "calibration.png"
PAGE = ROOT / "book" / "calibration.md"
ALPHA = 0.001
CONFIDENCE = 0.99
BINS = 20


def _test_summary(p_values: np.ndarray, alpha: float = ALPHA) -> dict:
    p = np.asarray(p_values, dtype=float)
    k = int((p < alpha).sum())
    low, high = stats.binomial_interval(k, p.size, CONFIDENCE)
    ks = scipy.stats.kstest(p, "uniform")
    hist, _ = np.histogram(p, bins=BINS, range=(0.0, 1.0))
    return dict(
        reps=int(p.size),
        alpha=alpha,
        rejections=k,
        rate=k / p.size,
        interval=[low, high],
        alpha_inside=bool(low <= alpha <= high),
        at_most_alpha=bool(low <= alpha),
        rate_at_1pct=float((p < 0.01).mean()),
        ks_statistic=float(ks.statistic),
        ks_p=float(ks.pvalue),
        histogram=hist.tolist(),
    )


def _batches(m, logits, n, reps, seed):
    """``reps`` independent batches of ``n`` trajectories, sampled in chunks of bounded size."""
    per_chunk = max(1, 2_000_000 // (n * m.horizon))
    gen = sampling.make_generator(seed)
    done = 0
    while done < reps:
        k = min(per_chunk, reps - done)
        traj = sampling.sample_trajectories(m, logits, n * k, generator=gen)
        for j in range(k):
            yield traj[j * n : (j + 1) * n]
        done += k


def hotelling_softmax(reps: int) -> dict:
    out = {}
    two = mdp.two_state(gamma=1.0, horizon=5)
    logits2 = torch.tensor([[0.3, -0.2], [-0.6, 0.4]], dtype=torch.float64)
    rnd = mdp.random_mdp(5, 3, seed=1, gamma=0.9, horizon=10)
    logits5 = 0.5 * torch.randn(
        5, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64
    )
    settings = [
        ("two_state_T5_return_n10000", two, logits2, 10_000, "return"),
        ("random5x3_T10_rtg_n10000", rnd, logits5, 10_000, "reward_to_go"),
    ]
    for name, m, logits, n, credit in settings:
        grad = exact.gradient(m, logits)
        p = [
            stats.unbiasedness_test(
                estimators.reinforce(b, logits, m.gamma, credit=credit),
                grad,
                alpha=ALPHA,
            ).p_value
            for b in _batches(m, logits, n, reps, seed=11)
        ]
        out[name] = dict(
            _test_summary(np.array(p)),
            n=n,
            horizon=m.horizon,
            states=m.n_states,
            actions=m.n_actions,
            credit=credit,
        )
    return out


def bonferroni_importance(reps: int) -> dict:
    raw = mdp.random_mdp(5, 3, seed=3, gamma=1.0, horizon=8)
    m = raw.with_(rewards=raw.rewards - 0.5)
    g = torch.Generator().manual_seed(7)
    theta = 0.5 * torch.randn(5, 3, generator=g, dtype=torch.float64)
    old = theta + 0.3 * torch.randn(5, 3, generator=g, dtype=torch.float64)
    grad = exact.gradient(m, theta)
    out = {}
    n = 40_000  # the chapter's sample size
    for kind in ("per_decision", "trajectory"):
        p = [
            stats.unbiasedness_test(
                estimators.importance_weighted(b, theta, old, 1.0, kind=kind),
                grad,
                alpha=ALPHA,
                method="bonferroni",
            ).p_value
            for b in _batches(m, old, n, reps, seed=13)
        ]
        out[f"chapter7_T8_c0.3_{kind}_n{n}"] = dict(
            _test_summary(np.array(p)), n=n, horizon=8, kind=kind
        )
    return out


def variance_ratio(reps: int) -> dict:
    m = mdp.two_state(gamma=1.0, horizon=5)
    logits = torch.tensor([[0.3, -0.2], [-0.6, 0.4]], dtype=torch.float64)
    everything = enumeration.all_trajectories(m, logits)
    E = everything.trajectories
    var_rtg = everything.total_variance(estimators.reinforce(E, logits, 1.0)).item()
    var_ret = everything.total_variance(
        estimators.reinforce(E, logits, 1.0, credit="return")
    ).item()
    rho = var_rtg / var_ret
    n = 10_000
    covered = 0
    highs_below = 0
    for b in _batches(m, logits, n, reps, seed=17):
        r = stats.variance_ratio(
            estimators.reinforce(b, logits, 1.0),
            estimators.reinforce(b, logits, 1.0, credit="return"),
            CONFIDENCE,
        )
        covered += r.low <= rho <= r.high
        highs_below += r.high < 1
    low, high = stats.binomial_interval(covered, reps, CONFIDENCE)
    return {
        "two_state_T5_rtg_vs_return_paired_n10000": dict(
            reps=reps,
            exact_ratio=rho,
            confidence=CONFIDENCE,
            covered=int(covered),
            coverage=covered / reps,
            interval=[low, high],
            nominal_inside=bool(low <= CONFIDENCE <= high),
            passes_smaller_variance=int(highs_below),
            n=n,
        )
    }


def binomial_coverage(reps: int) -> dict:
    rng = np.random.default_rng(19)
    out = {}
    for n, p in ((1000, 0.5), (1000, 0.95), (200, 0.02)):
        k = rng.binomial(n, p, size=reps)
        cover = 0
        for kk in k:
            low, high = stats.binomial_interval(int(kk), n, CONFIDENCE)
            cover += low <= p <= high
        low, high = stats.binomial_interval(cover, reps, CONFIDENCE)
        out[f"n{n}_p{p}"] = dict(
            reps=reps,
            n=n,
            p=p,
            covered=int(cover),
            coverage=cover / reps,
            interval=[low, high],
            at_least_nominal=bool(high >= CONFIDENCE),
        )
    return out


def run(reps: int) -> dict:
    torch.set_num_threads(1)
    started = time.perf_counter()
    results = {"alpha": ALPHA, "confidence": CONFIDENCE, "reps": reps}
    for name, fn in (
        ("hotelling_softmax", hotelling_softmax),
        ("bonferroni_importance", bonferroni_importance),
        ("variance_ratio", variance_ratio),
        ("binomial_interval", binomial_coverage),
    ):
        t0 = time.perf_counter()
        results[name] = fn(reps)
        print(f"{name}: {time.perf_counter() - t0:.0f} s", flush=True)
    results["seconds"] = round(time.perf_counter() - started, 1)
    return results


def figure(results: dict, path: pathlib.Path = FIGURE) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(f"Hotelling, {k}", v) for k, v in results["hotelling_softmax"].items()]
    panels += [
        (f"Bonferroni, {k}", v) for k, v in results["bonferroni_importance"].items()
    ]
    fig, axes = plt.subplots(2, 2, figsize=(9, 5.6), sharex=True)
    edges = np.linspace(0, 1, BINS + 1)
    for ax, (title, v) in zip(axes.flat, panels):
        counts = np.array(v["histogram"])
        expected = v["reps"] / BINS
        top = 2.2 * expected
        ax.bar(
            edges[:-1],
            np.minimum(counts, top),
            width=1 / BINS,
            align="edge",
            color="C0",
            alpha=0.7,
            edgecolor="white",
            label="p-values per bin",
        )
        for k in np.flatnonzero(counts > top):  # Bonferroni's cap piles p-values at 1
            ax.text(
                edges[k] + 0.5 / BINS,
                0.97 * top,
                f"{counts[k]:,} at p=1 ",
                ha="right",
                va="top",
                fontsize=6.5,
            )
        band = 2.576 * math.sqrt(expected * (1 - 1 / BINS))
        ax.axhspan(
            expected - band,
            expected + band,
            color="gray",
            alpha=0.25,
            label="uniform ± 99% band",
        )
        ax.axhline(expected, color="black", lw=1)
        ax.set_ylim(0, top)
        ax.set_title(title.replace("_", " "), fontsize=8)
        ax.set_ylabel("repetitions")
        ax.text(
            0.02,
            0.04,
            f"rate at α=0.1%: {100 * v['rate']:.2f}%  (KS p={v['ks_p']:.2g})",
            transform=ax.transAxes,
            fontsize=7,
            bbox=dict(facecolor="white", alpha=0.8, lw=0),
        )
    for ax in axes[-1]:
        ax.set_xlabel("p-value")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=8, frameon=False)
    fig.suptitle(
        f"p-values of correct estimators over {results['reps']:,} seeded repetitions",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=200, metadata={"Software": None})
    plt.close(fig)


def _pct(x: float) -> str:
    return f"{100 * x:.3g}%"


def page(results: dict) -> str:
    lines = [
        "# Appendix: calibration of the tests",
        "",
        "A test is only as good as its false-alarm rate. Each family of test the chapters use is run",
        f"here {results['reps']:,} times, with independent seeds, on a small problem whose exact answer",
        "is known and where the estimator is correct, so every rejection is a false alarm. The",
        f"criteria: at $\\alpha = {100 * results['alpha']:g}\\%$ the rejection rate's 99% binomial",
        "interval contains $\\alpha$ (for Bonferroni, which is conservative by design, lies at or",
        "below it), the p-values look uniform (Kolmogorov-Smirnov), and intervals cover their",
        "target at the stated 99%. Generated by `tools/calibration.py` (run by `make audit`,",
        f"{results['seconds']:.0f} s on this machine); `tests/test_calibration.py` checks these",
        "numbers against the criteria.",
        "",
        "```{figure} figures/calibration.png",
        ":alt: Histograms of p-values of correct estimators for the Hotelling and Bonferroni tests, "
        "each close to flat within a 99% band around the uniform count.",
        "",
        "p-values of correct estimators: a calibrated test gives a flat histogram.",
        "```",
        "",
        "| family | setting | repetitions | rejections at α=0.1% | rate (99% interval) | KS p |",
        "|---|---|---|---|---|---|",
    ]
    for family in ("hotelling_softmax", "bonferroni_importance"):
        for k, v in results[family].items():
            lo, hi = v["interval"]
            lines.append(
                f"| {family.split('_')[0]} | `{k}` | {v['reps']:,} | {v['rejections']} | "
                f"{_pct(v['rate'])} ({_pct(lo)}, {_pct(hi)}) | {v['ks_p']:.2g} |"
            )
    lines += [
        "",
        "| interval | setting | repetitions | covered | coverage (99% interval) |",
        "|---|---|---|---|---|",
    ]
    for k, v in results["variance_ratio"].items():
        lo, hi = v["interval"]
        lines.append(
            f"| variance ratio, 99% | `{k}` (exact ratio {v['exact_ratio']:.4f}) | {v['reps']:,} | "
            f"{v['covered']:,} | {_pct(v['coverage'])} ({_pct(lo)}, {_pct(hi)}) |"
        )
    for k, v in results["binomial_interval"].items():
        lo, hi = v["interval"]
        lines.append(
            f"| Clopper-Pearson, 99% | `{k}` | {v['reps']:,} | {v['covered']:,} | "
            f"{_pct(v['coverage'])} ({_pct(lo)}, {_pct(hi)}) |"
        )
    lines += [
        "",
        "Reading the table: the Bonferroni test's p-values are not uniform by construction",
        "($p = \\min(1, m \\min_j p_j)$ piles mass at 1), so for it the criterion is a rejection rate",
        "at most $\\alpha$; its KS p-value is shown for completeness. Clopper-Pearson intervals are",
        "conservative (coverage at least 99%).",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reps", type=int, default=10_000)
    parser.add_argument("--out", type=pathlib.Path, default=RESULTS)
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="rewrite the page and figure from --out",
    )
    args = parser.parse_args(argv)
    if args.render_only:
        results = json.loads(args.out.read_text())
    else:
        results = run(args.reps)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1) + "\n")
    figure(results)
    PAGE.write_text(page(results))
    print(f"wrote {args.out}, {FIGURE.relative_to(ROOT)}, {PAGE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
