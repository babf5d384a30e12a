"""The GPU path: on a machine with CUDA, the practice chapter and the trainer run on the GPU.

``pglib.practice.device.default_device()`` picks CUDA whenever ``torch.cuda.is_available()``, and
``pglib.practice.train.train`` (``Config.device=None``) puts its networks there; nothing in a chapter names a
device. So on a CUDA machine:

- ``pglib.practice.train`` on CartPole-v1, briefly, must put the policy (and the value baseline's loss) on CUDA
  and still learn something a history can show;
- ``book/09_practice.ipynb`` must run to the end under nbclient, in a fresh kernel, with CUDA as
  the default device and CUDA memory actually used by the kernel.

Every test here is marked ``gpu``; without CUDA ``tests/conftest.py`` skips them with the reason
(``make test`` runs them with ``-m gpu`` among the HTML tests).
"""

from __future__ import annotations

import math
import pathlib

import pytest

pytestmark = pytest.mark.gpu

ROOT = pathlib.Path(__file__).resolve().parents[1]
PRACTICE = ROOT / "book" / "09_practice.ipynb"
CELL_TIMEOUT_S = 600

# Appended to the practice notebook after its own cells: report what the kernel used.
PROBE = """\
import json as _json, torch as _torch
from pglib.practice.device import default_device as _default_device
print("GPU-PROBE " + _json.dumps({
    "default_device": str(_default_device()),
    "cuda_available": _torch.cuda.is_available(),
    "max_memory_allocated": int(_torch.cuda.max_memory_allocated()) if _torch.cuda.is_available() else 0,
}))
"""


def test_default_device_is_cuda():
    from pglib.practice.device import default_device, resolve_device

    assert default_device().type == "cuda"
    assert resolve_device(None).type == "cuda"
    assert resolve_device("cpu").type == "cpu"


def test_train_cartpole_runs_on_cuda():
    from pglib.practice.train import Config, train

    cfg = Config(total_steps=4_000, seed=0, progress=False, stop_when_solved=False)  # device=None: the default
    policy, history = train(cfg)
    devices = {p.device.type for p in policy.parameters()}
    assert devices == {"cuda"}, f"pglib.practice.train put the policy on {devices}, expected CUDA (pglib.practice.device decides)"
    assert history.update_steps and history.episode_returns, "no update or finished episode in 4000 steps"
    assert all(math.isfinite(x) for x in history.policy_loss), "non-finite policy loss on CUDA"
    assert all(math.isfinite(x) for x in history.value_loss), "non-finite value loss on CUDA"


def test_practice_chapter_runs_on_cuda():
    import json

    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(PRACTICE, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(PROBE))
    client = NotebookClient(nb, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                            resources={"metadata": {"path": str(PRACTICE.parent)}})
    client.execute()  # raises CellExecutionError, naming the cell, if any cell fails

    probe = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.get("output_type") == "stream")
    line = next((ln for ln in probe.splitlines() if ln.startswith("GPU-PROBE ")), None)
    assert line, f"the probe cell printed nothing recognisable: {probe!r}"
    report = json.loads(line[len("GPU-PROBE "):])
    assert report["cuda_available"], f"the notebook's kernel does not see CUDA: {report}"
    assert report["default_device"] == "cuda", f"pglib.practice.device.default_device() in the kernel: {report}"
    assert report["max_memory_allocated"] > 0, f"the practice chapter ran but allocated nothing on CUDA: {report}"
    failed = [c for c in nb.cells if c.cell_type == "code"
              for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not failed, "cells with errors in the executed practice chapter"
