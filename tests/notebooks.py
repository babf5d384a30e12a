"""Reading the chapter notebooks as JSON: the pieces every book test needs (no kernel, no build)."""

from __future__ import annotations

import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
#: The chapter notebooks, ``book/NN_name.ipynb``, in reading order.
CHAPTERS = sorted(BOOK.glob("[0-9][0-9]_*.ipynb"))


def source(cell: dict) -> str:
    """A cell's source as one string (nbformat allows a string or a list of lines)."""
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def code_cells(nb: dict):
    """(index in ``nb["cells"]``, cell) for every code cell, in order."""
    return ((index, cell) for index, cell in enumerate(nb["cells"]) if cell["cell_type"] == "code")


def tags(cell: dict) -> set[str]:
    """A cell's tags (``metadata.tags``)."""
    return set(cell.get("metadata", {}).get("tags", []))


def output_text(output: dict) -> str:
    """The text of one output: a stream's text, or the ``text/plain`` of a result or display."""
    if output.get("output_type") == "stream":
        text = output.get("text", "")
    else:
        text = output.get("data", {}).get("text/plain", "")
    return "".join(text) if isinstance(text, list) else text
