r"""The implementation checklist of a policy-gradient update, as checks a reader runs on a batch.

The surrogate loss :math:`\mathcal L(\theta) = -\frac1N\sum_{i,t}\log\pi_\theta(a_{i,t}|s_{i,t})\,\hat A_{i,t}`
has the policy-gradient estimator as its gradient only when the batch and the weights are what the
derivation assumed. Each function below checks one assumption and either returns a
:class:`Verdict` (printed as ``OK [name] ...``) or raises ``ValueError`` saying what was wrong and
what was expected:

==============================  =====================================================================
check                           the assumption
==============================  =====================================================================
:func:`check_on_policy`         the batch was sampled by the policy being differentiated (stored
                                log-probabilities equal the current ones of the stored actions)
:func:`check_detached`          advantages / returns / baselines carry no gradient
:func:`check_actions_detached`  sampled actions carry no gradient (``sample()``, not ``rsample()``)
:func:`check_reward_to_go`      each action is weighted by the rewards from its step on, not by the
                                total return (or by rewards that came before it)
:func:`check_normalized`        advantages normalized within the batch, when that was asked for
:func:`check_stochastic`        the policy is stochastic enough for a score function to exist and
                                be of reasonable size (std / entropy above a floor)
:func:`check_loss_gradient`     end to end: the loss's gradient equals that of the surrogate built
                                from detached actions and detached advantages
==============================  =====================================================================

Shapes follow pglib's convention (time is the last axis, ``[N, T]``), but every check also accepts
a flat batch of steps ``[B]``; ``mask`` (bool, same shape) marks the real steps.

Sources: the checklist of the course notes; Williams (1992) for the estimator; Silver et al. (2014)
for the deterministic policy gradient that replaces the score function when :math:`\sigma = 0`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch.distributions import Categorical, Distribution, Independent, Normal

from pglib import validate
from pglib.losses import surrogate_loss
from pglib.stats import Result
from pglib.returns import reward_to_go

__all__ = [
    "Verdict", "check_on_policy", "check_detached", "check_actions_detached", "check_reward_to_go",
    "check_normalized", "check_stochastic", "check_loss_gradient",
]

_F64 = validate.DTYPE  # float64, defined once in pglib.validate


@dataclass(frozen=True)
class Verdict(Result):
    """A passed check: ``name`` of the check and ``detail`` (what was measured, rounded). A failed
    check raises instead, so ``passed`` is always True."""

    name: str
    detail: str

    @property
    def passed(self) -> bool:
        return True

    def __str__(self) -> str:
        return f"OK [{self.name}] {self.detail}"

    __repr__ = __str__


# ----------------------------------------------------------------------------- input handling


def _tensor(x, name: str) -> torch.Tensor:
    """A real tensor (a tensor keeps its dtype: integer actions stay integers); bools, complex numbers and
    strings are refused."""
    if isinstance(x, torch.Tensor):
        if x.dtype == torch.bool or x.is_complex():
            raise validate.ArgumentTypeError(f"{name} must be a real-valued tensor; got {validate.describe(x)}")
        return x
    return validate.floats(x, name, allow_nonfinite=True)


def _mask(mask, shape: tuple, name: str = "mask", of: str | None = None) -> torch.Tensor:
    if mask is None:
        return torch.ones(shape, dtype=torch.bool)
    return validate.mask(mask, name, shape=tuple(shape), dims=None if of is None else f"of {of}", nonempty=True)


def _same_shape(ref_name: str, ref: torch.Tensor, **others: torch.Tensor) -> None:
    validate.same_shape(ref_name, ref, **others)


def _tol(x, name: str) -> float:
    return validate.real(x, name, low=0.0)


def _steps(x, name: str, mask, need_2d: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    t = _tensor(x, name).detach().to(_F64)
    if need_2d and t.ndim != 2:
        raise ValueError(f"{name} must have shape [N, T] (one row per episode); got {tuple(t.shape)}")
    _finite(t, name)
    return t, _mask(mask, tuple(t.shape), of=name)


def _finite(x: torch.Tensor, name: str) -> None:
    validate.finite(x, name)


# ----------------------------------------------------------------------------- the checks


def check_on_policy(logp_stored, logp_current, mask=None, atol: float = 1e-6, density: bool = False) -> Verdict:
    r"""The batch is on-policy: :math:`\log\pi_{\text{stored}}(a|s) = \log\pi_\theta(a|s)` at every real step.

    ``logp_stored``: the log-probabilities recorded when the actions were sampled; ``logp_current``: the
    current policy's log-probabilities of the same actions, e.g. ``policy(obs).log_prob(actions)``.
    Same shape (``[N, T]`` or ``[B]``). A stale batch (a second update on the same data, a replay
    buffer) makes the plain estimator biased; correct it with importance ratios
    (:func:`pglib.losses.ratio_surrogate`) or resample. Log-probabilities must be <= 0;
    ``density=True`` allows the positive log-densities of continuous actions.

    Example::

        >>> check_on_policy(torch.log(torch.tensor([0.5, 0.25])), torch.log(torch.tensor([0.5, 0.25])))
        OK [on_policy] max |stored − current| log-probability ≤ atol=1e-06 over 2 steps
    """
    old, m = _steps(logp_stored, "logp_stored", mask)
    new = _steps(logp_current, "logp_current", None)[0]
    _same_shape("logp_stored", old, logp_current=new)
    atol = _tol(atol, "atol")
    if not validate.flag(density, "density"):
        for name, x in (("logp_stored", old), ("logp_current", new)):
            if bool((x[m] > 1e-12).any()):
                raise ValueError(f"{name} must hold log-probabilities (<= 0; density=True for log-densities); "
                                 f"the largest is {x[m].max().item():.4g}")
    diff = (old - new).abs()[m]
    worst, n = float(diff.max()), int(m.sum())
    if worst > atol:
        frac = float((diff > atol).to(_F64).mean())
        raise ValueError(
            f"off-policy batch: the stored log-probabilities differ from the current policy's log-probabilities "
            f"of the same actions by up to {worst:.3g} (at {frac:.0%} of {n} steps); expected at most atol={atol:g}. "
            "The actions were sampled by another policy (a stale batch, or a second update on the same data): "
            "resample with the current policy, or correct with importance ratios (pglib.losses.ratio_surrogate)")
    return Verdict("on_policy", f"max |stored − current| log-probability ≤ atol={atol:g} over {n} steps")


def check_detached(weights, name: str = "advantages", params: Sequence[torch.Tensor] | None = None) -> Verdict:
    r"""The weights of the surrogate carry no gradient: advantages, returns, baselines are constants.

    The estimator is :math:`\sum_t \nabla\log\pi_\theta(a_t|s_t)\,\hat A_t` with :math:`\hat A_t` held fixed.
    If ``weights`` still require grad (a learned baseline :math:`V_\phi(s)` or a return computed through a
    differentiable simulator, used without ``.detach()``), the loss adds
    :math:`\sum_t \log\pi_\theta(a_t|s_t)\,\nabla\hat A_t`, which is not part of any policy gradient.

    ``params``: optionally the policy's parameters. Weights that require grad but are connected to none of
    them leave the policy's gradient unchanged; the check then passes and says so.

    Example::

        >>> check_detached(torch.tensor([1.0, -1.0]))
        OK [detached] advantages carry no gradient (requires_grad=False)
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string naming the weights; got {name!r}")
    w = _tensor(weights, name)
    if not w.requires_grad:
        return Verdict("detached", f"{name} carry no gradient (requires_grad=False)")
    source = type(w.grad_fn).__name__ if w.grad_fn is not None else "a leaf tensor with requires_grad=True"
    if params is not None:
        params = [p for p in params if isinstance(p, torch.Tensor) and p.requires_grad]
        if not params:
            raise ValueError("params must hold at least one tensor with requires_grad=True (the policy's parameters)")
        if w.grad_fn is None:
            connected = sum(p is w for p in params)
        else:
            grads = torch.autograd.grad(w.sum(), params, allow_unused=True, retain_graph=True)
            connected = sum(g is not None for g in grads)
        if connected == 0:
            return Verdict("detached", f"{name} require grad ({source}) but are connected to none of the "
                                       f"{len(params)} policy parameters: the policy's gradient is unaffected")
        where = f"; connected to {connected} of the {len(params)} policy parameter tensors"
    else:
        where = ""
    raise ValueError(
        f"{name} carry a gradient (requires_grad=True, grad_fn={source}){where}: the surrogate loss would be "
        f"differentiated through them, adding sum_t log pi(a_t|s_t) * grad({name}_t), a term that is not part of "
        f"the policy-gradient estimator. Expected constant weights: compute {name} under torch.no_grad() or "
        "call .detach() before forming the loss")


def check_actions_detached(actions) -> Verdict:
    r"""The sampled actions carry no gradient (they were drawn with ``sample()``, not ``rsample()``).

    With reparameterized actions :math:`a = \mu_\theta(s) + \sigma\varepsilon`, autodiff also differentiates
    :math:`\log\pi_\theta(a|s)` through :math:`a`; for a Gaussian the two paths cancel and
    :math:`\partial_\mu \log\mathcal N(\mu+\sigma\varepsilon;\mu,\sigma) = 0`: the mean gets no gradient at all.

    Example::

        >>> check_actions_detached(torch.tensor([0.3, -1.2]))
        OK [actions_detached] sampled actions carry no gradient (requires_grad=False)
    """
    a = _tensor(actions, "actions")
    if not a.requires_grad:
        return Verdict("actions_detached", "sampled actions carry no gradient (requires_grad=False)")
    source = type(a.grad_fn).__name__ if a.grad_fn is not None else "a leaf tensor with requires_grad=True"
    raise ValueError(
        f"sampled actions carry a gradient (requires_grad=True, grad_fn={source}): they were drawn with rsample() "
        "(reparameterized noise) or built from the parameters. log pi(a|s) is then differentiated through a as well; "
        "for a Gaussian policy that cancels the score with respect to the mean exactly. Expected actions drawn with "
        "dist.sample() (or detached with .detach())")


def _check_reward_to_go(weights, rewards, gamma, mask, baseline, atol) -> tuple:
    w, m = _steps(weights, "weights", mask, need_2d=True)
    r, _ = _steps(rewards, "rewards", None)
    _same_shape("weights", w, rewards=r)
    if baseline is not None:
        baseline = _steps(baseline, "baseline", None)[0]
        _same_shape("weights", w, baseline=baseline)
    return w, r, validate.gamma(gamma), m, baseline, _tol(atol, "atol")


def check_reward_to_go(weights, rewards, gamma: float, mask=None, baseline=None,
                       atol: float = 1e-8) -> Verdict:
    r"""Each action is weighted by its reward-to-go
    :math:`G_t = \sum_{k\ge t}\gamma^{k-t} r_k` (minus ``baseline``).

    ``weights``, ``rewards``, ``mask``, ``baseline``: ``[N, T]``, one row per episode
    (rewards at masked steps are ignored). Check the weights before any normalization.
    When they are not rewards-to-go the message says what they look like instead:

    - the **total return** :math:`\sum_k \gamma^k r_k` on every step (constant within an
      episode): unbiased, but every action is credited with rewards that came before
      it, which only adds variance;
    - the **rewards so far** :math:`\sum_{k\le t} r_k` (computed forwards instead of
      backwards): not causal, and biased;
    - anything else: the first step where they differ.

    Example (the verdict prints as ``OK [reward_to_go]`` followed by its ``detail``)::

        >>> check_reward_to_go(torch.tensor([[3.0, 2.0, 1.0]]), torch.ones(1, 3),
        ...                    gamma=1.0).detail
        'weights = rewards-to-go G_t (max |difference| ≤ atol=1e-08) over 3 steps'
    """
    weights, rewards, gamma, mask, baseline, atol = _check_reward_to_go(weights, rewards, gamma, mask,
                                                                         baseline, atol)
    w, m = weights, mask
    b = torch.zeros_like(w) if baseline is None else baseline
    r = torch.where(m, rewards, torch.zeros((), dtype=_F64))
    G = reward_to_go(r, gamma)
    n = int(m.sum())

    def gap(target: torch.Tensor) -> float:
        return float((w - (target - b)).abs()[m].max())

    err = gap(G)
    if err <= atol:
        return Verdict("reward_to_go", f"weights = rewards-to-go G_t (max |difference| "
                                       f"≤ atol={atol:g}) over {n} steps")
    expected = "Expected G_t = sum_{k>=t} gamma^(k-t) r_k"
    if gap(G[:, :1].expand_as(G)) <= atol:
        raise ValueError(
            "weights are the total return of the episode on every step (constant "
            "within each episode), not the reward-to-go: each action is credited with "
            "rewards received before it was taken. The estimator stays unbiased but "
            f"its variance grows. {expected} (pglib.returns.reward_to_go)")
    if gap(torch.cumsum(r, -1)) <= atol:
        raise ValueError(
            "weights are the rewards received up to and including step t (a forward "
            "cumulative sum), not the reward-to-go: action a_t is weighted by rewards "
            "it could not have caused, and by none of those it did; the estimator is "
            f"biased. {expected} (pglib.returns.reward_to_go)")
    diff = torch.where(m, (w - (G - b)).abs(), torch.zeros((), dtype=_F64))
    i, t = divmod(int(diff.argmax()), w.shape[1])
    minus = " minus the baseline" if baseline is not None else ""
    raise ValueError(
        f"weights are not the rewards-to-go{minus}: the largest difference is "
        f"{err:.3g} > atol={atol:g}, at episode {i}, step {t} (weight "
        f"{float(w[i, t]):.4g}, expected {float(G[i, t] - b[i, t]):.4g}). "
        f"{expected} with gamma={gamma:g}")


def check_normalized(advantages, mask=None, atol: float = 1e-3) -> Verdict:
    r"""Advantages normalized within the batch: mean 0 and standard deviation 1 over the real steps.

    Accepts either standard deviation convention (divide by :math:`n` or :math:`n-1`). Call it when the
    configuration asks for normalization (``normalize_advantages=True``).

    Example::

        >>> check_normalized(torch.tensor([-1.0, 1.0]))
        OK [normalized] mean = 0, std = 1 (±0.001) over 2 steps
    """
    a, m = _steps(advantages, "advantages", mask)
    atol = _tol(atol, "atol")
    x = a[m]
    n = x.numel()
    if n < 2:
        raise ValueError(f"advantages must have at least 2 real steps to have a standard deviation; got {n}")
    mean = float(x.mean())
    std_pop, std_sample = float(x.std(correction=0)), float(x.std(correction=1))
    ok_std = min(abs(std_pop - 1.0), abs(std_sample - 1.0)) <= atol
    if abs(mean) > atol or not ok_std:
        raise ValueError(
            f"advantages are not normalized: mean = {mean:.4g}, std = {std_pop:.4g} over {n} steps; expected mean 0 "
            f"and std 1 (within atol={atol:g}). Normalize within the batch, (A - mean(A)) / (std(A) + eps) "
            "(pglib.baselines.standardize), after computing the advantages and before forming the loss")
    return Verdict("normalized", f"mean = {0.0 if abs(mean) < 5e-5 else mean:.4g}, std = 1 (±{atol:g}) over {n} steps")


def _stds(policy_or_dist) -> torch.Tensor | None:
    """The Gaussian standard deviations of a distribution or a Gaussian policy, or None (categorical)."""
    d = policy_or_dist
    if isinstance(d, Independent):
        d = d.base_dist
    if isinstance(d, Normal):
        return d.scale.detach().to(_F64)
    log_std = getattr(d, "log_std", None)
    if isinstance(log_std, torch.Tensor):  # a GaussianMLP: state-independent log-std parameter
        return log_std.detach().to(_F64).exp()
    return None


def check_stochastic(policy_or_dist, obs=None, min_std: float = 1e-3, min_entropy: float = 1e-3) -> Verdict:
    r"""The policy is stochastic: the score :math:`\nabla_\theta\log\pi_\theta(a|s)` exists and is not huge.

    Accepts a ``torch.distributions`` object (``Normal``, ``Independent(Normal)``, ``Categorical``), a
    Gaussian policy with a ``log_std`` parameter (e.g. :class:`pglib.practice.policies.GaussianMLP`), a categorical
    policy with ``obs`` (``policy(obs)`` gives the distribution), or a tensor of standard deviations.

    - A standard deviation of exactly 0 is a deterministic policy: it has no density, hence no score
      function, and the score-function estimator does not exist (``ValueError``). The gradient of a
      deterministic policy needs :math:`\nabla_a Q(s,a)` instead (Silver et al. 2014).
    - A standard deviation below ``min_std`` (or a categorical entropy below ``min_entropy`` nats) is
      nearly deterministic: the score :math:`(a-\mu)/\sigma^2` is of size :math:`1/\sigma`, and the
      estimator's variance grows like :math:`1/\sigma^2` (``ValueError``).

    Example::

        >>> check_stochastic(torch.distributions.Normal(torch.zeros(3), 0.5))
        OK [stochastic] smallest std = 0.5 ≥ min_std=0.001
    """
    d = policy_or_dist
    min_std, min_entropy = _tol(min_std, "min_std"), _tol(min_entropy, "min_entropy")
    if isinstance(d, torch.Tensor):
        std = _tensor(d, "policy_or_dist").detach().to(_F64)
    else:
        std = _stds(d)
    if std is not None:
        if std.numel() == 0 or not bool(torch.isfinite(std).all()) or bool((std < 0).any()):
            raise ValueError(f"standard deviations must be finite non-negative numbers; got "
                             f"{std.flatten()[:5].tolist()}")
        smallest = float(std.min())
        if smallest == 0.0:
            raise ValueError(
                "a deterministic policy has no score function: a standard deviation is exactly 0, so pi(a|s) has no "
                "density, log pi(a|s) is undefined and its gradient (a - mu)/sigma^2 is infinite. The score-function "
                "(REINFORCE) estimator needs a stochastic policy (sigma > 0); a deterministic policy needs the "
                "deterministic policy gradient, grad_theta mu(s) * grad_a Q(s, a) (Silver et al. 2014)")
        if smallest < min_std:
            raise ValueError(
                f"the policy is nearly deterministic: smallest std = {smallest:.3g} < min_std={min_std:g}. The score "
                "(a - mu)/sigma^2 has size 1/sigma, so the score-function estimator's variance grows like 1/sigma^2; "
                "expected a standard deviation above the floor (raise log_std, or add an entropy bonus)")
        return Verdict("stochastic", f"smallest std = {smallest:.4g} ≥ min_std={min_std:g}")
    if not isinstance(d, Distribution):
        if obs is None or not callable(d):
            raise ValueError("policy_or_dist must be a torch distribution, a tensor of stds, a policy with a log_std "
                             f"parameter, or a policy together with obs; got {type(d).__name__} and obs={obs!r}")
        d = d(obs)
    if not isinstance(d, Categorical):
        raise ValueError(f"policy_or_dist must give a Normal, Independent(Normal) or Categorical; got {type(d).__name__}")
    probs = d.probs.detach().to(_F64)
    ent = -(torch.where(probs > 0, probs * probs.log(), torch.zeros((), dtype=_F64))).sum(-1)
    smallest, top = float(ent.min()), float(probs.max())
    if top == 1.0 and smallest == 0.0:
        raise ValueError(
            "a deterministic policy has no usable score function: some state puts probability exactly 1 on one "
            "action, so the score of that action is 0 and no other action is ever sampled; the score-function "
            "estimator cannot change this policy. Expected every action probability below 1 (entropy > 0)")
    if smallest < min_entropy:
        raise ValueError(
            f"the policy is nearly deterministic: smallest entropy = {smallest:.3g} nats < min_entropy={min_entropy:g} "
            f"(largest action probability {top:.6f}); the score-function estimator barely explores. Expected an "
            "entropy above the floor (add an entropy bonus, or lower the step size)")
    return Verdict("stochastic", f"smallest entropy = {smallest:.4g} nats ≥ min_entropy={min_entropy:g}")


def check_loss_gradient(loss: torch.Tensor, params: Sequence[torch.Tensor], dist: Distribution, actions,
                        advantages, mask=None, reduction: str = "trajectory", rtol: float | None = None) -> Verdict:
    r"""End to end: ``loss``'s gradient equals the surrogate's built from detached actions and advantages.

    The reference is :func:`pglib.losses.surrogate_loss` of ``dist.log_prob(actions.detach())`` and
    ``advantages.detach()`` with the same ``mask`` and ``reduction``. If ``loss`` was formed with returns,
    a baseline, or actions that still carry gradient, the two gradients differ and the check says by how
    much (relative to the reference's norm). ``dist.log_prob(actions)`` must have the shape of
    ``advantages``. ``rtol`` defaults to 1e-9 for float64 parameters and 1e-4 otherwise (float32 sums
    in a different order differ by about 1e-7).

    Example::

        >>> dist = policy(obs); a = dist.sample(); adv = ...
        >>> loss = pglib.losses.surrogate_loss(dist.log_prob(a), adv)
        >>> check_loss_gradient(loss, list(policy.parameters()), dist, a, adv)
    """
    if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
        raise ValueError(f"loss must be a scalar tensor; got {getattr(loss, 'shape', type(loss).__name__)}")
    if not loss.is_floating_point():  # complex, bool, integer: no real gradient to compare
        raise validate.ArgumentTypeError(f"loss must be a real floating-point scalar tensor; got dtype {loss.dtype}")
    validate.finite(loss, "loss")
    if rtol is not None:
        rtol = validate.real(rtol, "rtol", low=0.0, low_open=True)
    if not loss.requires_grad:
        raise ValueError("loss does not require grad: it is not connected to any parameter")
    if isinstance(params, (str, bytes, torch.Tensor)) or not hasattr(params, "__iter__"):
        raise validate.ArgumentTypeError(f"params must be a sequence of parameter tensors (list(policy.parameters())); "
                                         f"got {validate.describe(params)}")
    params = [p for p in params if isinstance(p, torch.Tensor) and p.requires_grad]
    if not params:
        raise ValueError("params must hold at least one tensor with requires_grad=True (the policy's parameters)")
    if rtol is None:
        rtol = 1e-9 if all(p.dtype == _F64 for p in params) else 1e-4
    if not isinstance(dist, Distribution):
        raise ValueError(f"dist must be the policy's torch distribution at the batch's states; got {type(dist).__name__}")
    adv = _tensor(advantages, "advantages").detach()
    try:
        logp = dist.log_prob(_tensor(actions, "actions").detach())
    except (ValueError, RuntimeError, IndexError) as e:  # outside the support, or a shape dist cannot take
        raise ValueError(f"actions must be actions of dist (in its support, of its batch and event shape); "
                         f"dist.log_prob refused them: {e}") from None
    reference = surrogate_loss(logp, adv.to(logp.dtype), mask=mask, reduction=reduction)
    got = torch.autograd.grad(loss, params, allow_unused=True, retain_graph=True)
    want = torch.autograd.grad(reference, params, allow_unused=True, retain_graph=True)
    flat = lambda gs: torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1).to(_F64)  # noqa: E731
                                 for g, p in zip(gs, params)])
    got, want = flat(got), flat(want)
    scale = float(want.norm())
    diff = float((got - want).norm())
    rel = diff / scale if scale > 0 else diff
    if rel > rtol:
        raise ValueError(
            f"the loss's gradient is not the score-function estimator: |grad(loss) − grad(surrogate)| / |grad(surrogate)| "
            f"= {rel:.3g} > rtol={rtol:g}. Something besides log pi(a|s) carries gradient into the loss: advantages, "
            "returns or a baseline that were not detached, or actions drawn with rsample(). Expected the gradient of "
            "surrogate_loss(dist.log_prob(actions.detach()), advantages.detach()) (see check_detached, "
            "check_actions_detached)")
    return Verdict("loss_gradient", f"|grad(loss) − grad(surrogate)| / |grad(surrogate)| ≤ rtol={rtol:g}")
