"""pglib.validate: every kind of bad argument is refused with a message that names it; valid ones pass.

Property-based (hypothesis, profiles in conftest.py): generated values of each class.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from pglib import validate as v

BAD = (TypeError, ValueError)

ints = st.integers(min_value=1, max_value=10**6)
int_like = st.one_of(ints, ints.map(np.int64), ints.map(np.int32), ints.map(lambda n: torch.tensor(n)))
not_ints = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.booleans(), st.text(max_size=3), st.complex_numbers(),
    st.none(), st.just([1]), st.just(np.float64(2.0)), st.just(torch.tensor(2.0)), st.just(np.bool_(True)),
)
bad_reals = st.one_of(st.booleans(), st.text(max_size=3), st.complex_numbers(), st.none(), st.just([0.5]),
                      st.just(float("nan")), st.just(np.bool_(False)), st.just(torch.tensor([0.5, 0.5])))


@given(int_like)
def test_positive_int_accepts_python_numpy_and_torch_integers(n):
    assert v.positive_int(n, "n") == int(n) and type(v.positive_int(n, "n")) is int


@given(not_ints)
def test_positive_int_refuses_everything_else_by_name(x):
    with pytest.raises(TypeError, match="^n must be a positive integer; got"):
        v.positive_int(x, "n")


@given(st.integers(max_value=0))
def test_positive_int_refuses_zero_and_negatives(n):
    with pytest.raises(ValueError, match="n must be a positive integer; got"):
        v.positive_int(n, "n")


def test_seed_accepts_numpy_zero_and_none():
    assert v.seed(np.int64(0)) == 0 and v.seed(None) is None
    with pytest.raises(ValueError, match="seed"):
        v.seed(-1)


@given(st.floats(0.0, 1.0))
def test_gamma_accepts_every_number_in_the_unit_interval(g):
    assert v.gamma(g) == g and v.gamma(np.float32(g)) == float(np.float32(g))


@given(st.one_of(bad_reals, st.floats(1.0, 1e9, exclude_min=True), st.floats(-1e9, 0.0, exclude_max=True),
                 st.just(math.inf)))
def test_gamma_refuses_strings_bools_complex_nan_and_out_of_range(g):
    with pytest.raises(BAD, match="^gamma must be a real number in \\[0, 1\\]; got"):
        v.gamma(g)


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=6))
def test_floats_keeps_float64_precision_of_lists(xs):
    t = v.floats(xs, "x")
    assert t.dtype == torch.float64 and t.tolist() == xs


@given(st.lists(st.integers(-100, 100), min_size=1, max_size=6))
def test_integer_rewards_become_float64(xs):
    t = v.floats(torch.tensor(xs), "rewards")
    assert t.dtype == torch.float64 and t.tolist() == [float(x) for x in xs]


@pytest.mark.parametrize("x", [torch.tensor([1j]), np.array(["a"]), ["a", "b"], torch.tensor([True]), [True],
                               object(), None, "1.0", {"a": 1}, np.array([object()])])
def test_floats_refuses_non_real_kinds(x):
    with pytest.raises(TypeError, match="^rewards must be a real-valued array"):
        v.floats(x, "rewards")


@given(st.sampled_from([math.nan, math.inf, -math.inf]), st.integers(0, 4))
def test_floats_refuses_nan_and_inf_and_says_where(bad, where):
    x = [0.0] * 5
    x[where] = bad
    with pytest.raises(ValueError, match=rf"rewards must hold finite numbers; got .*at index \({where},\)"):
        v.floats(x, "rewards")


@given(st.sampled_from([torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8]))
def test_integers_accepts_every_integer_width(dtype):
    t = v.integers(torch.tensor([[0, 1], [2, 3]], dtype=dtype), "states", high=4)
    assert t.dtype == torch.long and t.tolist() == [[0, 1], [2, 3]]


@given(st.integers(-10**6, -1))
def test_integers_refuses_negative_indices(i):
    with pytest.raises(ValueError, match=r"states must lie in \[0, 4\); got values in"):
        v.integers([0, i], "states", high=4)


def test_integers_refuses_floats_and_bools_and_indices_past_the_end():
    with pytest.raises(TypeError, match="states must be an integer tensor"):
        v.integers(torch.tensor([0.0, 1.0]), "states")
    with pytest.raises(TypeError, match="states must be an integer"):
        v.integers([True, False], "states")
    with pytest.raises(ValueError, match=r"actions must lie in \[0, 2\)"):
        v.integers([0, 2], "actions", high=2)


def test_mask_must_be_boolean_and_of_the_right_shape():
    assert v.mask([True, False], shape=(2,)).tolist() == [True, False]
    with pytest.raises(TypeError, match="mask must be torch.bool"):
        v.mask([1, 0])
    with pytest.raises(ValueError, match=r"mask must have shape \[3\]"):
        v.mask([True, False], shape=(3,))
    with pytest.raises(ValueError, match="mask selects no step"):
        v.mask([False], nonempty=True)


def test_logits_keep_gradients_and_check_the_mdp_shape():
    theta = torch.zeros(2, 3, requires_grad=True)
    out = v.logits(theta)
    assert out.requires_grad and out.dtype == torch.float64

    class M:
        n_states, n_actions = 2, 2

    with pytest.raises(ValueError, match=r"logits must have shape \[S, A\] = \[2, 2\] to match the MDP"):
        v.mdp_logits(M(), theta)
    with pytest.raises(TypeError, match="logits must be a real-valued"):
        v.mdp_logits(M(), torch.zeros(2, 2, dtype=torch.complex128))


@given(st.integers(1, 2**50))
def test_memory_refuses_with_the_bytes_needed(n):
    need = v.nbytes(n, 8, 8)
    if need > v.MEMORY_BUDGET:
        with pytest.raises(ValueError, match=rf"the batch would need .* \({need} bytes\) of memory"):
            v.memory(need, "the batch")
    else:
        assert v.memory(need, "the batch") == need


def test_steps_cap_and_real_interval_ends():
    assert v.steps(v.MAX_STEPS, "horizon") == v.MAX_STEPS
    with pytest.raises(ValueError, match="horizon must be at most"):
        v.steps(v.MAX_STEPS + 1, "horizon")
    assert v.real(1e-3, "eps", low=0.0, high=1.0, low_open=True, high_open=True) == 1e-3
    for bad in (0.0, 1.0):
        with pytest.raises(ValueError, match=r"eps must be a real number in \(0, 1\)"):
            v.real(bad, "eps", low=0.0, high=1.0, low_open=True, high_open=True)
    assert v.real(math.inf, "atol", low=0.0, allow_inf=True) == math.inf


def test_flag_one_of_and_instance():
    assert v.flag(np.bool_(True), "x") is True
    with pytest.raises(TypeError, match="x must be True or False; got 1"):
        v.flag(1, "x")
    assert v.one_of("k1", "estimator", ("k1", "k3")) == "k1"
    with pytest.raises(ValueError, match="estimator must be one of"):
        v.one_of("k2", "estimator", ("k1", "k3"))
    with pytest.raises(TypeError, match="traj must be a Trajectories batch; got int"):
        v.instance(3, "traj", tuple, "a Trajectories batch")


@given(st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=5))
def test_float_array_numpy_in_numpy_out_and_never_aliases(xs):
    arr = np.array(xs, dtype=np.float32)
    out = v.float_array(arr, "rewards")
    assert isinstance(out, np.ndarray) and out.dtype == np.float64
    out[0] = 123.0
    assert arr[0] == np.float32(xs[0])
    t = torch.tensor(xs, dtype=torch.float32)
    tout = v.float_array(t, "rewards")
    assert tout.dtype == torch.float32 and tout.data_ptr() != t.data_ptr()
