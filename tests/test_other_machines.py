"""tools.other_machines: a chapter runs again on the simulated machines only where something it depends on changed."""

from __future__ import annotations

import json
import shutil
import subprocess

import nbformat
import pytest

from tools import other_machines
from tools.other_machines import MACHINES, SHARED_FILES, lanes, plan

from .conftest import ROOT


def passed(planned: dict) -> dict:
    """A record of a pass of everything planned, as `execute` writes it."""
    return {machine: {name: {"inputs": entry["inputs"], "passed": "today", "commit": "abc", "seconds": 10.0}
                      for name, entry in chapters.items()} for machine, chapters in planned.items()}


def rerun(planned: dict) -> dict[str, dict[str, list[str]]]:
    return {machine: {name: entry["why"] for name, entry in chapters.items() if entry["why"]}
            for machine, chapters in planned.items()}


@pytest.fixture
def book(tmp_path):
    """A copy of what the plan reads: the shared inputs, the laptop's start-up file and two chapters."""
    for path in [path for files in SHARED_FILES.values() for path in files] + [MACHINES["laptop"]["startup"]]:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / path, tmp_path / path)
    chapters = []
    for name in ("01-one.ipynb", "02-two.ipynb"):
        chapter = tmp_path / "chapters" / name
        chapter.parent.mkdir(exist_ok=True)
        nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(f"print({name[:2]!r})")]), chapter)
        chapters.append(chapter)
    return tmp_path, chapters


def test_nothing_reruns_after_a_pass_with_the_same_inputs(book):
    root, chapters = book
    record = passed(plan(chapters, {}, root=root))
    assert rerun(plan(chapters, record, root=root)) == {machine: {} for machine in MACHINES}
    assert all(why == ["--all"] for machine in MACHINES for why in rerun(plan(chapters, record, everything=True, root=root))[machine].values())


def test_a_chapters_prose_is_not_what_the_machines_run(book):
    root, chapters = book
    record = passed(plan(chapters, {}, root=root))
    notebook = nbformat.read(chapters[0], as_version=4)
    notebook.cells.insert(0, nbformat.v4.new_markdown_cell("A sentence that nbval does not run."))
    nbformat.write(notebook, chapters[0])
    assert rerun(plan(chapters, record, root=root)) == {machine: {} for machine in MACHINES}


def test_a_changed_chapter_reruns_that_chapter_on_both_machines(book):
    root, chapters = book
    record = passed(plan(chapters, {}, root=root))
    notebook = nbformat.read(chapters[1], as_version=4)
    notebook.cells[0].metadata["nbval-tolerance"] = {"abs": 0.01}  # a tolerance is part of the stored notebook
    nbformat.write(notebook, chapters[1])
    assert rerun(plan(chapters, record, root=root)) == {machine: {"02-two.ipynb": ["notebook changed"]} for machine in MACHINES}


@pytest.mark.parametrize("shared, path", [("torchbook", "torchbook/device.py"), ("lock", "constraints.txt"),
                                          ("plugin", "tools/nbval_tolerance.py"), ("data", "data/registry.json")])
def test_a_changed_shared_input_reruns_every_chapter(book, shared, path):
    root, chapters = book
    record = passed(plan(chapters, {}, root=root))
    with (root / path).open("a") as file:
        file.write("\n")
    assert rerun(plan(chapters, record, root=root)) == {
        machine: {chapter.name: [f"{shared} changed"] for chapter in chapters} for machine in MACHINES}


def test_another_cpu_or_machine_definition_reruns_what_it_concerns(book, monkeypatch):
    root, chapters = book
    record = passed(plan(chapters, {}, root=root))
    monkeypatch.setitem(MACHINES["laptop"], "env", {**MACHINES["laptop"]["env"], "ATEN_CPU_CAPABILITY": "avx512"})
    assert rerun(plan(chapters, record, root=root)) == {
        "laptop": {chapter.name: ["machine changed"] for chapter in chapters}, "old one-CPU container": {}}
    monkeypatch.undo()
    monkeypatch.setattr(other_machines, "cpu_model", lambda: "another CPU")
    assert all(why == ["cpu changed"] for machine in MACHINES for why in rerun(plan(chapters, record, root=root))[machine].values())
    assert rerun(plan(chapters[:1], {}, root=root)) == {machine: {"01-one.ipynb": ["no pass recorded"]} for machine in MACHINES}


def test_the_two_lanes_share_the_work_longest_first():
    jobs = [("laptop", "07"), ("container", "07"), ("laptop", "01"), ("container", "01"), ("laptop", "06")]
    seconds = {("laptop", "07"): 300, ("container", "07"): 250, ("laptop", "06"): 200, ("laptop", "01"): 10, ("container", "01"): 10}
    shares = lanes(jobs, seconds)
    assert shares == [[("laptop", "07"), ("container", "01"), ("laptop", "01")], [("container", "07"), ("laptop", "06")]]
    # A chapter without a recorded time counts as the longest known one, not as a short one.
    known = {("laptop", "01"): 100, ("laptop", "02"): 10, ("laptop", "03"): 10}
    assert lanes([("laptop", "new"), *known], known) == [[("laptop", "01"), ("laptop", "02")], [("laptop", "new"), ("laptop", "03")]]


def test_the_repositorys_record_names_every_input_of_every_pass():
    record = json.loads(other_machines.RECORD.read_text())
    assert set(record) <= set(MACHINES)
    for machine, chapters in record.items():
        for name, entry in chapters.items():
            assert (ROOT / "chapters" / name).exists(), f"{machine}: {name} is recorded but is no chapter"
            assert set(entry["inputs"]) == {"notebook", *SHARED_FILES, "machine", "cpu", "python"}


def lanes_possible() -> bool:
    """Whether processes can be pinned to CPUs 0 and 1, as the lanes are (also from a pytest-xdist worker pinned to one)."""
    return shutil.which("taskset") is not None and subprocess.run(["taskset", "-c", "0,1", "true"], capture_output=True).returncode == 0


@pytest.mark.kernel
@pytest.mark.skipif(not lanes_possible(), reason="the simulated machines run on CPUs 0 and 1 with taskset (util-linux)")
def test_a_run_records_the_chapters_that_pass_and_only_those(book, monkeypatch, capsys):
    """Two tiny chapters on both simulated machines: the one whose stored output is wrong fails and is not recorded."""
    root, chapters = book
    good, bad = chapters
    notebook = nbformat.read(bad, as_version=4)
    notebook.cells[0].outputs = [nbformat.v4.new_output("stream", name="stdout", text="03\n")]  # it prints 02
    notebook.cells[0].execution_count = 1
    nbformat.write(notebook, bad)
    notebook = nbformat.read(good, as_version=4)
    notebook.cells[0].outputs = [nbformat.v4.new_output("stream", name="stdout", text="01\n")]
    notebook.cells[0].execution_count = 1
    nbformat.write(notebook, good)
    monkeypatch.setattr(other_machines, "WORK", root / "_build" / "other-machines")
    record_path = root / "other-machines.json"
    planned = plan(chapters, {}, root=root)
    assert not other_machines.execute(planned, {}, record_path)
    record = json.loads(record_path.read_text())
    assert {machine: sorted(chapters) for machine, chapters in record.items()} == {machine: ["01-one.ipynb"] for machine in MACHINES}
    printed = capsys.readouterr().out
    assert "02-two.ipynb: FAILED" in printed and "01-one.ipynb: passed" in printed
    assert rerun(plan(chapters, record, root=root)) == {machine: {"02-two.ipynb": ["no pass recorded"]} for machine in MACHINES}
