"""Helpers that Chapter 6 builds step by step and later chapters reuse: decoding an image folder, evaluating, counting work.

Each function here is the one Chapter 6 defines, with the same code (tests/test_images.py checks
that the two stay the same), so that Chapter 7 can import it instead of copying it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.io import decode_jpeg, read_file


def decode_all(folder):
    """Every image of an ImageFolder, decoded once: uint8 tensor N × 3 × 32 × 32, and labels."""
    encoded = [read_file(str(path)) for path, _ in folder.samples]
    images = torch.stack(decode_jpeg(encoded))
    return images, torch.tensor(folder.targets)


def logits_of(model, images, batch_size=1000):
    """The model's outputs for all the images, in evaluation mode and in chunks; restores the model's mode."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        logits = torch.cat([model(images[i:i + batch_size]) for i in range(0, len(images), batch_size)])
    model.train(was_training)
    return logits


def accuracy(model, images, labels):
    return (logits_of(model, images).argmax(dim=1) == labels).float().mean().item()


def count_parameters(model):
    return sum(p.numel() for p in model.parameters())


def multiply_adds(model, input_shape=(3, 32, 32)):
    """Multiply-adds of the model's Linear and Conv2d layers for one input (biases and activations not counted)."""
    counts = []

    def count(layer, inputs, output):
        if isinstance(layer, nn.Conv2d):
            per_value = layer.in_channels // layer.groups * math.prod(layer.kernel_size)
        else:
            per_value = layer.in_features
        counts.append(output[0].numel() * per_value)  # output[0]: the one image's output

    layers = [layer for layer in model.modules() if isinstance(layer, (nn.Linear, nn.Conv2d))]
    hooks = [layer.register_forward_hook(count) for layer in layers]
    with torch.no_grad():
        model(torch.zeros(1, *input_shape))
    for hook in hooks:
        hook.remove()
    return sum(counts)


def random_flips(images):
    """Mirror each image left to right with probability 1/2."""
    flip = torch.rand(len(images)).view(-1, 1, 1, 1) < 0.5
    return torch.where(flip, images.flip(-1), images)


def random_crops(images, padding=4):
    """Each image shifted by its own random offset of up to `padding` pixels each way."""
    n, channels, height, width = images.shape
    padded = F.pad(images, [padding] * 4)  # zeros: the mean colour, since the images are normalised
    top = torch.randint(0, 2 * padding + 1, (n, 1, 1, 1))
    left = torch.randint(0, 2 * padding + 1, (n, 1, 1, 1))
    # Index tensors that broadcast to n × C × H × W: image, channel, row and column of every output pixel.
    return padded[
        torch.arange(n).view(-1, 1, 1, 1),
        torch.arange(channels).view(1, -1, 1, 1),
        top + torch.arange(height).view(1, 1, -1, 1),
        left + torch.arange(width).view(1, 1, 1, -1),
    ]
