"""The one place that decides where pglib's neural networks live.

Every chapter and :func:`pglib.train.train` ask :func:`default_device` (or pass a
device through :func:`resolve_device`), so the same notebook runs on a laptop CPU
and on a Colab GPU without a code change.
"""

from __future__ import annotations

import torch


def default_device() -> torch.device:
    """CUDA when a GPU is visible to torch, else the CPU.

    Example: ``default_device()`` is ``device(type='cpu')`` on a machine without CUDA.
    """
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``None`` -> :func:`default_device`; a string or ``torch.device`` -> that device.

    Raises ``ValueError`` for a device torch does not know, or CUDA on a machine without it.
    """
    if device is None:
        return default_device()
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be None, 'cpu', 'cuda' or a torch.device; got {device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} asks for CUDA, but torch.cuda.is_available() is False on this machine")
    return dev
