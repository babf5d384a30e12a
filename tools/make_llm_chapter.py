"""Write book/11_llm_losses.ipynb from the cells below (then run tools/setup_cell.py --write
and tools/execute_notebooks.py on it). Kept so that the chapter's source is reviewable as text."""

from __future__ import annotations

import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
OUT = ROOT / "book" / "11_llm_losses.ipynb"

CELLS: list[tuple[str, str, dict]] = []


def md(text: str) -> None:
    CELLS.append(("markdown", text.strip("\n"), {}))


def code(text: str, **meta) -> None:
    CELLS.append(("code", text.strip("\n"), meta))


md(r"""
# LLM losses: GRPO and its variants against the exact gradient

Symbols and conventions: see the [notation page](notation.md).

**The idea.** A language model answering prompt $q$ with response $o$ is a policy over
tokens, and $J = \mathbb E_q\,\mathbb E_{o\sim\pi(\cdot|q)}[R(q,o)]$. Every loss below is
written for groups of $G$ responses to one prompt, and on-policy its gradient is one weight
per response times that response's score:

$$
-\nabla\,\text{loss} = \sum_{i=1}^{G} w_i\,\nabla\log\pi(o_i|q).
$$

The notes say when such an estimate is unbiased: the weight must be the reward minus
something that does not depend on the response, $w_i = R_i - b(q)$ (up to one positive
constant for all prompts). A leave-one-out mean is such a baseline; a group mean that
includes $R_i$ shrinks the weight by $(G-1)/G$; dividing by the group's standard deviation
weights prompts unequally (difficulty); dividing by $|o_i|$ weights responses by their
length. Which of these a loss does decides whether it follows $\nabla J$.

**What you will verify.**
- REINFORCE with the sequence reward and RLOO are unbiased; Dr. GRPO is exactly
  $\frac{G-1}{G L}\nabla J$; mean-centring alone scales by $(G-1)/G$.
- GRPO, DAPO (and TRL's BNPO), GSPO and CISPO follow neither $\nabla J$ nor a multiple of
  it; their exact biases split into a scale, a difficulty and a length part.
- Of the KL estimators $k_1, k_2, k_3$, only $k_1$ used as a reward has the gradient of the
  KL between the response distributions; $k_1$ as a loss has mean gradient zero.
- In training, GRPO's wrong answers grow longer than Dr. GRPO's.
""")

code("""
SEED = 0
G = 4              # responses per prompt
N_GROUPS = 20_000  # sampled groups per loss for the no-bias tests
LEARNERS = 12      # independent learners per loss in the training loop
STEPS = 50         # updates per learner
ALPHA = 0.0001     # false-alarm rate of each no-bias test
""", tags=["parameters"])

code('''
import textwrap

import matplotlib.pyplot as plt
import numpy as np
import scipy.stats
import torch

import pglib
import pglib.claims as claims
from pglib import enumeration, exact, llm
from pglib.display import show_source
from pglib.mdp import sequence_problem

F64 = torch.float64


def seed(k):
    # one independent stream per experiment, all derived from SEED
    return 10 * SEED + k


def show(text):
    print(textwrap.fill(text, 88, subsequent_indent="    "))
''')

md(r"""
## A language model in miniature

`pglib.mdp.sequence_problem()` has three prompts. Prompt $q$ asks for a response with exactly
$q$ copies of the token `b`; responses use the tokens `a`, `b` and an end token, and stop at
$L = 3$ tokens. A response is right when it ends with the end token and holds the target
count. Prompt 0 is easy (the end token alone is right), prompt 2 is hard (only `bb<eos>`),
and every response cut off at $L$ tokens is wrong. The states are (prompt, prefix), so
this is an ordinary `TabularMDP`: 22 states, 3 actions, 45 responses in all, and $J$ and
$\nabla J$ are exact.
""")

code('''
m = sequence_problem()
theta = 0.3 * torch.randn(m.n_states, m.n_actions, dtype=F64,  # the policy checked
                          generator=torch.Generator().manual_seed(0))
grad = exact.gradient(m, theta)
listed = enumeration.all_trajectories(m, theta)
R = listed.rewards.sum(1)
length = listed.mask.sum(1).to(F64)
prompt = m.prompts_of(listed.states)
for q in range(m.n_prompts):
    on = prompt == q
    p = listed.prob[on] / listed.prob[on].sum()
    right = float((p * R[on]).sum())
    len_right = float((p * R[on] * length[on]).sum()) / right
    len_wrong = float((p * (1 - R[on]) * length[on]).sum()) / (1 - right)
    print(f"prompt {q}: P(right) = {right:.3f}, mean length right {len_right:.2f}, "
          f"wrong {len_wrong:.2f}")
with claims.group("The problem"):
    claims.close("llm.problem.objective", float((listed.prob * R).sum()),
                 float(exact.objective(m, theta)), atol=1e-12)
''')

md(r"""
## Every loss, exactly

`pglib.llm` writes each loss once, from its paper, as a function of a batch of groups. Here
is GRPO: the group's rewards are centred and divided by their standard deviation, each
token's term is PPO's clipped ratio times that advantage, and the terms are averaged over
each response's tokens and then over the group.
""")

code('''
show_source(llm.grpo)
''')

md(r"""
With $G = 4$ there are $3 \times 15^4$ groups, few enough to list: `llm.expected_gradient`
evaluates the loss on all of them at once and weights each by its probability, so the mean
gradient of a batch of one group is exact. `llm.response_weights` gives the weight
$w(q, o)$ each response receives on average, and `llm.decompose` fits it, within each
prompt, by $\lambda_q R + b_q$: the mean of $\lambda_q$ is the **scale**, the spread of
$\lambda_q$ across prompts the **difficulty** part, and what is left (weights that differ
between responses with the same reward) the **length** part.
""")

code('''
rows, parts = {}, {}
for name, loss in llm.LOSSES.items():
    w, groups = llm.response_weights(loss, m, theta, G)
    d = llm.decompose(w, groups, m, theta)
    rows[name] = llm.verdict(d["mean"], grad)
    parts[name] = d
norm = float(grad.norm())
print(f"{'loss':10s} {'verdict':18s} {'scale':>6s} {'|bias|':>7s} {'angle':>6s}"
      f"   bias parts: {'scale':>6s} {'diff.':>6s} {'length':>6s}")
for name, v in rows.items():
    d = parts[name]
    share = [float(d[k].norm()) / norm for k in ("scale", "difficulty", "length")]
    print(f"{name:10s} {v['verdict']:18s} {v['scale']:6.3f} {v['bias_share']:7.1%} "
          f"{v['angle']:5.1f}°   {'':12s} "
          + " ".join(f"{x:6.1%}" for x in share))
''')

md(r"""
The bias is given as a share of $|\nabla J|$, and the angle is between the mean gradient
and $\nabla J$. REINFORCE and RLOO are exact. Dr. GRPO drops the standard deviation and
divides the token sum by the constant $G L$, so its weight is
$\frac{G-1}{G L}(R - V(q))$: a positive multiple of $\nabla J$, with no angle at all. The
$(G-1)/G$ is the price of a group mean that includes the response itself (Kool et al.,
2019, and the RLOO paper make the same point). GRPO and GSPO have the same gradient
on-policy (GSPO's sequence ratio differentiates to $\nabla\log\pi(o)/|o|$), as do DAPO,
TRL's `bnpo` and CISPO (token-mean normalization). All four are off $\nabla J$ by several
degrees, and the decomposition says why: the standard deviation gives the prompts unequal
weights $\lambda_q$, and the $1/|o|$ (or the token count of the group) gives long
responses less weight than short ones with the same reward.
""")

code('''
def mean_of(loss, **options):
    return llm.expected_gradient(loss, m, theta, G, **options)


centred = llm.group_loss  # mean-centred advantage; std and token reduction are options
with claims.group("Each loss, exactly"):
    claims.close("llm.reinforce.exact", mean_of(llm.reinforce), grad, atol=1e-12)
    claims.close("llm.rloo.exact", mean_of(llm.rloo), grad, atol=1e-12)
    claims.close("llm.dr_grpo.scale", mean_of(llm.dr_grpo),
                 (G - 1) / (G * m.horizon) * grad, atol=1e-12)
    claims.close("llm.mean_centring.scale",
                 mean_of(centred, scale=None, reduction="sequence_sum"),
                 (G - 1) / G * grad, atol=1e-12)
    claims.close("llm.gspo.equals_grpo_on_policy", parts["gspo"]["mean"],
                 parts["grpo"]["mean"], atol=1e-12)
    claims.close("llm.cispo.equals_dapo_on_policy", parts["cispo"]["mean"],
                 parts["dapo"]["mean"], atol=1e-12)
    for name in ("grpo", "dapo"):
        v = rows[name]
        claims.holds(f"llm.{name}.off_direction", v["off_scale_share"] > 0.01,
                     f"{v['off_scale_share']:.1%} of |grad J| off its direction, "
                     f"angle {v['angle']:.0f}°",
                     "more than 1% of |grad J| off its direction", fail_rate=0.0)
    d = parts["grpo"]
    claims.close("llm.decomposition.sums", d["scale"] + d["difficulty"] + d["length"],
                 d["mean"] - grad, atol=1e-12)
''')

md(r"""
The two choices can be separated. With the constant token normalization of Dr. GRPO but
the division by the standard deviation kept, the length part vanishes and only the
difficulty part is left; with the $1/|o|$ of GRPO but no standard deviation, the
difficulty part comes from the lengths alone (the right answer to the hard prompt is
long).
""")

code('''
print(f"{'advantage':12s} {'reduction':14s} {'angle':>6s} {'diff.':>6s} {'length':>6s}"
      "   lambda_q (prompts 0, 1, 2)")
factorial = {}
for scale in ("std", None):
    for reduction in ("constant", "sequence_mean", "token_mean"):
        w, groups = llm.response_weights(centred, m, theta, G, scale=scale,
                                         reduction=reduction)
        d = llm.decompose(w, groups, m, theta)
        v = llm.verdict(d["mean"], grad)
        factorial[scale, reduction] = d
        lam = ", ".join(f"{x:.3f}" for x in d["lambdas"].tolist())
        kind = "÷ std" if scale else "centred"
        print(f"{kind:12s} {reduction:14s} {v['angle']:5.1f}° "
              f"{float(d['difficulty'].norm()) / norm:6.1%} "
              f"{float(d['length'].norm()) / norm:6.1%}   {lam}")
with claims.group("Difficulty and length, separated"):
    d = factorial["std", "constant"]
    claims.close("llm.std_only.no_length_part", d["length"], torch.zeros_like(grad),
                 atol=1e-12)
    claims.holds("llm.std_only.difficulty_part",
                 float(d["difficulty"].norm()) > 0.01 * norm,
                 f"difficulty part {float(d['difficulty'].norm()) / norm:.1%}"
                 " of |grad J|",
                 "more than 1% of |grad J|", fail_rate=0.0)
''')

md(r"""
## The same verdicts from samples

The exact means are one thing; a reader's loss is code. `llm.group_gradients` gives the
gradient of each sampled group (a batch of its own) in one backward pass, and the no-bias
test of the earlier chapters is applied to them: unbiased losses pass, and the biased ones
are caught with power stated at their exact bias.
""")

code('''
traj = pglib.sample_trajectories(m, theta, N_GROUPS * G, seed=seed(1), group_size=G)
samples = {name: llm.group_gradients(loss, m, theta, traj, G)
           for name, loss in llm.LOSSES.items()}
mc = llm.group_gradients(centred, m, theta, traj, G, scale=None,
                         reduction="sequence_sum")
with claims.group("Sampled groups"):
    claims.unbiased("llm.reinforce.unbiased", samples["reinforce"], grad, alpha=ALPHA)
    claims.unbiased("llm.rloo.unbiased", samples["rloo"], grad, alpha=ALPHA)
    claims.unbiased("llm.mean_centring.unbiased_rescaled", mc * G / (G - 1), grad,
                    alpha=ALPHA)
    for name in ("dr_grpo", "grpo", "dapo", "gspo", "cispo"):
        claims.biased(f"llm.{name}.detected", samples[name], grad, alpha=ALPHA,
                      true_mean=parts[name]["mean"])
''')

md(r"""
`pglib.check_loss` takes a loss written for a reader's own batches and the same
`group_size`; it samples groups, tests, and reports the scale. RLOO passes; GRPO is caught,
and its scale along $\nabla J$ is below one.
""")

code('''
reports = {}
for name in ("rloo", "grpo"):
    reports[name] = pglib.check_loss(llm.for_check(llm.LOSSES[name], G), m, theta,
                                     batch_size=2 * G, n_batches=300, seed=seed(2),
                                     alpha=ALPHA, group_size=G)
    print(f"{name}:")
    print(textwrap.indent(str(reports[name]), "  "))
with claims.group("check_loss with groups"):
    claims.holds("llm.check_loss.rloo_passes", reports["rloo"].unbiased,
                 "RLOO: not rejected", "check_loss does not reject RLOO",
                 fail_rate=ALPHA)
''')

md(r"""
## KL to a reference model

The penalty $\beta\,\mathrm{KL}(\pi_\theta\|\pi_{\mathrm{ref}})$ is estimated per token
with $r = \pi_{\mathrm{ref}}/\pi_\theta$ at the sampled token: $k_1 = -\log r$,
$k_2 = \frac12(\log r)^2$, $k_3 = r - 1 - \log r$. Each can be used as a **loss**
(summed over the tokens and differentiated through $\log\pi_\theta$, as GRPO does with
$k_3$) or as a **reward** (subtracted from the return, held constant, and pushed through
the score function, as PPO for RLHF does with $k_1$). The target is the gradient of the KL
between the two response distributions, computed by listing the 45 responses.
""")

code('''
reference = theta + 0.5 * torch.randn(theta.shape, dtype=F64,
                                      generator=torch.Generator().manual_seed(1))
t = theta.clone().requires_grad_(True)
(grad_kl,) = torch.autograd.grad(llm.exact_kl(m, t, reference), t)
kl_means = {}
for use, fn in (("reward", llm.kl_reward_loss), ("loss", llm.kl_loss)):
    for k in ("k1", "k2", "k3"):
        mean = -llm.expected_gradient(fn, m, theta, 1, logits_ref=reference,
                                      estimator=k)
        kl_means[k, use] = mean
        nonzero = float(mean.norm()) > 1e-9 * float(grad_kl.norm())
        v = llm.verdict(mean, grad_kl) if nonzero else None
        text = ("mean gradient 0" if v is None else
                f"{v['verdict']:18s} bias {v['bias_share']:6.1%}, "
                f"angle {v['angle']:5.1f}°")
        print(f"{k} as a {use:6s}: {text}")
with claims.group("KL estimators"):
    claims.close("llm.kl.k1_reward_exact", kl_means["k1", "reward"], grad_kl,
                 atol=1e-12)
    claims.close("llm.kl.k1_loss_zero", kl_means["k1", "loss"],
                 torch.zeros_like(grad_kl), atol=1e-12)
    for k in ("k2", "k3"):
        for use in ("reward", "loss"):
            off = float((kl_means[k, use] - grad_kl).norm() / grad_kl.norm())
            claims.holds(f"llm.kl.{k}_{use}_biased", off > 0.01,
                         f"bias {off:.1%} of |grad KL|", "more than 1% of |grad KL|",
                         fail_rate=0.0)
''')

md(r"""
Only $k_1$ as a reward is exact: its expectation is the KL and it does not depend on
$\theta$ through anything but the sampling. As a loss, $k_1$'s gradient is the score, whose
mean is zero. $k_3$ as a loss has the per-token gradient $(1 - r)\nabla\log\pi$, whose
mean is the gradient of the *reverse* KL at each visited state, and it ignores the KL of
the tokens still to come; $k_2$ as a loss gets the token's own term right and also misses
the tokens to come. With one token per response the last point disappears, and $k_2$ as a
loss is then exact:
""")

code('''
one = sequence_problem(targets=(0,), max_length=1)
th1 = 0.5 * torch.randn(one.n_states, one.n_actions, dtype=F64,
                        generator=torch.Generator().manual_seed(2))
ref1 = th1 + 0.5 * torch.randn(th1.shape, dtype=F64,
                               generator=torch.Generator().manual_seed(3))
t1 = th1.clone().requires_grad_(True)
(g1,) = torch.autograd.grad(llm.exact_kl(one, t1, ref1), t1)
k2_one = -llm.expected_gradient(llm.kl_loss, one, th1, 1, logits_ref=ref1,
                                estimator="k2")
with claims.group("KL estimators, one token"):
    claims.close("llm.kl.k2_loss_one_token", k2_one, g1, atol=1e-12)
''')

md(r"""
## One step off-policy

When the data come from the previous policy $\theta_{\mathrm{old}}$, the losses use
per-token ratios $\rho_t = \pi_\theta/\pi_{\mathrm{old}}$ and clip them. The exact mean
gradient at $\theta$ of a group sampled under $\theta_{\mathrm{old}}$ is compared with
$\nabla J(\theta)$. Even Dr. GRPO, a multiple of $\nabla J$ on-policy, leaves its direction:
a product of per-token ratios would be needed to reweight a whole response, and PPO-style
losses use one token's ratio at a time.
""")

code('''
theta_new = theta + 0.3 * torch.randn(theta.shape, dtype=F64,
                                      generator=torch.Generator().manual_seed(4))
grad_new = exact.gradient(m, theta_new)
off_rows = {}
for name in ("dr_grpo", "grpo", "dapo", "gspo", "cispo"):
    mean = llm.expected_gradient(llm.LOSSES[name], m, theta_new, G, logits_old=theta)
    off_rows[name] = v = llm.verdict(mean, grad_new)
    print(f"{name:8s} off-policy: {v['verdict']:18s} scale {v['scale']:.3f}, "
          f"angle {v['angle']:4.1f}° (on-policy {rows[name]['angle']:4.1f}°)")
with claims.group("One step off-policy"):
    v = off_rows["dr_grpo"]
    claims.holds("llm.dr_grpo.off_policy_direction", v["off_scale_share"] > 0.001,
                 f"{v['off_scale_share']:.2%} of |grad J| off its direction",
                 "more than 0.1% of |grad J| off its direction", fail_rate=0.0)
''')

md(r"""
## The consequence in training

Twelve learners per loss start from the uniform policy and take 50 steps, each on 8 groups
of 4; every step has the same length (the loss sets only the direction), so the comparison
is between directions. $J$ and the mean lengths of right and wrong answers are exact at
every step. RLOO is not drawn: on every batch Dr. GRPO's gradient is exactly
$\frac{G-1}{G L}$ times RLOO's, so with steps of one length their runs coincide.
""")

code('''
first = listed.states[:, 0]


def exact_stats(th):
    token = torch.log_softmax(th, -1)[listed.states, listed.actions]
    logp = torch.where(listed.mask, token, torch.zeros((), dtype=F64)).sum(1)
    p = torch.exp(logp) * m.initial[first]
    J = float((p * R).sum())
    return (J, float((p * R * length).sum()) / J,
            float((p * (1 - R) * length).sum()) / (1 - J))


def train(loss, learner):
    th = torch.zeros(m.n_states, m.n_actions, dtype=F64)
    gen = torch.Generator().manual_seed(seed(3) * 1000 + learner)
    out = [exact_stats(th)]
    for _ in range(STEPS):
        batch = pglib.sample_trajectories(m, th, 8 * G, generator=gen, group_size=G)
        g = llm.group_gradients(loss, m, th, batch, G).mean(0)
        th = th + 0.2 * g / g.norm().clamp(min=1e-12)
        out.append(exact_stats(th))
    return out


runs = {name: np.array([train(llm.LOSSES[name], k) for k in range(LEARNERS)])
        for name in ("grpo", "dr_grpo")}
batch = pglib.sample_trajectories(m, theta, 8 * G, seed=seed(4), group_size=G)
ratio_gap = (llm.group_gradients(llm.dr_grpo, m, theta, batch, G)
             - (G - 1) / (G * m.horizon)
             * llm.group_gradients(llm.rloo, m, theta, batch, G))
''')

code('''
fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
steps = np.arange(STEPS + 1)
for name, color in (("grpo", "tab:red"), ("dr_grpo", "tab:blue")):
    h = runs[name]
    axes[0].plot(steps, h[:, :, 0].mean(0), color=color, label=name)
    band = np.quantile(h[:, :, 0], [0.1, 0.9], axis=0)
    axes[0].fill_between(steps, *band, color=color, alpha=0.2)
    axes[1].plot(steps, h[:, :, 2].mean(0), color=color, label=f"{name}: wrong answers")
    axes[1].plot(steps, h[:, :, 1].mean(0), color=color, ls="--",
                 label=f"{name}: right answers")
axes[0].set(xlabel="update", ylabel="exact J", title="J (mean, 10-90% of learners)")
axes[1].set(xlabel="update", ylabel="mean length (tokens)", title="Exact mean lengths")
axes[0].legend()
axes[1].legend(fontsize=8)
fig.tight_layout()
plt.show()
''', mystnb={"image": {"alt": "Two panels over 50 updates. Left: the exact objective J of "
                       "twelve learners per loss, GRPO in red and Dr. GRPO in blue, mean "
                       "and 10-90% band; both rise from about 0.23 to about 0.9. Right: "
                       "the exact mean length of wrong answers (solid) and of right "
                       "answers (dashed); GRPO's wrong answers end longer than Dr. GRPO's."}})

code('''
final = {name: h[:, -1] for name, h in runs.items()}
diff = final["grpo"][:, 2].mean() - final["dr_grpo"][:, 2].mean()
se = np.sqrt(sum(final[n][:, 2].var(ddof=1) / LEARNERS for n in final))
show(f"After {STEPS} updates: J {final['grpo'][:, 0].mean():.2f} (GRPO) and "
     f"{final['dr_grpo'][:, 0].mean():.2f} (Dr. GRPO); wrong answers "
     f"{final['grpo'][:, 2].mean():.2f} and {final['dr_grpo'][:, 2].mean():.2f} "
     "tokens long.")
with claims.group("Training"):
    claims.close("llm.dr_grpo.rloo_multiple_per_batch", ratio_gap,
                 torch.zeros_like(ratio_gap), atol=1e-12)
    claims.holds("llm.train.grpo_longer_wrong", diff > 0,
                 f"GRPO's wrong answers longer by {diff:.2f} tokens "
                 f"({diff / se:.0f} se)", "a positive difference",
                 fail_rate=float(scipy.stats.norm.sf(diff / se)))
''')

md(r"""
GRPO divides each response's terms by its length, so a long wrong answer is pushed down
less per token than a short one, and wrong answers drift longer: the length bias that
Liu et al. (2025) describe, measured here as an exact mean length on a problem where every
response is listed.
""")

md(r"""
## Mistakes from public LLM code

`pglib.llm.MISTAKES` holds changes to these losses that were reported in public trackers,
each with its source; every one is caught by `check_loss` on grouped batches (the library's
tests run each). Their exact verdicts with $G = 4$:
""")

code("""
with claims.group("Mistakes from public code"):
    for mistake in llm.MISTAKES.values():
        v = llm.verdict(llm.expected_gradient(mistake.loss, m, theta, G), grad)
        print(f"{mistake.name:26s} {v['verdict']:18s} angle {v['angle']:4.1f}°  "
              f"{mistake.source}")
        claims.holds(f"llm.zoo.{mistake.name}", v["verdict"] == mistake.expect,
                     f"{mistake.name}: {v['verdict']}", mistake.expect, fail_rate=0.0)
""")

md(r"""
## TRL's GRPO trainer, audited

`tools/trl_audit.py` builds a one-layer Llama from a config (vocabulary `<eos>`, `a`, `b`,
a tokenizer made in code, nothing downloaded) whose next-token logits at the 21 contexts
of this problem are a tabular policy, so $\nabla J$ with respect to its parameters is exact
by the chain rule. TRL's own `GRPOTrainer` then samples each batch (one group of 4) with
the model and computes its loss for every `loss_type` it ships; each gradient is one
sample. On every batch TRL's gradient equals the matching `pglib.llm` loss's to float32
rounding, so the exact mean of that loss is TRL's exact mean. The committed results:
""")

code("""
import json
import pathlib

audit_file = pathlib.Path("..") / "benchmarks" / "results" / "trl_audit.json"
if not audit_file.exists():  # run from the repository root
    audit_file = pathlib.Path("benchmarks") / "results" / "trl_audit.json"
trl_audit = json.loads(audit_file.read_text())
print(f"TRL {trl_audit['trl']}, {trl_audit['rows'][0]['batches']} batches of one group "
      f"of {trl_audit['group_size']}")
print(f"{'configuration':20s} {'exact verdict':18s} {'scale':>6s} {'|bias|':>7s} "
      f"{'angle':>6s}  sampled")
for row in trl_audit["rows"]:
    e, s = row["exact"], row["sampled"]
    seen = ("unbiased" if s["unbiased"] else
            "scale only" if not s["off_direction_rejected"] else "biased")
    print(f"{row['label']:20s} {e['verdict']:18s} {e['scale']:6.3f} "
          f"{e['bias_share']:7.1%} {e['angle']:5.1f}°  {seen}")
with claims.group("TRL audit (committed results)"):
    worst = max(row["max_relative_difference_to_pglib"] for row in trl_audit["rows"])
    claims.holds("llm.trl.matches_pglib", worst < 1e-5,
                 f"largest relative difference per batch {worst:.0e}",
                 "below 1e-5 (float32 rounding)", fail_rate=0.0)
    agree = all(row["sampled"]["unbiased"] is (row["exact"]["verdict"] == "grad J")
                for row in trl_audit["rows"])
    claims.holds("llm.trl.no_loss_type_unbiased", agree and not any(
        row["sampled"]["unbiased"] for row in trl_audit["rows"]),
        "every loss type rejected as an estimate of grad J", "all rejected",
        fail_rate=0.0)
""")

md(r"""
No `loss_type` of TRL estimates $\nabla J$ itself; with `scale_rewards="none"`, `dr_grpo`
estimates exactly $\frac{G-1}{G L}\nabla J$. The default `scale_rewards="group"` keeps the
division by the standard deviation for every loss type, `dr_grpo` included. `cispo` with the
default `epsilon_high` (which falls back to `epsilon = 0.2`) clamps every on-policy ratio of
1 down to 0.2, because TRL's CISPO uses `epsilon_high` as the ratio's upper bound itself: its
gradient is then 0.2 times the token-mean loss's (TRL's documentation recommends 5.0, with
which it is the token-mean loss's). `sapo` and GSPO (`importance_sampling_level="sequence"`)
have GRPO's gradient on-policy, `vespo` DAPO's, and `luspo` drops the $1/|o|$ but keeps the
standard deviation.
""")

md(r"""
## The chapter's false-alarm budget

The three no-bias tests fail a correct build with probability `ALPHA` each, the
`check_loss` verdict on RLOO likewise; each negative control fails with one minus its power
at its exact bias; the training comparison with the normal tail at its measured
difference. The exact identities cannot fail by chance. By the union bound:
""")

code('''
_ = claims.within_budget("llm.budget", 0.001)
''')


def main() -> int:
    nb = {"cells": [], "metadata": {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"}}, "nbformat": 4, "nbformat_minor": 5}
    for i, (kind, text, meta) in enumerate(CELLS):
        cell = {"cell_type": kind, "id": f"c{i:02d}", "metadata": dict(meta),
                "source": text.splitlines(keepends=True)}
        if kind == "code":
            cell.update(execution_count=None, outputs=[])
        nb["cells"].append(cell)
    OUT.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
