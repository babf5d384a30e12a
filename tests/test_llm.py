"""The sequence problem, grouped sampling, and the group (LLM) losses against independent computations."""

import itertools

import pytest
import torch

import pglib
from pglib import exact, llm
from pglib.mdp import sequence_problem

DT = torch.float64


@pytest.fixture(scope="module")
def problem():
    m = sequence_problem()
    g = torch.Generator().manual_seed(0)
    return m, 0.3 * torch.randn(m.n_states, m.n_actions, generator=g, dtype=DT)


def _responses(m, q):
    """Every response to prompt q, by brute force over token strings: (tokens, right)."""
    out = []
    V, L = m.n_actions - 1, m.horizon
    for k in range(L + 1):
        for body in itertools.product(range(1, V + 1), repeat=k):
            ended = k < L
            right = ended and sum(1 for v in body if v == V) == m.targets[q]
            out.append((list(body) + ([0] if ended else []), right))
    return out


def test_sequence_problem_objective_by_brute_force(problem):
    m, th = problem
    pi = torch.softmax(th, -1)
    names = {n: s for s, n in enumerate(m.state_names)}
    J = 0.0
    for q in range(m.n_prompts):
        for tokens, right in _responses(m, q):
            p, prefix = 1.0 / m.n_prompts, ""
            for v in tokens:
                p *= float(pi[names[f"q{q}:{prefix}"], v])
                prefix += m.action_names[v] if v else ""
            J += p * right
    assert abs(float(exact.objective(m, th)) - J) < 1e-12
    assert len(pglib.enumeration.all_trajectories(m, th)) == sum(len(_responses(m, q)) for q in range(3)) == 45


def test_sequence_problem_bad_input():
    with pytest.raises(ValueError, match="targets"):
        sequence_problem(targets=(0, 3), max_length=3)
    with pytest.raises(ValueError, match="prompt_probs"):
        sequence_problem(prompt_probs=[0.5, 0.5])
    with pytest.raises(TypeError, match="targets"):
        sequence_problem(targets="01")


def test_grouped_sampling(problem):
    m, th = problem
    plain = pglib.sample_trajectories(m, th, 24, seed=3)
    for G in (None, 1):
        same = pglib.sample_trajectories(m, th, 24, seed=3, group_size=G)
        assert all(torch.equal(getattr(plain, f), getattr(same, f)) for f in ("states", "actions", "rewards", "mask"))
    t = pglib.sample_trajectories(m, th, 4000, seed=3, group_size=4)
    first = t.states[:, 0].reshape(-1, 4)
    assert bool((first == first[:, :1]).all())
    # prompts uniform over 1000 groups: each count within 6 sd of 333 (false alarm < 1e-8)
    counts = torch.bincount(m.prompt[first[:, 0]], minlength=3).double()
    assert bool(((counts - 1000 / 3).abs() < 6 * (1000 * 2 / 9) ** 0.5).all())
    assert len(set(t.actions[:4, 0].tolist())) > 1 or len(set(t.actions[4:8, 0].tolist())) > 1
    with pytest.raises(ValueError, match="group_size"):
        pglib.sample_trajectories(m, th, 10, seed=0, group_size=4)


def test_group_advantages_by_hand():
    R = torch.tensor([[1.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0]], dtype=DT)
    loo = llm.group_advantages(R, "leave_one_out")
    assert torch.allclose(loo[0], torch.tensor([1 - 1 / 3, -2 / 3, -2 / 3, 1 - 1 / 3], dtype=DT))
    std = llm.group_advantages(R, "mean", "std")
    s = float(torch.tensor([1.0, 0, 0, 1]).std())
    assert torch.allclose(std[0], torch.tensor([0.5, -0.5, -0.5, 0.5], dtype=DT) / (s + llm.STD_EPS))
    assert float(std[1].abs().max()) == 0.0


@pytest.mark.parametrize("G", [2, 3])
def test_known_scales(problem, G):
    """REINFORCE and RLOO give grad J (dynamic programming); Dr. GRPO (G-1)/(G L) grad J."""
    m, th = problem
    grad = exact.gradient(m, th)
    for f, c in ((llm.reinforce, 1.0), (llm.rloo, 1.0), (llm.dr_grpo, (G - 1) / (G * m.horizon))):
        assert torch.allclose(llm.expected_gradient(f, m, th, G), c * grad, atol=1e-12)


def test_response_weights_and_decomposition(problem):
    m, th = problem
    G = 3
    w, en = llm.response_weights(llm.reinforce, m, th, G)
    R = en.traj.rewards.sum(1)
    assert torch.allclose(w, R, atol=1e-12)
    w, en = llm.response_weights(llm.dr_grpo, m, th, G)
    V = torch.zeros(m.n_prompts, dtype=DT)
    for q in range(m.n_prompts):
        on = en.prompt == q
        V[q] = (en.prob[on] * R[on]).sum() / en.prob[on].sum()
    assert torch.allclose(w, (G - 1) / (G * m.horizon) * (R - V[en.prompt]), atol=1e-12)
    grad = exact.gradient(m, th)
    for f in (llm.grpo, llm.dapo):
        w, en = llm.response_weights(f, m, th, G)
        d = llm.decompose(w, en, m, th)
        assert torch.allclose(d["mean"], llm.expected_gradient(f, m, th, G), atol=1e-12)
        assert torch.allclose(d["gradient"], grad, atol=1e-12)
        assert torch.allclose(d["scale"] + d["difficulty"] + d["length"], d["mean"] - grad, atol=1e-12)
        assert float(d["length"].norm()) > 1e-3 * float(grad.norm())


EXPECT = {  # loss -> (unbiased, unbiased up to scale) that check_loss must report
    "reinforce": (True, True), "rloo": (True, True), "dr_grpo": (False, True),
    "grpo": (False, False), "gspo": (False, False),
    "dapo": (False, None), "bnpo": (False, None), "cispo": (False, None),
}


@pytest.mark.parametrize("name", list(EXPECT))
def test_check_loss_verdict_per_loss(problem, name):
    """check_loss on grouped batches gives the exact verdict; its enumerated exact bias (one loss
    call per listed group) equals llm.expected_gradient (all groups in one vectorized call)."""
    m, th = problem
    G, f = 2, llm.LOSSES[name]
    r = pglib.check_loss(llm.for_check(f, G), m, th, batch_size=4 * G, n_batches=1000, seed=0, group_size=G)
    unbiased, up_to_scale = EXPECT[name]
    assert r.unbiased is unbiased
    if up_to_scale is not None:
        assert r.unbiased_up_to_scale is up_to_scale
    grad = exact.gradient(m, th)
    exact_mean = llm.expected_gradient(f, m, th, G)
    v = llm.verdict(exact_mean, grad)
    assert v["verdict"] == {(True, True): "grad J", (False, True): "positive multiple"}.get(EXPECT[name], "other")
    if name in ("dapo", "bnpo", "cispo"):  # the token mean couples the groups of a batch
        assert r.exact_bias is None
        r1 = pglib.check_loss(llm.for_check(f, G), m, th, batch_size=G, n_batches=200, seed=0, group_size=G)
        assert torch.allclose(r1.exact_bias, exact_mean - grad, atol=1e-12)
    else:
        assert torch.allclose(r.exact_bias, exact_mean - grad, atol=1e-12)
        if not unbiased:
            assert float(r.exact_bias.norm()) > r.detectable_bias


def test_kl_estimators(problem):
    """k1 as a reward has gradient grad KL exactly; k1 as a loss has mean gradient 0; k2 and k3
    as losses miss the later tokens' KL (checked against autograd of the listed KL)."""
    m, th = problem
    g = torch.Generator().manual_seed(1)
    ref = th + 0.5 * torch.randn(th.shape, generator=g, dtype=DT)
    theta = th.clone().requires_grad_(True)
    (gkl,) = torch.autograd.grad(llm.exact_kl(m, theta, ref), theta)

    def mean_grad(fn, est):
        return -llm.expected_gradient(fn, m, th, 2, logits_ref=ref, estimator=est)

    assert torch.allclose(mean_grad(llm.kl_reward_loss, "k1"), gkl, atol=1e-12)
    assert float(mean_grad(llm.kl_loss, "k1").abs().max()) < 1e-12
    for est in ("k2", "k3"):
        assert float((mean_grad(llm.kl_loss, est) - gkl).norm()) > 1e-3 * float(gkl.norm())


def test_group_gradients_match_autograd_per_group(problem):
    m, th = problem
    G = 3
    traj = pglib.sample_trajectories(m, th, 30 * G, seed=5, group_size=G)
    for f in llm.LOSSES.values():
        fast = llm.group_gradients(f, m, th, traj, G)
        for k in (0, 7, 29):
            theta = th.clone().requires_grad_(True)
            (g,) = torch.autograd.grad(llm.for_check(f, G)(traj[k * G:(k + 1) * G], theta), theta)
            assert torch.allclose(fast[k], -g, atol=1e-12)


@pytest.mark.parametrize("name", list(llm.MISTAKES))
def test_llm_mistakes_are_caught_by_check_loss(problem, name):
    """Each mistake from public LLM-RL code gets check_loss's verdict on grouped batches that
    matches its exact mean (listed groups, batches of one group)."""
    m, th = problem
    mistake = llm.MISTAKES[name]
    G = 4  # with G <= 3 and 0/1 rewards every nonzero group std is the same: only a scale
    grad = exact.gradient(m, th)
    assert llm.verdict(llm.expected_gradient(mistake.loss, m, th, G), grad)["verdict"] == mistake.expect
    r = pglib.check_loss(llm.for_check(mistake.loss, G), m, th, batch_size=2 * G, n_batches=1000,
                         seed=0, group_size=G)
    assert not r.unbiased
    assert r.unbiased_up_to_scale is (mistake.expect == "positive multiple") or mistake.expect == "other"
    assert mistake.source.count("#") == 1 and mistake.url.startswith("https://github.com/")
