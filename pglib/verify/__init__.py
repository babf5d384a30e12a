"""Check *your own* code against exact answers (the book's chapter 10 and the checklists).

- :mod:`pglib.verify.unbiased`    ``check_estimator`` / ``check_loss``: is the mean of your
  gradient estimate (or of minus your loss's gradient) the exact gradient?
- :mod:`pglib.verify.checklist`   the implementation checklist, as checks on one batch of yours
- :mod:`pglib.verify.bug_zoo`     mistakes that shipped in public code, as mutants the checks catch
- :mod:`pglib.verify.gym_bridge`  a tabular ``nn.Module`` policy and a gymnasium view of a
  ``TabularMDP``, for training loops written for gymnasium (``check_module``)

``pglib.verify.check_estimator`` and the other names of :mod:`~pglib.verify.unbiased` stay
importable from here (this package replaced the module ``pglib.verify``).
"""

from __future__ import annotations

from pglib.verify.unbiased import (MAX_ENUMERATION, MAX_LOSS_ENUMERATION, POWER, Report, check_estimator,
                                   check_loss)

__all__ = ["Report", "check_estimator", "check_loss", "MAX_ENUMERATION", "MAX_LOSS_ENUMERATION", "POWER"]
