"""Moved (kept importable for one release): this module's two halves now live where their concept does.

- the scores of neural policies, :func:`policy_distribution`, :func:`per_sample_scores` and
  :func:`score_function_gradient`, are in :mod:`pglib.scorefn` (the one home of the score);
- :func:`expected_surrogate` is :func:`pglib.expected.surrogate` (exact expectations), and
  :func:`surrogate_values`, a batch's per-trajectory surrogate, is in :mod:`pglib.losses`.
"""

from __future__ import annotations

from pglib.expected import surrogate as expected_surrogate
from pglib.losses import surrogate_values
from pglib.scorefn import per_sample_scores, policy_distribution, score_function_gradient

__all__ = ["policy_distribution", "per_sample_scores", "score_function_gradient", "expected_surrogate",
           "surrogate_values"]
