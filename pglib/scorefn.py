r"""Score functions :math:`\nabla_\theta \log p_\theta(x)`: closed forms, autodiff, and trajectories.

The log-derivative trick rests on one identity, :math:`\nabla_\theta p_\theta = p_\theta \nabla_\theta \log p_\theta`,
which turns the gradient of an expectation into an expectation (Williams 1992):

.. math:: \nabla_\theta\, \mathbb{E}_{x\sim p_\theta}[f(x)] = \mathbb{E}_{x\sim p_\theta}[f(x)\, \nabla_\theta \log p_\theta(x)].

This module holds the scores the book uses:

- :func:`categorical_score`   softmax logits ``[..., K]``: :math:`e_x - \mathrm{softmax}(\theta)`;
- :func:`gaussian_score`      :math:`\mathcal{N}(\mu, \sigma^2)` in ``(mean, log_std)``;
- :func:`score_by_autodiff`   any differentiable log-density, one gradient per sample (``torch.func``);
- :func:`tabular_score`       softmax-policy logits ``[S, A]``: the score of each (state, action), ``[..., S, A]``;
- :func:`per_sample_scores`   a neural policy (:mod:`pglib.practice.policies`): one score per sample, by
  ``torch.func``; :func:`score_function_gradient` their weighted mean, :func:`policy_distribution` the
  action distribution they differentiate;
- :func:`trajectory_log_prob` :math:`\log p_\theta(\tau)` of sampled trajectories of a
  :class:`~pglib.mdp.TabularMDP`, *with* the initial distribution and the transitions, so that
  autodiff can show that the dynamics drop out of the score (the closed-form sum of the policy's
  scores is :func:`pglib.estimators.weighted_score_sum` with unit weights).

Shapes: a batch of ``N`` samples is the leading axis; time is the last axis of a trajectory batch.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import torch
from torch.distributions import Categorical, Distribution, Independent, Normal

from pglib import validate
from pglib.mdp import DTYPE, TabularMDP

__all__ = ["categorical_score", "tabular_score", "gaussian_score", "score_by_autodiff", "trajectory_log_prob",
           "policy_distribution", "per_sample_scores", "score_function_gradient"]


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


def tabular_score(logits, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    r"""Score :math:`\nabla_\theta \log\pi(a|s)` of each (state, action), shape ``[..., S, A]``.

    Dense (it builds ``S x A`` entries per step): meant for small examples and teaching; the
    estimators use :func:`pglib.estimators.weighted_score_sum`, which never materialises it.

    Example: with ``logits = zeros(1, 2)``, ``tabular_score(logits, [0], [1]) == [[[-0.5, 0.5]]]``.
    """
    logits = validate.logits(logits).detach()
    S, A = logits.shape
    states = validate.integers(states, "states", high=S)
    actions = validate.integers(actions, "actions", high=A)
    validate.same_shape("states", states, actions=actions)
    pi = torch.softmax(logits, -1)
    out = torch.nn.functional.one_hot(states, S).to(DTYPE)[..., None] * (
        torch.nn.functional.one_hot(actions, A).to(DTYPE)[..., None, :] - pi)
    return out


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
    params = _check_log_prob(log_prob, params)
    n = log_prob(params).shape[0]  # the number of samples
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


def _check_log_prob(log_prob, params) -> torch.Tensor:
    """``params`` detached, once ``log_prob(params)`` is seen to return ``N`` finite log-densities."""
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
    return params


class _Batch(NamedTuple):
    """The checked fields of a batch of trajectories (``[N, T]`` each)."""

    states: torch.Tensor
    actions: torch.Tensor
    mask: torch.Tensor


def _check_batch(mdp: TabularMDP, states, actions, mask) -> _Batch:
    validate.instance(mdp, "mdp", TabularMDP, "a TabularMDP")
    states = validate.integers(states, "trajectories.states", ndim=2, dims="[N, T]", high=mdp.n_states)
    actions = validate.integers(actions, "trajectories.actions", high=mdp.n_actions)
    mask = torch.ones(states.shape, dtype=torch.bool) if mask is None else validate.mask(mask, "trajectories.mask")
    validate.same_shape("trajectories.states", states, **{"trajectories.actions": actions, "trajectories.mask": mask})
    return _Batch(states, actions, mask)


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
    trajectories = _check_batch(mdp, *_fields(trajectories))
    logits = validate.mdp_logits(mdp, logits)
    dynamics = validate.flag(dynamics, "dynamics")
    states, actions, mask = trajectories.states, trajectories.actions, trajectories.mask
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


# ----------------------------------------------------------------------------- neural policies


def _kind(policy) -> str:
    """``"categorical"`` or ``"gaussian"``: the kind of a :mod:`pglib.practice.policies` network, told
    by its fields (the core of pglib does not import the practice folder)."""
    if isinstance(policy, torch.nn.Module) and hasattr(policy, "net") and hasattr(policy, "obs_dim"):
        if hasattr(policy, "n_actions") and not hasattr(policy, "log_std"):
            return "categorical"
        if hasattr(policy, "act_dim") and hasattr(policy, "log_std"):
            return "gaussian"
    raise validate.ArgumentTypeError(f"policy must be a pglib.practice.policies.CategoricalMLP or GaussianMLP; "
                                     f"got {type(policy).__name__}")


def policy_distribution(policy, obs, params: dict[str, torch.Tensor] | None = None) -> Distribution:
    r"""``policy(obs)`` computed in the parameters' dtype, optionally with ``params`` substituted.

    ``obs [B, obs_dim]`` is converted to the dtype of the parameters (the policies' own ``forward`` casts to
    float32, which float64 parameters refuse). ``params`` maps names of ``policy.named_parameters()`` to
    tensors (as ``torch.func.functional_call`` expects); missing names keep the policy's own.
    Returns ``Categorical(logits [B, A])`` or ``Independent(Normal(mu [B, d], sigma [B, d]), 1)``.
    """
    kind = _kind(policy)
    own = dict(policy.named_parameters())
    if params is not None:
        if not isinstance(params, dict):
            raise validate.ArgumentTypeError(f"params must be a dict of parameter tensors; got {type(params).__name__}")
        unknown = set(params) - set(own)
        if unknown:
            raise ValueError(f"params has names that are not parameters of the policy: {sorted(unknown)}")
        own.update(params)
    dtype = next(iter(own.values())).dtype
    obs = validate.floats(obs, "obs", dtype=dtype, ndim=2, dims=f"[B, {policy.obs_dim}]")
    if obs.shape[-1] != policy.obs_dim:
        raise ValueError(f"obs must have shape [B, {policy.obs_dim}]; got {tuple(obs.shape)}")
    return _distribution(policy, kind, obs, own)


def _distribution(policy, kind: str, obs: torch.Tensor, own: dict) -> Distribution:
    """The formula of :func:`policy_distribution` for checked inputs (no data-dependent checks:
    it runs inside ``torch.func.vmap``)."""
    obs = obs.to(next(iter(own.values())).dtype)
    net_params = {k[len("net."):]: v for k, v in own.items() if k.startswith("net.")}
    out = torch.func.functional_call(policy.net, net_params, (obs,))
    if kind == "categorical":
        return Categorical(logits=out)
    return Independent(Normal(out, own["log_std"].exp().expand_as(out)), 1)


def _check_policy_batch(policy, obs, actions) -> tuple[torch.Tensor, torch.Tensor]:
    """``obs [B, obs_dim]`` and ``actions`` (``[B]`` integers below ``n_actions``, or ``[B, act_dim]`` reals)."""
    kind = _kind(policy)
    obs = validate.floats(obs, "obs", dtype=None, ndim=2, dims=f"[B, {policy.obs_dim}]")
    B = obs.shape[0]
    if obs.shape[1] != policy.obs_dim:
        raise ValueError(f"obs must have shape [B, obs_dim] = [B, {policy.obs_dim}]; got {tuple(obs.shape)}")
    if isinstance(actions, torch.Tensor) and actions.requires_grad:
        raise ValueError("actions must not require grad: the score treats the sampled actions as data")
    if kind == "categorical":
        actions = validate.integers(actions, "actions", shape=(B,), dims="[B]", high=policy.n_actions)
    else:
        actions = validate.floats(actions, "actions", dtype=None, shape=(B, policy.act_dim),
                                  dims=f"[B, act_dim] = [B, {policy.act_dim}]")
    return obs, actions


def per_sample_scores(policy, obs, actions) -> dict[str, torch.Tensor]:
    r"""One score per sample: :math:`\nabla_\theta \log\pi_\theta(a_i|s_i)` for each
    parameter tensor.

    Returns ``{name: [B, *param.shape]}`` in the parameters' dtype, computed with
    ``torch.func.vmap`` over ``torch.func.grad`` of a single sample's log-probability:
    ``B`` separate gradients, never a sum.

    Example (``obs`` ``[B, obs_dim]``, ``actions`` ``[B]`` or ``[B, d]``)::

        >>> scores = per_sample_scores(policy, obs, actions)
        >>> scores["net.2.weight"].shape                  # [B, n_actions, hidden]
    """
    obs, actions = _check_policy_batch(policy, obs, actions)
    params = {k: v.detach() for k, v in policy.named_parameters()}
    kind = _kind(policy)

    def log_prob_one(p, o, a):
        dist = _distribution(policy, kind, o[None], {**params, **p})
        return dist.log_prob(a[None])[0]

    per_sample = torch.func.vmap(torch.func.grad(log_prob_one), in_dims=(None, 0, 0))
    return per_sample(params, obs, actions)


def score_function_gradient(policy, obs, actions, weights, n: int | None = None) -> dict[str, torch.Tensor]:
    r""":math:`\frac1n\sum_{i<B} w_i\,\nabla_\theta\log\pi_\theta(a_i|s_i)`, one tensor per parameter.

    With the steps of ``N`` trajectories flattened into ``B`` samples and ``n = N`` this is the
    REINFORCE estimate; it is minus the gradient of ``surrogate_loss(logp [N, T], weights [N, T])``.
    ``n`` defaults to ``B`` (a mean over steps). ``weights``: ``[B]``.
    """
    obs, actions = _check_policy_batch(policy, obs, actions)
    B = obs.shape[0]
    w = validate.floats(weights, "weights", dtype=None, shape=(B,), dims="[B]")
    n = B if n is None else validate.positive_int(n, "n")
    scores = per_sample_scores(policy, obs, actions)
    return {k: torch.einsum("b,b...->...", w.detach().to(s.dtype), s) / n for k, s in scores.items()}
