"""Shared pytest setup for the book's tests.

- ``tests/`` is importable (``import setup_cell``) however pytest is invoked;
- tests marked ``gpu`` are skipped, with the reason, when CUDA is not available.
"""

from __future__ import annotations

import pathlib
import sys

import pytest

TESTS = pathlib.Path(__file__).resolve().parent
ROOT = TESTS.parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))


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
