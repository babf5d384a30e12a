r"""Score functions :math:`\nabla_\theta \log p_\theta(x)`: closed forms, autodiff, and trajectories.

The log-derivative trick rests on one identity, :math:`\nabla_\theta p_\theta = p_\theta \nabla_\theta \log p_\theta`,
which turns the gradient of an expectation into an expectation (Williams 1992):

.. math:: \nabla_\theta\, \mathbb{E}_{x\sim p_\theta}[f(x)] = \mathbb{E}_{x\sim p_\theta}[f(x)\, \nabla_\theta \log p_\theta(x)].

This module holds the scores the book uses:

- :func:`categorical_score`   softmax logits ``[..., K]``: :math:`e_x - \mathrm{softmax}(\theta)`;
- :func:`gaussian_score`      :math:`\mathcal{N}(\mu, \sigma^2)` in ``(mean, log_std)``;
- :func:`score_by_autodiff`   any differentiable log-density, one gradient per sample (``torch.func``);
- :func:`trajectory_log_prob` :math:`\log p_\theta(\tau)` of sampled trajectories of a
  :class:`~pglib.mdp.TabularMDP`, *with* the initial distribution and the transitions, so that
  autodiff can show that the dynamics drop out of the score (the closed-form sum of the policy's
  scores is :func:`pglib.estimators.weighted_score_sum` with unit weights).

Shapes: a batch of ``N`` samples is the leading axis; time is the last axis of a trajectory batch.
"""

from __future__ import annotations

from typing import Callable

import torch

from pglib import validate
from pglib.mdp import DTYPE, TabularMDP

__all__ = ["categorical_score", "gaussian_score", "score_by_autodiff", "trajectory_log_prob"]


def categorical_score(logits, samples) -> torch.Tensor:
    r"""Score of a categorical distribution with softmax logits, with respect to the
    logits.

    .. math:: \frac{\partial}{\partial\theta_k} \log \mathrm{softmax}(\theta)_x
              = 1[x = k] - \mathrm{softmax}(\theta)_k

    Args:
        logits: ``[..., K]`` (a batch of distributions, or one ``[K]`` shared by all
            samples).
        samples: long tensor of outcomes in ``[0, K)``, shape ``[N]`` or broadcastable
            with ``logits[..., 0]``.

    Returns:
        ``[*batch, K]``: one score vector per sample; each sums to zero over ``K``.

    Example::

        >>> categorical_score(torch.zeros(3), torch.tensor([0, 2]))
        tensor([[ 0.6667, -0.3333, -0.3333],
                [-0.3333, -0.3333,  0.6667]], dtype=torch.float64)
    """
    logits, samples = _check_categorical(logits, samples)
    onehot = torch.nn.functional.one_hot(samples, logits.shape[-1]).to(DTYPE)
    return onehot - torch.softmax(logits, -1)


def _check_categorical(logits, samples) -> tuple[torch.Tensor, torch.Tensor]:
    logits = validate.floats(logits, "logits", min_ndim=1)
    K = logits.shape[-1]
    if K < 1:
        raise ValueError(f"logits must have shape [..., K] with K >= 1; got {tuple(logits.shape)}")
    samples = validate.integers(samples, "samples", high=K, why=f"(outcomes of {K} categories)")
    try:
        torch.broadcast_shapes(samples.shape, logits.shape[:-1])
    except RuntimeError:
        raise ValueError(f"samples {tuple(samples.shape)} must broadcast with the batch shape of logits "
                         f"{tuple(logits.shape[:-1])}") from None
    validate.memory(validate.nbytes(*torch.broadcast_shapes(samples.shape, logits.shape[:-1]), K),
                    "categorical_score's [..., K] scores")
    return logits, samples


def gaussian_score(mean, log_std, x) -> torch.Tensor:
    r"""Score of :math:`\mathcal{N}(\mu, \sigma^2)` with respect to ``(mean, log_std)``,
    :math:`\sigma = e^{\text{log\_std}}`.

    .. math:: \frac{\partial \log p}{\partial \mu} = \frac{x-\mu}{\sigma^2}, \qquad
              \frac{\partial \log p}{\partial \log\sigma}
              = \frac{(x-\mu)^2}{\sigma^2} - 1

    Args:
        mean, log_std: floats or tensors broadcastable with ``x``.
        x: samples, any shape ``[...]``.

    Returns:
        ``[..., 2]``: the two partial derivatives, last axis ``(mean, log_std)``.

    Example::

        >>> gaussian_score(0.0, 0.0, torch.tensor([1.0, 0.0]))
        tensor([[ 1.,  0.],
                [ 0., -1.]], dtype=torch.float64)
    """
    mean, log_std, x = _check_gaussian(mean, log_std, x)
    z = (x - mean) * torch.exp(-log_std)  # standardized sample
    d_mean, d_log_std = torch.broadcast_tensors(z * torch.exp(-log_std), z**2 - 1)
    return torch.stack((d_mean, d_log_std), -1)


def _check_gaussian(mean, log_std, x) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    mean, log_std, x = (validate.floats(mean, "mean"), validate.floats(log_std, "log_std"),
                        validate.floats(x, "x"))
    try:
        torch.broadcast_shapes(mean.shape, log_std.shape, x.shape)
    except RuntimeError:
        raise ValueError(f"mean {tuple(mean.shape)}, log_std {tuple(log_std.shape)} and x {tuple(x.shape)} "
                         "must broadcast together") from None
    if bool((log_std > 700).any()) or bool((log_std < -700).any()):
        raise ValueError("log_std must lie in [-700, 700] (exp(log_std) must be a finite, positive float64); "
                         f"got values in [{log_std.min().item():.4g}, {log_std.max().item():.4g}]")
    return mean, log_std, x


def score_by_autodiff(log_prob: Callable[[torch.Tensor], torch.Tensor],
                      params: torch.Tensor) -> torch.Tensor:
    r"""Per-sample gradients of a log-density by automatic differentiation.

    ``log_prob(params)`` must return ``[N]`` values :math:`\log p_\theta(x_i)` (the
    samples are fixed inside the function); the result is the Jacobian
    :math:`\partial \log p_\theta(x_i) / \partial\theta`, shape ``[N, *params.shape]``.

    Cost: the Jacobian is ``N x P`` with ``P = params.numel()``. Forward mode
    (``torch.func.jvp``) needs one pass over the batch per parameter, reverse mode one
    pass per *sample*; this function uses forward mode when ``P <= N`` (the book's small
    categorical, Gaussian and tabular examples: a few passes even for ``N = 10**5``) and
    ``torch.func.jacrev`` otherwise.

    Example::

        >>> x = torch.tensor([0, 2])
        >>> theta = torch.zeros(3, dtype=torch.float64)
        >>> score_by_autodiff(lambda th: torch.log_softmax(th, -1)[x], theta)
        tensor([[ 0.6667, -0.3333, -0.3333],
                [-0.3333, -0.3333,  0.6667]], dtype=torch.float64)
    """
    params, n = _check_log_prob(log_prob, params)
    size = params.numel()
    if size > n:
        return torch.func.jacrev(log_prob)(params)
    columns = []
    for k in range(size):  # derivative along coordinate k: column k of the Jacobian
        direction = torch.zeros(size, dtype=params.dtype).view(params.shape)
        direction.view(-1)[k] = 1.0
        _, tangent = torch.func.jvp(log_prob, (params,), (direction,))
        columns.append(tangent)
    return torch.stack(columns, -1).view(n, *params.shape)


def _check_log_prob(log_prob, params) -> tuple[torch.Tensor, int]:
    """``params`` detached and the number ``N`` of log-densities ``log_prob(params)`` returns."""
    if not callable(log_prob):
        raise validate.ArgumentTypeError(f"log_prob must be a function of params; got {type(log_prob).__name__}")
    if not isinstance(params, torch.Tensor) or not params.is_floating_point():
        raise validate.ArgumentTypeError(f"params must be a floating-point torch tensor; got {validate.describe(params)}")
    params = validate.finite(params.detach(), "params")
    with torch.no_grad():
        out = log_prob(params)
    if not isinstance(out, torch.Tensor) or out.ndim != 1 or not out.is_floating_point():
        raise ValueError(f"log_prob(params) must return a 1-D float tensor [N] of log-densities; got "
                         f"{validate.describe(out)}")
    validate.finite(out, "log_prob(params)")
    validate.memory(validate.nbytes(out.shape[0], params.numel()), "the [N, *params.shape] Jacobian")
    return params, out.shape[0]


def _check_batch(mdp: TabularMDP, states, actions, mask) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    validate.instance(mdp, "mdp", TabularMDP, "a TabularMDP")
    states = validate.integers(states, "trajectories.states", ndim=2, dims="[N, T]", high=mdp.n_states)
    actions = validate.integers(actions, "trajectories.actions", high=mdp.n_actions)
    mask = torch.ones(states.shape, dtype=torch.bool) if mask is None else validate.mask(mask, "trajectories.mask")
    validate.same_shape("trajectories.states", states, **{"trajectories.actions": actions, "trajectories.mask": mask})
    return states, actions, mask


def _fields(trajectories) -> tuple:
    if not (hasattr(trajectories, "states") and hasattr(trajectories, "actions")):
        raise validate.ArgumentTypeError("trajectories must be a Trajectories batch (or have states and actions [N, T]); got "
                        f"{type(trajectories).__name__}")
    return trajectories.states, trajectories.actions, getattr(trajectories, "mask", None)


def trajectory_log_prob(mdp: TabularMDP, trajectories, logits,
                        dynamics: bool = True) -> torch.Tensor:
    r"""Log-probability of each sampled trajectory, differentiable in ``logits``, shape
    ``[N]``.

    .. math:: \log p_\theta(\tau) = \log\mu_0(s_0) + \sum_{t} \log\pi_\theta(a_t|s_t)
              + \sum_{t<T-1} \log P(s_{t+1}|s_t, a_t)

    over the real steps (``mask``) of a :class:`~pglib.sampling.Trajectories` batch (or
    any object with ``states``, ``actions`` ``[N, T]`` and an optional ``mask``).
    ``dynamics=False`` keeps only the policy terms. The next state after the last
    recorded step is not part of the batch and not counted. The dynamics terms do not
    depend on ``logits``, so both versions have the same gradient; the book checks this
    with :func:`score_by_autodiff`.

    Example::

        >>> traj = sampling.sample_trajectories(m, logits, n=100, seed=0)
        >>> log_p = lambda th: trajectory_log_prob(m, traj, th)
        >>> scores = score_by_autodiff(log_p, logits)  # [100, S, A]
    """
    states, actions, mask = _check_batch(mdp, *_fields(trajectories))
    logits = validate.mdp_logits(mdp, logits)
    dynamics = validate.flag(dynamics, "dynamics")
    log_pi = torch.log_softmax(logits, -1)
    zero = torch.zeros((), dtype=DTYPE)
    total = torch.where(mask, log_pi[states, actions], zero).sum(-1)
    if dynamics:
        total = total + torch.log(mdp.initial[states[:, 0]])
        P = mdp.transitions[states[:, :-1], actions[:, :-1], states[:, 1:]]
        step = torch.log(P)
        # leaving a terminal state has probability 1 (absorbing): count real steps only
        total = total + torch.where(mask[:, :-1], step, zero).sum(-1)
    return total
