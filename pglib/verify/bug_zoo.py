r"""A zoo of policy-gradient mistakes that shipped in public code, as mutants of one correct estimator.

Every entry is one change to the correct estimator

.. math:: \hat g(\tau) = \sum_t \gamma^t\, G_t\, \nabla_\theta \log\pi_\theta(a_t|s_t),
          \qquad G_t = \sum_{k\ge t}\gamma^{k-t} r_k,

or to its surrogate loss :math:`-\frac1B\sum_{i,t}\gamma^t G_{i,t}\log\pi_\theta(a_{i,t}|s_{i,t})`,
with the public report it comes from. ``is_bug`` says whether the change biases the gradient;
the look-alikes (``is_bug=False``) are changes that were reported as bugs, or look like them,
but keep the estimate unbiased (or unbiased up to a positive scale).

Each :class:`Mistake` gives factories that take the MDP and return the functions the checks
call: ``m.estimator(mdp)`` is ``estimator(traj, logits) -> [N, S, A]`` for
:func:`pglib.check_estimator` (per-step weights only), and ``m.loss(mdp)`` is
``loss(traj, logits) -> scalar`` for :func:`pglib.check_loss`. :func:`problem` is the small MDP
with episodes of different lengths on which the book measures how often each is caught.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from pglib import exact
from pglib.estimators import weighted_score_sum
from pglib.mdp import DTYPE, TabularMDP
from pglib.returns import discount_weights, reward_to_go
from pglib.sampling import Trajectories

__all__ = ["Mistake", "MISTAKES", "problem", "problem_logits", "correct_weights", "surrogate"]


@dataclass(frozen=True)
class Mistake:
    """One mutant: what it changes, where it was reported, and why it is (or is not) a
    bug.

    Attributes:
        name: identifier (a key of :data:`MISTAKES`); title: a few words.
        is_bug: whether it biases the gradient estimate.
        expect: what the checks should say: ``"unbiased"``, ``"up_to_scale"``
            (unbiased up to a positive scale, not unbiased), ``"biased"``, or
            ``"refused"`` (the check refuses the loss before sampling).
        source: the public report, ``owner/repo#number``; url: its address.
        why: two sentences: why it is, or is not, a bug.
        weights_of: ``weights_of(traj, gamma) -> [N, T]``, the per-step weights
            (estimator-type mutants), or None; make_loss:
            ``make_loss(mdp) -> loss(traj, logits)`` for loss-type ones.
        fixed_length: measure it on the fixed-length variant of :func:`problem` (no
            terminal state), where the change is only a scale.
    """

    name: str
    title: str
    is_bug: bool
    expect: str
    source: str
    url: str
    why: str
    weights_of: Callable[[Trajectories, float], torch.Tensor] | None = None
    make_loss: Callable[[TabularMDP], Callable] | None = None
    fixed_length: bool = False

    @property
    def estimator(self) -> Callable[[TabularMDP], Callable] | None:
        """``estimator(mdp)(traj, logits) -> [N, S, A]``, or None for loss-only
        mutants."""
        if self.weights_of is None:
            return None
        w = self.weights_of
        return lambda mdp: (lambda traj, logits: weighted_score_sum(traj, logits, w(traj, mdp.gamma)))

    def loss(self, mdp: TabularMDP) -> Callable:
        """``loss(traj, logits) -> scalar``, the mutant as a surrogate loss (mean over
        trajectories)."""
        if self.make_loss is not None:
            return self.make_loss(mdp)
        w = self.weights_of
        return lambda traj, logits: surrogate(traj, logits, w(traj, mdp.gamma))


# ----------------------------------------------------------------------------- building blocks


def _discounts(traj: Trajectories, gamma: float) -> torch.Tensor:
    return discount_weights(traj.horizon, gamma, like=traj.rewards)


def _log_probs(traj: Trajectories, logits) -> torch.Tensor:
    return torch.log_softmax(logits, -1)[traj.states, traj.actions] * traj.mask


def surrogate(traj: Trajectories, logits, weights) -> torch.Tensor:
    """``-(1/N) sum_{i,t} m_it w_it log pi(a_it|s_it)``: the loss whose gradient is the
    estimator's mean."""
    return -(_log_probs(traj, logits) * weights.detach()).sum() / traj.n


def correct_weights(traj: Trajectories, gamma: float) -> torch.Tensor:
    r""":math:`\gamma^t G_t`: the correct per-step weights."""
    return _discounts(traj, gamma) * reward_to_go(traj.rewards, gamma)


def _episode_mean_std(x: torch.Tensor, mask: torch.Tensor):
    m = mask.to(DTYPE)
    count = m.sum(1, keepdim=True).clamp(min=1)
    mean = (x * m).sum(1, keepdim=True) / count
    var = (((x - mean) * m) ** 2).sum(1, keepdim=True) / count
    return mean, var.sqrt()


_EPS = 1e-8


def _dropped_gamma(traj, gamma):
    return reward_to_go(traj.rewards, gamma)


def _reward_shifted(traj, gamma):
    late = torch.cat([torch.zeros_like(traj.rewards[:, :1]), traj.rewards[:, :-1]], 1) * traj.mask
    return _discounts(traj, gamma) * reward_to_go(late, gamma)


def _immediate(traj, gamma):
    return _discounts(traj, gamma) * traj.rewards


def _normalized(traj, gamma):
    G = reward_to_go(traj.rewards, gamma)
    mean, sd = _episode_mean_std(G, traj.mask)
    return _discounts(traj, gamma) * (G - mean) / (sd + _EPS)


def _episode_baseline(traj, gamma):
    G = reward_to_go(traj.rewards, gamma)
    mean, _ = _episode_mean_std(G, traj.mask)
    return _discounts(traj, gamma) * (G - mean)


def _std_only(traj, gamma):
    G = reward_to_go(traj.rewards, gamma)
    _, sd = _episode_mean_std(G, traj.mask)
    # an episode of one step has std 0: the shipped code divides by zero there; we leave it as is
    return _discounts(traj, gamma) * torch.where(sd > 0, G / sd.clamp(min=_EPS), G)


def _per_length(traj, gamma):
    return correct_weights(traj, gamma) / traj.lengths.clamp(min=1)[:, None].to(DTYPE)


def _full_return(traj, gamma):
    return reward_to_go(traj.rewards, gamma)[:, :1].expand(-1, traj.horizon)


def _unfitted_state_baseline(traj, gamma):
    # a critic that was never trained: fixed arbitrary values per (time, state)
    g = torch.Generator().manual_seed(12345)
    n_states = traj.n_states if traj.n_states is not None else int(traj.states.max()) + 1
    table = 3.0 * torch.randn(traj.horizon, n_states, generator=g, dtype=DTYPE)
    b = table[torch.arange(traj.horizon)[None, :], traj.states]
    return _discounts(traj, gamma) * (reward_to_go(traj.rewards, gamma) - b)


_REWARD_SCALE = 0.1


def _scaled(traj, gamma):
    return _REWARD_SCALE * correct_weights(traj, gamma)


# ----------------------------------------------------------------------------- loss-type mutants


def _mean_over_steps(mdp):
    def loss(traj, logits):
        terms = _log_probs(traj, logits) * correct_weights(traj, mdp.gamma)
        return -terms[traj.mask].mean()
    return loss


def _missing_minus(mdp):
    return lambda traj, logits: -surrogate(traj, logits, correct_weights(traj, mdp.gamma))


def _not_detached(mdp):
    def loss(traj, logits):
        # a critic that shares the policy's parameters: here V_t(s) computed from the logits
        V = exact.time_state_values(mdp, logits)  # [T, S], differentiable
        b = V[torch.arange(traj.horizon)[None, :], traj.states]
        adv = _discounts(traj, mdp.gamma) * (reward_to_go(traj.rewards, mdp.gamma) - b)
        return -(_log_probs(traj, logits) * adv).sum() / traj.n  # adv not detached
    return loss


STALE_LR = 1.0


def _stale(mdp):
    def loss(traj, logits):
        # one optimizer step per time step, each on log-probs of the already-updated policy
        w = correct_weights(traj, mdp.gamma)
        shift = torch.zeros_like(logits)
        total = 0.0
        for t in range(traj.horizon):
            theta = logits + shift  # shift is detached: the gradient is taken at theta_t
            lp = torch.log_softmax(theta, -1)[traj.states[:, t], traj.actions[:, t]] * traj.mask[:, t]
            step = -(lp * w[:, t]).sum() / traj.n
            total = total + step
            (g,) = torch.autograd.grad(step, logits, retain_graph=True)
            shift = shift - STALE_LR * g.detach()
        return total
    return loss


def _ratio_not_detached(mdp):
    def loss(traj, logits):
        logp = _log_probs(traj, logits)
        ratio = torch.exp(logp - traj.logp)  # not detached, and then multiplied by the log-probs
        return -(ratio * logp * correct_weights(traj, mdp.gamma)).sum() / traj.n
    return loss


def _ratio_trick(mdp):
    def loss(traj, logits):
        logp = _log_probs(traj, logits)
        ratio = torch.exp(logp - logp.detach())  # equals 1; its gradient is the score
        return -(ratio * correct_weights(traj, mdp.gamma)).sum() / traj.n
    return loss


def _old_not_detached(mdp):
    def loss(traj, logits):
        logp = _log_probs(traj, logits)
        old = _log_probs(traj, logits)  # recomputed from the same logits, not detached
        return -(torch.exp(logp - old) * correct_weights(traj, mdp.gamma)).sum() / traj.n
    return loss


# ----------------------------------------------------------------------------- the zoo

_GH = "https://github.com/"

MISTAKES: dict[str, Mistake] = {m.name: m for m in [
    Mistake("dropped_gamma_t", "the discount gamma^t of the score dropped", True, "biased",
            "dennybritz/reinforcement-learning#185", _GH + "dennybritz/reinforcement-learning/issues/185",
            "Weighting the step-t score by G_t instead of gamma^t G_t gives late decisions as much "
            "weight as early ones, which the discounted objective does not. The result is not the "
            "gradient of any objective (Nota and Thomas 2020); facebookresearch/Pearl#46 keeps it "
            "on purpose.", weights_of=_dropped_gamma),
    Mistake("reward_shifted", "rewards stored one step late", True, "biased",
            "openai/spinningup#50", _GH + "openai/spinningup/issues/50",
            "The buffer stored the reward received before each observation, so step t is credited "
            "with r_{t-1} and the last reward is lost. Actions are credited for what happened before "
            "them, which is a different (and wrong) gradient; the maintainer fixed it in a later release.",
            weights_of=_reward_shifted),
    Mistake("immediate_reward", "discounted reward gamma^t r_t, not summed", True, "biased",
            "hunkim/ReinforcementZeroToAll#1", _GH + "hunkim/ReinforcementZeroToAll/issues/1",
            "The 'discounted reward' gamma^t r_t replaces the reward-to-go, so each action is "
            "credited only with its immediate reward. That is the gradient of a myopic objective, "
            "not of J.", weights_of=_immediate),
    Mistake("per_episode_normalization", "rewards-to-go standardized within each episode", True,
            "biased", "alessiodm/drl-zh#5", _GH + "alessiodm/drl-zh/issues/5",
            "Subtracting an episode's own mean and dividing by its own spread makes every weight "
            "depend on the whole episode, actions included. The weights of late steps are pushed "
            "negative whatever happened, so the expectation moves away from grad J.",
            weights_of=_normalized),
    Mistake("episode_mean_baseline", "baseline: the episode's own mean reward-to-go", True, "biased",
            "alessiodm/drl-zh#5", _GH + "alessiodm/drl-zh/issues/5",
            "The baseline is the mean of this episode's rewards-to-go, so it depends on the action "
            "it is subtracted from and on later ones. A baseline keeps the estimate unbiased only "
            "when it does not depend on the action (a fix is proposed in alessiodm/drl-zh#6).",
            weights_of=_episode_baseline),
    Mistake("std_only_scaling", "rewards-to-go divided by the episode's std", True, "biased",
            "keon/policy-gradient#5", _GH + "keon/policy-gradient/issues/5",
            "Dividing by the standard deviation of the episode's own returns scales each episode "
            "by a number that depends on its actions. Episodes with little spread get large "
            "weights, which biases the mean.", weights_of=_std_only),
    Mistake("divide_by_length", "each episode's sum divided by its length", True, "biased",
            "KaiyangZhou/pytorch-vsumm-reinforce#48", _GH + "KaiyangZhou/pytorch-vsumm-reinforce/issues/48",
            "Taking the mean over an episode's steps divides its score sum by its length T_i. When "
            "lengths differ, and the length depends on the actions, short episodes count more and "
            "the estimate is biased (with one fixed length it is only a scale).",
            weights_of=_per_length),
    Mistake("mean_over_batch_steps", "loss: mean over all steps of the batch", True, "biased",
            "openai/spinningup#454", _GH + "openai/spinningup/issues/454",
            "(logp * weights).mean() over every step of the batch divides by the batch's total "
            "number of steps, a random number that depends on the actions. With episodes of "
            "different lengths that is not a constant factor, so the gradient is biased.",
            make_loss=_mean_over_steps),
    Mistake("missing_minus", "the minus sign of the loss missing", True, "biased",
            "KanishJebaMathewM/Truxify#11885", _GH + "KanishJebaMathewM/Truxify/pull/11885",
            "Without the minus, gradient descent on the loss descends J: the gradient is exactly "
            "-grad J. The checks report scale -1, and never 'up to scale'.",
            make_loss=_missing_minus),
    Mistake("advantages_not_detached", "advantage not detached from a shared critic", True, "biased",
            "keras-team/keras-io#194", _GH + "keras-team/keras-io/issues/194",
            "When the critic shares parameters with the policy, (G - V(s)) log pi without a "
            "detach also differentiates V, adding -grad V(s) log pi(a|s) to every term. That term "
            "does not have mean zero, so the gradient is biased.",
            make_loss=_not_detached),
    Mistake("stale_per_step_updates", "one update per time step on stale data", True, "biased",
            "yukezhu/tensorflow-reinforce#13", _GH + "yukezhu/tensorflow-reinforce/issues/13",
            "Updating the parameters after every recorded step evaluates the later log-probs under "
            "a policy that did not collect the data, without an importance weight. The sum of the "
            f"updates is biased by an amount that grows with the step size (here {STALE_LR:g}).",
            make_loss=_stale),
    Mistake("ratio_not_detached", "a ratio multiplied by the log-prob, not detached", True, "biased",
            "huggingface/trl#1720", _GH + "huggingface/trl/issues/1720",
            "A ratio exp(logp - logp_old) used as a weight on logp must be detached, as the "
            "maintainer notes there (trl#224 added such a detach). Otherwise the product "
            "differentiates to (1 + logp) times the score, and the gradient is biased.",
            make_loss=_ratio_not_detached),
    Mistake("old_logp_not_detached", "old log-prob recomputed and not detached", True, "refused",
            "constructed", "",
            "If logp_old is computed from the same parameters without a detach, the ratio is "
            "identically 1 and its gradient is zero. check_loss refuses such a loss before it samples.",
            make_loss=_old_not_detached),
    Mistake("full_return", "the full return G_0 at every step", False, "unbiased",
            "huggingface/deep-rl-class#70", _GH + "huggingface/deep-rl-class/pull/70",
            "Weighting every step by the discounted return of the whole episode is Williams' "
            "original estimator, so it is unbiased. The terms with rewards before step t have mean "
            "zero; reward-to-go only drops them to cut the variance.", weights_of=_full_return),
    Mistake("unfitted_state_baseline", "a state baseline that is never fitted", False, "unbiased",
            "bentrevett/pytorch-rl#2", _GH + "bentrevett/pytorch-rl/issues/2",
            "A baseline that depends only on the time and the state has mean-zero contribution, "
            "however bad its values are. A critic that is never trained (or never used) costs "
            "variance, not bias.", weights_of=_unfitted_state_baseline),
    Mistake("reward_scaling", "rewards multiplied by a constant", False, "up_to_scale",
            "DLR-RM/stable-baselines3#2279", _GH + "DLR-RM/stable-baselines3/issues/2279",
            f"Scaling every reward by c = {_REWARD_SCALE:g} scales the gradient by c and nothing else. "
            "The estimate is unbiased for c grad J, which the checks report as 'up to scale'.",
            weights_of=_scaled),
    Mistake("ratio_trick", "exp(logp - logp.detach()) as the weight", False, "unbiased",
            "huggingface/trl#2769", _GH + "huggingface/trl/issues/2769",
            "The ratio is identically 1, but its gradient is exactly the score, so the loss has the "
            "surrogate's gradient. It looks like a ratio that is always 1; it is correct on-policy.",
            make_loss=_ratio_trick),
    Mistake("mean_over_steps_fixed_length", "mean over steps, every episode the same length", False,
            "up_to_scale", "openai/spinningup#414", _GH + "openai/spinningup/issues/414",
            "When every episode has the same length T, the mean over the batch's steps is the "
            "correct loss divided by the constant T. As the replies there say, that is only a "
            "scale.", make_loss=_mean_over_steps, fixed_length=True),
]}


# ----------------------------------------------------------------------------- the test problem


def problem(fixed_length: bool = False) -> TabularMDP:
    """Three states and a terminal goal, three actions, gamma 0.8, horizon 4: episodes
    end at different times (unless ``fixed_length``, where the goal is an ordinary
    absorbing state with zero reward, so every episode has 4 decisions). Each action
    leads to one of two states, so there are few enough trajectories to list (for exact
    expectations)."""
    P = torch.zeros(4, 3, 4, dtype=DTYPE)
    for s, a, targets in [
        (0, 0, {0: 0.6, 1: 0.4}), (0, 1, {1: 0.5, 2: 0.5}), (0, 2, {2: 0.3, 3: 0.7}),
        (1, 0, {0: 0.5, 3: 0.5}), (1, 1, {1: 0.7, 2: 0.3}), (1, 2, {2: 0.6, 3: 0.4}),
        (2, 0, {1: 0.8, 3: 0.2}), (2, 1, {0: 0.4, 2: 0.6}), (2, 2, {2: 0.1, 3: 0.9}),
    ]:
        for s2, p in targets.items():
            P[s, a, s2] = p
    P[3, :, 3] = 1.0
    R = torch.tensor([[0.0, 1.0, 0.5], [2.0, -0.5, 0.3], [-1.0, 1.5, 0.8],
                      [0.0, 0.0, 0.0]], dtype=DTYPE)
    return TabularMDP(P, R, [0.6, 0.3, 0.1, 0.0], gamma=0.8, horizon=4,
                      terminal=None if fixed_length else [False, False, False, True],
                      state_names=["s0", "s1", "s2", "goal"],
                      action_names=["a0", "a1", "a2"])


def problem_logits() -> torch.Tensor:
    """The policy at which the zoo is checked (not uniform, so no symmetry hides a
    bias)."""
    return torch.tensor([[0.3, -0.2, 0.1], [-0.4, 0.5, 0.0], [0.2, 0.0, -0.3],
                         [0.0, 0.0, 0.0]], dtype=DTYPE)
