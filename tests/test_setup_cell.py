"""Every chapter notebook starts the same way and carries its outputs.

- the first code cell is exactly the setup cell generated from ``_config.yml``
  (``python tools/setup_cell.py --write book/NN_name.ipynb`` fixes it), tagged ``setup``;
- a code cell tagged ``parameters`` assigns ``SEED``;
- every code cell has an execution count, so nbval compares its committed outputs
  (a cell without one is only run, never compared);
- the setup cell installs our distribution, never the unrelated ``pglib`` from PyPI.
"""

from __future__ import annotations

import ast
import re

import pytest

import setup_cell
from notebooks import ROOT, code_cells, source, tags


def test_first_code_cell_is_the_setup_cell(chapter):
    name, nb = chapter
    first = setup_cell.first_code_cell(nb)
    assert first is not None, f"{name}: no code cells"
    fix = f"run `python tools/setup_cell.py --write book/{name}`"
    assert setup_cell.TAG in tags(first), f"{name}: first code cell is not tagged {setup_cell.TAG!r}; {fix}"
    assert source(first) == setup_cell.setup_cell_source(), (
        f"{name}: the setup cell differs from the one generated from _config.yml; {fix}"
    )


def test_parameters_cell_assigns_seed(chapter):
    name, nb = chapter
    code = [cell for _, cell in code_cells(nb)]
    cells = [c for c in code if "parameters" in tags(c)]
    assert len(cells) == 1, f"{name}: expected one code cell tagged 'parameters', found {len(cells)}"
    tree = ast.parse(source(cells[0]))
    assigned = {
        target.id
        for node in ast.walk(tree)
        if isinstance(node, (ast.Assign, ast.AnnAssign))
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name)
    }
    assert "SEED" in assigned, f"{name}: the 'parameters' cell does not assign SEED (it assigns {sorted(assigned)})"
    position = code.index(cells[0])
    assert position == 1, f"{name}: the 'parameters' cell should be the second code cell, it is number {position + 1}"


def test_every_code_cell_was_executed(chapter):
    name, nb = chapter
    code = [cell for _, cell in code_cells(nb)]
    missing = [i for i, c in enumerate(code, 1) if c.get("execution_count") is None and source(c).strip()]
    assert not missing, (
        f"{name}: code cells {missing} have no execution count, so nbval would not compare their outputs; "
        f"execute the notebook (`make execute`) and commit its outputs"
    )
    counts = [c["execution_count"] for c in code if c.get("execution_count") is not None]
    assert counts == list(range(1, len(counts) + 1)), (
        f"{name}: execution counts {counts} are not 1, 2, 3, ...: the outputs come from an out-of-order "
        f"session; rerun the notebook top to bottom (`make execute`)"
    )


def _default_source(text: str) -> str:
    """The requirement the setup cell installs when PGLIB_SOURCE is not set."""
    repo = re.search(r'^    repo = "([^"]+)"$', text, re.M)
    default = re.search(r'^    default = f"([^"]+)"$', text, re.M)
    assert repo and default, "the setup cell no longer spells out its default source"
    assert re.search(r'os\.environ\.get\("PGLIB_SOURCE", default\)', text), "PGLIB_SOURCE is not read"
    return default.group(1).replace("{repo}", repo.group(1))


def test_setup_cell_never_installs_pypi_pglib():
    """The PyPI name ``pglib`` belongs to an unrelated PostgreSQL package."""
    text = setup_cell.setup_cell_source()
    installs = re.findall(r"subprocess\.run\((.*)\)", text)
    assert installs == ["pip + [source], check=True"], installs
    assert 'pip = [sys.executable, "-m", "pip", "install", "--quiet"]' in text
    assert _default_source(text).startswith(f"{setup_cell.DISTRIBUTION} @ git+https://")
    # Nothing else may name bare "pglib" as something to install.
    for line in text.splitlines():
        if "install" in line and "pglib" in line and not line.lstrip().startswith("#"):
            pytest.fail(f"setup cell line installs something named pglib: {line!r}")
    # Importability is checked on a module only our package has.
    assert "import pglib.exact" in text
    assert all(len(line) <= 88 for line in text.splitlines()), "the setup cell is wider than the page"


def test_setup_cell_matches_the_distribution_name():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(rf'^name = "{re.escape(setup_cell.DISTRIBUTION)}"$', pyproject, re.M), (
        f"pyproject.toml's project name is not {setup_cell.DISTRIBUTION!r}, which the setup cell installs"
    )


def test_setup_cell_url_is_the_repository_in_config():
    url, branch = setup_cell.repository()
    assert url.startswith("https://github.com/"), url
    assert _default_source(setup_cell.setup_cell_source()).endswith(f"git+{url}@{branch}")
