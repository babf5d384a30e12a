r"""The surrogate objective, taken apart: per-sample scores of neural policies, and its exact value.

The surrogate loss :math:`\mathcal L(\theta) = -\frac1N\sum_{i,t}\log\pi_\theta(a_{i,t}|s_{i,t})\hat A_{i,t}`
(:func:`pglib.losses.surrogate_loss`) is built so that autodiff of it gives the score-function
estimator. This module computes that estimator *the other way*, one score per sample, so the two
can be compared, and gives the surrogate's exact expected value on a tabular MDP, so that its
value can be compared with the objective :math:`J`.

- :func:`policy_distribution`: the action distribution of a :class:`pglib.practice.policies.CategoricalMLP`
  or :class:`~pglib.practice.policies.GaussianMLP` in the dtype of its parameters (float64 included) and,
  optionally, with substituted parameters (for ``torch.func``);
- :func:`per_sample_scores`: :math:`\nabla_\theta\log\pi_\theta(a_i|s_i)` for every sample ``i``,
  one tensor ``[B, *param.shape]`` per parameter (``torch.func.vmap`` of ``torch.func.grad``);
- :func:`score_function_gradient`: :math:`\frac1N\sum_i w_i\,\nabla_\theta\log\pi_\theta(a_i|s_i)`;
- :func:`expected_surrogate`: exact :math:`\mathbb E\big[\sum_t\gamma^t\log\pi_\theta(a_t|s_t)\,G_t\big]`;
- :func:`surrogate_values`: the same quantity for each sampled trajectory, ``[N]``.

References: Williams (1992); Schulman et al. (2015, "Gradient estimation using stochastic
computation graphs") for surrogate losses in general.
"""

from __future__ import annotations

import torch
from torch.distributions import Categorical, Distribution, Independent, Normal

from pglib import exact, validate
from pglib.mdp import DTYPE, TabularMDP
from pglib.returns import reward_to_go

__all__ = ["policy_distribution", "per_sample_scores", "score_function_gradient", "expected_surrogate",
           "surrogate_values"]


def _kind(policy) -> str:
    from pglib.practice.policies import CategoricalMLP, GaussianMLP

    if isinstance(policy, CategoricalMLP):
        return "categorical"
    if isinstance(policy, GaussianMLP):
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


def _check_batch(policy, obs, actions) -> tuple[torch.Tensor, torch.Tensor]:
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
    obs, actions = _check_batch(policy, obs, actions)
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
    obs, actions = _check_batch(policy, obs, actions)
    B = obs.shape[0]
    w = validate.floats(weights, "weights", dtype=None, shape=(B,), dims="[B]")
    n = B if n is None else validate.positive_int(n, "n")
    scores = per_sample_scores(policy, obs, actions)
    return {k: torch.einsum("b,b...->...", w.detach().to(s.dtype), s) / n for k, s in scores.items()}


def expected_surrogate(mdp: TabularMDP, logits) -> torch.Tensor:
    r"""Exact expected value of the (discounted reward-to-go) surrogate objective, finite horizon:

    .. math:: S(\theta) = \mathbb E_{\tau\sim\pi_\theta}\Big[\sum_{t<T}\gamma^t\log\pi_\theta(a_t|s_t)\,G_t\Big]
              = \sum_{t<T}\gamma^t\sum_s p_t(s)\sum_a\pi_\theta(a|s)\log\pi_\theta(a|s)\,Q_t(s,a),

    with :math:`G_t` the reward-to-go and :math:`p_t(s) = P(s_t = s)`. The sampled surrogate loss of a batch
    estimates :math:`-S(\theta)`; its gradient at fixed samples estimates :math:`\nabla J`, but :math:`S`
    itself is a different function of :math:`\theta` than :math:`J`. A scalar tensor (not differentiable:
    the gradient of this expectation is not the policy gradient).
    """
    exact._need_finite(mdp, "expected_surrogate")
    with torch.no_grad():
        logits = mdp.check_logits(logits)
        log_pi = torch.log_softmax(logits, -1)
        pi = log_pi.exp()
        p = exact.time_occupancy(mdp, logits)  # [T, S]
        Q = exact.time_q_values(mdp, logits)  # [T, S, A]
        disc = mdp.gamma ** torch.arange(mdp.horizon, dtype=DTYPE)
        return torch.einsum("t,ts,sa,tsa->", disc, p, pi * log_pi, Q)


def surrogate_values(traj, logits, gamma: float) -> torch.Tensor:
    r"""Per-trajectory :math:`\sum_t m_t\,\gamma^t\log\pi_\theta(a_t|s_t)\,G_t`, shape ``[N]``; its mean
    estimates :func:`expected_surrogate`. ``traj``: a :class:`pglib.sampling.Trajectories` batch."""
    from pglib.estimators import _check_logits, _check_traj

    traj, gamma = _check_traj(traj), validate.gamma(gamma)
    logits = _check_logits(logits, traj)
    log_pi = torch.log_softmax(logits, -1)[traj.states, traj.actions]  # [N, T]
    G = reward_to_go(torch.where(traj.mask, traj.rewards, torch.zeros((), dtype=DTYPE)), gamma)
    disc = gamma ** torch.arange(traj.horizon, dtype=DTYPE)
    return torch.where(traj.mask, disc * log_pi * G, torch.zeros((), dtype=DTYPE)).sum(-1)
