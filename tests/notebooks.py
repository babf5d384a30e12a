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


#: What nbval compares of an output: every mime type except pictures (and metadata, never compared).
NOT_COMPARED = {"image/png", "image/jpeg", "image/svg+xml", "application/vnd.jupyter.widget-view+json"}
#: Cells whose outputs are machine-dependent by design (timings); nbval skips them, and so does this.
IGNORE_TAGS = {"nbval-ignore-output", "nbval-skip"}


def sanitizers(path: pathlib.Path = ROOT / "tests" / "nbval_sanitize.cfg") -> list[tuple[str, str]]:
    """The ``regex:`` / ``replace:`` pairs of the nbval sanitizer file, in order."""
    pairs, regex = [], None
    for line in path.read_text().splitlines():
        if line.startswith("regex:"):
            regex = line[len("regex:"):].strip()
        elif line.startswith("replace:") and regex is not None:
            pairs.append((regex, line[len("replace:"):].strip()))
            regex = None
    return pairs


def compared_outputs(cell: dict, patterns: list[tuple[str, str]]) -> dict[str, list[str]]:
    """A code cell's outputs as nbval compares them: sanitized text per stream name or mime type.

    Streams are joined per name (a kernel may split one print into several messages)."""
    import re

    def clean(text) -> str:
        text = "".join(text) if isinstance(text, list) else str(text)
        for regex, replace in patterns:
            text = re.sub(regex, replace, text)
        return text

    out: dict[str, list[str]] = {}
    streams: dict[str, str] = {}
    for output in cell.get("outputs", []):
        kind = output.get("output_type")
        if kind == "stream":
            streams[output.get("name", "stdout")] = streams.get(output.get("name", "stdout"), "") \
                + clean(output.get("text", ""))
        elif kind == "error":
            out.setdefault("error", []).append(f"{output.get('ename')}: {output.get('evalue')}")
        else:
            for mime, value in sorted(output.get("data", {}).items()):
                if mime not in NOT_COMPARED:
                    out.setdefault(mime, []).append(clean(value))
    for name, text in streams.items():
        out[f"stream/{name}"] = [text]
    return out


def output_mismatches(committed: dict, fresh: dict, skip_first: bool = True) -> list[str]:
    """Code cells whose compared outputs differ between two runs of one notebook, as readable lines.

    ``skip_first`` leaves out the setup cell (on a fresh machine it installs pglib and says so)."""
    patterns = sanitizers()
    old, new = list(code_cells(committed)), list(code_cells(fresh))
    if [source(c) for _, c in old] != [source(c) for _, c in new]:
        return ["the two notebooks do not have the same code cells"]
    problems = []
    for n, ((index, a), (_, b)) in enumerate(zip(old, new)):
        if (skip_first and n == 0) or tags(a) & IGNORE_TAGS:
            continue
        want, got = compared_outputs(a, patterns), compared_outputs(b, patterns)
        if want != got:
            for key in sorted(set(want) | set(got)):
                if want.get(key) != got.get(key):
                    problems.append(f"cell {index} [{key}]: committed {want.get(key)!r:.600}\n"
                                    f"    fresh     {got.get(key)!r:.600}")
    return problems
