r"""Neural policies for gymnasium tasks: a categorical MLP and a Gaussian MLP, plus a value MLP.

Each policy maps a batch of observations ``[B, obs_dim]`` to a ``torch.distributions``
object over actions, so the surrogate loss of the notes,
:math:`-\frac1N\sum_{i,t}\log\pi_\theta(a_{i,t}\mid s_{i,t})\hat A_{i,t}`, is one line:
``-(policy(obs).log_prob(actions) * adv).mean()``.

Device: a policy lives wherever its parameters are (``policy.to(device)``); inputs are
moved there on entry. The default device is decided once, in :mod:`pglib.practice.device`.

Two paths, one set of weights:

- ``policy(obs)`` (torch, differentiable) for the update;
- ``policy.sampler()`` (numpy, no autograd) for rollouts. At the batch sizes of a
  vectorized rollout (tens of environments) a torch call plus
  ``torch.distributions`` sampling costs 5-10x more than the environment step itself;
  the numpy forward pass with Gumbel-max (categorical) or ``mean + std * noise``
  (Gaussian) draws from the *same* distribution at a fraction of the cost
  (see ``benchmarks/bench_cartpole.py`` and the practice chapter for the timings).

References: Williams (1992) for the score-function (REINFORCE) update; the Gumbel-max
trick: Gumbel (1954), Maddison et al. (2014).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.distributions import Categorical, Independent, Normal

from pglib import validate

__all__ = ["mlp", "numpy_forward", "CategoricalMLP", "GaussianMLP", "ValueMLP", "policy_for"]

_ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU}


def _relu(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0, out=out)


_NUMPY_ACTIVATIONS = {"tanh": np.tanh, "relu": _relu}  # called as act(x, out=x)


def _check_dims(**dims: int) -> None:
    for name, value in dims.items():
        validate.positive_int(value, name)


def _check_hidden(hidden) -> None:
    if isinstance(hidden, (str, bytes)) or not hasattr(hidden, "__len__"):
        raise validate.ArgumentTypeError(f"hidden must be a sequence of layer widths; got {validate.describe(hidden)}")
    _check_dims(**{f"hidden[{i}]": h for i, h in enumerate(hidden)})


def mlp(sizes: Sequence[int], activation: str = "tanh", bias: bool = True) -> nn.Sequential:
    """``Linear -> act -> ... -> Linear`` with layer widths ``sizes`` (no activation after the last layer).

    Example: ``mlp([4, 64, 2])`` is ``Linear(4, 64), Tanh(), Linear(64, 2)``.
    """
    validate.one_of(activation, "activation", sorted(_ACTIVATIONS))
    validate.flag(bias, "bias")
    if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__len__"):
        raise validate.ArgumentTypeError(f"sizes must be a sequence of layer widths; got {validate.describe(sizes)}")
    if len(sizes) < 2:
        raise ValueError(f"sizes must list at least an input and an output width, got {list(sizes)!r}")
    _check_dims(**{f"sizes[{i}]": s for i, s in enumerate(sizes)})
    sizes = [int(s) for s in sizes]
    weights = sum(sizes[i] * sizes[i + 1] + sizes[i + 1] for i in range(len(sizes) - 1))
    validate.memory(validate.nbytes(weights, itemsize=4 * 4), f"an MLP with layer widths {sizes} "
                    "(parameters, their gradients and two Adam moments)")
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1], bias=bias))
        if i < len(sizes) - 2:
            layers.append(_ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


def numpy_forward(net: nn.Sequential, activation: str) -> Callable[[np.ndarray], np.ndarray]:
    """A numpy copy of ``net`` (weights snapshotted now, float64): ``x [..., in] -> [..., out]``.

    Called once per vector step in rollouts, so it keeps Python work per call small: the layers are
    unpacked once here, the bias adds and activations work in place on fresh arrays (the caller's
    input is never modified), and 2-D inputs use ``np.dot`` (the same BLAS call as ``@``, with less
    dispatch overhead).
    """
    validate.instance(net, "net", nn.Sequential, "a torch.nn.Sequential of Linear layers and activations")
    activation = validate.one_of(activation, "activation", tuple(_NUMPY_ACTIVATIONS))
    linears = [m for m in net if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError("net must hold at least one nn.Linear layer; got none")
    layers = [(m.weight.detach().to("cpu", torch.float64).numpy().T.copy(),
               None if m.bias is None else m.bias.detach().to("cpu", torch.float64).numpy().copy()) for m in linears]
    *hidden, (w_out, b_out) = layers
    act, dot, matmul = _NUMPY_ACTIVATIONS[activation], np.dot, np.matmul

    def forward(x: np.ndarray) -> np.ndarray:
        mm = dot if x.ndim == 2 else matmul
        for w, b in hidden:
            x = mm(x, w)  # a fresh array from here on
            if b is not None:
                x += b
            act(x, out=x)
        y = mm(x, w_out)
        if b_out is not None:
            y += b_out
        return y

    return forward


class _Policy(nn.Module):
    activation: str

    @property
    def device(self) -> torch.device:
        """The device of the parameters; inputs are moved here."""
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        """The floating dtype of the parameters; inputs are cast to it (float32 by default, float64 after ``.double()``)."""
        return next(self.parameters()).dtype

    def _obs(self, obs) -> torch.Tensor:
        obs = validate.floats(obs, "obs", dtype=self.dtype).to(self.device)
        if obs.ndim != 2 or obs.shape[-1] != self.obs_dim:
            raise ValueError(f"obs must have shape [B, {self.obs_dim}], got {tuple(obs.shape)}")
        return obs


class CategoricalMLP(_Policy):
    r"""Softmax policy over ``n_actions`` discrete actions: :math:`\pi_\theta(\cdot\mid s)=\mathrm{softmax}(f_\theta(s))`.

    ``policy(obs [B, obs_dim])`` -> ``torch.distributions.Categorical`` with logits ``[B, n_actions]``.

    Example::

        policy = CategoricalMLP(4, 2, hidden=(64, 64))
        dist = policy(torch.zeros(3, 4)); dist.log_prob(torch.tensor([0, 1, 1]))  # shape [3]
    """

    def __init__(self, obs_dim: int, n_actions: int, hidden: Sequence[int] = (64, 64), activation: str = "tanh"):
        super().__init__()
        _check_dims(obs_dim=obs_dim, n_actions=n_actions)
        _check_hidden(hidden)
        self.obs_dim, self.n_actions, self.activation = int(obs_dim), int(n_actions), activation
        self.net = mlp([self.obs_dim, *hidden, self.n_actions], activation)
        with torch.no_grad():  # near-uniform initial policy: small last layer (as in CleanRL / SB3's 0.01 gain)
            self.net[-1].weight.mul_(0.01)
            self.net[-1].bias.zero_()

    def logits(self, obs) -> torch.Tensor:
        """Unnormalized log-probabilities ``[B, n_actions]``."""
        return self.net(self._obs(obs))

    def forward(self, obs) -> Categorical:
        return Categorical(logits=self.logits(obs))

    def sampler(self) -> Callable[[np.ndarray, np.random.Generator], np.ndarray]:
        r"""A numpy sampler ``(obs [B, obs_dim], rng) -> actions [B]`` with the current weights.

        Gumbel-max: :math:`\arg\max_a (\ell_a + g_a)` with :math:`g_a` i.i.d. standard Gumbel is
        distributed as :math:`\mathrm{softmax}(\ell)` -- no normalization, no ``torch`` call.
        """
        forward = numpy_forward(self.net, self.activation)

        def sample(obs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
            logits = forward(_sampler_obs(obs, self.obs_dim))  # a fresh array: add the noise in place
            logits += rng.gumbel(size=logits.shape)
            return logits.argmax(-1)  # the method skips np.argmax's dispatch wrapper (same result)

        return sample


class GaussianMLP(_Policy):
    r"""Diagonal Gaussian policy with a state-independent log standard deviation.

    :math:`\pi_\theta(a\mid s)=\mathcal N\big(a;\ \mu_\theta(s),\ \mathrm{diag}(e^{2\,\mathtt{log\_std}})\big)`, so

    .. math:: \log\pi_\theta(a\mid s) = -\sum_j\Big[\frac{(a_j-\mu_j)^2}{2\sigma_j^2} + \log\sigma_j + \tfrac12\log 2\pi\Big].

    ``policy(obs [B, obs_dim])`` -> ``Independent(Normal(mu [B, act_dim], sigma [act_dim]), 1)``, whose
    ``log_prob(a [B, act_dim])`` is ``[B]`` (summed over action dimensions).
    ``hidden=()`` and ``bias=False`` give the linear Gaussian policy :math:`a\sim\mathcal N(Ks,\sigma^2 I)`.

    Example: ``GaussianMLP(3, 1)(torch.zeros(5, 3)).sample().shape == (5, 1)``.
    """

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        hidden: Sequence[int] = (64, 64),
        activation: str = "tanh",
        log_std: float = 0.0,
        bias: bool = True,
    ):
        super().__init__()
        _check_dims(obs_dim=obs_dim, act_dim=act_dim)
        _check_hidden(hidden)
        log_std = validate.real(log_std, "log_std")
        self.obs_dim, self.act_dim, self.activation = int(obs_dim), int(act_dim), activation
        self.net = mlp([self.obs_dim, *hidden, self.act_dim], activation, bias=bias)
        if hidden:
            with torch.no_grad():
                self.net[-1].weight.mul_(0.01)
                if bias:
                    self.net[-1].bias.zero_()
        self.log_std = nn.Parameter(torch.full((self.act_dim,), float(log_std)))

    def mean(self, obs) -> torch.Tensor:
        """:math:`\\mu_\\theta(s)`, ``[B, act_dim]``."""
        return self.net(self._obs(obs))

    def forward(self, obs) -> Independent:
        mu = self.mean(obs)
        std = self.log_std.exp()
        if bool((std == 0).any()):
            raise ValueError(
                "the policy's standard deviation is exactly 0 (log_std = -inf): a deterministic policy has no "
                "density, so log pi(a|s) and its score function do not exist and REINFORCE cannot be used; "
                "expected log_std > -inf (sigma > 0)")
        return Independent(Normal(mu, std.expand_as(mu)), 1)

    def sampler(self) -> Callable[[np.ndarray, np.random.Generator], np.ndarray]:
        """A numpy sampler ``(obs [B, obs_dim], rng) -> actions [B, act_dim]``: ``mu + sigma * N(0, I)``."""
        forward = numpy_forward(self.net, self.activation)
        std = self.log_std.detach().to("cpu", torch.float64).exp().numpy()

        def sample(obs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
            mu = forward(_sampler_obs(obs, self.obs_dim))
            return mu + std * rng.standard_normal(mu.shape)

        return sample


def _sampler_obs(obs, obs_dim: int) -> np.ndarray:
    """A sampler's observations as float64 ``[B, obs_dim]``, finite (a fast check: it runs every step)."""
    expected = f"a real array of shape [B, obs_dim] = [B, {obs_dim}]"
    if isinstance(obs, (str, bytes)) or obs is None or np.iscomplexobj(obs):
        raise validate.ArgumentTypeError(f"obs must be {expected}; got {validate.describe(obs)}")
    try:
        x = np.asarray(obs, dtype=np.float64)
    except (TypeError, ValueError):
        raise validate.ArgumentTypeError(f"obs must be {expected}; got {validate.describe(obs)}") from None
    if x.ndim != 2 or x.shape[1] != obs_dim:
        raise ValueError(f"obs must have shape [B, obs_dim] = [B, {obs_dim}]; got {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"obs must hold finite numbers; got {int((~np.isfinite(x)).sum())} NaN or infinite "
                         "entries (an environment that returns NaN observations)")
    return x


class ValueMLP(nn.Module):
    r"""State-value network :math:`V_\phi(s)`: ``obs [B, obs_dim] -> [B]`` (the learned baseline of the notes)."""

    def __init__(self, obs_dim: int, hidden: Sequence[int] = (64, 64), activation: str = "tanh"):
        super().__init__()
        _check_dims(obs_dim=obs_dim)
        _check_hidden(hidden)
        self.obs_dim, self.activation = int(obs_dim), activation
        self.net = mlp([self.obs_dim, *hidden, 1], activation)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def forward(self, obs) -> torch.Tensor:
        obs = validate.floats(obs, "obs", dtype=next(self.parameters()).dtype, min_ndim=1).to(self.device)
        if obs.shape[-1] != self.obs_dim:
            raise ValueError(f"obs must have shape [..., {self.obs_dim}], got {tuple(obs.shape)}")
        return self.net(obs).squeeze(-1)


def policy_for(observation_space, action_space, hidden: Sequence[int] = (64, 64), activation: str = "tanh",
               log_std: float = 0.0) -> CategoricalMLP | GaussianMLP:
    """The policy that fits a gymnasium space pair: ``Discrete`` -> :class:`CategoricalMLP`, ``Box`` -> :class:`GaussianMLP`."""
    from gymnasium import spaces

    log_std = validate.real(log_std, "log_std")
    if not isinstance(observation_space, spaces.Box) or len(observation_space.shape) != 1:
        raise ValueError(f"observation_space must be a flat Box, got {observation_space!r}")
    obs_dim = observation_space.shape[0]
    if isinstance(action_space, spaces.Discrete):
        return CategoricalMLP(obs_dim, int(action_space.n), hidden, activation)
    if isinstance(action_space, spaces.Box) and len(action_space.shape) == 1:
        return GaussianMLP(obs_dim, action_space.shape[0], hidden, activation, log_std=log_std)
    raise ValueError(f"action_space must be Discrete or a flat Box, got {action_space!r}")
