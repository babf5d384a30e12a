"""Survey of pglib's doors: generated bad calls, and how each is answered, per module.

Runs the entry points of tests/test_bad_input.py (issue 13) and tests/test_bad_input_doors.py
(issue 21) with bad values drawn from the same classes as their property tests, one bad argument
per call, and counts the outcomes:

- ``clear``: a ValueError/TypeError whose message names the argument;
- ``unnamed``: a ValueError/TypeError that does not name it;
- ``raw``: any other exception (AttributeError, OverflowError, a torch/numpy internal ...);
- ``silent``: no exception at all (an answer to a question that was not valid);
- ``hang``: no answer within ``--timeout`` seconds.

Usage: ``python tools/door_survey.py [--calls 20] [--timeout 20] [--only doors]``.
"""

from __future__ import annotations

import argparse
import collections
import pathlib
import signal
import sys
import warnings

ROOT = pathlib.Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "tests"):
    sys.path.insert(0, str(p))


class _Hang(Exception):
    pass


def _alarm(signum, frame):
    raise _Hang()


def survey(module, calls: int, timeout: int, seed: int = 0) -> collections.Counter:
    import numpy as np
    import torch
    from hypothesis.errors import NonInteractiveExampleWarning

    warnings.simplefilter("ignore", NonInteractiveExampleWarning)
    warnings.simplefilter("ignore", UserWarning)
    rng = np.random.default_rng(seed)
    counts = collections.Counter()
    signal.signal(signal.SIGALRM, _alarm)
    for spec in module.SPECS:
        if not spec.bad:
            continue
        for _ in range(calls):
            w = module.World(S=int(rng.integers(1, 4)), A=int(rng.integers(2, 4)), T=int(rng.integers(1, 5)),
                             N=int(rng.integers(2, 6)), seed=int(rng.integers(0, 2**16)))
            try:
                kwargs = spec.args(w)
            except Exception as e:  # noqa: BLE001 -- a valid world the spec cannot use
                print(f"  skip {spec.name}: {e}", file=sys.stderr)
                continue
            arg = sorted(spec.bad)[int(rng.integers(len(spec.bad)))]
            valid = kwargs.get(arg)
            if valid is None and spec.bad[arg] in ("tensor", "int_tensor", "mask"):
                # as the property tests do: a valid value of the right shape for an optional tensor
                valid = {"baseline": w.values, "sample_weights": torch.ones(w.N), "action_baseline": w.logits,
                         "mask": w.mask}.get(arg, w.values)

            def draw(strategy, label=None):
                return strategy.example()

            try:
                cls, bad = module._bad_value(spec, arg, valid, draw)
            except Exception as e:  # noqa: BLE001
                print(f"  skip {spec.name}({arg}): {e}", file=sys.stderr)
                continue
            if bad is None and spec.optional(arg):
                continue
            kwargs[arg] = bad
            signal.alarm(timeout)
            try:
                spec.fn(**kwargs)
                outcome = "silent"
            except _Hang:
                outcome = "hang"
            except (TypeError, ValueError) as e:
                said = spec.says.get(arg, arg).split("|")
                outcome = "clear" if any(x in str(e) for x in said) else "unnamed"
            except Exception:  # noqa: BLE001
                outcome = "raw"
            finally:
                signal.alarm(0)
            if outcome != "clear":
                print(f"  {outcome}: {spec.name}({arg}=<{cls}>)", file=sys.stderr)
            counts[(spec.name.split(".")[0], outcome)] += 1
    return counts


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=20, help="bad calls per entry point")
    ap.add_argument("--timeout", type=int, default=20, help="seconds before a call counts as a hang")
    ap.add_argument("--only", choices=["old", "doors"], default=None)
    args = ap.parse_args([a for a in (argv or sys.argv[1:]) if not a.endswith(".py")])
    import importlib

    names = {"old": "test_bad_input", "doors": "test_bad_input_doors"}
    total = collections.Counter()
    for key, name in names.items():
        if args.only and args.only != key:
            continue
        counts = survey(importlib.import_module(name), args.calls, args.timeout)
        total.update(counts)
    modules = sorted({m for m, _ in total})
    outcomes = ["clear", "unnamed", "raw", "silent", "hang"]
    print(f"{'module':12s} " + " ".join(f"{o:>8s}" for o in outcomes) + "    clear share")
    for m in modules:
        row = [total[(m, o)] for o in outcomes]
        print(f"{m:12s} " + " ".join(f"{v:8d}" for v in row) + f"    {row[0] / max(sum(row), 1):.1%}")
    row = [sum(total[(m, o)] for m in modules) for o in outcomes]
    print(f"{'all':12s} " + " ".join(f"{v:8d}" for v in row) + f"    {row[0] / max(sum(row), 1):.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
