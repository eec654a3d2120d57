"""Pick the device that code in the book runs on."""

from __future__ import annotations

import torch


def get_device() -> torch.device:
    """The first CUDA GPU if there is one, else Apple's MPS backend if present, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")
