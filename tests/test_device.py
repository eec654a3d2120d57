"""torchbook.device: the device the chapters' GPU cells use, and the CPUs a DataLoader may use."""

from __future__ import annotations

import os

import pytest
import torch

from torchbook.device import DEVICE_ENV, get_device, usable_cpus


def test_the_environment_variable_chooses_the_device(monkeypatch):
    monkeypatch.setenv(DEVICE_ENV, "meta")
    assert get_device() == torch.device("meta")


def test_usable_cpus_counts_the_cpus_this_process_may_run_on(monkeypatch):
    if not hasattr(os, "sched_getaffinity"):
        pytest.skip("no CPU affinity on this system")
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {3})  # as under `taskset -c 3`
    assert usable_cpus() == 1


def test_usable_cpus_falls_back_to_the_cpu_count(monkeypatch):
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)  # as on macOS and Windows
    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    assert usable_cpus() == 6
