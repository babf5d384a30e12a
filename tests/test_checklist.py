"""pglib.verify.checklist: each check passes on a correct batch and raises ValueError naming the mistake."""

import math

import pytest
import torch

from pglib.verify import checklist
from pglib.losses import surrogate_loss
from pglib.practice.policies import CategoricalMLP, GaussianMLP


def test_on_policy_passes_and_catches_stale_batch():
    torch.manual_seed(0)
    pol = CategoricalMLP(3, 2, hidden=(8,))
    obs = torch.randn(20, 3)
    dist = pol(obs)
    a = dist.sample()
    stored = dist.log_prob(a).detach()
    assert "OK [on_policy]" in str(checklist.check_on_policy(stored, pol(obs).log_prob(a)))
    with torch.no_grad():
        pol.net[-1].weight[0].add_(1.0)  # an update: the batch is now stale
    with pytest.raises(ValueError, match="off-policy batch"):
        checklist.check_on_policy(stored, pol(obs).log_prob(a))


def test_on_policy_ignores_masked_steps_and_checks_shapes():
    old = torch.tensor([[-0.5, -1.0], [-0.2, -9.0]])
    new = torch.tensor([[-0.5, -1.0], [-0.2, -0.1]])
    mask = torch.tensor([[True, True], [True, False]])
    checklist.check_on_policy(old, new, mask=mask)
    with pytest.raises(ValueError, match="off-policy"):
        checklist.check_on_policy(old, new)
    with pytest.raises(ValueError, match="shape"):
        checklist.check_on_policy(old, new[:, :1])


def test_detached_weights():
    v = torch.nn.Linear(2, 1)
    obs, G = torch.randn(5, 2), torch.randn(5)
    adv = G - v(obs).squeeze(-1)
    with pytest.raises(ValueError, match="carry a gradient"):
        checklist.check_detached(adv)
    assert "requires_grad=False" in str(checklist.check_detached(adv.detach()))
    # connected to the value net only: the policy's gradient is unaffected
    pol = torch.nn.Linear(2, 2)
    assert "connected to none" in str(checklist.check_detached(adv, params=list(pol.parameters())))
    with pytest.raises(ValueError, match="connected to 2 of the 2"):
        checklist.check_detached(adv, params=list(v.parameters()))


def test_actions_detached_catches_rsample():
    pol = GaussianMLP(3, 1, hidden=(4,))
    dist = pol(torch.randn(6, 3))
    checklist.check_actions_detached(dist.sample())
    with pytest.raises(ValueError, match="rsample"):
        checklist.check_actions_detached(dist.rsample())


def test_reward_to_go_against_hand_values():
    r = torch.tensor([[1.0, 2.0, 3.0], [1.0, 1.0, 0.0]])
    mask = torch.tensor([[True, True, True], [True, True, False]])
    rtg = torch.tensor([[6.0, 5.0, 3.0], [2.0, 1.0, 0.0]])  # by hand, gamma = 1
    checklist.check_reward_to_go(rtg, r, 1.0, mask=mask)
    rtg_half = torch.tensor([[1 + 0.5 * 2 + 0.25 * 3, 2 + 0.5 * 3, 3.0], [1.5, 1.0, 0.0]])
    checklist.check_reward_to_go(rtg_half, r, 0.5, mask=mask)
    checklist.check_reward_to_go(rtg - 1.0, r, 1.0, mask=mask, baseline=torch.ones(2, 3))
    with pytest.raises(ValueError, match="total return"):
        checklist.check_reward_to_go(torch.tensor([[6.0, 6.0, 6.0], [2.0, 2.0, 0.0]]), r, 1.0, mask=mask)
    with pytest.raises(ValueError, match="forward cumulative sum"):
        checklist.check_reward_to_go(torch.tensor([[1.0, 3.0, 6.0], [1.0, 2.0, 0.0]]), r, 1.0, mask=mask)
    with pytest.raises(ValueError, match="episode 0, step 1"):
        checklist.check_reward_to_go(torch.tensor([[6.0, 4.0, 3.0], [2.0, 1.0, 0.0]]), r, 1.0, mask=mask)
    with pytest.raises(ValueError, match="gamma"):
        checklist.check_reward_to_go(rtg, r, 1.5)


def test_normalized():
    x = torch.tensor([3.0, 1.0, 4.0, 1.0, 5.0, 9.0])
    z_pop = (x - x.mean()) / x.std(correction=0)
    z_sample = (x - x.mean()) / x.std()
    checklist.check_normalized(z_pop)
    checklist.check_normalized(z_sample)
    with pytest.raises(ValueError, match="not normalized"):
        checklist.check_normalized(x)
    with pytest.raises(ValueError, match="not normalized"):
        checklist.check_normalized(x - x.mean())  # centred, not scaled


def test_stochastic_gaussian_and_categorical():
    checklist.check_stochastic(torch.distributions.Normal(torch.zeros(3), 0.5))
    pol = GaussianMLP(2, 1, hidden=(), log_std=math.log(0.2))
    assert "0.2" in str(checklist.check_stochastic(pol))
    with torch.no_grad():
        pol.log_std.fill_(-math.inf)
    with pytest.raises(ValueError, match="deterministic policy has no score function"):
        checklist.check_stochastic(pol)
    with pytest.raises(ValueError, match="deterministic policy has no score function"):
        checklist.check_stochastic(torch.tensor([0.3, 0.0]))
    with pytest.raises(ValueError, match="nearly deterministic"):
        checklist.check_stochastic(torch.tensor([1e-5]))
    checklist.check_stochastic(torch.distributions.Categorical(logits=torch.zeros(4, 3)))
    with pytest.raises(ValueError, match="nearly deterministic"):
        checklist.check_stochastic(torch.distributions.Categorical(logits=torch.tensor([[30.0, 0.0]])))
    with pytest.raises(ValueError, match="deterministic"):
        checklist.check_stochastic(torch.distributions.Categorical(probs=torch.tensor([[1.0, 0.0]])))
    cat = CategoricalMLP(3, 2, hidden=(4,))
    checklist.check_stochastic(cat, obs=torch.zeros(2, 3))


def test_loss_gradient_catches_each_bug():
    torch.manual_seed(1)
    pol = GaussianMLP(3, 1, hidden=(8,))
    params = list(pol.parameters())
    obs = torch.randn(32, 3)
    dist = pol(obs)
    a = dist.sample()
    adv = torch.randn(32)
    good = surrogate_loss(dist.log_prob(a), adv)
    assert "OK [loss_gradient]" in str(checklist.check_loss_gradient(good, params, dist, a, adv))
    a_r = dist.rsample()
    with pytest.raises(ValueError, match="not the score-function estimator"):
        checklist.check_loss_gradient(-(dist.log_prob(a_r) * adv).sum(), params, dist, a_r, adv)
    coupled = adv + 0.5 * dist.mean.squeeze(-1)  # a "baseline" that depends on the policy's parameters
    with pytest.raises(ValueError, match="not the score-function estimator"):
        checklist.check_loss_gradient(-(dist.log_prob(a) * coupled).sum(), params, dist, a, coupled)
