"""pglib.verify.gym_bridge: the nn.Module policy, the one-hot view, the chain-rule gradient, check_module.

Independent computations: exact.gradient (identity chain rule), central finite differences of
exact.objective through a linear layer on one-hot inputs, and a homework-style loop written for
env.step that must be unbiased when correct and biased when it drops gamma^t.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

from pglib import exact
from pglib.verify import bug_zoo, gym_bridge

FLOAT64_DEFAULT = True
MDP = bug_zoo.problem()
LOGITS = bug_zoo.problem_logits()


def test_tabular_policy_gradient_is_exact_gradient():
    policy = gym_bridge.TabularSoftmaxPolicy(4, 3, logits=LOGITS)
    (g,) = gym_bridge.exact_parameter_gradient(MDP, policy)
    torch.testing.assert_close(g, exact.gradient(MDP, LOGITS))
    assert policy(2).probs.shape == (3,) and policy([0, 1]).logits.shape == (2, 3)
    with pytest.raises(ValueError, match="obs must be states"):
        policy(4)


def test_linear_one_hot_gradient_matches_finite_differences():
    torch.manual_seed(0)
    net = torch.nn.Linear(4, 3).double()

    def logits_of(module, obs):
        return module(obs)

    grads = gym_bridge.exact_parameter_gradient(MDP, net, one_hot=True, logits_of=logits_of)
    h = 1e-6
    for p, g in zip(net.parameters(), grads):
        flat = p.data.view(-1)
        fd = torch.zeros_like(flat)
        for i in range(flat.numel()):
            old = flat[i].item()
            vals = []
            for x in (old + h, old - h):
                flat[i] = x
                with torch.no_grad():
                    vals.append(float(exact.objective(MDP, net(torch.eye(4, dtype=torch.float64)))))
            flat[i] = old
            fd[i] = (vals[0] - vals[1]) / (2 * h)
        torch.testing.assert_close(g.view(-1), fd, rtol=1e-6, atol=1e-8)


def test_one_hot_env_passes_the_gymnasium_checker():
    env = gym_bridge.one_hot_env(MDP)
    check_env(env, skip_render_check=True)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4,) and obs.sum() == 1.0


def homework_update(policy, env, gamma, n_episodes=16, discount_score=True):
    """A REINFORCE update as a course homework writes it: a loop over env.step."""
    def update(b):
        losses = []
        for e in range(n_episodes):
            obs, _ = env.reset(seed=b * n_episodes + e)
            log_probs, rewards, done = [], [], False
            while not done:
                dist = policy(obs)
                action = dist.sample()
                log_probs.append(dist.log_prob(action))
                obs, reward, terminated, truncated, _ = env.step(int(action))
                rewards.append(reward)
                done = terminated or truncated
            G, returns = 0.0, []
            for r in reversed(rewards):
                G = r + gamma * G
                returns.insert(0, G)
            weights = [gamma**t * G if discount_score else G for t, G in enumerate(returns)]
            losses.append(-sum(lp * w for lp, w in zip(log_probs, weights)))
        (sum(losses) / n_episodes).backward()
    return update


@pytest.mark.parametrize("discount_score, unbiased", [(True, True), (False, False)])
def test_homework_loop_checked_by_chain_rule(discount_score, unbiased):
    torch.manual_seed(0)
    policy = gym_bridge.TabularSoftmaxPolicy(4, 3, logits=LOGITS)
    env = MDP.to_env()
    r = gym_bridge.check_module(homework_update(policy, env, MDP.gamma, discount_score=discount_score),
                             MDP, policy, n_batches=60, alpha=0.001)
    assert r.unbiased is unbiased, str(r)


def test_check_module_needs_a_backward_pass():
    policy = gym_bridge.TabularSoftmaxPolicy(4, 3)
    with pytest.raises(ValueError, match="no gradient"):
        gym_bridge.check_module(lambda b: None, MDP, policy, n_batches=5)
    with pytest.raises(TypeError, match="update must be a function"):
        gym_bridge.check_module("update", MDP, policy)
