"""The learner's REINFORCE of chapter 3 (the cell tagged ``learner``) learns CartPole.

The cell is plain torch and gymnasium, written to be copied. This runs it exactly as the
chapter shows it (its source read from the notebook, in a namespace prepared like the
chapter's: ``np``, ``torch`` with float64 as the default dtype, ``SEED``) and checks:

- the return rises: the mean return of the last five batches is at least 20 above that of
  the first five (a random policy scores about 20; the chapter's run ends near 100);
- the gradient it follows is the REINFORCE estimate: ``loss``'s gradient equals minus the
  average over episodes of (summed score) x (return), computed here another way, episode
  by episode with ``torch.autograd.grad`` of each episode's summed log-probability.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from notebooks import BOOK, source, tags

NOTEBOOK = BOOK / "03_monte_carlo_estimator.ipynb"


def learner_source() -> str:
    cells = [c for c in json.loads(NOTEBOOK.read_text())["cells"] if "learner" in tags(c)]
    assert len(cells) == 1, f"expected one cell tagged 'learner' in {NOTEBOOK.name}, found {len(cells)}"
    return source(cells[0])


def run(seed: int, steps: int | None = None) -> dict:
    code = learner_source()
    if steps is not None:
        code = code.replace("STEPS, EPISODES = 30, 10", f"STEPS, EPISODES = {steps}, 10")
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        namespace = {"np": np, "torch": torch, "SEED": seed}
        exec(compile(code, str(NOTEBOOK), "exec"), namespace)
    finally:
        torch.set_default_dtype(before)
    return namespace


def test_the_cell_is_short_and_uses_no_pglib():
    code = learner_source()
    lines = [line for line in code.splitlines() if line.strip()]
    assert len(lines) <= 40, f"the learner's REINFORCE has {len(lines)} lines; it should be about 30"
    assert "pglib" not in code


@pytest.mark.parametrize("seed", [0, 1])
def test_return_rises_on_cartpole(seed):
    ns = run(seed)
    returns = np.asarray(ns["mean_returns"])
    assert len(returns) == 30
    early, late = returns[:5].mean(), returns[-5:].mean()
    assert late >= early + 20, f"seed {seed}: mean return {early:.1f} in the first five batches, {late:.1f} in the last five"


def test_loss_gradient_is_minus_the_reinforce_estimate():
    ns = run(0, steps=1)  # one step: its batch is still in the namespace
    policy, batch, EPISODES = ns["policy"], ns["batch"], ns["EPISODES"]
    params = list(policy.parameters())
    # the identity holds at any parameters: take the ones after the step, and compare the
    # cell's batched loss gradient with the estimate summed episode by episode
    states, actions, returns = ns["states"], ns["actions"], ns["returns"]
    log_pi = torch.log_softmax(policy(states), dim=-1)[torch.arange(len(actions)), actions]
    loss = -(log_pi * returns).sum() / EPISODES
    grads = torch.autograd.grad(loss, params)
    estimate = [torch.zeros_like(p) for p in params]
    for episode_states, episode_actions, R in batch:
        s = torch.as_tensor(np.array(episode_states))
        a = torch.tensor(episode_actions)
        score = torch.log_softmax(policy(s), dim=-1)[torch.arange(len(a)), a].sum()
        for e, g in zip(estimate, torch.autograd.grad(score, params)):
            e += R * g / len(batch)
    for g, e in zip(grads, estimate):
        torch.testing.assert_close(g, -e.to(g.dtype), rtol=1e-4, atol=1e-4)
