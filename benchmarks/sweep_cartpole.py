"""How the CartPole benchmark's pglib setting (``PGLIB`` in bench_cartpole.py) was chosen.

Wall-clock to solve CartPole-v1 for a grid of REINFORCE settings, on seeds the benchmark does
not use (100 and up), so the benchmark's seeds 0-9 stay a held-out measurement of the chosen
setting. Three stages, as run for the README:

    python benchmarks/sweep_cartpole.py --stage 1    # 6 env counts x 5 step sizes, seeds 100-119
    python benchmarks/sweep_cartpole.py --stage 2    # around the best of stage 1, seeds 100-119
    python benchmarks/sweep_cartpole.py --stage 3    # finalists + the previous setting, seeds 120-159

Each stage writes benchmarks/results/cartpole_sweep_stage<k>.json (per-seed seconds and steps).
A stage takes a few minutes on one core; run it on an idle machine (times are compared within a stage).
Every setting is vanilla REINFORCE: one gradient step per batch of fresh whole episodes,
reward-to-go, learned value baseline (one regression step), normalized advantages.
Each run is timed by bench_cartpole.run_pglib (building the environments to the solve), after
bench_cartpole.warm_up(), so sweep and benchmark measure the same thing.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))  # bench_cartpole, beside this file
from bench_cartpole import run_pglib, warm_up  # noqa: E402


def _grid(envs, lrs, **extra) -> list[dict]:
    return [dict(num_envs=n, hidden=(32, 32), lr=lr, value_lr=lr, value_steps=1, **extra) for n in envs for lr in lrs]


STAGES = {
    1: (range(100, 120), _grid((8, 12, 16, 20, 24, 32), (0.02, 0.03, 0.04, 0.05, 0.07))),
    2: (range(100, 120), _grid((18, 20, 22, 24, 28), (0.03, 0.035, 0.04))
        + [dict(num_envs=20, hidden=(32, 32), lr=0.035, value_lr=v, value_steps=1) for v in (0.02, 0.05)]
        + [dict(num_envs=20, hidden=(64, 64), lr=lr, value_lr=lr, value_steps=1) for lr in (0.015, 0.02, 0.03)]
        + _grid((20,), (0.035,), gamma=0.995)),
    3: (range(120, 160), [dict(num_envs=n, hidden=(32, 32), lr=lr, value_lr=lr, value_steps=1)
                          for n, lr in ((18, 0.035), (20, 0.04), (22, 0.04), (24, 0.04), (22, 0.03), (12, 0.03))]),
}


def median(values: list) -> float | None:
    """Median with an unsolved seed (None) counted as slower than every solved one; None if half are unsolved."""
    m = float(np.median([np.inf if v is None else v for v in values]))
    return None if np.isinf(m) else m


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stage", type=int, choices=sorted(STAGES), required=True)
    ap.add_argument("--max-steps", type=int, default=300_000)
    args = ap.parse_args()
    seeds, grid = STAGES[args.stage]
    warm_up()
    rows = []
    for kw in grid:
        runs = []
        for seed in seeds:
            r = run_pglib(seed, args.max_steps, **kw)
            runs.append(dict(seed=seed, seconds=r["seconds"], steps=r["steps"]))
        row = dict(config=kw, solved=f"{sum(r['steps'] is not None for r in runs)}/{len(runs)}",
                   median_seconds=median([r["seconds"] for r in runs]), median_steps=median([r["steps"] for r in runs]),
                   runs=runs)
        rows.append(row)
        print(json.dumps({k: row[k] for k in ("config", "solved", "median_seconds", "median_steps")}), flush=True)
    out = pathlib.Path(__file__).resolve().parent / "results" / f"cartpole_sweep_stage{args.stage}.json"
    out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
