"""pglib.display.show_source: the formula alone by default, a visible note where the checks were,
and what is shown is the real source (the head and the formula are contiguous slices of it)."""

from __future__ import annotations

import ast
import builtins
import inspect
import json
import pathlib
import re
import textwrap

import pytest

import pglib
from pglib import display, validate

BOOK = pathlib.Path(__file__).resolve().parent.parent / "book"


def _displayed() -> list:
    """Every pglib function a chapter shows with show_source(...)."""
    import importlib
    import importlib.util

    names = set()
    for nb in sorted(BOOK.glob("*.ipynb")):
        for cell in json.loads(nb.read_text())["cells"]:
            if cell["cell_type"] == "code":
                names |= set(re.findall(r"show_source\(([^)]*)\)", "".join(cell["source"])))
    objects = []
    for call in sorted(names):
        for name in (n.strip() for n in call.split(",")):
            if not name or "=" in name:
                continue
            parts = name.split(".")
            if parts[0] == "pglib":
                parts = parts[1:]
            if len(parts) == 1:  # e.g. `train`, imported from pglib.practice.train
                parts = ["practice", "train", parts[0]]
            if importlib.util.find_spec(f"pglib.{parts[0]}") is None:  # e.g. checklist.check_x
                parts = next([pkg, *parts] for pkg in ("verify", "practice")
                             if importlib.util.find_spec(f"pglib.{pkg}.{parts[0]}") is not None)
            k = len(parts) - 1  # the longest prefix that is a module, e.g. practice.train
            while k > 1 and importlib.util.find_spec(f"pglib.{'.'.join(parts[:k])}") is None:
                k -= 1
            obj = importlib.import_module(f"pglib.{'.'.join(parts[:k])}")
            for p in parts[k:]:
                obj = getattr(obj, p)
            objects.append(obj)
    return objects


DISPLAYED = _displayed()


def _text(obj, full=False) -> str:
    return display.shown_text(obj, full)


def test_the_book_displays_functions():
    assert len(DISPLAYED) >= 15


@pytest.mark.parametrize("obj", DISPLAYED, ids=lambda o: o.__qualname__)
def test_shown_source_is_the_signature_and_a_contiguous_slice_of_the_real_source(obj):
    real = textwrap.dedent(inspect.getsource(obj)).rstrip()
    shown = _text(obj)
    head, door, formula = display.source_parts(obj)
    assert real == (head + door + formula).rstrip()
    assert _text(obj, full=True) == real
    if not door:
        assert shown == real
        return
    before, note, after = shown.partition(display.OMITTED)
    assert note, "a function with a door shows the note where its checks were"
    assert real.startswith(before.rstrip(" ")), "the signature and docstring come first, unchanged"
    assert after.startswith("\n") and after[1:] in real, "the formula is one contiguous slice of the source"
    assert real.endswith(after[1:]), "and it runs to the end of the function"
    assert "validate." not in after, "no call into pglib.validate is left in the formula"


@pytest.mark.parametrize("obj", DISPLAYED, ids=lambda o: o.__qualname__)
def test_displayed_formulas_fit_the_page(obj):
    head, door, formula = display.source_parts(obj)
    if not door or obj.__module__ == "pglib.practice.train":
        pytest.skip("no door" if not door else "pglib.practice.train belongs to the practice chapter")
    wide = [line for line in formula.splitlines() if len(line) > 88]
    assert not wide, f"{obj.__qualname__}: formula lines wider than 88 characters: {wide}"


def test_the_note_says_how_to_see_the_checks_and_full_shows_them():
    shown = _text(pglib.estimators.reinforce)
    assert "# ... input checks omitted (see the full source: show_source(f, full=True))" in shown
    assert "_check_reinforce" not in shown
    assert "_check_reinforce" in _text(pglib.estimators.reinforce, full=True)
    assert all(len(line) <= 88 for line in shown.splitlines() if "input checks omitted" in line)


def test_a_function_without_a_door_is_shown_whole_and_bad_arguments_are_refused():
    def plain(x):
        """Twice x."""
        return 2 * x

    assert _text(plain) == textwrap.dedent(inspect.getsource(plain)).rstrip()
    with pytest.raises(ValueError, match="at least one"):
        display.show_source()
    with pytest.raises(TypeError, match="full must be True or False"):
        display.show_source(plain, full=1)
    with pytest.raises(TypeError, match="show_source shows functions"):
        display.show_source(3)


def _names_defined_in(tree: ast.AST) -> set:
    """Every name a piece of code binds: assignment targets, loop and comprehension variables,
    ``with ... as``, ``except ... as``, nested functions and classes, and their parameters."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            out.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(node.name)
        elif isinstance(node, ast.arg):
            out.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            out.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            out |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return out


def _free_names_of_shown_slice(obj) -> set:
    """Names the displayed formula reads that neither the shown text nor the function's module
    (or the builtins) defines: they could only come from the omitted door."""
    head, door, formula = display.source_parts(obj)
    if not door:
        return set()
    shown = ast.parse(textwrap.dedent(head + "    pass\n" + textwrap.indent(textwrap.dedent(formula), "    ")))
    read = {n.id for n in ast.walk(shown) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    known = _names_defined_in(shown) | set(vars(builtins)) | set(getattr(obj, "__globals__", {}))
    return read - known


FUNCTIONS = [o for o in DISPLAYED if inspect.isfunction(o)]


@pytest.mark.parametrize("obj", FUNCTIONS, ids=lambda o: o.__qualname__)
def test_displayed_code_stands_alone(obj):
    """A displayed formula uses only the parameters, what it defines itself and module-level names;
    the door it hides may rebind a parameter but never define a name the formula needs."""
    free = _free_names_of_shown_slice(obj)
    assert not free, f"{obj.__qualname__}: the shown formula uses {sorted(free)}, defined only in the hidden checks"


def test_the_stand_alone_check_catches_a_name_defined_at_the_door():
    def leaky(x):
        """Doc."""
        n = validate.positive_int(x, "x")
        return n * 2

    def clean(x):
        """Doc."""
        x = validate.positive_int(x, "x")
        return x * 2

    assert _free_names_of_shown_slice(leaky) == {"n"}
    assert _free_names_of_shown_slice(clean) == set()
