"""Execute chapter notebooks in place, top to bottom, as ``make execute`` does.

    python tools/execute_notebooks.py book/03_monte_carlo.ipynb [...]

Like ``jupyter execute --inplace``, but without per-cell timestamps in the cell
metadata (they would change on every run and clutter diffs). The kernel runs in
the notebook's folder; cells tagged ``raises-exception`` may raise, any other
error stops with the failing cell shown.
"""

from __future__ import annotations

import pathlib
import sys
import time

import nbclient
import nbformat


def execute(path: pathlib.Path, timeout: int = 600) -> float:
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    start = time.perf_counter()
    nbclient.NotebookClient(
        nb, timeout=timeout, kernel_name="python3", record_timing=False,
        resources={"metadata": {"path": str(path.parent.resolve())}},
    ).execute()
    nbformat.write(nb, path)
    return time.perf_counter() - start


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    for name in argv:
        seconds = execute(pathlib.Path(name))
        print(f"executed {name} in {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
