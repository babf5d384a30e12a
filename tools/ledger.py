"""The book's claims ledger: a registry (book/claims.yml) checked against the executed notebooks.

Every claim check in a chapter prints ``PASS [claim.id] <measured>`` (see pglib.claims; long
lines wrap, continuation lines indented) and, in a kernel, stores its record (kind, fail_rate,
statistic, power ...) in the output's metadata under ``pglib.claim``.

- ``collect()``  finds every claim in the committed (nbval-verified) notebook outputs;
- ``registry()`` reads book/claims.yml (id, claim, chapter, evidence, notes);
- ``render()``   produces book/ledger.md, the appendix page;
  ``python tools/ledger.py --write`` writes it.

tests/test_ledger.py enforces both directions (every registered claim is checked by a cell,
every checked claim is registered), the book's false-alarm arithmetic, and that
book/ledger.md is current.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import re
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
for extra in (ROOT, ROOT / "tests"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from notebooks import BOOK, code_cells, output_text, source  # noqa: E402
from pglib.claims import ESTIMATE_FLOOR, anchor, pct  # noqa: E402

REGISTRY = BOOK / "claims.yml"
UNCHECKED = BOOK / "notes_unchecked.yml"
LEDGER = BOOK / "ledger.md"
AUDIT = BOOK / "audit.md"
LINE = re.compile(r"^(PASS|FAIL) \[([a-z0-9_]+(?:\.[a-z0-9_]+)*)\] (.*)$")
#: The book's false-alarm budget, and each chapter notebook's share of it.
BOOK_BUDGET = 0.01
CHAPTER_BUDGET = 0.001
#: The kinds of evidence a claim can rest on, with the sentence the ledger page uses to explain each.
EVIDENCE = {
    "exact identity": "two independent exact computations agree to a stated tolerance (float64)",
    "unbiasedness test": "sampled estimates are tested against an exact value at a stated false-alarm rate, "
    "and the test does not reject; its power is stated",
    "variance ratio": "the whole 99% confidence interval of a ratio of variances, on the same samples, lies below 1",
    "negative control": "a wrong estimator or a wrong prediction is run through the same check, and the check "
    "catches it; its power at the wrong estimator's exact bias is stated",
    "bias measured": "a biased estimator's mean matches the bias predicted for it exactly, or its exact bias is "
    "compared with another",
    "inequality": "an exact or sampled quantity satisfies a stated inequality",
    "rate": "a measured rate (an error's slope against the sample size, a growth) matches the predicted one",
    "figure": "a comparison of learning curves over several seeds, shown in the figure above the check",
    "refusal": "a call that must be refused raises the stated error with the stated message",
}
#: How each check kind is classed on the page.
CLASS = {
    "unbiased": "statistical test",
    "biased": "statistical test",
    "smaller_variance": "interval",
    "close": "exact",
    "holds": "exact",
    "raises": "deterministic run",
    "budget": "exact",
}


def _claim_lines(text: str):
    """(status, id, measured) for each claim line in ``text``, continuation lines joined."""
    current = None
    for raw in text.splitlines():
        m = LINE.match(raw.strip())
        if m:
            if current:
                yield current
            current = list(m.groups())
        elif current and raw.startswith("    ") and raw.strip():
            current[2] += " " + raw.strip()
        else:
            if current:
                yield current
            current = None
    if current:
        yield current


def collect(book: pathlib.Path = BOOK) -> dict[str, dict]:
    """claim id -> {chapter, status, measured, cell, record} for every claim in every notebook."""
    found: dict[str, dict] = {}
    for nb_path in sorted(book.glob("*.ipynb")):
        nb = json.loads(nb_path.read_text())
        for index, cell in code_cells(nb):
            for output in cell.get("outputs", []):
                records = {
                    r["id"]: r
                    for r in output.get("metadata", {}).get("pglib.claim", [])
                }
                for status, cid, measured in _claim_lines(output_text(output)):
                    if cid in found:
                        raise ValueError(
                            f"claim {cid} is checked twice: {found[cid]['chapter']} and {nb_path.stem}"
                        )
                    found[cid] = dict(
                        chapter=nb_path.stem,
                        status=status,
                        measured=measured,
                        cell=index,
                        record=records.get(cid),
                    )
    return found


def registry(path: pathlib.Path = REGISTRY) -> list[dict]:
    entries = yaml.safe_load(path.read_text()) or []
    for e in entries:
        missing = {"id", "claim", "chapter", "evidence"} - set(e)
        if missing:
            raise ValueError(f"{path}: entry {e.get('id', e)} lacks {sorted(missing)}")
        if e["evidence"] not in EVIDENCE:
            raise ValueError(
                f"{path}: entry {e['id']} has evidence {e['evidence']!r}; expected one of {sorted(EVIDENCE)}"
            )
    return entries


def unchecked(path: pathlib.Path = UNCHECKED) -> list[dict]:
    """The notes' technical statements that no claim checks, with the reason."""
    if not path.exists():
        return []
    entries = yaml.safe_load(path.read_text()) or []
    for e in entries:
        missing = {"section", "statement", "reason"} - set(e)
        if missing:
            raise ValueError(f"{path}: entry {e} lacks {sorted(missing)}")
    return entries


def fail_rate(found_entry: dict | None) -> float | None:
    """The chance this check fails a correct build, from its record (None if unknown)."""
    record = (found_entry or {}).get("record")
    return None if record is None else float(record.get("fail_rate") or 0.0)


def budget(found: dict[str, dict]) -> dict[str, float]:
    """Per chapter, the union bound on the chance that a correct build fails there."""
    out: dict[str, float] = {}
    for f in found.values():
        out[f["chapter"]] = out.get(f["chapter"], 0.0) + (fail_rate(f) or 0.0)
    return out


def _title(nb_stem: str) -> str:
    nb = json.loads((BOOK / f"{nb_stem}.ipynb").read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            for line in source(cell).splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return nb_stem


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


def _power(record: dict | None) -> str:
    """The power / tolerance column: what the check could have missed."""
    if record is None:
        return "—"
    kind = record.get("kind")
    if kind == "unbiased":
        along, worst = record.get("detectable_bias_rel"), record.get(
            "detectable_bias_worst_rel"
        )
        if along is not None:
            return (
                f"80% power at bias {pct(along)} (worst {pct(worst)}) of the reference"
            )
        if record.get("detectable_bias_worst") is not None:
            return f"80% power at bias norm {record['detectable_bias_worst']:.2g}"
        return "exact (nothing varies)"
    if kind == "biased":
        return f"power {pct(record['power'])} at its {record.get('fail_rate_basis', 'exact')} bias"
    if kind == "smaller_variance":
        return f"99% CI [{record['ci_low']:.4g}, {record['ci_high']:.4g}]"
    m = re.search(r"(atol=\S+(?: \+ rtol=\S+)?)", record.get("text", ""))
    return m.group(1) if m and kind == "close" else "—"


def _audit_anchors() -> set[str]:
    return (
        set(re.findall(r'id="(audit-[a-z0-9-]+)"', AUDIT.read_text()))
        if AUDIT.exists()
        else set()
    )


def failure_example() -> str:
    """What a failing claim prints: a deliberately wrong estimator, seeded, always the same."""
    import numpy as np

    from pglib import claims

    x = np.random.default_rng(0).normal(size=(20_000, 2)) + [0.05, 0.0]
    try:
        claims.unbiased("example.wrong_estimator", x, np.zeros(2), alpha=0.001)
    except claims.ClaimFailed as exc:
        import textwrap

        return "\n".join(
            textwrap.wrap(str(exc), claims.WIDTH, subsequent_indent="    ")
        )
    finally:
        claims.RECORD.clear()
    raise AssertionError("the failure example did not fail")


def render(
    entries: list[dict] | None = None, found: dict[str, dict] | None = None
) -> str:
    entries = registry() if entries is None else entries
    found = collect() if found is None else found
    notes_gaps = unchecked()
    audit = _audit_anchors()
    n_pass = sum(1 for e in entries if found.get(e["id"], {}).get("status") == "PASS")
    spent = budget(found)
    total = sum(spent.values())
    lines = [
        "# Appendix: the claims ledger",
        "",
        "Every claim this book makes about policy gradients, the kind of evidence behind it, the",
        "statistic measured the last time the chapters were executed and verified (`make test` runs every",
        "chapter and compares these outputs), and **what the check could have missed**: for a test, the",
        "bias it detects with probability 80% (its power); for an interval, its width; for an identity,",
        "its tolerance. Each row links to the cell that checks the claim"
        + (" and to its row in the [seed audit](audit.md)." if audit else "."),
        "",
        f"**{len(entries)} claims registered; {n_pass} pass.** This page is generated by `tools/ledger.py` from",
        "`book/claims.yml` and the executed notebooks; a test fails if it is out of date.",
        "",
        "## The false-alarm budget",
        "",
        "A failing claim stops the build: `make test` re-executes every chapter, and a check that",
        "measures something other than its claim raises, so the cell, the notebook and the test fail.",
        "A statistical check can fail by chance although its claim is true. Each check states that",
        "chance (`fail_rate`: a test's level, one minus a negative control's power at its exact bias,",
        "the chance an interval reaches its bound), and the chance that anything fails is at most",
        f"their sum (the union bound). Each chapter spends at most {pct(CHAPTER_BUDGET)}, so **the whole",
        f"book fails a correct build on at most {pct(BOOK_BUDGET)} of seeds**; summed over every check",
        f"below it is **{pct(total)}**. Only *earned* rates enter the sum: exact levels and powers,",
        "rates computed from exact quantities, and stated finite-sample bounds. A rate estimated",
        "from the data itself (the power at a *measured* bias) is biased low on the runs that pass;",
        "it is shown as *not budgeted*, and such a check is covered by no bound. The tests' levels",
        "hold in the settings the chapters use: see the [calibration appendix](calibration.md)."
        " A test checks this arithmetic"
        + (". The [seed audit](audit.md) can only see gross excess: it says which rates its runs"
           " could detect." if audit else "."),
        "",
        "What a failure looks like (a deliberately biased estimator, mean off by 0.05 in one of two",
        "coordinates, 20,000 samples):",
        "",
        "```text",
        failure_example(),
        "```",
        "",
    ]
    chapters: dict[str, list[dict]] = {}
    for e in entries:
        chapters.setdefault(e["chapter"], []).append(e)
    titles = {chapter: _title(chapter) for chapter in chapters}
    lines += [
        "| chapter | claims | negative controls | pass | false-alarm bound |",
        "|---|---|---|---|---|",
    ]
    for chapter in sorted(chapters):
        rows = chapters[chapter]
        controls = sum(e["evidence"] == "negative control" for e in rows)
        passing = sum(found.get(e["id"], {}).get("status") == "PASS" for e in rows)
        lines.append(
            f"| [{_escape(titles[chapter])}]({chapter}.ipynb) | {len(rows)} | {controls} | {passing} | "
            f"{pct(spent.get(chapter, 0.0))} |"
        )
    used = sorted({e["evidence"] for e in entries}, key=list(EVIDENCE).index)
    lines += ["", "The kinds of evidence:", ""]
    lines += [f"- **{kind}**: {EVIDENCE[kind]}." for kind in used]
    lines.append("")
    for chapter in sorted(chapters):
        lines += [
            f"## {titles[chapter]}",
            "",
            "| claim | evidence | result: what was measured | could have missed | false alarm |",
            "|---|---|---|---|---|",
        ]
        for e in chapters[chapter]:
            f = found.get(e["id"])
            record = f.get("record") if f else None
            result = (
                f"**{f['status']}** {_escape(f['measured'])}"
                if f
                else "**NOT CHECKED** by any cell"
            )
            link = (
                f'<a href="{chapter}.html#{anchor(e["id"])}">{_escape(e["claim"])}</a>'
            )
            breakable = e["id"].replace(
                ".", ".<wbr>"
            )  # long ids may wrap at their dots
            extra = ""
            if e.get("notes") and e["notes"] != "none":
                extra += f"<br><em>notes: {_escape(str(e['notes']))}</em>"
            audit_id = "audit-" + anchor(e["id"])
            if audit_id in audit:
                extra += f' <a href="audit.html#{audit_id}">audit</a>'
            kind = CLASS.get(record["kind"], record["kind"]) if record else "—"
            rate = fail_rate(f)
            rate_text = "—" if rate is None else pct(rate)
            if record and record.get("budgeted") is False:
                # an estimate from the data (or a rate stated without a basis): not budgeted
                est = record.get("fail_rate_estimated") or 0.0
                rate_text = f"not budgeted ({'<' if est <= ESTIMATE_FLOOR else '≈'} {pct(est)})"
            lines.append(
                f"| {link} <br><code>{breakable}</code>{extra} | {e['evidence']} ({kind}) | {result} | "
                f"{_escape(_power(record))} | {rate_text} |"
            )
        lines.append("")
    lines += ["## What the notes say that no claim checks", ""]
    if notes_gaps:
        lines += [
            "| section of the notes | statement (paraphrased) | why it is not checked |",
            "|---|---|---|",
        ]
        lines += [
            f"| {_escape(g['section'])} | {_escape(g['statement'])} | {_escape(g['reason'])} |"
            for g in notes_gaps
        ]
    else:
        lines.append(
            "Every technical statement of the notes is checked by some claim above."
        )
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="write book/ledger.md")
    parser.add_argument(
        "--unregistered",
        action="store_true",
        help="print YAML stubs for checked but unregistered claims",
    )
    args = parser.parse_args(argv)
    if args.unregistered:
        known = {e["id"] for e in registry()} if REGISTRY.exists() else set()
        for cid, f in collect().items():
            if cid not in known:
                print(
                    f"- id: {cid}\n  chapter: {f['chapter']}\n  evidence: TODO\n  claim: TODO  # {f['measured']}"
                )
        return 0
    text = render()
    if args.write:
        LEDGER.write_text(text + "\n")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
