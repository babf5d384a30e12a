"""The one place that decides where pglib's neural networks live.

Every chapter and :func:`pglib.practice.train.train` ask :func:`default_device` (or pass a
device through :func:`resolve_device`), so the same notebook runs on a laptop CPU
and on a Colab GPU without a code change.
"""

from __future__ import annotations

import torch

from pglib import validate

__all__ = ["default_device", "resolve_device"]


def default_device() -> torch.device:
    """CUDA when a GPU is visible to torch, else the CPU.

    Example: ``default_device()`` is ``device(type='cpu')`` on a machine without CUDA.
    """
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``None`` -> :func:`default_device`; a string or ``torch.device`` -> that device.

    Raises ``ValueError`` for a device torch does not know, a device type other than CPU and CUDA
    (pglib is tested on those two), CUDA on a machine without it, or a GPU index it does not have.
    """
    if device is None:
        return default_device()
    if not isinstance(device, (str, torch.device)):
        raise validate.ArgumentTypeError(f"device must be None, 'cpu', 'cuda' or a torch.device; "
                                         f"got {validate.describe(device)}")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be None, 'cpu', 'cuda' or a torch.device; got {device!r}") from None
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be a CPU or CUDA device (pglib supports those two); got {device!r}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} asks for CUDA, but torch.cuda.is_available() is False on this machine")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"device={device!r} asks for GPU {dev.index}, but this machine has "
                         f"{torch.cuda.device_count()} (indices 0 to {torch.cuda.device_count() - 1})")
    return dev
