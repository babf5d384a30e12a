"""How long each chapter is to read: lesson words and visible code lines.

    python tools/lesson_size.py [--html _build/html] [--json FILE]

For every chapter notebook ``book/NN_name.ipynb``:

- **words**: the words of its markdown cells, outside the evidence (a section whose heading
  names the false-alarm budget or the evidence, and everything after such a heading at the
  same level), with display math, inline math, code spans, fenced blocks and directive
  options left out;
- **visible code lines** in the built page ``_build/html/book/NN_name.html`` (needs
  ``jupyter-book build``): the non-empty lines of every code cell's input that a reader sees
  without opening anything (not inside a folded ``<details>``), and, separately, the lines
  of library source that ``show_source`` displays as output.

The issue's targets (issue 23): at most 2,500 words in chapters 1-5, 3,000 in 6-10, and at
most 60 visible lines of code per chapter.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from notebooks import CHAPTERS, source  # noqa: E402

EVIDENCE_HEADING = re.compile(r"^(#+)\s.*(false-alarm budget|evidence)", re.I)
HEADING = re.compile(r"^(#+)\s")
WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*")


def prose(markdown: str) -> str:
    """Markdown with math, code and directive options removed (what is read as words)."""
    text = re.sub(r"\$\$.*?\$\$", " ", markdown, flags=re.S)
    text = re.sub(r"```\{(?:figure|code-cell)[^`]*?```", " ", text, flags=re.S)
    text = re.sub(r"```(?!\{).*?```", " ", text, flags=re.S)  # plain code blocks
    text = re.sub(r"^```.*$", " ", text, flags=re.M)  # directive fences (their body is prose)
    text = re.sub(r"^:[\w-]+:.*$", " ", text, flags=re.M)  # directive options
    text = re.sub(r"\$[^$\n]+\$", " ", text)
    text = re.sub(r"\{[\w:-]+\}`[^`]*`", " ", text)  # roles: {cite:p}`x`, {prf:ref}`y`
    text = re.sub(r"`[^`]*`", " ", text)
    text = re.sub(r"\]\([^)]*\)", "]", text)  # link targets
    text = re.sub(r"<[^>]+>", " ", text)
    return text


def lesson_words(path: pathlib.Path) -> int:
    cells = json.loads(path.read_text())["cells"]
    words, evidence_level = 0, None
    for cell in cells:
        if cell["cell_type"] != "markdown":
            continue
        for block in re.split(r"(?m)^(?=#+\s)", source(cell)):
            first = block.splitlines()[0] if block.strip() else ""
            heading = HEADING.match(first)
            if heading:
                level = len(heading.group(1))
                if evidence_level is not None and level <= evidence_level:
                    evidence_level = None
                if EVIDENCE_HEADING.match(first):
                    evidence_level = level
            if evidence_level is None:
                words += len(WORD.findall(prose(block)))
    return words


def visible_code_lines(page: pathlib.Path) -> tuple[int, int]:
    """(input lines, displayed library-source lines) a reader sees on the built page."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(page.read_text(), "html.parser")
    inputs = displayed = 0
    for cell in soup.select("div.cell"):
        for box in cell.select("div.cell_input"):
            if box.find_parent("details") is None:
                for pre in box.select("pre"):
                    inputs += sum(1 for line in pre.get_text().splitlines() if line.strip())
        for out in cell.select("div.cell_output div.highlight pre"):
            if out.find_parent("details") is None:
                displayed += sum(1 for line in out.get_text().splitlines() if line.strip())
    return inputs, displayed


def measure(html: pathlib.Path) -> dict[str, dict]:
    table = {}
    for path in CHAPTERS:
        row = {"words": lesson_words(path)}
        page = html / "book" / f"{path.stem}.html"
        if page.exists():
            row["code_lines"], row["shown_source_lines"] = visible_code_lines(page)
        table[path.stem] = row
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html", type=pathlib.Path, default=ROOT / "_build" / "html")
    parser.add_argument("--json", type=pathlib.Path, help="also write the table as JSON")
    args = parser.parse_args(argv)
    table = measure(args.html)
    print(f"{'chapter':<30}{'words':>7}{'code':>7}{'source':>8}")
    for name, row in table.items():
        print(f"{name:<30}{row['words']:>7}{row.get('code_lines', '-'):>7}"
              f"{row.get('shown_source_lines', '-'):>8}")
    total = {k: sum(r.get(k, 0) for r in table.values()) for k in ("words", "code_lines", "shown_source_lines")}
    print(f"{'total':<30}{total['words']:>7}{total['code_lines']:>7}{total['shown_source_lines']:>8}")
    if args.json:
        args.json.write_text(json.dumps(table, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
