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


# ----------------------------------------------------------------------------- the import rule

import ast  # noqa: E402
import json  # noqa: E402
import pathlib  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
PKG = ROOT / "pglib"

LAYERS = [(name, modules) for name, modules, _ in pglib.LAYERS]
#: folders whose modules may import the core and their own folder, never each other
FOLDERS = ("verify", "practice")


def _module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _resolve(module: str, name: str | None = None) -> str | None:
    if name is not None and f"{module}.{name}" in MODULES:
        return f"{module}.{name}"
    return module if module in MODULES else None


def _imports(path: pathlib.Path) -> list[tuple[str, ast.AST, bool]]:
    """``(imported pglib module, node, inside a function?)`` for every import of pglib in ``path``."""
    return _imports_in(path.read_text())


def _imports_in(text: str) -> list[tuple[str, ast.AST, bool]]:
    tree = ast.parse(text)
    inside = set()
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            inside |= {id(n) for n in ast.walk(fn)}
    out = []
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "pglib":
            targets = [_resolve(node.module, a.name) for a in node.names]
        elif isinstance(node, ast.Import):
            targets = [_resolve(a.name) for a in node.names if a.name.split(".")[0] == "pglib"]
        out += [(t, node, id(node) in inside) for t in targets if t is not None]
    return out


GRAPH = {m: sorted({t for t, _, _ in _imports(p)} - {m}) for m, p in MODULES.items() if m != "pglib"}


def _layer(module: str) -> int:
    short = module.split(".")[1]
    return next(i for i, (_, names) in enumerate(LAYERS) if short in names)


def longest_path() -> list[str]:
    """The longest chain of imports (the graph is acyclic, see the test below)."""
    memo: dict[str, list[str]] = {}

    def walk(m: str) -> list[str]:
        if m not in memo:
            memo[m] = [m] + max((walk(d) for d in GRAPH.get(m, ()) if d != "pglib"), key=len, default=[])
        return memo[m]

    return max((walk(m) for m in GRAPH), key=len)


def test_every_module_has_a_layer():
    missing = [m for m in GRAPH if not any(m.split(".")[1] in names for _, names in LAYERS)]
    assert not missing, f"modules in no layer of tests/test_layout.py LAYERS: {missing}"


def test_no_import_inside_a_function():
    found = [f"{m}:{node.lineno} imports {t}" for m, p in MODULES.items() for t, node, inside in _imports(p)
             if inside and m != "pglib"]
    assert not found, f"pglib imports of pglib inside functions (they hide the real dependencies): {found}"


def _cycle(graph: dict) -> list[str] | None:
    """One import cycle of ``graph`` (module -> imported modules), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for d in graph.get(m, ()):
            if state.get(d) == 1:
                return stack[stack.index(d):] + [d]
            if d in graph and not state.get(d):
                found = visit(d)
                if found:
                    return found
        stack.pop()
        state[m] = 2
        return None

    for m in graph:
        if not state.get(m):
            found = visit(m)
            if found:
                return found
    return None


def _upward(graph: dict) -> list[str]:
    """The imports of ``graph`` that break the layer rule."""
    wrong = []
    for m, deps in graph.items():
        for d in deps:
            if d == "pglib":
                wrong.append(f"{m} imports the package facade pglib")
                continue
            mine, theirs = m.split(".")[1], d.split(".")[1]
            if mine in FOLDERS and theirs in FOLDERS and mine != theirs:
                wrong.append(f"{m} -> {d} (the two folders stay independent)")
            elif _layer(d) > _layer(m):
                wrong.append(f"{m} ({LAYERS[_layer(m)][0]}) -> {d} ({LAYERS[_layer(d)][0]})")
    return wrong


def test_no_import_cycle():
    cycle = _cycle(GRAPH)
    assert cycle is None, f"import cycle: {' -> '.join(cycle)}"


def test_imports_point_down_the_layers():
    wrong = _upward(GRAPH)
    assert not wrong, "imports that point up the layers: " + "; ".join(wrong)


def test_the_rules_catch_what_the_issue_found():
    """Negative controls: the two cycles and the upward imports pglib had before this layout."""
    before = {"pglib.estimators": ["pglib.importance"], "pglib.importance": ["pglib.estimators"],
              "pglib.exact": ["pglib.offpolicy"], "pglib.offpolicy": ["pglib.exact"]}
    assert _cycle(before) in (["pglib.estimators", "pglib.importance", "pglib.estimators"],
                              ["pglib.importance", "pglib.estimators", "pglib.importance"])
    assert _cycle({"pglib.exact": ["pglib.offpolicy"], "pglib.offpolicy": []}) is None
    assert _upward({"pglib.exact": ["pglib.offpolicy"]}) and _upward({"pglib.verify.gym_bridge": ["pglib.practice.policies"]})
    assert _upward({"pglib.mdp": ["pglib.practice.policies"]}) and not _upward({"pglib.offpolicy": ["pglib.exact"]})
    hidden = "def f():\n    from pglib import exact\n    return exact.gradient\n"
    assert [inside for _, _, inside in _imports_in(hidden)] == [True]
    private = "from pglib.estimators import _check_logits\nimport pglib.stats\npglib.stats._fmt(1.0, 2)\n"
    assert len(_private_uses(private)) == 2 and not _private_uses("from pglib import stats\nstats.format_p(0.5)\n")


def _sources():
    for p in sorted(PKG.rglob("*.py")):
        yield p, p.read_text()
    for folder in ("tools", "benchmarks", "tests"):
        for p in sorted((ROOT / folder).glob("*.py")):
            yield p, p.read_text()
    for p in sorted((ROOT / "book").glob("*.ipynb")):
        cells = json.loads(p.read_text())["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        yield p, "\n".join(line for line in code.splitlines() if not line.lstrip().startswith(("%", "!")))


def _private_uses(text: str) -> list[str]:
    """``line: what`` for each private name of a pglib module that ``text`` imports or reads."""
    tree = ast.parse(text)
    found, bound = [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "pglib":
            for a in node.names:
                if a.name.startswith("_"):
                    found.append(f"{node.lineno} imports {node.module}.{a.name}")
                bound.add(a.asname or a.name)
        elif isinstance(node, ast.Import):
            bound |= {(a.asname or a.name).split(".")[0] for a in node.names if a.name.startswith("pglib")}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            base = node.value
            while isinstance(base, ast.Attribute):
                base = base.value
            if isinstance(base, ast.Name) and base.id in bound:
                found.append(f"{node.lineno} uses .{node.attr}")
    return found


def test_no_private_name_is_used_across_modules():
    """``from pglib.x import _y`` and ``x._y`` (x a pglib module or a name imported from one) are
    refused everywhere: pglib, tools/, benchmarks/, tests/ and the chapters."""
    found = [f"{path.relative_to(ROOT)}:{use}" for path, text in _sources() for use in _private_uses(text)]
    assert not found, "private names used across modules: " + "; ".join(found)


def test_the_longest_import_chain_is_short():
    path = longest_path()
    assert len(path) - 1 <= 8, f"the longest import chain has {len(path) - 1} links: {' -> '.join(path)}"
