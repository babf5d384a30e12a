"""pglib: policy gradients you can check.

The library behind the book *Policy Gradients, Executable*. Modules, left to right along the data flow:

- :mod:`pglib.mdp`         tabular MDPs (``TabularMDP``), named problems, a gymnasium view
- :mod:`pglib.sampling`    vectorized trajectory sampling from a ``TabularMDP``
- :mod:`pglib.fused`       optional numba kernel: sampling fused with reward-to-go estimates (benchmarks, huge N)
- :mod:`pglib.enumeration` every trajectory of a small MDP with its probability (exact moments)
- :mod:`pglib.exact`       exact objectives, values, occupancies and gradients
- :mod:`pglib.returns`     returns, reward-to-go, discount weights, GAE
- :mod:`pglib.baselines`   constant, variance-optimal, leave-one-out and fitted baselines
- :mod:`pglib.scorefn`     score functions of categorical and Gaussian distributions
- :mod:`pglib.estimators`  per-trajectory score-function gradient estimates
- :mod:`pglib.importance`  importance ratios, effective sample size, KL
- :mod:`pglib.offpolicy`   exact off-policy quantities (state-shift bias, weight moments, clipping)
- :mod:`pglib.losses`      surrogate, ratio, clipped and KL-penalised losses
- :mod:`pglib.llm`         group (LLM) losses: RLOO, GRPO and its variants, KL estimators, exact means
- :mod:`pglib.stats`       standard errors and tests with stated false-alarm rates
- :mod:`pglib.claims`      claim checks that raise with expected-vs-measured messages
- :mod:`pglib.checks`      the implementation checklist, as checks on a reader's own batch
- :mod:`pglib.device`, :mod:`pglib.policies`, :mod:`pglib.rollout`, :mod:`pglib.train`,
  :mod:`pglib.lqr`, :mod:`pglib.plotting`  neural policies on gymnasium tasks
- :mod:`pglib.display`     show pglib's real source in the book
- :mod:`pglib.verify`      ``check_estimator`` / ``check_loss``: check *your* code against the exact gradient
- :mod:`pglib.tabular`     an ``nn.Module`` tabular policy and the chain rule, for loops written for gymnasium
- :mod:`pglib.zoo`         mistakes that shipped in public code, as mutants the checks must catch

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

__version__ = "0.1.0"

# name -> module that defines it; resolved on first access (PEP 562), so `import pglib` is cheap
_EXPORTS = {
    "check_estimator": "pglib.verify", "check_loss": "pglib.verify", "Report": "pglib.verify",
    "TabularMDP": "pglib.mdp", "bandit": "pglib.mdp", "chain": "pglib.mdp", "two_state": "pglib.mdp",
    "random_mdp": "pglib.mdp", "short_corridor": "pglib.mdp", "sequence_problem": "pglib.mdp",
    "sample_trajectories": "pglib.sampling", "Trajectories": "pglib.sampling",
    "reward_to_go": "pglib.returns", "unbiasedness_test": "pglib.stats",
    "TabularSoftmaxPolicy": "pglib.tabular", "check_module": "pglib.tabular",
}
_MODULES = (
    "baselines", "checks", "claims", "device", "display", "enumeration", "estimators", "exact", "fused",
    "importance", "llm", "losses", "lqr", "mdp", "offpolicy", "plotting", "policies", "returns", "rollout",
    "sampling", "scorefn", "stats", "surrogate", "tabular", "train", "validate", "verify", "zoo",
)

__all__ = ["__version__", *_EXPORTS, *_MODULES]


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    elif name in _MODULES:
        value = importlib.import_module(f"pglib.{name}")
    else:
        raise AttributeError(f"module 'pglib' has no attribute {name!r}")
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
