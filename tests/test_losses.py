"""pglib.losses against hand computations, plain loops and finite differences."""

import math

import numpy as np
import pytest
import scipy.stats
import torch

from pglib import losses
from reference import clipped_by_cases, softmax_score

FLOAT64_DEFAULT = True  # torch's default dtype is float64 while this module's tests run (tests/conftest.py)


def batch(seed=0, N=4, T=5, S=3, A=3):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(S, A, generator=g)
    old = logits + 0.7 * torch.randn(S, A, generator=g)
    states = torch.randint(S, (N, T), generator=g)
    actions = torch.randint(A, (N, T), generator=g)
    adv = torch.randn(N, T, generator=g)
    return logits, old, states, actions, adv


def logp_of(logits, states, actions):
    return torch.log_softmax(logits, -1)[states, actions]


def grad_of(fn, logits):
    th = logits.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(fn(th), th)
    return g


# ----------------------------------------------------------------------------- values by hand


def test_docstring_examples():
    assert torch.isclose(losses.surrogate_loss(torch.log(torch.tensor([[0.5, 0.25]])), torch.tensor([[1.0, 2.0]])),
                         torch.tensor(-(math.log(0.5) + 2 * math.log(0.25))))
    lp_old = torch.log(torch.tensor([0.5]))
    assert torch.isclose(losses.ratio_surrogate(torch.log(torch.tensor([0.75])), lp_old, torch.tensor([2.0])),
                         torch.tensor(-3.0))
    lp_old2 = torch.log(torch.tensor([0.5, 0.5]))
    v = losses.clipped_surrogate(torch.log(torch.tensor([0.75, 0.75])), lp_old2, torch.tensor([1.0, -1.0]), eps=0.2)
    assert torch.isclose(v, torch.tensor(0.3))
    m = losses.clip_mask(torch.tensor([1.5, 1.5, 0.5, 0.5]), torch.tensor([1.0, -1.0, 1.0, -1.0]), eps=0.2)
    assert m.tolist() == [True, False, False, True]
    kl = losses.categorical_kl(torch.log(torch.tensor([0.5, 0.5])), torch.log(torch.tensor([0.9, 0.1])))
    assert torch.isclose(kl, torch.tensor(0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1)))
    assert torch.isclose(losses.kl_penalty(torch.log(torch.tensor([0.25])), torch.log(torch.tensor([0.5]))),
                         torch.tensor(-0.5 + math.log(2.0)))


def test_reductions():
    logits, old, s, a, adv = batch()
    lp = logp_of(logits, s, a)
    terms = losses.surrogate_loss(lp, adv, reduction="none")
    assert torch.allclose(terms, -lp * adv)
    assert torch.isclose(losses.surrogate_loss(lp, adv), (-lp * adv).sum(1).mean())
    assert torch.isclose(losses.surrogate_loss(lp, adv, reduction="mean"), (-lp * adv).mean())
    # a single trajectory [T]: sum over time
    assert torch.isclose(losses.surrogate_loss(lp[0], adv[0]), (-lp[0] * adv[0]).sum())


def test_mask_zeroes_steps_even_with_infinite_padding():
    logits, old, s, a, adv = batch()
    lp, lpo = logp_of(logits, s, a), logp_of(old, s, a)
    mask = torch.ones_like(adv, dtype=torch.bool)
    mask[:, -2:] = False
    adv_pad = adv.clone()
    adv_pad[:, -2:] = math.inf  # padding may hold anything finite or not; it must not leak
    for fn in (lambda m: losses.ratio_surrogate(lp, lpo, adv_pad, mask=m),
               lambda m: losses.clipped_surrogate(lp, lpo, adv_pad, eps=0.2, mask=m)):
        v = fn(mask)
        assert torch.isfinite(v)
    full = losses.ratio_surrogate(lp[:, :-2], lpo[:, :-2], adv[:, :-2])
    assert torch.isclose(losses.ratio_surrogate(lp, lpo, adv_pad, mask=mask), full)


# ----------------------------------------------------------------------------- gradients against loops


def test_surrogate_gradient_is_reinforce_sum():
    logits, _, s, a, adv = batch(1)
    N, T = adv.shape
    g = grad_of(lambda th: losses.surrogate_loss(logp_of(th, s, a), adv), logits)
    pi = torch.softmax(logits, -1)
    expect = torch.zeros_like(logits)
    for n in range(N):
        for t in range(T):
            expect -= adv[n, t] * softmax_score(pi, s[n, t], a[n, t]) / N
    assert torch.allclose(g, expect, atol=1e-12)


def test_ratio_surrogate_gradient_is_importance_weighted_sum():
    logits, old, s, a, adv = batch(2)
    N, T = adv.shape
    lpo = logp_of(old, s, a)
    g = grad_of(lambda th: losses.ratio_surrogate(logp_of(th, s, a), lpo, adv), logits)
    pi, mu = torch.softmax(logits, -1), torch.softmax(old, -1)
    expect = torch.zeros_like(logits)
    for n in range(N):
        for t in range(T):
            rho = pi[s[n, t], a[n, t]] / mu[s[n, t], a[n, t]]
            expect -= rho * adv[n, t] * softmax_score(pi, s[n, t], a[n, t]) / N
    assert torch.allclose(g, expect, atol=1e-12)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("eps", [0.1, 0.2, 0.5])
def test_clipped_value_and_gradient(seed, eps):
    logits, old, s, a, adv = batch(seed, N=6, T=4)
    N, T = adv.shape
    lpo = logp_of(old, s, a)
    pi, mu = torch.softmax(logits, -1), torch.softmax(old, -1)
    rho = pi[s, a] / mu[s, a]
    by_cases = sum(clipped_by_cases(rho[n, t].item(), adv[n, t].item(), eps) for n in range(N) for t in range(T))
    assert math.isclose(losses.clipped_surrogate(logp_of(logits, s, a), lpo, adv, eps=eps).item(), -by_cases / N,
                        rel_tol=1e-12)
    # gradient: the ratio term's gradient, except where clip_mask says it vanishes
    zero = losses.clip_mask(rho, adv, eps)
    g = grad_of(lambda th: losses.clipped_surrogate(logp_of(th, s, a), lpo, adv, eps=eps), logits)
    expect = torch.zeros_like(logits)
    for n in range(N):
        for t in range(T):
            if not zero[n, t]:
                expect -= rho[n, t] * adv[n, t] * softmax_score(pi, s[n, t], a[n, t]) / N
    assert torch.allclose(g, expect, atol=1e-12)


def test_clip_mask_against_finite_differences():
    """A step's gradient is zero exactly where the mask says so (checked one step at a time)."""
    eps, h = 0.2, 1e-6
    for rho in [0.5, 0.79, 0.81, 1.0, 1.19, 1.21, 2.0]:
        for adv in [-1.0, 1.0]:
            f = lambda lr: clipped_by_cases(math.exp(lr), adv, eps)  # noqa: E731
            d = (f(math.log(rho) + h) - f(math.log(rho) - h)) / (2 * h)
            masked = bool(losses.clip_mask(torch.tensor([rho]), torch.tensor([adv]), eps)[0])
            assert (abs(d) < 1e-9) == masked, (rho, adv, d)


def test_equal_policies_make_all_surrogates_agree_in_gradient():
    logits, _, s, a, adv = batch(3)
    lpo = logp_of(logits, s, a)
    g0 = grad_of(lambda th: losses.surrogate_loss(logp_of(th, s, a), adv), logits)
    g1 = grad_of(lambda th: losses.ratio_surrogate(logp_of(th, s, a), lpo, adv), logits)
    g2 = grad_of(lambda th: losses.clipped_surrogate(logp_of(th, s, a), lpo, adv, eps=0.2), logits)
    assert torch.allclose(g0, g1, atol=1e-12) and torch.allclose(g0, g2, atol=1e-12)


# ----------------------------------------------------------------------------- KL


@pytest.mark.parametrize("seed", range(4))
def test_categorical_kl_matches_scipy(seed):
    rng = np.random.default_rng(seed)
    lp, lq = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    p = np.exp(lp) / np.exp(lp).sum(-1, keepdims=True)
    q = np.exp(lq) / np.exp(lq).sum(-1, keepdims=True)
    expect = np.array([scipy.stats.entropy(p[i], q[i]) for i in range(3)])
    got = losses.categorical_kl(torch.from_numpy(lp), torch.from_numpy(lq)).numpy()
    assert np.allclose(got, expect, atol=1e-12)


@pytest.mark.parametrize("estimator", ["k1", "k3"])
def test_kl_penalty_is_unbiased_in_value_and_gradient(estimator):
    """Average the per-action penalty over a ~ pi_old exactly (all actions): KL and its gradient."""
    g = torch.Generator().manual_seed(5)
    new, old = torch.randn(1, 4, generator=g), torch.randn(1, 4, generator=g)
    mu = torch.softmax(old, -1)[0]
    actions = torch.arange(4)

    def expected_penalty(th):
        terms = losses.kl_penalty(logp_of(th, torch.zeros(4, dtype=torch.long), actions),
                                  logp_of(old, torch.zeros(4, dtype=torch.long), actions),
                                  estimator=estimator, reduction="none")
        return (mu * terms).sum()

    kl = losses.categorical_kl(old, new)[0]
    assert torch.isclose(expected_penalty(new), kl, atol=1e-12)
    assert torch.allclose(grad_of(expected_penalty, new), grad_of(lambda th: losses.categorical_kl(old, th)[0], new),
                          atol=1e-12)


def test_k3_is_non_negative():
    logits, old, s, a, _ = batch(4)
    terms = losses.kl_penalty(logp_of(logits, s, a), logp_of(old, s, a), reduction="none")
    assert (terms >= 0).all()


# ----------------------------------------------------------------------------- bad input


def test_bad_inputs_raise_value_errors_naming_the_argument():
    lp = torch.log(torch.full((2, 3), 0.5))
    adv = torch.ones(2, 3)
    with pytest.raises(ValueError, match="advantages"):
        losses.surrogate_loss(lp, torch.ones(2, 2))
    with pytest.raises(ValueError, match="reduction"):
        losses.surrogate_loss(lp, adv, reduction="sum")
    with pytest.raises(ValueError, match="logp"):
        losses.surrogate_loss(-lp, adv)
    with pytest.raises(ValueError, match="eps"):
        losses.clipped_surrogate(lp, lp, adv, eps=1.5)
    with pytest.raises(ValueError, match="eps"):
        losses.clip_mask(torch.ones(3), torch.ones(3), eps=0.0)
    with pytest.raises(ValueError, match="mask"):
        losses.ratio_surrogate(lp, lp, adv, mask=torch.ones(2, 3))
    with pytest.raises(ValueError, match="logp_old"):
        losses.ratio_surrogate(lp, lp[:, :2], adv)
    with pytest.raises(ValueError, match="advantages"):
        losses.surrogate_loss(lp, torch.full((2, 3), math.nan))
    with pytest.raises(ValueError, match="estimator"):
        losses.kl_penalty(lp, lp, estimator="k2")
    with pytest.raises(ValueError, match="logp"):
        losses.surrogate_loss(torch.tensor(-1.0), torch.tensor(1.0))
    with pytest.raises(ValueError, match="logits_q"):
        losses.categorical_kl(torch.zeros(2, 3), torch.zeros(2, 4))


# ----------------------------------------------------------------------------- entropy bonus


def test_entropy_bonus_is_minus_the_entropy_with_the_closed_form_gradient():
    # dH/dlogits of a softmax is -p * (log p + H), written out by hand (not autograd's).
    logits = torch.tensor([[0.3, -1.2, 0.5], [2.0, 0.0, -0.4]], dtype=torch.float64, requires_grad=True)
    H = torch.distributions.Categorical(logits=logits).entropy()  # [2]: one "trajectory" of 2 steps
    bonus = losses.entropy_bonus(H)
    p = torch.softmax(logits.detach(), -1)
    h = -(p * p.log()).sum(-1)
    assert torch.allclose(bonus, -h.sum())
    (grad,) = torch.autograd.grad(bonus, logits)
    assert torch.allclose(grad, p * (p.log() + h[:, None]), atol=1e-12)
    assert torch.allclose(losses.entropy_bonus(H[None], reduction="mean"), -h.mean())
    masked = losses.entropy_bonus(H[None], mask=torch.tensor([[True, False]]))
    assert torch.allclose(masked, -h[0])
    with pytest.raises(ValueError, match="entropy"):
        losses.entropy_bonus(torch.tensor([math.nan]))


def test_density_flag_admits_positive_log_densities():
    lp_old = torch.tensor([1.5, 0.7], dtype=torch.float64)  # a narrow Gaussian's log-densities
    lp_new = torch.tensor([1.6, 0.2], dtype=torch.float64)
    adv = torch.tensor([1.0, -1.0], dtype=torch.float64)
    with pytest.raises(ValueError, match="logp_new"):
        losses.clipped_surrogate(lp_new, lp_old, adv)
    rho = (lp_new - lp_old).exp()
    expected = -(torch.minimum(rho * adv, rho.clamp(0.8, 1.2) * adv)).mean()
    got = losses.clipped_surrogate(lp_new, lp_old, adv, reduction="mean", density=True)
    assert torch.allclose(got, expected)
    kl = losses.kl_penalty(lp_new, lp_old, reduction="mean", density=True)
    assert torch.allclose(kl, ((rho - 1) - (lp_new - lp_old)).mean())
