"""nbval over the chapters as two other machines would run them, re-run only where something changed.

Two machines are simulated on this one (running.md, "On other machines"), each differing from
ours in two ways at once: a laptop (AVX2 without AVX-512 in PyTorch, oneDNN and MKL; four
threads) and an old one-CPU container (no AVX2; one thread). Running every chapter on both
costs two executions of the whole book, so each pass is recorded, per chapter and machine, in
``chapters/other-machines.json`` with the *inputs* it passed with: a hash of everything that
can change that chapter's outputs on that machine,

- ``notebook``: the stored chapter notebook's code cells (their code, outputs and metadata, the
  declared tolerances among it), which is all nbval runs and compares: a change to its prose does not count;
- ``torchbook``: the helper package the chapters import;
- ``lock``: ``constraints.txt``, ``requirements.txt`` and ``pyproject.toml`` (every package's version);
- ``plugin``: ``tools/nbval_tolerance.py``, which compares the outputs;
- ``data``: ``data/registry.json`` (every data file's checksum);
- ``machine``: the machine's definition below, its start-up file and the nbval command it runs;
- ``cpu`` and ``python``: this machine's CPU model and Python version.

A chapter runs on a machine again only where one of these differs from its recorded pass (or
none is recorded): a changed chapter re-runs that chapter, a changed shared input re-runs all.
What is skipped, and why, and what is re-run, and why, is printed. Only a pass is recorded.

The runs go in two lanes, one on each of CPUs 0 and 1 (longest first, by their recorded times):
each lane is a pytest process per machine pinned with ``taskset`` to its CPU, as one
pytest-xdist worker of ``make test`` is, so that a lane is a one-CPU container, or the laptop's
four threads on one CPU (the laptop's four-way split of work and sums is the same on any number
of CPUs). So the laptop and the container run one changed chapter at the same time.

    python -m tools.other_machines            # make test-other-machines
    python -m tools.other_machines --all      # re-run every chapter on both machines
    python -m tools.other_machines --plan     # print what would be re-run and why, run nothing
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECORD = ROOT / "chapters" / "other-machines.json"
WORK = ROOT / "_build" / "other-machines"
LANES = ("0", "1")  # the CPUs the two lanes are pinned to

# Each machine: the environment its kernels run in, and the IPython start-up file, if any.
MACHINES = {
    "laptop": {
        "slug": "laptop",
        "env": {"ATEN_CPU_CAPABILITY": "avx2", "DNNL_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2",
                "OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1"},
        "startup": "tools/simulated_machines/four_threads.py",  # four PyTorch threads, whatever the CPUs
    },
    "old one-CPU container": {
        "slug": "container",
        "env": {"ATEN_CPU_CAPABILITY": "default", "MKL_ENABLE_INSTRUCTIONS": "AVX", "DNNL_MAX_CPU_ISA": "AVX",
                "OMP_NUM_THREADS": "1"},
        "startup": None,
    },
}

# How each lane runs nbval (part of each machine's definition: another command can compare otherwise).
NBVAL = ["-m", "pytest", "-p", "tools.nbval_tolerance", "--nbval", "--nbval-current-env", "-p", "no:cacheprovider", "-q"]

# The inputs shared by every chapter, as files of the repository.
SHARED_FILES = {
    "torchbook": sorted(str(path.relative_to(ROOT)) for path in (ROOT / "torchbook").glob("*.py")),
    "lock": ["constraints.txt", "requirements.txt", "pyproject.toml"],
    "plugin": ["tools/nbval_tolerance.py"],
    "data": ["data/registry.json"],
}


def digest(*parts: bytes) -> str:
    hashed = hashlib.sha256()
    for part in parts:
        hashed.update(hashlib.sha256(part).digest())
    return hashed.hexdigest()[:16]


def cpu_model() -> str:
    """This machine's CPU model, as /proc/cpuinfo names it (elsewhere what the platform says)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def shared_inputs(machine: str, root: Path = ROOT) -> dict[str, str]:
    """Hashes of the inputs that every chapter shares on ``machine``."""
    inputs = {name: digest(*((root / path).read_bytes() for path in files)) for name, files in SHARED_FILES.items()}
    definition = MACHINES[machine]
    startup = (root / definition["startup"]).read_bytes() if definition["startup"] else b""
    inputs["machine"] = digest(json.dumps(definition, sort_keys=True).encode(), startup, " ".join(NBVAL).encode())
    inputs["cpu"] = cpu_model()
    inputs["python"] = platform.python_version()
    return inputs


def code_cells(chapter: Path) -> bytes:
    """What nbval runs and compares in a stored notebook: each code cell's source, outputs and metadata."""
    cells = json.loads(chapter.read_text(encoding="utf-8"))["cells"]
    return json.dumps([[cell["source"], cell.get("outputs", []), cell.get("metadata", {})]
                       for cell in cells if cell["cell_type"] == "code"], sort_keys=True).encode()


def inputs_of(chapter: Path, shared: dict[str, str]) -> dict[str, str]:
    return {"notebook": digest(code_cells(chapter)), **shared}


def load_record(path: Path = RECORD) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def why_run(inputs: dict[str, str], recorded: dict | None) -> list[str]:
    """The inputs that differ from the recorded pass: empty when the chapter can be skipped."""
    if recorded is None:
        return ["no pass recorded"]
    return [f"{name} changed" for name in inputs if recorded["inputs"].get(name) != inputs[name]]


def plan(chapters: list[Path], record: dict, everything: bool = False, root: Path = ROOT) -> dict:
    """For each machine, each chapter's inputs and why it must run (empty: it is skipped)."""
    planned = {}
    for machine in MACHINES:
        shared = shared_inputs(machine, root)
        planned[machine] = {}
        for chapter in chapters:
            inputs = inputs_of(chapter, shared)
            reasons = ["--all"] if everything else why_run(inputs, record.get(machine, {}).get(chapter.name))
            planned[machine][chapter.name] = {"inputs": inputs, "why": reasons, "path": chapter}
    return planned


def lanes(jobs: list[tuple[str, str]], seconds: dict[tuple[str, str], float]) -> list[list[tuple[str, str]]]:
    """The (machine, chapter) jobs shared between the two lanes, longest first, each to the less loaded lane."""
    known = [value for value in seconds.values() if value]
    default = max(known) if known else 300.0  # an unmeasured chapter is taken for a long one
    loads, shares = [0.0] * len(LANES), [[] for _ in LANES]
    for job in sorted(jobs, key=lambda job: (-(seconds.get(job) or default), job)):
        lane = loads.index(min(loads))
        shares[lane].append(job)
        loads[lane] += seconds.get(job) or default
    return shares


def chapter_results(junit: Path, chapters: list[str]) -> dict[str, dict]:
    """From pytest's JUnit XML: each chapter's number of tests, failures and seconds."""
    results = {name: {"tests": 0, "failed": 0, "seconds": 0.0} for name in chapters}
    for case in ElementTree.parse(junit).iter("testcase"):
        where = case.get("classname", "") + "." + case.get("file", "")
        name = next((name for name in chapters if Path(name).stem in where), None)
        if name is None:
            continue
        results[name]["tests"] += 1
        results[name]["seconds"] += float(case.get("time", 0))
        results[name]["failed"] += any(child.tag in ("failure", "error") for child in case)
    return results


def check_machines() -> None:
    if shutil.which("taskset") is None:
        sys.exit("taskset (util-linux) is missing: it pins each simulated machine to one CPU")
    if subprocess.run(["taskset", "-c", ",".join(LANES), "true"], capture_output=True).returncode != 0:
        sys.exit("the simulated machines run on CPUs 0 and 1: this machine does not let us use both")


def machine_env(machine: str) -> dict[str, str]:
    """The machine's environment; with a start-up file, an IPython folder of its own whose kernels run it."""
    env = {**os.environ, **MACHINES[machine]["env"]}
    if MACHINES[machine]["startup"]:
        startup = ROOT / MACHINES[machine]["startup"]
        folder = WORK / f"{MACHINES[machine]['slug']}-ipython"
        (folder / "profile_default" / "startup").mkdir(parents=True, exist_ok=True)
        shutil.copy(startup, folder / "profile_default" / "startup" / startup.name)
        env["IPYTHONDIR"] = str(folder)
    return env


def assert_laptop_simulated() -> None:
    """A kernel of the laptop, pinned to one CPU as in its lane, runs four threads."""
    code = "import torch; assert torch.get_num_threads() == 4, 'the laptop is not simulated'"
    subprocess.run(["taskset", "-c", LANES[0], sys.executable, "-m", "IPython", "-c", code],
                   env=machine_env("laptop"), check=True)


def lane_commands(cpu: str, jobs: list[tuple[str, str]], planned: dict) -> list[tuple]:
    """The pytest command of each machine of this lane's jobs (run one after the other, pinned to ``cpu``)."""
    commands = []
    for machine in MACHINES:
        names = [chapter for job_machine, chapter in jobs if job_machine == machine]
        if not names:
            continue
        slug = MACHINES[machine]["slug"]
        junit, log = WORK / f"cpu{cpu}-{slug}.xml", WORK / f"cpu{cpu}-{slug}.log"
        paths = [str(planned[machine][name]["path"]) for name in names]
        command = ["taskset", "-c", cpu, sys.executable, *NBVAL, f"--junitxml={junit}", *paths]
        junit.unlink(missing_ok=True)
        print(f"CPU {cpu}: {machine}: {', '.join(names)}", flush=True)
        commands.append((command, machine_env(machine), machine, junit, log, names))
    return commands


def execute(planned: dict, record: dict, record_path: Path = RECORD) -> bool:
    """Run the planned chapters in the two lanes; record each chapter that passed. True when all passed."""
    jobs = [(machine, name) for machine, chapters in planned.items() for name, entry in chapters.items() if entry["why"]]
    if not jobs:
        return True
    check_machines()
    WORK.mkdir(parents=True, exist_ok=True)
    if any(machine == "laptop" for machine, _ in jobs):
        assert_laptop_simulated()
    seconds = {(machine, name): record.get(machine, {}).get(name, {}).get("seconds") for machine, name in jobs}
    commands = [lane_commands(cpu, share, planned) for cpu, share in zip(LANES, lanes(jobs, seconds))]

    def run_in_order(commands):
        for command, env, machine, junit, log, names in commands:
            with log.open("w") as output:
                code = subprocess.run(command, env=env, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT).returncode
            yield machine, junit, log, names, code

    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(len(LANES)) as pool:
        finished = [item for items in pool.map(lambda lane: list(run_in_order(lane)), commands) for item in items]
    print(f"both lanes done in {time.monotonic() - start:.0f} s", flush=True)

    commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    all_passed = True
    for machine, junit, log, names, code in finished:
        results = chapter_results(junit, names) if junit.exists() else {}
        for name in names:
            result = results.get(name, {"tests": 0, "failed": 0, "seconds": 0.0})
            # pytest exits 1 when some test failed: the chapters whose every cell passed still passed.
            passed = code in (0, 1) and result["tests"] > 0 and result["failed"] == 0
            print(f"{machine}: {name}: {'passed' if passed else 'FAILED'} ({result['tests']} cells, {result['seconds']:.0f} s)")
            all_passed &= passed
            if passed:
                record.setdefault(machine, {})[name] = {
                    "inputs": planned[machine][name]["inputs"], "passed": when, "commit": commit or "unknown",
                    "seconds": round(result["seconds"], 1)}
        if code != 0:
            all_passed = False
            print(f"--- {machine}: pytest exited {code}; its log ({log}) follows ---")
            print(log.read_text()[-20000:])
    record_path.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    return all_passed


def report(planned: dict, record: dict) -> None:
    for machine, chapters in planned.items():
        for name, entry in chapters.items():
            if entry["why"]:
                print(f"{machine}: {name}: re-run ({', '.join(entry['why'])})")
            else:
                recorded = record[machine][name]
                print(f"{machine}: {name}: skipped (passed {recorded['passed']} at {recorded['commit']}; "
                      f"notebook, torchbook, lock, plugin, data, machine, CPU and Python unchanged)")


def chapter_notebooks() -> list[Path]:
    """The stored chapter notebooks listed in _toc.yml."""
    from tools import translation

    return [ROOT / f"{name}.ipynb" for name in translation.pages(ROOT / "_toc.yml") if name.startswith("chapters/")]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--all", action="store_true", help="re-run every chapter on both machines")
    parser.add_argument("--plan", action="store_true", help="print what would run and why, run nothing")
    args = parser.parse_args(argv)
    record = load_record()
    planned = plan(chapter_notebooks(), record, everything=args.all)
    report(planned, record)
    if args.plan:
        return 0
    return 0 if execute(planned, record) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
