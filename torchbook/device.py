"""Pick the device that code in the book runs on."""

from __future__ import annotations

import os

import torch

DEVICE_ENV = "TORCHBOOK_DEVICE"


def get_device() -> torch.device:
    """The first CUDA GPU if there is one, else Apple's MPS backend if present, else the CPU.

    Setting the environment variable ``TORCHBOOK_DEVICE`` (``cpu``, ``cuda:1``, ...) overrides the
    choice: to keep a GPU free, or, in the book's tests, to check that no compared output
    depends on the device.
    """
    if os.environ.get(DEVICE_ENV):
        return torch.device(os.environ[DEVICE_ENV])
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def usable_cpus() -> int:
    """How many CPUs this process may run on: fewer than the machine has in a container or under ``taskset``.

    ``DataLoader`` warns (on stderr) when asked for more worker processes than this, since
    they would only compete for the same CPUs.
    """
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no CPU affinity to ask
        return os.cpu_count() or 1

