"""pglib.enumeration against independent computations: a recursive enumeration, exact.objective/gradient."""

import numpy as np
import pytest
import torch

from pglib import exact, mdp
from pglib.enumeration import all_trajectories


def recursive(m, logits, T):
    """Plain recursion over (s, a, s') listing {(states, actions): probability}."""
    pi = m.policy(logits).detach().numpy()
    P, mu0, term = m.transitions.numpy(), m.initial.numpy(), m.terminal.numpy()
    out = {}

    def go(t, s, states, actions, p):
        if t == T:
            out[(tuple(states), tuple(actions))] = out.get((tuple(states), tuple(actions)), 0.0) + p
            return
        if term[s]:
            go(t + 1, s, states + [s], actions + [0], p)
            return
        for a in range(m.n_actions):
            if pi[s, a] == 0:
                continue
            if t == T - 1:
                go(t + 1, s, states + [s], actions + [a], p * pi[s, a])
                continue
            for s2 in range(m.n_states):
                if P[s, a, s2] > 0:
                    go(t + 1, s2, states + [s], actions + [a], p * pi[s, a] * P[s, a, s2])

    for s in range(m.n_states):
        if mu0[s] > 0:
            go(0, s, [], [], mu0[s])
    return out


CASES = [
    (mdp.random_mdp(3, 2, seed=1, gamma=1.0, horizon=4), 1),
    (mdp.two_state(gamma=0.9, horizon=5), 2),
    (mdp.short_corridor(horizon=6), 3),
    (mdp.chain(4, gamma=1.0, horizon=5), 4),
]


@pytest.mark.parametrize("m, seed", CASES)
def test_matches_recursion(m, seed):
    logits = torch.from_numpy(np.random.default_rng(seed).normal(size=(m.n_states, m.n_actions)))
    e = all_trajectories(m, logits)
    want = recursive(m, logits, m.horizon)
    got = {}
    for i in range(len(e)):
        key = (tuple(e.states[i].tolist()), tuple(e.actions[i].tolist()))
        got[key] = got.get(key, 0.0) + float(e.prob[i])
    assert got.keys() == want.keys()
    for k in want:
        assert got[k] == pytest.approx(want[k], rel=1e-12)
    assert float(e.prob.sum()) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("m, seed", CASES)
def test_objective_and_gradient(m, seed):
    logits = torch.from_numpy(np.random.default_rng(seed).normal(size=(m.n_states, m.n_actions)))
    e = all_trajectories(m, logits)
    w = m.gamma ** torch.arange(m.horizon, dtype=torch.float64)
    R = (e.rewards * w).sum(-1)
    assert float(e.expectation(R)) == pytest.approx(float(exact.objective(m, logits)), rel=1e-10)
    # REINFORCE by hand: sum_t onehot(s_t) (onehot(a_t) - pi(s_t)) over real steps, times R
    pi = m.policy(logits).detach()
    g = torch.zeros(len(e), m.n_states, m.n_actions, dtype=torch.float64)
    for t in range(m.horizon):
        on = e.mask[:, t]
        sc = torch.nn.functional.one_hot(e.actions[:, t], m.n_actions).double() - pi[e.states[:, t]]
        g[torch.arange(len(e))[on], e.states[on, t]] += sc[on]
    assert torch.allclose(e.expectation(g * R[:, None, None]), exact.gradient(m, logits), atol=1e-10)
    # total variance: the definition, by a loop
    mean = e.expectation(g * R[:, None, None])
    want = sum(float(e.prob[i]) * float(((g[i] * R[i] - mean) ** 2).sum()) for i in range(len(e)))
    assert float(e.total_variance(g * R[:, None, None])) == pytest.approx(want, rel=1e-10)


def test_errors():
    m = mdp.random_mdp(3, 3, seed=0, gamma=1.0, horizon=8)
    with pytest.raises(ValueError, match="max_trajectories"):
        all_trajectories(m, torch.zeros(3, 3), max_trajectories=1000)
    with pytest.raises(ValueError, match="horizon"):
        all_trajectories(mdp.two_state(), torch.zeros(2, 2))
    e = all_trajectories(mdp.bandit(), torch.zeros(1, 3))
    with pytest.raises(ValueError, match="one row per trajectory"):
        e.expectation(torch.zeros(5))


def test_unvisited_chance_is_the_union_of_exact_never_visit_probabilities():
    """Two-state MDP from state 0: state 1 is reached only by switching; its visit
    probability, by an independent sum over the enumeration, gives (1 - v)^n."""
    m = mdp.two_state(gamma=1.0, horizon=3)
    logits = torch.tensor([[0.3, -0.2], [-0.6, 0.4]], dtype=torch.float64)
    ev = all_trajectories(m, logits)
    visit1 = sum(float(p) for p, row, mask in zip(ev.prob, ev.states, ev.mask)
                 if any(int(s) == 1 and bool(k) for s, k in zip(row, mask)))
    visit0 = sum(float(p) for p, row, mask in zip(ev.prob, ev.states, ev.mask)
                 if any(int(s) == 0 and bool(k) for s, k in zip(row, mask)))
    for n in (1, 5, 40):
        assert ev.unvisited_chance(n, [1]) == pytest.approx((1 - visit1) ** n, rel=1e-12)
        both = (1 - visit0) ** n + (1 - visit1) ** n
        assert ev.unvisited_chance(n) == pytest.approx(min(both, 1.0), rel=1e-12)
    assert ev.unvisited_chance(10**6, [1]) < 1e-16
    with pytest.raises(ValueError, match="n"):
        ev.unvisited_chance(0)
