"""Packaging: the core imports and runs without the optional extras; the metadata says so.

The optional packages (tqdm, matplotlib, numba, yaml) are hidden from a fresh interpreter by an
import hook, which is what a stock machine without the extras looks like to pglib.
"""

from __future__ import annotations

import importlib.metadata
import pathlib
import subprocess
import sys
import textwrap

import pglib

ROOT = pathlib.Path(__file__).resolve().parents[1]

HIDE = textwrap.dedent("""
    import sys
    class Hide:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {"tqdm", "matplotlib", "numba", "yaml"}:
                raise ImportError(f"{name} hidden for this test")
    sys.meta_path.insert(0, Hide())
""")


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", HIDE + textwrap.dedent(code)], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)


def test_core_runs_without_the_optional_extras():
    out = _run("""
        import torch, pglib
        from pglib import estimators, exact
        from pglib.practice import train, plotting, rollout
        from pglib.verify import gym_bridge
        m = pglib.chain(3, horizon=3)
        r = pglib.check_estimator(lambda t, x: estimators.reinforce(t, x, m.gamma), m, torch.zeros(3, 2), n=500)
        with train._progress_bar(train.Config(progress=True)) as bar:
            bar.update(3)
        print("ok", bar.n, type(r).__name__)
    """)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["ok", "3", "Report"]


def test_fused_says_which_extra_it_needs():
    out = _run("""
        import torch, pglib
        from pglib import fused
        assert not fused.available()
        try:
            fused.reinforce_estimates(pglib.chain(3, horizon=3), torch.zeros(3, 2), n=10, seed=0)
        except ImportError as e:
            print(e)
    """)
    assert out.returncode == 0, out.stderr
    assert "policy-gradients-executable[fast]" in out.stdout


def test_metadata_version_license_and_requirements():
    dist = importlib.metadata.distribution("policy-gradients-executable")
    assert dist.version == pglib.__version__
    assert dist.metadata["License-Expression"] == "MIT"
    core = [r for r in dist.requires if "extra ==" not in r]
    assert not any(r.startswith(("matplotlib", "tqdm", "numba", "pyyaml")) for r in core), core
    assert "gymnasium>=1.1" in core
    extras = set(dist.metadata.get_all("Provides-Extra"))
    assert {"fast", "audit", "book", "test", "plot", "progress"} <= extras
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    text = (ROOT / "pyproject.toml").read_text()
    assert 'requires = ["setuptools>=77"]' in text and 'dynamic = ["version"]' in text
