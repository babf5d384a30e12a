r"""Input validation for all of pglib: one place that decides what a valid argument is.

Every public function of pglib checks its arguments at the door with calls into this module,
then computes its formula. A refusal is a ``TypeError`` (the argument has the wrong kind: a
string, a bool, a complex number, a float where an integer is needed) or a ``ValueError`` (the
right kind, a wrong value: NaN, out of range, a wrong shape, too big), and its message names the
argument, says what was expected and shows what came. (The ``TypeError`` is an
:class:`ArgumentTypeError`, which is a ``ValueError`` too.)::

    >>> positive_int(2.5, "n")
    Traceback (most recent call last):
    pglib.validate.ArgumentTypeError: n must be a positive integer; got 2.5 (float)

The rules, once for every module:

- **numbers** are real: ``bool``, complex, strings and objects are refused where numbers are
  expected (``gamma="0.9"``, ``gamma=True``, complex logits);
- **integers** are Python, numpy or 0-d torch integers; floats are refused, never truncated
  (``horizon=2.5``); integer tensors of any width (``int16`` states) are accepted;
- **indices** (states, actions) are non-negative and below their bound: no wrap-around;
- **floats** are float64 unless a function keeps its input's float type; an integer tensor
  where floats are expected (rewards) is converted to float64 explicitly, so arithmetic on it
  is never integer arithmetic;
- **finite**: NaN and infinities are refused wherever a number is expected;
- **sizes** are checked against :data:`MEMORY_BUDGET` before anything is allocated
  (:func:`memory`, with the bytes the call would need) and loops against :data:`MAX_STEPS`
  (:func:`steps`), so a bad request fails at once instead of hanging.

Tensors returned by :func:`floats`, :func:`integers` and :func:`mask` are copies when
``copy=True`` (for state that must not change behind the function's back, e.g. an MDP).
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Iterable

import numpy as np
import torch

__all__ = [
    "DTYPE", "MEMORY_BUDGET", "MAX_STEPS", "ArgumentTypeError",
    "describe", "floats", "float_array", "integers", "mask", "logits", "mdp_logits", "batch", "batch_logits",
    "positive_int", "group_size", "nonnegative_int", "seed", "real", "gamma", "clip_eps", "probability", "flag", "one_of",
    "instance", "same_shape", "finite", "distribution", "memory", "nbytes", "steps",
    "COV_RTOL", "MAX_CALLS", "real_or_none", "covariance", "function", "calls", "unchanged", "versions",
    "string", "mapping",
]

DTYPE = torch.float64
#: the most memory (bytes) one call may ask for; larger requests are refused up front
MEMORY_BUDGET = 4 * 2**30
#: the most time steps one loop may run (a horizon, an episode without a time limit)
MAX_STEPS = 10**6
#: the most calls of a reader's own function (a loss, an update) one check may make; at a
#: millisecond or more per call, more would run for minutes before saying anything
MAX_CALLS = 100_000
#: relative tolerance of :func:`covariance`: asymmetry up to ``COV_RTOL * max|C|`` and negative
#: eigenvalues down to ``-COV_RTOL * max|C|`` count as float64 rounding; anything beyond is refused
COV_RTOL = 1e-9

_INT_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong kind (a string, a bool, a complex number, a float for an integer ...).

    A ``TypeError``, and also a ``ValueError``, so code that catches pglib's refusals as
    ``ValueError`` (as it did before this module existed) still catches every one of them.
    """


# ----------------------------------------------------------------------------- messages


def describe(x: Any) -> str:
    """A short description of what came: the value (shortened) and its type, or a tensor's shape and dtype."""
    if isinstance(x, torch.Tensor):
        if x.ndim == 0:
            return f"{x.item()!r} (0-d tensor of {x.dtype})"
        return f"a tensor of shape {tuple(x.shape)} and dtype {x.dtype}"
    if isinstance(x, np.ndarray):
        if x.ndim == 0:
            return f"{x.item()!r} (0-d array of {x.dtype})"
        return f"an array of shape {x.shape} and dtype {x.dtype}"
    text = repr(x)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(x).__name__})"


def _kind_error(name: str, expected: str, x: Any) -> ArgumentTypeError:
    return ArgumentTypeError(f"{name} must be {expected}; got {describe(x)}")


# ----------------------------------------------------------------------------- tensors


def _as_tensor(x: Any, name: str, expected: str) -> torch.Tensor:
    """Any array-like as a tensor, without losing precision (lists go through numpy float64)."""
    if isinstance(x, torch.Tensor):
        t = x
    elif isinstance(x, (str, bytes)) or x is None or isinstance(x, dict):
        raise _kind_error(name, expected, x)
    else:
        try:
            arr = np.asarray(x)
        except (TypeError, ValueError, RuntimeError) as e:
            raise ArgumentTypeError(f"{name} must be {expected}; got {describe(x)} ({e})") from None
        if arr.dtype.kind not in "biuf":
            raise ArgumentTypeError(f"{name} must be {expected}; got {describe(x)} with elements of dtype {arr.dtype}")
        if arr.dtype.kind == "u" and arr.dtype != np.uint8:
            arr = arr.astype(np.int64)  # torch has no uint16/32/64 arithmetic
        t = torch.from_numpy(np.array(arr, copy=True))
    if t.dtype == torch.bool or t.is_complex() or not (t.is_floating_point() or t.dtype in _INT_DTYPES):
        raise ArgumentTypeError(f"{name} must be {expected}; got {describe(t if isinstance(x, torch.Tensor) else x)}"
                        + ("" if isinstance(x, torch.Tensor) else f" (elements of dtype {t.dtype})"))
    return t


def _check_shape(t: torch.Tensor, name: str, ndim, min_ndim, shape, dims: str | None = None) -> None:
    if ndim is not None and t.ndim != ndim:
        want = f"shape {dims}" if dims else f"{ndim} dimension{'s' if ndim != 1 else ''}"
        raise ValueError(f"{name} must have {want}; got shape {tuple(t.shape)}")
    if min_ndim is not None and t.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimension{'s' if min_ndim != 1 else ''}; "
                         f"got shape {tuple(t.shape)}")
    if shape is not None:
        if len(shape) != t.ndim or any(s is not None and s != d for s, d in zip(shape, t.shape)):
            if dims and dims.startswith("of "):  # the shape of another argument
                raise ValueError(f"{name} must have the shape {dims}, {_shape_text(shape)}; got {tuple(t.shape)}")
            want = f"{dims} = {_shape_text(shape)}" if dims else _shape_text(shape)
            raise ValueError(f"{name} must have shape {want}; got {tuple(t.shape)}")


def _shape_text(shape) -> str:
    return "[" + ", ".join("*" if s is None else str(s) for s in shape) + "]"


def finite(t: torch.Tensor, name: str) -> torch.Tensor:
    """``t`` itself, or ``ValueError`` if a floating tensor holds NaN or an infinity (says where and how many)."""
    if t.is_floating_point():
        ok = torch.isfinite(t.detach())
        if not bool(ok.all()):
            bad = (~ok).nonzero()[0].tolist()
            value = t.detach()[tuple(bad)].item() if t.ndim else t.item()
            where = f" at index {tuple(bad)}" if t.ndim else ""
            raise ValueError(f"{name} must hold finite numbers; got {value}{where} "
                             f"({int((~ok).sum())} of {t.numel()} entries are NaN or infinite)")
    return t


def floats(x: Any, name: str, *, dtype: torch.dtype | None = DTYPE, ndim: int | None = None,
           min_ndim: int | None = None, shape=None, dims: str | None = None, allow_nonfinite: bool = False,
           integers: bool = True, copy: bool = False) -> torch.Tensor:
    """``x`` (a tensor, an array, a list or a number) as a floating tensor.

    ``dtype=None`` keeps the float type of a floating tensor (integers become float64). Integer
    input is converted explicitly (``integers=False`` refuses it); bools, complex numbers, strings
    and objects are refused. ``shape`` may hold ``None`` for a free axis; ``dims`` names the axes
    in messages (``"[N, T]"``, or ``"of rewards"`` for the shape of another argument). Gradients are kept
    (the result is ``x.to(dtype)``), unless ``copy=True`` (a detached copy).
    """
    if dtype is not None and not dtype.is_floating_point:
        raise ArgumentTypeError(f"dtype must be a floating-point torch dtype (floats are never truncated to "
                                f"integers); got {dtype}")
    t = _as_tensor(x, name, "a real-valued array or tensor")
    if not t.is_floating_point():
        if not integers:
            raise ArgumentTypeError(f"{name} must be a floating-point tensor; got {describe(x)}")
        t = t.to(DTYPE if dtype is None else dtype)
    elif dtype is not None:
        t = t.to(dtype)
    _check_shape(t, name, ndim, min_ndim, shape, dims)
    if not allow_nonfinite:
        finite(t, name)
    if copy:
        t = t.detach().clone()
    return t


def float_array(x: Any, name: str, *, min_ndim: int = 0, copy: bool = True):
    """A finite float copy of ``x`` in its own library: numpy in, numpy out (float64 unless already
    float); torch in, torch out (a floating tensor keeps its dtype, integers become float64); other
    array-likes become a float64 numpy array. Bools, complex numbers and strings are refused."""
    t = floats(x, name, dtype=None, min_ndim=min_ndim)  # checks kind, shape and finiteness
    if isinstance(x, torch.Tensor):
        return t.clone() if copy and t is x else t
    arr = x if isinstance(x, np.ndarray) else t.numpy()
    return np.array(arr, dtype=np.result_type(arr, np.float64), copy=copy)


def integers(x: Any, name: str, *, ndim: int | None = None, shape=None, dims: str | None = None,
             low: int | None = 0, high: int | None = None, why: str = "", copy: bool = False) -> torch.Tensor:
    """``x`` as a ``torch.long`` tensor of integers in ``[low, high)`` (``None``: no bound).

    Any integer dtype is accepted (``int16``, ``uint8`` ...); floats are refused, never truncated;
    bools are refused. The default ``low=0`` refuses negative indices (no wrap-around). ``why``
    is added to a range message (e.g. ``"to match logits of shape [S, A] = [2, 2]"``).
    """
    t = _as_tensor(x, name, "an integer array or tensor")
    if t.is_floating_point():
        raise ArgumentTypeError(f"{name} must be an integer tensor (indices); got {describe(x)}: floats are not "
                        "truncated, convert them with .long() if that is what you mean")
    _check_shape(t, name, ndim, None, shape, dims)
    t = t.long()
    if t.numel():
        lo, hi = int(t.min()), int(t.max())
        if (low is not None and lo < low) or (high is not None and hi >= high):
            bounds = f"[{low if low is not None else '-inf'}, {high if high is not None else 'inf'})"
            raise ValueError(f"{name} must lie in {bounds}{' ' + why if why else ''}; got values in [{lo}, {hi}]")
    if copy and t is x:
        t = t.clone()
    return t


def mask(x: Any, name: str = "mask", *, shape=None, dims: str | None = None, nonempty: bool = False) -> torch.Tensor:
    """A boolean tensor (True at real steps) of the given ``shape``; integers and floats are refused."""
    if isinstance(x, torch.Tensor):
        t = x
    elif isinstance(x, (str, bytes)) or x is None:
        raise _kind_error(name, "a boolean array or tensor", x)
    else:
        try:
            arr = np.asarray(x)
        except (TypeError, ValueError) as e:
            raise ArgumentTypeError(f"{name} must be a boolean array or tensor; got {describe(x)} ({e})") from None
        t = torch.from_numpy(np.array(arr, copy=True)) if arr.dtype.kind in "biuf" else None
        if t is None:
            raise _kind_error(name, "a boolean array or tensor", x)
    if t.dtype != torch.bool:
        raise ArgumentTypeError(f"{name} must be torch.bool (a boolean mask, True where a step is real); "
                                f"got {describe(x)}")
    if shape is not None:
        _check_shape(t, name, None, None, tuple(shape), dims)
    if nonempty and not bool(t.any()):
        raise ValueError(f"{name} selects no step; expected at least one True entry")
    return t


def logits(x: Any, name: str = "logits", *, shape=None) -> torch.Tensor:
    """Softmax-policy logits ``[S, A]`` (S, A >= 1) as float64, finite, still differentiable."""
    t = floats(x, name, ndim=2, dims="[S, A]")
    if t.shape[0] < 1 or t.shape[1] < 1:
        raise ValueError(f"{name} must have shape [S, A] with S, A >= 1; got {tuple(t.shape)}")
    if shape is not None and tuple(t.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape [S, A] = {list(shape)}; got {tuple(t.shape)}")
    return t


def mdp_logits(mdp, x: Any, name: str = "logits") -> torch.Tensor:
    """Logits that fit ``mdp``: shape ``[mdp.n_states, mdp.n_actions]`` (see :func:`logits`)."""
    t = floats(x, name)
    want = (mdp.n_states, mdp.n_actions)
    if tuple(t.shape) != want:
        raise ValueError(f"{name} must have shape [S, A] = [{want[0]}, {want[1]}] to match the MDP; "
                         f"got {tuple(t.shape)}")
    return t


_BATCH_FIELDS = ("states", "actions", "rewards", "mask", "n_states", "n_actions")


def batch(traj: Any, name: str = "traj") -> Any:
    """``traj`` itself if it is a batch of trajectories (a :class:`pglib.sampling.Trajectories`:
    ``states``, ``actions``, ``rewards``, ``mask``, ``n_states``, ``n_actions``); validate imports
    nothing of pglib, so the batch is recognised by its fields."""
    if not all(hasattr(traj, f) for f in _BATCH_FIELDS):
        raise _kind_error(name, "a pglib.sampling.Trajectories batch", traj)
    return unchanged(traj, name)  # re-checked if edited in place since it was built


def batch_logits(traj: Any, x: Any, name: str = "logits") -> torch.Tensor:
    """Logits ``[S, A]`` (detached, float64) that fit the batch ``traj`` (see :func:`batch`): its
    recorded MDP shape, or else the states and actions it holds."""
    batch(traj)
    t = logits(x, name).detach()
    S, A = t.shape
    if traj.n_states is not None:
        if (traj.n_states, traj.n_actions) != (S, A):
            raise ValueError(f"{name} must have shape [S, A] = [{traj.n_states}, {traj.n_actions}] to match the MDP "
                             f"the batch was sampled from; got {tuple(t.shape)}")
    else:
        why = f"to match {name} of shape [S, A] = [{S}, {A}]"
        integers(traj.states, "traj.states", high=S, why=why)
        integers(traj.actions, "traj.actions", high=A, why=why)
    return t


def same_shape(ref_name: str, ref: torch.Tensor, **others) -> None:
    """``ValueError`` unless every tensor in ``others`` has the shape of ``ref``."""
    for name, x in others.items():
        if tuple(x.shape) != tuple(ref.shape):
            raise ValueError(f"{name} must have the shape of {ref_name}, {tuple(ref.shape)}; got {tuple(x.shape)}")


def distribution(p: torch.Tensor, name: str, what: str = "entries", atol: float = 1e-6) -> None:
    """``ValueError`` unless ``p`` is finite, non-negative and sums to 1 along its last axis."""
    p = floats(p, name, dtype=None, min_ndim=1)  # kind and finiteness: NaN compares False everywhere
    if bool((p < -1e-8).any()):
        raise ValueError(f"{name} must hold probabilities >= 0; got a minimum of {p.min().item():.3g}")
    worst = (p.sum(-1) - 1).abs().max().item() if p.numel() else 0.0
    if worst > atol:
        raise ValueError(f"{name} {what} must sum to 1; the worst sums to {1 + worst:.6g} (off by {worst:.3g})")


# ----------------------------------------------------------------------------- scalars


def _is_int_scalar(x: Any) -> bool:
    if isinstance(x, (bool, np.bool_)):
        return False
    if isinstance(x, (numbers.Integral, np.integer)):
        return True
    return isinstance(x, torch.Tensor) and x.ndim == 0 and x.dtype in _INT_DTYPES


def positive_int(x: Any, name: str, *, minimum: int = 1, maximum: int | None = None) -> int:
    """``x`` as a Python ``int`` >= ``minimum`` (and <= ``maximum``).

    Python, numpy and 0-d torch integers are accepted; floats (even 3.0), bools, NaN and strings
    are refused.
    """
    word = "a positive integer" if minimum == 1 else ("a non-negative integer" if minimum == 0
                                                      else f"an integer >= {minimum}")
    if not _is_int_scalar(x):
        raise _kind_error(name, word, x)
    n = int(x)
    if n < minimum:
        raise ValueError(f"{name} must be {word}; got {n}")
    if maximum is not None and n > maximum:
        raise ValueError(f"{name} must be at most {maximum}; got {n}")
    return n



def group_size(x: Any, n: int, n_name: str = "n") -> int:
    """``group_size`` as an int ``G >= 1`` dividing ``n`` (``None`` is 1): ``n`` trajectories
    (named ``n_name`` in the error) form ``n // G`` consecutive groups of ``G``."""
    if x is None:
        return 1
    G = positive_int(x, "group_size")
    if n % G:
        raise ValueError(f"group_size must divide {n_name}: {n_name} = {n} does not split into groups "
                         f"of {G}; give a multiple of {G}")
    return G

def nonnegative_int(x: Any, name: str, *, maximum: int | None = None) -> int:
    """``x`` as a Python ``int`` >= 0 (see :func:`positive_int`)."""
    return positive_int(x, name, minimum=0, maximum=maximum)


def seed(x: Any, name: str = "seed") -> int | None:
    """``None`` or a non-negative integer seed (numpy and torch integers accepted)."""
    return None if x is None else positive_int(x, name, minimum=0)


def real(x: Any, name: str, *, low: float | None = None, high: float | None = None, low_open: bool = False,
         high_open: bool = False, allow_inf: bool = False) -> float:
    """``x`` as a finite Python ``float`` in the interval given by ``low``/``high`` (open ends optional).

    Python, numpy and 0-d torch real numbers are accepted; bools, complex numbers, strings and
    arrays with more than one element are refused, and so are NaN and (unless ``allow_inf``)
    infinities.
    """
    lo_b, hi_b = ("(" if low_open else "["), (")" if high_open else "]")
    where = f" in {lo_b}{'-inf' if low is None else f'{low:g}'}, {'inf' if high is None else f'{high:g}'}{hi_b}" \
        if low is not None or high is not None else ""
    expected = f"a real number{where}"
    if isinstance(x, torch.Tensor):
        if x.ndim != 0 or x.dtype == torch.bool or x.is_complex():
            raise _kind_error(name, expected, x)
        v = float(x.detach())
    elif isinstance(x, np.ndarray) and x.ndim == 0 and x.dtype.kind in "iuf":
        v = float(x)
    elif isinstance(x, (bool, np.bool_)) or not isinstance(x, (numbers.Real, np.integer, np.floating)):
        raise _kind_error(name, expected, x)
    else:
        try:
            v = float(x)
        except OverflowError:
            raise ValueError(f"{name} must be {expected} that fits a float64 (at most about 1.8e308); "
                             f"got an integer of {len(str(abs(int(x))))} digits") from None
    if math.isnan(v) or (math.isinf(v) and not allow_inf):
        raise ValueError(f"{name} must be {expected}; got {v}")
    if ((low is not None and (v < low or (low_open and v == low)))
            or (high is not None and (v > high or (high_open and v == high)))):
        raise ValueError(f"{name} must be {expected}; got {x!r}")
    return v


def gamma(x: Any, name: str = "gamma") -> float:
    """A discount factor: a real number in [0, 1]."""
    return real(x, name, low=0.0, high=1.0)


def clip_eps(x: Any, name: str = "eps") -> float:
    """A clip range's half-width: a real number in (0, 1) (the range is [1 - eps, 1 + eps])."""
    return real(x, name, low=0.0, high=1.0, low_open=True, high_open=True)


def probability(x: Any, name: str) -> float:
    """A probability: a real number in [0, 1]."""
    return real(x, name, low=0.0, high=1.0)


def flag(x: Any, name: str) -> bool:
    """``True`` or ``False`` (numpy bools accepted); anything else is a ``TypeError``."""
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    raise _kind_error(name, "True or False", x)


def one_of(x: Any, name: str, options: Iterable) -> Any:
    """``x`` if it is one of ``options`` (compared with ``==`` on equal types), else ``ValueError``."""
    options = tuple(options)
    for o in options:
        if (type(x) is type(o) or (isinstance(o, str) and isinstance(x, str))) and x == o:
            return o  # the option itself: a numpy string comes back as the plain str
    raise ValueError(f"{name} must be one of {options}; got {describe(x)}")


def instance(x: Any, name: str, cls, what: str | None = None) -> Any:
    """``x`` if ``isinstance(x, cls)``, else a ``TypeError`` saying what was expected."""
    if not isinstance(x, cls):
        expected = what or (cls.__name__ if isinstance(cls, type) else " or ".join(c.__name__ for c in cls))
        raise ArgumentTypeError(f"{name} must be {expected}; got {type(x).__name__}")
    return unchanged(x, name)


# ----------------------------------------------------------------------------- sizes and loops


def nbytes(*shape: int, itemsize: int = 8) -> int:
    """Bytes of a dense array of this shape (Python integers: no overflow); every size must be a
    non-negative integer (a negative size is refused, not multiplied into a negative byte count)."""
    total = nonnegative_int(itemsize, "itemsize")
    for k, s in enumerate(shape):
        total *= nonnegative_int(s, f"shape[{k}]")
    return total


def _human(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.4g} {unit}"
        n /= 1024
    return f"{n:.4g} PiB"  # pragma: no cover


def memory(need: int, what: str, budget: int | None = None) -> int:
    """``ValueError`` before allocating if ``need`` bytes exceed the budget (default :data:`MEMORY_BUDGET`)."""
    budget = MEMORY_BUDGET if budget is None else budget
    if need > budget:
        raise ValueError(f"{what} would need {_human(need)} ({need} bytes) of memory, more than the budget of "
                         f"{_human(budget)} (pglib.validate.MEMORY_BUDGET); ask for less (fewer samples, a shorter "
                         "horizon, a smaller problem) or use a streaming variant")
    return need


def steps(x: Any, name: str, *, minimum: int = 1, cap: int | None = None) -> int:
    """A number of time steps: an integer >= ``minimum`` and at most ``cap`` (default :data:`MAX_STEPS`)."""
    cap = MAX_STEPS if cap is None else cap
    n = positive_int(x, name, minimum=minimum)
    if n > cap:
        raise ValueError(f"{name} must be at most {cap} steps (pglib.validate.MAX_STEPS: a loop over {n} steps "
                         f"would not finish in reasonable time); got {n}")
    return n


# ----------------------------------------------------------------------------- added for issue 21


def real_or_none(x: Any, name: str, **bounds) -> float | None:
    """``None``, or ``x`` as in :func:`real` (same bounds)."""
    return None if x is None else real(x, name, **bounds)


def string(x: Any, name: str, what: str = "a string") -> str:
    """``x`` as a plain ``str`` (numpy strings accepted); anything else is a ``TypeError``."""
    if not isinstance(x, str):
        raise _kind_error(name, what, x)
    return str(x)


def mapping(x: Any, name: str, what: str = "a dict of keyword arguments") -> dict:
    """A copy of ``x`` if it is a mapping with string keys, else a ``TypeError``."""
    import collections.abc

    if not isinstance(x, collections.abc.Mapping) or not all(isinstance(k, str) for k in x):
        raise _kind_error(name, what, x)
    return dict(x)


def function(x: Any, name: str, usage: str) -> Any:
    """``x`` if it is callable, else a ``TypeError`` showing how it is called (``usage``)."""
    if not callable(x):
        raise _kind_error(name, f"a function ({usage})", x)
    return x


def calls(n: int, what: str, cap: int | None = None) -> int:
    """``ValueError`` before starting if a check would call a reader's function ``n`` times, more
    than ``cap`` (default :data:`MAX_CALLS`): the up-front work estimate of a loop of user calls."""
    cap = MAX_CALLS if cap is None else cap
    if n > cap:
        raise ValueError(f"{what} would call your function {n} times, more than pglib.validate.MAX_CALLS = "
                         f"{cap} (minutes of work before any answer); ask for fewer batches or a smaller "
                         "batch_size")
    return n


def covariance(x: Any, name: str, *, size: int | None = None, rtol: float | None = None) -> np.ndarray:
    """A covariance matrix as a float64 numpy array: square (``[size, size]`` if given), finite,
    symmetric and positive semi-definite up to ``rtol * max|C|`` (default :data:`COV_RTOL`).

    Asymmetry or a negative eigenvalue beyond rounding is refused, never silently symmetrised or
    clipped: a matrix that is not a covariance gives answers (powers, samples) that mean nothing.
    """
    rtol = COV_RTOL if rtol is None else rtol
    t = floats(x, name, ndim=2, dims="[d, d]")
    c = t.detach().cpu().numpy().astype(np.float64)
    if c.shape[0] != c.shape[1] or (size is not None and c.shape != (size, size)):
        want = f"[{size}, {size}]" if size is not None else "[d, d] (square)"
        raise ValueError(f"{name} must have shape {want}; got {c.shape}")
    scale = float(np.abs(c).max()) if c.size else 0.0
    asym = float(np.abs(c - c.T).max()) if c.size else 0.0
    if asym > rtol * scale:
        raise ValueError(f"{name} must be symmetric (within {rtol:g} x max|C| = {rtol * scale:.3g}); the largest "
                         f"|C - C^T| is {asym:.3g}")
    if c.size:
        low = float(np.linalg.eigvalsh((c + c.T) / 2).min())
        if low < -rtol * scale:
            raise ValueError(f"{name} must be positive semi-definite (eigenvalues >= -{rtol:g} x max|C| = "
                             f"{-rtol * scale:.3g}); its smallest eigenvalue is {low:.3g}")
    return c


def versions(*tensors) -> tuple:
    """The in-place version counters of ``tensors`` (``None`` stays ``None``): every in-place write
    (``t[0] = x``, ``t.zero_()``, through any view) increases a tensor's counter."""
    return tuple(None if t is None else t._version for t in tensors)


def unchanged(x: Any, name: str) -> Any:
    """``x``, re-checked if it was edited in place since it was built (objects that record their
    tensors' :func:`versions`: ``TabularMDP``, ``Trajectories``, ``LQR``). An edit into an invalid
    state gets the constructor's own error, prefixed with ``name``; objects without the hook pass."""
    recheck = getattr(type(x), "_recheck", None)
    if recheck is not None:
        recheck(x, name)
    return x
