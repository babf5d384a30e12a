"""What TRL's GRPO losses estimate: each ``loss_type`` of ``trl.GRPOTrainer`` against the exact gradient.

A tiny causal language model (a one-layer Llama built from a config, float64, vocabulary
``<eos>, a, b``; tokenizer made in code, nothing downloaded) answers the three prompts of
``pglib.mdp.sequence_problem()`` (prompts ``"a a"``, ``"a b"``, ``"b a"`` ask for 0, 1, 2 copies of
``b``; at most 3 completion tokens). Its logits at the 21 (prompt, prefix) contexts are a tabular
policy ``theta_tab`` ``[S, A]``, and every quantity in parameter space follows by the chain rule:

- exact: ``grad J`` over all 45 responses, and the exact mean of the pglib loss that matches the
  loss type (``pglib.llm.expected_gradient``, every group of ``G`` listed);
- sampled: TRL's own code draws each batch (``GRPOTrainer._generate_and_score_completions``:
  generation with the model, rewards, TRL's advantages) and computes its loss
  (``GRPOTrainer.compute_loss``); the gradient with respect to the model's parameters is one
  sample. Learning rate 0: every batch sees the same model.

Every parameter gradient is ``jac^T g_tab`` for a tabular gradient ``g_tab`` with rows summing to
zero (the loss sees the parameters only through the logits at the listed contexts, by a softmax),
so TRL's gradients are projected on an orthonormal basis of that span (TRL's float32 advantages
leave rounding outside it, which would look like a bias of zero variance). Per batch it is compared
with the gradient of the matching pglib.llm loss on the same completions (the largest relative
difference is reported); over batches the gradients are tested against ``grad J`` (Hotelling,
pglib.stats), their component off ``grad J`` for mean zero, and against the exact mean of the
matching pglib loss.

Results: benchmarks/results/trl_audit.json.

    python tools/trl_audit.py [--batches 600] [--only grpo,dapo]
"""

from __future__ import annotations

import argparse
import json
import math
import pathlib
import tempfile
import time
import warnings

import numpy as np
import torch

from pglib import exact, llm, stats
from pglib.mdp import sequence_problem
from pglib.sampling import Trajectories

OUT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "trl_audit.json"
F64 = torch.float64
G = 4
ALPHA = 0.01
PROMPTS = ("a a", "a b", "b a")  # prompt q asks for q copies of "b"
TOKENS = {"<eos>": 0, "a": 1, "b": 2}


def _token_mean_scaled(c):
    def f(b, per_group=False):
        return c * llm.group_loss(b, per_group, scale="std", reduction="token_mean")
    return f


#: (label, GRPOConfig options, the pglib.llm loss it should equal on-policy, why)
CONFIGS = [
    ("grpo", dict(loss_type="grpo"), llm.grpo, "GRPO: ÷ std, mean per response"),
    ("dr_grpo", dict(loss_type="dr_grpo"),
     lambda b, per_group=False: llm.group_loss(b, per_group, scale="std", reduction="constant"),
     "loss_type dr_grpo with the default scale_rewards='group': still ÷ std"),
    ("dr_grpo+scale_none", dict(loss_type="dr_grpo", scale_rewards="none"), llm.dr_grpo,
     "Dr. GRPO as in its paper"),
    ("dapo", dict(loss_type="dapo"), llm.dapo, "the default loss type"),
    ("bnpo", dict(loss_type="bnpo"), llm.bnpo, "token mean over the local batch"),
    ("cispo", dict(loss_type="cispo"), _token_mean_scaled(0.2),
     "epsilon_high defaults to epsilon = 0.2, and cispo clamps the ratio at epsilon_high itself"),
    ("cispo+eps_high5", dict(loss_type="cispo", epsilon_high=5.0), llm.cispo,
     "with the documented epsilon_high = 5.0"),
    ("sapo", dict(loss_type="sapo"), llm.grpo, "soft gate; on-policy its derivative is 1"),
    ("vespo", dict(loss_type="vespo"), llm.dapo, "gamma weight 1 on-policy"),
    ("luspo", dict(loss_type="luspo", importance_sampling_level="sequence"),
     lambda b, per_group=False: llm.group_loss(b, per_group, scale="std", reduction="sequence_sum"),
     "sequence ratio times length: no 1/|o|"),
    ("gspo", dict(loss_type="grpo", importance_sampling_level="sequence"), llm.gspo,
     "GSPO: importance_sampling_level='sequence'"),
    ("grpo+scale_batch", dict(loss_type="grpo", scale_rewards="batch"), llm.grpo,
     "÷ the batch std: with one group per batch, the group's std, as GRPO"),
]


def tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(vocab=dict(TOKENS), unk_token="<eos>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>", pad_token="<eos>",
                                   padding_side="left")


def model(seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=3, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=16,
                         tie_word_embeddings=False, eos_token_id=0, pad_token_id=0, bos_token_id=None,
                         initializer_range=0.1)
    return LlamaForCausalLM(config).to(F64)


def contexts(m):
    """Token ids of every non-terminal state's context (prompt + prefix), by state."""
    out = {}
    for s, name in enumerate(m.state_names):
        if name == "end":
            continue
        q, prefix = name[1:].split(":")
        out[s] = [TOKENS[t] for t in PROMPTS[int(q)].split()] + [TOKENS[c] for c in prefix]
    return out


def tabular_logits(net, m, ctx) -> torch.Tensor:
    """theta_tab [S, A]: the model's next-token logits at each state's context (end state: 0)."""
    rows = [None] * m.n_states
    by_len = {}
    for s, ids in ctx.items():
        by_len.setdefault(len(ids), []).append(s)
    for n, states in by_len.items():
        ids = torch.tensor([ctx[s] for s in states])
        logits = net(input_ids=ids, attention_mask=torch.ones_like(ids)).logits[:, -1, :]
        for s, row in zip(states, logits):
            rows[s] = row
    rows[m.n_states - 1] = torch.zeros(3, dtype=F64)
    return torch.stack(rows)


def trainer(net, tok, options, batches: int):
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    def reward(prompts, completions, completion_ids, **kwargs):
        out = []
        for p, ids in zip(prompts, completion_ids):
            target = PROMPTS.index(p)
            ended = len(ids) > 0 and ids[-1] == 0
            out.append(float(ended and sum(1 for t in ids if t == 2) == target))
        return out

    args = GRPOConfig(output_dir=tempfile.mkdtemp(), num_generations=G, per_device_train_batch_size=G,
                      max_completion_length=3, temperature=1.0, top_p=1.0, top_k=0, beta=0.0,
                      learning_rate=0.0, report_to="none", use_cpu=True, logging_steps=10 ** 9,
                      max_steps=batches, bf16=False, fp16=False, save_strategy="no", **options)
    data = Dataset.from_dict({"prompt": list(PROMPTS)})
    t = GRPOTrainer(model=net, reward_funcs=reward, args=args, train_dataset=data, processing_class=tok)
    t.current_gradient_accumulation_steps = 1
    return t


def to_trajectories(m, out) -> Trajectories:
    """A TRL batch (prompt ids, completion ids and mask) as a pglib batch of the sequence problem."""
    names = {n: s for s, n in enumerate(m.state_names)}
    inv = {v: k for k, v in TOKENS.items()}
    prompt_ids, comp, mask = out["prompt_ids"], out["completion_ids"], out["completion_mask"].bool()
    N, T = comp.shape[0], m.horizon
    states = torch.full((N, T), m.n_states - 1, dtype=torch.long)
    actions = torch.zeros(N, T, dtype=torch.long)
    rewards = torch.zeros(N, T, dtype=F64)
    on = torch.zeros(N, T, dtype=torch.bool)
    for i in range(N):
        q = PROMPTS.index(" ".join(inv[int(t)] for t in prompt_ids[i][out["prompt_mask"][i].bool()]))
        prefix = ""
        for t in range(min(T, comp.shape[1])):
            if not mask[i, t]:
                break
            a = int(comp[i, t])
            s = names[f"q{q}:{prefix}"]
            states[i, t], actions[i, t], on[i, t] = s, a, True
            rewards[i, t] = m.rewards[s, a]
            if a == 0:
                break
            prefix += inv[a]
    return Trajectories(states, actions, rewards, on, None, m.n_states, m.n_actions)


def audit(label, options, pglib_loss, batches: int, seed: int) -> dict:
    m = sequence_problem()
    tok, net = tokenizer(), model(seed)
    params = [p for p in net.parameters() if p.requires_grad]
    ctx = contexts(m)
    theta = tabular_logits(net, m, ctx)
    th = theta.detach()

    def chain(tab_grad):  # [S, A] -> flat parameter gradient
        gs = torch.autograd.grad(theta, params, grad_outputs=tab_grad, retain_graph=True, allow_unused=True)
        return torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1) for p, g in zip(params, gs)])

    # Every parameter gradient is jac^T g_tab for a tabular gradient g_tab whose rows sum to zero
    # (the loss sees the parameters only through the logits at the listed contexts, by a softmax).
    # The tests run in an orthonormal basis of that span (projection, no inversion): TRL's float32
    # advantages leave rounding outside it, which would look like a bias of zero variance.
    jac = torch.stack([chain(e.reshape(theta.shape)) for e in torch.eye(theta.numel(), dtype=F64)])
    S, A = theta.shape
    centre = torch.eye(A, dtype=F64) - 1.0 / A
    Z = torch.block_diag(*([torch.linalg.svd(centre)[0][:, :A - 1]] * S))  # [S*A, S*(A-1)]
    Z = Z[: (S - 1) * A, : (S - 1) * (A - 1)]  # the end state's row does not reach any parameter
    Z = torch.nn.functional.pad(Z, (0, 0, 0, A))
    basis, _ = torch.linalg.qr(jac.T @ Z)  # [P, r]

    def coords(tab):  # a tabular gradient [S, A] -> coordinates in the basis
        return basis.T @ chain(tab)

    grad = coords(exact.gradient(m, th))
    predicted = None if pglib_loss is None else coords(llm.expected_gradient(pglib_loss, m, th, G))
    t = trainer(net, tok, options, batches)
    net.train()
    rng = np.random.default_rng(seed)
    samples, max_rel = [], 0.0
    for b in range(batches):
        q = PROMPTS[int(rng.integers(len(PROMPTS)))]
        torch.manual_seed(seed * 100_000 + b)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = t._generate_and_score_completions([{"prompt": q} for _ in range(G)])
        loss = t.compute_loss(net, out)
        gs = torch.autograd.grad(loss, params, allow_unused=True)
        g = -torch.cat([(torch.zeros_like(p) if x is None else x).reshape(-1) for p, x in zip(params, gs)])
        samples.append(basis.T @ g)
        if pglib_loss is not None:
            traj = to_trajectories(m, out)
            tab = th.clone().requires_grad_(True)
            (gt,) = torch.autograd.grad(pglib_loss(llm.group_batch(traj, tab, G)), tab)
            mine = coords(-gt)
            scale = max(float(mine.norm()), float(samples[-1].norm()), 1e-30)
            max_rel = max(max_rel, float((mine - samples[-1]).norm()) / scale)
    # The tests run on a few dense directions: grad J, the part of the predicted mean off grad J,
    # and 4 fixed random directions. A Hotelling test in all 42 directions over-rejects here: the
    # rarest responses drive some coordinates (see pglib.stats.unbiasedness_test on rare events),
    # while a dense direction averages many of them. TRL computes advantages in float32, so the
    # samples are tested as float32 (rounding allowed where they do not vary).
    X = torch.stack(samples)
    gg = float(grad @ grad)
    dirs = [grad / math.sqrt(gg)]
    if predicted is not None:
        perp = predicted - (predicted @ grad) / gg * grad
        if float(perp.norm()) > 1e-9 * math.sqrt(gg):
            dirs.append(perp / perp.norm())
    gen = torch.Generator().manual_seed(12345)
    dirs += [torch.randn(grad.shape, generator=gen, dtype=F64) for _ in range(4)]
    D, _ = torch.linalg.qr(torch.stack(dirs).T)  # [r, k] orthonormal
    Xd, gd = (X @ D).float(), (grad @ D).float()
    test = stats.unbiasedness_test(Xd, gd, alpha=ALPHA)
    c = X @ grad / gg
    ortho = X - c[:, None] * grad[None, :]
    o_test = stats.unbiasedness_test((ortho @ D[:, 1:]).float(), torch.zeros(D.shape[1] - 1), alpha=ALPHA)
    row = {
        "label": label, "options": options, "group_size": G, "batches": batches, "alpha": ALPHA,
        "rank": int(test.rank),
        "sampled": {
            "unbiased": not test.reject, "p_value": float(test.p_value),
            "scale": float(c.mean()), "scale_se": float(c.std() / math.sqrt(len(c))),
            "off_direction_rejected": bool(o_test.reject), "off_direction_p_value": float(o_test.p_value),
            "detectable_bias_share": float(test.detectable_bias(direction=gd)) / math.sqrt(gg),
            "directions": int(D.shape[1]),
        },
    }
    if predicted is not None:
        row["exact"] = {**llm.verdict(predicted, grad),
                        "power_at_exact_bias": float(test.power(((predicted - grad) @ D).float()))}
        row["max_relative_difference_to_pglib"] = max_rel
        row["pglib_test_p_value"] = float(stats.unbiasedness_test(Xd, (predicted @ D).float(),
                                                                  alpha=ALPHA).p_value)
    return row


def main(argv=None) -> int:
    import transformers
    import trl

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", default="")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    only = set(filter(None, args.only.split(",")))
    rows = []
    for label, options, loss, why in CONFIGS:
        if only and label not in only:
            continue
        start = time.time()
        row = audit(label, options, loss, args.batches, args.seed)
        row["why"] = why
        row["seconds"] = round(time.time() - start, 1)
        rows.append(row)
        s = row["sampled"]
        e = row.get("exact", {})
        print(f"{label:20s} sampled: unbiased={s['unbiased']} p={s['p_value']:.2g} scale={s['scale']:.3f} "
              f"off-dir rejected={s['off_direction_rejected']}  exact: {e.get('verdict')} "
              f"c={e.get('scale', float('nan')):.3f} bias={e.get('bias_share', float('nan')):.3f} "
              f"angle={e.get('angle', float('nan')):.1f} pglib-diff={row.get('max_relative_difference_to_pglib')}"
              f" ({row['seconds']} s)", flush=True)
    result = {"trl": trl.__version__, "transformers": transformers.__version__, "torch": torch.__version__,
              "problem": "pglib.mdp.sequence_problem() with prompts " + ", ".join(PROMPTS),
              "model": "LlamaForCausalLM, 1 layer, hidden 16, vocabulary <eos> a b, float64",
              "group_size": G, "rows": rows}
    if not only:
        OUT.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
