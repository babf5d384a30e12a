"""Aggregate a seed audit (tools/audit.py) and write the book's appendix page on it.

    python tools/audit_report.py benchmarks/results/audit   # writes book/audit.md
    python tools/audit_report.py /tmp/a --page - --figures /tmp  # page to stdout

Per claim: failures / runs with a Clopper-Pearson interval
(``pglib.stats.binomial_interval``) beside the claim's stated ``fail_rate`` (the mean
over runs, since a negative control's rate depends on the seed); a claim whose interval
lies wholly above its stated rate fails more often than it says. Per chapter: the share
of seeds on which any claim failed, beside the chapter's budget (0.1%). Book-wide: the
share of audit seeds on which any chapter failed, beside the book's 1%. Plus p-value
histograms per test family and every failure, with its FAIL line. Each claim row carries
the HTML id ``audit-<pglib.claims.anchor(id)>``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import html
import pathlib
import re
import sys
import textwrap

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import audit  # noqa: E402  (tools/audit.py: the results format)
from pglib.claims import anchor  # noqa: E402
from pglib.stats import binomial_interval  # noqa: E402

ROOT = audit.ROOT
PAGE = ROOT / "book" / "audit.md"
FIGURES = ROOT / "book" / "figures"
#: Budgets the book states: each chapter fails a correct build on at most 0.1% of
#: seeds, the whole book on at most 1%.
CHAPTER_BUDGET = 0.001
BOOK_BUDGET = 0.01
CONFIDENCE = 0.95


@dataclasses.dataclass
class ClaimStats:
    id: str
    chapter: str
    kind: str | None
    runs: int = 0
    failures: int = 0
    not_run: int = 0
    rates: list = dataclasses.field(default_factory=list)
    p_values: list = dataclasses.field(default_factory=list)
    family: str | None = None

    @property
    def stated(self) -> float | None:
        """The stated fail_rate: the mean over the runs (None if no run stated one)."""
        known = [r for r in self.rates if r is not None]
        return sum(known) / len(known) if known else None

    @property
    def interval(self) -> tuple[float, float] | None:
        return (
            binomial_interval(self.failures, self.runs, CONFIDENCE)
            if self.runs
            else None
        )

    @property
    def too_often(self) -> bool:
        """The interval of the failure rate lies wholly above the stated rate."""
        return (
            bool(self.runs)
            and self.stated is not None
            and self.interval[0] > self.stated
        )


@dataclasses.dataclass
class Share:
    """k of n seeds with a failure, its interval, and the rate the book states."""

    k: int
    n: int
    budget: float
    stated: float | None = None

    @property
    def interval(self) -> tuple[float, float] | None:
        return binomial_interval(self.k, self.n, CONFIDENCE) if self.n else None


def final_runs(lines: list[dict]) -> dict[tuple[str, int], dict]:
    """(chapter, seed) -> its final result line (the last, should there be two)."""
    return {(r["chapter"], r["seed"]): r for r in lines if r.get("final")}


#: What the page calls the checks of each kind that has a p-value.
FAMILIES = {"unbiased": "no-bias tests", "biased": "negative controls"}


def _family(record: dict) -> str | None:
    if record.get("p_value") is None:
        return None
    kind = FAMILIES.get(record.get("kind"), str(record.get("kind")))
    method = record.get("method")
    return f"{kind} ({method})" if method else kind


def claim_stats(runs: dict[tuple[str, int], dict]) -> dict[str, ClaimStats]:
    """Per claim id: runs (checks made), failures, not-run count, rates, p-values."""
    stats: dict[str, ClaimStats] = {}
    for (chapter, _seed), run in sorted(runs.items()):
        last = {
            rec["id"]: rec for rec in run.get("claims", [])
        }  # a rerun cell counts once
        for cid, rec in last.items():
            s = stats.setdefault(cid, ClaimStats(cid, chapter, rec.get("kind")))
            s.runs += 1
            s.failures += not rec.get("passed", False)
            s.rates.append(rec.get("fail_rate"))
            if rec.get("p_value") is not None:
                s.p_values.append(float(rec["p_value"]))
                s.family = _family(rec)
        for cid in run.get("not_run", []):
            stats.setdefault(cid, ClaimStats(cid, chapter, None)).not_run += 1
    return stats


def chapter_shares(runs: dict, claims: dict[str, ClaimStats]) -> dict[str, Share]:
    """Per chapter: seeds with a claim failure among seeds that ran to a result (no
    fault)."""
    shares: dict[str, Share] = {}
    for (chapter, _seed), run in sorted(runs.items()):
        s = shares.setdefault(chapter, Share(0, 0, CHAPTER_BUDGET))
        if run["status"] != "fault":
            s.n += 1
            s.k += run["status"] == "claim_failed"
    for chapter, s in shares.items():
        rates = [
            c.stated
            for c in claims.values()
            if c.chapter == chapter and c.stated is not None
        ]
        s.stated = sum(rates) if rates else None
    return shares


def book_share(runs: dict, shares: dict[str, Share]) -> Share:
    """Seeds on which every chapter ran to a result; k of them had a failure."""
    chapters = sorted({c for c, _ in runs})
    seeds = sorted({s for _, s in runs})
    k = n = 0
    for seed in seeds:
        these = [runs.get((c, seed)) for c in chapters]
        if all(r is not None and r["status"] != "fault" for r in these):
            n += 1
            k += any(r["status"] == "claim_failed" for r in these)
    stated = [s.stated for s in shares.values() if s.stated is not None]
    return Share(k, n, BOOK_BUDGET, sum(stated) if stated else None)


# ---------------------------------------------------------------- the page


def _pct(x: float | None) -> str:
    if x is None:
        return "n/a"
    if x == 0:
        return "0%"
    return f"{x * 100:.2g}%" if x * 100 < 10 else f"{x * 100:.0f}%"


def _ci(interval) -> str:
    return "n/a" if interval is None else f"[{_pct(interval[0])}, {_pct(interval[1])}]"


def _code_id(cid: str) -> str:
    return "<code>" + ".<wbr>".join(html.escape(p) for p in cid.split(".")) + "</code>"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _chapter_titles() -> dict[str, str]:
    titles = {}
    for path in audit.chapter_paths():
        nb = audit._read(path)
        for cell in nb["cells"]:
            if cell["cell_type"] == "markdown":
                first = audit.nbread.source(cell).strip().splitlines()
                if first and first[0].startswith("# "):
                    titles[path.stem] = first[0][2:].strip()
                    break
    return titles


def _draw(family: str, ps, path: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import numpy as np

    fig, ax = plt.subplots(figsize=(6, 2.6), dpi=200)
    style = dict(color="#4c72b0", edgecolor="white")
    if family.startswith(FAMILIES["biased"]):  # p-values near 0: show their exponent
        ax.hist(np.log10(np.clip(ps, 1e-16, 1.0)), bins=32, range=(-16, 0), **style)
        ax.set_xlabel("log10 p-value (p < 1e-16 counted at -16)")
        ax.set_title(f"{family}: {len(ps)} p-values")
    else:
        ax.hist(ps, bins=20, range=(0, 1), **style)
        ax.axhline(len(ps) / 20, color="black", lw=1, ls="--")
        ax.set_xlabel("p-value")
        ax.set_title(f"{family}: {len(ps)} p-values; dashed: uniform", fontsize=11)
    ax.set_ylabel("checks")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)


def histograms(
    claims: dict[str, ClaimStats], figures: pathlib.Path, draw: bool = True
) -> list[tuple[str, str, int, float]]:
    """One PNG per test family (drawn into ``figures`` when ``draw``): a list of
    (family, file name, number of p-values, KS p-value against the uniform)."""
    import numpy as np
    import scipy.stats

    families: dict[str, list[float]] = {}
    for c in claims.values():
        if c.family and c.p_values:
            families.setdefault(c.family, []).extend(c.p_values)
    made = []
    for family, ps in sorted(families.items()):
        name = "audit_pvalues_" + re.sub(r"[^a-z0-9]+", "_", family.lower()).strip("_")
        ps = np.clip(np.asarray(ps, dtype=float), 0.0, 1.0)
        if draw:
            _draw(family, ps, pathlib.Path(figures) / f"{name}.png")
        ks = float(scipy.stats.kstest(ps, "uniform").pvalue)
        made.append((family, f"{name}.png", len(ps), ks))
    return made


INTRO = (
    "Each chapter is committed with one seed, so its printed checks show one draw. "
    "This page shows many: every chapter notebook was executed again, top to bottom, "
    "at seeds it was never committed with, and every claim check was recorded, each "
    "measured failure rate beside the stated one. What such an audit can show is "
    "limited by its number of runs: the stated rates are at most 0.1% per chapter, "
    "far below what a few dozen seeds can resolve, so a clean audit rules out only "
    "gross excess (a chapter that fails several percent of the time, a check that "
    "cannot run at other seeds). The next section says which rates these runs could "
    "have seen; the stated rates themselves are earned by exact computation and by "
    "the simulations of the [calibration appendix](calibration.md), not here."
)

#: Audit seeds from here on were never used while the chapters were being fixed: a run
#: on them is a held-out test (tools/audit.py --first-seed).
HELD_OUT_BASE = audit.HELD_OUT_BASE
#: Where a held-out pass writes; the page reports it once it holds results.
HELD_OUT = ROOT / "benchmarks" / "results" / "audit_heldout"


def default_out() -> pathlib.Path:
    """The audit the page reports: the held-out pass once it exists, else the development
    seeds' audit."""
    return HELD_OUT if (HELD_OUT / audit.RESULTS).exists() else audit.DEFAULT_OUT


def _zero_bound(n: int, confidence: float = CONFIDENCE) -> float:
    """The largest rate that 0 failures in ``n`` runs does not rule out (one-sided)."""
    return 1.0 - (1.0 - confidence) ** (1.0 / n) if n else 1.0


def _seen_at(n: int, power: float = 0.8) -> float:
    """The failure rate that shows at least one failure in ``n`` runs with ``power``."""
    return 1.0 - (1.0 - power) ** (1.0 / n) if n else 1.0


def _runs_needed(rate: float, confidence: float = CONFIDENCE) -> int:
    """Clean runs needed before 0 failures rules out ``rate`` (one-sided)."""
    import math

    return math.ceil(math.log(1.0 - confidence) / math.log(1.0 - rate))


def _reach_section(runs, claims, shares, book) -> list[str]:
    """What these runs can and cannot show: the smallest rates they could detect."""
    seeds = sorted({s for _, s in runs})
    held = [s for s in seeds if s >= HELD_OUT_BASE]
    per_claim = sorted(c.runs for c in claims.values() if c.runs)
    per_chapter = sorted(s.n for s in shares.values() if s.n)
    n_claim = per_claim[len(per_claim) // 2] if per_claim else 0
    n_chapter = min(per_chapter) if per_chapter else 0
    conf = f"{CONFIDENCE * 100:g}%"
    md = ["## What these runs can and cannot show", ""]
    if held and len(held) == len(seeds):
        md += _para(
            f"All {len(seeds)} seeds ({seeds[0]}–{seeds[-1]}) are held out: none was "
            "used while the chapters were being fixed, so these runs test the final "
            "chapters as a reader would run them."
        )
    else:
        md += _para(
            f"The seeds {seeds[0]}–{seeds[-1]} are development seeds: failures found on "
            "them were fixed and the chapters rerun on the same seeds (see *Superseded "
            "failures*), so these runs are not a held-out test. A held-out pass uses "
            f"seeds from {HELD_OUT_BASE} on: `make audit AUDIT_FIRST_SEED="
            f"{HELD_OUT_BASE} AUDIT_OUT=benchmarks/results/audit_heldout`."
        )
    md += _para(
        f"A check that ran {n_claim} times without failing (the typical claim here) "
        f"has a failure rate of at most {_pct(_zero_bound(n_claim))} ({conf}, "
        f"one-sided); a rate of {_pct(_seen_at(n_claim))} would show at least one "
        f"failure with probability 80%. Per chapter, with {n_chapter} seeds, the same "
        f"numbers are {_pct(_zero_bound(n_chapter))} and {_pct(_seen_at(n_chapter))}: "
        f"a chapter failing 1% of the time shows no failure in {n_chapter} runs with "
        f"probability {_pct(0.99 ** n_chapter)}. The chapters state at most "
        f"{_pct(CHAPTER_BUDGET)}; this audit cannot confirm that, only rule out rates "
        "above the bounds just given."
    )
    need = _runs_needed(BOOK_BUDGET)
    md += _para(
        f"Book-wide: {book.n} complete book runs. Ruling out a book-wide rate of "
        f"{_pct(BOOK_BUDGET)} with no failure at all takes {need} clean book runs "
        f"({conf}, one-sided); these runs are {need - book.n if need > book.n else 0} "
        "short of that, and bound the book-wide rate by "
        f"{_pct(_zero_bound(book.n) if book.k == 0 else book.interval[1])}."
    )
    return md


def _superseded_section(lines, runs, titles) -> list[str]:
    """Failures of earlier versions: in the raw results, not in the final runs."""
    final = {id(r) for r in runs.values()}
    old = sorted(
        (r for r in lines if r["status"] == "claim_failed" and id(r) not in final),
        key=lambda r: (r["chapter"], r["seed"], r.get("attempt", 0)),
    )
    md = ["## Superseded failures", ""]
    if not old:
        return md + _para("Every failure recorded in the raw results is shown above.")
    md += _para(
        f"The raw results (`{audit.RESULTS}`, {len(lines)} attempts) hold {len(old)} "
        "failures of earlier versions of the chapters, since rerun on the same seeds; "
        "the tables above keep only the final runs. Each is listed with the version "
        "it ran (the notebook's hash) and what was changed."
    )
    for r in old:
        cid = r.get("failed_claim") or "?"
        title = html.escape(titles.get(r["chapter"], r["chapter"]))
        version = (r.get("notebook_hash") or "?")[:8]
        when = (r.get("finished") or "?")[:10]
        md += [f"- {title}, seed {r['seed']}, version `{version}` ({when}): "
               f"{_code_id(cid)}. {_fix(cid)}"]
        md += _block(r.get("fail_line") or "")
    return md


def _fix(cid: str) -> str:
    if cid.endswith(".budget"):
        return ("A budget failure: the sum included rates estimated from the data (a "
                "control's power at its measured bias), which vary with the seed. Fixed in "
                "`pglib.claims`: only earned rates are budgeted (exact, computed from exact "
                "quantities, or a stated bound); estimates are reported beside them.")
    return "See the chapter's history for the change."
CLAIMS_NOTE = (
    "*Failures / runs* counts the seeds on which the check ran; the checks after a "
    "failed one in the same notebook do not run (column *not run*). The stated rate is "
    "the check's own `fail_rate`, averaged over the runs: a negative control's rate "
    "depends on the seed."
)
PVALUE_NOTE = (
    "For a no-bias test whose claim is true, the p-value is uniform on [0, 1], so the "
    "bars of a calibrated test's histogram are about equally high (dashed line). "
    "Bonferroni p-values are conservative (more mass near 1). A negative control's "
    "p-values should be tiny: its histogram shows their base-10 logarithm."
)


def _para(text: str) -> list[str]:
    return textwrap.wrap(text, 88, break_on_hyphens=False) + [""]


def _link(cid: str) -> str:
    return f'<a href="#audit-{anchor(cid)}">{_code_id(cid)}</a>'


def _stale(runs) -> int:
    """Runs of a version of the chapter's code other than the current one."""
    current = {
        p.stem: audit.notebook_hash(audit._read(p)) for p in audit.chapter_paths()
    }
    return sum(
        1
        for (chapter, _), r in runs.items()
        if r.get("notebook_hash") and r["notebook_hash"] != current.get(chapter)
    )


def _summary(runs, lines, shares, book, meta, out=None) -> list[str]:
    seeds = sorted({s for _, s in runs})
    counts = sorted(sum(1 for c, _ in runs if c == chapter) for chapter in shares)
    per = f"{counts[0]}" if counts[0] == counts[-1] else f"{counts[0]} to {counts[-1]}"
    wall = sum(m.get("wall_seconds", 0) for m in meta)
    workers = "/".join(
        str(w) for w in sorted({m.get("workers") for m in meta} - {None})
    )
    cpus = "/".join(str(c) for c in sorted({m.get("cpus") for m in meta} - {None}))
    last = max((m.get("finished", "") for m in meta), default="?")
    commit = (meta[-1].get("git") or "?")[:10] if meta else "?"
    conf = f"{CONFIDENCE * 100:g}%"
    md = _para(
        f"**{len(runs)} chapter runs**: {len(shares)} chapters at {per} seed(s) each "
        f"(seeds {seeds[0]}–{seeds[-1]}), {len(lines)} attempts in all, as Ray tasks "
        "on "
        f"{workers or '?'} workers (machine of {cpus or '?'} CPUs) in {wall / 60:.0f} "
        f"minutes of wall time; last run finished {last}, at commit `{commit}`. "
        "Generated by `tools/audit_report.py` from "
        f"`{_shown(out)}/` (`make audit`); intervals are {conf} Clopper-Pearson."
    )
    stale = _stale(runs)
    if stale:
        md += _para(
            f"{stale} of these runs executed an earlier version of their chapter's "
            "code "
            "(`make audit` reruns them)."
        )
    md += _para(
        f"**Book-wide**: on {book.k} of {book.n} seeds at least one chapter failed a "
        f"check: {_pct(book.k / book.n if book.n else None)}, {conf} interval "
        f"{_ci(book.interval)}; the book states at most {_pct(book.budget)} (its "
        "checks' "
        f"stated rates add up to {_pct(book.stated)})."
    )
    return md


def _chapter_rows(runs, shares, titles) -> list[str]:
    conf = f"{CONFIDENCE * 100:g}%"
    md = [
        "## Chapters",
        "",
        f"| chapter | seeds run | seeds with a failure | share [{conf} interval] "
        "| budget | stated (sum of rates) | faults |",
        "|---|---|---|---|---|---|---|",
    ]
    for chapter, s in sorted(shares.items()):
        faults = sum(
            1 for (c, _), r in runs.items() if c == chapter and r["status"] == "fault"
        )
        title = html.escape(titles.get(chapter, chapter))
        if chapter in titles:  # the chapter is still in the book: link its page
            title = f'<a href="{chapter}.html">{title}</a>'
        share = _pct(s.k / s.n if s.n else None)
        md.append(
            f"| {title} | {s.n} | {s.k} | {share} "
            f"{_ci(s.interval)} | {_pct(s.budget)} | {_pct(s.stated)} | {faults} |"
        )
    return md + [""]


def _claim_rows(claims, shares) -> list[str]:
    conf = f"{CONFIDENCE * 100:g}%"
    md = ["## Claims", ""] + _para(CLAIMS_NOTE)
    md += [
        f"| claim | kind | failures / runs | rate [{conf} interval] | stated rate "
        "| not run |",
        "|---|---|---|---|---|---|",
    ]
    # Link a claim to its line on the chapter page only where the page has that line.
    shown = {
        p.stem: set(audit.committed_claims(audit._read(p)))
        for p in audit.chapter_paths()
    }
    for chapter in sorted(shares):
        for c in (c for c in claims.values() if c.chapter == chapter):
            rate = _pct(c.failures / c.runs if c.runs else None)
            mark = " **above the stated rate**" if c.too_often else ""
            here = f'<span id="audit-{anchor(c.id)}"></span>'
            there = _code_id(c.id)
            if c.id in shown.get(chapter, ()):
                there = f'<a href="{chapter}.html#{anchor(c.id)}">{there}</a>'
            md.append(
                f"| {here}{there} | {c.kind or '?'} | {c.failures} / {c.runs} | {rate} "
                f"{_ci(c.interval)}{mark} | {_pct(c.stated)} | {c.not_run} |"
            )
    return md + [""]


def _histogram_section(claims, figures, rel, draw) -> list[str]:
    md = ["## p-values by test family", ""] + _para(PVALUE_NOTE)
    for family, name, n, ks in histograms(claims, figures, draw):
        if family.startswith(FAMILIES["biased"]):
            alt = (
                f"Histogram of the base-10 logarithm of {n} p-values of the {family}, "
                "from -16 to 0: a control with power has a tiny p-value"
            )
        else:
            alt = (
                f"Histogram of {n} p-values of the {family} in 20 bins from 0 to 1, "
                "beside the flat line that a calibrated test follows"
            )
        md += [f"![{alt}]({rel}/{name})", ""]
        md += _para(
            f"*{family}*: {n} p-values; Kolmogorov-Smirnov test against the uniform "
            f"distribution: p = {ks:.2g}."
        )
    return md


def _block(text: str) -> list[str]:
    return ["", "  ```text"] + ["  " + ln for ln in _wrap(text)] + ["  ```", ""]


def _failure_section(runs, lines, titles) -> list[str]:
    failures = sorted(
        (r for r in runs.values() if r["status"] == "claim_failed"),
        key=lambda r: (r["chapter"], r["seed"]),
    )
    md = ["## Every failure", ""]
    if not failures:
        md += _para("No claim check failed in the final runs (earlier versions' "
                    "failures: *Superseded failures* below).")
    for r in failures:
        cid = r.get("failed_claim")
        title = html.escape(titles.get(r["chapter"], r["chapter"]))
        md += [f"- {title}, seed {r['seed']}: {_link(cid) if cid else '?'}"]
        md += _block(r.get("fail_line") or "")
    faults = [r for r in lines if r["status"] == "fault"]
    md += ["## Faults", ""]
    if not faults:
        md += _para(
            "No run faulted: no timeout, no dead kernel or worker, no unexpected error."
        )
    for r in faults:
        last = audit.error_line(r.get("error"))
        state = "final" if r.get("final") else "retried"
        md += [
            f"- {r['chapter']}, seed {r['seed']}, attempt {r.get('attempt')} ({state}):"
        ]
        md += _block(last)
    return md


def render(
    out: pathlib.Path,
    figures: pathlib.Path = FIGURES,
    page: pathlib.Path = PAGE,
    draw: bool = True,
) -> str:
    """The appendix page (markdown) for the audit in ``out``; draws its figures into
    ``figures`` unless ``draw`` is false."""
    lines = audit.read_results(out)
    runs = final_runs(lines)
    if not runs:
        where = pathlib.Path(out) / audit.RESULTS
        raise ValueError(f"out: expected audit results in {where}, found none")
    claims = claim_stats(runs)
    shares = chapter_shares(runs, claims)
    book = book_share(runs, shares)
    titles = _chapter_titles()
    too_often = sorted(c.id for c in claims.values() if c.too_often)

    md = ["# Appendix: the seed audit", ""] + _para(INTRO)
    md += _summary(runs, lines, shares, book, _read_runs(out), out)
    if too_often:
        md += [
            "**Claims that failed more often than they state** (interval wholly above "
            "the stated rate):",
            "",
        ]
        md += [f"- {_link(c)}" for c in too_often] + [""]
    else:
        md += _para("No claim failed significantly more often than it states.")
    md += _reach_section(runs, claims, shares, book)
    md += _chapter_rows(runs, shares, titles)
    md += _claim_rows(claims, shares)
    md += _histogram_section(claims, figures, _relative(figures, page), draw)
    md += _failure_section(runs, lines, titles)
    md += _superseded_section(lines, runs, titles)
    return "\n".join(md).rstrip() + "\n"


def _shown(out) -> str:
    path = pathlib.Path(out if out is not None else audit.DEFAULT_OUT).resolve()
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return path.name


def _wrap(line: str, width: int = 88) -> list[str]:
    return textwrap.wrap(
        line, width, subsequent_indent="    ", break_on_hyphens=False
    ) or [""]


def _read_runs(out: pathlib.Path) -> list[dict]:
    import json

    path = pathlib.Path(out) / audit.RUNS
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def _relative(figures: pathlib.Path, page: pathlib.Path) -> str:
    import os

    return os.path.relpath(
        pathlib.Path(figures).resolve(), pathlib.Path(page).resolve().parent
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "out",
        type=pathlib.Path,
        nargs="?",
        default=None,
        help="the audit's results folder (default: the held-out pass if it exists, "
        "else the development seeds' audit)",
    )
    parser.add_argument(
        "--page", default=str(PAGE), help="markdown page to write ('-': stdout)"
    )
    parser.add_argument(
        "--figures", type=pathlib.Path, default=FIGURES, help="folder for the PNGs"
    )
    args = parser.parse_args(argv)
    page = PAGE if args.page == "-" else pathlib.Path(args.page)
    text = render(args.out or default_out(), args.figures, page)
    if args.page == "-":
        sys.stdout.write(text)
    else:
        page.write_text(text)
        print(
            f"wrote {page} ({datetime.datetime.now(datetime.timezone.utc):%H:%M} UTC)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
