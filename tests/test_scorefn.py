"""pglib.scorefn against independent computations: finite differences, torch.distributions, plain loops."""

import math

import numpy as np
import pytest
import torch

from pglib import mdp, sampling, scorefn
from pglib.enumeration import all_trajectories
from reference import central_differences

FLOAT64_DEFAULT = True  # torch's default dtype is float64 while this module's tests run (tests/conftest.py)


@pytest.mark.parametrize("K", [2, 3, 6])
def test_categorical_score_matches_finite_differences(K):
    rng = np.random.default_rng(K)
    theta = torch.from_numpy(rng.normal(size=K))
    for x in range(K):
        fd = central_differences(lambda th: math.log(math.exp(th[x]) / sum(math.exp(v) for v in th.tolist())), theta)
        got = scorefn.categorical_score(theta, torch.tensor([x]))[0]
        assert torch.allclose(got, fd, atol=1e-8)


def test_categorical_score_batched_logits_and_zero_mean():
    rng = np.random.default_rng(0)
    logits = torch.from_numpy(rng.normal(size=(4, 3)))
    p = torch.softmax(logits, -1)
    # E_x[score] = sum_x p_x (e_x - p) = 0, by explicit enumeration per row
    for s in range(4):
        mean = sum(p[s, x] * scorefn.categorical_score(logits[s], torch.tensor(x)) for x in range(3))
        assert torch.allclose(mean, torch.zeros(3), atol=1e-15)
    out = scorefn.categorical_score(logits, torch.tensor([0, 1, 2, 1]))
    assert out.shape == (4, 3)
    assert torch.allclose(out.sum(-1), torch.zeros(4), atol=1e-15)


@pytest.mark.parametrize("mean, log_std", [(0.0, 0.0), (1.3, -0.7), (-2.0, 0.5)])
def test_gaussian_score_matches_torch_distributions(mean, log_std):
    x = torch.linspace(-3, 3, 7)
    params = torch.tensor([mean, log_std], requires_grad=True)
    expected = []
    for xi in x:
        lp = torch.distributions.Normal(params[0], params[1].exp()).log_prob(xi)
        (g,) = torch.autograd.grad(lp, params)
        expected.append(g)
    assert torch.allclose(scorefn.gaussian_score(mean, log_std, x), torch.stack(expected), atol=1e-12)


def test_gaussian_score_has_zero_mean_by_quadrature():
    # E[score] = 0: integrate on a fine grid (trapezoid), independent of sampling
    mean, log_std = 0.4, -0.3
    sd = math.exp(log_std)
    x = torch.linspace(mean - 12 * sd, mean + 12 * sd, 200_001)
    dens = torch.exp(-0.5 * ((x - mean) / sd) ** 2) / (sd * math.sqrt(2 * math.pi))
    s = scorefn.gaussian_score(mean, log_std, x)
    integral = torch.trapezoid(dens[:, None] * s, x, dim=0)
    assert torch.allclose(integral, torch.zeros(2), atol=1e-9)


def test_score_by_autodiff_matches_a_loop_of_backward_passes():
    rng = np.random.default_rng(1)
    theta = torch.from_numpy(rng.normal(size=(2, 3)))
    x = torch.tensor([0, 2, 1, 1])
    rows = torch.tensor([0, 1, 1, 0])
    fn = lambda th: torch.log_softmax(th, -1)[rows, x]  # noqa: E731
    got = scorefn.score_by_autodiff(fn, theta)
    for i in range(4):
        th = theta.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(torch.log_softmax(th, -1)[rows[i], x[i]], th)
        assert torch.allclose(got[i], g, atol=1e-14)


def _loop_log_prob(m, logits, states, actions, mask):
    """log p(tau) by a plain Python loop over trajectories and steps."""
    pi = torch.softmax(logits, -1)
    out = []
    for n in range(states.shape[0]):
        lp = math.log(m.initial[states[n, 0]])
        for t in range(states.shape[1]):
            if not mask[n, t]:
                continue
            lp += math.log(pi[states[n, t], actions[n, t]])
            if t + 1 < states.shape[1]:
                lp += math.log(m.transitions[states[n, t], actions[n, t], states[n, t + 1]])
        out.append(lp)
    return torch.tensor(out)


@pytest.mark.parametrize("problem", ["random", "corridor", "chain"])
def test_trajectory_log_prob_matches_loop_and_policy_only_gradient(problem):
    m = {"random": mdp.random_mdp(4, 3, seed=2, gamma=0.9, horizon=6),
         "corridor": mdp.short_corridor(horizon=8),
         "chain": mdp.chain(4, horizon=5)}[problem]
    logits = torch.from_numpy(np.random.default_rng(3).normal(size=(m.n_states, m.n_actions)))
    tr = sampling.sample_trajectories(m, logits, n=50, seed=0)
    lp = scorefn.trajectory_log_prob(m, tr, logits)
    assert torch.allclose(lp, _loop_log_prob(m, logits, tr.states, tr.actions, tr.mask), atol=1e-12)
    # policy-only part equals the sampler's own per-step log-probabilities
    assert torch.allclose(scorefn.trajectory_log_prob(m, tr, logits, dynamics=False), tr.logp.sum(-1), atol=1e-12)


@pytest.mark.parametrize("problem", ["random", "corridor"])
def test_autodiff_trajectory_score_matches_finite_differences(problem):
    m = mdp.random_mdp(3, 2, seed=5, gamma=1.0, horizon=4) if problem == "random" else mdp.short_corridor(horizon=6)
    logits = torch.from_numpy(np.random.default_rng(4).normal(size=(m.n_states, m.n_actions)))
    tr = sampling.sample_trajectories(m, logits, n=6, seed=1)
    auto = scorefn.score_by_autodiff(lambda th: scorefn.trajectory_log_prob(m, tr, th), logits)
    for n in range(tr.n):
        one = tr[n]
        fd = central_differences(lambda th: scorefn.trajectory_log_prob(m, one, th).item(), logits)
        assert torch.allclose(auto[n], fd, atol=1e-7)


def test_trajectory_score_has_zero_mean_by_enumeration():
    m = mdp.random_mdp(3, 2, seed=7, gamma=1.0, horizon=3)
    logits = torch.from_numpy(np.random.default_rng(7).normal(size=(3, 2)))
    e = all_trajectories(m, logits)
    scores = scorefn.score_by_autodiff(lambda th: scorefn.trajectory_log_prob(m, e, th), logits)
    assert torch.allclose(e.expectation(scores), torch.zeros(3, 2), atol=1e-14)


def test_bad_inputs_raise_value_errors_naming_the_argument():
    with pytest.raises(ValueError, match="samples"):
        scorefn.categorical_score(torch.zeros(3), torch.tensor([3]))
    with pytest.raises(ValueError, match="samples"):
        scorefn.categorical_score(torch.zeros(3), torch.tensor([0.5]))
    with pytest.raises(ValueError, match="logits"):
        scorefn.categorical_score(torch.tensor(1.0), torch.tensor([0]))
    with pytest.raises(ValueError, match="log_std"):
        scorefn.gaussian_score(0.0, float("nan"), torch.zeros(2))
    with pytest.raises(ValueError, match="params"):
        scorefn.score_by_autodiff(lambda th: th, [1.0, 2.0])
    with pytest.raises(ValueError, match="log_prob"):
        scorefn.score_by_autodiff(lambda th: th.sum(), torch.zeros(2))
    m = mdp.chain(3, horizon=4)
    tr = sampling.sample_trajectories(m, torch.zeros(3, 2), n=2, seed=0)
    with pytest.raises(ValueError, match="logits"):
        scorefn.trajectory_log_prob(m, tr, torch.zeros(2, 2))

    with pytest.raises(ValueError, match="states"):
        short = type("B", (), {"states": tr.states[:, :3], "actions": tr.actions})()
        scorefn.trajectory_log_prob(m, short, torch.zeros(3, 2))
