"""tools/raymap.py: the practice sweeps' --ray path gives the runs the local path gives, and
leaves no Ray process behind."""

from __future__ import annotations

import pathlib
import sys

import psutil
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import raymap  # noqa: E402  (tools/ is on sys.path, see conftest.py)


def _square_plus(x, shift=0):
    return x * x + shift


def test_local_path_keeps_the_order_and_reports_each_result():
    seen = []
    out = raymap.run_calls(_square_plus, [((k,), dict(shift=1)) for k in range(4)],
                           on_result=lambda i, r: seen.append((i, r)))
    assert out == [1, 2, 5, 10] and seen == [(0, 1), (1, 2), (2, 5), (3, 10)]


@pytest.mark.parametrize("bad", [[(1,)], [((1,), [])], [([1], {})]])
def test_malformed_calls_are_refused(bad):
    with pytest.raises(TypeError, match=r"calls\[0\]"):
        raymap.run_calls(_square_plus, bad)


def test_ray_path_gives_the_same_training_runs_and_shuts_down(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    import practice_runs

    config = dict(total_steps=3000, eval_every=1500, stop_when_solved=False)
    calls = [((475.0,), dict(seed=seed, **config)) for seed in (0, 1)]
    local = raymap.run_calls(practice_runs.one_run, calls)
    remote = raymap.run_calls(practice_runs.one_run, calls, use_ray=True, workers=2)
    keys = ("eval_steps", "eval_returns", "update_simulated", "update_used", "explained_variance")
    assert [{k: r[k] for k in keys} for r in remote] == [{k: r[k] for k in keys} for r in local]
    # only this process's own Ray instance counts (another test may run Ray beside it)
    _, alive = psutil.wait_procs(psutil.Process().children(recursive=True), timeout=15)
    left = [p.pid for p in alive if p.status() != psutil.STATUS_ZOMBIE]
    assert not left, f"processes of this test's Ray instance left behind: {left}"
