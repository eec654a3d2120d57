"""The thermometer readings of Chapters 2, 3 and 5, defined once.

Eleven readings taken at the same moments with a thermometer in degrees Celsius (``t_c``)
and one with no units on it (``t_u``), as in *Deep Learning with PyTorch*, chapter 5.
Chapter 2 introduces them; later chapters load them from here, with the same seeded
train/validation split that Chapter 3 explains.
"""

from __future__ import annotations

import torch

CELSIUS = (0.5, 14.0, 15.0, 28.0, 11.0, 8.0, 3.0, -4.0, 6.0, 13.0, 21.0)
UNKNOWN_UNITS = (35.7, 55.9, 58.2, 81.9, 56.3, 48.9, 33.9, 21.8, 48.4, 60.4, 68.4)
SPLIT_SEED = 42  # Chapter 3's choice; Chapter 5 reuses it to compare with Chapter 3's fit


def thermometer_readings() -> tuple[torch.Tensor, torch.Tensor]:
    """``(t_c, t_u)``: the Celsius readings and the unknown-unit readings, as 1-D float tensors."""
    return torch.tensor(CELSIUS), torch.tensor(UNKNOWN_UNITS)


def train_val_indices(n_samples: int, val_fraction: float = 0.2, seed: int = SPLIT_SEED) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded random split of ``range(n_samples)``: the last ``int(val_fraction * n)`` of a permutation validate."""
    n_val = int(val_fraction * n_samples)
    shuffled = torch.randperm(n_samples, generator=torch.Generator().manual_seed(seed))
    return shuffled[:-n_val], shuffled[-n_val:]
