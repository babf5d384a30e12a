r"""Group losses of LLM reinforcement learning, each written once from its paper, and their exact means.

A batch is ``K`` groups of ``G`` responses, each group answering one prompt (sample it with
``pglib.sample_trajectories(mdp, logits, K * G, group_size=G)`` on a
:func:`pglib.mdp.sequence_problem`). :func:`group_batch` turns it into a :class:`GroupBatch`
(``[K, G, T]`` token log-probabilities, ``[K, G]`` sequence rewards and lengths), and every loss
here maps a :class:`GroupBatch` to the scalar to **minimize**. With
:math:`\rho_{i,t} = \pi_\theta(o_{i,t}|q, o_{i,<t}) / \pi_{\mathrm{old}}(o_{i,t}|q, o_{i,<t})`
(1 on-policy, where ``logp_old`` is ``logp`` detached), :math:`|o_i|` the length of response
:math:`i`, :math:`R_i` its reward and :math:`L` the longest response allowed:

==============  ================================================================  =========================
loss            advantage :math:`A_i` and per-token term                          reduction over tokens
==============  ================================================================  =========================
``reinforce``   :math:`R_i`; :math:`-A_i \log\pi` (Williams 1992)                 sum per response, mean
``rloo``        :math:`R_i - \frac{1}{G-1}\sum_{j\ne i} R_j` (Ahmadian 2024)      sum per response, mean
``grpo``        :math:`(R_i - \bar R)/(\mathrm{std}(R) + \varepsilon)`;           mean per response, then
                PPO clip :math:`-\min(\rho A, \mathrm{clip}(\rho) A)`             mean over the group
                (Shao et al. 2024)
``dr_grpo``     :math:`R_i - \bar R`; PPO clip (Liu et al. 2025)                  sum / (G L)
``dapo``        as ``grpo``, clip :math:`[1-0.2, 1+0.28]` (Yu et al. 2025)        sum / total tokens
``bnpo``        as ``grpo``; TRL's ``bnpo``: tokens of the local batch            sum / total tokens
``gspo``        as ``grpo``; sequence ratio                                       mean over the group
                :math:`s_i = \exp(\frac{1}{|o_i|}\sum_t \log\rho_{i,t})`,
                :math:`-\min(s_i A_i, \mathrm{clip}(s_i) A_i)` (Zheng 2025)
``cispo``       as ``grpo``, per-token term                                       sum / total tokens
                :math:`-\mathrm{sg}(\min(\rho, 1+\varepsilon_h))\,A\log\pi`
                (MiniMax 2025)
==============  ================================================================  =========================

The standard deviation is the sample one (``torch.std``, divisor ``G - 1``), as in TRL. ``bnpo``
here is the token normalization TRL ships under that name; the BNPO paper (Xiao et al. 2025)
instead divides by a Beta density of the group's success rate, which is not implemented.
On one process TRL's ``dapo`` and ``bnpo`` normalizations coincide.

The KL penalty to a reference policy uses the per-token estimators of
:math:`\mathrm{KL}(\pi_\theta\|\pi_{\mathrm{ref}})` (Schulman 2020), with
:math:`r = \pi_{\mathrm{ref}}/\pi_\theta`: ``k1`` :math:`= -\log r`, ``k2`` :math:`= \frac12(\log r)^2`,
``k3`` :math:`= r - 1 - \log r` (:func:`kl_terms`), used as a loss (:func:`kl_loss`) or as a
reward (:func:`kl_reward_loss`).

Exact expectations: :func:`expected_gradient` lists every group of ``G`` responses to every
prompt (``n_prompts * n_responses**G`` groups, vectorized: one loss call and one backward pass)
and returns :math:`\mathbb E[-\nabla\,\text{loss}]` for a batch of one group, under the policy
that sampled it. :func:`response_weights` gives the weight :math:`w(q, o)` with
:math:`\mathbb E[-\nabla\text{loss}] = \sum_{q,o} \mu(q)\pi(o|q)\, w(q, o)\, \nabla\log\pi(o|q)`
(on-policy), and :func:`decompose` splits a bias into scale, difficulty and length parts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from pglib import validate
from pglib.enumeration import all_trajectories
from pglib.mdp import DTYPE, SequenceMDP, TabularMDP
from pglib.sampling import Trajectories

__all__ = ["GroupBatch", "group_batch", "group_advantages", "group_loss", "LOSSES", "reinforce", "rloo", "grpo", "dr_grpo",
           "dapo", "bnpo", "gspo", "cispo", "kl_terms", "kl_loss", "kl_reward_loss", "for_check",
           "Enumerated", "enumerate_groups", "expected_gradient", "response_weights", "group_gradients", "decompose",
           "exact_kl", "verdict", "Mistake", "MISTAKES"]

STD_EPS = 1e-4  #: added to the group's standard deviation (TRL's value)


@dataclass(frozen=True)
class GroupBatch:
    """``K`` groups of ``G`` responses, ``T`` token slots.

    Attributes: ``logp`` ``[K, G, T]`` (differentiable), ``logp_old`` and ``logp_ref``
    ``[K, G, T]`` (constants), ``mask`` bool ``[K, G, T]``, ``rewards`` ``[K, G]`` (sequence
    rewards), ``lengths`` ``[K, G]`` (tokens per response, at least 1), ``max_length`` ``L``.
    """

    logp: torch.Tensor
    logp_old: torch.Tensor
    logp_ref: torch.Tensor
    mask: torch.Tensor
    rewards: torch.Tensor
    lengths: torch.Tensor
    max_length: int

    @property
    def group_size(self) -> int:
        return self.rewards.shape[1]


def _fits(traj: Trajectories, logits: torch.Tensor, name: str) -> torch.Tensor:
    """``logits`` if their shape fits the MDP ``traj`` was sampled from (when it is recorded)."""
    if traj.n_states is not None and tuple(logits.shape) != (traj.n_states, traj.n_actions):
        raise ValueError(f"{name} must have shape [S, A] = [{traj.n_states}, {traj.n_actions}] to match the MDP "
                         f"the batch was sampled from; got {tuple(logits.shape)}")
    return logits


def _check_batch(b, per_group: bool = False) -> None:
    """The door of every group loss: ``b`` a :class:`GroupBatch`, ``per_group`` a flag."""
    validate.instance(b, "b", GroupBatch, "a pglib.llm.GroupBatch (see group_batch)")
    validate.flag(per_group, "per_group")


def _token_logp(logits: torch.Tensor, states, actions, mask) -> torch.Tensor:
    logp = torch.log_softmax(logits, -1)[states, actions]
    return torch.where(mask, logp, torch.zeros((), dtype=logp.dtype))


def group_batch(traj: Trajectories, logits, group_size: int, logits_old=None, logits_ref=None) -> GroupBatch:
    """A sampled (or listed) batch of ``K * G`` responses as a :class:`GroupBatch`.

    ``logits`` ``[S, A]`` give the differentiable ``logp``; ``logits_old`` (default: ``logits``
    detached, i.e. on-policy) the behaviour log-probabilities; ``logits_ref`` (default: the
    old ones) the reference policy of the KL terms.
    """
    validate.instance(traj, "traj", Trajectories)
    G = validate.positive_int(group_size, "group_size")
    if traj.n % G:
        raise ValueError(f"group_size must divide the batch: {traj.n} responses do not split into groups of {G}")
    logits = validate.floats(logits, "logits", dtype=None if isinstance(logits, torch.Tensor) else DTYPE, ndim=2)
    _fits(traj, logits, "logits")
    K, T = traj.n // G, traj.horizon
    mask = traj.mask
    logp = _token_logp(logits, traj.states, traj.actions, mask)
    with torch.no_grad():
        old = logp.detach() if logits_old is None else _token_logp(
            _fits(traj, validate.floats(logits_old, "logits_old", ndim=2), "logits_old"),
            traj.states, traj.actions, mask)
        ref = old if logits_ref is None else _token_logp(
            _fits(traj, validate.floats(logits_ref, "logits_ref", ndim=2), "logits_ref"),
            traj.states, traj.actions, mask)
    shape = (K, G, T)
    return GroupBatch(logp.reshape(shape), old.reshape(shape), ref.reshape(shape), mask.reshape(shape),
                      traj.masked_rewards.sum(1).reshape(K, G), mask.sum(1).reshape(K, G).clamp(min=1), T)


def group_advantages(rewards: torch.Tensor, baseline: str | None = "mean", scale: str | None = None,
                     eps: float = STD_EPS) -> torch.Tensor:
    r"""Advantages ``[K, G]`` from sequence rewards ``[K, G]``.

    ``baseline``: ``"mean"`` (the group mean, the response itself included), ``"leave_one_out"``
    (the mean of the other ``G - 1``), or ``None``. ``scale``: ``"std"`` divides by the
    group's sample standard deviation plus ``eps``; ``None`` does not.
    """
    rewards = validate.floats(rewards, "rewards", ndim=2)
    validate.real(eps, "eps", low=0.0)
    validate.one_of(baseline, "baseline", ("mean", "leave_one_out", None))
    validate.one_of(scale, "scale", ("std", None))
    G = rewards.shape[1]
    if baseline == "mean":
        adv = rewards - rewards.mean(1, keepdim=True)
    elif baseline == "leave_one_out":
        if G < 2:
            raise ValueError("baseline='leave_one_out' needs group_size >= 2")
        adv = (rewards - rewards.mean(1, keepdim=True)) * (G / (G - 1))
    else:
        adv = rewards
    if scale == "std":
        if G < 2:
            raise ValueError("scale='std' needs group_size >= 2")
        adv = adv / (rewards.std(1, keepdim=True) + eps)
    return adv


# ----------------------------------------------------------------------------- per-token terms and reductions


def _clip_term(b: GroupBatch, adv: torch.Tensor, eps_low: float, eps_high: float) -> torch.Tensor:
    """PPO's clipped per-token loss ``[K, G, T]`` with a per-response advantage ``[K, G]``."""
    ratio = torch.exp(b.logp - b.logp_old)
    a = adv[..., None]
    return -torch.minimum(ratio * a, ratio.clamp(1 - eps_low, 1 + eps_high) * a)


def _reduce(terms: torch.Tensor, b: GroupBatch, how: str, per_group: bool) -> torch.Tensor:
    """Per-token terms ``[K, G, T]`` -> the loss (scalar) or, ``per_group``, one value per group ``[K]``
    (the loss each group would have as a batch of its own)."""
    terms = torch.where(b.mask, terms, torch.zeros((), dtype=terms.dtype))
    seq = terms.sum(-1)  # [K, G]
    if how == "sequence_sum":  # sum over a response's tokens, mean over responses
        per = seq.mean(1)
    elif how == "sequence_mean":  # mean over a response's tokens, mean over the group
        per = (seq / b.lengths).mean(1)
    elif how == "constant":  # sum over tokens / (G L)
        per = seq.sum(1) / (b.group_size * b.max_length)
    elif how == "token_mean":  # sum over tokens / tokens of the batch
        if not per_group:
            return seq.sum() / b.lengths.sum()
        per = seq.sum(1) / b.lengths.sum(1)
    else:  # pragma: no cover - internal
        raise AssertionError(how)
    return per if per_group else per.mean()


def group_loss(b: GroupBatch, per_group: bool = False, scale: str | None = "std",
               reduction: str = "sequence_mean", epsilon: float = 0.2) -> torch.Tensor:
    r"""The GRPO family with its two choices free: mean-centred advantage, divided by the group's
    std (``scale="std"``) or not (``None``), reduced over tokens by ``reduction``:
    ``"sequence_mean"`` (GRPO), ``"token_mean"`` (DAPO), ``"constant"`` (Dr. GRPO) or
    ``"sequence_sum"``. ``grpo`` is ``("std", "sequence_mean")``; ``dr_grpo`` is
    ``(None, "constant")``."""
    _check_batch(b, per_group)
    validate.one_of(scale, "scale", ("std", None))
    validate.one_of(reduction, "reduction", ("sequence_mean", "token_mean", "constant", "sequence_sum"))
    validate.clip_eps(epsilon, "epsilon")
    adv = group_advantages(b.rewards, "mean", scale)
    return _reduce(_clip_term(b, adv, epsilon, epsilon), b, reduction, per_group)


def reinforce(b: GroupBatch, per_group: bool = False) -> torch.Tensor:
    r"""REINFORCE with the sequence reward: :math:`-\frac{1}{KG}\sum_i R_i \log\pi(o_i)`."""
    _check_batch(b, per_group)
    return _reduce(-b.logp * b.rewards[..., None], b, "sequence_sum", per_group)


def rloo(b: GroupBatch, per_group: bool = False) -> torch.Tensor:
    r"""REINFORCE leave-one-out (Ahmadian et al. 2024): advantage :math:`R_i - \mathrm{mean}_{j\ne i} R_j`."""
    _check_batch(b, per_group)
    adv = group_advantages(b.rewards, "leave_one_out")
    return _reduce(-b.logp * adv[..., None], b, "sequence_sum", per_group)


def grpo(b: GroupBatch, per_group: bool = False, epsilon: float = 0.2,
         beta: float = 0.0, kl: str = "k3") -> torch.Tensor:
    r"""GRPO (Shao et al. 2024): standardized group advantage, PPO clip, the mean
    over each response's tokens, then over the group; ``beta > 0`` adds ``beta``
    times the per-token KL estimator ``kl`` (``"k3"`` in the paper)."""
    _check_batch(b, per_group)
    validate.clip_eps(epsilon, "epsilon")
    beta = validate.real(beta, "beta", low=0.0)
    validate.one_of(kl, "kl", ("k1", "k2", "k3"))
    adv = group_advantages(b.rewards, "mean", "std")
    terms = _clip_term(b, adv, epsilon, epsilon)
    if beta:
        terms = terms + beta * kl_terms(b, kl)
    return _reduce(terms, b, "sequence_mean", per_group)


def dr_grpo(b: GroupBatch, per_group: bool = False, epsilon: float = 0.2) -> torch.Tensor:
    r"""Dr. GRPO (Liu et al. 2025): no division by the std, the token sum divided by ``G L``."""
    _check_batch(b, per_group)
    validate.clip_eps(epsilon, "epsilon")
    adv = group_advantages(b.rewards, "mean")
    return _reduce(_clip_term(b, adv, epsilon, epsilon), b, "constant", per_group)


def dapo(b: GroupBatch, per_group: bool = False, eps_low: float = 0.2, eps_high: float = 0.28) -> torch.Tensor:
    r"""DAPO's token-level loss (Yu et al. 2025): clip-higher, the token sum over the batch's token count."""
    _check_batch(b, per_group)
    validate.clip_eps(eps_low, "eps_low")
    validate.real(eps_high, "eps_high", low=0.0, low_open=True)
    adv = group_advantages(b.rewards, "mean", "std")
    return _reduce(_clip_term(b, adv, eps_low, eps_high), b, "token_mean", per_group)


def bnpo(b: GroupBatch, per_group: bool = False, epsilon: float = 0.2) -> torch.Tensor:
    r"""TRL's ``bnpo`` loss type: GRPO's advantage and clip, normalized by the tokens of the local batch."""
    _check_batch(b, per_group)
    validate.clip_eps(epsilon, "epsilon")
    adv = group_advantages(b.rewards, "mean", "std")
    return _reduce(_clip_term(b, adv, epsilon, epsilon), b, "token_mean", per_group)


def gspo(b: GroupBatch, per_group: bool = False, eps_low: float = 3e-4, eps_high: float = 4e-4) -> torch.Tensor:
    r"""GSPO (Zheng et al. 2025): the length-normalized sequence ratio
    :math:`s_i = (\pi(o_i)/\pi_\mathrm{old}(o_i))^{1/|o_i|}`, clipped, one term per response."""
    _check_batch(b, per_group)
    validate.clip_eps(eps_low, "eps_low")
    validate.real(eps_high, "eps_high", low=0.0, low_open=True)
    adv = group_advantages(b.rewards, "mean", "std")
    logr = torch.where(b.mask, b.logp - b.logp_old, torch.zeros((), dtype=b.logp.dtype)).sum(-1) / b.lengths
    s = torch.exp(logr)
    per_seq = -torch.minimum(s * adv, s.clamp(1 - eps_low, 1 + eps_high) * adv)  # [K, G]
    per = per_seq.mean(1)
    return per if per_group else per.mean()


def cispo(b: GroupBatch, per_group: bool = False, eps_high: float = 0.28) -> torch.Tensor:
    r"""CISPO (MiniMax 2025): the clipped ratio as a constant weight on :math:`A\log\pi`, token mean."""
    _check_batch(b, per_group)
    validate.real(eps_high, "eps_high", low=0.0, low_open=True)
    adv = group_advantages(b.rewards, "mean", "std")
    weight = torch.exp(b.logp - b.logp_old).clamp(max=1 + eps_high).detach()
    return _reduce(-weight * adv[..., None] * b.logp, b, "token_mean", per_group)


#: the listed losses by name
LOSSES: dict[str, Callable] = {f.__name__: f for f in (reinforce, rloo, grpo, dr_grpo, dapo, bnpo, gspo, cispo)}


# ----------------------------------------------------------------------------- KL to a reference


def kl_terms(b: GroupBatch, estimator: str = "k3") -> torch.Tensor:
    r"""Per-token estimates ``[K, G, T]`` of :math:`\mathrm{KL}(\pi_\theta\|\pi_\mathrm{ref})` at the sampled tokens
    (0 at masked steps): ``k1`` :math:`= -\log r`, ``k2`` :math:`= (\log r)^2/2`, ``k3`` :math:`= r - 1 - \log r`,
    :math:`\log r = \log\pi_\mathrm{ref} - \log\pi_\theta`."""
    validate.instance(b, "b", GroupBatch, "a pglib.llm.GroupBatch (see group_batch)")
    validate.one_of(estimator, "estimator", ("k1", "k2", "k3"))
    logr = b.logp_ref - b.logp
    k = {"k1": lambda: -logr, "k2": lambda: 0.5 * logr ** 2, "k3": lambda: torch.expm1(logr) - logr}[estimator]()
    return torch.where(b.mask, k, torch.zeros((), dtype=k.dtype))


def kl_loss(b: GroupBatch, estimator: str = "k3", per_group: bool = False) -> torch.Tensor:
    """The KL estimate used as a loss: the per-token estimator summed over each response's tokens,
    averaged over responses, differentiated through ``logp``."""
    _check_batch(b, per_group)
    return _reduce(kl_terms(b, estimator), b, "sequence_sum", per_group)


def kl_reward_loss(b: GroupBatch, estimator: str = "k1", per_group: bool = False) -> torch.Tensor:
    r"""The KL estimate used as a (negative) reward: a REINFORCE loss whose return at token ``t`` is
    the estimator summed over tokens ``t' >= t`` (held constant), so its gradient estimates
    :math:`\nabla\,\mathbb E[\sum_t k_t]` by the score function alone."""
    _check_batch(b, per_group)
    k = kl_terms(b, estimator).detach()
    to_go = k.flip(-1).cumsum(-1).flip(-1)
    return _reduce(b.logp * to_go, b, "sequence_sum", per_group)


# ----------------------------------------------------------------------------- adapters


def for_check(loss: Callable, group_size: int, **options) -> Callable:
    """``loss(GroupBatch)`` as ``f(traj, logits)`` for :func:`pglib.check_loss` (on-policy)."""
    validate.function(loss, "loss", "loss(b: GroupBatch, **options) -> a scalar tensor")
    validate.positive_int(group_size, "group_size")

    def f(traj: Trajectories, logits: torch.Tensor) -> torch.Tensor:
        return loss(group_batch(traj, logits, group_size), **options)

    f.__name__ = getattr(loss, "__name__", "loss")
    return f


# ----------------------------------------------------------------------------- exact expectations


@dataclass(frozen=True)
class Enumerated:
    """Every response of a :func:`~pglib.mdp.sequence_problem`: ``traj`` (``M`` responses),
    ``prob`` ``[M]`` (:math:`\\mu(q)\\pi(o|q)` under the sampling policy), ``prompt`` ``[M]``,
    ``first`` ``[M]`` (first state), ``groups`` ``[C, G]`` (indices into the ``M`` responses),
    ``group_prob`` ``[C]``."""

    traj: Trajectories
    prob: torch.Tensor
    prompt: torch.Tensor
    first: torch.Tensor
    groups: torch.Tensor
    group_prob: torch.Tensor


def enumerate_groups(mdp: TabularMDP, logits, group_size: int, max_groups: int = 2_000_000) -> Enumerated:
    """All groups of ``group_size`` responses to one first state, with their probabilities under
    ``softmax(logits)``."""
    validate.instance(mdp, "mdp", TabularMDP)
    G = validate.positive_int(group_size, "group_size")
    validate.positive_int(max_groups, "max_groups")
    e = all_trajectories(mdp, logits)
    first = e.states[:, 0]
    members = [torch.nonzero(first == s).flatten() for s in torch.unique(first).tolist()]
    count = sum(len(ix) ** G for ix in members)
    if count > max_groups:
        raise ValueError(f"group_size={G} gives {count} > max_groups={max_groups} groups to list")
    groups, probs = [], []
    for ix in members:
        mu = e.prob[ix].sum()
        combos = torch.cartesian_prod(*([ix] * G)).reshape(-1, G)
        groups.append(combos)
        probs.append(mu * torch.prod(e.prob[combos] / mu, dim=1))
    prompt = mdp.prompt[first] if isinstance(mdp, SequenceMDP) else first
    return Enumerated(e.trajectories, e.prob, prompt, first, torch.cat(groups), torch.cat(probs))


def _stacked(en: Enumerated, logits, logits_old, logits_ref, offset=None) -> GroupBatch:
    """The listed groups as one :class:`GroupBatch` of ``C`` groups (``offset`` ``[M]``: added to
    every token log-probability of a response, for :func:`response_weights`)."""
    t = en.traj
    logp = _token_logp(logits, t.states, t.actions, t.mask)
    if offset is not None:
        logp = logp + offset[:, None] * t.mask
    with torch.no_grad():
        old = _token_logp(logits_old, t.states, t.actions, t.mask)
        ref = old if logits_ref is None else _token_logp(logits_ref, t.states, t.actions, t.mask)
    g = en.groups
    return GroupBatch(logp[g], old[g], ref[g], t.mask[g], t.masked_rewards.sum(1)[g],
                      t.mask.sum(1).clamp(min=1)[g], t.horizon)


def expected_gradient(loss: Callable, mdp: TabularMDP, logits, group_size: int, logits_old=None,
                      logits_ref=None, **options) -> torch.Tensor:
    r""":math:`\mathbb E[-\nabla_\theta\,\text{loss}]` ``[S, A]`` at ``logits`` for a batch of one group of
    ``group_size`` responses sampled under ``logits_old`` (default ``logits``: on-policy), exactly.

    ``loss(b, per_group=True, **options)`` must return one value per group of a
    :class:`GroupBatch` (every loss in :data:`LOSSES` does)."""
    validate.function(loss, "loss", "loss(b: GroupBatch, per_group=True, **options) -> [K]")
    validate.instance(mdp, "mdp", TabularMDP)
    logits = validate.mdp_logits(mdp, logits).detach()
    old = logits if logits_old is None else validate.mdp_logits(mdp, logits_old, "logits_old").detach()
    ref = None if logits_ref is None else validate.mdp_logits(mdp, logits_ref, "logits_ref").detach()
    en = enumerate_groups(mdp, old, group_size)
    theta = logits.clone().requires_grad_(True)
    values = loss(_stacked(en, theta, old, ref), per_group=True, **options)
    (g,) = torch.autograd.grad((en.group_prob * values).sum(), theta)
    return -g


def response_weights(loss: Callable, mdp: TabularMDP, logits, group_size: int, **options):
    r"""On-policy weights: ``(w, en)`` with ``w`` ``[M]`` such that
    :math:`\mathbb E[-\nabla\text{loss}] = \sum_m p_m w_m \nabla\log\pi(o_m)`, where ``en`` lists the
    ``M`` responses. Valid when the loss's derivative is the same for every token of a response
    (true on-policy for all of :data:`LOSSES`)."""
    validate.function(loss, "loss", "loss(b: GroupBatch, per_group=True, **options) -> [K]")
    validate.instance(mdp, "mdp", TabularMDP)
    logits = validate.mdp_logits(mdp, logits).detach()
    en = enumerate_groups(mdp, logits, group_size)
    offset = torch.zeros(en.prob.shape[0], dtype=DTYPE, requires_grad=True)
    values = loss(_stacked(en, logits, logits, None, offset), per_group=True, **options)
    (d,) = torch.autograd.grad((en.group_prob * values).sum(), offset)
    lengths = en.traj.mask.sum(1).clamp(min=1)
    return -d / (lengths * en.prob), en


def group_gradients(loss: Callable, mdp: TabularMDP, logits, traj: Trajectories, group_size: int,
                    **options) -> torch.Tensor:
    r"""On-policy :math:`-\nabla\text{loss}` of each group of ``traj`` as a batch of its own, ``[K, S, A]``,
    in one backward pass: each response's coefficient comes from autograd with respect to an offset
    added to its token log-probabilities, times its score :math:`\nabla\log\pi(o)`. Valid when the
    loss's derivative is the same for every token of a response (all of :data:`LOSSES` on-policy)."""
    validate.function(loss, "loss", "loss(b: GroupBatch, per_group=True, **options) -> [K]")
    validate.instance(mdp, "mdp", TabularMDP)
    logits = validate.mdp_logits(mdp, logits).detach()
    b = group_batch(traj, logits, group_size)
    offset = torch.zeros(b.rewards.shape, dtype=DTYPE, requires_grad=True)
    shifted = GroupBatch(b.logp + offset[..., None] * b.mask, b.logp_old, b.logp_ref, b.mask, b.rewards,
                         b.lengths, b.max_length)
    (d,) = torch.autograd.grad(loss(shifted, per_group=True, **options).sum(), offset)
    coef = -(d / b.lengths).reshape(-1)  # [N]
    score = _score_sums(mdp, logits, traj)
    return (coef[:, None, None] * score).reshape(-1, group_size, *score.shape[1:]).sum(1)


def decompose(weights: torch.Tensor, en: Enumerated, mdp: SequenceMDP, logits) -> dict:
    r"""Split the on-policy mean :math:`\sum_m p_m w_m \nabla\log\pi(o_m)` against :math:`\nabla J`.

    Within each prompt ``q`` the weights are fitted (least squares under :math:`\pi(\cdot|q)`) by
    :math:`\lambda_q R + b_q`; the baseline :math:`b_q` has mean-zero gradient, so

    - ``scale``: :math:`(c - 1)\nabla J` with :math:`c` the mean of :math:`\lambda_q` over prompts;
    - ``difficulty``: :math:`\sum_q (\lambda_q - c)\,\nabla J|_q` (prompts weighted unequally);
    - ``length``: the rest, from the part of :math:`w` that is not a function of the reward
      (e.g. a factor :math:`1/|o|`).

    Returns a dict of ``[S, A]`` tensors (``mean``, ``gradient``, ``scale``, ``difficulty``,
    ``length``; the last three sum to ``mean - gradient``) and ``lambdas`` ``[n_prompts]``.
    """
    validate.instance(en, "en", Enumerated, "a pglib.llm.Enumerated (see enumerate_groups)")
    validate.instance(mdp, "mdp", SequenceMDP, "a pglib.mdp.SequenceMDP (see sequence_problem)")
    weights = validate.floats(weights, "weights", shape=(en.prob.shape[0],), dims="[M] (one per listed response)")
    logits = validate.mdp_logits(mdp, logits).detach()
    t = en.traj
    score = _score_sums(mdp, logits, t)  # [M, S, A]
    R = t.masked_rewards.sum(1)
    mean = torch.einsum("m,msa->sa", en.prob * weights, score)
    grad = torch.einsum("m,msa->sa", en.prob * R, score)
    lambdas = torch.zeros(mdp.n_prompts, dtype=DTYPE)
    fitted = torch.zeros_like(weights)
    for q in range(mdp.n_prompts):
        on = en.prompt == q
        p = en.prob[on] / en.prob[on].sum()
        r, w = R[on], weights[on]
        rm, wm = (p * r).sum(), (p * w).sum()
        var = (p * (r - rm) ** 2).sum()
        lam = (p * (r - rm) * (w - wm)).sum() / var if var > 0 else torch.zeros((), dtype=DTYPE)
        lambdas[q] = lam
        fitted[on] = lam * r + (wm - lam * rm)
    c = lambdas.mean()
    difficulty = torch.zeros_like(grad)
    rows = mdp.prompt
    for q in range(mdp.n_prompts):
        difficulty[rows == q] = (lambdas[q] - c) * grad[rows == q]
    length = torch.einsum("m,msa->sa", en.prob * (weights - fitted), score)
    return {"mean": mean, "gradient": grad, "scale": (c - 1) * grad, "difficulty": difficulty,
            "length": length, "lambdas": lambdas}


def _score_sums(mdp: TabularMDP, logits: torch.Tensor, t: Trajectories) -> torch.Tensor:
    r""":math:`\nabla_\text{logits}\log\pi(o_m)` ``[M, S, A]`` for every listed response."""
    pi = torch.softmax(logits, -1)
    M, T = t.states.shape
    S, A = mdp.n_states, mdp.n_actions
    onehot = torch.nn.functional.one_hot(t.actions, A).to(DTYPE) - pi[t.states]  # [M, T, A]
    onehot = onehot * t.mask[..., None]
    out = torch.zeros(M, S, A, dtype=DTYPE)
    out.index_put_((torch.arange(M)[:, None].expand(M, T), t.states), onehot, accumulate=True)
    return out


def exact_kl(mdp: TabularMDP, logits, logits_ref) -> torch.Tensor:
    r""":math:`\mathrm{KL}(p_\theta\|p_\mathrm{ref})` between the response distributions (a differentiable
    scalar in ``logits``), by listing every response."""
    validate.instance(mdp, "mdp", TabularMDP)
    logits = validate.mdp_logits(mdp, logits)
    ref = validate.mdp_logits(mdp, logits_ref, "logits_ref").detach()
    with torch.no_grad():
        e = all_trajectories(mdp, logits.detach())
    logp = _token_logp(logits, e.states, e.actions, e.mask).sum(1)
    logq = _token_logp(ref, e.states, e.actions, e.mask).sum(1)
    p = torch.exp(logp) * mdp.initial[e.states[:, 0]]
    return (p * (logp - logq)).sum()


def verdict(mean: torch.Tensor, gradient: torch.Tensor, tol: float = 1e-9) -> dict:
    """Exact verdict of a mean gradient: ``"grad J"``, ``"positive multiple"`` or ``"other"``, with
    the scale ``c = <mean, grad>/|grad|^2``, the bias as a share of ``|grad J|``, the share left
    after the best scale, and the angle in degrees."""
    gradient = validate.floats(gradient, "gradient", dtype=None)
    mean = validate.floats(mean, "mean", dtype=None, shape=tuple(gradient.shape), dims="of gradient")
    validate.real(tol, "tol", low=0.0)
    if float(gradient.detach().norm()) == 0.0:
        raise ValueError("gradient must not be zero (the verdict measures against its length)")
    m, g = mean.reshape(-1), gradient.reshape(-1)
    gn = float(g.norm())
    c = float(m @ g) / gn ** 2
    bias = float((m - g).norm()) / gn
    off = float((m - c * g).norm()) / gn
    cos = float(m @ g) / (float(m.norm()) * gn) if float(m.norm()) > 0 else 0.0
    angle = math.degrees(math.acos(max(-1.0, min(1.0, cos))))
    kind = "grad J" if bias < tol else ("positive multiple" if off < tol and c > 0 else "other")
    return {"verdict": kind, "scale": c, "bias_share": bias, "off_scale_share": off, "angle": angle}


# ----------------------------------------------------------------------------- mistakes from public code


def _standardize(x: torch.Tensor, per_group: bool) -> torch.Tensor:
    """``x`` [K, G] standardized over the whole batch, or (``per_group``: each group as a batch of
    its own) over each row."""
    if per_group:
        return (x - x.mean(1, keepdim=True)) / (x.std(1, keepdim=True) + STD_EPS)
    return (x - x.mean()) / (x.reshape(-1).std() + STD_EPS)


def _batch_axis(b: GroupBatch, per_group: bool = False) -> torch.Tensor:
    """Advantages standardized over the whole batch (every prompt together), not per group."""
    adv = _standardize(b.rewards, per_group)
    return _reduce(_clip_term(b, adv, 0.2, 0.2), b, "sequence_mean", per_group)


def _double_normalized(b: GroupBatch, per_group: bool = False) -> torch.Tensor:
    """Group-standardized advantages standardized again with the batch's mean and std."""
    adv = _standardize(group_advantages(b.rewards, "mean", "std"), per_group)
    return _reduce(_clip_term(b, adv, 0.2, 0.2), b, "sequence_mean", per_group)


@dataclass(frozen=True)
class Mistake:
    """A change to a group loss reported in public LLM-RL code: ``loss(b, per_group=False)`` on a
    :class:`GroupBatch`, ``expect`` the exact verdict on :func:`~pglib.mdp.sequence_problem`
    (``"grad J"``, ``"positive multiple"`` or ``"other"``), ``source`` ``owner/repo#number``."""

    name: str
    title: str
    loss: Callable
    expect: str
    source: str
    url: str
    why: str


MISTAKES: dict[str, Mistake] = {m.name: m for m in [
    Mistake("batch_token_mean", "token sum divided by the batch's token count", bnpo, "other",
            "huggingface/trl#2995", "https://github.com/huggingface/trl/issues/2995",
            "The normalizer depends on the lengths of every response in the batch, so long "
            "responses get more weight: the mean gradient leaves grad J's direction."),
    Mistake("divide_by_response_length", "each response's token sum divided by its length",
            lambda b, per_group=False: group_loss(b, per_group, scale=None, reduction="sequence_mean"),
            "other", "huggingface/trl#3138", "https://github.com/huggingface/trl/pull/3138",
            "A factor 1/|o| per response weights short responses more than long ones with the same "
            "advantage (the length bias Dr. GRPO removes)."),
    Mistake("divide_by_group_std", "group advantages divided by the group's standard deviation",
            lambda b, per_group=False: group_loss(b, per_group, scale="std", reduction="constant"),
            "other", "huggingface/trl#3256", "https://github.com/huggingface/trl/pull/3256",
            "The standard deviation depends on the prompt's success rate, so prompts get unequal "
            "weights (the difficulty bias TRL's scale_rewards documents). With 0/1 rewards and "
            "G <= 3 every nonzero group std is the same, and it is only a scale."),
    Mistake("batch_axis_advantage", "advantages standardized over the batch, not per group",
            _batch_axis, "other", "XU-YIJIE/grpo-flat#2", "https://github.com/XU-YIJIE/grpo-flat/issues/2",
            "Mean and std taken over every response of the batch mix prompts: the baseline includes "
            "other prompts' rewards and the scale is shared."),
    Mistake("double_normalization", "group advantages normalized again with batch statistics",
            _double_normalized, "other", "axon-rl/gem#113", "https://github.com/axon-rl/gem/pull/113",
            "A second standardization with batch statistics shifts every advantage by a batch-"
            "dependent constant and rescales it."),
    Mistake("dr_grpo_lookalike", "mean-centred, token sum over a constant (Dr. GRPO)", dr_grpo,
            "positive multiple", "huggingface/trl#3256", "https://github.com/huggingface/trl/pull/3256",
            "Not a bug: the group mean includes the response itself, which scales the mean gradient "
            "by (G-1)/G, and 1/(G L) is a constant."),
]}
