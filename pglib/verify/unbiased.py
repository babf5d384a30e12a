r"""Check *your* policy-gradient code against the exact gradient of a small tabular MDP.

Two entry points (the names and signatures are a contract):

.. code-block:: python

    import pglib
    r = pglib.check_estimator(estimator, mdp, logits, n=20_000, seed=0, alpha=0.01)
    r = pglib.check_loss(loss, mdp, logits, batch_size=32, n_batches=2_000, seed=0, alpha=0.01)
    print(r)              # a few lines: verdict, where the mean is off, closest known mistake

- ``estimator(traj, logits) -> [N, S, A]``: one estimate of :math:`\nabla_\theta J` per
  trajectory of ``traj``, a :class:`pglib.sampling.Trajectories` batch of ``n`` trajectories
  sampled from ``mdp`` under :math:`\pi = \mathrm{softmax}(\text{logits})`.
- ``loss(traj, logits) -> scalar``: the surrogate loss on one batch of ``batch_size``
  trajectories; ``logits`` is a fresh leaf tensor with ``requires_grad``. The check takes
  :math:`-\nabla_\theta \text{loss}` of every batch as one sample.

Both test :math:`H_0:\ \mathbb E[\hat g] = \nabla J` (:func:`pglib.exact.gradient`) with
Hotelling's test in the rank of the samples (:func:`pglib.stats.unbiasedness_test`): a correct
estimator is reported biased with probability ``alpha``. The :class:`Report` also says

- ``detectable_bias``: the norm of the smallest bias *along* :math:`\nabla J` that this test, at
  this sample size, detects with probability 0.8 (the noncentral F power of the same test);
- ``exact_bias``: :math:`\mathbb E[\hat g] - \nabla J` computed exactly by listing every
  trajectory (:mod:`pglib.enumeration`) when there are few enough and the estimate is a function
  of one trajectory (or the loss a sum or mean of per-trajectory terms), else ``None``;
- ``scale`` and ``unbiased_up_to_scale``: whether :math:`\mathbb E[\hat g] = c\,\nabla J` for
  some :math:`c > 0`. The part of every sample orthogonal to :math:`\nabla J` is tested for mean
  zero at ``alpha``, and :math:`\hat c = \langle\bar g, \nabla J\rangle / \lVert\nabla J\rVert^2`
  must exceed zero by :math:`z_{1-\alpha}` standard errors. A loss that averages over steps
  instead of trajectories on a fixed-horizon problem passes this and fails ``unbiased``.

Arguments are checked, and the user's function is called once on a tiny batch, *before* the
real sample is drawn: a wrong output shape, a loss that is not a scalar or has no gradient, or
NaN is reported at once with a ``TypeError``/``ValueError`` that says what came.

For an infinite-horizon MDP give ``horizon=T``: trajectories are truncated after ``T`` steps, and
the target is the gradient of the truncated objective :math:`\mathbb E[\sum_{t<T}\gamma^t r_t]`
(``mdp.with_(horizon=T)``), which truncated estimates are unbiased for.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass
from typing import Callable

import numpy as np
import scipy.stats
import torch

from pglib import exact, stats, validate
from pglib.mdp import DTYPE, TabularMDP
from pglib.enumeration import all_trajectories
from pglib.sampling import Trajectories, sample_trajectories
from pglib.verify import bug_zoo

__all__ = ["Report", "check_estimator", "check_loss", "report_from_samples", "MAX_ENUMERATION",
           "MAX_LOSS_ENUMERATION"]

#: the most trajectories :attr:`Report.exact_bias` lists for an estimator (one call on all of them)
MAX_ENUMERATION = 200_000
#: the most trajectories it lists for a loss (one call and one backward pass per trajectory)
MAX_LOSS_ENUMERATION = 5_000
#: power at which :attr:`Report.detectable_bias` is stated
POWER = 0.8
_TRIAL = 4  # trajectories in the trial call of an estimator
_TRIAL_SEED_OFFSET = 7_919  # the trial batch comes from its own stream, not from the sample's
_GROUP_TRIALS = 20  # trial batches tried until one of groups has a nonzero gradient
_RTOL = 1e-8  # per-trajectory (separability) check: float64 sums in another order agree to ~1e-15


@dataclass(frozen=True)
class Report(stats.Result):
    """What :func:`check_estimator` or :func:`check_loss` found; ``str(report)`` explains it.

    Attributes:
        kind: ``"estimator"`` or ``"loss"``.
        unbiased: the test did not reject :math:`\\mathbb E[\\hat g] = \\nabla J` at ``alpha``.
        p_value: its p-value; ``alpha``: its level; ``n``: the number of samples tested
            (trajectories for an estimator, batches for a loss).
        detectable_bias: norm of the smallest bias along :math:`\\nabla J` detected with
            probability 0.8 by this test.
        exact_bias: :math:`\\mathbb E[\\hat g] - \\nabla J` by enumeration (``[S, A]``), or ``None``.
        scale: :math:`\\hat c`, the mean's component along :math:`\\nabla J` in units of
            :math:`\\nabla J` (``nan`` when :math:`\\nabla J = 0`); ``scale_se``: its standard error.
        unbiased_up_to_scale: the orthogonal part has mean zero (not rejected at ``alpha``)
            and :math:`\\hat c > z_{1-\\alpha}\\,\\mathrm{se}`.
        orthogonal_p_value: p-value of the orthogonal-part test; ``orthogonal_statistic``: its
            statistic, rounded (``statistic``: the main test's).
        mean, gradient: the sample mean and :math:`\\nabla J`, ``[S, A]``.
        closest_mistake: ``(name, title, cosine)`` of the mistake in :mod:`pglib.verify.bug_zoo` whose bias
            points most nearly where the measured bias does (``None`` when unbiased).
        note: why ``exact_bias`` is ``None``, if it is.
    """

    kind: str
    unbiased: bool
    p_value: float
    alpha: float
    n: int
    detectable_bias: float
    exact_bias: torch.Tensor | None
    scale: float
    scale_se: float
    unbiased_up_to_scale: bool
    orthogonal_p_value: float
    mean: torch.Tensor
    gradient: torch.Tensor
    statistic: str
    state_names: tuple
    closest_mistake: tuple | None = None
    note: str = ""
    orthogonal_statistic: str = ""

    @property
    def bias(self) -> torch.Tensor:
        """The exact bias when known, else the measured one (``mean - gradient``)."""
        return self.exact_bias if self.exact_bias is not None else self.mean - self.gradient

    def worst_state(self) -> int:
        """The state whose row of :attr:`bias` has the largest norm."""
        return int(self.bias.norm(dim=1).argmax())

    @property
    def passed(self) -> bool:
        """``unbiased``: the test does not reject that the mean is the exact gradient."""
        return self.unbiased

    def __str__(self) -> str:
        g = float(self.gradient.norm())
        head = "unbiased" if self.unbiased else "biased"
        lines = [f"{self.kind} check: {head}: the test of E[estimate] = grad J "
                 f"{'does not reject' if self.unbiased else 'rejects'} at p = {stats.format_p(self.p_value, '')} "
                 f"(alpha = {self.alpha:g}, n = {self.n})."]
        s = self.worst_state()
        bias = self.bias
        which = "exactly" if self.exact_bias is not None else "as measured"
        if self.unbiased:
            lines.append(f"  It would detect a bias of norm {self.detectable_bias:.3g} along grad J "
                         f"(|grad J| = {g:.3g}) with probability 0.8.")
            if self.exact_bias is not None:
                lines.append(f"  Exact bias by enumeration: norm {float(bias.norm()):.3g}.")
        elif len(self.state_names) == 1:  # a flat parameter vector (pglib.verify.gym_bridge.check_module)
            lines.append(f"  The mean is off by {float(bias.norm()):.3g} ({which}; |grad J| = {g:.3g}).")
        else:
            row = ", ".join(f"{v:+.3g}" for v in bias[s].tolist())
            lines.append(f"  The mean is off by {float(bias.norm()):.3g} ({which}; |grad J| = {g:.3g}), "
                         f"most in state {self.state_names[s]}: [{row}].")
        if not math.isnan(self.scale):
            verdict = ("so it is grad J times a positive constant" if self.unbiased_up_to_scale
                       else f"and the part off grad J has p = {stats.format_p(self.orthogonal_p_value, '')}")
            lines.append(f"  Along grad J the mean is {self.scale:.3g} x grad J "
                         f"(se {self.scale_se:.2g}), {verdict}.")
        if self.closest_mistake is not None:
            name, title, cos = self.closest_mistake
            lines.append(f"  The closest known mistake is '{title}' (pglib.verify.bug_zoo '{name}', "
                         f"cosine {cos:.2f} between the biases).")
        if self.note:
            lines.append(f"  {self.note}")
        return "\n".join(textwrap.fill(line, width=88, subsequent_indent="    ",
                                        break_on_hyphens=False) for line in lines)


# ----------------------------------------------------------------------------- arguments


def _common(fn, fn_name: str, mdp, logits, seed, alpha, horizon):
    validate.function(fn, fn_name, f"{fn_name}(traj, logits)")
    validate.instance(mdp, "mdp", TabularMDP)
    logits = validate.mdp_logits(mdp, logits).detach().clone()
    seed = validate.positive_int(seed, "seed", minimum=0)
    alpha = validate.real(alpha, "alpha", low=0.0, high=1.0, low_open=True, high_open=True)
    if mdp.horizon is None:
        if horizon is None:
            raise ValueError("horizon is required for an infinite-horizon MDP (mdp.horizon is None): "
                             "the trajectories are truncated after `horizon` steps")
        target = mdp.with_(horizon=validate.positive_int(horizon, "horizon"))
    else:
        if horizon is not None:
            horizon = validate.positive_int(horizon, "horizon")
        if horizon is not None and horizon != mdp.horizon:
            raise ValueError(f"horizon must be None or mdp.horizon = {mdp.horizon} for a finite-horizon "
                             f"MDP; got {horizon!r}")
        target = mdp
    return logits, seed, alpha, target


def _as_estimates(out, n: int, shape: tuple, where: str) -> torch.Tensor:
    """The estimator's output as float64 ``[n, S, A]``, or a ValueError saying what came."""
    if isinstance(out, np.ndarray):
        out = torch.from_numpy(out)
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"estimator must return a tensor [N, S, A] = [{n}, {shape[0]}, {shape[1]}]; "
                        f"got {validate.describe(out)} {where}")
    if tuple(out.shape) != (n, *shape):
        raise ValueError(f"estimator must return one estimate per trajectory, shape [N, S, A] = "
                         f"[{n}, {shape[0]}, {shape[1]}]; got {tuple(out.shape)} {where}")
    if out.is_complex() or not (out.is_floating_point()):
        raise TypeError(f"estimator must return real floating-point estimates; got dtype {out.dtype} {where}")
    out = out.detach().to(device="cpu", dtype=DTYPE)
    if not torch.isfinite(out).all():
        bad = int((~torch.isfinite(out)).any(-1).any(-1).sum())
        raise ValueError(f"estimator returned NaN or infinite values for {bad} of {n} trajectories {where}")
    return out


def _trial_batch(mdp: TabularMDP, logits, n: int, seed: int, group_size: int | None = None) -> Trajectories:
    return sample_trajectories(mdp, logits, n=n, seed=seed + _TRIAL_SEED_OFFSET, group_size=group_size)


def _per_trajectory(values: torch.Tensor, singles: list[torch.Tensor]) -> bool:
    """Whether the batch's rows equal the estimates of each trajectory alone."""
    alone = torch.stack(singles)
    scale = max(float(values.abs().max()), float(alone.abs().max()), 1e-300)
    return bool(((values - alone).abs().max() / scale) <= _RTOL)


# ----------------------------------------------------------------------------- statistics


def report_from_samples(kind, samples, grad, alpha, mdp, traj_for_matching, logits, exact_bias, note,
                        state_names=None) -> Report:
    """The :class:`Report` of ``samples [n, *grad.shape]`` (one gradient estimate each) against the
    exact ``grad``: the unbiasedness test, its power along grad J, the scale test, and the closest
    known mistake (matched on ``traj_for_matching`` at ``logits`` when given). ``kind`` is
    ``"estimator"``, ``"loss"`` or ``"module"``; ``exact_bias`` (shaped like ``grad``) is the exact
    bias when known, else None; ``note`` a sentence or None."""
    kind = validate.one_of(kind, "kind", ("estimator", "loss", "module"))
    validate.instance(mdp, "mdp", TabularMDP)
    grad = validate.floats(grad, "grad", min_ndim=1, copy=True)
    dims = f"[n, {', '.join(map(str, grad.shape))}] (one estimate of grad per row)"
    samples = validate.floats(samples, "samples", shape=(None, *grad.shape), dims=dims)
    alpha = validate.real(alpha, "alpha", low=0.0, high=1.0, low_open=True, high_open=True)
    if traj_for_matching is not None:
        validate.batch(traj_for_matching, "traj_for_matching")
        logits = validate.mdp_logits(mdp, logits)
    if exact_bias is not None:
        exact_bias = validate.floats(exact_bias, "exact_bias", shape=tuple(grad.shape), dims="of grad", copy=True)
    if note is not None:
        note = validate.string(note, "note")
    if state_names is not None and (isinstance(state_names, str) or not isinstance(state_names, (list, tuple))
                                    or not all(isinstance(s, str) for s in state_names)):
        raise validate.ArgumentTypeError(f"state_names must be a sequence of strings or None; got "
                                         f"{validate.describe(state_names)}")
    test = stats.unbiasedness_test(samples, grad, alpha=alpha)
    n = samples.shape[0]
    g = grad.reshape(-1)
    gg = float(g @ g)
    if gg > 0:
        detectable = test.detectable_bias(direction=grad, power=POWER)
        flat = samples.reshape(n, -1)
        c = flat @ g / gg  # [n] the component along grad J, in units of grad J
        scale, scale_se = float(c.mean()), float(c.std() / math.sqrt(n))
        ortho = flat - c[:, None] * g[None, :]
        o_test = stats.unbiasedness_test(ortho, torch.zeros_like(g), alpha=alpha)
        z = float(scipy.stats.norm.isf(alpha))
        up_to_scale = (not o_test.reject) and scale > z * scale_se
        o_p, o_text = o_test.p_value, o_test.statistic_text()
    else:
        detectable = test.detectable_bias(power=POWER)
        scale = scale_se = math.nan
        up_to_scale, o_p, o_text = not test.reject, test.p_value, test.statistic_text()
    mean = samples.mean(0)
    closest = None
    if test.reject:
        bias = exact_bias if exact_bias is not None else mean - grad
        closest = _closest_mistake(bias, mdp, traj_for_matching, logits, grad, scale, up_to_scale)
    return Report(kind, not test.reject, float(test.p_value), alpha, n, float(detectable), exact_bias,
                  scale, scale_se, bool(up_to_scale), float(o_p), mean, grad, test.statistic_text(),
                  tuple(mdp.state_names if state_names is None else state_names), closest, note, o_text)


def _closest_mistake(bias: torch.Tensor, mdp: TabularMDP, traj: Trajectories, logits, grad, scale: float,
                     up_to_scale: bool):
    """The zoo mistake whose bias (measured on the same trajectories) is most nearly parallel.

    A hint, not a diagnosis: on an MDP with few states the biases of many mistakes live in a
    space of few dimensions and point alike."""
    if not math.isnan(scale) and scale < 0:
        m = bug_zoo.MISTAKES["missing_minus"]
        return (m.name, m.title, -1.0)
    if up_to_scale:
        m = bug_zoo.MISTAKES["mean_over_steps_fixed_length"]
        return (m.name, m.title + " (only a positive scale)", 1.0)
    b = bias.reshape(-1)
    if traj is None or float(b.norm()) == 0:
        return None
    best = None
    for m in bug_zoo.MISTAKES.values():
        if not m.is_bug or m.estimator is None:
            continue
        est = m.estimator(mdp)(traj, logits)
        other = (est.mean(0) - grad).reshape(-1)
        if float(other.norm()) == 0:
            continue
        cos = float(b @ other / (b.norm() * other.norm()))
        if best is None or cos > best[2]:
            best = (m.name, m.title, cos)
    return best if best is not None and best[2] > 0.5 else None


# ----------------------------------------------------------------------------- the two checks


def check_estimator(estimator: Callable, mdp: TabularMDP, logits, n: int = 20_000, seed: int = 0,
                    alpha: float = 0.01, *, horizon: int | None = None,
                    group_size: int | None = None) -> Report:
    r"""Test whether ``estimator`` is unbiased for :func:`pglib.exact.gradient` on ``mdp``.

    Args:
        estimator: ``estimator(traj, logits) -> [N, S, A]``, one estimate of
            :math:`\partial J/\partial\,\text{logits}` per trajectory of ``traj``.
        mdp: a small :class:`~pglib.mdp.TabularMDP`.
        logits: ``[S, A]`` softmax-policy logits at which the gradient is checked.
        n: number of trajectories sampled (more than ``S * A + 1``).
        seed: the sample's seed (the same seed gives the same report).
        alpha: false-alarm rate of the test: a correct estimator is reported biased with
            probability ``alpha``.
        horizon: truncation length, only for an infinite-horizon MDP.
        group_size: ``G``: the batch comes in ``n // G`` consecutive groups of ``G``
            trajectories sharing one first state (see :func:`pglib.sampling.sample_trajectories`),
            so an estimator may use the other members of a trajectory's group (e.g. a
            leave-one-out baseline). ``None`` or 1: independent trajectories.

    Returns:
        a :class:`Report`; ``print(report)`` says what to do.

    Example::

        >>> import pglib
        >>> from pglib import estimators
        >>> m = pglib.chain(3, horizon=4)
        >>> r = pglib.check_estimator(lambda traj, th: estimators.reinforce(traj, th, m.gamma),
        ...                           m, torch.zeros(3, 2), n=5_000)
        >>> r.unbiased                       # True with probability 0.99
        True
    """
    logits, seed, alpha, target = _common(estimator, "estimator", mdp, logits, seed, alpha, horizon)
    S, A = mdp.n_states, mdp.n_actions
    n = validate.positive_int(n, "n", minimum=S * A + 2)
    G = validate.group_size(group_size, n, "n")
    T = target.horizon
    # 1. the trial call: shape, dtype, NaN, and whether each row depends on its trajectory only
    trial = _trial_batch(target, logits, _TRIAL * G, seed, G if G > 1 else None)
    where = f"on a trial batch of {trial.n} trajectories"
    values = _as_estimates(estimator(trial, logits.clone()), trial.n, (S, A), where)
    try:
        singles = [_as_estimates(estimator(trial[i], logits.clone()), 1, (S, A), "on one trajectory")[0]
                   for i in range(trial.n)]
        per_trajectory = _per_trajectory(values, singles)
    except (ValueError, ZeroDivisionError, RuntimeError):
        if G == 1:
            raise
        per_trajectory = False  # a group estimator need not work on one trajectory alone
    # 2. the sample
    traj = sample_trajectories(target, logits, n=n, seed=seed, group_size=G)
    samples = _as_estimates(estimator(traj, logits.clone()), n, (S, A), f"on the batch of n = {n}")
    grad = exact.gradient(target, logits)
    # 3. the exact expectation, when the estimate is a function of one trajectory
    exact_bias, note = None, ""
    if not per_trajectory:
        note = ("exact_bias is None: each trajectory's estimate depends on the rest of the batch "
                "(e.g. a batch mean or a normalization), so listing trajectories does not give E.")
    else:
        exact_bias, note = _enumerated_bias(target, logits, T, grad,
                                            lambda batch: _as_estimates(estimator(batch, logits.clone()),
                                                                        batch.n, (S, A), "on the enumeration"))
    return report_from_samples("estimator", samples, grad, alpha, target, traj, logits, exact_bias, note)


def _enumerated(target: TabularMDP, logits, T: int, limit: int):
    """Every trajectory as a Trajectories batch (with ``logp``) and its probabilities, or None."""
    try:
        e = all_trajectories(target, logits, horizon=T, max_trajectories=limit)
    except ValueError:
        return None
    log_pi = torch.log_softmax(logits, -1)
    logp = torch.where(e.mask, log_pi[e.states, e.actions], torch.zeros((), dtype=DTYPE))
    batch = Trajectories(e.states, e.actions, e.rewards, e.mask, logp, target.n_states, target.n_actions)
    return batch, e


def _enumerated_bias(target, logits, T, grad, per_trajectory_fn, limit=MAX_ENUMERATION):
    listed = _enumerated(target, logits, T, limit)
    if listed is None:
        return None, f"exact_bias is None: the MDP has more than {limit} trajectories to list."
    batch, e = listed
    return e.expectation(per_trajectory_fn(batch)) - grad, ""


def _enumerated_group_bias(target, logits, grad, G: int, factor: float, neg_grad,
                           limit: int = MAX_LOSS_ENUMERATION):
    """E[-grad loss(group)] - grad J over every group of ``G`` responses to one first state."""
    listed = _enumerated(target, logits, target.horizon, limit)
    if listed is None:
        return None, f"exact_bias is None: the MDP has more than {limit} trajectories to list."
    batch, e = listed
    first = e.states[:, 0]
    members = [torch.nonzero(first == s).flatten() for s in torch.unique(first).tolist()]
    count = sum(len(ix) ** G for ix in members)
    if count > limit:
        return None, (f"exact_bias is None: there are {count} > {limit} groups of {G} to list "
                      "(use a smaller group_size or problem).")
    total = torch.zeros_like(grad)
    for ix in members:
        mu = float(e.prob[ix].sum())  # the first state's probability
        combos = torch.cartesian_prod(*([ix] * G)).reshape(-1, G)
        weights = mu * torch.prod(e.prob[combos] / mu, dim=1)
        for c, w in zip(combos, weights.tolist()):
            total += w * neg_grad(batch[c], "on the enumeration")
    return total * factor - grad, ""


def check_loss(loss: Callable, mdp: TabularMDP, logits, batch_size: int = 32, n_batches: int = 2_000,
               seed: int = 0, alpha: float = 0.01, *, horizon: int | None = None,
               group_size: int | None = None) -> Report:
    r"""Test whether ``-grad(loss)`` is unbiased for :func:`pglib.exact.gradient` on ``mdp``.

    Args:
        loss: ``loss(traj, logits) -> scalar tensor``, the surrogate loss of one batch of
            ``batch_size`` trajectories; ``logits`` is a leaf tensor with ``requires_grad``.
        mdp, logits, seed, alpha, horizon: as in :func:`check_estimator`.
        batch_size: trajectories per batch (the loss sees one batch at a time).
        n_batches: number of batches; each gives one sample :math:`-\nabla\text{loss}` (more
            than ``S * A + 1``).
        group_size: ``G`` dividing ``batch_size``: each batch is ``batch_size // G`` consecutive
            groups of ``G`` trajectories sharing one first state (a prompt), as GRPO-style losses
            expect (see :func:`pglib.sampling.sample_trajectories`). ``None`` or 1: independent
            trajectories.

    Before sampling, the loss is called once on a trial batch: it must return a finite scalar
    tensor whose gradient with respect to ``logits`` exists, is finite and is not identically
    zero. ``exact_bias`` is computed when the loss's gradient on the trial batch is a fixed
    multiple of the mean (or sum) of its per-trajectory gradients, and the MDP has at most
    :data:`MAX_LOSS_ENUMERATION` trajectories. With groups, the unit is the group: the gradient on
    the trial batch must be a fixed multiple of the mean of its groups' gradients, and every group
    (``G`` responses to one prompt, with its probability) is listed when there are at most
    :data:`MAX_LOSS_ENUMERATION` of them.

    Example::

        >>> m = pglib.chain(3, horizon=4)
        >>> def loss(traj, theta):            # REINFORCE with rewards-to-go, mean over trajectories
        ...     logp = torch.log_softmax(theta, -1)[traj.states, traj.actions] * traj.mask
        ...     disc = m.gamma ** torch.arange(traj.horizon, dtype=torch.float64)
        ...     return -(logp * disc * pglib.reward_to_go(traj.rewards, m.gamma)).sum() / traj.n
        >>> pglib.check_loss(loss, m, torch.zeros(3, 2)).unbiased   # True with probability 0.99
        True
    """
    logits, seed, alpha, target = _common(loss, "loss", mdp, logits, seed, alpha, horizon)
    S, A = mdp.n_states, mdp.n_actions
    B = validate.positive_int(batch_size, "batch_size")
    G = validate.group_size(group_size, B, "batch_size")
    n_batches = validate.positive_int(n_batches, "n_batches", minimum=S * A + 2)
    validate.memory(validate.nbytes(B * n_batches, target.horizon, 5),
                    f"the sampled batches (batch_size={B} x n_batches={n_batches} trajectories)")
    # the work, up front: one call per trajectory of the trial batch, one per batch
    validate.calls(B + 1 + n_batches, f"check_loss(batch_size={B}, n_batches={n_batches})")

    def neg_grad(batch: Trajectories, where: str) -> torch.Tensor:
        theta = logits.clone().requires_grad_(True)
        value = loss(batch, theta)
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"loss must return a scalar tensor; got {validate.describe(value)} {where}")
        if value.numel() != 1 or value.ndim > 1:
            raise ValueError(f"loss must return a scalar (0-d) tensor; got shape {tuple(value.shape)} {where}: "
                             "reduce it, e.g. .sum() / batch size")
        if not torch.isfinite(value.detach()).all():
            raise ValueError(f"loss returned {float(value.detach())} {where}; expected a finite number")
        if not value.requires_grad:
            raise ValueError(f"loss does not depend on logits {where}: it has no gradient. Compute the "
                             "log-probabilities from the logits you are given (not from stored ones)")
        (g,) = torch.autograd.grad(value.reshape(()), theta, allow_unused=True)
        if g is None:
            raise ValueError(f"loss has no gradient with respect to logits {where}: the logits you are "
                             "given do not reach it")
        g = g.detach().to(DTYPE)
        if not torch.isfinite(g).all():
            raise ValueError(f"loss's gradient has NaN or infinite entries {where}")
        return -g

    trial = _trial_batch(target, logits, B, seed, G)
    where = f"on a trial batch of {B} trajectories"
    g_trial = neg_grad(trial, where)
    unit = "one trajectory" if G == 1 else "one group"

    def unit_grads(batch):
        return torch.stack([neg_grad(batch[i:i + G], f"on {unit}") for i in range(0, B, G)])

    def refuse_zero(batch, g):
        # with groups, a zero gradient is fine when every group's rewards are equal (no advantage)
        spread = batch.masked_rewards.sum(1).reshape(-1, G).std(1) if G > 1 else None
        if (float(g.abs().max()) == 0.0 and float(batch.rewards.abs().max()) > 0
                and (spread is None or float(spread.max()) > 0)):
            raise ValueError(f"loss's gradient is identically zero {where}, although the batch has rewards: "
                             "something cancels the score (e.g. a ratio exp(logp - logp_old) whose logp_old "
                             "was computed from the same logits without .detach())")

    if G == 1:
        refuse_zero(trial, g_trial)
    singles = unit_grads(trial)
    for extra in range(1, _GROUP_TRIALS if G > 1 else 1):
        # a group-relative advantage is 0 when a group's rewards are all equal: to see how groups
        # combine, find a trial batch with two groups of nonzero gradient
        if int((singles.flatten(1).abs().max(1).values > 0).sum()) >= min(2, B // G):
            break
        trial = _trial_batch(target, logits, B, seed + extra * _TRIAL_SEED_OFFSET, G)
        g_trial, singles = neg_grad(trial, where), unit_grads(trial)
    if G > 1:
        refuse_zero(trial, g_trial)
    # separable: grad(batch) = c * mean_i grad(unit i)  ->  E[grad] = c * E[grad(unit)]
    m = singles.mean(0)
    mm = float((m * m).sum())
    factor = float((g_trial * m).sum()) / mm if mm > 0 else math.nan
    separable = mm > 0 and _per_trajectory(g_trial[None], [factor * m])
    traj = sample_trajectories(target, logits, n=B * n_batches, seed=seed, group_size=G)
    samples = torch.stack([neg_grad(traj[b * B:(b + 1) * B], f"on batch {b}") for b in range(n_batches)])
    grad = exact.gradient(target, logits)
    exact_bias, note = None, ""
    if not separable:
        what = "per-trajectory" if G == 1 else "per-group"
        note = (f"exact_bias is None: the loss's gradient is not a fixed multiple of the mean of "
                f"{what} gradients (it couples the {'trajectories' if G == 1 else 'groups'} of a batch).")
    elif G > 1:
        exact_bias, note = _enumerated_group_bias(target, logits, grad, G, factor, neg_grad)
    else:
        def per_traj(batch):
            return torch.stack([neg_grad(batch[i], "on the enumeration") for i in range(batch.n)]) * factor

        exact_bias, note = _enumerated_bias(target, logits, target.horizon, grad, per_traj,
                                            limit=MAX_LOSS_ENUMERATION)
    return report_from_samples("loss", samples, grad, alpha, target, traj, logits, exact_bias, note)
