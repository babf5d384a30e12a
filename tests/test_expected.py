"""Neural-policy scores (pglib.scorefn) against per-sample backward passes and closed forms;
the exact expected surrogate (pglib.expected) against enumeration of every trajectory."""

import pytest
import torch

from pglib import expected, losses, mdp, scorefn
from pglib.enumeration import all_trajectories
from pglib.practice.policies import CategoricalMLP, GaussianMLP


@pytest.mark.parametrize("kind", ["categorical", "gaussian"])
def test_per_sample_scores_match_a_loop_of_backward_passes(kind):
    torch.manual_seed(0)
    pol = (CategoricalMLP(3, 4, hidden=(6,)) if kind == "categorical" else GaussianMLP(3, 2, hidden=(6,))).double()
    obs = torch.randn(7, 3, dtype=torch.float64)
    a = scorefn.policy_distribution(pol, obs).sample()
    scores = scorefn.per_sample_scores(pol, obs, a)
    for i in range(7):
        pol.zero_grad()
        scorefn.policy_distribution(pol, obs[i:i + 1]).log_prob(a[i:i + 1]).sum().backward()
        for name, p in pol.named_parameters():
            torch.testing.assert_close(scores[name][i], p.grad, rtol=0, atol=1e-13)


def test_output_layer_scores_have_the_closed_forms():
    torch.manual_seed(1)
    cat = CategoricalMLP(2, 3, hidden=(5,)).double()
    obs = torch.randn(9, 2, dtype=torch.float64)
    a = scorefn.policy_distribution(cat, obs).sample()
    s = scorefn.per_sample_scores(cat, obs, a)
    h = torch.tanh(obs @ cat.net[0].weight.T + cat.net[0].bias)
    dz = scorefn.categorical_score(scorefn.policy_distribution(cat, obs).logits, a)  # e_a - softmax
    torch.testing.assert_close(s["net.2.bias"], dz, rtol=0, atol=1e-13)
    torch.testing.assert_close(s["net.2.weight"], dz[:, :, None] * h[:, None, :], rtol=0, atol=1e-13)
    gau = GaussianMLP(2, 1, hidden=(), bias=False, log_std=-0.3).double()
    d = scorefn.policy_distribution(gau, obs)
    x = d.sample()
    sg = scorefn.per_sample_scores(gau, obs, x)
    closed = scorefn.gaussian_score(d.mean, gau.log_std.detach(), x)  # [..., 1, 2]: (mean, log_std)
    torch.testing.assert_close(sg["net.0.weight"], closed[:, :, 0:1] * obs[:, None, :], rtol=0, atol=1e-13)
    torch.testing.assert_close(sg["log_std"], closed[:, :, 1], rtol=0, atol=1e-13)


def test_score_function_gradient_is_the_weighted_mean():
    torch.manual_seed(2)
    pol = CategoricalMLP(2, 2, hidden=(3,)).double()
    obs = torch.randn(4, 2, dtype=torch.float64)
    a = torch.tensor([0, 1, 1, 0])
    w = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64)
    g = scorefn.score_function_gradient(pol, obs, a, w, n=2)
    s = scorefn.per_sample_scores(pol, obs, a)
    for name in s:
        torch.testing.assert_close(g[name], sum(w[i] * s[name][i] for i in range(4)) / 2)
    with pytest.raises(ValueError, match="weights"):
        scorefn.score_function_gradient(pol, obs, a, w[:3])
    with pytest.raises(ValueError, match="require grad"):
        scorefn.per_sample_scores(pol, obs, torch.zeros(4, requires_grad=True))


@pytest.mark.parametrize("gamma", [1.0, 0.8])
def test_expected_surrogate_matches_enumeration(gamma):
    m = mdp.random_mdp(3, 2, seed=4, gamma=gamma, horizon=4)
    logits = torch.randn(3, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    e = all_trajectories(m, logits)
    by_enum = e.expectation(losses.surrogate_values(e.trajectories, logits, gamma))
    torch.testing.assert_close(expected.surrogate(m, logits), by_enum, rtol=0, atol=1e-12)


def test_expected_surrogate_with_terminal_states():
    m = mdp.short_corridor(horizon=5)
    logits = torch.tensor([[0.3, -0.1]], dtype=torch.float64).expand(4, 2)
    e = all_trajectories(m, logits)
    torch.testing.assert_close(expected.surrogate(m, logits),
                               e.expectation(losses.surrogate_values(e.trajectories, logits, 1.0)),
                               rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="finite horizon"):
        expected.surrogate(mdp.two_state(), logits[:2])
