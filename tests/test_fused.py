"""pglib.fused (numba) against an independent plain-Python loop and against pglib.exact.

- Same uniforms in, same estimates out: a loop written here from the sampling semantics (inverse CDF
  by plain cumulative sums, terminal states absorbing and masked, reward to go backward) over the
  very uniforms the kernel consumes, to 1e-12; and the torch path (sampling + estimators.reinforce)
  on torch's own uniforms, to rounding.
- Monte Carlo means tested with pglib.stats.unbiasedness_test against pglib.exact.gradient, with a
  negative control that must be rejected.
"""

import math

import numpy as np
import pytest
import torch

numba = pytest.importorskip("numba")

from pglib import estimators, exact, fused, mdp, sampling, stats  # noqa: E402

ALPHA = 1e-3


def plain_loop(m, logits, U, gamma):
    """Per-trajectory reward-to-go estimates from uniforms U [N, 2T], one trajectory and one step at a time."""
    S, A = m.n_states, m.n_actions
    P, R, mu0 = m.transitions.tolist(), m.rewards.tolist(), m.initial.tolist()
    term = m.terminal.tolist()
    pi = torch.softmax(torch.as_tensor(logits, dtype=torch.float64), -1).tolist()
    T = U.shape[1] // 2

    def pick(p, u):  # smallest k with F(k) > u; never an index of probability zero
        c = 0.0
        last = max(k for k in range(len(p)) if p[k] > 0)
        for k in range(last):
            c += p[k]
            if c > u:
                return k
        return last

    out = np.zeros((U.shape[0], S, A))
    for n in range(U.shape[0]):
        u = U[n].tolist()
        s = pick(mu0, u[0])
        steps = []
        for t in range(T):
            if term[s]:
                break
            a = pick(pi[s], u[2 * t + 1])
            steps.append((s, a, R[s][a]))
            if t + 1 < T:
                s = pick(P[s][a], u[2 * t + 2])
        G = 0.0
        for t in range(len(steps) - 1, -1, -1):
            s, a, r = steps[t]
            G = r + gamma * G
            for b in range(A):
                out[n, s, b] += gamma**t * G * ((b == a) - pi[s][b])
    return out


def problems():
    g = torch.Generator().manual_seed(1)
    rnd = mdp.random_mdp(5, 3, seed=2, gamma=0.9, horizon=12)
    corridor = mdp.short_corridor(horizon=15)
    return [
        (rnd, torch.randn(5, 3, dtype=torch.float64, generator=g), 0.9),
        (rnd.with_(gamma=1.0), torch.randn(5, 3, dtype=torch.float64, generator=g), 1.0),
        (corridor, torch.tensor([0.3, -0.2], dtype=torch.float64).expand(4, 2), 1.0),
        (mdp.chain(4, gamma=0.8, horizon=None), torch.zeros(4, 2, dtype=torch.float64), 0.8),  # truncated, T = 7
    ]


@pytest.mark.parametrize("case", range(4))
def test_same_uniforms_match_plain_loop(case):
    m, logits, gamma = problems()[case]
    T = m.horizon or 7
    U = np.random.default_rng(case).random((300, 2 * T))
    got = fused.estimates_from_uniforms(m, logits, U, horizon=T, gamma=gamma)
    want = plain_loop(m, logits, U, gamma)
    assert got.shape == (300, m.n_states, m.n_actions) and got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    if m.terminal.any():  # the corridor: some trajectories end early, some never start a late step
        assert np.abs(got).sum() > 0


@pytest.mark.parametrize("case", [0, 2])
def test_same_uniforms_match_torch_path(case):
    m, logits, gamma = problems()[case]
    n, T = 500, m.horizon
    u = torch.rand(2 * T, n, generator=torch.Generator().manual_seed(7), dtype=torch.float64)  # the sampler's draws
    want = estimators.reinforce(sampling.sample_trajectories(m, logits, n, seed=7), logits, gamma).numpy()
    got = fused.estimates_from_uniforms(m, logits, u.T.numpy().copy(), gamma=gamma)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_seed_chunking_and_moments_agree():
    m, logits, _ = problems()[0]
    a = fused.reinforce_estimates(m, logits, 5000, seed=3)
    b = fused.reinforce_estimates(m, logits, 5000, seed=3, chunk_size=777)
    np.testing.assert_array_equal(a, b)  # the stream does not depend on the chunk size
    U = np.random.default_rng(3).random((5000, 2 * m.horizon))
    np.testing.assert_array_equal(a, fused.estimates_from_uniforms(m, logits, U))
    mo = fused.reinforce_moments(m, logits, 5000, seed=3, chunk_size=613)
    assert mo.n == 5000
    np.testing.assert_allclose(mo.mean, a.mean(0), rtol=0, atol=1e-12)
    np.testing.assert_allclose(mo.var, a.var(0, ddof=1), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(mo.stderr, np.sqrt(a.var(0, ddof=1) / 5000), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("case", [0, 1, 2])
def test_mean_is_unbiased_for_exact_gradient(case):
    m, logits, gamma = problems()[case]
    est = fused.reinforce_estimates(m, logits, 200_000, seed=10 + case)
    grad = exact.gradient(m, logits)
    res = stats.unbiasedness_test(torch.from_numpy(est), grad, alpha=ALPHA)
    assert not res.reject, res
    # negative control: estimates at other logits are estimates of another gradient
    other = fused.reinforce_estimates(m, logits + torch.tensor([1.0] + [0.0] * (m.n_actions - 1)), 200_000, seed=20)
    assert stats.unbiasedness_test(torch.from_numpy(other), grad, alpha=ALPHA).reject


def test_bad_inputs_name_the_argument():
    m, logits, _ = problems()[0]
    cases = [
        (dict(mdp="not an mdp"), "mdp"),
        (dict(logits=torch.zeros(4, 3)), "logits"),
        (dict(logits=torch.full((5, 3), math.nan)), "logits"),
        (dict(n=0), "n"),
        (dict(n=2.5), "n"),
        (dict(seed=-1), "seed"),
        (dict(seed="x"), "seed"),
        (dict(gamma=1.5), "gamma"),
        (dict(horizon=0), "horizon"),
        (dict(chunk_size=0), "chunk_size"),
    ]
    for fn in (fused.reinforce_estimates, fused.reinforce_moments):
        for change, name in cases:
            kw = dict(mdp=m, logits=logits, n=10, seed=0) | change
            with pytest.raises(ValueError, match=name):
                fn(**kw)
    with pytest.raises(ValueError, match="horizon"):  # infinite horizon needs a truncation length
        fused.reinforce_estimates(m.with_(horizon=None), logits, 10, seed=0)
    for U in (np.zeros((3, 5)), np.full((3, 24), 1.0), np.full((3, 24), np.nan), np.zeros((3, 24), np.float32)):
        with pytest.raises(ValueError, match="uniforms"):
            fused.estimates_from_uniforms(m, logits, U)
