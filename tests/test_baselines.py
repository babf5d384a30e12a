"""pglib.baselines against independent computations: loops, numpy least squares, a parabola fit."""

import numpy as np
import pytest
import torch

from pglib import baselines

rng = np.random.default_rng(0)


@pytest.mark.parametrize("shape", [(50, 3), (40, 2, 3), (7, 1)])
def test_optimal_constant_minimizes_sampled_total_variance(shape):
    X = torch.from_numpy(rng.normal(size=shape) + 1.0)
    g = torch.from_numpy(rng.normal(size=shape))
    b = baselines.optimal_constant_baseline(X, g).item()
    # independent: the exact minimizer of the plug-in second moment, by fitting a parabola in b
    bs = np.array([-1.0, 0.0, 2.0])
    m2 = [float(((X - bb * g) ** 2).sum() / shape[0]) for bb in bs]
    a2, a1, _ = np.polyfit(bs, m2, 2)
    assert b == pytest.approx(-a1 / (2 * a2), rel=1e-10)


def test_optimal_constant_weights_are_probabilities():
    X = torch.from_numpy(rng.normal(size=(6, 4)))
    g = torch.from_numpy(rng.normal(size=(6, 4)))
    p = torch.from_numpy(rng.dirichlet(np.ones(6)))
    num = sum(p[i] * float(X[i] @ g[i]) for i in range(6))
    den = sum(p[i] * float(g[i] @ g[i]) for i in range(6))
    assert baselines.optimal_constant_baseline(X, g, sample_weights=p).item() == pytest.approx(float(num / den), rel=1e-12)


def test_optimal_constant_total_return_form():
    # X = g R: b* = E[|g|^2 R] / E[|g|^2]
    g = torch.from_numpy(rng.normal(size=(30, 2, 2)))
    R = torch.from_numpy(rng.uniform(size=30))
    n2 = (g**2).sum((1, 2))
    want = float((n2 * R).sum() / n2.sum())
    assert baselines.optimal_constant_baseline(g * R[:, None, None], g).item() == pytest.approx(want, rel=1e-12)


def test_optimal_constant_bad_input():
    with pytest.raises(ValueError, match="same shape"):
        baselines.optimal_constant_baseline(torch.zeros(3, 2), torch.zeros(3, 3))
    with pytest.raises(ValueError, match="sample_weights"):
        baselines.optimal_constant_baseline(torch.zeros(3, 2), torch.ones(3, 2), sample_weights=torch.ones(2))
    with pytest.raises(ValueError, match="undefined"):
        baselines.optimal_constant_baseline(torch.zeros(3, 2), torch.zeros(3, 2))


def test_leave_one_out_mean_by_loop():
    v = torch.from_numpy(rng.normal(size=(5, 3)))
    got = baselines.leave_one_out_mean(v)
    for i in range(5):
        others = [v[j] for j in range(5) if j != i]
        assert torch.allclose(got[i], sum(others) / 4)
    got1 = baselines.leave_one_out_mean(v, dim=1)
    assert torch.allclose(got1[:, 0], (v[:, 1] + v[:, 2]) / 2)
    assert baselines.leave_one_out_mean([1.0, 2.0, 6.0]).tolist() == [4.0, 3.5, 1.5]
    with pytest.raises(ValueError, match="at least 2"):
        baselines.leave_one_out_mean(torch.ones(1, 3))


@pytest.mark.parametrize("time_indexed", [True, False])
def test_fit_tabular_values_is_least_squares(time_indexed):
    N, T, S = 40, 4, 3
    states = torch.from_numpy(rng.integers(0, S, size=(N, T)))
    targets = torch.from_numpy(rng.normal(size=(N, T)))
    mask = torch.from_numpy(rng.uniform(size=(N, T)) < 0.8)
    V = baselines.fit_tabular_values(states, targets, S, mask=mask, time_indexed=time_indexed)
    # independent: numpy least squares on one-hot features of the observed cells
    rows, y = [], []
    n_cells = T * S if time_indexed else S
    for i in range(N):
        for t in range(T):
            if mask[i, t]:
                x = np.zeros(n_cells)
                x[t * S + int(states[i, t]) if time_indexed else int(states[i, t])] = 1.0
                rows.append(x)
                y.append(float(targets[i, t]))
    sol, *_ = np.linalg.lstsq(np.array(rows), np.array(y), rcond=None)
    visited = np.array(rows).sum(0) > 0
    assert np.allclose(V.reshape(-1).numpy()[visited], sol[visited])
    assert np.allclose(V.reshape(-1).numpy()[~visited], np.mean(y))


def test_fit_tabular_values_example_and_errors():
    V = baselines.fit_tabular_values(torch.tensor([[0, 1], [0, 0]]), [[3.0, 1.0], [5.0, 2.0]], 2, time_indexed=False)
    assert torch.allclose(V, torch.tensor([10 / 3, 1.0], dtype=torch.float64))
    with pytest.raises(ValueError, match="states must lie"):
        baselines.fit_tabular_values(torch.tensor([[0, 3]]), [[1.0, 1.0]], 2)
    with pytest.raises(ValueError, match="targets"):
        baselines.fit_tabular_values(torch.tensor([[0, 1]]), [[1.0]], 2)


def test_values_at_by_loop():
    N, T, S = 6, 3, 4
    V = torch.from_numpy(rng.normal(size=(T, S)))
    states = torch.from_numpy(rng.integers(0, S, size=(N, T)))
    mask = torch.from_numpy(rng.uniform(size=(N, T)) < 0.7)
    got = baselines.values_at(V, states, mask)
    for i in range(N):
        for t in range(T):
            assert got[i, t] == (V[t, states[i, t]] if mask[i, t] else 0.0)
    assert torch.equal(baselines.values_at(V[0], states), V[0][states])
    with pytest.raises(ValueError, match="values must"):
        baselines.values_at(torch.zeros(2, 2, 2), states)


@pytest.mark.parametrize("per_episode", [False, True])
def test_standardize_by_loop(per_episode):
    N, T = 5, 6
    A = torch.from_numpy(rng.normal(size=(N, T)) * 3 + 1)
    mask = torch.from_numpy(rng.uniform(size=(N, T)) < 0.8)
    mask[:, 0] = True
    mask[:, 1] = True
    got = baselines.standardize(A, mask, per_episode=per_episode, eps=0.0)
    if per_episode:
        for i in range(N):
            vals = np.array([float(A[i, t]) for t in range(T) if mask[i, t]])
            for t in range(T):
                want = (float(A[i, t]) - vals.mean()) / vals.std() if mask[i, t] else 0.0
                assert float(got[i, t]) == pytest.approx(want, abs=1e-12)
    else:
        vals = np.array([float(A[i, t]) for i in range(N) for t in range(T) if mask[i, t]])
        want = np.where(mask.numpy(), (A.numpy() - vals.mean()) / vals.std(), 0.0)
        assert np.allclose(got.numpy(), want)
    with pytest.raises(ValueError, match="advantages"):
        baselines.standardize(torch.zeros(3))


def test_optimal_linear_baseline_matches_lstsq_and_constant():
    N, C, P = 60, 3, 4
    X = torch.from_numpy(rng.normal(size=(N, P)) + 2)
    F = torch.from_numpy(rng.normal(size=(N, C, P)))
    p = torch.from_numpy(rng.dirichlet(np.ones(N)))
    beta = baselines.optimal_linear_baseline(X, F, sample_weights=p)
    # independent: weighted least squares of the stacked coordinates, by numpy
    sw = np.sqrt(p.numpy())[:, None]
    A = (F.numpy().transpose(0, 2, 1) * sw[:, :, None]).reshape(N * P, C)
    y = (X.numpy() * sw).reshape(N * P)
    want, *_ = np.linalg.lstsq(A, y, rcond=None)
    assert np.allclose(beta.numpy(), want)
    one = baselines.optimal_linear_baseline(X, F[:, :1], sample_weights=p)
    assert one.item() == pytest.approx(baselines.optimal_constant_baseline(X, F[:, 0], sample_weights=p).item(), rel=1e-10)
    with pytest.raises(ValueError, match="features"):
        baselines.optimal_linear_baseline(X, F[:, :, :2])


def test_time_state_features_sum_to_score_sum():
    from pglib import estimators, mdp, sampling

    m = mdp.random_mdp(3, 2, seed=0, gamma=1.0, horizon=4)
    logits = torch.from_numpy(rng.normal(size=(3, 2)))
    traj = sampling.sample_trajectories(m, logits, 50, seed=0)
    F = baselines.time_state_features(traj, logits)
    table = torch.from_numpy(rng.normal(size=(4, 3)))
    # subtracting the table from G_t changes the estimate by -sum_c table_c phi_c
    with_b = estimators.reinforce(traj, logits, 1.0, baseline=table)
    without = estimators.reinforce(traj, logits, 1.0)
    assert torch.allclose(without - with_b, torch.einsum("c,ncsa->nsa", table.reshape(-1), F))
