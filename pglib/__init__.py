"""pglib: policy gradients you can check.

The library behind the book *Policy Gradients, Executable*. The core is flat and follows the
data flow, problem -> policy -> batch -> weights -> estimator / loss -> exact check -> statistics;
what is not the core lives in two folders (ARCHITECTURE.md has the layers and the import rule):

- :mod:`pglib.mdp`         tabular MDPs (``TabularMDP``), named problems
- :mod:`pglib.sampling`    vectorized trajectory sampling from a ``TabularMDP``
- :mod:`pglib.fused`       optional numba kernel: sampling fused with reward-to-go estimates (benchmarks, huge N)
- :mod:`pglib.enumeration` every trajectory of a small MDP with its probability (exact moments)
- :mod:`pglib.exact`       exact objectives, values, occupancies and gradients (J, V, Q, A, d, grad J)
- :mod:`pglib.returns`     returns, reward-to-go, discount weights, GAE
- :mod:`pglib.baselines`   constant, variance-optimal, leave-one-out and fitted baselines
- :mod:`pglib.scorefn`     score functions: categorical, Gaussian, tabular policies, neural policies
- :mod:`pglib.estimators`  per-trajectory score-function gradient estimates
- :mod:`pglib.importance`  importance ratios, effective sample size, KL averaged over states
- :mod:`pglib.offpolicy`   exact off-policy quantities (state-shift bias, weight moments, clipping)
- :mod:`pglib.losses`      surrogate, ratio, clipped and KL-penalised losses; KL
- :mod:`pglib.expected`    exact expectations of estimators and losses (their biases, shown exactly)
- :mod:`pglib.llm`         group (LLM) losses: RLOO, GRPO and its variants, KL estimators, exact means
- :mod:`pglib.stats`       standard errors and tests with stated false-alarm rates
- :mod:`pglib.claims`      a chapter's claim checks: PASS/FAIL lines and the false-alarm budget
- :mod:`pglib.validate`    the one door for argument checks
- :mod:`pglib.display`     show pglib's real source in the book
- :mod:`pglib.verify`      check *your* code: ``check_estimator`` / ``check_loss``
  (:mod:`~pglib.verify.unbiased`), the implementation checklist (:mod:`~pglib.verify.checklist`),
  shipped mistakes as mutants (:mod:`~pglib.verify.bug_zoo`), the gymnasium bridge
  (:mod:`~pglib.verify.gym_bridge`)
- :mod:`pglib.practice`    real tasks: neural policies, rollouts, training (REINFORCE, PPO), LQR, plots
- :mod:`pglib.surrogate`   alias for one release (its parts moved to scorefn, expected and losses)

The top level re-exports the names a reader needs first, imported lazily (``import pglib`` loads
nothing heavy; the first use of a name imports its module)::

    import pglib
    mdp = pglib.chain(3, horizon=4)
    report = pglib.check_loss(my_loss, mdp, logits)      # or pglib.check_estimator(...)
    print(report)

The distribution is called ``policy-gradients-executable``; the unrelated PostgreSQL
package named ``pglib`` on PyPI is not this one.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

__version__ = "0.1.0"

# name -> module that defines it; resolved on first access (PEP 562), so `import pglib` is cheap
EXPORTS = {
    "check_estimator": "pglib.verify.unbiased", "check_loss": "pglib.verify.unbiased",
    "Report": "pglib.verify.unbiased",
    "TabularMDP": "pglib.mdp", "bandit": "pglib.mdp", "chain": "pglib.mdp", "two_state": "pglib.mdp",
    "random_mdp": "pglib.mdp", "short_corridor": "pglib.mdp", "sequence_problem": "pglib.mdp",
    "sample_trajectories": "pglib.sampling", "Trajectories": "pglib.sampling",
    "reward_to_go": "pglib.returns", "unbiasedness_test": "pglib.stats",
    "TabularSoftmaxPolicy": "pglib.verify.gym_bridge", "check_module": "pglib.verify.gym_bridge",
}
_MODULES = (
    "baselines", "claims", "display", "enumeration", "estimators", "exact", "expected", "fused", "importance",
    "llm", "losses", "mdp", "offpolicy", "practice", "returns", "sampling", "scorefn", "stats", "surrogate",
    "validate", "verify",
)
#: old module path -> its new home; the old path stays importable for one release (0.1.x)
MOVED = {
    "pglib.checks": "pglib.verify.checklist",
    "pglib.zoo": "pglib.verify.bug_zoo",
    "pglib.tabular": "pglib.verify.gym_bridge",
    "pglib.policies": "pglib.practice.policies",
    "pglib.rollout": "pglib.practice.rollout",
    "pglib.train": "pglib.practice.train",
    "pglib.lqr": "pglib.practice.lqr",
    "pglib.plotting": "pglib.practice.plotting",
    "pglib.device": "pglib.practice.device",
}

__all__ = ["__version__", *EXPORTS, *_MODULES]

#: the layers, bottom first: ``(name, modules, what they hold)``. A module imports only modules of
#: its own layer or of layers below it, never in a cycle; tests/test_layout.py enforces it and
#: ARCHITECTURE.md explains it. The two folders import the core and never each other.
LAYERS = (
    ("foundation", ("validate", "display", "stats"),
     "argument checks (the one door), showing real source, statistics and number formatting"),
    ("problem", ("mdp",), "TabularMDP and the named problems"),
    ("batch", ("sampling", "enumeration"), "sampled Trajectories, and every trajectory with its probability"),
    ("weights and scores", ("returns", "scorefn"), "G_t, gamma^t, GAE; the score grad log pi in every form"),
    ("exact answers", ("exact",), "J, V, Q, A, d and grad J of a tabular MDP, differentiable"),
    ("estimators and losses", ("losses", "importance", "estimators", "baselines", "fused"),
     "surrogate losses and KL, importance ratios, per-trajectory gradient estimates, baselines"),
    ("exact expectations", ("offpolicy", "expected", "llm"),
     "what an estimator or a loss averages to, computed exactly: its bias as a number"),
    ("claims", ("claims",), "a chapter's PASS/FAIL lines, their false-alarm budget and the ledger records"),
    ("aliases", ("surrogate",), "old module paths kept for one release"),
    ("check your own code", ("verify",),
     "check_estimator / check_loss, the implementation checklist, the bug zoo, the gymnasium bridge"),
    ("practice", ("practice",), "neural policies, rollouts and training on gymnasium tasks, LQR, plots"),
)


class _MovedLoader(importlib.abc.Loader):
    """Loads an old path as the very module object at its new path (no copy, no warning)."""

    def create_module(self, spec):
        return None  # a throwaway module; exec_module swaps in the real one

    def exec_module(self, module) -> None:
        sys.modules[module.__name__] = importlib.import_module(MOVED[module.__name__])


class _MovedFinder(importlib.abc.MetaPathFinder):
    """``import pglib.train`` finds ``pglib.practice.train`` (see :data:`MOVED`)."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, _MovedLoader())


if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
    sys.meta_path.insert(0, _MovedFinder())  # before any finder that could find a stale copy


def __getattr__(name: str):
    if name in EXPORTS:
        value = getattr(importlib.import_module(EXPORTS[name]), name)
    elif name in _MODULES or f"pglib.{name}" in MOVED:
        value = importlib.import_module(f"pglib.{name}")
    else:
        raise AttributeError(f"module 'pglib' has no attribute {name!r}")
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
