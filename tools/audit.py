"""The seed audit: chapter notebooks at seeds they were never committed with, on Ray.

    python tools/audit.py --seeds 30 --out benchmarks/results/audit  # every chapter
    python tools/audit.py --seeds 2 --chapters 01,03 --out /tmp/a     # two chapters
    RAY_ADDRESS=head:6379 python tools/audit.py --seeds 200           # on a cluster

One Ray task runs one chapter at one seed: the notebook gets ``SEED`` injected after its
``parameters`` cell, as papermill does, and is executed top to bottom by nbclient with
the kernel in the notebook's folder. Every claim check in the notebook appends a JSON
record to the file named by ``PGLIB_CLAIM_LOG`` (see ``pglib.claims``); the task returns
those records.

Outcomes of a task (``status`` in the result line):

- ``passed``: every cell ran;
- ``claim_failed``: a claim check raised ``ClaimFailed`` (a result, not retried); the
  claims after it in the notebook did not run and are listed in ``not_run``;
- ``fault``: a cell timed out, raised something else, the kernel or the Ray worker died;
  the error is recorded and the task is retried (``--retries``, default once).

Each finished attempt is appended to ``OUT/results.jsonl`` at once (one JSON line), so
an interrupted audit loses only the tasks in flight; rerunning the same command resumes:
a chapter x seed pair with a result (passed or claim_failed) for the chapter's current
code is never run again; one that faulted on every try is tried again.
``OUT/runs.jsonl`` gets one line per invocation (wall time, workers, tasks). Audit seeds
are ``1000 + k`` (the development seeds, used while fixing the chapters), or
``--first-seed + k``: from 2000 on they are held out, never used while fixing, e.g.
``python tools/audit.py --seeds 100 --first-seed 2000 --out benchmarks/results/audit_heldout``.
None may equal a chapter's committed SEED. Ray is shut down on every
exit path, Ctrl-C and SIGTERM included. One audit at a time writes to an OUT
(a lock on its results file).

By default ``ray.init`` starts a local instance with ``--workers`` CPUs (one task per
CPU); with ``RAY_ADDRESS`` set (or ``--ray ADDRESS``) it connects to that cluster
instead and ships this checkout as the tasks' working directory (the nodes need the same
Python environment: ``pip install -r requirements.txt`` and ``pip install -e .[audit]``;
with Ray's token authentication, on by default, the cluster's token in
``~/.ray/auth_token`` or ``RAY_AUTH_TOKEN``). Checked against a ``ray start --head``
cluster on this machine.
"""

from __future__ import annotations

import argparse
import ast
import datetime
import fcntl
import hashlib
import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import notebooks as nbread  # noqa: E402  (tests/notebooks.py: the one notebook reader)

BOOK = ROOT / "book"
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "audit"
RESULTS = "results.jsonl"
RUNS = "runs.jsonl"
#: Audit seed k is AUDIT_SEED_BASE + k: far from the committed SEED (0 in every chapter)
AUDIT_SEED_BASE = 1000
#: Seeds from here on were never used while fixing the chapters (1000-1029 were): an
#: audit that starts here (--first-seed 2000) is a held-out test of the final chapters.
HELD_OUT_BASE = 2000
#: A claim line in a notebook's output, as pglib.claims prints it.
CLAIM_LINE = re.compile(r"^(PASS|FAIL) \[([a-z0-9_]+(?:\.[a-z0-9_]+)*)\]")
#: Paths not shipped to a cluster with the tasks' working directory.
EXCLUDES = [
    ".git",
    ".venv",
    "_build",
    "benchmarks/results",
    "**/__pycache__",
    "*.egg-info",
]


# ---------------------------------------------------------------- notebooks and seeds


def chapter_paths(
    spec: str | None = None, book: pathlib.Path = BOOK
) -> list[pathlib.Path]:
    """The chapter notebooks named by ``spec``: comma-separated stems or numbers,
    such as ``01,03_monte_carlo_estimator``; every ``book/NN_*.ipynb`` when ``spec``
    is None.
    """
    every = sorted(book.glob("[0-9][0-9]_*.ipynb"))
    if not spec:
        return every
    chosen = []
    for name in (part.strip() for part in spec.split(",") if part.strip()):
        stem = pathlib.Path(name).name.removesuffix(".ipynb")
        match = [p for p in every if p.stem == stem or p.stem.split("_")[0] == stem]
        if len(match) != 1:
            raise ValueError(
                "--chapters: expected a chapter stem or number from "
                f"{[p.stem for p in every]}, "
                f"got {name!r}"
            )
        if match[0] not in chosen:
            chosen.append(match[0])
    return chosen


def _read(path: pathlib.Path) -> dict:
    return json.loads(path.read_text())


def committed_seed(nb: dict, name: str = "notebook") -> int:
    """The ``SEED = <int>`` assignment of the notebook's ``parameters`` cell."""
    for cell in nb["cells"]:
        if "parameters" in nbread.tags(cell):
            for node in ast.parse(nbread.source(cell)).body:
                if (
                    isinstance(node, ast.Assign)
                    and len(node.targets) == 1
                    and getattr(node.targets[0], "id", None) == "SEED"
                ):
                    return int(ast.literal_eval(node.value))
    raise ValueError(
        f"{name}: expected a 'parameters' cell assigning SEED = <int>, found none"
    )


def audit_seeds(count: int, committed: set[int], first: int = AUDIT_SEED_BASE) -> list[int]:
    """``count`` audit seeds, ``first + k`` (default 1000 + k; 2000 + k for a held-out
    pass); refuses any committed SEED."""
    if isinstance(first, bool) or not isinstance(first, int) or first < 1:
        raise ValueError(f"--first-seed: expected a positive integer, got {first!r}")
    if not isinstance(count, int) or count < 1:
        raise ValueError(f"--seeds: expected a positive number of seeds, got {count!r}")
    seeds = [first + k for k in range(count)]
    clash = sorted(set(seeds) & set(committed))
    if clash:
        raise ValueError(
            f"audit seeds must differ from every committed SEED; {clash} is committed"
        )
    return seeds


def committed_claims(nb: dict) -> list[str]:
    """Claim ids in the notebook's committed outputs, in the order they are checked."""
    ids = []
    for _, cell in nbread.code_cells(nb):
        for output in cell.get("outputs", []):
            for line in nbread.output_text(output).splitlines():
                m = CLAIM_LINE.match(line.strip())
                if m and m.group(2) not in ids:
                    ids.append(m.group(2))
    return ids


# ---------------------------------------------------------------- one task


def _records(log: pathlib.Path) -> list[dict]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def run_chapter(
    notebook: str, seed: int, timeout: float, expected: list[str], root: str | None
) -> dict:
    """Execute one chapter notebook at ``seed``; the body of one Ray task.

    ``expected``: the claim ids of the notebook's committed outputs (``not_run`` lists
    those that did not run).

    ``notebook`` is relative to ``root`` (the checkout; None: the working directory, as
    on a cluster with a shipped working_dir). Returns the result line without
    attempt/final.
    """
    import nbclient
    from nbclient.exceptions import CellExecutionError
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    start = time.perf_counter()
    path = pathlib.Path(root or os.getcwd()) / notebook
    nb = load_notebook_node(str(path))  # papermill's reader: tags, metadata it needs
    nb = parameterize_notebook(nb, {"SEED": int(seed)}, report_mode=False)
    prepared = time.perf_counter()
    result = dict(
        chapter=path.stem,
        seed=int(seed),
        status="passed",
        error=None,
        fail_line=None,
        failed_claim=None,
        host=socket.gethostname(),
        pid=os.getpid(),
    )
    timing = dict(
        prepare_seconds=prepared - start,
        kernel_start_seconds=None,
        execute_seconds=None,
        kernel_stop_seconds=None,
    )
    with tempfile.TemporaryDirectory(prefix="pglib-audit-") as tmp:
        log = pathlib.Path(tmp) / "claims.jsonl"
        env = dict(
            os.environ,
            PGLIB_CLAIM_LOG=str(log),
            PYTHONHASHSEED="0",
            OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"),
        )
        client = nbclient.NotebookClient(
            nb,
            timeout=timeout,
            kernel_name="python3",
            record_timing=False,
            resources={"metadata": {"path": str(path.parent)}},
            # Every claim record is on disk when its check returns: stop the kernel at
            # once instead of waiting seconds for its graceful exit.
            shutdown_kernel="immediate",
        )
        t_stop = None
        try:
            with client.setup_kernel(env=env):
                client.wait_for_reply(client.kc.kernel_info())
                t_exec = time.perf_counter()
                timing["kernel_start_seconds"] = t_exec - prepared
                try:
                    for index, cell in enumerate(nb.cells):
                        client.execute_cell(cell, index)
                finally:
                    timing["execute_seconds"] = time.perf_counter() - t_exec
                    t_stop = time.perf_counter()
        except CellExecutionError as exc:
            if exc.ename == "ClaimFailed":
                line = str(exc.evalue).strip()
                m = CLAIM_LINE.match(line)
                result.update(
                    status="claim_failed",
                    fail_line=line,
                    failed_claim=m.group(2) if m else None,
                )
            else:
                result.update(status="fault", error=f"{exc.ename}: {exc.evalue}"[:4000])
        except Exception as exc:  # a fault: a cell timed out, the kernel died, ...
            result.update(status="fault", error=f"{type(exc).__name__}: {exc}"[:4000])
        if t_stop is not None:  # the kernel was stopped when setup_kernel exited
            timing["kernel_stop_seconds"] = time.perf_counter() - t_stop
        claims = _records(log)
    seen = {r.get("id") for r in claims}
    result.update(
        claims=claims,
        not_run=[cid for cid in expected if cid not in seen],
        seconds=time.perf_counter() - start,
        **timing,
    )
    return result


# ---------------------------------------------------------------- results file


def read_results(out: pathlib.Path) -> list[dict]:
    """Every result line in ``out/results.jsonl`` (a torn last line, from a kill, is
    skipped)."""
    path = pathlib.Path(out) / RESULTS
    lines = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                lines.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return lines


def _append(path: pathlib.Path, record: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(record, sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())


def notebook_hash(nb: dict) -> str:
    """A digest of the notebook's code cells: a result line of another version of the
    chapter's code does not count as done (prose and outputs may change)."""
    code = "\0".join(nbread.source(cell) for _, cell in nbread.code_cells(nb))
    return hashlib.sha256(code.encode()).hexdigest()[:16]


def pglib_hash() -> str:
    """A digest of pglib's source, recorded beside each result (not a resume key)."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "pglib").glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def progress(
    out: pathlib.Path, hashes: dict[str, str] | None = None
) -> tuple[set[tuple[str, int]], dict[tuple[str, int], int]]:
    """(pairs with a final result, attempts so far of the others). A pair whose last
    attempt faulted is not done: a rerun tries it again. With ``hashes`` (chapter ->
    notebook_hash) only lines of those notebook versions count."""
    done, attempts = set(), {}
    for r in read_results(out):
        key = (r["chapter"], r["seed"])
        if hashes is not None and r.get("notebook_hash") != hashes.get(r["chapter"]):
            continue
        if r.get("final") and r["status"] != "fault":
            done.add(key)
        attempts[key] = max(attempts.get(key, 0), r.get("attempt", 1))
    return done, {k: v for k, v in attempts.items() if k not in done}


def _git_commit() -> str | None:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


# ---------------------------------------------------------------- the driver


class _Stop(KeyboardInterrupt):
    """SIGTERM, turned into the same orderly exit as Ctrl-C."""


def _on_sigterm(signum, frame):
    raise _Stop()


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def error_line(error: str | None) -> str:
    """The line of a fault's error that says what happened (a Ray traceback ends with
    the exception; a cell timeout starts with it)."""
    lines = (error or "").strip().splitlines() or [""]
    return (lines[-1] if lines[0].startswith("RayTaskError") else lines[0])[:200]


def _token_auth() -> None:
    """A cluster started by ``ray start`` uses token authentication (Ray's default): a
    client must say so. With a token at hand and no mode chosen, choose token mode."""
    token = os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")
    if token or (pathlib.Path.home() / ".ray" / "auth_token").exists():
        os.environ.setdefault("RAY_AUTH_MODE", "token")


def _fault(notebook: pathlib.Path, seed: int, exc: BaseException) -> dict:
    return dict(
        chapter=notebook.stem,
        seed=seed,
        status="fault",
        error=_ANSI.sub("", f"{type(exc).__name__}: {exc}")[:4000],
        fail_line=None,
        failed_claim=None,
        claims=[],
        not_run=committed_claims(_read(notebook)),
        seconds=None,
        prepare_seconds=None,
        kernel_start_seconds=None,
        execute_seconds=None,
        kernel_stop_seconds=None,
    )


def audit(
    notebooks: list[pathlib.Path],
    seeds: list[int],
    out: pathlib.Path,
    workers: int = 2,
    retries: int = 1,
    timeout: float = 1800.0,
    address: str | None = None,
    temp_dir: str | None = None,
    log=print,
) -> dict:
    """Run every notebook x seed pair not yet finished in ``out``; returns a summary."""
    if address:
        _token_auth()  # before Ray reads its configuration on import
    import ray

    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    # One audit at a time per folder: a second one would run the same pairs again.
    lock = open(out / RESULTS, "a")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise RuntimeError(
            f"out: another audit is writing to {out}; wait for it"
        ) from None
    hashes = {nb.stem: notebook_hash(_read(nb)) for nb in notebooks}
    done, attempts = progress(out, hashes)
    code = pglib_hash()
    todo = [(nb, s) for s in seeds for nb in notebooks if (nb.stem, s) not in done]
    summary = dict(
        started=datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
        chapters=[nb.stem for nb in notebooks],
        seeds=[min(seeds), max(seeds)],
        n_seeds=len(seeds),
        workers=workers,
        cpus=os.cpu_count(),
        host=socket.gethostname(),
        address=address,
        git=_git_commit(),
        pglib_hash=code,
        skipped=len(notebooks) * len(seeds) - len(todo),
        tasks_run=0,
        interrupted=False,
    )
    log(
        f"audit: {len(todo)} of {len(notebooks) * len(seeds)} chapter x seed runs "
        "to do "
        f"({summary['skipped']} already in {out / RESULTS})"
    )
    if not todo:
        return summary
    t0 = time.perf_counter()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def catch_signals() -> (
        None
    ):  # Ctrl-C and SIGTERM stop the audit in order, even when the
        signal.signal(
            signal.SIGINT, signal.default_int_handler
        )  # shell ignores SIGINT (&)
        signal.signal(
            signal.SIGTERM, _on_sigterm
        )  # ray.init installs its own: set after it

    catch_signals()
    try:
        if address:
            ray.init(
                address=address,
                log_to_driver=False,
                logging_level="WARNING",
                runtime_env={"working_dir": str(ROOT), "excludes": EXCLUDES},
            )
            root = None
        else:
            ray.init(
                num_cpus=workers,
                include_dashboard=False,
                log_to_driver=False,
                logging_level="WARNING",
                _temp_dir=temp_dir,
            )
            root = str(ROOT)
        catch_signals()
        summary["ray_init_seconds"] = time.perf_counter() - t0
        task = ray.remote(num_cpus=1, max_retries=0)(run_chapter)

        pending: dict = {}

        expected = {nb: committed_claims(_read(nb)) for nb in notebooks}

        def submit(nb: pathlib.Path, seed: int, attempt: int, left: int) -> None:
            relative = str(nb.relative_to(ROOT))
            ref = task.remote(relative, seed, timeout, expected[nb], root)
            pending[ref] = (nb, seed, attempt, left, time.perf_counter())

        for nb, seed in todo:
            submit(nb, seed, attempts.get((nb.stem, seed), 0) + 1, retries)
        while pending:
            ready, _ = ray.wait(
                list(pending), num_returns=1, timeout=1.0
            )  # signals: 1 s
            if not ready:
                continue
            ref = ready[0]
            nb, seed, attempt, left, submitted = pending.pop(ref)
            try:
                record = ray.get(ref)
            except (
                ray.exceptions.RayError
            ) as exc:  # the worker died, or Ray failed the task
                record = _fault(nb, seed, exc)
            retry = record["status"] == "fault" and left > 0
            record.update(notebook_hash=hashes[nb.stem], pglib_hash=code)
            record.update(
                attempt=attempt,
                final=not retry,
                driver_seconds=time.perf_counter() - submitted,
                finished=datetime.datetime.now(datetime.timezone.utc).isoformat(
                    timespec="seconds"
                ),
            )
            _append(out / RESULTS, record)
            summary["tasks_run"] += 1
            failed = ""
            if record["status"] != "passed":
                failed = " " + (record["failed_claim"] or error_line(record["error"]))
            log(
                f"  {nb.stem} seed {seed} attempt {attempt}: "
                f"{record['status']}{failed} "
                f"({record['seconds'] or 0:.1f} s; {len(pending)} in flight or queued)"
            )
            if retry:
                submit(nb, seed, attempt + 1, left - 1)
    except KeyboardInterrupt:
        summary["interrupted"] = True
        log(
            "audit: interrupted; finished runs are kept, "
            "rerun the same command to resume"
        )
    finally:
        summary["wall_seconds"] = time.perf_counter() - t0
        ray.shutdown()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        summary["finished"] = datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        )
        _append(out / RUNS, summary)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--seeds",
        type=int,
        default=30,
        help="audit seeds per chapter (1000, 1001, ...)",
    )
    parser.add_argument(
        "--first-seed",
        type=int,
        default=AUDIT_SEED_BASE,
        help=f"first audit seed (default {AUDIT_SEED_BASE}; {HELD_OUT_BASE} and up: held out)",
    )
    parser.add_argument(
        "--chapters",
        default=None,
        help="comma-separated stems or numbers (default: all)",
    )
    parser.add_argument(
        "--out", type=pathlib.Path, default=DEFAULT_OUT, help="results folder"
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="CPUs of the local Ray instance"
    )
    parser.add_argument(
        "--retries", type=int, default=1, help="retries of a faulted task"
    )
    parser.add_argument(
        "--timeout", type=float, default=1800.0, help="seconds per cell"
    )
    parser.add_argument(
        "--ray",
        default=os.environ.get("RAY_ADDRESS"),
        help="address of an existing Ray cluster (default: $RAY_ADDRESS; none: local)",
    )
    parser.add_argument(
        "--temp-dir", default=None, help="Ray's session folder (local instance)"
    )
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error(f"--workers: expected a positive number, got {args.workers}")
    if args.retries < 0:
        parser.error(f"--retries: expected 0 or more, got {args.retries}")
    try:
        notebooks = chapter_paths(args.chapters)
        committed = {committed_seed(_read(nb), nb.name) for nb in notebooks}
        seeds = audit_seeds(args.seeds, committed, args.first_seed)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        summary = audit(
            notebooks,
            seeds,
            args.out,
            workers=args.workers,
            retries=args.retries,
            timeout=args.timeout,
            address=args.ray or None,
            temp_dir=args.temp_dir,
        )
    except RuntimeError as exc:
        parser.error(str(exc))
    print(
        f"audit: {summary['tasks_run']} runs in {summary.get('wall_seconds', 0):.0f} s"
    )
    return 130 if summary["interrupted"] else 0


if __name__ == "__main__":
    sys.exit(main())
