"""What the policy gradients of Stable-Baselines3 (A2C, PPO) and TorchRL (ReinforceLoss) estimate.

Each library's own loss runs on pglib.verify.bug_zoo.problem() (3 states and a terminal goal, 3 actions,
gamma 0.8, horizon 4) seen through gymnasium with one-hot observations and a linear policy head
(logits = W onehot(s) + b: a tabular softmax policy). Settings as close to REINFORCE as each
library allows: no entropy term, no value loss (SB3: vf_coef=0, so the critic keeps its initial
weights), Monte Carlo returns (SB3: gae_lambda=1; TorchRL: the TD(1) estimator), no advantage
normalization, no gradient clipping, learning rate 0 (every batch sees the same policy), one
rollout of 32 steps per gradient. The gradient of the library's policy loss with respect to W and b
is recorded per rollout and compared with the exact gradient by the chain rule
(pglib.verify.gym_bridge.exact_parameter_gradient), and with the exact mean of the estimator that drops
gamma^t (pglib.expected.direction(..., discount_score=False)).
The last two rows are controls on the fixed-length variant of the problem, where a rollout of 32
steps holds 8 whole episodes, so no return is cut and bootstrapped by the critic.
Results: pglib/data/library_audit.json.

    python tools/library_audit.py [--batches 1000]
"""

from __future__ import annotations

import argparse
import json
import pathlib

import numpy as np
import torch

from pglib import exact, expected, stats
from pglib.verify import bug_zoo, gym_bridge, unbiased

OUT = (
    pathlib.Path(__file__).resolve().parents[1]
    / "pglib"
    / "data"
    / "library_audit.json"
)
STEPS, ALPHA = 32, 0.01
NO_CUT = " (control: 4-step episodes, none cut)"


def _directions(mdp, head, logits_of):
    params = list(head.parameters())
    L = gym_bridge.state_logits(
        head, mdp.n_states, one_hot=True, logits_of=logits_of
    ).double()
    gJ = torch.autograd.grad(exact.objective(mdp, L), params, retain_graph=True)
    d = expected.direction(mdp, L.detach(), discount_score=False)
    gd = torch.autograd.grad(L, params, grad_outputs=d)
    flat = lambda gs: torch.cat([g.reshape(-1).double() for g in gs])  # noqa: E731
    return flat(gJ), flat(gd)


def _summary(samples, gJ, gd, mdp):
    # float32 gradients (SB3) are tested as float32: the tests then allow float32 rounding in the
    # directions where the samples do not vary
    gJ, gd = gJ.to(samples.dtype), gd.to(samples.dtype)
    out = {}
    for name, target in (("grad_J", gJ), ("dropped_gamma_t", gd)):
        r = unbiased.report_from_samples(
            "library",
            samples[:, None, :],
            target[None, :],
            ALPHA,
            mdp,
            None,
            None,
            None,
            "",
            state_names=("parameters",),
        )
        out[name] = dict(
            unbiased=r.unbiased,
            p=r.p_value,
            scale=r.scale,
            scale_se=r.scale_se,
            up_to_scale=r.unbiased_up_to_scale,
            orthogonal_p=r.orthogonal_p_value,
            statistic=r.statistic,
            orthogonal_statistic=r.orthogonal_statistic,
            detectable_bias=r.detectable_bias,
            bias_norm=float((r.mean - r.gradient).norm()),
            target_norm=float(target.norm()),
        )
        # the part of the mean that no positive multiple of the target explains
        m = r.mean.reshape(-1)
        c = float(m @ target / (target @ target))
        out[name]["residual_norm"] = float((m - c * target).norm())
    out["cosine_with_grad_J"] = stats.cosine_similarity(samples.mean(0), gJ)
    out["cosine_with_dropped_gamma_t"] = stats.cosine_similarity(samples.mean(0), gd)
    return out


def sb3(algo: str, n_batches: int, seed: int = 0, fixed_length: bool = False) -> dict:
    from stable_baselines3 import A2C, PPO

    mdp = bug_zoo.problem(fixed_length=fixed_length)
    Base = {"A2C": A2C, "PPO": PPO}[algo]

    class Recording(Base):
        def train(self):
            super().train()
            self.recorded.append(
                torch.cat(
                    [-p.grad.reshape(-1) for p in self.policy.action_net.parameters()]
                )
            )

    extra = dict(n_epochs=1, batch_size=STEPS, clip_range=10.0) if algo == "PPO" else {}
    model = Recording(
        "MlpPolicy",
        gym_bridge.one_hot_env(mdp),
        n_steps=STEPS,
        gamma=mdp.gamma,
        gae_lambda=1.0,
        ent_coef=0.0,
        vf_coef=0.0,
        max_grad_norm=1e12,
        learning_rate=0.0,
        normalize_advantage=False,
        policy_kwargs=dict(net_arch=[]),
        seed=seed,
        device="cpu",
        **extra,
    )
    with torch.no_grad():  # a non-uniform policy (SB3 initializes the head near zero)
        model.policy.action_net.weight.copy_(bug_zoo.problem_logits().T.float())
        model.policy.action_net.bias.zero_()
    model.recorded = []
    model.learn(total_timesteps=STEPS * n_batches)
    head = model.policy.action_net
    gJ, gd = _directions(mdp, head, lambda m, obs: m(obs.float()))
    samples = torch.stack(model.recorded)
    settings = (
        f"{algo}('MlpPolicy', net_arch=[], n_steps={STEPS}, gamma={mdp.gamma}, gae_lambda=1, ent_coef=0, "
        f"vf_coef=0, max_grad_norm=1e12, learning_rate=0, normalize_advantage=False"
        + (", n_epochs=1, batch_size=32, clip_range=10" if algo == "PPO" else "")
        + ")"
    )
    return dict(
        library=f"stable-baselines3 {algo}" + (NO_CUT if fixed_length else ""),
        settings=settings,
        n=len(samples),
        **_summary(samples, gJ, gd, mdp),
    )


def torchrl_reinforce(
    n_batches: int, seed: int = 0, fixed_length: bool = False
) -> dict:
    from tensordict import TensorDict
    from tensordict.nn import TensorDictModule
    from torchrl.modules import ProbabilisticActor, ValueOperator
    from torchrl.objectives import ReinforceLoss, ValueEstimators
    from torch.distributions import Categorical

    from pglib.sampling import sample_trajectories

    mdp = bug_zoo.problem(fixed_length=fixed_length)
    S, A = mdp.n_states, mdp.n_actions
    head = torch.nn.Linear(S, A).double()
    with torch.no_grad():
        head.weight.copy_(bug_zoo.problem_logits().T)
        head.bias.zero_()
    actor = ProbabilisticActor(
        TensorDictModule(head, in_keys=["observation"], out_keys=["logits"]),
        in_keys=["logits"],
        distribution_class=Categorical,
        return_log_prob=True,
    )
    critic_net = torch.nn.Linear(S, 1).double()
    torch.manual_seed(seed)
    critic = ValueOperator(
        critic_net, in_keys=["observation"]
    )  # untrained, like SB3's with vf_coef=0
    loss = ReinforceLoss(actor, critic)
    loss.make_value_estimator(ValueEstimators.TD1, gamma=mdp.gamma)
    # a collector's stream: consecutive episodes, cut every STEPS steps (as frames_per_batch does)
    traj = sample_trajectories(
        mdp, bug_zoo.problem_logits(), n=STEPS * n_batches, seed=seed
    )
    keep = traj.mask.reshape(-1)
    s = traj.states.reshape(-1)[keep]
    a = traj.actions.reshape(-1)[keep]
    r = traj.rewards.reshape(-1)[keep]
    last = torch.zeros_like(traj.mask)
    last[torch.arange(traj.n), traj.lengths - 1] = True
    done = last.reshape(-1)[keep]
    nxt = torch.cat([s[1:], s[:1]])
    nxt = torch.where(
        done, torch.full_like(s, S - 1), nxt
    )  # after the last step: the goal (or horizon)
    eye = torch.eye(S, dtype=torch.float64)
    rows = []
    for b in range(n_batches):
        sl = slice(b * STEPS, (b + 1) * STEPS)
        n = len(s[sl])
        td = TensorDict(
            {
                "observation": eye[s[sl]],
                "action": a[sl],
                "next": {
                    "observation": eye[nxt[sl]],
                    "reward": r[sl][:, None],
                    "done": done[sl][:, None],
                    "terminated": done[sl][:, None],
                },
            },
            [n],
        )
        head.zero_grad()
        out = loss(td)
        out["loss_actor"].backward()
        rows.append(torch.cat([-p.grad.reshape(-1) for p in head.parameters()]))
    gJ, gd = _directions(mdp, head, lambda m, obs: m(obs))
    settings = (
        "ReinforceLoss(ProbabilisticActor(Linear(4, 3), Categorical), ValueOperator(Linear(4, 1), "
        f"untrained)), value estimator TD1 with gamma={mdp.gamma}, reduction 'mean', batches of "
        f"{STEPS} consecutive steps"
    )
    return dict(
        library="torchrl ReinforceLoss" + (NO_CUT if fixed_length else ""),
        settings=settings,
        n=len(rows),
        **_summary(torch.stack(rows), gJ, gd, mdp),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=1000)
    args = ap.parse_args()
    import stable_baselines3
    import torchrl

    rows = [
        sb3("A2C", args.batches),
        sb3("PPO", args.batches),
        torchrl_reinforce(args.batches),
        # controls: every episode has 4 steps, so a 32-step rollout never cuts one
        sb3("A2C", args.batches, fixed_length=True),
        torchrl_reinforce(args.batches, fixed_length=True),
    ]
    versions = dict(
        stable_baselines3=stable_baselines3.__version__,
        torchrl=torchrl.__version__,
        tensordict=__import__("tensordict").__version__,
        torch=torch.__version__,
        numpy=np.__version__,
    )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(
        json.dumps(dict(versions=versions, alpha=ALPHA, rows=rows), indent=1) + "\n"
    )
    for row in rows:
        print(
            row["library"],
            {k: row[k] for k in ("cosine_with_grad_J", "cosine_with_dropped_gamma_t")},
        )
        print("   vs grad J:", row["grad_J"])
        print("   vs dropped:", row["dropped_gamma_t"])


if __name__ == "__main__":
    main()
