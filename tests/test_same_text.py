"""The same text on every machine: what nbval compares must not depend on the arithmetic path.

The re-execution itself runs in `make test` (tools/arith_paths.py, target test-paths); these
tests check its pieces and the committed outputs without running a kernel."""

from __future__ import annotations

import copy
import json
import re

import arith_paths
import notebooks

RESIDUAL_TEXT = re.compile(r"float64 rounding\)|max \|measured − expected\| = \d|log-probability [=>] 0")


def test_no_committed_output_prints_a_rounding_residual():
    """Identities print their tolerance, never the residual's digits (they differ between CPUs)."""
    found = []
    patterns = notebooks.sanitizers()
    for nb_path in notebooks.CHAPTERS:
        nb = json.loads(nb_path.read_text())
        for index, cell in notebooks.code_cells(nb):
            for key, texts in notebooks.compared_outputs(cell, patterns).items():
                for text in texts:
                    found += [f"{nb_path.name} cell {index}: {m.group(0)}" for m in RESIDUAL_TEXT.finditer(text)]
    assert not found, "\n".join(found)


def test_output_comparison_follows_nbval():
    nb = json.loads(notebooks.CHAPTERS[0].read_text())
    assert notebooks.output_mismatches(nb, copy.deepcopy(nb)) == []
    index, cell = [(i, c) for i, c in notebooks.code_cells(nb) if c.get("outputs")][-1]
    changed = copy.deepcopy(nb)
    out = changed["cells"][index]["outputs"]
    out.append({"output_type": "stream", "name": "stdout", "text": "one more line\n"})
    assert any(f"cell {index}" in m for m in notebooks.output_mismatches(nb, changed))
    # sanitized text (an object address) and pictures are not compared
    a = {"cells": [{"cell_type": "code", "source": "x", "metadata": {}, "outputs": [
        {"output_type": "execute_result", "data": {"text/plain": "<Line2D at 0x7f3a2c1b5e50>",
                                                   "image/png": "AAAA"}, "metadata": {}}]}]}
    b = copy.deepcopy(a)
    b["cells"][0]["outputs"][0]["data"] = {"text/plain": "<Line2D at 0x7f00000000aa>", "image/png": "BBBB"}
    assert notebooks.output_mismatches(a, b, skip_first=False) == []


def test_two_other_arithmetic_paths_on_every_processor():
    for machine in ("x86_64", "AMD64", "aarch64", "arm64"):
        chosen = arith_paths.paths(machine)
        assert len(chosen) == 2
        for env in chosen.values():
            # each path changes the kernels of torch (ATen or the thread split) and of numpy or BLAS
            assert "ATEN_CPU_CAPABILITY" in env or env.get("OMP_NUM_THREADS") not in (None, "1")
    x86 = arith_paths.paths("x86_64")
    assert x86["portable"]["MKL_CBWR"] == "COMPATIBLE" and x86["portable"]["ATEN_CPU_CAPABILITY"] == "default"
    assert x86["threads"]["OMP_NUM_THREADS"] == "2"


def test_no_cell_shows_a_bare_float():
    """A cell whose last expression is a float shows all 17 digits of it (a residual, say): the
    last ones differ between machines. Assign it (``_ = claims.close(...)``) or print it rounded."""
    bare = re.compile(r"^-?(\d+\.\d{6,}|\d(\.\d+)?e[-+]\d+)$")
    found = []
    for nb_path in notebooks.CHAPTERS:
        nb = json.loads(nb_path.read_text())
        for index, cell in notebooks.code_cells(nb):
            for output in cell.get("outputs", []):
                if output.get("output_type") == "execute_result":
                    text = notebooks.output_text(output).strip()
                    if bare.match(text):
                        found.append(f"{nb_path.name} cell {index}: {text}")
    assert not found, "\n".join(found)
