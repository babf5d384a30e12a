"""pglib.verify: check_estimator and check_loss against independent computations.

- the false-alarm rate of a correct estimator over 200 seeds lies in the binomial 99% interval
  around alpha;
- a bias of exactly ``detectable_bias`` along grad J is caught about 80% of the time (binomial
  99% interval over 200 seeds);
- ``exact_bias`` equals the closed-form expectation of the dropped-gamma^t estimator
  (pglib.expected.direction) and twice -grad J for a missing minus sign;
- bad arguments fail before anything is sampled.
"""

from __future__ import annotations

import math

import pytest
import scipy.stats
import torch

import pglib
from pglib import estimators, exact, expected, verify
from pglib.verify import bug_zoo
from pglib.returns import reward_to_go

FLOAT64_DEFAULT = True

MDP = bug_zoo.problem()
LOGITS = bug_zoo.problem_logits()
GRAD = exact.gradient(MDP, LOGITS)


def correct(traj, logits):
    return estimators.reinforce(traj, logits, MDP.gamma)


def correct_loss(traj, logits):
    logp = torch.log_softmax(logits, -1)[traj.states, traj.actions] * traj.mask
    w = reward_to_go(traj.rewards, MDP.gamma) * MDP.gamma ** torch.arange(traj.horizon, dtype=torch.float64)
    return -(logp * w).sum() / traj.n


def _in_binomial_interval(k: int, n: int, p: float, confidence: float = 0.99) -> bool:
    lo, hi = scipy.stats.binomtest(k, n).proportion_ci(confidence_level=confidence, method="exact")
    return lo <= p <= hi


def test_correct_estimator_accepted_at_the_stated_rate():
    alpha = 0.05
    rejections = sum(not verify.check_estimator(correct, MDP, LOGITS, n=2_000, seed=s, alpha=alpha).unbiased
                     for s in range(200))
    assert _in_binomial_interval(rejections, 200, alpha), rejections


def test_bias_at_detectable_bias_is_caught_80_percent_of_the_time():
    n, alpha = 2_000, 0.05
    pilot = verify.check_estimator(correct, MDP, LOGITS, n=n, seed=10_000, alpha=alpha)
    shift = pilot.detectable_bias * GRAD / GRAD.norm()

    def shifted(traj, logits):
        return correct(traj, logits) + shift

    caught = sum(not verify.check_estimator(shifted, MDP, LOGITS, n=n, seed=s, alpha=alpha).unbiased
                 for s in range(200))
    assert _in_binomial_interval(caught, 200, verify.POWER), caught


def test_exact_bias_of_the_dropped_discount_matches_the_closed_form():
    r = verify.check_estimator(bug_zoo.MISTAKES["dropped_gamma_t"].estimator(MDP), MDP, LOGITS, n=5_000)
    want = expected.direction(MDP, LOGITS, discount_score=False) - GRAD
    assert r.exact_bias is not None
    torch.testing.assert_close(r.exact_bias, want, rtol=1e-10, atol=1e-12)
    assert not r.unbiased and "biased" in str(r)


def test_correct_estimator_and_loss_have_zero_exact_bias():
    r = verify.check_estimator(correct, MDP, LOGITS, n=5_000, seed=3)
    assert r.exact_bias.abs().max() < 1e-12
    r = verify.check_loss(correct_loss, MDP, LOGITS, batch_size=8, n_batches=300, seed=3)
    assert r.exact_bias.abs().max() < 1e-12
    assert r.n == 300


def test_missing_minus_is_minus_twice_the_gradient_and_never_up_to_scale():
    r = verify.check_loss(bug_zoo.MISTAKES["missing_minus"].loss(MDP), MDP, LOGITS, batch_size=8, n_batches=300)
    torch.testing.assert_close(r.exact_bias, -2 * GRAD, rtol=1e-10, atol=1e-12)
    assert not r.unbiased and not r.unbiased_up_to_scale and r.scale < 0
    assert "minus" in str(r)


def test_scaled_estimator_is_unbiased_up_to_scale_only():
    c = 0.5

    def half(traj, logits):
        return c * correct(traj, logits)

    r = verify.check_estimator(half, MDP, LOGITS, n=20_000, seed=1)
    assert not r.unbiased and r.unbiased_up_to_scale
    assert abs(r.scale - c) < 5 * r.scale_se
    torch.testing.assert_close(r.exact_bias, (c - 1) * GRAD, rtol=1e-10, atol=1e-12)


def test_batch_coupled_estimator_has_no_exact_bias():
    def batch_normalized(traj, logits):
        G = reward_to_go(traj.rewards, MDP.gamma)
        return estimators.weighted_score_sum(traj, logits, (G - G.mean()) / (G.std() + 1e-8))

    r = verify.check_estimator(batch_normalized, MDP, LOGITS, n=2_000)
    assert r.exact_bias is None and "depends on the rest of the batch" in r.note


def test_infinite_horizon_needs_a_truncation_and_targets_the_truncated_gradient():
    m = pglib.mdp.random_mdp(3, 2, seed=1, gamma=0.5)
    th = torch.zeros(3, 2)
    with pytest.raises(ValueError, match="horizon is required"):
        verify.check_estimator(lambda t, x: estimators.reinforce(t, x, m.gamma), m, th, n=100)
    r = verify.check_estimator(lambda t, x: estimators.reinforce(t, x, m.gamma), m, th, n=2_000, horizon=3)
    torch.testing.assert_close(r.gradient, exact.gradient(m.with_(horizon=3), th))
    assert r.exact_bias.abs().max() < 1e-12


class _Counting:
    def __init__(self, fn):
        self.fn, self.calls = fn, 0

    def __call__(self, traj, logits):
        self.calls += 1
        return self.fn(traj, logits)


@pytest.mark.parametrize("bad, error, match", [
    (lambda traj, logits: correct(traj, logits)[:, 0], ValueError, r"shape \[N, S, A\]"),
    (lambda traj, logits: correct(traj, logits) * math.nan, ValueError, "NaN"),
    (lambda traj, logits: [1.0], TypeError, "must return a tensor"),
])
def test_bad_estimator_output_fails_on_the_trial_call(bad, error, match):
    f = _Counting(bad)
    with pytest.raises(error, match=match):
        verify.check_estimator(f, MDP, LOGITS, n=20_000)
    assert f.calls == 1


@pytest.mark.parametrize("bad, error, match", [
    (lambda traj, logits: torch.log_softmax(logits, -1).sum(-1), ValueError, "scalar"),
    (lambda traj, logits: torch.tensor(1.0), ValueError, "no gradient"),
    (lambda traj, logits: 1.0, TypeError, "scalar tensor"),
    (lambda traj, logits: correct_loss(traj, logits) * math.nan, ValueError, "finite"),
    (bug_zoo.MISTAKES["old_logp_not_detached"].loss(MDP), ValueError, "identically zero"),
])
def test_bad_loss_fails_on_the_trial_call(bad, error, match):
    f = _Counting(bad)
    with pytest.raises(error, match=match):
        verify.check_loss(f, MDP, LOGITS)
    assert f.calls == 1


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(mdp="chain"), TypeError, "mdp must be TabularMDP"),
    (dict(logits=torch.zeros(2, 2)), ValueError, "logits must have shape"),
    (dict(n=3), ValueError, "n must be an integer >= 14"),
    (dict(alpha=1.5), ValueError, "alpha"),
    (dict(seed=-1), ValueError, "seed"),
    (dict(estimator="reinforce"), TypeError, "estimator must be a function"),
])
def test_bad_arguments_name_the_argument(kwargs, error, match):
    args = dict(estimator=correct, mdp=MDP, logits=LOGITS, n=100)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        verify.check_estimator(**args)


def test_report_text_names_the_state_and_the_closest_mistake():
    r = verify.check_estimator(bug_zoo.MISTAKES["reward_shifted"].estimator(MDP), MDP, LOGITS, n=5_000)
    text = str(r)
    assert "biased" in text and "state s" in text and "closest known mistake" in text
    assert all(len(line) <= 88 for line in text.splitlines())
    assert r.closest_mistake[0] == "reward_shifted"


@pytest.mark.slow
def test_check_loss_false_alarm_rate_and_power_over_200_seeds():
    alpha, B, nb = 0.05, 8, 400
    rejections = sum(not verify.check_loss(correct_loss, MDP, LOGITS, batch_size=B, n_batches=nb, seed=s,
                                           alpha=alpha).unbiased for s in range(200))
    assert _in_binomial_interval(rejections, 200, alpha), rejections
    # a fresh pilot per seed: the detection rate is then the power averaged over the pilots'
    # estimation error of the covariance (one pilot's luck would shift all 200 runs alike)
    caught = 0
    for s in range(200):
        pilot = verify.check_loss(correct_loss, MDP, LOGITS, batch_size=B, n_batches=nb, seed=10_000 + s,
                                  alpha=alpha)
        shift = (pilot.detectable_bias * GRAD / GRAD.norm()).detach()

        def shifted(traj, logits, shift=shift):
            return correct_loss(traj, logits) - (logits * shift).sum()

        caught += not verify.check_loss(shifted, MDP, LOGITS, batch_size=B, n_batches=nb, seed=s,
                                        alpha=alpha).unbiased
    assert _in_binomial_interval(caught, 200, verify.POWER), caught
