"""A pytest plugin: each pytest-xdist worker, and every notebook kernel it starts, runs on its own CPUs.

`make test` runs the chapters in two pytest-xdist workers at once (``-n 2 --dist loadfile``:
each notebook stays in one worker, one kernel). Two PyTorch processes that each start as
many threads as the machine has cores wait on each other's threads, and both run several
times slower than one alone. So worker *k* of *n* takes the *k*-th of *n* equal shares of
the CPUs that pytest may use, before it starts any kernel: the kernels inherit that CPU
affinity, and PyTorch starts as many threads as the share has CPUs (one each on two
cores; a thread count set in ``OMP_NUM_THREADS`` or ``MKL_NUM_THREADS`` is lowered to the share, and
where a process cannot be pinned, ``OMP_NUM_THREADS`` gives it its share of threads).
Without xdist (``-n 0``, or no ``-n``) nothing changes.

A share of one CPU is a one-CPU machine, as each lane of `make test-other-machines`
(``tools/other_machines.py``, pinned with ``taskset``) is.

Loaded with ``-p tools.cpu_shares``.
"""

from __future__ import annotations

import os


def share(cpus: list[int], worker: int, n_workers: int) -> set[int]:
    """The CPUs of worker ``worker`` (0-based) of ``n_workers``: a contiguous, nearly equal share, never empty."""
    if n_workers > len(cpus):
        return {cpus[worker % len(cpus)]}
    return set(cpus[worker * len(cpus) // n_workers:(worker + 1) * len(cpus) // n_workers])


def pytest_configure(config):
    workerinput = getattr(config, "workerinput", None)  # set by pytest-xdist in its workers only
    if workerinput is None:
        return
    worker, n_workers = int(workerinput["workerid"].removeprefix("gw")), workerinput["workercount"]
    if hasattr(os, "sched_setaffinity"):
        shared = sorted(os.sched_getaffinity(0))
        os.environ["CPU_SHARES_OF"] = ",".join(map(str, shared))  # what the workers split, for tests
        cpus = share(shared, worker, n_workers)
        # Pins this thread, from which nbval starts the kernels: they inherit it.
        os.sched_setaffinity(0, cpus)
        n_threads = len(cpus)
    else:  # macOS and Windows cannot pin a process: each worker's kernels get their share of threads
        n_threads = max(1, (os.cpu_count() or 1) // n_workers)
    # A thread count set beforehand must not exceed the share: OpenMP's, and MKL's, which PyTorch prefers.
    os.environ["OMP_NUM_THREADS"] = str(min(int(os.environ.get("OMP_NUM_THREADS", n_threads)), n_threads))
    if "MKL_NUM_THREADS" in os.environ:
        os.environ["MKL_NUM_THREADS"] = str(min(int(os.environ["MKL_NUM_THREADS"]), n_threads))
