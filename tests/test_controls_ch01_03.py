"""Near-null negative controls of chapters 1-3: rejected as often as predicted.

Each chapter has a control whose exact bias is two to four times the bias its
unbiasedness test detects with probability 80%, and the chapter counts one minus
the predicted power in its false-alarm budget. Here the power prediction itself is
checked: over 200 seeds, the control's rejection rate by
``stats.unbiasedness_test`` must lie inside the 99% Clopper-Pearson interval of
the rate predicted by ``stats.hotelling_power`` from the exact covariance (a sum
over the faces of a die, the state-action pairs of an MDP, or the 1024
trajectories of the running example, ``pglib.enumeration``). Each control is
checked at the chapter's own n and alpha (where the prediction is ~100%, slow)
and at a smaller n where the prediction is near 80% (fast), which is the sharper
test of the noncentral-F formula.

The samples are drawn directly from the exact distributions (faces, pairs,
trajectories by index); the samplers are tested elsewhere.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pglib import estimators, exact, mdp, scorefn, stats
from pglib.enumeration import all_trajectories

SEEDS = 200


def _rate_inside(draw, exact_value, cov, shift, n, alpha, seeds=SEEDS):
    """Rejection rate of the control over seeds vs its predicted power."""
    predicted = stats.hotelling_power(shift.reshape(-1), cov, n, alpha)
    rejected = sum(stats.unbiasedness_test(draw(n, seed), exact_value, alpha).reject
                   for seed in range(seeds))
    low, high = stats.binomial_interval(rejected, seeds, 0.99)
    assert low <= predicted <= high, (
        f"control rejected {rejected}/{seeds} times"
        f" (99% interval [{low:.3f}, {high:.3f}]),"
        f" predicted power {predicted:.3f}")
    return predicted, rejected / seeds


def _categorical_sampler(prob, values):
    """Draw n rows of ``values[k]`` with k ~ Categorical(prob), one stream per seed."""
    def draw(n, seed):
        gen = torch.Generator().manual_seed(1000 + seed)
        return values[torch.multinomial(prob, n, replacement=True, generator=gen)]
    return draw


def _exact_cov(prob, values, mean):
    centred = (values - mean).reshape(len(prob), -1)
    return torch.einsum("k,ki,kj->ij", prob, centred, centred)


# chapter 1: the categorical estimate scaled by 1 + 4%

def _faces():
    """Chapter 1's die: face probabilities, the estimate on each face, the gradient."""
    theta = torch.tensor([0.5, -0.3, 0.2, -1.0], dtype=torch.float64)
    f = torch.tensor([1.0, 3.0, -2.0, 0.5], dtype=torch.float64)
    p = torch.softmax(theta, -1)
    per_face = f[:, None] * scorefn.categorical_score(theta, torch.arange(4))
    return p, per_face, p @ per_face


def _die(scale):
    p, per_face, grad = _faces()
    wrong = (1 + scale) * per_face
    return p, wrong, grad, _exact_cov(p, wrong, (1 + scale) * grad), scale * grad


# chapter 1: the 1/N law with the exponent off by 0.03

def _rate_law(error):
    p, per_face, grad = _faces()
    cov = _exact_cov(p, per_face, grad)
    t, s2 = cov.trace().item(), (cov @ cov).trace().item()
    fourth = (p @ ((per_face - grad) ** 2).sum(-1) ** 2).item()
    sizes = 2 ** np.arange(4, 15)
    var = torch.from_numpy(2 * s2 + (fourth - t * t - 2 * s2) / sizes)
    wrong_law = t * torch.from_numpy(sizes / math.sqrt(sizes[0] * sizes[-1])) ** error

    def draw(n_repeats, seed):
        rng = np.random.default_rng(2000 + seed)
        columns = []
        for n in sizes:
            freq = torch.from_numpy(rng.multinomial(n, p.numpy(), size=n_repeats) / n)
            columns.append(n * ((freq @ per_face - grad) ** 2).sum(-1))
        return torch.stack(columns, 1)

    return draw, wrong_law, torch.diag(var), torch.full((len(sizes),), t) - wrong_law


# chapter 2: states from the occupancy of a discount of 0.87 instead of 0.9

def _wrong_discount():
    m = mdp.random_mdp(5, 3, seed=1, gamma=0.9)
    logits = torch.from_numpy(np.random.default_rng(0).normal(size=(5, 3)))
    pi, A = m.policy(logits), exact.advantages(m, logits)
    s, a = torch.meshgrid(torch.arange(5), torch.arange(3), indexing="ij")
    s, a = s.reshape(-1), a.reshape(-1)
    values = A[s, a][:, None, None] * scorefn.tabular_score(logits, s, a) / (1 - m.gamma)
    d_wrong = exact.occupancy(m.with_(gamma=0.87), logits)
    prob = (d_wrong[:, None] * pi).reshape(-1)
    mean = torch.einsum("k,kxy->xy", prob, values)
    grad = exact.gradient(m, logits)
    return prob, values, grad, _exact_cov(prob, values, mean), mean - grad


# chapter 3: the score at stale logits theta - 0.0125 grad J

def _stale_logits():
    m = mdp.two_state(gamma=1.0, horizon=5)
    logits = torch.tensor([[0.3, -0.2], [-0.6, 0.4]], dtype=torch.float64)
    everything = all_trajectories(m, logits)
    grad = exact.gradient(m, logits)
    stale_logits = logits - 0.0125 * grad
    stale = estimators.reinforce(everything.trajectories, stale_logits, m.gamma,
                                 credit="return")                   # [1024, S, A]
    mean = everything.expectation(stale)
    cov = _exact_cov(everything.prob, stale, mean)
    return everything.prob, stale, grad, cov, mean - grad


# the controls as the chapters run them, and at a smaller n where the power is near 80%

def _die_control(scale):
    p, wrong, grad, cov, shift = _die(scale)
    return _categorical_sampler(p, wrong), grad, cov, shift


def _rate_control(error):
    return _rate_law(error)


def _pairs_control(build):
    prob, values, grad, cov, shift = build()
    return _categorical_sampler(prob, values), grad, cov, shift


# name: (control as in the chapter, sharp control, chapter n, sharp n, alpha)
CONTROLS = {
    "ch01.scaled_die": (lambda: _die_control(0.04), lambda: _die_control(0.04),
                        100_000, 6_000, 0.0008 / 5),
    "ch01.rate_exponent": (lambda: _rate_control(0.03), lambda: _rate_control(0.01),
                           10_000, 10_000, 0.0008 / 5),
    "ch02.wrong_discount": (lambda: _pairs_control(_wrong_discount),
                            lambda: _pairs_control(_wrong_discount), 400_000, 40_000,
                            0.0008 / 2),
    "ch03.stale_logits": (lambda: _pairs_control(_stale_logits),
                          lambda: _pairs_control(_stale_logits), 1_000_000, 100_000,
                          0.0006 / 6),
}


@pytest.mark.parametrize("name", CONTROLS)
def test_control_power_near_80_percent(name):
    _, sharp, _, n, alpha = CONTROLS[name]
    seeds = 100 if "rate" in name else SEEDS        # the rate control draws 11 sizes
    predicted, _ = _rate_inside(*sharp(), n, alpha, seeds=seeds)
    assert 0.2 < predicted < 0.95       # a sharp test of the noncentral-F prediction


@pytest.mark.slow
@pytest.mark.parametrize("name", CONTROLS)
def test_control_power_at_chapter_settings(name):
    chapter, _, n, _, alpha = CONTROLS[name]
    predicted, _ = _rate_inside(*chapter(), n, alpha)
    assert predicted > 0.9999           # the chapter's budget counts 1 - this
