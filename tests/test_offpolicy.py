"""pglib.offpolicy against enumeration of every trajectory, plain loops and finite differences."""

import itertools
import math

import pytest
import torch

from pglib import enumeration, estimators, exact, expected, mdp, offpolicy
from reference import clipped_by_cases, softmax_score

FLOAT64_DEFAULT = True  # torch's default dtype is float64 while this module's tests run (tests/conftest.py)


def case(i):
    """Random finite-horizon MDPs (gamma = 1 and gamma < 1) and the short corridor (terminal state)."""
    if i == 4:
        m = mdp.short_corridor(horizon=5)
        g = torch.Generator().manual_seed(i)
        th = torch.randn(1, 2, generator=g, dtype=torch.float64).expand(4, 2).clone()
        old = th + 0.8 * torch.randn(1, 2, generator=g, dtype=torch.float64).expand(4, 2)
        return m, th, old
    S, A, T = 2 + i % 2, 2 + i % 3 // 2, 3 + i % 2
    gamma = 1.0 if i % 2 == 0 else 0.8
    m = mdp.random_mdp(S, A, seed=i, gamma=gamma, horizon=T)
    g = torch.Generator().manual_seed(100 + i)
    th = torch.randn(S, A, generator=g, dtype=torch.float64)
    old = th + 0.8 * torch.randn(S, A, generator=g, dtype=torch.float64)
    return m, th, old


CASES = [case(i) for i in range(5)]


def step_estimator_by_loops(m, th, old, e, q_target=None):
    """sum_t gamma^t rho_t score_t Qhat_t per enumerated trajectory, written with explicit loops."""
    pi, mu = m.policy(th), m.policy(old)
    out = torch.zeros(len(e), m.n_states, m.n_actions)
    T = e.states.shape[1]
    for n in range(len(e)):
        for t in range(T):
            if not e.mask[n, t]:
                continue
            s, a = int(e.states[n, t]), int(e.actions[n, t])
            if q_target is None:
                q = sum(m.gamma ** (k - t) * e.rewards[n, k] for k in range(t, T))
            else:
                q = q_target[t, s, a]
            out[n] += m.gamma**t * pi[s, a] / mu[s, a] * softmax_score(pi, s, a) * q
    return out


@pytest.mark.parametrize("m, th, old", CASES)
def test_single_step_expectation_by_enumeration(m, th, old):
    e = enumeration.all_trajectories(m, old)
    for critic, q in (("behaviour", None), ("target", exact.time_q_values(m, th))):
        expect = e.expectation(step_estimator_by_loops(m, th, old, e, q))
        assert torch.allclose(offpolicy.single_step_expectation(m, th, old, critic=critic), expect, atol=1e-12)


@pytest.mark.parametrize("m, th, old", CASES)
def test_single_step_agrees_with_estimators_and_is_exact_on_policy(m, th, old):
    assert torch.allclose(offpolicy.single_step_expectation(m, th, old),
                          expected.step_importance(m, th, old), atol=1e-12)
    for critic in ("behaviour", "target"):
        assert torch.allclose(offpolicy.single_step_expectation(m, th, th, critic=critic), exact.gradient(m, th),
                              atol=1e-10)


@pytest.mark.parametrize("m, th, old", CASES)
def test_weight_second_moment_by_enumeration(m, th, old):
    e = enumeration.all_trajectories(m, old)
    pi, mu = m.policy(th), m.policy(old)
    rho = torch.where(e.mask, pi[e.states, e.actions] / mu[e.states, e.actions], torch.ones(()))
    W = rho.cumprod(1)
    assert torch.allclose(offpolicy.weight_second_moment(m, th, old), e.expectation(W**2), atol=1e-12)
    assert torch.allclose(e.expectation(W), torch.ones(W.shape[1]), atol=1e-12)  # the weights have mean 1
    assert torch.allclose(offpolicy.limiting_ess_fraction(m, th, old), 1 / e.expectation(W**2), atol=1e-12)


@pytest.mark.parametrize("m, th, old", CASES)
def test_trajectory_kl_by_enumeration(m, th, old):
    e_old = enumeration.all_trajectories(m, old)
    pi, mu = m.policy(th), m.policy(old)
    log_ratio = torch.where(e_old.mask, torch.log(mu[e_old.states, e_old.actions] / pi[e_old.states, e_old.actions]),
                            torch.zeros(()))
    expect = e_old.expectation(log_ratio.sum(1))  # E_old[log p_old(tau)/p_new(tau)], dynamics cancel
    assert torch.isclose(offpolicy.trajectory_kl(m, th, old), expect, atol=1e-12)
    assert offpolicy.time_kl(m, th, old).shape == (m.horizon,)


def surrogate_by_enumeration(m, th, old, eps):
    e = enumeration.all_trajectories(m, old)
    pi, mu = m.policy(th), m.policy(old)
    Q = exact.time_q_values(m, old)
    A_old = Q - (mu[None] * Q).sum(-1, keepdim=True)
    total = 0.0
    for n in range(len(e)):
        v = 0.0
        for t in range(e.states.shape[1]):
            if e.mask[n, t]:
                s, a = int(e.states[n, t]), int(e.actions[n, t])
                rho, adv = (pi[s, a] / mu[s, a]).item(), (m.gamma**t * A_old[t, s, a]).item()
                v += rho * adv if eps is None else clipped_by_cases(rho, adv, eps)
        total += e.prob[n].item() * v
    return total


@pytest.mark.parametrize("m, th, old", CASES)
@pytest.mark.parametrize("eps", [None, 0.1, 0.3])
def test_surrogate_objective_by_enumeration_and_its_gradient_by_differences(m, th, old, eps):
    got = offpolicy.surrogate_objective(m, th, old, eps)
    assert math.isclose(got.item(), surrogate_by_enumeration(m, th, old, eps), rel_tol=1e-10, abs_tol=1e-12)
    # central differences of the closed form (away from the clip kinks for these random cases)
    h, fd = 1e-6, torch.zeros_like(th)
    for idx in itertools.product(*map(range, th.shape)):
        d = torch.zeros_like(th)
        d[idx] = h
        fd[idx] = (offpolicy.surrogate_objective(m, th + d, old, eps) - offpolicy.surrogate_objective(m, th - d, old, eps)) / (2 * h)
    assert torch.allclose(offpolicy.surrogate_gradient(m, th, old, eps), fd, atol=1e-7)


@pytest.mark.parametrize("m, th, old", CASES)
def test_surrogate_gradient_special_cases(m, th, old):
    # unclipped: the expectation of the single-step estimator (the baseline V_old(s) drops out)
    assert torch.allclose(offpolicy.surrogate_gradient(m, th, old), offpolicy.single_step_expectation(m, th, old),
                          atol=1e-12)
    # at theta = theta_old every ratio is 1, nothing is clipped: the exact policy gradient
    for eps in (None, 0.05, 0.2):
        assert torch.allclose(offpolicy.surrogate_gradient(m, old, old, eps), exact.gradient(m, old), atol=1e-10)
        assert abs(offpolicy.surrogate_objective(m, old, old, eps).item()) < 1e-12


def test_bad_inputs():
    m = mdp.random_mdp(3, 2, seed=0, gamma=0.9, horizon=None)
    th = torch.zeros(3, 2)
    for fn in (offpolicy.single_step_expectation, offpolicy.weight_second_moment, offpolicy.surrogate_objective):
        with pytest.raises(ValueError, match="horizon"):
            fn(m, th, th)
    with pytest.raises(ValueError, match="critic"):
        offpolicy.single_step_expectation(m.with_(horizon=3), th, th, critic="oracle")
    with pytest.raises(ValueError, match="logits"):
        offpolicy.weight_second_moment(m.with_(horizon=3), torch.zeros(2, 2), th)


@pytest.mark.parametrize("m, th, old", CASES)
def test_kl_penalty_term_is_beta_times_trajectory_kl(m, th, old):
    beta = 0.7
    diff = offpolicy.surrogate_objective(m, th, old, 0.2) - offpolicy.surrogate_objective(m, th, old, 0.2, beta=beta)
    assert math.isclose(diff.item(), beta * offpolicy.trajectory_kl(m, th, old).item(), rel_tol=1e-10, abs_tol=1e-14)
    # its gradient: E_old[sum_t (rho_t - 1) score_t] (the k3 estimator's), by enumeration
    e = enumeration.all_trajectories(m, old)
    pi, mu = m.policy(th), m.policy(old)
    per = torch.zeros(len(e), *th.shape)
    for n in range(len(e)):
        for t in range(e.states.shape[1]):
            if e.mask[n, t]:
                s, a = int(e.states[n, t]), int(e.actions[n, t])
                per[n] += (pi[s, a] / mu[s, a] - 1) * softmax_score(pi, s, a)
    g_pen = offpolicy.surrogate_gradient(m, th, old, 0.2) - offpolicy.surrogate_gradient(m, th, old, 0.2, beta=beta)
    assert torch.allclose(g_pen, beta * e.expectation(per), atol=1e-12)


@pytest.mark.parametrize("m, th, old", CASES)
def test_clip_fraction_by_enumeration(m, th, old):
    eps = 0.2
    e = enumeration.all_trajectories(m, old)
    pi, mu = m.policy(th), m.policy(old)
    Q = exact.time_q_values(m, old)
    A_old = Q - (mu[None] * Q).sum(-1, keepdim=True)
    T = e.states.shape[1]
    hit = torch.zeros(len(e), T)
    for n in range(len(e)):
        for t in range(T):
            if e.mask[n, t]:
                s, a = int(e.states[n, t]), int(e.actions[n, t])
                rho, adv = (pi[s, a] / mu[s, a]).item(), A_old[t, s, a].item()
                hit[n, t] = float((adv > 0 and rho > 1 + eps) or (adv < 0 and rho < 1 - eps))
    expect = e.expectation(hit) / e.expectation(e.mask.to(torch.float64))
    assert torch.allclose(offpolicy.clip_fraction(m, th, old, eps), expect, atol=1e-12)
