"""The training runs chapter 9 plots: computed here, committed under results/, read by the notebook
(so that the chapter runs in seconds and its claims are about fixed numbers).

    python benchmarks/practice_runs.py ablation   # CartPole-v1 ablation, 7 variants x 10 seeds (~5 min)
    python benchmarks/practice_runs.py pendulum   # InvertedPendulum-v5, 10 seeds at 150k steps (~3 min)
    python benchmarks/practice_runs.py ablation --ray   # every seed x variant as one Ray task

With ``--ray`` each training run is one Ray task (``tools/raymap.py``): on all local cores, or
unchanged on a cluster when ``RAY_ADDRESS`` is set, so 10 seeds take the time of one. The runs
are seeded, so the results are the same either way; only the seconds differ.

**Ablation.** Every variant runs a fixed budget of 100k simulated steps (training does not stop
at the solve, so every curve covers the budget) on seeds 0-9; the current policy is evaluated
every 5000 simulated steps on 20 fresh episodes (pglib.practice.train's verified-solve protocol). Per run:
the evaluation curve, the first simulated step count at which it reaches 475 (the verified
solve), the training seconds to it, and the critic's explained variance per update.

**InvertedPendulum-v5.** 8 environments per update, otherwise Config()'s defaults, a fixed budget
of 150k simulated steps, evaluated every 10k steps on 20 fresh episodes with the mean action.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time

import sys

import numpy as np
import torch

from pglib.practice.train import Config, train

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tools"))
from raymap import run_calls  # noqa: E402

RESULTS = pathlib.Path(__file__).resolve().parent / "results"
SEEDS = list(range(10))
ABLATION_BUDGET = 100_000
# Each row changes one thing against the row above it ("step size 0.3" against the default row).
VARIANTS = {
    "full return": dict(reward_to_go=False, baseline="none", normalize_advantages=False),
    "+ reward-to-go": dict(reward_to_go=True, baseline="none", normalize_advantages=False),
    "+ learned baseline": dict(reward_to_go=True, baseline="value", normalize_advantages=False),
    "+ advantage normalization": dict(),  # Config() defaults: the chapter's trainer
    "+ discount 0.99 (gamma^t kept)": dict(gamma=0.99),
    "+ bootstrap at time limits": dict(gamma=0.99, bootstrap_truncated=True),
    "step size 0.3": dict(lr=0.3),
}
PENDULUM = dict(env_id="InvertedPendulum-v5", num_envs=8, total_steps=150_000, eval_every=10_000,
                eval_mean_action=True, stop_when_solved=False)


def record(h, threshold: float) -> dict:
    hit = [s for s, r in zip(h.eval_steps, h.eval_returns) if r >= threshold]
    solve_update = None if not hit else h.simulated_steps.index(hit[0])
    return dict(eval_steps=h.eval_steps, eval_returns=h.eval_returns,
                solved_at_simulated=hit[0] if hit else None,
                solved_at_seconds=None if solve_update is None else h.wall_time[solve_update],
                train_seconds=h.wall_time[-1], eval_seconds=h.eval_seconds,
                explained_variance=h.explained_variance, update_simulated=h.simulated_steps,
                update_used=h.update_steps)


def one_run(threshold: float, **config) -> dict:
    """One training run, recorded (a Ray task under --ray: one thread, like the local runs)."""
    torch.set_num_threads(1)
    _, h = train(Config(progress=False, **config))
    return record(h, threshold)


def ablation(use_ray: bool = False) -> dict:
    out = dict(budget=ABLATION_BUDGET, seeds=SEEDS, threshold=475.0, variants=VARIANTS, runs={})
    pairs = [(name, seed) for name in VARIANTS for seed in SEEDS]
    calls = [((475.0,), dict(seed=seed, total_steps=ABLATION_BUDGET, stop_when_solved=False,
                             **VARIANTS[name])) for name, seed in pairs]

    def show(i, r):
        print(*pairs[i], r["solved_at_simulated"], round(np.mean(r["eval_returns"]), 1), flush=True)

    results = run_calls(one_run, calls, use_ray=use_ray, on_result=show)
    for (name, seed), r in zip(pairs, results):
        out["runs"].setdefault(name, []).append(dict(seed=seed, **r))
    return out


def pendulum(use_ray: bool = False) -> dict:
    import gymnasium as gym

    threshold = gym.spec(PENDULUM["env_id"]).reward_threshold
    out = dict(config=PENDULUM, seeds=SEEDS, threshold=threshold, runs=[])
    calls = [((threshold,), dict(seed=seed, **PENDULUM)) for seed in SEEDS]
    results = run_calls(one_run, calls, use_ray=use_ray,
                        on_result=lambda i, r: print(SEEDS[i], [round(x) for x in r["eval_returns"]],
                                                     flush=True))
    for seed, r in zip(SEEDS, results):
        out["runs"].append(dict(seed=seed, final_eval=r["eval_returns"][-1], **r))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("part", choices=["ablation", "pendulum"])
    ap.add_argument("--ray", action="store_true", help="one Ray task per run (RAY_ADDRESS: a cluster)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    result = (ablation if args.part == "ablation" else pendulum)(use_ray=args.ray)
    result["seconds"] = time.perf_counter() - start
    name = "ablation_cartpole.json" if args.part == "ablation" else "inverted_pendulum.json"
    (RESULTS / name).write_text(json.dumps(result, default=float))
    print("wrote", RESULTS / name, f"in {result['seconds']:.0f} s")


if __name__ == "__main__":
    main()
