"""The opening picture of chapters 2, 3, 6, 7, 8 and 9: each chapter's idea at a glance.

    python tools/idea_figures.py

Writes ``book/figures/idea_<NN>.png``. Every number drawn is exact (pglib's exact
solvers, enumeration of all trajectories, Gauss-Hermite quadrature), except chapter 9's
learning curves, which are the committed CartPole runs of
``benchmarks/results/ablation_cartpole.json``. Nothing depends on a SEED, and the PNGs
carry no software version or date, so a rerun writes the same bytes.
"""

from __future__ import annotations

import json
import pathlib
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pglib import enumeration, estimators, exact, mdp, offpolicy, scorefn  # noqa: E402

torch.set_default_dtype(torch.float64)
FIGURES = ROOT / "book" / "figures"
RUNS = ROOT / "benchmarks" / "results" / "ablation_cartpole.json"
DPI = 200  # twice the default: sharp on high-density screens and in the PDF
SIZE = (9.0, 3.6)  # inches; the page scales the figure to its column
# the running example of chapters 3 to 6
TWO_STATE_LOGITS = [[0.3, -0.2], [-0.6, 0.4]]


def finish(ax, heading, xlabel=None, ylabel=None, legend=None, **legend_options):
    """Title, axis labels and a small legend at ``legend`` (a matplotlib location)."""
    ax.set_title(heading)
    if xlabel:
        ax.set_xlabel(xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)
    if legend:
        ax.legend(fontsize=8, loc=legend, **legend_options)


def save(fig, chapter: str, suptitle: str) -> pathlib.Path:
    path = FIGURES / f"idea_{chapter}.png"
    fig.suptitle(suptitle, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI, metadata={"Software": None})
    plt.close(fig)
    return path


def chapter_02():
    """d moves with theta; the gradient needs score x Q under the current d only."""
    m = mdp.chain(5, gamma=0.9)
    theta = torch.zeros(m.n_states, m.n_actions)
    grad = exact.gradient(m, theta)
    moved = theta + 2.0 * grad / grad.norm()
    d_now, d_moved = exact.occupancy(m, theta), exact.occupancy(m, moved)
    pi, q = m.policy(theta).detach(), exact.q_values(m, theta)
    per_state = exact.softmax_score_expectation(pi, q)  # E_a[score * Q] in each state
    theorem = exact.theorem_gradient(m, theta)
    wrong = d_moved[:, None] * per_state / (1 - m.gamma)  # score x Q, the other d

    fig, (left, right) = plt.subplots(1, 2, figsize=SIZE)
    s = np.arange(m.n_states)
    left.bar(s - 0.2, d_now, 0.4, color="C0", label="d at θ (the uniform policy)")
    left.bar(s + 0.2, d_moved, 0.4, color="C1", label="d at θ' = θ + 2 ∇J/|∇J|")
    left.set_xticks(s, [f"state {k}" for k in s])
    left.set_ylim(0, 1.0)
    finish(
        left,
        "Changing θ moves the states visited",
        ylabel="discounted state distribution d(s)",
        legend="upper right",
    )

    k = np.arange(grad.numel())
    right.axhline(0, color="black", lw=0.8)
    right.bar(
        k,
        grad.flatten(),
        0.6,
        color="0.75",
        label=r"$\nabla J$ (autodiff of the exact J)",
    )
    right.plot(
        k,
        theorem.flatten(),
        "o",
        color="C0",
        ms=7,
        label=r"$E_{s\sim d_\theta,\,a\sim\pi_\theta}[\nabla\log\pi_\theta\,Q]"
        r"\,/\,(1-\gamma)$",
    )
    right.plot(
        k,
        wrong.flatten(),
        "x",
        color="C1",
        ms=8,
        mew=2,
        label="the same with s ~ d at θ': wrong",
    )
    names = [f"s{i}\n{'LR'[a]}" for i in range(m.n_states) for a in range(m.n_actions)]
    right.set_xticks(k, names, fontsize=8)
    lo = float(min(grad.min(), wrong.min()))
    hi = float(max(grad.max(), wrong.max()))
    right.set_ylim(lo - 0.1 * (hi - lo), hi + 0.6 * (hi - lo))
    finish(
        right,
        "∇J needs only score × Q under the current d",
        "parameter θ(s, a): state, action (L = left, R = right)",
        "gradient coordinate",
        legend="upper left",
    )
    return save(fig, "02", "chain(5), γ = 0.9: the policy-gradient theorem")


def chapter_03():
    """REINFORCE moves probability to the arms whose pulls bring more than a share."""
    means = torch.tensor([1.0, 0.8, 0.2])
    m = mdp.bandit(means.tolist())
    theta = torch.zeros(1, 3)
    pull_share = m.policy(theta).detach()[0]
    reward_share = pull_share * means / exact.objective(m, theta).item()
    step = exact.gradient(m, theta)[0]  # E[R score] = J (reward share - pull share)

    fig, (left, right) = plt.subplots(1, 2, figsize=SIZE)
    a = np.arange(3)
    left.bar(a - 0.27, pull_share, 0.27, color="0.7", label="share of the pulls")
    left.bar(
        a, reward_share, 0.27, color="C2", label="share of the reward they collect"
    )
    left.bar(
        a + 0.27,
        step,
        0.27,
        color="C0",
        label=r"expected logit update $E[R\,\nabla\log\pi]$ = J·(green − grey)",
    )
    left.axhline(0, color="black", lw=0.8)
    left.set_xticks(a, [f"arm {k}\nreward {r:.1f}" for k, r in enumerate(means)])
    left.set_ylim(-0.25, 0.95)
    finish(
        left,
        "One update, uniform policy: weight by return",
        ylabel="share (grey, green); logit change (blue)",
        legend="upper right",
    )

    eta, steps = 2.0, 40
    history = []
    for _ in range(steps + 1):
        history.append(m.policy(theta).detach()[0].numpy())
        theta = theta + eta * exact.gradient(m, theta)
    history = np.array(history)
    for k, color in enumerate(["C0", "C1", "C3"]):
        right.plot(
            np.arange(steps + 1),
            history[:, k],
            color=color,
            lw=2,
            label=f"π(arm {k}), reward {means[k]:.1f}",
        )
    right.set_ylim(0, 1)
    finish(
        right,
        "Repeated: the mass moves to the best arm",
        "update (expected REINFORCE step, step size 2)",
        "probability of the arm",
        legend="center right",
    )
    return save(
        fig,
        "03",
        "A three-armed bandit: actions in high-return " "trajectories gain probability",
    )


def chapter_06():
    """The surrogate's value is not J, but its slope at the current theta is J's."""
    m = mdp.two_state(gamma=1.0, horizon=5)
    theta0 = torch.tensor(TWO_STATE_LOGITS)
    grad = exact.gradient(m, theta0)
    u = grad / grad.norm()
    # the batch, frozen at theta0: its states, actions and weights (exact expectation)
    p = exact.time_occupancy(m, theta0)  # [T, S]
    pi0 = m.policy(theta0).detach()
    Q = exact.time_q_values(m, theta0).detach()  # [T, S, A]

    def surrogate(theta):
        log_pi = torch.log_softmax(theta, -1)
        return torch.einsum("ts,sa,sa,tsa->", p, pi0, log_pi, Q).item()

    s = np.linspace(-2.0, 2.0, 201)
    J = np.array([exact.objective(m, theta0 + x * u).item() for x in s])
    L = np.array([surrogate(theta0 + x * u) for x in s])
    J0, L0, slope = J[100], L[100], grad.norm().item()

    fig, (left, right) = plt.subplots(1, 2, figsize=SIZE)
    surrogate_label = (
        r"surrogate: mean $\Sigma_t\log\pi_\theta(a_t|s_t)\,G_t$"
        r" of a batch from $\theta_0$"
    )
    panels = (
        (left, J, J0, "C0", r"$J(\theta)$, the expected return"),
        (right, L, L0, "C3", surrogate_label),
    )
    near = np.abs(s) <= 1.0
    for ax, values, v0, color, name in panels:
        ax.plot(s, values, color=color, lw=2, label=name)
        ax.plot(
            s[near],
            v0 + slope * s[near],
            color="black",
            ls="--",
            lw=1.2,
            label=f"tangent at θ₀, slope |∇J| = {slope:.3f}",
        )
        ax.plot([0], [v0], "o", color="black")
        ax.axvline(0, color="0.6", lw=0.8, ls=":")
    # the same units per inch in both panels, so that equal slopes look equal
    ranges = [
        (min(v.min(), v0 - slope), max(v.max(), v0 + slope))
        for v, v0 in ((J, J0), (L, L0))
    ]
    span = 1.1 * max(high - low for low, high in ranges)
    for ax, (low, high) in zip((left, right), ranges):
        ax.set_ylim((low + high - span) / 2, (low + high + span) / 2)
    xlabel = "step along ∇J from θ₀ (length)"
    finish(
        left,
        f"J: value {J0:.2f} at θ₀",
        xlabel,
        "expected return J",
        legend="lower right",
    )
    finish(
        right,
        f"The surrogate: value {L0:.2f} at θ₀, same slope",
        xlabel,
        "surrogate value",
        legend="lower right",
    )
    return save(
        fig,
        "06",
        "Two-state MDP, T = 5: the surrogate's value is not J; "
        "its gradient at θ₀ is",
    )


def chapter_07():
    """Reweighting old samples; the weights' variance explodes as the policies part."""
    S, A = 5, 3
    raw = mdp.random_mdp(S, A, seed=3, gamma=1.0, horizon=20)
    g = torch.Generator().manual_seed(7)
    theta = 0.5 * torch.randn(S, A, generator=g)  # the new policy, as in chapter 7
    U = torch.randn(S, A, generator=g)  # where the old (behaviour) policies differ

    fig, (left, right) = plt.subplots(1, 2, figsize=SIZE)
    new = raw.policy(theta).detach()[0]
    old = raw.policy(theta + 0.5 * U).detach()[0]
    a = np.arange(A)
    left.bar(a - 0.2, old, 0.4, color="0.7", label="old policy (drew the batch)")
    left.bar(a + 0.2, new, 0.4, color="C0", label="new policy")
    for k in range(A):
        left.annotate(
            f"ρ = {new[k] / old[k]:.2f}",
            (k, max(new[k], old[k]).item() + 0.02),
            ha="center",
            fontsize=9,
        )
    left.set_xticks(a, [f"action {k}" for k in range(A)])
    left.set_ylim(0, 1.0)
    ratio = r"$\rho = \pi_{\mathrm{new}}/\pi_{\mathrm{old}}$"
    finish(
        left,
        f"Each old action is reweighted by {ratio}",
        ylabel="probability in state 0",
        legend="upper right",
    )

    t = np.arange(1, raw.horizon + 1)
    for c, color in zip((0.1, 0.3, 0.5, 0.8), ("C2", "C0", "C1", "C3")):
        second = offpolicy.weight_second_moment(raw, theta, theta + c * U).numpy()
        kl = offpolicy.time_kl(raw, theta, theta + c * U).mean().item()
        right.semilogy(
            t,
            second - 1,
            "-o",
            ms=3,
            color=color,
            label=f"c = {c}: per-step KL {kl:.3f}",
        )
    right.set_ylim(1e-3, 1e8)  # room for the legend above the curves
    finish(
        right,
        "Multiplied along the trajectory, they explode",
        "steps t whose ratios are multiplied, W = ρ₀ρ₁⋯ρₜ₋₁",
        "variance of the weight, E[W²] − 1",
        legend="upper left",
        title="old policy θ + c·U",
        title_fontsize=8,
    )
    return save(fig, "07", "Chapter 7's random 5-state MDP: exact importance weights")


def chapter_08():
    """The noise shrinks only like 1/sqrt(N), and grows like 1/sigma as sigma -> 0."""
    m = mdp.two_state(gamma=1.0, horizon=5)
    theta = torch.tensor(TWO_STATE_LOGITS)
    every = enumeration.all_trajectories(m, theta)
    estimates = estimators.reinforce(
        every.trajectories, theta, m.gamma, credit="return"
    )
    trace = every.total_variance(estimates).item()
    norm = exact.gradient(m, theta).norm().item()
    N = np.logspace(0, 4, 50)

    fig, (left, right) = plt.subplots(1, 2, figsize=SIZE)
    left.loglog(
        N,
        np.sqrt(trace / N) / norm,
        color="C0",
        lw=2,
        label=r"$\sqrt{\mathrm{tr}\,\Sigma/N}\,/\,|\nabla J|$",
    )
    left.axhline(
        1.0, color="C3", ls="--", lw=1.2, label="noise as large as the gradient"
    )
    n_one = trace / norm**2
    left.axvline(n_one, color="0.5", ls=":", lw=1)
    left.annotate(
        f"N = {n_one:.0f} = trΣ/|∇J|²",
        (n_one, 3.0),
        xytext=(5, 0),
        textcoords="offset points",
        fontsize=9,
    )
    finish(
        left,
        "REINFORCE, two-state MDP, T = 5",
        "batch size N (trajectories)",
        "RMS error / |∇J| (exact)",
        legend="lower left",
    )

    # one step, a ~ N(0, sigma^2), reward -(a - 1)^2: the exact variance of R * score
    # by Gauss-Hermite quadrature (exact for these polynomials of degree <= 6)
    nodes, w = np.polynomial.hermite_e.hermegauss(20)
    w = torch.tensor(w / w.sum())[:, None]
    sigmas = np.logspace(-3, 0, 40)
    var = []
    for sigma in sigmas:
        a = torch.tensor(sigma * nodes)
        g = -((a - 1.0) ** 2)[:, None] * scorefn.gaussian_score(0.0, np.log(sigma), a)
        var.append((w * (g - (w * g).sum(0)) ** 2).sum(0).numpy())
    var = np.array(var)
    right.loglog(
        sigmas,
        var[:, 0],
        color="C0",
        lw=2,
        label=r"mean part $\hat g_\mu$: $\propto 1/\sigma^2$ as $\sigma\to 0$",
    )
    right.loglog(
        sigmas, var[:, 1], color="C1", lw=2, label=r"$\log\sigma$ part: stays $O(1)$"
    )
    finish(
        right,
        "Policy N(0, σ²), reward −(a − 1)²: small σ costs",
        "policy standard deviation σ",
        "variance of one estimate (exact)",
        legend="upper right",
    )
    return save(fig, "08", "Unbiased is not enough: the noise of the estimate")


def loop_diagram(ax):
    """Three boxes, collect -> estimate -> update, joined by arrows in a cycle."""
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 10)
    ax.axis("off")
    boxes = [
        (5.0, 8.3, "collect N episodes\n" r"with $\pi_\theta$"),
        (
            7.9,
            3.2,
            r"estimate $\nabla J$:"
            "\n"
            r"$\hat g$ = mean of"
            "\n"
            r"$\hat A_t\,\nabla\log\pi_\theta(a_t|s_t)$",
        ),
        (2.1, 3.2, "update\n" r"$\theta \leftarrow \theta + \eta\,\hat g$"),
    ]
    for x, y, text in boxes:
        ax.add_patch(
            FancyBboxPatch(
                (x - 1.9, y - 1.0),
                3.8,
                2.0,
                fc="#e8f0fa",
                ec="C0",
                lw=1.5,
                boxstyle="round,pad=0.1",
            )
        )
        ax.text(x, y, text, ha="center", va="center", fontsize=9)
    for start, end in (
        ((7.0, 8.0), (8.3, 4.4)),
        ((5.9, 3.2), (4.1, 3.2)),
        ((1.7, 4.4), (3.0, 8.0)),
    ):
        ax.add_patch(
            FancyArrowPatch(
                start,
                end,
                arrowstyle="-|>",
                mutation_scale=16,
                color="C0",
                lw=1.5,
                connectionstyle="arc3,rad=-0.2",
            )
        )
    ax.text(5, 5.4, "repeat", ha="center", va="center", fontsize=9, style="italic")
    ax.set_title("The loop, the same as on the small MDPs")


def chapter_09():
    """The loop collect -> estimate -> update, and the return rising on CartPole."""
    data = json.loads(RUNS.read_text())
    variant = "+ advantage normalization"
    runs = data["runs"][variant]
    fig, (left, right) = plt.subplots(
        1, 2, figsize=SIZE, gridspec_kw={"width_ratios": [1, 1.3]}
    )
    loop_diagram(left)

    start = max(run["eval_steps"][0] for run in runs)
    grid = np.linspace(start, data["budget"], 101)
    curves = []
    for k, run in enumerate(runs):
        right.plot(
            np.array(run["eval_steps"]) / 1000,
            run["eval_returns"],
            color="0.75",
            lw=0.8,
            label="one seed" if k == 0 else None,
        )
        curves.append(np.interp(grid, run["eval_steps"], run["eval_returns"]))
    right.plot(
        grid / 1000,
        np.mean(curves, axis=0),
        color="C0",
        lw=2.2,
        label=f"mean of {len(runs)} seeds ({variant[2:]})",
    )
    right.axhline(
        data["threshold"],
        color="C3",
        ls="--",
        lw=1.2,
        label=f"solved: {data['threshold']:.0f}",
    )
    right.set_ylim(0, 560)
    finish(
        right,
        "CartPole-v1: the chapter's REINFORCE runs",
        "environment steps (thousands)",
        "evaluation return (20 episodes)",
        legend="lower right",
    )
    return save(fig, "09", "Practice: the return rises over the loop's iterations")


def main() -> None:
    FIGURES.mkdir(parents=True, exist_ok=True)
    chapters = (chapter_02, chapter_03, chapter_06, chapter_07, chapter_08, chapter_09)
    for make in chapters:
        print(make().relative_to(ROOT))


if __name__ == "__main__":
    main()
