r"""Check code written for gymnasium and ``torch.nn`` (not for pglib) against the exact gradient.

A reader's homework loop collects episodes with ``env.step`` and a ``torch.nn.Module`` policy,
builds a loss and calls ``loss.backward()``. To check it, run it on the gymnasium view of a
small :class:`~pglib.mdp.TabularMDP` (``mdp.to_env()``) with a module that maps each state to
logits. The module's logits table :math:`L(\phi) \in \mathbb R^{S\times A}` (the module applied
to every state) gives the exact objective :math:`J(L(\phi))`, and by the chain rule

.. math:: \nabla_\phi J = \Big(\frac{\partial L}{\partial \phi}\Big)^\top \frac{\partial J}{\partial L},

which :func:`exact_parameter_gradient` computes with autograd through the module. Then
:func:`check_module` runs the reader's update ``n_batches`` times, reads ``-p.grad`` of every
parameter after each, and tests the mean against that exact gradient (the same test and report as
:func:`pglib.check_loss`).

- :class:`TabularSoftmaxPolicy`: one logit per (state, action), ``forward(obs)`` gives a
  ``torch.distributions.Categorical``; integer observations, as ``Discrete`` spaces give them.
- :func:`one_hot_env`: the same MDP with one-hot ``Box`` observations, for libraries whose
  policies expect vectors (a linear layer on one-hot inputs is again a tabular softmax policy).
"""

from __future__ import annotations

from typing import Callable, Sequence

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.distributions import Categorical

from pglib import exact, validate
from pglib.mdp import DTYPE, TabularMDP
from pglib.verify import unbiased

__all__ = ["TabularSoftmaxPolicy", "one_hot_env", "state_logits", "exact_parameter_gradient",
           "check_module"]


class TabularSoftmaxPolicy(nn.Module):
    """:math:`\\pi(a|s) = \\mathrm{softmax}(\\theta_s)_a` as a module with one parameter ``logits [S, A]``.

    ``forward(obs)`` takes integer states (an int, a list, or a long tensor ``[B]``) and returns
    ``Categorical(logits=self.logits[obs])``, so ``dist.sample()`` and ``dist.log_prob(a)`` work as
    for any policy network. float64 by default (exact checks need it).
    """

    def __init__(self, n_states: int, n_actions: int, logits=None, dtype: torch.dtype = DTYPE) -> None:
        super().__init__()
        S = validate.positive_int(n_states, "n_states")
        A = validate.positive_int(n_actions, "n_actions")
        init = torch.zeros(S, A, dtype=dtype) if logits is None else validate.logits(logits, shape=(S, A))
        self.logits = nn.Parameter(init.detach().clone().to(dtype))

    def forward(self, obs) -> Categorical:
        s = torch.as_tensor(obs, dtype=torch.long)
        if (s < 0).any() or (s >= self.logits.shape[0]).any():
            raise ValueError(f"obs must be states in [0, {self.logits.shape[0]}); got {s.tolist()}")
        return Categorical(logits=self.logits[s])


class _OneHot(gym.ObservationWrapper):
    def __init__(self, env: gym.Env, dtype=np.float32) -> None:
        super().__init__(env)
        self._n = env.observation_space.n
        self._dtype = dtype
        self.observation_space = gym.spaces.Box(0.0, 1.0, shape=(self._n,), dtype=dtype)

    def observation(self, observation):
        out = np.zeros(self._n, dtype=self._dtype)
        out[int(observation)] = 1.0
        return out


def one_hot_env(mdp: TabularMDP, dtype=np.float32) -> gym.Env:
    """``mdp.to_env()`` with one-hot ``Box(0, 1, [S])`` observations (for vector-input policies)."""
    validate.instance(mdp, "mdp", TabularMDP)
    return _OneHot(mdp.to_env(), dtype)


def state_logits(module: nn.Module, n_states: int, one_hot: bool = False,
                 logits_of: Callable | None = None) -> torch.Tensor:
    """The logits table ``[S, A]``: the module applied to every state, differentiable in its parameters.

    ``logits_of(module, obs)`` returns the logits for a batch of observations (default: the
    ``.logits`` of the distribution ``module(obs)`` returns); ``obs`` are the states ``0..S-1`` or,
    with ``one_hot=True``, the rows of the identity matrix (in the dtype of the module's first
    parameter).
    """
    S = validate.positive_int(n_states, "n_states")
    params = list(module.parameters())
    dtype = params[0].dtype if params else DTYPE
    obs = torch.eye(S, dtype=dtype) if one_hot else torch.arange(S)
    out = logits_of(module, obs) if logits_of is not None else module(obs).logits
    if out.ndim != 2 or out.shape[0] != S:
        raise ValueError(f"the module must give logits [S, A] for the {S} states; got {tuple(out.shape)}")
    return out


def exact_parameter_gradient(mdp: TabularMDP, module: nn.Module, params: Sequence[torch.Tensor] | None = None,
                             **kwargs) -> list[torch.Tensor]:
    r""":math:`\nabla_\phi J` for each parameter (default: all of the module's), by the chain rule
    through :func:`state_logits` (``kwargs`` go there). Computed in float64."""
    params = list(module.parameters()) if params is None else list(params)
    if not params:
        raise ValueError("the module has no parameters to differentiate")
    L = state_logits(module, mdp.n_states, **kwargs).to(DTYPE)
    J = exact.objective(mdp, L)
    grads = torch.autograd.grad(J, params, allow_unused=True)
    return [torch.zeros_like(p, dtype=DTYPE) if g is None else g.detach().to(DTYPE) for g, p in zip(grads, params)]


def check_module(update: Callable[[int], None], mdp: TabularMDP, module: nn.Module, n_batches: int = 2_000,
                 alpha: float = 0.01, params: Sequence[torch.Tensor] | None = None, **kwargs):
    """Run ``update(b)`` for ``b = 0..n_batches-1`` and test ``-p.grad`` against the exact gradient.

    ``update(b)`` is the reader's code for one batch: collect episodes (seeded with ``b``), build
    the loss, call ``loss.backward()``; it must not step an optimizer (or step one with learning
    rate 0), so every batch sees the same parameters. The gradients are zeroed before each call.
    Returns a :class:`pglib.verify.Report` over the flattened parameters (``exact_bias`` is None).
    """
    if not callable(update):
        raise TypeError(f"update must be a function update(batch_index); got {validate.describe(update)}")
    validate.instance(module, "module", nn.Module)
    n_batches = validate.positive_int(n_batches, "n_batches", minimum=3)
    params = list(module.parameters()) if params is None else list(params)
    want = torch.cat([g.reshape(-1) for g in exact_parameter_gradient(mdp, module, params, **kwargs)])
    rows = []
    for b in range(n_batches):
        for p in params:
            p.grad = None
        update(b)
        if all(p.grad is None for p in params):
            raise ValueError(f"update({b}) left no gradient in the parameters: call loss.backward() in it")
        rows.append(torch.cat([(-p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1).to(DTYPE)
                               for p in params]))
    samples = torch.stack(rows)
    return unbiased.report_from_samples("module", samples[:, None, :], want[None, :], alpha, mdp, None, None, None,
                           "exact_bias is None: the gradient comes from the reader's own loop.",
                           state_names=("parameters",))
