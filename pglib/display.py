"""Show pglib's own source in the book, so the text and the library cannot drift.

A pglib function has two parts: its *door* (the checks of its arguments, calls into
:mod:`pglib.validate` and ``if ...: raise`` lines) and its *formula* (the computation, written
as the equation reads). :func:`show_source` shows the signature, the docstring and the formula,
with one comment line where the door was left out; ``full=True`` shows everything. What is shown
is always the real source: the head and the formula are two contiguous slices of it.
"""

from __future__ import annotations

import ast
import inspect
import textwrap

__all__ = ["show_source", "shown_text", "source_parts", "OMITTED"]

#: the line that replaces the door of a function (indented like its body)
OMITTED = "# ... input checks omitted (see the full source: show_source(f, full=True))"


def _is_check_call(node: ast.AST) -> bool:
    """A call into pglib.validate, or to a helper whose name says it checks (``_check*``, ``_need*``,
    ``need_*``)."""
    if not isinstance(node, ast.Call):
        return False
    f = node.func
    if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id == "validate":
        return True
    name = f.attr if isinstance(f, ast.Attribute) else (f.id if isinstance(f, ast.Name) else "")
    return name.startswith(("_check", "_need", "need_", "check_gamma", "check_logits"))


def _is_door(stmt: ast.stmt) -> bool:
    if isinstance(stmt, ast.If) and not stmt.orelse and all(isinstance(s, ast.Raise) for s in stmt.body):
        return True
    if isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.Expr)):
        return any(_is_check_call(n) for n in ast.walk(stmt))
    return False


def source_parts(obj) -> tuple[str, str, str]:
    """``(head, door, formula)``: the source of a function split into signature + docstring, the
    checks at its door, and the rest. ``door`` is ``""`` when the function has none (and for
    classes, whose whole source is the head)."""
    source = textwrap.dedent(inspect.getsource(obj))
    lines = source.splitlines(keepends=True)
    tree = ast.parse(source)
    fn = tree.body[0]
    if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return source, "", ""
    body = fn.body
    start = 0
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
            and isinstance(body[0].value.value, str):
        start = 1
    head_end = body[start - 1].end_lineno if start else fn.body[0].lineno - 1  # 1-based last line of the head
    n_door = 0
    while start + n_door < len(body) - 1 and _is_door(body[start + n_door]):
        n_door += 1
    if n_door == 0:
        return "".join(lines[:head_end]), "", "".join(lines[head_end:])
    door_end = body[start + n_door - 1].end_lineno
    return "".join(lines[:head_end]), "".join(lines[head_end:door_end]), "".join(lines[door_end:])


def shown_text(obj, full: bool = False) -> str:
    """The text :func:`show_source` shows for one function or class."""
    head, door, formula = source_parts(obj)
    if full or not door:
        return (head + door + formula).rstrip()
    while formula.startswith("\n"):  # a blank line after the door
        formula = formula[1:]
    first = next(line for line in door.splitlines() if line.strip())
    indent = first[: len(first) - len(first.lstrip())]
    return (head + indent + OMITTED + "\n" + formula).rstrip()


def show_source(*objects, full: bool = False) -> object:
    """Display the real source of functions/classes (syntax-highlighted in Jupyter, plain text elsewhere).

    By default a function's door (its input checks) is replaced by one comment line,
    ``# ... input checks omitted (...)``; ``full=True`` shows the checks too.

    Example: ``show_source(pglib.returns.reward_to_go)``.
    """
    if not objects:
        raise ValueError("show_source needs at least one function, class or module")
    if not isinstance(full, bool):
        raise TypeError(f"full must be True or False; got {full!r}")
    for obj in objects:
        if not (inspect.isfunction(obj) or inspect.isclass(obj) or inspect.ismethod(obj) or inspect.ismodule(obj)):
            raise TypeError(f"show_source shows functions, classes and modules; got {type(obj).__name__}")
    text = "\n\n".join(shown_text(obj, full) if not inspect.ismodule(obj) else inspect.getsource(obj).rstrip()
                       for obj in objects)
    try:
        from IPython.display import Code
    except ImportError:  # outside Jupyter
        print(text)
        return None
    return Code(text, language="python")
