r"""A finite-horizon linear-quadratic regulator, where the policy gradient is known exactly.

Dynamics, cost and policy (all Gaussian, so every expectation has a closed form):

.. math::
    x_0 \sim \mathcal N(0, \Sigma_0),\qquad
    u_t = K x_t + \sigma\,\varepsilon_t,\ \ \varepsilon_t\sim\mathcal N(0, I_m),\qquad
    x_{t+1} = A x_t + B u_t + w_t,\ \ w_t \sim \mathcal N(0, W),

with reward :math:`r_t = -(x_t^\top Q x_t + u_t^\top R u_t)` for :math:`t = 0, \dots, H-1`.
The state covariance :math:`\Sigma_t = \mathbb E[x_t x_t^\top]` obeys

.. math:: \Sigma_{t+1} = (A + BK)\,\Sigma_t\,(A+BK)^\top + \sigma^2 B B^\top + W,

so the objective is a finite sum of traces,

.. math:: J(K) = -\sum_{t=0}^{H-1}\Big[\operatorname{tr}\big((Q + K^\top R K)\Sigma_t\big) + \sigma^2\operatorname{tr} R\Big],

and its gradient :math:`\nabla_K J` is exact (autodiff through the recursion, float64).
The score of the linear Gaussian policy is :math:`\nabla_K\log\pi(u\mid x) = (u - Kx)x^\top/\sigma^2
= \varepsilon\,x^\top/\sigma`, which makes the REINFORCE estimator a few vectorized lines.

Shapes: ``A [n, n]``, ``B [n, m]``, ``Q [n, n]``, ``R [m, m]``, ``K [m, n]``; batches ``[N, H, ...]``.
References: Fazel et al. (2018) for policy gradients on LQR; Williams (1992) for the estimator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

_f64 = torch.float64


def _square(name: str, x: torch.Tensor, size: int) -> None:
    if tuple(x.shape) != (size, size):
        raise ValueError(f"{name} must have shape [{size}, {size}], got {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} must be finite, got NaN or inf")


@dataclass
class LQR:
    """A finite-horizon LQR problem; tensors are stored as float64 (see the module docstring)."""

    A: torch.Tensor
    B: torch.Tensor
    Q: torch.Tensor
    R: torch.Tensor
    initial_cov: torch.Tensor
    horizon: int
    noise_cov: torch.Tensor | None = None

    def __post_init__(self):
        for name in ("A", "B", "Q", "R", "initial_cov", "noise_cov"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, torch.as_tensor(value, dtype=_f64))
        if self.B.ndim != 2:
            raise ValueError(f"B must have shape [n, m], got {tuple(self.B.shape)}")
        n, m = self.B.shape
        _square("A", self.A, n)
        _square("Q", self.Q, n)
        _square("R", self.R, m)
        _square("initial_cov", self.initial_cov, n)
        if self.noise_cov is None:
            self.noise_cov = torch.zeros(n, n, dtype=_f64)
        _square("noise_cov", self.noise_cov, n)
        if int(self.horizon) != self.horizon or self.horizon < 1:
            raise ValueError(f"horizon must be a positive integer, got {self.horizon!r}")
        self.horizon = int(self.horizon)

    @property
    def n_states(self) -> int:
        return self.B.shape[0]

    @property
    def n_actions(self) -> int:
        return self.B.shape[1]

    def _check(self, K, sigma) -> tuple[torch.Tensor, float]:
        K = torch.as_tensor(K, dtype=_f64)
        if tuple(K.shape) != (self.n_actions, self.n_states):
            raise ValueError(f"K must have shape [{self.n_actions}, {self.n_states}], got {tuple(K.shape)}")
        if float(sigma) == 0:
            raise ValueError(
                "sigma = 0 makes the policy deterministic, and a deterministic policy has no score function: "
                "grad log pi(a|s) does not exist, so the score-function (REINFORCE) estimator cannot be formed; "
                "expected sigma > 0 (or use a deterministic policy gradient with a learned critic)")
        if not float(sigma) > 0:
            raise ValueError(f"sigma must be a positive standard deviation, got {sigma!r}")
        return K, float(sigma)


def double_integrator(horizon: int = 10, dt: float = 0.2, control_cost: float = 1.0, noise: float = 0.0) -> LQR:
    """A point mass pushed by a force: state (position, velocity), action (force); x0 ~ N(0, I)."""
    A = torch.tensor([[1.0, dt], [0.0, 1.0]], dtype=_f64)
    B = torch.tensor([[0.5 * dt**2], [dt]], dtype=_f64)
    return LQR(A=A, B=B, Q=torch.eye(2, dtype=_f64), R=control_cost * torch.eye(1, dtype=_f64),
               initial_cov=torch.eye(2, dtype=_f64), horizon=horizon, noise_cov=noise**2 * torch.eye(2, dtype=_f64))


def objective(lqr: LQR, K, sigma: float) -> torch.Tensor:
    r"""Exact expected return :math:`J(K) = \mathbb E[\sum_{t<H} r_t]` (a negative cost), differentiable in ``K``."""
    K, sigma = lqr._check(K, sigma)
    closed = lqr.A + lqr.B @ K
    cov = lqr.initial_cov
    total = torch.zeros((), dtype=_f64)
    for _ in range(lqr.horizon):
        total = total - torch.trace((lqr.Q + K.T @ lqr.R @ K) @ cov) - sigma**2 * torch.trace(lqr.R)
        cov = closed @ cov @ closed.T + sigma**2 * lqr.B @ lqr.B.T + lqr.noise_cov
    return total


def exact_gradient(lqr: LQR, K, sigma: float) -> torch.Tensor:
    r""":math:`\nabla_K J(K)`, ``[m, n]``, by autodiff through the covariance recursion."""
    K, sigma = lqr._check(K, sigma)
    K = K.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(objective(lqr, K, sigma), K)
    return grad


def sample(lqr: LQR, K, sigma: float, n: int, generator: torch.Generator | int) -> dict[str, torch.Tensor]:
    """``n`` trajectories: states ``[N, H, n]``, noises ``[N, H, m]`` (the :math:`\\varepsilon_t`), actions ``[N, H, m]``,
    rewards ``[N, H]`` (float64). ``generator``: a ``torch.Generator`` or an int seed."""
    K, sigma = lqr._check(K, sigma)
    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    g = generator if isinstance(generator, torch.Generator) else torch.Generator().manual_seed(int(generator))
    chol0 = torch.linalg.cholesky(lqr.initial_cov)
    chol_w = torch.linalg.cholesky(lqr.noise_cov) if lqr.noise_cov.any() else None  # needs W positive definite or 0
    x = torch.randn(n, lqr.n_states, generator=g, dtype=_f64) @ chol0.T
    states, noises, actions, rewards = [], [], [], []
    for _ in range(lqr.horizon):
        eps = torch.randn(n, lqr.n_actions, generator=g, dtype=_f64)
        u = x @ K.T + sigma * eps
        rewards.append(-((x @ lqr.Q) * x).sum(-1) - ((u @ lqr.R) * u).sum(-1))
        states.append(x), noises.append(eps), actions.append(u)
        x = x @ lqr.A.T + u @ lqr.B.T
        if chol_w is not None:
            x = x + torch.randn(n, lqr.n_states, generator=g, dtype=_f64) @ chol_w.T
    return {"states": torch.stack(states, 1), "noises": torch.stack(noises, 1),
            "actions": torch.stack(actions, 1), "rewards": torch.stack(rewards, 1)}


def reinforce_gradients(lqr: LQR, K, sigma: float, n: int, generator: torch.Generator | int,
                        weighting: str = "reward_to_go") -> torch.Tensor:
    r"""Per-trajectory REINFORCE estimates of :math:`\nabla_K J`, ``[N, m, n]``:
    :math:`\hat g_i = \sum_t \frac{\varepsilon_{i,t}\,x_{i,t}^\top}{\sigma}\,w_{i,t}`.

    ``weighting``: ``"return"`` (:math:`w_t = \sum_k r_k`, unbiased), ``"reward_to_go"``
    (:math:`w_t = \sum_{k\ge t} r_k`, unbiased) or ``"next_reward_to_go"``
    (:math:`w_t = \sum_{k>t} r_k`: drops the immediate reward, which depends on :math:`u_t`
    through :math:`u_t^\top R u_t` -- a deliberately biased negative control).
    """
    from pglib.returns import reward_to_go

    K, sigma = lqr._check(K, sigma)
    traj = sample(lqr, K, sigma, n, generator)
    r = traj["rewards"]
    if weighting == "return":
        w = r.sum(-1, keepdim=True).expand_as(r)
    elif weighting == "reward_to_go":
        w = reward_to_go(r, 1.0)
    elif weighting == "next_reward_to_go":
        w = reward_to_go(r, 1.0) - r
    else:
        raise ValueError(f"weighting must be 'return', 'reward_to_go' or 'next_reward_to_go', got {weighting!r}")
    # sum_t (eps_t / sigma) outer x_t * w_t  ->  [N, m, n]
    return torch.einsum("ntm,ntd,nt->nmd", traj["noises"] / sigma, traj["states"], w)
