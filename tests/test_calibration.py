"""Calibration of the claim machinery on the estimators the chapters use.

(a) False alarms: the Hotelling unbiasedness test applied to the (correct) reward-to-go estimator
    over many independent seeds rejects at a rate whose 99% Clopper-Pearson interval contains alpha.
(b) Power: at the sample sizes the chapters use (N = 20000 trajectories, horizon 15, a 5-state
    3-action random MDP, gamma = 0.9) the same test rejects the two classic mistakes: an
    action-dependent baseline b(s, a) = Q_0(s, a), and dropping the gamma^t factor on the score.

Run with ``pytest -s tests/test_calibration.py`` to see the measured rates.
"""

import torch

from pglib import estimators, exact, mdp, stats
from pglib.sampling import sample_trajectories

ALPHA = 0.05


def test_false_alarm_rate_of_hotelling_on_reward_to_go():
    m = mdp.random_mdp(4, 3, seed=3, gamma=0.9, horizon=8)
    logits = 0.7 * torch.randn(4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    grad = exact.gradient(m, logits)
    seeds = 300
    rejections = 0
    for seed in range(seeds):
        traj = sample_trajectories(m, logits, n=2000, seed=seed)
        rejections += stats.unbiasedness_test(estimators.reinforce(traj, logits, m.gamma), grad, ALPHA).reject
    low, high = stats.binomial_interval(rejections, seeds, confidence=0.99)
    print(f"\nfalse alarms: {rejections}/{seeds} = {rejections / seeds:.3f} at alpha={ALPHA}; "
          f"99% Clopper-Pearson interval [{low:.4f}, {high:.4f}]")
    assert low <= ALPHA <= high, (rejections, seeds, low, high)


def test_power_against_action_baseline_and_dropped_discount():
    m = mdp.random_mdp(5, 3, seed=0, gamma=0.9, horizon=15)
    logits = 0.5 * torch.randn(5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    grad = exact.gradient(m, logits)
    Q0 = exact.time_q_values(m, logits)[0].detach()
    seeds = 20
    hits = {"action_baseline": 0, "dropped_discount": 0}
    for seed in range(seeds):
        traj = sample_trajectories(m, logits, n=20_000, seed=1000 + seed)
        bad = {
            "action_baseline": estimators.reinforce(traj, logits, m.gamma, action_baseline=Q0),
            "dropped_discount": estimators.reinforce(traj, logits, m.gamma, discount_score=False),
        }
        for name, est in bad.items():
            hits[name] += stats.unbiasedness_test(est, grad, ALPHA).reject
    print(f"\npower at N=20000, T=15, alpha={ALPHA}: "
          + ", ".join(f"{k} {v}/{seeds}" for k, v in hits.items()))
    for name, k in hits.items():
        assert k >= seeds - 1, (name, k)
