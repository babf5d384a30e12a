"""Bad input never gets a silent answer (issue 13): property-based tests over pglib's public entry points.

For every entry point below (the modules mdp, sampling, enumeration, exact, returns, baselines,
scorefn, estimators, importance, offpolicy, losses, expected, checklist, policies, lqr, device,
plotting, fused, display):

- generated **bad** values of each class (wrong kind: strings, bools, complex, None, objects;
  NaN and infinities; floats where integers are needed; negative or too-large indices; wrong
  shapes; out-of-range numbers; unknown options) put into one argument of an otherwise valid
  call raise ``ValueError``/``TypeError`` whose message names that argument;
- generated **valid** calls (random small MDPs, logits, batches) do not raise, leave their
  arguments unchanged, and give the same result twice for the same seed.

Hypothesis profiles (tests/conftest.py): ``quick`` by default, ``HYPOTHESIS_PROFILE=long`` by hand.
``python tests/test_bad_input.py`` prints the survey: the share of clear refusals per class.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import numpy as np
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

import pglib.display
from pglib import (baselines, enumeration, estimators, exact, expected, importance, losses, mdp, offpolicy,
                   returns, sampling, scorefn, validate)
from pglib.practice import device, lqr, plotting, policies
from pglib.verify import checklist

FLOAT64_DEFAULT = True
BAD = (TypeError, ValueError)


# ----------------------------------------------------------------------------- a small valid world


@dataclasses.dataclass
class World:
    """Everything a valid call needs, built from a few drawn numbers (small: every call is fast)."""

    S: int
    A: int
    T: int
    N: int
    seed: int

    def __post_init__(self):
        g = torch.Generator().manual_seed(self.seed)
        self.m = mdp.random_mdp(self.S, self.A, seed=self.seed, gamma=0.9, horizon=self.T)
        self.m_inf = self.m.with_(horizon=None)
        self.logits = torch.randn(self.S, self.A, generator=g, dtype=torch.float64)
        self.behaviour = torch.randn(self.S, self.A, generator=g, dtype=torch.float64)
        self.traj = sampling.sample_trajectories(self.m, self.behaviour, n=self.N, seed=self.seed)
        self.rewards = torch.randn(self.N, self.T, generator=g, dtype=torch.float64)
        self.values = torch.randn(self.N, self.T, generator=g, dtype=torch.float64)
        self.flags = torch.rand(self.N, self.T, generator=g) < 0.2
        self.no = torch.zeros(self.N, self.T, dtype=torch.bool)
        self.mask = torch.ones(self.N, self.T, dtype=torch.bool)
        self.logp = torch.log_softmax(self.logits, -1)[self.traj.states, self.traj.actions]
        self.logp_old = self.traj.logp.clone()
        self.est = torch.randn(self.N, self.S, self.A, generator=g, dtype=torch.float64)
        self.scores = torch.randn(self.N, self.S, self.A, generator=g, dtype=torch.float64)
        self.V = torch.randn(self.T, self.S, generator=g, dtype=torch.float64)
        self.K = torch.randn(1, 2, generator=g, dtype=torch.float64) * 0.1
        self.lqr = lqr.double_integrator(horizon=self.T)
        torch.manual_seed(self.seed)
        self.cat = policies.CategoricalMLP(3, self.A, hidden=(4,)).double()
        self.gauss = policies.GaussianMLP(3, 2, hidden=(4,)).double()
        self.obs = torch.randn(self.N, 3, generator=g, dtype=torch.float64)
        self.cat_actions = torch.randint(self.A, (self.N,), generator=g)
        self.gauss_actions = torch.randn(self.N, 2, generator=g, dtype=torch.float64)


worlds = st.builds(World, S=st.integers(1, 3), A=st.integers(2, 3), T=st.integers(1, 4), N=st.integers(2, 5),
                   seed=st.integers(0, 2**16))


# ----------------------------------------------------------------------------- classes of bad values


def _bad_tensor(value: torch.Tensor, draw, integer: bool = False, shapes: str = "strict",
                bounded: bool = True) -> tuple[str, Any]:
    """One bad variant of a valid tensor: (class, value). ``shapes``: "strict" (the shape is fixed by the
    other arguments), "scalar" (any shape with a last axis: only a 0-d tensor is wrong) or "none"."""
    kinds = ["kind"] + (["shape"] if shapes != "none" else []) + (
        ["float", "negative"] + (["too_large"] if bounded else []) if integer else ["nonfinite"])
    kind = draw(st.sampled_from(kinds))
    if kind == "kind":
        return kind, draw(st.sampled_from([
            "1.0", None, object(), {"a": 1}, value.to(torch.complex128), value.bool(), [["x"] * max(value.shape[-1:] or [1])],
        ]))
    if kind == "shape":
        if shapes == "scalar":
            return kind, torch.zeros((), dtype=value.dtype)
        options = [tuple(value.shape) + (2,)]
        if value.ndim:
            options.append(tuple(value.shape[:-1]) + (value.shape[-1] + 1,))
        if value.ndim > 1:
            options.append(tuple(value.shape[1:]))
        return kind, torch.zeros(draw(st.sampled_from(options)), dtype=value.dtype)
    bad = value.detach().clone(memory_format=torch.contiguous_format)
    flat = bad.view(-1)
    i = draw(st.integers(0, flat.numel() - 1))
    if kind == "nonfinite":
        flat[i] = draw(st.sampled_from([math.nan, math.inf, -math.inf]))
    elif kind == "float":
        bad = value.to(torch.float64) + 0.5
    elif kind == "negative":
        flat[i] = -draw(st.integers(1, 10**6))
    else:
        flat[i] = 10**6
    return kind, bad


BAD_INT = [2.5, True, False, "3", None, math.nan, 1 + 0j, np.float64(2.0), [2], -1, 0]
BAD_COUNT_LARGE = [10**13]
BAD_REAL = ["0.5", True, 1j, math.nan, math.inf, -math.inf, None, [0.5], object()]
BAD_FLAG = [1, 0, "yes", None, 1.0]


def _bad_scalar(kind: str, draw, spec) -> tuple[str, Any]:
    if kind in ("count", "steps"):
        pool = BAD_INT + ([10**13] if kind == "steps" else [])
        return "int", draw(st.sampled_from(pool + [draw(st.floats(allow_nan=True)).__float__()]))
    if kind in ("gamma", "prob"):
        return "real", draw(st.sampled_from(BAD_REAL + [draw(st.floats(1.0, 1e6, exclude_min=True)),
                                                          draw(st.floats(-1e6, 0.0, exclude_max=True))]))
    if kind == "real":
        return "real", draw(st.sampled_from(BAD_REAL))
    if kind == "nonneg":
        return "real", draw(st.sampled_from(BAD_REAL + [-draw(st.floats(1e-6, 1e6))]))
    if kind == "unit_open":
        return "real", draw(st.sampled_from(BAD_REAL + [0.0, 1.0, 1.5, -0.2]))
    if kind == "flag":
        return "kind", draw(st.sampled_from(BAD_FLAG))
    if kind == "choice":
        return "option", draw(st.sampled_from(["nope", "", 0, None, b"x"]))
    if kind == "object":
        return "kind", draw(st.sampled_from(["thing", None, 3, (1, 2), object()]))
    if kind == "seed":
        return "int", draw(st.sampled_from([-1, 2.5, "0", True, math.nan, 1j]))
    raise AssertionError(kind)


# ----------------------------------------------------------------------------- the entry points


@dataclasses.dataclass
class Spec:
    name: str
    fn: Callable
    args: Callable[[World], dict]        # a valid call's keyword arguments
    bad: dict[str, str]                  # argument -> class of its bad values ("tensor", "int_tensor", scalar kinds)
    says: dict[str, str] = dataclasses.field(default_factory=dict)  # argument -> the name its message uses
    seeded: bool = False                 # the result depends on a seed argument (checked twice)
    nullable: set = dataclasses.field(default_factory=set)  # arguments for which None is valid

    def __repr__(self):
        return self.name

    def optional(self, arg: str) -> bool:
        """None is a valid value of ``arg`` (its default is None)."""
        import inspect

        if arg in self.nullable:
            return True
        try:
            p = inspect.signature(self.fn).parameters.get(arg)
        except (TypeError, ValueError):
            p = None
        if p is not None and p.default is not inspect.Parameter.empty:
            return p.default is None
        return arg in ("horizon", "seed", "mask", "params", "sample_weights") or arg in self.nullable


def _T(spec_name, fn, args, bad, **kw):
    return Spec(spec_name, fn, args, bad, **kw)


def _rtg_args(w):
    return dict(rewards=w.rewards, gamma=0.9)


def _episodic_args(w):
    return dict(rewards=w.rewards, gamma=0.9, terminated=w.flags, truncated=w.no, next_values=w.values, mask=w.mask)


def _gae_args(w):
    return dict(rewards=w.rewards, values=w.values, next_values=w.values, terminated=w.flags, truncated=w.no,
                gamma=0.9, lam=0.95, mask=w.mask)


def _mdp_args(w):
    return dict(transitions=w.m.transitions, rewards=w.m.rewards, initial=w.m.initial, gamma=0.9, horizon=w.T)


EXACT = ["time_q_values", "time_state_values", "state_values", "q_values", "advantages", "objective", "gradient",
         "occupancy"]
RATIOS = ["log_step_ratios", "step_ratios", "per_decision_ratios", "trajectory_ratios"]
OFF = ["single_step_expectation", "weight_second_moment", "limiting_ess_fraction", "surrogate_gradient"]

SPECS: list[Spec] = [
    # mdp
    _T("mdp.TabularMDP", mdp.TabularMDP, _mdp_args,
       dict(transitions="tensor", rewards="tensor", initial="tensor", gamma="gamma", horizon="steps")),
    _T("mdp.bandit", mdp.bandit, lambda w: dict(means=torch.arange(w.A, dtype=torch.float64)),
       dict(means="tensor_any", gamma="gamma")),
    _T("mdp.chain", mdp.chain, lambda w: dict(n_states=w.S + 1, slip=0.1, gamma=0.9, horizon=w.T),
       dict(n_states="count", slip="prob", gamma="gamma", horizon="steps", left_reward="real")),
    _T("mdp.random_mdp", mdp.random_mdp, lambda w: dict(n_states=w.S, n_actions=w.A, seed=w.seed, horizon=w.T),
       dict(n_states="count", n_actions="count", seed="seed", gamma="gamma", horizon="steps",
            concentration="nonneg"), seeded=True),
    _T("mdp.TabularMDP.check_logits", lambda mdp_, logits: mdp_.check_logits(logits),
       lambda w: dict(mdp_=w.m, logits=w.logits), dict(logits="tensor")),
    _T("mdp.TabularEnv.step", lambda env, action: env.step(action),
       lambda w: dict(env=_reset(w.m.to_env(), w.seed), action=w.A - 1), dict(action="count_action"),
       says=dict(action="action")),
    # sampling
    _T("sampling.sample_trajectories", sampling.sample_trajectories,
       lambda w: dict(mdp=w.m, logits=w.logits, n=w.N, seed=w.seed),
       dict(mdp="object", logits="tensor", n="count", seed="seed", horizon="steps"), seeded=True),
    _T("sampling.iter_trajectories", lambda **kw: list(sampling.iter_trajectories(**kw)),
       lambda w: dict(mdp=w.m, logits=w.logits, n=w.N, chunk_size=2, seed=w.seed),
       dict(mdp="object", logits="tensor", n="count", chunk_size="count", seed="seed"), seeded=True),
    _T("sampling.inverse_cdf_table", sampling.inverse_cdf_table, lambda w: dict(probs=w.m.transitions),
       dict(probs="tensor")),
    _T("sampling.make_generator", sampling.make_generator, lambda w: dict(seed=w.seed), dict(seed="seed")),
    _T("sampling.Trajectories", sampling.Trajectories,
       lambda w: dict(states=w.traj.states, actions=w.traj.actions, rewards=w.traj.rewards, mask=w.traj.mask,
                      logp=w.traj.logp, n_states=w.S, n_actions=w.A),
       dict(states="int_tensor", actions="int_tensor", rewards="tensor", mask="mask", logp="tensor")),
    # enumeration
    _T("enumeration.all_trajectories", enumeration.all_trajectories,
       lambda w: dict(mdp=w.m, logits=w.logits, horizon=min(w.T, 3)),
       dict(mdp="object", logits="tensor", horizon="steps", max_trajectories="count")),
    # exact
    *[_T(f"exact.{f}", getattr(exact, f), lambda w: dict(mdp=w.m, logits=w.logits),
         dict(mdp="object", logits="tensor")) for f in EXACT],
    _T("exact.time_occupancy", exact.time_occupancy, lambda w: dict(mdp=w.m_inf, logits=w.logits, horizon=w.T),
       dict(mdp="object", logits="tensor", horizon="steps")),
    _T("exact.theorem_gradient", exact.theorem_gradient, lambda w: dict(mdp=w.m_inf, logits=w.logits),
       dict(mdp="object", logits="tensor")),
    _T("expected.direction", expected.direction,
       lambda w: dict(mdp=w.m, logits=w.logits, discount_score=False),
       dict(mdp="object", logits="tensor", discount_score="flag")),
    _T("exact.softmax_score_expectation", exact.softmax_score_expectation,
       lambda w: dict(pi=w.m.policy(w.logits), weights=exact.q_values(w.m, w.logits)),
       dict(pi="tensor", weights="tensor_any")),
    # returns
    _T("returns.reward_to_go", returns.reward_to_go, _rtg_args, dict(rewards="tensor_any", gamma="gamma")),
    _T("returns.total_return", returns.total_return, _rtg_args, dict(rewards="tensor_any", gamma="gamma")),
    _T("returns.discount_weights", returns.discount_weights, lambda w: dict(horizon=w.T, gamma=0.9),
       dict(horizon="steps0", gamma="gamma")),
    _T("returns.reward_to_go_episodic", returns.reward_to_go_episodic, _episodic_args,
       dict(rewards="tensor", gamma="gamma", terminated="mask", truncated="mask", next_values="tensor",
            mask="mask")),
    _T("returns.gae", returns.gae, _gae_args,
       dict(rewards="tensor", values="tensor", next_values="tensor", terminated="mask", truncated="mask",
            gamma="gamma", lam="gamma", mask="mask")),
    # baselines
    _T("baselines.optimal_constant_baseline", baselines.optimal_constant_baseline,
       lambda w: dict(estimates=w.est, scores=w.scores, sample_weights=torch.full((w.N,), 1.0 / w.N)),
       dict(estimates="tensor", scores="tensor", sample_weights="tensor")),
    _T("baselines.optimal_linear_baseline", baselines.optimal_linear_baseline,
       lambda w: dict(estimates=w.est, features=torch.stack([w.scores, w.scores * 2], 1)),
       dict(estimates="tensor", features="tensor", sample_weights="tensor")),
    _T("baselines.time_state_features", baselines.time_state_features,
       lambda w: dict(traj=w.traj, logits=w.logits), dict(traj="object", logits="tensor")),
    _T("baselines.leave_one_out_mean", baselines.leave_one_out_mean, lambda w: dict(values=w.values, dim=0),
       dict(values="tensor_any", dim="dim")),
    _T("baselines.fit_tabular_values", baselines.fit_tabular_values,
       lambda w: dict(states=w.traj.states, targets=w.values, n_states=w.S, mask=w.mask, fill=0.0),
       dict(states="int_tensor", targets="tensor", n_states="count", mask="mask", time_indexed="flag",
            fill="real")),
    _T("baselines.values_at", baselines.values_at, lambda w: dict(values=w.V, states=w.traj.states, mask=w.mask),
       dict(values="tensor_any", states="int_tensor", mask="mask")),
    _T("baselines.standardize", baselines.standardize, lambda w: dict(advantages=w.values, mask=w.mask),
       dict(advantages="tensor", mask="mask", per_episode="flag", eps="nonneg")),
    # scorefn
    _T("scorefn.categorical_score", scorefn.categorical_score,
       lambda w: dict(logits=w.logits[0], samples=w.traj.actions[:, 0]),
       dict(logits="tensor_any", samples="int_tensor_free")),
    _T("scorefn.gaussian_score", scorefn.gaussian_score,
       lambda w: dict(mean=w.values[0], log_std=w.values[1] * 0.1, x=w.rewards[0]),
       dict(mean="tensor_free", log_std="tensor_free", x="tensor_free")),
    _T("scorefn.score_by_autodiff", scorefn.score_by_autodiff,
       lambda w: dict(log_prob=_log_prob_of(w), params=w.logits[0].clone()), dict(params="tensor_free", log_prob="object")),
    _T("scorefn.trajectory_log_prob", scorefn.trajectory_log_prob,
       lambda w: dict(mdp=w.m, trajectories=w.traj, logits=w.logits),
       dict(mdp="object", trajectories="object", logits="tensor", dynamics="flag")),
    # estimators
    _T("scorefn.tabular_score", scorefn.tabular_score,
       lambda w: dict(logits=w.logits, states=w.traj.states, actions=w.traj.actions),
       dict(logits="tensor_any", states="int_tensor", actions="int_tensor")),
    _T("estimators.weighted_score_sum", estimators.weighted_score_sum,
       lambda w: dict(traj=w.traj, logits=w.logits, weights=w.values),
       dict(traj="object", logits="tensor", weights="tensor")),
    _T("estimators.step_baseline", estimators.step_baseline,
       lambda w: dict(traj=w.traj, baseline=w.V, action_baseline=w.logits),
       dict(traj="object", baseline="tensor_free", action_baseline="tensor")),
    _T("estimators.reinforce", estimators.reinforce,
       lambda w: dict(traj=w.traj, logits=w.behaviour, gamma=0.9, baseline=w.V[:, :]),
       dict(traj="object", logits="tensor", gamma="gamma", credit="choice", baseline="tensor_free",
            discount_score="flag", action_baseline="tensor")),
    _T("estimators.past_reward_terms", estimators.past_reward_terms,
       lambda w: dict(traj=w.traj, logits=w.behaviour, gamma=0.9),
       dict(traj="object", logits="tensor", gamma="gamma")),
    _T("estimators.importance_weighted", estimators.importance_weighted,
       lambda w: dict(traj=w.traj, target_logits=w.logits, behaviour_logits=w.behaviour, gamma=0.9),
       dict(traj="object", target_logits="tensor", behaviour_logits="tensor", gamma="gamma", kind="choice")),
    _T("expected.action_baseline", expected.action_baseline,
       lambda w: dict(mdp=w.m, logits=w.logits, action_baseline=w.behaviour),
       dict(mdp="object", logits="tensor", action_baseline="tensor")),
    _T("expected.step_importance", expected.step_importance,
       lambda w: dict(mdp=w.m, target_logits=w.logits, behaviour_logits=w.behaviour),
       dict(mdp="object", target_logits="tensor", behaviour_logits="tensor")),
    # importance
    *[_T(f"importance.{f}", getattr(importance, f),
         lambda w: dict(traj=w.traj, target_logits=w.logits, behaviour_logits=w.behaviour),
         dict(traj="object", target_logits="tensor", behaviour_logits="tensor")) for f in RATIOS],
    _T("importance.kl_divergence", importance.kl_divergence,
       lambda w: dict(states=w.m.initial, logits_p=w.logits, logits_q=w.behaviour),
       dict(states="tensor", logits_p="tensor", logits_q="tensor"), nullable={"states"}),
    # offpolicy
    *[_T(f"offpolicy.{f}", getattr(offpolicy, f), lambda w: dict(mdp=w.m, logits=w.logits, behaviour_logits=w.behaviour),
         dict(mdp="object", logits="tensor", behaviour_logits="tensor")) for f in OFF],
    _T("offpolicy.time_kl", offpolicy.time_kl, lambda w: dict(mdp=w.m, logits=w.logits, behaviour_logits=w.behaviour),
       dict(mdp="object", logits="tensor", behaviour_logits="tensor")),
    _T("offpolicy.surrogate_objective", offpolicy.surrogate_objective,
       lambda w: dict(mdp=w.m, logits=w.logits, behaviour_logits=w.behaviour, eps=0.2, beta=0.1),
       dict(mdp="object", logits="tensor", behaviour_logits="tensor", eps="unit_open", beta="nonneg")),
    _T("offpolicy.clip_fraction", offpolicy.clip_fraction,
       lambda w: dict(mdp=w.m, logits=w.logits, behaviour_logits=w.behaviour, eps=0.2),
       dict(mdp="object", logits="tensor", behaviour_logits="tensor", eps="unit_open")),
    # losses
    _T("losses.surrogate_loss", losses.surrogate_loss, lambda w: dict(logp=w.logp, advantages=w.values, mask=w.mask),
       dict(logp="tensor", advantages="tensor", mask="mask", reduction="choice", density="flag")),
    _T("losses.importance_ratio", losses.importance_ratio, lambda w: dict(logp_new=w.logp, logp_old=w.logp_old),
       dict(logp_new="tensor", logp_old="tensor")),
    _T("losses.ratio_surrogate", losses.ratio_surrogate,
       lambda w: dict(logp_new=w.logp, logp_old=w.logp_old, advantages=w.values),
       dict(logp_new="tensor", logp_old="tensor", advantages="tensor", reduction="choice")),
    _T("losses.clipped_surrogate", losses.clipped_surrogate,
       lambda w: dict(logp_new=w.logp, logp_old=w.logp_old, advantages=w.values, eps=0.2),
       dict(logp_new="tensor", logp_old="tensor", advantages="tensor", eps="unit_open", mask="mask")),
    _T("losses.clip_mask", losses.clip_mask, lambda w: dict(ratio=w.logp.exp(), advantages=w.values, eps=0.2),
       dict(ratio="tensor", advantages="tensor", eps="unit_open")),
    _T("losses.categorical_kl", losses.categorical_kl, lambda w: dict(logits_p=w.logits, logits_q=w.behaviour),
       dict(logits_p="tensor", logits_q="tensor")),
    _T("losses.kl_penalty", losses.kl_penalty, lambda w: dict(logp_new=w.logp, logp_old=w.logp_old, mask=w.mask),
       dict(logp_new="tensor", logp_old="tensor", mask="mask", estimator="choice", reduction="choice")),
    # surrogate
    _T("scorefn.policy_distribution", lambda **kw: scorefn.policy_distribution(**kw).logits,
       lambda w: dict(policy=w.cat, obs=w.obs), dict(policy="object", obs="tensor")),
    _T("scorefn.per_sample_scores", scorefn.per_sample_scores,
       lambda w: dict(policy=w.cat, obs=w.obs, actions=w.cat_actions),
       dict(policy="object", obs="tensor", actions="int_tensor")),
    _T("scorefn.per_sample_scores[gaussian]", scorefn.per_sample_scores,
       lambda w: dict(policy=w.gauss, obs=w.obs, actions=w.gauss_actions), dict(obs="tensor", actions="tensor")),
    _T("scorefn.score_function_gradient", scorefn.score_function_gradient,
       lambda w: dict(policy=w.cat, obs=w.obs, actions=w.cat_actions, weights=w.values[:, 0], n=w.N),
       dict(obs="tensor", actions="int_tensor", weights="tensor", n="count")),
    _T("expected.surrogate", expected.surrogate, lambda w: dict(mdp=w.m, logits=w.logits),
       dict(mdp="object", logits="tensor")),
    _T("losses.surrogate_values", losses.surrogate_values,
       lambda w: dict(traj=w.traj, logits=w.logits, gamma=0.9), dict(traj="object", logits="tensor", gamma="gamma")),
    # checks (valid calls that pass the check)
    _T("checklist.check_on_policy", checklist.check_on_policy,
       lambda w: dict(logp_stored=w.logp_old, logp_current=w.logp_old.clone(), mask=w.mask),
       dict(logp_stored="tensor", logp_current="tensor", mask="mask", atol="nonneg", density="flag")),
    _T("checklist.check_reward_to_go", checklist.check_reward_to_go,
       lambda w: dict(weights=returns.reward_to_go(w.rewards, 0.9), rewards=w.rewards, gamma=0.9, mask=w.mask),
       dict(weights="tensor", rewards="tensor", gamma="gamma", mask="mask", baseline="tensor", atol="nonneg")),
    _T("checklist.check_normalized", checklist.check_normalized, lambda w: dict(advantages=baselines.standardize(
        w.values, eps=0.0), mask=w.mask), dict(advantages="tensor", mask="mask", atol="nonneg")),
    _T("checklist.check_stochastic", checklist.check_stochastic, lambda w: dict(policy_or_dist=w.values.abs() + 0.5),
       dict(policy_or_dist="tensor", min_std="nonneg", min_entropy="nonneg"),
       says=dict(policy_or_dist="standard deviation|policy_or_dist")),
    # policies
    _T("policies.mlp", lambda **kw: policies.mlp(**kw) and None, lambda w: dict(sizes=[3, 4, w.A]),
       dict(sizes="widths", activation="choice", bias="flag")),
    _T("policies.CategoricalMLP", lambda **kw: policies.CategoricalMLP(**kw) and None,
       lambda w: dict(obs_dim=3, n_actions=w.A, hidden=(4,)),
       dict(obs_dim="count", n_actions="count", hidden="widths", activation="choice")),
    _T("policies.GaussianMLP", lambda **kw: policies.GaussianMLP(**kw) and None,
       lambda w: dict(obs_dim=3, act_dim=2, hidden=(4,)),
       dict(obs_dim="count", act_dim="count", hidden="widths", log_std="real", bias="flag")),
    _T("policies.CategoricalMLP.forward", lambda policy, obs: policy(obs).logits,
       lambda w: dict(policy=w.cat, obs=w.obs), dict(obs="tensor")),
    _T("policies.GaussianMLP.forward", lambda policy, obs: policy(obs).mean,
       lambda w: dict(policy=w.gauss, obs=w.obs), dict(obs="tensor")),
    # lqr
    _T("lqr.double_integrator", lambda **kw: lqr.double_integrator(**kw).A, lambda w: dict(horizon=w.T, dt=0.2),
       dict(horizon="steps", dt="nonneg", control_cost="nonneg", noise="nonneg")),
    _T("lqr.LQR", lambda **kw: lqr.LQR(**kw).A,
       lambda w: dict(A=w.lqr.A, B=w.lqr.B, Q=w.lqr.Q, R=w.lqr.R, initial_cov=w.lqr.initial_cov, horizon=w.T),
       dict(A="tensor", B="tensor", Q="tensor", R="tensor", initial_cov="tensor", horizon="steps")),
    _T("lqr.objective", lqr.objective, lambda w: dict(lqr=w.lqr, K=w.K, sigma=0.5),
       dict(lqr="object", K="tensor", sigma="nonneg")),
    _T("lqr.exact_gradient", lqr.exact_gradient, lambda w: dict(lqr=w.lqr, K=w.K, sigma=0.5),
       dict(lqr="object", K="tensor", sigma="nonneg")),
    _T("lqr.sample", lambda **kw: lqr.sample(**kw)["rewards"],
       lambda w: dict(lqr=w.lqr, K=w.K, sigma=0.5, n=w.N, generator=w.seed),
       dict(lqr="object", K="tensor", sigma="nonneg", n="count", generator="seed"), seeded=True),
    _T("lqr.reinforce_gradients", lqr.reinforce_gradients,
       lambda w: dict(lqr=w.lqr, K=w.K, sigma=0.5, n=w.N, generator=w.seed),
       dict(K="tensor", sigma="nonneg", n="count", generator="seed", credit="choice"), seeded=True),
    # device, plotting, display
    _T("device.resolve_device", device.resolve_device, lambda w: dict(device="cpu"), dict(device="object")),
    _T("plotting.running_return", plotting.running_return,
       lambda w: dict(episode_steps=torch.arange(1, w.N + 1) * 10, episode_returns=w.values[:, 0],
                      grid=torch.arange(w.T) * 7.0, window=2),
       dict(episode_steps="count_tensor", episode_returns="tensor", grid="tensor_any", window="count")),
    _T("plotting.mean_and_band", plotting.mean_and_band, lambda w: dict(curves=w.values, confidence=0.9),
       dict(curves="tensor_nan_ok", confidence="unit_open")),
    _T("display.show_source", lambda **kw: getattr(pglib.display.show_source(returns.reward_to_go, **kw), "data", None),
       lambda w: dict(full=False), dict(full="flag")),
]


def _reset(env, seed):
    env.reset(seed=seed)
    return env


def _log_prob_of(w):
    x = w.traj.actions[:, 0]
    return lambda th: torch.log_softmax(th, -1)[x]


def _bad_value(spec: Spec, arg: str, valid: Any, draw) -> tuple[str, Any]:
    kind = spec.bad[arg]
    if kind in ("tensor", "int_tensor", "tensor_nan_ok", "tensor_any", "tensor_free", "int_tensor_free",
                "count_tensor"):
        shapes = {"tensor_any": "scalar", "tensor_free": "none", "int_tensor_free": "none",
                  "tensor_nan_ok": "scalar"}.get(kind, "strict")
        cls, value = _bad_tensor(valid, draw, integer=kind.startswith("int") or kind == "count_tensor", shapes=shapes,
                                 bounded=kind != "count_tensor")
        if kind == "tensor_nan_ok" and cls == "nonfinite":
            value = valid.clone().view(-1)
            value[0] = math.inf
            value = value.view(valid.shape)
        return cls, value
    if kind == "mask":
        cls = draw(st.sampled_from(["kind", "shape"]))
        if cls == "kind":
            return cls, draw(st.sampled_from([valid.long(), valid.double(), "all", None if arg != "mask" else 3]))
        return cls, torch.ones(tuple(valid.shape) + (2,), dtype=torch.bool)
    if kind == "steps0":
        return "int", draw(st.sampled_from([2.5, True, "3", None, math.nan, -1, 10**13]))
    if kind == "count_action":
        return "int", draw(st.sampled_from([2.5, True, "1", None, -1, 10**6]))
    if kind == "widths":
        return "int", draw(st.sampled_from([(0,), (2.5,), "64", None, (True,), (-1,), 64, [4, "8"]]))
    if kind == "dim":
        return "int", draw(st.sampled_from([2.5, True, "0", None, 5, -6]))
    return _bad_scalar(kind, draw, spec)


def _call(spec: Spec, kwargs: dict):
    return spec.fn(**kwargs)


# ----------------------------------------------------------------------------- bad input: clear refusals


@pytest.mark.parametrize("spec", SPECS, ids=repr)
@given(world=worlds, data=st.data())
def test_bad_input_is_refused_naming_the_argument(spec, world, data):
    kwargs = spec.args(world)
    arg = data.draw(st.sampled_from(sorted(spec.bad)), label="argument")
    valid = kwargs.get(arg)
    if valid is None and spec.bad[arg] in ("tensor", "int_tensor", "mask"):
        valid = {"baseline": world.values, "sample_weights": torch.ones(world.N), "action_baseline": world.logits,
                 "mask": world.mask}.get(arg, world.values)
    cls, bad = _bad_value(spec, arg, valid, data.draw)
    assume(not (bad is None and spec.optional(arg)))
    kwargs[arg] = bad
    with pytest.raises(BAD) as info:
        _call(spec, kwargs)
    said = spec.says.get(arg, arg)
    assert any(x in str(info.value) for x in said.split("|")), f"{spec.name}({arg}={validate.describe(bad)}) [{cls}]: {info.value}"


# ----------------------------------------------------------------------------- valid input: no surprise


def _snapshot(x):
    if isinstance(x, torch.Tensor):
        return x.detach().clone()
    if isinstance(x, np.ndarray):
        return x.copy()
    if isinstance(x, sampling.Trajectories):
        return [_snapshot(getattr(x, f.name)) for f in dataclasses.fields(x)]
    if isinstance(x, mdp.TabularMDP):
        return [x.transitions.clone(), x.rewards.clone(), x.initial.clone(), x.terminal.clone(), x.gamma, x.horizon]
    if isinstance(x, torch.nn.Module):
        return [p.detach().clone() for p in x.parameters()]
    if isinstance(x, (list, tuple)):
        return [_snapshot(v) for v in x]
    return x


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.shape == b.shape and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b, equal_nan=True)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        return all(_same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    if isinstance(a, (mdp.TabularMDP, torch.Generator)):
        return True
    return a == b


@pytest.mark.parametrize("spec", [s for s in SPECS if s.name != "mdp.TabularEnv.step"], ids=repr)
@given(world=worlds)
def test_valid_input_passes_leaves_arguments_unchanged_and_repeats(spec, world):
    kwargs = spec.args(world)
    before = {k: _snapshot(v) for k, v in kwargs.items()}
    first = _call(spec, kwargs)
    for k, v in kwargs.items():
        assert _same(_snapshot(v), before[k]), f"{spec.name} changed its argument {k}"
    second = _call(spec, spec.args(world) if spec.seeded else kwargs)
    assert _same(first, second), f"{spec.name} gave two different results for the same input"


# ----------------------------------------------------------------------------- the examples of issue 13


def test_issue_13_examples_are_refused_or_handled():
    # integer rewards: float results
    assert returns.reward_to_go(torch.tensor([1, 1, 1]), 0.5).tolist() == [1.75, 1.5, 1.0]
    # a reward at a masked step does not leak into reinforce
    m = mdp.short_corridor(horizon=6)
    traj = sampling.sample_trajectories(m, torch.zeros(4, 2), n=20, seed=0)
    assert not bool(traj.mask.all())
    leaky = sampling.Trajectories(traj.states, traj.actions, torch.where(traj.mask, traj.rewards, 100.0), traj.mask)
    assert torch.equal(estimators.reinforce(leaky, torch.zeros(4, 2), 1.0),
                       estimators.reinforce(traj, torch.zeros(4, 2), 1.0))
    # logits with more states than the batch knows
    with pytest.raises(ValueError, match="logits must have shape"):
        losses.surrogate_values(traj, torch.zeros(5, 2), 1.0)
    # observations that would broadcast
    pol = policies.CategoricalMLP(3, 2, hidden=(4,)).double()
    with pytest.raises(ValueError, match="obs must have shape"):
        scorefn.per_sample_scores(pol, torch.zeros(4, 1), torch.zeros(4, dtype=torch.long))
    # negative indices do not wrap around
    with pytest.raises(ValueError, match="states must lie in"):
        baselines.values_at(torch.zeros(3), torch.tensor([[-1, 0]]))
    with pytest.raises(ValueError, match="states must lie in"):
        sampling.Trajectories([[-1]], [[0]], [[0.0]], [[True]])
    # floats where integers are expected, strings, bools, complex numbers
    for bad in (2.5, "3", True):
        with pytest.raises(BAD, match="horizon"):
            m.with_(horizon=bad)
    with pytest.raises(BAD, match="max_steps|n must"):
        sampling.sample_trajectories(m, torch.zeros(4, 2), n=2.0)
    for bad in ("0.9", True, 0.9 + 0j):
        with pytest.raises(BAD, match="gamma"):
            returns.reward_to_go([1.0], bad)
    with pytest.raises(BAD, match="logits"):
        exact.objective(m, torch.zeros(4, 2, dtype=torch.complex128))
    # NaN and inf
    with pytest.raises(ValueError, match="logits_q"):
        losses.categorical_kl(torch.zeros(2), torch.tensor([0.0, math.inf]))
    for kw in (dict(beta=math.nan), dict(eps=math.nan)):
        with pytest.raises(ValueError, match=next(iter(kw))):
            offpolicy.surrogate_objective(m, torch.zeros(4, 2), torch.zeros(4, 2), **kw)
    with pytest.raises(ValueError, match="fill"):
        baselines.fit_tabular_values([[0]], [[1.0]], 1, fill=math.inf)
    # helpers are validated; checks fail when they should
    with pytest.raises(ValueError, match="probs"):
        sampling.inverse_cdf_table([0.5, 0.6])
    with pytest.raises(ValueError, match="pi"):
        exact.softmax_score_expectation(torch.tensor([[2.0, -1.0]]), torch.zeros(1, 2))
    with pytest.raises(ValueError, match="atol"):
        checklist.check_on_policy(torch.zeros(3), torch.ones(3), atol=math.nan)
    with pytest.raises(ValueError, match="logp_stored"):
        checklist.check_on_policy(torch.ones(3), torch.ones(3))
    with pytest.raises(ValueError, match="standard deviations"):
        checklist.check_stochastic(torch.tensor([1.0, math.inf]))
    # deferred validation: checked when called, not when consumed
    with pytest.raises(ValueError, match="n must be a positive integer"):
        sampling.iter_trajectories(m, torch.zeros(4, 2), 0)
    # hangs and memory: refused up front with the size
    with pytest.raises(ValueError, match="horizon must be at most"):
        returns.discount_weights(10**10, 0.9)
    with pytest.raises(BAD, match="max_trajectories"):
        enumeration.all_trajectories(m, torch.zeros(4, 2), max_trajectories=math.nan)
    with pytest.raises(ValueError, match=r"would need .* bytes\) of memory"):
        sampling.sample_trajectories(m, torch.zeros(4, 2), n=10**10)
    with pytest.raises(ValueError, match=r"would need .* of memory"):
        policies.CategoricalMLP(4, 2, hidden=(10**6, 10**6))
    with pytest.raises(ValueError, match="horizon must be at most"):
        mdp.chain(3, horizon=10**9)
    # aliasing: the MDP keeps its own copy
    P = m.transitions.clone()
    m2 = mdp.TabularMDP(P, m.rewards, m.initial, gamma=1.0, horizon=6, terminal=m.terminal)
    J = exact.objective(m2, torch.zeros(4, 2))
    P.zero_()
    assert torch.equal(exact.objective(m2, torch.zeros(4, 2)), J)
    # valid input accepted: numpy seeds, int16 states
    sampling.sample_trajectories(m, torch.zeros(4, 2), n=2, seed=np.int64(0))
    b = sampling.Trajectories(torch.tensor([[0, 1]], dtype=torch.int16), torch.tensor([[0, 1]], dtype=torch.int16),
                              [[0.0, 1.0]], [[True, True]])
    assert b.states.dtype == torch.long


if __name__ == "__main__":  # the survey: share of clear refusals over generated bad inputs, per class
    import collections

    counts = collections.Counter()
    rng = np.random.default_rng(0)
    for spec in SPECS:
        for _ in range(40):
            w = World(S=int(rng.integers(1, 4)), A=int(rng.integers(2, 4)), T=int(rng.integers(1, 5)),
                      N=int(rng.integers(2, 6)), seed=int(rng.integers(0, 2**16)))
            kwargs = spec.args(w)
            arg = sorted(spec.bad)[int(rng.integers(len(spec.bad)))]
            valid = kwargs.get(arg)
            if valid is None and spec.bad[arg] in ("tensor", "int_tensor", "mask"):
                valid = w.values
            def draw(strategy, label=None):
                return strategy.example()

            cls, bad = _bad_value(spec, arg, valid, draw)
            if bad is None and spec.optional(arg):
                continue
            kwargs[arg] = bad
            try:
                _call(spec, kwargs)
                outcome = "silent"
            except BAD as e:
                outcome = "clear" if any(x in str(e) for x in spec.says.get(arg, arg).split("|")) else "unnamed"
            except Exception:  # noqa: BLE001
                outcome = "deep"
            counts[(cls, outcome)] += 1
    total = sum(counts.values())
    clear = sum(v for (c, o), v in counts.items() if o == "clear")
    print(f"{total} bad calls over {len(SPECS)} entry points: {clear / total:.1%} clear refusals")
    for (c, o), v in sorted(counts.items()):
        print(f"  {c:10s} {o:8s} {v}")
