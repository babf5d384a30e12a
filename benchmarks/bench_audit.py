"""Seed-audit throughput: 1 against 2 Ray workers, and where a task's time goes.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_audit.py
    ... --chapters 01,02,03,04 --seeds 3 --out benchmarks/results/audit_bench.json

Runs the same audit (tools/audit.py: chapters x seeds, one Ray task each) into a fresh
folder once with one worker and once with two, and reports for each: chapter runs per
minute (wall time including ``ray.init``), the speed-up, and per task the overhead of
starting and stopping the Jupyter kernel and of Ray (scheduling, argument and result
transfer: with one worker, the wall time not spent inside a task, less ``ray.init``) as
a share of the notebook's own execution time. Numbers move with whatever else runs on
the machine: the load average is recorded beside them.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import audit  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "audit_bench.json"


def one(workers: int, chapters: str, seeds: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="pgb-", dir="/tmp") as tmp:
        out = pathlib.Path(tmp) / "out"
        load = os.getloadavg()[0]
        subprocess.run(
            [
                sys.executable,
                str(ROOT / "tools" / "audit.py"),
                "--seeds",
                str(seeds),
                "--chapters",
                chapters,
                "--workers",
                str(workers),
                "--out",
                str(out),
                "--temp-dir",
                str(pathlib.Path(tmp) / "ray"),
            ],
            cwd=ROOT,
            check=True,
            env=dict(os.environ, OMP_NUM_THREADS="1"),
        )
        runs = [r for r in audit.read_results(out)]
        meta = json.loads((out / audit.RUNS).read_text().splitlines()[-1])
    if any(r["status"] == "fault" for r in runs):
        raise RuntimeError(
            f"a benchmark run faulted: {[r['error'] for r in runs if r['error']]}"
        )
    inside = sum(r["seconds"] for r in runs)
    execute = [r["execute_seconds"] for r in runs]
    # Per task outside the notebook's cells: reading and parameterizing it (papermill),
    # starting the kernel until it answers, stopping it.
    kernel = [
        r["prepare_seconds"] + r["kernel_start_seconds"] + r["kernel_stop_seconds"]
        for r in runs
    ]
    wall = meta["wall_seconds"]
    # Time not spent inside any task, per task (with one worker: tasks in sequence).
    ray_gap = (wall - meta["ray_init_seconds"] - inside / workers) / len(runs)
    return dict(
        workers=workers,
        runs=len(runs),
        wall_seconds=round(wall, 2),
        ray_init_seconds=round(meta["ray_init_seconds"], 2),
        runs_per_minute=round(60 * len(runs) / wall, 3),
        mean_execute_seconds=round(statistics.mean(execute), 3),
        mean_kernel_seconds=round(statistics.mean(kernel), 3),
        kernel_share=round(statistics.mean(kernel) / statistics.mean(execute), 4),
        ray_seconds_per_task=round(ray_gap, 3),
        ray_share=round(ray_gap / statistics.mean(execute), 4),
        ray_init_share=round(
            meta["ray_init_seconds"] / len(runs) / statistics.mean(execute), 4
        ),
        load_average_before=round(load, 2),
        load_average_after=round(os.getloadavg()[0], 2),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chapters", default="01,02,03,04")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", type=pathlib.Path, default=RESULTS)
    args = parser.parse_args(argv)
    result = dict(
        measured=datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
        chapters=args.chapters,
        seeds=args.seeds,
        cpus=os.cpu_count(),
        one=one(1, args.chapters, args.seeds),
        two=one(2, args.chapters, args.seeds),
    )
    result["speedup"] = round(
        result["two"]["runs_per_minute"] / result["one"]["runs_per_minute"], 3
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for key in ("one", "two"):
        r = result[key]
        print(
            f"{r['workers']} worker(s): {r['runs']} runs in "
            f"{r['wall_seconds']:.0f} s = "
            f"{r['runs_per_minute']:.2f} runs/min; kernel {r['kernel_share']:.1%}, Ray "
            f"{r['ray_share']:.1%} (+ init {r['ray_init_share']:.1%}) of a run's "
            f"{r['mean_execute_seconds']:.1f} s; load {r['load_average_before']}"
        )
    print(f"speed-up 2 vs 1 worker: {result['speedup']:.2f}x -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
