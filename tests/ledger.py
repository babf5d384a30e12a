"""The book's claims ledger: a registry (book/claims.yml) checked against the executed notebooks.

Every claim check in a chapter prints one line ``PASS [claim.id] <measured statistic>`` (see
pglib.claims); in the rendered book that line carries the HTML anchor ``claim-<id with - for .>``.

- ``collect()``  finds every claim line in the committed (nbval-verified) notebook outputs;
- ``registry()`` reads book/claims.yml (id, claim, chapter, evidence);
- ``render()``   produces book/ledger.md, the appendix page; ``python tests/ledger.py --write`` writes it.

tests/test_ledger.py enforces both directions (every registered claim is checked by a cell,
every checked claim is registered) and that book/ledger.md is current.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import re
import sys

import yaml

from pglib.claims import anchor

ROOT = pathlib.Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
REGISTRY = BOOK / "claims.yml"
LEDGER = BOOK / "ledger.md"
LINE = re.compile(r"^(PASS|FAIL) \[([a-z0-9_]+(?:\.[a-z0-9_]+)*)\] (.*)$")
#: The kinds of evidence a claim can rest on, with the sentence the ledger page uses to explain each.
EVIDENCE = {
    "exact identity": "two independent exact computations agree to a stated tolerance (float64)",
    "unbiasedness test": "sampled estimates are tested against an exact value at a stated false-alarm rate, "
                         "and the test does not reject",
    "variance ratio": "the whole 99% confidence interval of a ratio of variances, on the same samples, lies below 1",
    "negative control": "a wrong estimator or a wrong prediction is run through the same check, and the check "
                        "catches it",
    "bias measured": "a biased estimator's mean matches the bias predicted for it exactly, or its exact bias is "
                     "compared with another",
    "inequality": "an exact or sampled quantity satisfies a stated inequality",
    "rate": "a measured rate (an error's slope against the sample size, a growth) matches the predicted one",
    "figure": "a comparison of learning curves over several seeds, shown in the figure above the check",
}


def _output_text(output: dict) -> str:
    if output.get("output_type") == "stream":
        return "".join(output.get("text", ""))
    data = output.get("data", {})
    return "".join(data.get("text/plain", ""))


def collect(book: pathlib.Path = BOOK) -> dict[str, dict]:
    """claim id -> {chapter, status, measured, cell} for every claim line in every notebook's outputs."""
    found: dict[str, dict] = {}
    for nb_path in sorted(book.glob("*.ipynb")):
        nb = json.loads(nb_path.read_text())
        for index, cell in enumerate(nb["cells"]):
            if cell["cell_type"] != "code":
                continue
            for output in cell.get("outputs", []):
                for line in _output_text(output).splitlines():
                    m = LINE.match(line.strip())
                    if m:
                        status, cid, measured = m.groups()
                        if cid in found:
                            raise ValueError(f"claim {cid} is checked twice: {found[cid]['chapter']} and {nb_path.stem}")
                        found[cid] = dict(chapter=nb_path.stem, status=status, measured=measured, cell=index)
    return found


def registry(path: pathlib.Path = REGISTRY) -> list[dict]:
    entries = yaml.safe_load(path.read_text()) or []
    for e in entries:
        missing = {"id", "claim", "chapter", "evidence"} - set(e)
        if missing:
            raise ValueError(f"{path}: entry {e.get('id', e)} lacks {sorted(missing)}")
        if e["evidence"] not in EVIDENCE:
            raise ValueError(f"{path}: entry {e['id']} has evidence {e['evidence']!r}; expected one of {sorted(EVIDENCE)}")
    return entries


def _title(nb_stem: str) -> str:
    nb = json.loads((BOOK / f"{nb_stem}.ipynb").read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            for line in "".join(cell["source"]).splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return nb_stem


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


def render(entries: list[dict] | None = None, found: dict[str, dict] | None = None) -> str:
    entries = registry() if entries is None else entries
    found = collect() if found is None else found
    n_pass = sum(1 for e in entries if found.get(e["id"], {}).get("status") == "PASS")
    lines = [
        "# Appendix: the claims ledger",
        "",
        "Every claim this book makes about policy gradients, the kind of evidence behind it, and the",
        "statistic measured the last time the chapters were executed and verified (`make test` runs every",
        "chapter and compares these outputs). Each row links to the cell that checks the claim.",
        "A negative control is a check that a *wrong* estimator is caught by the same test.",
        "",
        f"**{len(entries)} claims registered; {n_pass} pass.** This page is generated by `tests/ledger.py` from",
        "`book/claims.yml` and the executed notebooks; a test fails if it is out of date.",
        "",
    ]
    chapters: dict[str, list[dict]] = {}
    for e in entries:
        chapters.setdefault(e["chapter"], []).append(e)
    lines += ["| chapter | claims | negative controls | pass |", "|---|---|---|---|"]
    for chapter in sorted(chapters):
        rows = chapters[chapter]
        controls = sum(e["evidence"] == "negative control" for e in rows)
        passing = sum(found.get(e["id"], {}).get("status") == "PASS" for e in rows)
        lines.append(f"| [{_escape(_title(chapter))}]({chapter}.ipynb) | {len(rows)} | {controls} | {passing} |")
    used = sorted({e["evidence"] for e in entries}, key=list(EVIDENCE).index)
    lines += ["", "The kinds of evidence:", ""]
    lines += [f"- **{kind}**: {EVIDENCE[kind]}." for kind in used]
    lines.append("")
    for chapter in sorted(chapters):
        lines += [f"## {_title(chapter)}", "", "| claim | evidence | result: what was measured |", "|---|---|---|"]
        for e in chapters[chapter]:
            f = found.get(e["id"])
            result = f"**{f['status']}** {_escape(f['measured'])}" if f else "**NOT CHECKED** by any cell"
            link = f'<a href="{chapter}.html#{anchor(e["id"])}">{_escape(e["claim"])}</a>'
            breakable = e["id"].replace(".", ".<wbr>")  # long ids may wrap at their dots
            lines.append(f"| {link} <br><code>{breakable}</code> | {e['evidence']} | {result} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="write book/ledger.md")
    parser.add_argument("--unregistered", action="store_true", help="print YAML stubs for checked but unregistered claims")
    args = parser.parse_args(argv)
    if args.unregistered:
        known = {e["id"] for e in registry()} if REGISTRY.exists() else set()
        for cid, f in collect().items():
            if cid not in known:
                print(f"- id: {cid}\n  chapter: {f['chapter']}\n  evidence: TODO\n  claim: TODO  # {f['measured']}")
        return 0
    text = render()
    if args.write:
        LEDGER.write_text(text + "\n")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
