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
- :mod:`pglib.stats`       standard errors and tests with stated false-alarm rates
- :mod:`pglib.claims`      claim checks that raise with expected-vs-measured messages
- :mod:`pglib.checks`      the implementation checklist, as checks on a reader's own batch
- :mod:`pglib.device`, :mod:`pglib.policies`, :mod:`pglib.rollout`, :mod:`pglib.train`,
  :mod:`pglib.lqr`, :mod:`pglib.plotting`  neural policies on gymnasium tasks
- :mod:`pglib.display`     show pglib's real source in the book

The distribution is called ``policy-gradients-executable``; the unrelated PostgreSQL
package named ``pglib`` on PyPI is not this one.
"""

__version__ = "0.1.0"
