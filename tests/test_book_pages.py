"""Fast checks of each chapter page's shape, read from the notebooks (no build, no kernel).

- every chapter opens with a ``What you will verify`` admonition, in the markdown before its first code cell;
- no cell prints more than a screen: at most ``MAX_LINES`` lines and ``MAX_CHARS`` characters of text
  (``text/plain`` plus streams, per cell; images do not count);
- every cell with a figure output has alt text in its metadata (``mystnb.image.alt``), a description,
  not a file name (the browser test checks the same thing on the built pages);
- each notebook has exactly one ``# `` title, it is the first heading, and headings never skip a level
  (``#`` then ``###``), because screen readers navigate by them;
- no inline ``$...$`` math is broken across lines by a line that markdown reads as a list item or a
  heading (``+ x$`` at the start of a line ends the paragraph, and the TeX is left as raw text).
"""

from __future__ import annotations

import re

from notebooks import CHAPTERS, code_cells, output_text, source

MAX_LINES = 60
MAX_CHARS = 4000
IMAGE_TYPES = ("image/png", "image/jpeg", "image/svg+xml", "image/gif")
ADMONITION = re.compile(r"^(`{3,}|~{3,})\{admonition\}\s+What you will verify\s*$", re.M | re.I)
FENCE = re.compile(r"^\s*(`{3,}|~{3,})")
HEADING = re.compile(r"^(#{1,6})\s+(\S.*)$")
FILE_NAME_ALT = re.compile(r"^[\w./-]+\.(?:png|jpe?g|svg|gif)$", re.I)
BLOCK_START = re.compile(r"^\s{0,3}(?:[-+*]\s|\d+[.)]\s|#{1,6}\s|>)")


def unfenced_lines(markdown: str):
    """The lines of a markdown cell outside fenced blocks (code, directives such as prf:proof)."""
    fence = None
    for line in markdown.splitlines():
        m = FENCE.match(line)
        if m:
            marker = m.group(1)
            if fence is None:
                fence = marker
            elif marker[0] == fence[0] and len(marker) >= len(fence) and line.strip() == marker:
                fence = None
            continue
        if fence is None:
            yield line


def headings(markdown: str) -> list[tuple[int, str]]:
    """ATX headings of a markdown cell, outside fenced blocks."""
    return [(len(h.group(1)), h.group(2).strip()) for line in unfenced_lines(markdown) if (h := HEADING.match(line))]


def test_there_are_chapters():
    assert CHAPTERS, "no book/NN_*.ipynb chapters found"


def test_what_you_will_verify_comes_first(chapter):
    name, nb = chapter
    before_code = []
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            break
        if cell["cell_type"] == "markdown":
            before_code.append(source(cell))
    assert any(ADMONITION.search(text) for text in before_code), (
        f"{name}: no 'What you will verify' admonition in the markdown before the first code cell; start the chapter "
        "with\n```{admonition} What you will verify\n:class: tip\n- ...\n```"
    )


def test_no_output_longer_than_a_screen(chapter):
    name, nb = chapter
    problems = []
    for index, cell in code_cells(nb):
        text = "".join(output_text(o) for o in cell.get("outputs", []))
        lines = len(text.splitlines())
        if lines > MAX_LINES or len(text) > MAX_CHARS:
            first = source(cell).strip().splitlines()[:1]
            problems.append(f"cell {index} ({first[0][:50] if first else ''!r}): {lines} lines, {len(text)} characters")
    assert not problems, (
        f"{name}: outputs longer than a screen (limit {MAX_LINES} lines / {MAX_CHARS} characters of text per cell); "
        "print less or summarize:\n  " + "\n  ".join(problems)
    )


def test_figures_have_alt_text(chapter):
    name, nb = chapter
    problems = []
    for index, cell in code_cells(nb):
        if not any(t in o.get("data", {}) for o in cell.get("outputs", []) for t in IMAGE_TYPES):
            continue
        alt = cell.get("metadata", {}).get("mystnb", {}).get("image", {}).get("alt", "")
        alt = alt.strip() if isinstance(alt, str) else ""
        if not alt:
            problems.append(f"cell {index}: a figure without alt text")
        elif FILE_NAME_ALT.match(alt) or len(alt.split()) < 3:
            problems.append(f"cell {index}: alt text {alt!r} does not describe the figure")
    assert not problems, (
        f"{name}: " + "; ".join(problems)
        + '. Give each figure cell the metadata {"mystnb": {"image": {"alt": "what the figure shows"}}}'
    )


def test_one_title_and_no_skipped_heading_levels(chapter):
    name, nb = chapter
    found = [h for cell in nb["cells"] if cell["cell_type"] == "markdown" for h in headings(source(cell))]
    assert found, f"{name}: no headings at all"
    titles = [text for level, text in found if level == 1]
    assert len(titles) == 1, f"{name}: expected exactly one '# ' title, found {len(titles)}: {titles}"
    assert found[0][0] == 1, f"{name}: the first heading is {'#' * found[0][0]} {found[0][1]!r}, not the '# ' title"
    skips = [f"{'#' * a} {ta!r} followed by {'#' * b} {tb!r}" for (a, ta), (b, tb) in zip(found, found[1:]) if b > a + 1]
    assert not skips, f"{name}: heading levels skip: " + "; ".join(skips)


def broken_inline_math(markdown: str) -> list[str]:
    """Lines that start a list item, heading or quote while an inline ``$`` math span is still open."""
    problems, open_dollar, display = [], False, False
    for line in unfenced_lines(markdown):
        if not line.strip():
            open_dollar = False  # a blank line ends the paragraph (and any broken span)
            continue
        if display or line.strip().startswith("$$"):
            display = (line.count("$$") % 2 == 1) != display
            continue
        if open_dollar and BLOCK_START.match(line):
            problems.append(line.strip()[:70])
        text = re.sub(r"`[^`]*`", "", line.replace("\\$", ""))
        if text.count("$") % 2 == 1:
            open_dollar = not open_dollar
    return problems


def test_inline_math_is_not_broken_by_a_line_start(chapter):
    name, nb = chapter
    problems = [f"cell {i}: {line!r}" for i, cell in enumerate(nb["cells"]) if cell["cell_type"] == "markdown"
                for line in broken_inline_math(source(cell))]
    assert not problems, (
        f"{name}: inline $...$ math continues on a line that markdown reads as a list item, heading or quote, so the "
        "math is cut and shown as raw TeX; reflow the line (or use $$...$$):\n  " + "\n  ".join(problems)
    )
