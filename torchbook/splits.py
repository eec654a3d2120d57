"""Splitting a labelled dataset into training and validation indices, the same way on every run."""

from __future__ import annotations

import torch


def per_class_split(labels: torch.Tensor, val_per_class: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(train_indices, val_indices)``: ``val_per_class`` random items of every class validate, the rest train.

    Every class is equally represented in the validation set, whatever the order of ``labels``
    (``ImageFolder`` sorts its items by class). Both index tensors are sorted, and the split
    depends only on ``labels`` and ``seed``.
    """
    labels = torch.as_tensor(labels)
    shuffled = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    is_val = torch.zeros(len(labels), dtype=torch.bool)
    for label in labels.unique():
        of_class = shuffled[labels[shuffled] == label]
        if len(of_class) <= val_per_class:
            raise ValueError(f"class {label.item()} has {len(of_class)} items: too few to keep {val_per_class} for validation")
        is_val[of_class[:val_per_class]] = True
    return (~is_val).nonzero().flatten(), is_val.nonzero().flatten()
