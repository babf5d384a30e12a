"""The library's layout: moved modules keep their old import paths for one release, as the
very same module objects (no copy to drift, no warning in a chapter's output)."""

from __future__ import annotations

import importlib
import subprocess
import sys
import warnings

import pytest

import pglib


@pytest.mark.parametrize("old", sorted(pglib.MOVED))
def test_an_old_path_is_the_new_module(old):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        module = importlib.import_module(old)
    assert module is importlib.import_module(pglib.MOVED[old])
    assert getattr(pglib, old.rpartition(".")[2]) is module


def test_old_paths_work_in_a_fresh_interpreter():
    code = ("from pglib.train import Config; from pglib.checks import check_stochastic; "
            "from pglib import zoo, tabular, verify; import pglib.lqr as lqr; "
            "print(Config.__module__, check_stochastic.__module__, zoo.__name__, tabular.__name__, "
            "verify.check_estimator.__module__, lqr.__name__)")
    out = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["pglib.practice.train", "pglib.verify.checklist", "pglib.verify.bug_zoo",
                                  "pglib.verify.gym_bridge", "pglib.verify.unbiased", "pglib.practice.lqr"]
