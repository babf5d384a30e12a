"""pglib.estimators against independent computations.

- Hand-built batches: a plain Python loop over trajectories and steps that takes
  grad log pi(a_t|s_t) by torch.autograd on each step and forms returns with its own loops.
- Sampled batches: Monte Carlo means tested against pglib.exact (gradient, expected_direction)
  with pglib.stats.unbiasedness_test at a small alpha and fixed seeds.
"""

import math

import numpy as np
import pytest
import torch

from pglib import estimators, exact, expected, mdp, scorefn, stats
from pglib.sampling import Trajectories, sample_trajectories

ALPHA = 1e-3


# ----------------------------------------------------------------------------- the plain-loop reference


def autograd_score(logits, s, a):
    theta = logits.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(torch.log_softmax(theta, -1)[s, a], theta)
    return g


def reference(traj, logits, step_weight):
    """sum_t mask_t * step_weight(n, t) * grad log pi(a_t|s_t), one trajectory and one step at a time."""
    out = torch.zeros(traj.n, *logits.shape, dtype=torch.float64)
    for n in range(traj.n):
        for t in range(traj.horizon):
            if traj.mask[n, t]:
                s, a = int(traj.states[n, t]), int(traj.actions[n, t])
                out[n] += step_weight(n, t) * autograd_score(logits, s, a)
    return out


def disc_sum(r, gamma, start, stop):
    """sum_{k=start}^{stop-1} gamma^(k - start) r_k by a plain loop."""
    total = 0.0
    for k in range(start, stop):
        total += gamma ** (k - start) * float(r[k])
    return total


def hand_batch():
    """Four trajectories over S=3, A=2, T=5; the last ends in terminal state 2 at t=3."""
    states = [[0, 1, 1, 0, 2], [2, 2, 2, 2, 2], [1, 0, 0, 1, 1], [0, 0, 1, 2, 2]]
    actions = [[1, 0, 1, 1, 0], [0, 1, 1, 0, 0], [1, 1, 0, 0, 1], [0, 1, 0, 1, 0]]
    rewards = [[0.5, -1.0, 2.0, 0.0, 1.5], [1.0, 0.2, 0.3, -0.4, 0.5], [0.0, 0.0, 3.0, 1.0, -2.0], [1.0, 2.0, 0.5, 0.0, 0.0]]
    mask = [[True] * 5, [True] * 5, [True] * 5, [True, True, True, False, False]]
    return Trajectories(states, actions, rewards, mask)


LOGITS = torch.tensor([[0.2, -0.4], [1.0, 0.3], [-0.5, 0.0]], dtype=torch.float64)


@pytest.mark.parametrize("gamma", [1.0, 0.9, 0.0])
def test_reinforce_matches_autograd_loop(gamma):
    traj, T = hand_batch(), 5
    r = traj.rewards
    R = lambda n: disc_sum(r[n], gamma, 0, T)  # noqa: E731
    G = lambda n, t: disc_sum(r[n], gamma, t, T)  # noqa: E731
    torch.testing.assert_close(estimators.reinforce(traj, LOGITS, gamma, "return"),
                               reference(traj, LOGITS, lambda n, t: R(n)))
    torch.testing.assert_close(estimators.reinforce(traj, LOGITS, gamma),
                               reference(traj, LOGITS, lambda n, t: gamma**t * G(n, t)))
    torch.testing.assert_close(estimators.reinforce(traj, LOGITS, gamma, discount_score=False),
                               reference(traj, LOGITS, lambda n, t: G(n, t)))
    past = lambda n, t: sum(gamma**k * float(r[n, k]) for k in range(t))  # noqa: E731
    torch.testing.assert_close(estimators.past_reward_terms(traj, LOGITS, gamma), reference(traj, LOGITS, past))


def test_baselines_match_autograd_loop():
    traj, T, gamma = hand_batch(), 5, 0.8
    G = lambda n, t: disc_sum(traj.rewards[n], gamma, t, T)  # noqa: E731
    s_, a_ = traj.states, traj.actions
    b_s = torch.tensor([0.3, -1.0, 2.0], dtype=torch.float64)
    b_ts = torch.arange(15, dtype=torch.float64).reshape(5, 3) / 7
    b_sa = torch.tensor([[0.1, 0.9], [-0.3, 0.4], [1.0, 2.0]], dtype=torch.float64)
    cases = [
        (dict(baseline=1.5), lambda n, t: 1.5),
        (dict(baseline=b_s), lambda n, t: float(b_s[s_[n, t]])),
        (dict(baseline=b_ts), lambda n, t: float(b_ts[t, s_[n, t]])),
        (dict(action_baseline=b_sa), lambda n, t: float(b_sa[s_[n, t], a_[n, t]])),
        (dict(baseline=b_s, action_baseline=b_sa), lambda n, t: float(b_s[s_[n, t]] + b_sa[s_[n, t], a_[n, t]])),
    ]
    for kwargs, b in cases:
        got = estimators.reinforce(traj, LOGITS, gamma, **kwargs)
        torch.testing.assert_close(got, reference(traj, LOGITS, lambda n, t: gamma**t * (G(n, t) - b(n, t))))
        got = estimators.reinforce(traj, LOGITS, gamma, "return", **kwargs)
        torch.testing.assert_close(got, reference(traj, LOGITS, lambda n, t: G(n, 0) - b(n, t)))


def test_importance_weighted_matches_autograd_loop():
    traj, T, gamma = hand_batch(), 5, 0.7
    behaviour = torch.tensor([[0.0, 0.0], [0.5, -0.5], [0.2, 0.1]], dtype=torch.float64)
    pi, beta = torch.softmax(LOGITS, -1), torch.softmax(behaviour, -1)

    def rho(n, t):
        if not traj.mask[n, t]:
            return 1.0
        s, a = int(traj.states[n, t]), int(traj.actions[n, t])
        return float(pi[s, a] / beta[s, a])

    def prod_rho(n, stop):
        return math.prod(rho(n, j) for j in range(stop))

    r = traj.rewards
    G = lambda n, t: disc_sum(r[n], gamma, t, T)  # noqa: E731
    want = {
        "trajectory": lambda n, t: prod_rho(n, T) * gamma**t * G(n, t),
        "per_decision": lambda n, t: sum(gamma**k * float(r[n, k]) * prod_rho(n, k + 1) for k in range(t, T)),
        "step": lambda n, t: rho(n, t) * gamma**t * G(n, t),
    }
    for kind, weight in want.items():
        got = estimators.importance_weighted(traj, LOGITS, behaviour, gamma, kind)
        torch.testing.assert_close(got, reference(traj, LOGITS, weight), msg=kind)


def test_score_and_weighted_score_sum():
    traj = hand_batch()
    dense = scorefn.tabular_score(LOGITS, traj.states, traj.actions)  # [N, T, S, A]
    for n in range(traj.n):
        for t in range(traj.horizon):
            torch.testing.assert_close(dense[n, t], autograd_score(LOGITS, int(traj.states[n, t]), int(traj.actions[n, t])))
    w = torch.randn(traj.n, traj.horizon, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(estimators.weighted_score_sum(traj, LOGITS, w),
                               (dense * (w * traj.mask)[..., None, None]).sum(1))
    assert scorefn.tabular_score(torch.zeros(1, 2), [0], [1]).tolist() == [[[-0.5, 0.5]]]


def test_rows_sum_to_zero_and_identity():
    m = mdp.random_mdp(5, 3, seed=3, gamma=0.9, horizon=12)
    logits = torch.randn(5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    traj = sample_trajectories(m, logits, n=2000, seed=0)
    V = exact.time_state_values(m, logits).detach()
    behaviour = logits + 0.3
    for est in (estimators.reinforce(traj, logits, 0.9), estimators.reinforce(traj, logits, 0.9, "return"),
                estimators.reinforce(traj, logits, 0.9, baseline=V, action_baseline=torch.rand(5, 3)),
                estimators.past_reward_terms(traj, logits, 0.9),
                estimators.importance_weighted(traj, behaviour, logits, 0.9, "per_decision")):
        assert est.shape == (2000, 5, 3)
        assert est.sum(-1).abs().max() < 1e-12
    # R = sum_{k<t} gamma^k r_k + gamma^t G_t, so "return" = "reward_to_go" + past terms, exactly
    torch.testing.assert_close(estimators.reinforce(traj, logits, 0.9, "return"),
                               estimators.reinforce(traj, logits, 0.9) + estimators.past_reward_terms(traj, logits, 0.9))


# ----------------------------------------------------------------------------- Monte Carlo vs exact


def _case(name):
    if name == "random_gamma1":
        m = mdp.random_mdp(4, 3, seed=11, gamma=1.0, horizon=6)
    elif name == "random_gamma09":
        m = mdp.random_mdp(4, 3, seed=12, gamma=0.9, horizon=8)
    elif name == "chain":
        m = mdp.chain(4, gamma=0.95, horizon=10)
    else:
        m = mdp.short_corridor(gamma=0.9, horizon=8)
    logits = 0.7 * torch.randn(m.n_states, m.n_actions, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    return m, logits


CASES = ["random_gamma1", "random_gamma09", "chain", "corridor"]


@pytest.mark.parametrize("name", CASES)
def test_unbiased_estimators_not_rejected(name):
    m, logits = _case(name)
    traj = sample_trajectories(m, logits, n=30_000, seed=2024)
    grad = exact.gradient(m, logits)
    V_t = exact.time_state_values(m, logits).detach()
    for label, est in [
        ("return", estimators.reinforce(traj, logits, m.gamma, "return")),
        ("reward_to_go", estimators.reinforce(traj, logits, m.gamma)),
        ("constant baseline", estimators.reinforce(traj, logits, m.gamma, baseline=float(V_t[0].mean()))),
        ("time-state baseline", estimators.reinforce(traj, logits, m.gamma, baseline=V_t)),
    ]:
        res = stats.unbiasedness_test(est, grad, alpha=ALPHA)
        assert not res.reject, f"{name} {label}: {res.summary()}"
    res = stats.unbiasedness_test(estimators.past_reward_terms(traj, logits, m.gamma), torch.zeros_like(grad), ALPHA)
    assert not res.reject, res.summary()


@pytest.mark.parametrize("name", ["random_gamma09", "chain"])
def test_biased_estimators_match_their_exact_expectations(name):
    m, logits = _case(name)
    traj = sample_trajectories(m, logits, n=30_000, seed=7)
    b_sa = exact.time_q_values(m, logits)[0].detach()
    est = estimators.reinforce(traj, logits, m.gamma, discount_score=False)
    res = stats.unbiasedness_test(est, expected.direction(m, logits, discount_score=False), ALPHA)
    assert not res.reject, res.summary()
    est = estimators.reinforce(traj, logits, m.gamma, action_baseline=b_sa)
    res = stats.unbiasedness_test(est, expected.action_baseline(m, logits, b_sa), ALPHA)
    assert not res.reject, res.summary()
    # and the action-dependent baseline really is biased: its exact expectation is not the gradient
    assert (expected.action_baseline(m, logits, b_sa) - exact.gradient(m, logits)).abs().max() > 1e-3


@pytest.mark.parametrize("name", ["random_gamma1", "random_gamma09", "corridor"])
def test_off_policy_estimators(name):
    m, target = _case(name)
    behaviour = target + 0.4 * torch.randn(target.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(9))
    traj = sample_trajectories(m, behaviour, n=30_000, seed=5)
    grad = exact.gradient(m, target)
    for kind in ("trajectory", "per_decision"):
        res = stats.unbiasedness_test(estimators.importance_weighted(traj, target, behaviour, m.gamma, kind), grad, ALPHA)
        assert not res.reject, f"{kind}: {res.summary()}"
    est = estimators.importance_weighted(traj, target, behaviour, m.gamma, "step")
    res = stats.unbiasedness_test(est, expected.step_importance(m, target, behaviour), ALPHA)
    assert not res.reject, res.summary()
    # the one-step correction is exact when the policies coincide
    torch.testing.assert_close(expected.step_importance(m, target, target), grad)


# ----------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize("call, match", [
    (lambda t: estimators.reinforce(t, LOGITS, 1.5), "gamma"),
    (lambda t: estimators.reinforce(t, LOGITS, 0.9, credit="advantage"), "credit must be one of"),
    (lambda t: estimators.reinforce(t, LOGITS, 0.9, "return", discount_score=False), "discount_score=False"),
    (lambda t: estimators.reinforce(t, LOGITS, 0.9, discount_score=1), "discount_score"),
    (lambda t: estimators.reinforce(t, LOGITS, 0.9, baseline=torch.zeros(3, 2)), r"\[T, S\]"),
    (lambda t: estimators.reinforce(t, LOGITS, 0.9, baseline=torch.zeros(2)), r"\[S\]"),
    (lambda t: estimators.reinforce(t, LOGITS, 0.9, baseline=torch.zeros(5, 3, 2)), "baseline must be"),
    (lambda t: estimators.reinforce(t, LOGITS, 0.9, baseline=float("nan")), "NaN"),
    (lambda t: estimators.reinforce(t, LOGITS, 0.9, action_baseline=torch.zeros(3)), "action_baseline"),
    (lambda t: estimators.reinforce(t, torch.zeros(2, 2), 0.9), "traj.states must lie"),
    (lambda t: estimators.reinforce(t, torch.zeros(3), 0.9), "logits must have shape"),
    (lambda t: estimators.reinforce("batch", LOGITS, 0.9), "traj must be"),
    (lambda t: estimators.weighted_score_sum(t, LOGITS, torch.zeros(4, 4)), r"weights must have shape \[N, T\]"),
    (lambda t: estimators.importance_weighted(t, LOGITS, LOGITS, 0.9, kind="pd"), "kind must be one of"),
    (lambda t: estimators.importance_weighted(t, LOGITS, torch.zeros(2, 2), 0.9), "same shape"),
])
def test_bad_inputs(call, match):
    with pytest.raises(ValueError, match=match):
        call(hand_batch())


def test_sampled_batch_checks_logits_shape_cheaply():
    m = mdp.random_mdp(3, 2, seed=0, horizon=4)
    traj = sample_trajectories(m, torch.zeros(3, 2), n=10, seed=0)
    with pytest.raises(ValueError, match=r"\[S, A\] = \[3, 2\]"):
        estimators.reinforce(traj, torch.zeros(4, 2), 1.0)
    with pytest.raises(ValueError, match="finite horizon"):
        expected.step_importance(m.with_(horizon=None, gamma=0.9), torch.zeros(3, 2), torch.zeros(3, 2))
    assert np.isfinite(estimators.reinforce(traj, torch.zeros(3, 2), 1.0).numpy()).all()
