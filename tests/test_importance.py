"""pglib.importance against plain loops, closed forms and exact expectations."""

import math

import numpy as np
import pytest
import scipy.stats
import torch

from pglib import exact, importance, mdp, stats
from pglib.sampling import Trajectories, sample_trajectories

TARGET = torch.tensor([[0.2, -0.4], [1.0, 0.3], [-0.5, 0.0]], dtype=torch.float64)
BEHAVIOUR = torch.tensor([[0.0, 0.0], [0.5, -0.5], [0.2, 0.1]], dtype=torch.float64)


def hand_batch():
    states = [[0, 1, 1, 0], [2, 2, 0, 1], [0, 0, 2, 2]]
    actions = [[1, 0, 1, 1], [0, 1, 1, 0], [0, 1, 0, 1]]
    mask = [[True] * 4, [True] * 4, [True, True, False, False]]
    return Trajectories(states, actions, torch.zeros(3, 4, dtype=torch.float64), mask)


def test_ratios_match_plain_loop():
    traj = hand_batch()
    pi, beta = torch.softmax(TARGET, -1).tolist(), torch.softmax(BEHAVIOUR, -1).tolist()
    rho = importance.step_ratios(traj, TARGET, BEHAVIOUR)
    c = importance.per_decision_ratios(traj, TARGET, BEHAVIOUR)
    W = importance.trajectory_ratios(traj, TARGET, BEHAVIOUR)
    for n in range(traj.n):
        running = 1.0
        for t in range(traj.horizon):
            s, a = int(traj.states[n, t]), int(traj.actions[n, t])
            r = pi[s][a] / beta[s][a] if traj.mask[n, t] else 1.0
            running *= r
            assert math.isclose(rho[n, t].item(), r, rel_tol=1e-12)
            assert math.isclose(c[n, t].item(), running, rel_tol=1e-12)
        assert math.isclose(W[n].item(), running, rel_tol=1e-12)
    assert (importance.step_ratios(traj, TARGET, TARGET) == 1).all()


def test_ratio_expectations_and_reweighted_objective():
    m = mdp.random_mdp(4, 3, seed=2, gamma=0.9, horizon=6)
    g = torch.Generator().manual_seed(0)
    target = torch.randn(4, 3, dtype=torch.float64, generator=g)
    behaviour = target + 0.5 * torch.randn(4, 3, dtype=torch.float64, generator=g)
    traj = sample_trajectories(m, behaviour, n=40_000, seed=1)
    c = importance.per_decision_ratios(traj, target, behaviour)
    # every prefix ratio has mean 1 under the behaviour policy
    res = stats.unbiasedness_test(c, torch.ones(m.horizon), alpha=1e-3)
    assert not res.reject, res.summary()
    # reweighting the discounted return estimates the target policy's objective, two ways
    disc = 0.9 ** torch.arange(m.horizon, dtype=torch.float64)
    R = (disc * traj.rewards).sum(1)
    J = exact.objective(m, target).detach()
    W = importance.trajectory_ratios(traj, target, behaviour)
    for x in (W * R, (disc * c * traj.rewards).sum(1)):
        z = (x.mean() - J) / (x.std() / math.sqrt(traj.n))
        assert abs(z) < 3.5, z


def test_logp_mismatch_and_bad_inputs():
    m = mdp.random_mdp(3, 2, seed=0, horizon=4)
    traj = sample_trajectories(m, BEHAVIOUR, n=20, seed=0)
    with pytest.raises(ValueError, match="do not match traj.logp"):
        importance.step_ratios(traj, TARGET, TARGET)
    with pytest.raises(ValueError, match="same shape"):
        importance.step_ratios(traj, TARGET, torch.zeros(3, 3))
    with pytest.raises(ValueError, match="target_logits must have shape"):
        importance.step_ratios(traj, torch.zeros(3), BEHAVIOUR)
    with pytest.raises(ValueError, match="NaN"):
        importance.trajectory_ratios(traj, TARGET.clone().fill_(float("nan")), BEHAVIOUR)
    with pytest.raises(ValueError, match="do not fit"):
        importance.step_ratios(traj, torch.zeros(2, 2), torch.zeros(2, 2))
    with pytest.raises(ValueError, match="traj must be"):
        importance.step_ratios(None, TARGET, BEHAVIOUR)


def test_effective_sample_size_is_the_stats_one():
    assert importance.effective_sample_size is stats.effective_sample_size
    assert math.isclose(importance.effective_sample_size(torch.tensor([1.0, 1.0, 2.0])), 16 / 6)


def test_kl_divergence():
    g = torch.Generator().manual_seed(4)
    p, q = torch.randn(5, 3, dtype=torch.float64, generator=g), torch.randn(5, 3, dtype=torch.float64, generator=g)
    per_state = importance.kl_divergence(None, p, q)
    want = [scipy.stats.entropy(torch.softmax(p[s], 0).numpy(), torch.softmax(q[s], 0).numpy()) for s in range(5)]
    np.testing.assert_allclose(per_state.numpy(), want, rtol=1e-12)
    assert (importance.kl_divergence(None, p, p).abs() < 1e-15).all()
    d = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.0], dtype=torch.float64)
    assert math.isclose(importance.kl_divergence(d, p, q).item(), float(np.dot(d.numpy(), want)), rel_tol=1e-12)
    m = mdp.random_mdp(5, 3, seed=0, gamma=0.9)
    occ = exact.occupancy(m, p).detach().numpy()
    assert math.isclose(importance.kl_divergence(m, p, q).item(), float(np.dot(occ, want)), rel_tol=1e-10)
    ex = importance.kl_divergence(None, torch.zeros(1, 2), torch.tensor([[0.0, math.log(3)]]))
    assert round(ex.item(), 4) == 0.1438
    # differentiable in the logits
    q_var = q.clone().requires_grad_(True)
    importance.kl_divergence(d, p, q_var).backward()
    assert q_var.grad is not None and torch.isfinite(q_var.grad).all()
    with pytest.raises(ValueError, match="probability distribution"):
        importance.kl_divergence(torch.ones(5), p, q)
    with pytest.raises(ValueError, match="states must be None"):
        importance.kl_divergence(torch.ones(4) / 4, p, q)
    with pytest.raises(ValueError, match="same shape"):
        importance.kl_divergence(None, p, q[:, :2])
