"""Run every benchmark in this folder, one after another (`make bench`).

Benchmarks are not tests: they measure speed and sample efficiency as ratios against a peer
measured in the same run, and write their results beside this file (see README.md).
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
BENCHMARKS = ["bench_sampling.py", "bench_cartpole.py", "bench_audit.py"]


def main() -> int:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    for name in BENCHMARKS:
        print(f"=== {name}", flush=True)
        code = subprocess.call([sys.executable, str(HERE / name)], env=env)
        if code:
            print(f"{name} exited with {code}", file=sys.stderr)
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
