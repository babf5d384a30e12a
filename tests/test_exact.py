"""pglib.exact against independent computations: finite differences, enumeration, power series."""

import itertools

import numpy as np
import pytest
import torch

from pglib import exact, expected, mdp
from reference import central_differences



def random_case(i):
    """20+ random MDPs over three regimes: finite horizon with gamma=1, finite with gamma<1, infinite."""
    regime = i % 3
    S, A = 2 + i % 4, 2 + i % 3
    if regime == 0:
        m = mdp.random_mdp(S, A, seed=i, gamma=1.0, horizon=3 + i % 5)
    elif regime == 1:
        m = mdp.random_mdp(S, A, seed=i, gamma=0.5 + 0.02 * i, horizon=2 + i % 6)
    else:
        m = mdp.random_mdp(S, A, seed=i, gamma=0.5 + 0.02 * i, horizon=None)
    logits = torch.from_numpy(np.random.default_rng(100 + i).normal(size=(S, A)))
    return m, logits


CASES = [random_case(i) for i in range(24)]


@pytest.mark.parametrize("m, logits", CASES, ids=lambda c: repr(c) if isinstance(c, mdp.TabularMDP) else "")
def test_gradient_matches_central_finite_differences(m, logits):
    fd = central_differences(lambda th: exact.objective(m, th).item(), logits)
    assert torch.allclose(exact.gradient(m, logits), fd, atol=1e-7, rtol=1e-6)


@pytest.mark.parametrize("m, logits", [c for c in CASES if c[0].horizon is None])
def test_theorem_gradient_equals_autodiff_gradient(m, logits):
    assert torch.allclose(exact.theorem_gradient(m, logits), exact.gradient(m, logits), atol=1e-9, rtol=0)


@pytest.mark.parametrize("m, logits", [c for c in CASES if c[0].horizon is not None])
def test_discounted_expected_direction_is_the_gradient(m, logits):
    assert torch.allclose(expected.direction(m, logits, discount_score=True), exact.gradient(m, logits),
                          atol=1e-9, rtol=0)


def enumerate_objective(m, logits):
    """J by summing over every trajectory of a small finite-horizon MDP (independent of the recursion)."""
    pi = torch.softmax(logits, -1)
    S, A, T = m.n_states, m.n_actions, m.horizon
    total = 0.0
    for s0 in range(S):
        for path in itertools.product(range(S), range(A), repeat=T):
            # path = (a_0? no) -> interpret as pairs (s_{t+1}, a_t)
            pairs = list(zip(path[1::2], path[0::2]))  # (a_t, s_{t+1})
            p, ret, s = m.initial[s0].item(), 0.0, s0
            for t, (a, s_next) in enumerate(pairs):
                p *= pi[s, a].item() * m.transitions[s, a, s_next].item()
                ret += m.gamma**t * m.rewards[s, a].item()
                s = s_next
            total += p * ret
    return total


@pytest.mark.parametrize("seed, gamma, T", [(0, 1.0, 3), (1, 0.7, 3), (2, 0.9, 2)])
def test_finite_horizon_objective_matches_enumeration(seed, gamma, T):
    m = mdp.random_mdp(2, 2, seed=seed, gamma=gamma, horizon=T)
    logits = torch.from_numpy(np.random.default_rng(seed).normal(size=(2, 2)))
    assert exact.objective(m, logits).item() == pytest.approx(enumerate_objective(m, logits), abs=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_infinite_horizon_values_match_a_truncated_power_series(seed):
    m = mdp.random_mdp(4, 3, seed=seed, gamma=0.8)
    logits = torch.from_numpy(np.random.default_rng(seed).normal(size=(4, 3)))
    pi = torch.softmax(logits, -1)
    P_pi = torch.einsum("sa,sat->st", pi, m.transitions)
    r_pi = (pi * m.rewards).sum(-1)
    V, term = torch.zeros(4, dtype=torch.float64), r_pi.clone()
    d, p = torch.zeros(4, dtype=torch.float64), m.initial.clone()
    for t in range(400):
        V += m.gamma**t * term
        term = P_pi @ term
        d += (1 - m.gamma) * m.gamma**t * p
        p = p @ P_pi
    assert torch.allclose(exact.state_values(m, logits), V, atol=1e-10)
    assert torch.allclose(exact.occupancy(m, logits), d, atol=1e-10)
    Q = exact.q_values(m, logits)
    assert torch.allclose((pi * Q).sum(-1), V, atol=1e-10)
    assert torch.allclose(exact.advantages(m, logits), Q - V[:, None], atol=1e-10)


def test_time_indexed_quantities_are_consistent():
    m = mdp.random_mdp(3, 2, seed=5, gamma=0.9, horizon=6)
    logits = torch.from_numpy(np.random.default_rng(5).normal(size=(3, 2)))
    p = exact.time_occupancy(m, logits)
    V = exact.time_state_values(m, logits)
    assert p.shape == (6, 3) and V.shape == (6, 3)
    assert torch.allclose(p.sum(-1), torch.ones(6, dtype=torch.float64))
    # J = sum_t gamma^t E[r_t] = sum_t gamma^t p_t . r_pi
    pi = torch.softmax(logits, -1)
    r_pi = (pi * m.rewards).sum(-1)
    J = sum(m.gamma**t * (p[t] @ r_pi) for t in range(6))
    assert exact.objective(m, logits).item() == pytest.approx(J.item(), abs=1e-12)
    assert torch.allclose(V[-1], r_pi)


def test_undiscounted_score_direction_differs_from_gradient_when_gamma_below_one():
    """Thomas (2014): dropping gamma^t changes the expected direction."""
    m = mdp.random_mdp(4, 2, seed=11, gamma=0.8, horizon=8)
    logits = torch.from_numpy(np.random.default_rng(0).normal(size=(4, 2)))
    d = expected.direction(m, logits, discount_score=False)
    g = exact.gradient(m, logits)
    assert (d - g).abs().max() > 1e-3
    # ...but with gamma = 1 the two coincide
    m1 = m.with_(gamma=1.0)
    assert torch.allclose(expected.direction(m1, logits, False), exact.gradient(m1, logits), atol=1e-10)


def test_forms_that_need_a_particular_horizon_say_so():
    with pytest.raises(ValueError, match="infinite"):
        exact.theorem_gradient(mdp.chain(horizon=5), torch.zeros(5, 2))
    with pytest.raises(ValueError, match="finite horizon"):
        expected.direction(mdp.chain(), torch.zeros(5, 2))
