"""pglib: policy gradients you can check.

The library behind the book *Policy Gradients, Executable*. Modules, left to right
along the data flow:

- :mod:`pglib.mdp`        tabular MDPs (``TabularMDP``), named problems, a gymnasium view
- :mod:`pglib.sampling`   vectorized trajectory sampling from a ``TabularMDP``
- :mod:`pglib.exact`      exact objectives, values, occupancies and gradients
- :mod:`pglib.returns`    returns, reward-to-go, discount weights, GAE
- :mod:`pglib.estimators` per-trajectory score-function gradient estimates
- :mod:`pglib.importance` importance ratios and effective sample size
- :mod:`pglib.stats`      standard errors and tests with stated false-alarm rates
- :mod:`pglib.claims`     claim checks that raise with expected-vs-measured messages
- :mod:`pglib.policies`, :mod:`pglib.rollout`, :mod:`pglib.train` neural policies on gymnasium

The distribution is called ``policy-gradients-executable``; the unrelated PostgreSQL
package named ``pglib`` on PyPI is not this one.
"""

__version__ = "0.1.0"
