"""Practice on real tasks: neural policies on gymnasium environments (the book's chapter 9).

- :mod:`pglib.practice.device`    where networks run (CPU or CUDA)
- :mod:`pglib.practice.policies`  neural policies: a distribution per observation
- :mod:`pglib.practice.rollout`   vectorized gymnasium rollouts into padded batches
- :mod:`pglib.practice.train`     REINFORCE and PPO training loops with a config and a history
- :mod:`pglib.practice.lqr`       a linear-quadratic regulator with an exact policy gradient
- :mod:`pglib.practice.plotting`  learning curves with confidence bands, on the caller's axes

The core (the flat modules of ``pglib``) does not import this folder; this folder imports the core.
"""
