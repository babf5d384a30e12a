"""The seed audit (tools/audit.py on Ray, tools/audit_report.py).

- a small real audit: two short chapters x two seeds on a local Ray instance,
  interrupted by Ctrl-C after its first result and rerun: the records are complete,
  nothing runs twice, and no Ray (or kernel) process outlives either run;
- the aggregation (failure counts, Clopper-Pearson intervals, chapter and book shares)
  against a hand computation;
- the committed audit covers every claim the chapters check, at >= 30 seeds per chapter.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
TOOLS = ROOT / "tools"
if str(TOOLS) not in sys.path:
    sys.path.insert(0, str(TOOLS))

import audit  # noqa: E402
import audit_report  # noqa: E402

#: Two of the shortest chapters (about 10 s each on an idle core).
SHORT = "04,05"
COMMITTED = ROOT / "benchmarks" / "results" / "audit"
#: Fields every claim record of the JSON claim log carries (pglib.claims).
FIELDS = {"id", "kind", "passed", "text", "expected", "fail_rate", "seconds"}


# ---------------------------------------------------------------- seeds and chapters


def test_audit_seeds_never_equal_a_committed_seed():
    committed = {
        audit.committed_seed(audit._read(p), p.name) for p in audit.chapter_paths()
    }
    seeds = audit.audit_seeds(50, committed)
    assert seeds[0] == 1000 and len(set(seeds)) == 50 and not set(seeds) & committed
    with pytest.raises(ValueError, match="committed SEED"):
        audit.audit_seeds(3, {1001})
    with pytest.raises(ValueError, match="--seeds"):
        audit.audit_seeds(0, committed)


def test_chapters_are_named_by_number_or_stem():
    every = audit.chapter_paths()
    assert [p.stem for p in audit.chapter_paths("02,01_log_derivative_trick")] == [
        every[1].stem,
        every[0].stem,
    ]
    with pytest.raises(ValueError, match="--chapters"):
        audit.chapter_paths("99")


# ---------------------------------------------------------------- a small audit on Ray


def _survivors(session: int, marker: str) -> list[str]:
    """Processes of the audit's session, or whose command line names its temporary
    folder
    (Ray's processes and, through TMPDIR, the kernels' connection files)."""
    left = []
    for proc in pathlib.Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmd = (
                (proc / "cmdline")
                .read_bytes()
                .replace(b"\0", b" ")
                .decode(errors="replace")
            )
            if cmd and (os.getsid(int(proc.name)) == session or marker in cmd):
                left.append(f"{proc.name}: {cmd[:160]}")
        except (OSError, ProcessLookupError):
            continue
    return left


def _no_survivors(session: int, marker: str, grace: float = 20.0) -> None:
    deadline = time.monotonic() + grace
    while (left := _survivors(session, marker)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not left, "processes outlived the audit:\n" + "\n".join(left)


def _audit(
    tmp: pathlib.Path, out: pathlib.Path, interrupt_after_first: bool
) -> tuple[int, str]:
    # Own session, like a terminal's foreground job: Ctrl-C is SIGINT to the group.
    env = dict(os.environ, TMPDIR=str(tmp), OMP_NUM_THREADS="1")
    cmd = [
        sys.executable,
        str(TOOLS / "audit.py"),
        "--seeds",
        "2",
        "--chapters",
        SHORT,
        "--workers",
        "2",
        "--out",
        str(out),
        "--temp-dir",
        str(tmp / "ray"),
    ]
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    text = []
    try:
        for line in proc.stdout:
            text.append(line)
            if interrupt_after_first and " attempt " in line:
                os.killpg(proc.pid, signal.SIGINT)
                interrupt_after_first = False
        rc = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    _no_survivors(proc.pid, str(tmp))
    return rc, "".join(text)


def test_small_audit_on_local_ray_resumes_after_ctrl_c_and_leaves_no_process():
    with tempfile.TemporaryDirectory(
        prefix="pga-", dir="/tmp"
    ) as name:  # short: Ray's sockets
        tmp = pathlib.Path(name)
        out = tmp / "out"
        rc, text = _audit(tmp, out, interrupt_after_first=True)
        assert rc == 130, text
        assert "interrupted" in text, text
        first = (out / audit.RESULTS).read_text().splitlines()
        assert first, text
        done_first = {(r["chapter"], r["seed"]) for r in map(json.loads, first)}

        rc, text = _audit(tmp, out, interrupt_after_first=False)
        assert rc == 0, text
        lines = (out / audit.RESULTS).read_text().splitlines()
        assert (
            lines[: len(first)] == first
        )  # resumed: the first run's lines are kept as they were
        assert f"{4 - len(done_first)} of 4 chapter x seed runs to do" in text, text
        runs = [json.loads(x) for x in (out / audit.RUNS).read_text().splitlines()]
    assert [m["interrupted"] for m in runs] == [True, False]

    records = [json.loads(x) for x in lines]
    pairs = [(r["chapter"], r["seed"]) for r in records]
    chapters = [p.stem for p in audit.chapter_paths(SHORT)]
    assert sorted(pairs) == sorted(
        (c, s) for c in chapters for s in (1000, 1001)
    )  # once each
    for r in records:
        assert r["status"] != "fault", r["error"]
        assert r["final"] and r["attempt"] == 1
        expected = audit.committed_claims(
            audit._read(ROOT / "book" / f"{r['chapter']}.ipynb")
        )
        ran = [c["id"] for c in r["claims"]]
        assert set(ran) | set(r["not_run"]) == set(expected) | set(ran)
        assert r["claims"] and all(FIELDS <= set(c) for c in r["claims"]), r["claims"][
            :1
        ]
        if r["status"] == "claim_failed":
            assert r["fail_line"].startswith(f"FAIL [{r['failed_claim']}]")
            assert r["failed_claim"] == next(
                c["id"] for c in r["claims"] if not c["passed"]
            )
        else:
            assert all(c["passed"] for c in r["claims"]) and not r["not_run"]
        assert 0 < r["kernel_start_seconds"] < r["seconds"]


@pytest.mark.slow  # timing-based: on an idle machine chapter 4's cells may all fit in 1 s
def test_a_fault_is_recorded_retried_once_and_tried_again_on_resume(tmp_path):
    # A one-second cell timeout: the setup cell alone takes longer under load (a real fault).
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="pgf-", dir="/tmp"))
    cmd = [
        sys.executable,
        str(TOOLS / "audit.py"),
        "--seeds",
        "1",
        "--chapters",
        "04",
        "--workers",
        "1",
        "--timeout",
        "1",
        "--out",
        str(tmp_path),
        "--temp-dir",
        str(tmp / "ray"),
    ]
    env = dict(os.environ, TMPDIR=str(tmp), OMP_NUM_THREADS="1")
    try:
        for _ in range(2):
            run = subprocess.run(
                cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
            )
            assert run.returncode == 0, run.stdout + run.stderr
        _no_survivors(-1, str(tmp))
    finally:
        subprocess.run(["rm", "-rf", str(tmp)], check=False)
    lines = audit.read_results(tmp_path)
    assert [(r["status"], r["attempt"], r["final"]) for r in lines] == [
        ("fault", 1, False),
        ("fault", 2, True),
        ("fault", 3, False),
        ("fault", 4, True),
    ]
    assert all(r["error"].startswith("CellTimeoutError") for r in lines)
    assert lines[0]["not_run"] == audit.committed_claims(
        audit._read(ROOT / "book" / "04_reward_to_go.ipynb")
    )


# ---------------------------------------------------------------- aggregation


def _claim(cid, passed, rate, p=None, kind="unbiased"):
    return dict(
        id=cid,
        kind=kind,
        passed=passed,
        text="t",
        expected="e",
        fail_rate=rate,
        p_value=p,
        seconds=0.1,
    )


def _run(chapter, seed, claims, status=None, not_run=(), final=True, attempt=1):
    if status is None:
        status = "passed" if all(c["passed"] for c in claims) else "claim_failed"
    failed = next((c["id"] for c in claims if not c["passed"]), None)
    return dict(
        chapter=chapter,
        seed=seed,
        status=status,
        claims=claims,
        not_run=list(not_run),
        final=final,
        attempt=attempt,
        failed_claim=failed,
        fail_line=f"FAIL [{failed}] x" if failed else None,
        error=None,
    )


def test_aggregation_matches_a_hand_computation():
    # Chapter a, 4 seeds: claim a.x fails on seed 2 (a.y then does not run); seed 3
    # faults once, then passes. Chapter b, 4 seeds: b.z fails on every seed; seed 1
    # faults twice.
    lines = [
        _run(
            "a",
            0,
            [_claim("a.x", True, 0.01, 0.5), _claim("a.y", True, 0.0, kind="close")],
        ),
        _run(
            "a",
            1,
            [_claim("a.x", True, 0.01, 0.2), _claim("a.y", True, 0.0, kind="close")],
        ),
        _run("a", 2, [_claim("a.x", False, 0.01, 0.001)], not_run=["a.y"]),
        _run("a", 3, [], status="fault", final=False),
        _run(
            "a",
            3,
            [_claim("a.x", True, 0.01, 0.9), _claim("a.y", True, 0.0, kind="close")],
            attempt=2,
        ),
        _run("b", 0, [_claim("b.z", False, 0.2, kind="biased")]),
        _run("b", 1, [], status="fault", final=False),
        _run("b", 1, [], status="fault", attempt=2),
        _run("b", 2, [_claim("b.z", False, 0.3, kind="biased")]),
        _run("b", 3, [_claim("b.z", False, 0.1, kind="biased")]),
    ]
    runs = audit_report.final_runs(lines)
    assert len(runs) == 8 and runs[("a", 3)]["attempt"] == 2
    claims = audit_report.claim_stats(runs)
    x, y, z = claims["a.x"], claims["a.y"], claims["b.z"]
    assert (x.failures, x.runs, x.not_run) == (1, 4, 0)
    assert (y.failures, y.runs, y.not_run) == (0, 3, 1)
    assert (z.failures, z.runs) == (3, 3)
    assert x.stated == pytest.approx(0.01) and z.stated == pytest.approx(0.2)
    assert x.p_values == [0.5, 0.2, 0.001, 0.9] and z.p_values == []

    # Clopper-Pearson at 95% in closed form: for k = 0 the upper end solves
    # (1-p)^n = 0.025;
    # for k = n the lower end solves p^n = 0.025; for k = 1 the lower end solves
    # 1 - (1-p)^n = 0.025.
    a = 1 - audit_report.CONFIDENCE
    assert y.interval == pytest.approx((0.0, 1 - (a / 2) ** (1 / 3)))  # (0, 0.7076)
    assert z.interval == pytest.approx(((a / 2) ** (1 / 3), 1.0))  # (0.2924, 1)
    assert x.interval[0] == pytest.approx(1 - (1 - a / 2) ** (1 / 4))  # 0.00631
    assert 1 - (1 - a / 2) ** (1 / 4) == pytest.approx(0.006309, abs=1e-6)
    assert (
        z.too_often and not x.too_often and not y.too_often
    )  # 0.2924 > 0.2; 0.0063 < 0.01

    shares = audit_report.chapter_shares(runs, claims)
    assert (shares["a"].k, shares["a"].n) == (1, 4)
    assert (shares["b"].k, shares["b"].n) == (
        3,
        3,
    )  # the faulted seed counts in neither
    assert shares["a"].stated == pytest.approx(0.01) and shares[
        "b"
    ].stated == pytest.approx(0.2)
    u = shares["a"].interval[1]  # k = 1, n = 4: P(X <= 1 | p = u) = 0.025
    assert (1 - u) ** 4 + 4 * u * (1 - u) ** 3 == pytest.approx(a / 2)
    book = audit_report.book_share(runs, shares)
    # seeds 0, 2, 3 ran to a result in both chapters (seed 1 faulted in b); all three
    # failed in b
    assert (book.k, book.n, book.budget) == (3, 3, 0.01)
    assert book.stated == pytest.approx(0.21)
    assert math.isclose(book.interval[0], (a / 2) ** (1 / 3))


def test_report_renders_anchors_histograms_and_failures(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    cid = audit.chapter_paths()[0].stem
    lines = [
        _run(cid, s, [_claim("t.x", s != 1, 0.01, p=(s + 0.5) / 4)]) for s in range(4)
    ]
    (out / audit.RESULTS).write_text("".join(json.dumps(x) + "\n" for x in lines))
    (out / audit.RUNS).write_text(
        json.dumps(
            dict(wall_seconds=120, workers=2, git="abc", finished="2026-12-01T17:00:00")
        )
        + "\n"
    )
    page = tmp_path / "book" / "audit.md"
    page.parent.mkdir()
    text = audit_report.render(out, tmp_path / "book" / "figures", page)
    assert '<span id="audit-claim-t-x"></span>' in text
    assert "| 1 / 4 |" in text and "FAIL [t.x] x" in text
    assert "![Histogram of 4 p-values of the no-bias tests in 20 bins" in text
    assert "](figures/audit_pvalues_no_bias_tests.png)" in text
    assert (
        tmp_path / "book" / "figures" / "audit_pvalues_no_bias_tests.png"
    ).stat().st_size > 1000
    assert "**Book-wide**: on 1 of 4 seeds" in text


# ---------------------------------------------------------------- the committed audit


def test_committed_audit_covers_every_claim_at_30_seeds_and_the_page_is_current():
    committed = audit_report.default_out()  # the held-out pass once there is one
    runs = audit_report.final_runs(audit.read_results(committed))
    for path in audit.chapter_paths():
        mine = {s: r for (c, s), r in runs.items() if c == path.stem}
        seeds = [s for s, r in mine.items() if r["status"] != "fault"]
        assert len(seeds) >= 30, f"{path.stem}: audited at {len(seeds)} seeds (< 30)"
        assert not set(seeds) & {audit.committed_seed(audit._read(path), path.name)}
        seen = {c["id"] for r in mine.values() for c in r["claims"]}
        expected = audit.committed_claims(audit._read(path))
        missing = [c for c in expected if c not in seen]
        assert not missing, f"{path.stem}: claims never audited (make audit): {missing}"
    page = audit_report.PAGE
    text = audit_report.render(committed, audit_report.FIGURES, page, draw=False)
    stale = "book/audit.md is stale: python tools/audit_report.py"
    assert page.read_text() == text, stale
