"""TabularMDP validation, named problems, and the gymnasium view."""

import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

from pglib import exact, mdp
from pglib.mdp import TabularMDP

NAMED = [mdp.bandit(), mdp.chain(), mdp.chain(horizon=10, gamma=1.0), mdp.two_state(), mdp.random_mdp(seed=3),
         mdp.short_corridor()]


def valid_fields():
    return dict(transitions=np.full((2, 2, 2), 0.5), rewards=np.zeros((2, 2)), initial=[0.5, 0.5], gamma=0.9)


@pytest.mark.parametrize("problem", NAMED, ids=repr)
def test_named_problems_pass_gymnasium_env_checker(problem):
    check_env(problem.to_env(), skip_render_check=True)


@pytest.mark.parametrize(
    "change, argument",
    [
        (dict(transitions=np.full((2, 2, 3), 1 / 3)), "transitions"),
        (dict(transitions=np.full((2, 2, 2), 0.6)), "transitions"),
        (dict(transitions=np.array([[[1.5, -0.5]] * 2] * 2)), "transitions"),
        (dict(transitions=np.full((2, 2, 2), np.nan)), "transitions"),
        (dict(rewards=np.zeros((2, 3))), "rewards"),
        (dict(rewards=np.array([[0.0, np.nan], [0.0, 0.0]])), "rewards"),
        (dict(initial=[0.7, 0.7]), "initial"),
        (dict(initial=[1.0]), "initial"),
        (dict(gamma=1.5), "gamma"),
        (dict(gamma=-0.1), "gamma"),
        (dict(gamma=float("nan")), "gamma"),
        (dict(gamma=1.0), "gamma"),  # horizon=None needs gamma < 1
        (dict(horizon=0), "horizon"),
        (dict(horizon=2.5), "horizon"),
        (dict(terminal=[True, False]), "terminal"),  # state 0 is not absorbing
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(change, argument):
    fields = valid_fields()
    fields.update(change)
    with pytest.raises(ValueError, match=argument):
        TabularMDP(**fields)


def test_gamma_one_is_fine_with_a_finite_horizon():
    fields = valid_fields()
    fields.update(gamma=1.0, horizon=5)
    assert TabularMDP(**fields).horizon == 5


def test_bad_logits_are_refused():
    m = mdp.two_state()
    with pytest.raises(ValueError, match="logits"):
        exact.objective(m, torch.zeros(3, 2))
    with pytest.raises(ValueError, match="logits"):
        exact.objective(m, torch.tensor([[0.0, float("nan")], [0.0, 0.0]]))


def test_env_view_matches_the_model_statistics():
    """Empirical next-state frequencies and rewards of the env agree with P and R."""
    m = mdp.random_mdp(n_states=3, n_actions=2, seed=7)
    env = m.to_env()
    env.reset(seed=0)
    counts = np.zeros((3, 2, 3))
    n = 6000
    rng = np.random.default_rng(0)
    for _ in range(n):
        s = env.unwrapped._state
        a = int(rng.integers(2))
        s2, r, *_ = env.step(a)
        assert r == pytest.approx(m.rewards[s, a].item())
        counts[s, a, s2] += 1
    freq = counts / counts.sum(-1, keepdims=True)
    se = np.sqrt(0.25 / counts.sum(-1, keepdims=True))
    assert np.all(np.abs(freq - m.transitions.numpy()) < 5 * se)


def test_short_corridor_optimum_is_stochastic():
    """Sutton & Barto Example 13.1: with shared logits the best P(right) is 2 - sqrt(2)."""
    m = mdp.short_corridor(horizon=2000)
    ps = np.linspace(0.05, 0.95, 181)
    J = [exact.objective(m, torch.tensor([[np.log(1 - p), np.log(p)]]).expand(4, 2)).item() for p in ps]
    best = ps[int(np.argmax(J))]
    assert abs(best - (2 - np.sqrt(2))) < 0.006
    # closed form of the value at the optimum (S&B): about -11.6
    assert max(J) == pytest.approx(-11.65685, abs=1e-3)


def test_env_episode_ends_at_the_horizon_and_at_terminal_states():
    env = mdp.short_corridor(horizon=3).to_env()
    env.reset(seed=1)
    done, steps = False, 0
    while not done:
        _, _, terminated, truncated, _ = env.step(0)  # always "left": never reaches the goal
        done = terminated or truncated
        steps += 1
    assert steps == 3 and not truncated
