"""Shared pytest setup for the book's tests.

- ``tests/`` and ``tools/`` are importable (``import notebooks``, ``import setup_cell``) however
  pytest is invoked;
- tests marked ``gpu`` are skipped, with the reason, when CUDA is not available;
- the ``chapter`` fixture gives ``(file name, notebook JSON)`` for every chapter notebook;
- torch's default dtype is float32 in every test unless its module sets ``FLOAT64_DEFAULT = True``,
  so one module's choice can never leak into another's tests (xdist runs many files per process).
"""

from __future__ import annotations

import pathlib
import sys

import pytest

TESTS = pathlib.Path(__file__).resolve().parent
ROOT = TESTS.parent
for _path in (TESTS, ROOT / "tools"):  # tools/ holds the ledger and other book tools
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

# Property-based tests (hypothesis): a quick profile in `make test`, a long one by hand with
# HYPOTHESIS_PROFILE=long. Both derandomized: the same examples on every run (no flaky builds).
try:
    import os

    from hypothesis import HealthCheck, settings

    _QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large]
    settings.register_profile("quick", max_examples=15, deadline=None, derandomize=True,
                              suppress_health_check=_QUIET, database=None)
    settings.register_profile("long", max_examples=400, deadline=None, derandomize=False,
                              suppress_health_check=_QUIET)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "quick"))
except ImportError:  # hypothesis is a test requirement; only the property-based tests need it
    pass


def pytest_collection_modifyitems(config, items):
    gpu_items = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu_items:
        return  # don't pay for importing torch
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA: torch.cuda.is_available() is False on this machine")
    for item in gpu_items:
        item.add_marker(skip)


@pytest.fixture(autouse=True)
def _default_dtype(request):
    import torch

    want = torch.float64 if getattr(request.module, "FLOAT64_DEFAULT", False) else torch.float32
    before = torch.get_default_dtype()
    torch.set_default_dtype(want)
    yield
    torch.set_default_dtype(before)


def _chapters():
    from notebooks import CHAPTERS

    return CHAPTERS


@pytest.fixture(params=_chapters(), ids=lambda path: path.stem)
def chapter(request) -> tuple[str, dict]:
    import json

    return request.param.name, json.loads(request.param.read_text())
