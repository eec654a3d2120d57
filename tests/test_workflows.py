"""The GitHub Actions workflows cannot run here; check that they parse and agree with the Makefile.

What they run must exist: a workflow calling a make target that was renamed, or uploading a
folder the build no longer writes, would fail only on GitHub.
"""

from __future__ import annotations

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


def test_pages_workflow_publishes_the_folder_the_build_writes():
    workflow = load("pages.yml")
    upload = next(step for step in steps(workflow) if step.get("uses", "").startswith("actions/upload-pages-artifact@"))
    assert upload["with"]["path"] == "_build/html"
    assert "rm -rf _build/html" in (ROOT / "Makefile").read_text(), "the Makefile no longer builds into _build/html"


def test_the_pdfs_packages_are_installed_from_the_one_list():
    """.ci/pdf-packages.txt names the Debian packages the PDFs need; CI and both workflows install from it."""
    packages = (ROOT / ".ci" / "pdf-packages.txt").read_text().split()
    assert {"texlive-xetex", "texlive-lang-korean", "latexmk", "fonts-nanum", "poppler-utils"} <= set(packages)
    assert ".ci/pdf-packages.txt" in (ROOT / ".ci" / "run").read_text()
    for name in ("pages.yml", "test.yml"):
        commands = [step["run"] for step in steps(load(name)) if "run" in step]
        install = next(i for i, command in enumerate(commands) if "< .ci/pdf-packages.txt" in command)
        first_make = next(i for i, command in enumerate(commands) if re.search(r"\bmake (book|test)\b", command))
        assert install < first_make, f"{name} installs the PDF's packages after it builds"
