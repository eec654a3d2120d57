"""tools.cpu_shares: each pytest-xdist worker, and the processes it starts, run on their own share of the CPUs."""

import os
import re
import shutil
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import ROOT
from tools.cpu_shares import share


def test_shares_are_contiguous_equal_and_never_empty():
    assert [share([0, 1], k, 2) for k in range(2)] == [{0}, {1}]
    assert [share(list(range(8)), k, 2) for k in range(2)] == [{0, 1, 2, 3}, {4, 5, 6, 7}]
    assert [share([2, 5, 7], k, 2) for k in range(2)] == [{2}, {5, 7}]
    assert [share([0, 1], k, 3) for k in range(3)] == [{0}, {1}, {0}]  # more workers than CPUs: shared
    assert [share([3], 0, 1)] == [{3}]


def usable_cpus() -> list[int]:
    """The CPUs this test may use: all that pytest had, where this runs in a worker of make test's pytest-xdist."""
    if "CPU_SHARES_OF" in os.environ:
        return [int(cpu) for cpu in os.environ["CPU_SHARES_OF"].split(",")]
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []


@pytest.mark.kernel
@pytest.mark.skipif(len(usable_cpus()) < 2 or shutil.which("taskset") is None,
                    reason="needs two CPUs it can pin processes to, and taskset (util-linux)")
def test_two_workers_start_processes_that_see_one_cpu_and_run_one_thread(tmp_path):
    """As make test runs its chapters: one CPU and one PyTorch thread per kernel, each worker on its own CPU."""
    (tmp_path / "test_probe.py").write_text(textwrap.dedent("""
        import json, os, subprocess, sys

        def child():
            # A process the worker starts, as nbval's kernel is one: its CPUs and PyTorch's threads.
            code = "import json, os, torch; print(json.dumps([sorted(os.sched_getaffinity(0)), torch.get_num_threads()]))"
            return json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)

        def test_first():
            cpus, threads = child()
            assert len(cpus) == 1 and threads == 1, (cpus, threads)
            print("worker", os.environ["PYTEST_XDIST_WORKER"], "on CPU", cpus[0])

        test_second = test_first
    """))
    cpus = usable_cpus()[:2]
    # Not this process's xdist worker settings (make test runs it in one); a thread count the share must lower.
    env = {name: value for name, value in os.environ.items() if not name.startswith("PYTEST_XDIST_")}
    env.pop("CPU_SHARES_OF", None)
    env.update(PYTHONPATH=str(ROOT), OMP_NUM_THREADS="8")
    result = subprocess.run(
        ["taskset", "-c", ",".join(map(str, cpus)), sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
         "-p", "tools.cpu_shares", "-n", "2", "--dist", "each", "-q", "-rA", str(tmp_path / "test_probe.py")],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 passed" in result.stdout  # --dist each: both tests in each worker
    assert sorted(set(re.findall(r"worker gw\d on CPU \d+", result.stdout))) == [
        f"worker gw{k} on CPU {cpu}" for k, cpu in enumerate(cpus)]  # one CPU each, not the same one
