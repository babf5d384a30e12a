"""The Colab path: a chapter notebook, run in an environment that has never seen pglib.

A fresh virtual environment (no system site packages) gets only what Colab ships and
what matters here: ``torch==2.13.0`` (the pinned CPU wheel), numpy, scipy, matplotlib,
and the pieces that run a notebook (ipykernel, nbclient, nbformat). Not pglib, not
gymnasium. Each chapter then runs top to bottom in an empty working folder (like
Colab's ``/content``) with ``PGLIB_SOURCE`` pointing at a copy of this checkout, so the
notebook's own setup cell has to install pglib. Afterwards pglib (the distribution
``policy-gradients-executable``) is installed and torch is untouched.

The environment is shared by all notebooks in this file: the first notebook's setup
cell installs pglib, the later ones find it importable. To run only some chapters:
``PGLIB_COLAB_NOTEBOOKS=01_log_derivative_trick,05_baselines make test`` (names or
globs, without ``.ipynb``).
"""

from __future__ import annotations

import fnmatch
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import time
from importlib import metadata

import pytest

import notebooks
import setup_cell

pytestmark = pytest.mark.colab

ROOT = pathlib.Path(__file__).resolve().parents[1]
ALL_NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))
SELECTED = os.environ.get("PGLIB_COLAB_NOTEBOOKS", "").strip()
NOTEBOOKS = [
    nb for nb in ALL_NOTEBOOKS
    if not SELECTED or any(fnmatch.fnmatch(nb.stem, pat.strip().removesuffix(".ipynb")) for pat in SELECTED.split(","))
]
TIMINGS: dict[str, float] = {}
# Runs a notebook as `make execute` does (nbclient, kernel python3 in the notebook's folder, 600 s per cell);
# it needs only nbclient and nbformat, so the Colab-like venv runs it on the notebook's copy.
RUNNER = ROOT / "tools" / "execute_notebooks.py"


def pin(name: str) -> str:
    """The requirements.txt pin for ``name`` (so the cached wheels are used), else the version installed here."""
    text = (ROOT / "requirements.txt").read_text()
    match = re.search(rf"^{re.escape(name)}==(\S+)", text, re.M | re.I)
    return f"{name}=={match.group(1) if match else metadata.version(name)}"


def colab_packages() -> list[str]:
    # torch must stay exactly 2.13.0: an open range would pull a multi-GB CUDA build.
    return ["torch==2.13.0"] + [pin(n) for n in ("numpy", "scipy", "matplotlib", "ipykernel", "nbclient", "nbformat")]


def source_copy(dest: pathlib.Path) -> pathlib.Path:
    """What `pip install git+<repo>` would see: the package and its metadata, not the build outputs.

    A copy keeps pip's in-tree build (``build/``, ``*.egg-info``) out of the checkout.
    """
    dest.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE", "setup.cfg", "setup.py"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, dest / name)
    shutil.copytree(ROOT / "pglib", dest / "pglib", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    # a checkout also holds the committed benchmark results chapter 9 reads (found through
    # PGLIB_SOURCE; on Colab itself, without it, the notebook fetches them from the repository)
    (dest / "benchmarks" / "results").mkdir(parents=True)
    for result in (ROOT / "benchmarks" / "results").glob("*.json"):
        shutil.copy2(result, dest / "benchmarks" / "results" / result.name)
    return dest


class ColabEnv:
    def __init__(self, base: pathlib.Path):
        self.base = base
        self.venv = base / "venv"
        self.python = self.venv / "bin" / "python"
        self.source = source_copy(base / "checkout")
        self.pglib_installed_by: str | None = None
        self.env = {
            "PATH": f"{self.venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
            "HOME": os.environ.get("HOME", str(base)),
            "LANG": "C.UTF-8",
            "VIRTUAL_ENV": str(self.venv),
            "PGLIB_SOURCE": str(self.source),
            "JUPYTER_PATH": str(self.venv / "share" / "jupyter"),  # our kernelspec first
            "JUPYTER_DATA_DIR": str(base / "jupyter-data"),  # ignore the user's kernelspecs
            "JUPYTER_PLATFORM_DIRS": "1",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "PYTHONHASHSEED": "0",
        }

    def run(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        kwargs.setdefault("cwd", self.base)  # never the checkout: its pglib/ would be importable from there
        return subprocess.run([str(a) for a in args], env=self.env, text=True, capture_output=True, **kwargs)

    def check(self, *args: str, **kwargs) -> str:
        result = self.run(*args, **kwargs)
        assert result.returncode == 0, f"{' '.join(map(str, args))} failed:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def installed(self, distribution: str) -> str | None:
        result = self.run(self.python, "-m", "pip", "show", distribution)
        if result.returncode != 0:
            return None
        return re.search(r"^Version: (\S+)", result.stdout, re.M).group(1)

    def torch_fingerprint(self) -> tuple[str, float]:
        out = self.check(self.python, "-c", "import torch, os; print(torch.__version__, os.path.getmtime(torch.__file__))")
        version, mtime = out.split()
        return version, float(mtime)


@pytest.fixture(scope="module")
def colab(tmp_path_factory) -> ColabEnv:
    base = tmp_path_factory.mktemp("colab")
    start = time.perf_counter()
    # sys.executable may be a venv's python; venv builds from the base interpreter either way.
    subprocess.run([sys.executable, "-m", "venv", str(base / "venv")], check=True)
    env = ColabEnv(base)
    env.check(env.python, "-m", "pip", "install", "--quiet", *colab_packages())
    env.check(env.python, "-m", "ipykernel", "install", "--sys-prefix", "--name", "python3")
    assert env.installed(setup_cell.DISTRIBUTION) is None
    for absent in ("pglib", "gymnasium"):
        found = env.run(env.python, "-c", f"import importlib.util as u; print(u.find_spec({absent!r}) is not None)")
        assert found.stdout.strip() == "False", f"the fresh venv already has {absent}: {found.stdout}{found.stderr}"
    env.torch_before = env.torch_fingerprint()
    TIMINGS["venv (create + install Colab's packages)"] = time.perf_counter() - start
    yield env
    # For humans (xdist hides prints): _build/colab-timings.json, seconds per step.
    (ROOT / "_build").mkdir(exist_ok=True)
    (ROOT / "_build" / "colab-timings.json").write_text(json.dumps({k: round(v, 1) for k, v in TIMINGS.items()}, indent=1))
    # 1.3 GB in ~20k files: remove it now rather than leave it to pytest's tmp rotation.
    shutil.rmtree(base, ignore_errors=True)


def test_there_are_notebooks_to_run():
    assert NOTEBOOKS, (
        f"no notebooks selected (PGLIB_COLAB_NOTEBOOKS={SELECTED!r})" if SELECTED else "no book/*.ipynb found"
    )


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[nb.stem for nb in NOTEBOOKS])
def test_notebook_runs_like_on_colab(colab: ColabEnv, notebook: pathlib.Path, tmp_path):
    before = colab.installed(setup_cell.DISTRIBUTION)
    if colab.pglib_installed_by is None:
        assert before is None, f"pglib was installed before any notebook ran: {before}"
    workdir = tmp_path / "content"  # empty, like Colab's /content
    workdir.mkdir()
    copy = workdir / notebook.name
    shutil.copy2(notebook, copy)

    start = time.perf_counter()
    result = colab.run(colab.python, RUNNER, copy, cwd=workdir, timeout=900)
    TIMINGS[notebook.stem] = time.perf_counter() - start
    assert result.returncode == 0, f"{notebook.name} failed in the Colab-like environment:\n{result.stderr[-6000:]}"

    version = colab.installed(setup_cell.DISTRIBUTION)
    assert version, f"after {notebook.name}, `pip show {setup_cell.DISTRIBUTION}` finds nothing"
    if before is None:
        colab.pglib_installed_by = notebook.name
    assert colab.torch_fingerprint() == colab.torch_before, (
        f"{notebook.name}: torch changed from {colab.torch_before} to {colab.torch_fingerprint()}: "
        f"installing pglib replaced Colab's torch"
    )
    # The import that the notebook used is ours, not a PyPI package called pglib.
    origin = colab.check(colab.python, "-c", "import pglib.exact, pglib; print(pglib.__file__)").strip()
    assert origin.startswith(str(colab.venv)), f"pglib imported from {origin}, not from the Colab-like venv"
    # A Colab user sees the book's numbers: every compared output (nbval's rules and sanitizer)
    # equals the committed one; only the setup cell, which installs pglib here, is left out.
    mismatches = notebooks.output_mismatches(json.loads(notebook.read_text()), json.loads(copy.read_text()))
    assert not mismatches, (f"{notebook.name}: the Colab-like run prints other text than the book:\n"
                            + "\n".join(mismatches[:10]))
