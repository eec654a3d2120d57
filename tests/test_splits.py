"""torchbook.splits: the per-class training/validation split of Chapter 6."""

import pytest
import torch

from torchbook import per_class_split


def test_per_class_split_keeps_the_same_number_of_every_class_and_loses_nothing():
    labels = torch.tensor([0] * 50 + [1] * 30 + [2] * 20)  # sorted by class, as ImageFolder gives them
    train, val = per_class_split(labels, val_per_class=5)
    assert labels[val].bincount().tolist() == [5, 5, 5]
    assert sorted(torch.cat([train, val]).tolist()) == list(range(100))
    assert torch.equal(train, train.sort().values) and torch.equal(val, val.sort().values)


def test_per_class_split_depends_on_the_seed_only():
    labels = torch.arange(200) % 4
    assert torch.equal(per_class_split(labels, 10, seed=3)[1], per_class_split(labels, 10, seed=3)[1])
    assert not torch.equal(per_class_split(labels, 10, seed=3)[1], per_class_split(labels, 10, seed=4)[1])
    # A random choice, not the first items of each class.
    assert not torch.equal(per_class_split(labels, 10)[1], torch.arange(40))


def test_per_class_split_refuses_a_class_too_small_to_train_on():
    with pytest.raises(ValueError, match="class 1 has 3 items"):
        per_class_split(torch.tensor([0] * 10 + [1] * 3), val_per_class=3)
