"""Re-run the chapters under other floating-point arithmetic paths and compare with the book.

    python tools/arith_paths.py book/*.ipynb          # what `make test` runs (test-paths)
    python tools/arith_paths.py --show                 # the paths chosen on this machine

The committed outputs must not depend on the last bits of a float64 computation. On one machine
that can still be tested: the libraries under the book choose their kernels at run time, and
environment variables pick others. Two paths are used, chosen to differ from the native one on
Intel and on AMD processors (and on 64-bit Arm):

* ``portable``: MKL's conditional-numerical-reproducibility mode ``COMPATIBLE`` (SSE2 kernels,
  instead of AVX2 or AVX-512: torch's matrix products), torch's ATen vector kernels off
  (``ATEN_CPU_CAPABILITY=default``), numpy's OpenBLAS on its generic SSE3 kernels
  (``OPENBLAS_CORETYPE=Prescott``: numpy's matrix products) and numpy's AVX2/AVX-512 loops off
  (``NPY_DISABLE_CPU_FEATURES``);
* ``threads``: two OpenMP threads (torch and OpenBLAS split long reductions between them, which
  changes the order of a sum), MKL's ``AVX2`` path, torch's AVX2 kernels and OpenBLAS's Haswell
  (AVX2) kernels.

Measured on an AMD EPYC with AVX-512 (the CI machine): MKL_CBWR=COMPATIBLE and
OPENBLAS_CORETYPE=Prescott or Haswell each change the last bits of a float64 matrix product
(torch and numpy respectively) against the native path.

The chapters are shared out between the two paths (alternately, in file order), the two halves
run side by side, and every chapter must print exactly its committed text under nbval with the
same sanitizer as the native run. On Arm, where there is no MKL, the paths are torch's scalar
kernels with numpy's ASIMD loops off, and two threads with OpenBLAS's generic kernels.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

X86 = {
    "portable": {"MKL_CBWR": "COMPATIBLE", "ATEN_CPU_CAPABILITY": "default", "OPENBLAS_CORETYPE": "Prescott",
                 "NPY_DISABLE_CPU_FEATURES": "X86_V3 X86_V4 AVX512_ICL AVX512_SPR"},
    "threads": {"OMP_NUM_THREADS": "2", "MKL_CBWR": "AVX2", "ATEN_CPU_CAPABILITY": "avx2",
                "OPENBLAS_CORETYPE": "Haswell"},
}
ARM = {
    "portable": {"ATEN_CPU_CAPABILITY": "default", "NPY_DISABLE_CPU_FEATURES": "ASIMDHP ASIMDDP ASIMDFHM SVE"},
    "threads": {"OMP_NUM_THREADS": "2", "OPENBLAS_CORETYPE": "ARMV8"},
}


def paths(machine: str | None = None) -> dict[str, dict[str, str]]:
    """The two non-native arithmetic paths for this processor: name -> environment variables."""
    machine = (machine or platform.machine()).lower()
    return ARM if machine in ("aarch64", "arm64") else X86


def nbval_command(notebooks: list[str]) -> list[str]:
    return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-p", "tests.nbval_semicolon",
            "--nbval", "--nbval-current-env", "--nbval-sanitize-with", "tests/nbval_sanitize.cfg", *notebooks]


def run(notebooks: list[str]) -> int:
    """Run the two halves side by side, each under its path; 0 when every chapter matched."""
    chosen = paths()
    names = list(chosen)
    jobs = []
    for i, name in enumerate(names):
        share = notebooks[i::len(names)]
        if not share:
            continue
        env = dict(os.environ, **chosen[name])
        print(f"[{name}] {' '.join(f'{k}={v}' for k, v in chosen[name].items())}: "
              f"{' '.join(Path(n).stem for n in share)}", flush=True)
        jobs.append((name, subprocess.Popen(nbval_command(share), cwd=ROOT, env=env, text=True,
                                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)))
    failed = []
    for name, job in jobs:
        out, _ = job.communicate()
        print(f"----- path {name} -----\n{out}", flush=True)
        if job.returncode != 0:
            failed.append(name)
    if failed:
        print(f"These arithmetic paths printed other text than the committed outputs: {', '.join(failed)}")
        return 1
    return 0


def main(argv: list[str]) -> int:
    if argv == ["--show"]:
        for name, env in paths().items():
            print(f"{name}: {' '.join(f'{k}={v}' for k, v in env.items())}")
        return 0
    if not argv or any(a.startswith("-") for a in argv):
        print(__doc__)
        return 2
    return run(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
