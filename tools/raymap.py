"""Run independent calls one after another, or as Ray tasks (the seed audit's engine).

    results = run_calls(fn, [(args, kwargs), ...], use_ray=True)

The practice chapter's sweeps (``benchmarks/practice_runs.py --ray``) and the CartPole
benchmark's seed loop (``benchmarks/bench_cartpole.py --ray``) use it, so that the seeds x
variants of an ablation run on every core of this machine, or unchanged on a cluster when
``RAY_ADDRESS`` is set: each call is one ``ray.remote`` task, collected with ``ray.get``.
Results come back in the order of ``calls``; Ray is shut down on every exit path. Without
``use_ray`` the calls run in this process, in order, which is what a timing on a quiet machine
wants.
"""

from __future__ import annotations

import inspect
import os
import pathlib
from typing import Any, Callable, Sequence

ROOT = pathlib.Path(__file__).resolve().parents[1]
#: what a cluster does not need of the checkout (as in tools/audit.py)
EXCLUDES = [".git", ".venv", "_build", "**/__pycache__", "benchmarks/results"]

Call = tuple[tuple, dict]


def run_calls(
    fn: Callable[..., Any],
    calls: Sequence[Call],
    *,
    use_ray: bool = False,
    workers: int | None = None,
    on_result: Callable[[int, Any], None] | None = None,
) -> list:
    """``[fn(*args, **kwargs) for args, kwargs in calls]``, locally or as Ray tasks.

    ``workers`` caps the local Ray instance's CPUs (default: all); ignored when ``RAY_ADDRESS``
    names a cluster. ``on_result(i, result)`` is called as each result arrives (for progress
    lines and for writing partial results).
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable; got {type(fn).__name__}")
    calls = list(calls)
    for i, call in enumerate(calls):
        if not (
            isinstance(call, tuple)
            and len(call) == 2
            and isinstance(call[0], tuple)
            and isinstance(call[1], dict)
        ):
            raise TypeError(
                f"calls[{i}] must be a pair (args tuple, kwargs dict); got {call!r}"
            )
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, int) or workers < 1
    ):
        raise ValueError(f"workers must be a positive integer or None; got {workers!r}")
    if not use_ray:
        out = []
        for i, (args, kwargs) in enumerate(calls):
            out.append(fn(*args, **kwargs))
            if on_result:
                on_result(i, out[-1])
        return out
    import ray

    address = os.environ.get("RAY_ADDRESS")
    # workers import fn's module by name: give them its folder (benchmarks/, tools/) and the root
    folder = pathlib.Path(inspect.getfile(fn)).resolve().parent
    try:
        if address:  # a cluster gets the checkout as its working directory
            relative = (
                folder.relative_to(ROOT) if folder.is_relative_to(ROOT) else folder
            )
            env = {"PYTHONPATH": os.pathsep.join([str(relative), "tools", "."])}
            ray.init(
                address=address,
                log_to_driver=False,
                logging_level="WARNING",
                runtime_env={
                    "working_dir": str(ROOT),
                    "excludes": EXCLUDES,
                    "env_vars": env,
                },
            )
        else:
            env = {
                "PYTHONPATH": os.pathsep.join(
                    [str(folder), str(ROOT / "tools"), str(ROOT)]
                )
            }
            ray.init(
                num_cpus=workers,
                include_dashboard=False,
                log_to_driver=False,
                logging_level="WARNING",
                runtime_env={"env_vars": env},
            )
        task = ray.remote(num_cpus=1)(fn)
        refs = [task.remote(*args, **kwargs) for args, kwargs in calls]
        index = {ref: i for i, ref in enumerate(refs)}
        out: list = [None] * len(refs)
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            i = index[ready[0]]
            out[i] = ray.get(ready[0])
            if on_result:
                on_result(i, out[i])
        return out
    finally:
        ray.shutdown()
