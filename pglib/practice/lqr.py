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

import torch

from pglib import validate
from pglib.returns import reward_to_go

__all__ = ["LQR", "double_integrator", "objective", "exact_gradient", "sample", "reinforce_gradients"]

_f64 = torch.float64
_CREDITS = ("return", "reward_to_go", "next_reward_to_go")


def _square(name: str, x: torch.Tensor, size: int, B: torch.Tensor) -> None:
    if tuple(x.shape) != (size, size):
        raise ValueError(f"{name} must have shape [{size}, {size}] (to match B of shape [n, m] = "
                         f"{list(B.shape)}), got {tuple(x.shape)}")


def _covariance(name: str, x: torch.Tensor, zero_ok: bool) -> None:
    """A covariance the sampler can take a Cholesky factor of: symmetric positive definite (or 0)."""
    if not torch.allclose(x, x.T, atol=1e-12, rtol=1e-10):
        raise ValueError(f"{name} must be symmetric; the largest |C - C^T| is {(x - x.T).abs().max().item():.3g}")
    if zero_ok and not bool(x.any()):
        return
    if torch.linalg.cholesky_ex(x).info.item() != 0:
        raise ValueError(f"{name} must be positive definite{' (or all zero)' if zero_ok else ''}; its smallest "
                         f"eigenvalue is {torch.linalg.eigvalsh(x).min().item():.3g}")


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
            if value is None and name != "noise_cov":
                raise validate.ArgumentTypeError(f"{name} must be a matrix (a 2-D tensor); got None")
            if value is not None:  # copies: the caller's tensors cannot change this problem later
                setattr(self, name, validate.floats(value, name, ndim=2, copy=True))
        if self.B.shape[0] < 1 or self.B.shape[1] < 1:
            raise ValueError(f"B must have shape [n, m] with n, m >= 1, got {tuple(self.B.shape)}")
        n, m = self.B.shape
        _square("A", self.A, n, self.B)
        _square("Q", self.Q, n, self.B)
        _square("R", self.R, m, self.B)
        _square("initial_cov", self.initial_cov, n, self.B)
        if self.noise_cov is None:
            self.noise_cov = torch.zeros(n, n, dtype=_f64)
        _square("noise_cov", self.noise_cov, n, self.B)
        _covariance("initial_cov", self.initial_cov, zero_ok=False)
        _covariance("noise_cov", self.noise_cov, zero_ok=True)
        self.horizon = validate.steps(self.horizon, "horizon")

    @property
    def n_states(self) -> int:
        return self.B.shape[0]

    @property
    def n_actions(self) -> int:
        return self.B.shape[1]

    def _check(self, K, sigma) -> tuple[torch.Tensor, float]:
        K = validate.floats(K, "K")
        if tuple(K.shape) != (self.n_actions, self.n_states):
            raise ValueError(f"K must have shape [{self.n_actions}, {self.n_states}], got {tuple(K.shape)}")
        sigma = validate.real(sigma, "sigma", low=0.0)
        if sigma == 0:
            raise ValueError(
                "sigma = 0 makes the policy deterministic, and a deterministic policy has no score function: "
                "grad log pi(a|s) does not exist, so the score-function (REINFORCE) estimator cannot be formed; "
                "expected sigma > 0 (or use a deterministic policy gradient with a learned critic)")
        return K, sigma


def double_integrator(horizon: int = 10, dt: float = 0.2, control_cost: float = 1.0, noise: float = 0.0) -> LQR:
    """A point mass pushed by a force: state (position, velocity), action (force); x0 ~ N(0, I)."""
    dt = validate.real(dt, "dt", low=0.0, low_open=True)
    control_cost = validate.real(control_cost, "control_cost", low=0.0)
    noise = validate.real(noise, "noise", low=0.0)
    A = torch.tensor([[1.0, dt], [0.0, 1.0]], dtype=_f64)
    B = torch.tensor([[0.5 * dt**2], [dt]], dtype=_f64)
    return LQR(A=A, B=B, Q=torch.eye(2, dtype=_f64), R=control_cost * torch.eye(1, dtype=_f64),
               initial_cov=torch.eye(2, dtype=_f64), horizon=horizon, noise_cov=noise**2 * torch.eye(2, dtype=_f64))


def _check_lqr(lqr, K, sigma) -> tuple[torch.Tensor, float]:
    return validate.instance(lqr, "lqr", LQR, "an LQR problem")._check(K, sigma)


def objective(lqr: LQR, K, sigma: float) -> torch.Tensor:
    r"""Exact expected return :math:`J(K) = \mathbb E[\sum_{t<H} r_t]` (a negative
    cost), differentiable in ``K``."""
    K, sigma = _check_lqr(lqr, K, sigma)
    closed = lqr.A + lqr.B @ K
    cov = lqr.initial_cov
    total = torch.zeros((), dtype=_f64)
    for _ in range(lqr.horizon):
        total = (total - torch.trace((lqr.Q + K.T @ lqr.R @ K) @ cov)
                 - sigma**2 * torch.trace(lqr.R))
        cov = closed @ cov @ closed.T + sigma**2 * lqr.B @ lqr.B.T + lqr.noise_cov
    return total


def exact_gradient(lqr: LQR, K, sigma: float) -> torch.Tensor:
    r""":math:`\nabla_K J(K)`, ``[m, n]``, by autodiff through the covariance recursion."""
    K, sigma = _check_lqr(lqr, K, sigma)
    K = K.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(objective(lqr, K, sigma), K)
    return grad


def _check_sample(lqr: LQR, K, sigma, n, generator) -> tuple[torch.Tensor, float, int, torch.Generator]:
    validate.instance(lqr, "lqr", LQR, "an LQR problem")
    K, sigma = lqr._check(K, sigma)
    n = validate.positive_int(n, "n")
    validate.memory(validate.nbytes(n, lqr.horizon, lqr.n_states + 2 * lqr.n_actions + 1),
                    f"{n} LQR trajectories of {lqr.horizon} steps")
    if not isinstance(generator, torch.Generator):
        generator = torch.Generator().manual_seed(validate.positive_int(generator, "generator", minimum=0))
    return K, sigma, n, generator


def sample(lqr: LQR, K, sigma: float, n: int, generator: torch.Generator | int) -> dict[str, torch.Tensor]:
    """``n`` trajectories: states ``[N, H, n]``, noises ``[N, H, m]`` (the :math:`\\varepsilon_t`), actions ``[N, H, m]``,
    rewards ``[N, H]`` (float64). ``generator``: a ``torch.Generator`` or an int seed."""
    K, sigma, n, g = _check_sample(lqr, K, sigma, n, generator)
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


def reinforce_gradients(lqr: LQR, K, sigma: float, n: int,
                        generator: torch.Generator | int,
                        credit: str = "reward_to_go") -> torch.Tensor:
    r"""Per-trajectory REINFORCE estimates of :math:`\nabla_K J`, ``[N, m, n]``:
    :math:`\hat g_i = \sum_t \frac{\varepsilon_{i,t}\,x_{i,t}^\top}{\sigma}\,w_{i,t}`.

    ``credit`` (which rewards step ``t`` is credited with, as in
    :func:`pglib.estimators.reinforce`): ``"return"`` (:math:`w_t = \sum_k r_k`,
    unbiased), ``"reward_to_go"`` (:math:`w_t = \sum_{k\ge t} r_k`, unbiased) or
    ``"next_reward_to_go"`` (:math:`w_t = \sum_{k>t} r_k`: drops the immediate reward,
    which depends on :math:`u_t` through :math:`u_t^\top R u_t` -- a deliberately biased
    negative control).
    """
    K, sigma = _check_lqr(lqr, K, sigma)
    validate.one_of(credit, "credit", _CREDITS)
    traj = sample(lqr, K, sigma, n, generator)
    r = traj["rewards"]
    if credit == "return":
        w = r.sum(-1, keepdim=True).expand_as(r)
    elif credit == "reward_to_go":
        w = reward_to_go(r, 1.0)
    else:  # "next_reward_to_go"
        w = reward_to_go(r, 1.0) - r
    # sum_t (eps_t / sigma) outer x_t * w_t  ->  [N, m, n]
    return torch.einsum("ntm,ntd,nt->nmd", traj["noises"] / sigma, traj["states"], w)
