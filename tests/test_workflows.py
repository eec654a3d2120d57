"""The GitHub Actions workflows cannot run here; check that they parse and agree with the Makefile.

What they run must exist: a workflow calling a make target that was renamed, or uploading a
folder the build no longer writes, would fail only on GitHub.
"""

from __future__ import annotations

import os
import re

import pytest
import yaml

from .conftest import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"
MAKE_TARGETS = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), flags=re.MULTILINE))


def load(name: str) -> dict:
    workflow = yaml.safe_load((WORKFLOWS / name).read_text())
    workflow["on"] = workflow.pop(True, workflow.get("on"))  # YAML 1.1 reads the key `on` as true
    return workflow


def steps(workflow: dict) -> list[dict]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


@pytest.mark.parametrize("name", sorted(p.name for p in WORKFLOWS.glob("*.yml")))
def test_workflow_runs_make_targets_that_exist(name):
    workflow = load(name)
    commands = [step["run"] for step in steps(workflow) if "run" in step]
    targets = [target for command in commands for target in re.findall(r"\bmake ([\w-]+)", command)]
    assert targets, f"{name} runs no make target"
    assert set(targets) <= MAKE_TARGETS, f"{name} runs targets the Makefile lacks: {set(targets) - MAKE_TARGETS}"


def test_what_is_published_is_what_the_tests_checked():
    """GitHub Pages gets the site and PDFs that `make test` built from the verified outputs, after every test
    passed in the same job, and only from a push to main: never a fresh `make book`, which no test compares."""
    workflow = load("test.yml")
    job = workflow["jobs"]["test"]
    names = [step.get("run", step.get("uses", "")) for step in job["steps"]]
    upload = next(i for i, name in enumerate(names) if name.startswith("actions/upload-pages-artifact@"))
    assert job["steps"][upload]["with"]["path"] == "_build/html"
    assert names.index("make test") < upload and names.index("make test-other-machines") < upload
    assert "refs/heads/main" in job["steps"][upload]["if"]
    publish = workflow["jobs"]["publish"]
    assert publish["needs"] == "test" and "refs/heads/main" in publish["if"]
    assert any(step.get("uses", "").startswith("actions/deploy-pages@") for step in publish["steps"])
    for path in WORKFLOWS.glob("*.yml"):
        commands = " ".join(step.get("run", "") for step in steps(load(path.name)))
        assert "make book" not in commands, f"{path.name} builds the book afresh: the published book must be the tested one"
    makefile = (ROOT / "Makefile").read_text()
    assert "rm -rf _build/html" in makefile and "BOOK_OUTPUTS=stored $(JUPYTER_BOOK_BUILD)" in makefile


def test_real_machines_run_every_chapter_weekly_and_when_the_lock_changes():
    """The machines the simulation cannot be: Linux on arm64, macOS on Apple silicon, x86 Linux (running.md)."""
    workflow = load("real-machines.yml")
    minute, hour, day, month, weekday = workflow["on"]["schedule"][0]["cron"].split()
    assert (day, month) == ("*", "*") and weekday.isdigit(), "not weekly"
    for event in ("push", "pull_request"):
        assert workflow["on"][event]["paths"] == ["constraints.txt"]
    job = workflow["jobs"]["nbval"]
    assert set(job["strategy"]["matrix"]["os"]) == {"ubuntu-24.04-arm", "macos-14", "ubuntu-latest"}
    assert job["strategy"]["fail-fast"] is False and job["runs-on"] == "${{ matrix.os }}"
    assert [step["run"] for step in job["steps"] if "run" in step] == ["make nbval"]
    nbval = re.search(r"^nbval:.*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), flags=re.MULTILINE).group(1)
    assert "$(NBVAL)" in nbval and " chapters" in nbval and "cpu_shares" not in nbval  # every chapter; macOS pins nothing


def test_the_pdfs_packages_are_installed_from_the_one_list():
    """.ci/pdf-packages.txt names the Debian packages the PDFs need; CI and both workflows install from it."""
    packages = (ROOT / ".ci" / "pdf-packages.txt").read_text().split()
    assert {"texlive-xetex", "texlive-lang-korean", "latexmk", "fonts-nanum", "poppler-utils"} <= set(packages)
    assert ".ci/pdf-packages.txt" in (ROOT / ".ci" / "run").read_text()
    for name in ("test.yml",):
        commands = [step["run"] for step in steps(load(name)) if "run" in step]
        install = next(i for i, command in enumerate(commands) if "< .ci/pdf-packages.txt" in command)
        first_make = next(i for i, command in enumerate(commands) if re.search(r"\bmake (book|test)\b", command))
        assert install < first_make, f"{name} installs the PDF's packages after it builds"


def dry_run(*arguments: str) -> str:
    """What make would run (``make -n``), with these variables."""
    import subprocess

    # Without the caller's make and PDF settings: CI runs this test under BOOK_REQUIRE_PDFS=1, inside make.
    env = {key: value for key, value in os.environ.items()
           if key not in ("BOOK_REQUIRE_PDFS", "MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES")}
    done = subprocess.run(["make", "-n", "--no-print-directory", *arguments], cwd=ROOT, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("target", ["book", "test"])
def test_a_reader_without_tex_gets_everything_else_and_one_line_about_the_pdfs(target):
    """Without XeLaTeX, make book and make test skip the PDFs (and their tests) saying what to install;
    with BOOK_REQUIRE_PDFS=1, as .ci/run and the test workflow set it, the PDFs are built and tested all the same."""
    without = dry_run(target, "PDF_TOOLS_FOUND=false")
    # The recipe line names $(MAKE), so make -n runs it too: its one line of output, besides the command itself.
    skipped = [line for line in without.splitlines() if line.startswith("skipping the PDFs")]
    assert len(skipped) == 1 and "apt-get install" in skipped[0] and "texlive-xetex" in " ".join(skipped + [without])
    required = dry_run(target, "PDF_TOOLS_FOUND=false", "BOOK_REQUIRE_PDFS=1")
    assert "--builder pdflatex" not in without and "skipping the PDFs" not in required and "--builder pdflatex" in required
    if target == "test":
        def site_tests(commands):
            return next(line for line in commands.splitlines() if "tests/test_site.py" in line and "--ignore" not in line)

        assert "BOOK_WITHOUT_PDFS=1" in site_tests(without) and "tests/test_pdf.py" not in site_tests(without)
        assert "BOOK_WITHOUT_PDFS" not in site_tests(required) and "tests/test_pdf.py" in site_tests(required)
    assert re.search(r"^export BOOK_REQUIRE_PDFS=1", (ROOT / ".ci" / "run").read_text(), flags=re.MULTILINE)
