"""Mutation score of the bug zoo: how often check_estimator / check_loss catch each mistake.

For every entry of pglib.verify.bug_zoo.MISTAKES and seeds 0..K-1 this runs the check the book runs
(check_estimator with n = 20,000 trajectories for per-step-weight mutants, check_loss with 2,000
batches of 32 for loss mutants; alpha = 0.01) on pglib.verify.bug_zoo.problem() and records the verdict.
A bug counts as caught when the check reports it biased (or refuses it before sampling); a
look-alike passes when it is reported unbiased (or unbiased up to scale, for a pure scale).
Results: pglib/data/zoo_score.json (package data, so the chapter reads it on Colab too).

    python tools/zoo_score.py [--seeds 30]
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time

import scipy.stats

from pglib import verify
from pglib.verify import bug_zoo

OUT = pathlib.Path(__file__).resolve().parents[1] / "pglib" / "data" / "zoo_score.json"
N, BATCH, N_BATCHES, ALPHA = 20_000, 32, 2_000, 0.01


def verdict(m: bug_zoo.Mistake, seed: int) -> dict:
    mdp = bug_zoo.problem(fixed_length=m.fixed_length)
    logits = bug_zoo.problem_logits()
    try:
        if m.estimator is not None:
            r = verify.check_estimator(
                m.estimator(mdp), mdp, logits, n=N, seed=seed, alpha=ALPHA
            )
        else:
            r = verify.check_loss(
                m.loss(mdp),
                mdp,
                logits,
                batch_size=BATCH,
                n_batches=N_BATCHES,
                seed=seed,
                alpha=ALPHA,
            )
    except ValueError:
        return dict(
            refused=True,
            unbiased=False,
            up_to_scale=False,
            correct=m.expect == "refused",
        )
    ok = {
        "biased": not r.unbiased,
        "unbiased": r.unbiased,
        "up_to_scale": r.unbiased_up_to_scale,
        "refused": False,
    }[m.expect]
    return dict(
        refused=False,
        unbiased=r.unbiased,
        up_to_scale=r.unbiased_up_to_scale,
        correct=ok,
        p=r.p_value,
        scale=r.scale,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=30)
    args = ap.parse_args()
    rows = []
    for m in bug_zoo.MISTAKES.values():
        t0 = time.time()
        runs = [verdict(m, s) for s in range(args.seeds)]
        k = sum(r["correct"] for r in runs)
        lo, hi = scipy.stats.binomtest(k, len(runs)).proportion_ci(0.99, method="exact")
        rows.append(
            dict(
                name=m.name,
                expect=m.expect,
                is_bug=m.is_bug,
                seeds=len(runs),
                correct=k,
                rate=k / len(runs),
                ci99=[lo, hi],
                reported_biased=sum(not r["unbiased"] for r in runs),
                reported_up_to_scale=sum(r["up_to_scale"] for r in runs),
                refused=sum(r["refused"] for r in runs),
                check="check_estimator" if m.estimator is not None else "check_loss",
                seconds_per_run=round((time.time() - t0) / len(runs), 2),
            )
        )
        print(
            f"{m.name:30s} {k}/{len(runs)}  {rows[-1]['seconds_per_run']}s/run",
            flush=True,
        )
    settings = dict(
        problem="pglib.verify.bug_zoo.problem()",
        n=N,
        batch_size=BATCH,
        n_batches=N_BATCHES,
        alpha=ALPHA,
    )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(dict(settings=settings, rows=rows), indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
