"""pglib.practice.policies and pglib.practice.device against hand formulas and sampling frequencies."""

import math

import numpy as np
import pytest
import torch
from gymnasium import spaces

from pglib.practice import device as pgdevice
from pglib.practice.policies import CategoricalMLP, GaussianMLP, ValueMLP, mlp, policy_for


def test_categorical_log_prob_is_log_softmax_by_hand():
    torch.manual_seed(0)
    pi = CategoricalMLP(4, 3, hidden=(8,))
    with torch.no_grad():
        pi.net[-1].weight.normal_()  # make the policy far from uniform
    obs = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    W1, b1 = pi.net[0].weight.detach().double().numpy(), pi.net[0].bias.detach().double().numpy()
    W2, b2 = pi.net[2].weight.detach().double().numpy(), pi.net[2].bias.detach().double().numpy()
    logits = np.tanh(obs @ W1.T + b1) @ W2.T + b2
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    actions = torch.tensor([0, 1, 2, 1, 0])
    got = pi(obs).log_prob(actions).detach().double().numpy()
    np.testing.assert_allclose(got, logp[np.arange(5), actions.numpy()], rtol=1e-5)


def test_gumbel_max_sampler_draws_from_softmax():
    torch.manual_seed(1)
    pi = CategoricalMLP(2, 3, hidden=(4,))
    with torch.no_grad():
        pi.net[-1].weight.normal_()
        pi.net[-1].bias.copy_(torch.tensor([0.5, -0.5, 0.0]))
    obs = np.tile([[0.3, -0.2]], (60_000, 1))
    probs = pi(obs[:1]).probs[0].detach().double().numpy()
    a = pi.sampler()(obs, np.random.default_rng(0))
    freq = np.bincount(a, minlength=3) / len(a)
    se = np.sqrt(probs * (1 - probs) / len(a))
    assert np.all(np.abs(freq - probs) < 4.5 * se), (freq, probs)


def test_gaussian_log_prob_matches_hand_formula():
    torch.manual_seed(2)
    pi = GaussianMLP(3, 2, hidden=(8,), log_std=-0.3)
    obs = torch.randn(6, 3)
    a = torch.randn(6, 2)
    mu = pi.mean(obs).detach().double()
    sigma = math.exp(-0.3)
    want = (-((a.double() - mu) ** 2) / (2 * sigma**2) - math.log(sigma) - 0.5 * math.log(2 * math.pi)).sum(-1)
    torch.testing.assert_close(pi(obs).log_prob(a).double(), want, rtol=1e-5, atol=1e-5)
    assert pi(obs).sample().shape == (6, 2)


def test_gaussian_sampler_moments_and_linear_policy():
    pi = GaussianMLP(2, 1, hidden=(), bias=False, log_std=math.log(0.5))
    with torch.no_grad():
        pi.net[0].weight.copy_(torch.tensor([[1.0, -2.0]]))
    obs = np.tile([[1.0, 1.0]], (40_000, 1))
    u = pi.sampler()(obs, np.random.default_rng(0))
    assert u.shape == (40_000, 1)
    assert abs(u.mean() - (-1.0)) < 4 * 0.5 / 200 and abs(u.std() - 0.5) < 0.01
    torch.testing.assert_close(pi.mean(torch.tensor([[1.0, 1.0]])), torch.tensor([[-1.0]]))


def testnumpy_forward_equals_torch_forward():
    torch.manual_seed(3)
    pi = CategoricalMLP(4, 2, hidden=(16, 16), activation="relu")
    with torch.no_grad():
        pi.net[-1].weight.normal_()
    obs = np.random.default_rng(1).normal(size=(7, 4))
    from pglib.practice.policies import numpy_forward

    np.testing.assert_allclose(numpy_forward(pi.net, "relu")(obs), pi.logits(obs).detach().numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("hidden", [(), (8,), (32, 32), (8, 8, 8)])
@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("shape", [(4,), (6, 4), (2, 3, 4)])
def testnumpy_forward_any_depth_and_input_rank(hidden, activation, shape):
    # the rollout path: same values as the float64 torch network, and the caller's input left untouched
    torch.manual_seed(0)
    net = torch.nn.Sequential(*CategoricalMLP(4, 3, hidden=hidden, activation=activation).net).double()
    with torch.no_grad():
        for p in net.parameters():
            p.normal_()
    obs = np.random.default_rng(2).normal(size=shape)
    before = obs.copy()
    from pglib.practice.policies import numpy_forward

    got = numpy_forward(net, activation)(obs)
    np.testing.assert_allclose(got, net(torch.as_tensor(obs)).detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(obs, before)


def test_value_mlp_shapes_and_mlp_layout():
    v = ValueMLP(4, hidden=(8,))
    assert v(np.zeros((5, 4))).shape == (5,)
    assert v(np.zeros((2, 5, 4))).shape == (2, 5)
    net = mlp([4, 64, 2])
    assert [type(m).__name__ for m in net] == ["Linear", "Tanh", "Linear"]


def test_policy_for_spaces_and_bad_inputs():
    box = spaces.Box(-1, 1, (3,))
    assert isinstance(policy_for(box, spaces.Discrete(4)), CategoricalMLP)
    assert isinstance(policy_for(box, spaces.Box(-2, 2, (2,))), GaussianMLP)
    with pytest.raises(ValueError, match="action_space"):
        policy_for(box, spaces.MultiBinary(3))
    with pytest.raises(ValueError, match="observation_space"):
        policy_for(spaces.Discrete(3), spaces.Discrete(2))
    with pytest.raises(ValueError, match="obs"):
        CategoricalMLP(4, 2)(torch.zeros(3, 5))
    with pytest.raises(ValueError, match="n_actions"):
        CategoricalMLP(4, 0)
    with pytest.raises(ValueError, match="activation"):
        mlp([2, 2], activation="gelu")


def test_default_device_is_the_one_place_that_decides(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pgdevice.default_device() == torch.device("cpu")
    assert pgdevice.resolve_device(None) == torch.device("cpu")
    with pytest.raises(ValueError, match="CUDA"):
        pgdevice.resolve_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pgdevice.default_device() == torch.device("cuda")
    with pytest.raises(ValueError, match="device"):
        pgdevice.resolve_device("not-a-device")


def test_device_follows_parameters_cpu():
    pi = GaussianMLP(3, 1)
    assert pi.device == torch.device("cpu")
    assert pi(np.zeros((2, 3))).mean.device == torch.device("cpu")


@pytest.mark.gpu
def test_device_follows_parameters_cuda():
    pi = CategoricalMLP(4, 2).to("cuda")
    dist = pi(np.zeros((3, 4), dtype=np.float32))  # numpy input is moved to the parameters' device
    assert dist.logits.device.type == "cuda"
    assert pi.sampler()(np.zeros((3, 4)), np.random.default_rng(0)).shape == (3,)
