r"""The surrogate objective, taken apart: per-sample scores of neural policies, and its exact value.

The surrogate loss :math:`\mathcal L(\theta) = -\frac1N\sum_{i,t}\log\pi_\theta(a_{i,t}|s_{i,t})\hat A_{i,t}`
(:func:`pglib.losses.surrogate_loss`) is built so that autodiff of it gives the score-function
estimator. This module computes that estimator *the other way*, one score per sample, so the two
can be compared, and gives the surrogate's exact expected value on a tabular MDP, so that its
value can be compared with the objective :math:`J`.

- :func:`policy_distribution`: the action distribution of a :class:`pglib.policies.CategoricalMLP`
  or :class:`~pglib.policies.GaussianMLP` in the dtype of its parameters (float64 included) and,
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

from pglib import exact
from pglib.mdp import DTYPE, TabularMDP
from pglib.returns import check_gamma, reward_to_go

__all__ = ["policy_distribution", "per_sample_scores", "score_function_gradient", "expected_surrogate",
           "surrogate_values"]


def _kind(policy) -> str:
    from pglib.policies import CategoricalMLP, GaussianMLP

    if isinstance(policy, CategoricalMLP):
        return "categorical"
    if isinstance(policy, GaussianMLP):
        return "gaussian"
    raise ValueError(f"policy must be a pglib.policies.CategoricalMLP or GaussianMLP; got {type(policy).__name__}")


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
        unknown = set(params) - set(own)
        if unknown:
            raise ValueError(f"params has names that are not parameters of the policy: {sorted(unknown)}")
        own.update(params)
    dtype = next(iter(own.values())).dtype
    obs = torch.as_tensor(obs, dtype=dtype)
    if obs.ndim != 2 or obs.shape[-1] != policy.obs_dim:
        raise ValueError(f"obs must have shape [B, {policy.obs_dim}]; got {tuple(obs.shape)}")
    net_params = {k[len("net."):]: v for k, v in own.items() if k.startswith("net.")}
    out = torch.func.functional_call(policy.net, net_params, (obs,))
    if kind == "categorical":
        return Categorical(logits=out)
    return Independent(Normal(out, own["log_std"].exp().expand_as(out)), 1)


def _check_batch(policy, obs, actions) -> tuple[torch.Tensor, torch.Tensor]:
    obs, actions = torch.as_tensor(obs), torch.as_tensor(actions)
    if actions.requires_grad:
        raise ValueError("actions must not require grad: the score treats the sampled actions as data")
    if obs.ndim != 2 or actions.shape[0] != obs.shape[0]:
        raise ValueError(f"obs must be [B, obs_dim] and actions [B, ...] with the same B; got {tuple(obs.shape)}, "
                         f"{tuple(actions.shape)}")
    return obs, actions


def per_sample_scores(policy, obs, actions) -> dict[str, torch.Tensor]:
    r"""One score per sample: :math:`\nabla_\theta \log\pi_\theta(a_i|s_i)` for each parameter tensor.

    Returns ``{name: [B, *param.shape]}`` in the parameters' dtype, computed with ``torch.func.vmap`` over
    ``torch.func.grad`` of a single sample's log-probability: ``B`` separate gradients, never a sum.

    Example::

        >>> scores = per_sample_scores(policy, obs, actions)     # obs [B, obs_dim], actions [B] or [B, d]
        >>> scores["net.2.weight"].shape                          # [B, n_actions, hidden]
    """
    obs, actions = _check_batch(policy, obs, actions)
    params = {k: v.detach() for k, v in policy.named_parameters()}

    def log_prob_one(p, o, a):
        return policy_distribution(policy, o[None], p).log_prob(a[None])[0]

    return torch.func.vmap(torch.func.grad(log_prob_one), in_dims=(None, 0, 0))(params, obs, actions)


def score_function_gradient(policy, obs, actions, weights, n: int | None = None) -> dict[str, torch.Tensor]:
    r""":math:`\frac1n\sum_{i<B} w_i\,\nabla_\theta\log\pi_\theta(a_i|s_i)`, one tensor per parameter.

    With the steps of ``N`` trajectories flattened into ``B`` samples and ``n = N`` this is the
    REINFORCE estimate; it is minus the gradient of ``surrogate_loss(logp [N, T], weights [N, T])``.
    ``n`` defaults to ``B`` (a mean over steps). ``weights``: ``[B]``.
    """
    scores = per_sample_scores(policy, obs, actions)
    w = torch.as_tensor(weights)
    B = torch.as_tensor(obs).shape[0]
    if w.ndim != 1 or w.shape[0] != B:
        raise ValueError(f"weights must have shape [B] = [{B}]; got {tuple(w.shape)}")
    n = B if n is None else n
    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer; got {n!r}")
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
    gamma = check_gamma(gamma)
    logits = torch.as_tensor(logits, dtype=DTYPE)
    if logits.ndim != 2:
        raise ValueError(f"logits must have shape [S, A]; got {tuple(logits.shape)}")
    log_pi = torch.log_softmax(logits, -1)[traj.states, traj.actions]  # [N, T]
    G = reward_to_go(torch.where(traj.mask, traj.rewards, torch.zeros((), dtype=DTYPE)), gamma)
    disc = gamma ** torch.arange(traj.horizon, dtype=DTYPE)
    return torch.where(traj.mask, disc * log_pi * G, torch.zeros((), dtype=DTYPE)).sum(-1)
