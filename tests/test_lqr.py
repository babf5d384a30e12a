"""pglib.practice.lqr: the exact objective against Monte Carlo, its gradient against finite differences,
and the REINFORCE estimator against the exact gradient."""

import numpy as np
import pytest
import torch

from pglib.practice import lqr

K0 = torch.tensor([[-0.5, -0.8]], dtype=torch.float64)


@pytest.mark.parametrize("noise", [0.0, 0.3])
def test_exact_gradient_matches_finite_differences(noise):
    p = lqr.double_integrator(horizon=8, noise=noise)
    grad = lqr.exact_gradient(p, K0, 0.5)
    h = 1e-6
    fd = torch.zeros_like(K0)
    for i in range(K0.shape[0]):
        for j in range(K0.shape[1]):
            e = torch.zeros_like(K0)
            e[i, j] = h
            fd[i, j] = (lqr.objective(p, K0 + e, 0.5) - lqr.objective(p, K0 - e, 0.5)) / (2 * h)
    torch.testing.assert_close(grad, fd, rtol=1e-6, atol=1e-8)


def test_objective_matches_monte_carlo_and_one_step_formula():
    p = lqr.double_integrator(horizon=6, noise=0.2)
    traj = lqr.sample(p, K0, 0.5, 200_000, 0)
    returns = traj["rewards"].sum(-1)
    exact = float(lqr.objective(p, K0, 0.5))
    assert abs(float(returns.mean()) - exact) < 4 * float(returns.std()) / np.sqrt(len(returns))
    # horizon 1: -E[x'Qx + u'Ru] = -(tr Q + tr(K'RK) + sigma^2 tr R) for x ~ N(0, I)
    p1 = lqr.double_integrator(horizon=1)
    want = -(2.0 + float((K0.T @ p1.R @ K0).trace()) + 0.25 * float(p1.R.trace()))
    assert abs(float(lqr.objective(p1, K0, 0.5)) - want) < 1e-12


def test_sample_shapes_and_score_identity():
    p = lqr.double_integrator(horizon=4)
    traj = lqr.sample(p, K0, 0.3, 5, torch.Generator().manual_seed(1))
    assert traj["states"].shape == (5, 4, 2) and traj["actions"].shape == (5, 4, 1) and traj["rewards"].shape == (5, 4)
    torch.testing.assert_close(traj["actions"], traj["states"] @ K0.T + 0.3 * traj["noises"])


@pytest.mark.parametrize("credit", ["return", "reward_to_go"])
def test_reinforce_estimates_are_unbiased(credit):
    p = lqr.double_integrator(horizon=6)
    g = lqr.reinforce_gradients(p, K0, 0.5, 40_000, 3, credit)
    assert g.shape == (40_000, 1, 2)
    z = (g.mean(0) - lqr.exact_gradient(p, K0, 0.5)) / (g.std(0) / np.sqrt(len(g)))
    assert z.abs().max() < 4.0, z


def test_dropping_the_immediate_reward_is_detectably_biased():
    p = lqr.double_integrator(horizon=6)
    g = lqr.reinforce_gradients(p, K0, 0.5, 40_000, 3, "next_reward_to_go")
    z = (g.mean(0) - lqr.exact_gradient(p, K0, 0.5)) / (g.std(0) / np.sqrt(len(g)))
    assert z.abs().max() > 6.0, z


def test_bad_inputs():
    p = lqr.double_integrator()
    with pytest.raises(ValueError, match="K"):
        lqr.objective(p, torch.zeros(2, 2), 0.5)
    with pytest.raises(ValueError, match="sigma"):
        lqr.objective(p, K0, 0.0)
    with pytest.raises(ValueError, match="credit"):
        lqr.reinforce_gradients(p, K0, 0.5, 10, 0, "full")
    with pytest.raises(ValueError, match="A"):
        lqr.LQR(A=torch.eye(3), B=torch.ones(2, 1), Q=torch.eye(2), R=torch.eye(1), initial_cov=torch.eye(2), horizon=3)
    with pytest.raises(ValueError, match="horizon"):
        lqr.double_integrator(horizon=0)
