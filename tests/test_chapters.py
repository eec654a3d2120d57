"""Every chapter in _toc.yml: its data is registered, its .md and .ipynb agree, its stored outputs are clean.

nbval itself re-runs every stored chapter notebook in `make test` (pytest --nbval chapters);
the last test here shows that nbval really fails when a stored output is wrong.
"""

from __future__ import annotations

import ast
import copy
import os
import re
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest

from torchbook.data import Registry
from torchbook.notebooks import as_python, hygiene_problems, paired_notebook, sync_problems

from .conftest import REPOSITORY, ROOT, chapter_sources, toc_files

CHAPTERS = chapter_sources()
chapter_ids = [source.stem for source in CHAPTERS]
DATA_FUNCTIONS = {"fetch", "torchvision_root"}


def setup_cell(repository_url: str) -> str:
    return (
        "# Setup: in Colab, or wherever the book's helper package is missing, install it. Elsewhere this does nothing.\n"
        "try:\n"
        "    import torchbook\n"
        "except ImportError:\n"
        f'    %pip install --quiet "torchbook[chapters] @ git+{repository_url}"'
    )


@pytest.mark.parametrize("source", CHAPTERS, ids=chapter_ids)
def test_chapter_opens_with_the_setup_cell_for_this_repository(source):
    """Colab needs the repository's URL in the notebook; it must be the one _config.yml names."""
    first_code_cell = next(cell for cell in jupytext.read(source).cells if cell.cell_type == "code")
    assert first_code_cell.source == setup_cell(REPOSITORY["url"])


@pytest.mark.parametrize("source", CHAPTERS, ids=chapter_ids)
def test_chapter_says_what_it_teaches_and_sums_up(source):
    """Opens with what the reader will learn; closes with a summary that points to what comes next."""
    markdown = [cell.source for cell in jupytext.read(source).cells if cell.cell_type == "markdown"]
    assert "In this chapter you will:" in markdown[0]
    text = "\n\n".join(markdown)
    summary = re.search(r"^## Summary$", text, flags=re.MULTILINE)
    assert summary, "no '## Summary' section"
    assert "next" in text[summary.end():].lower(), "the summary should point to what comes next"


def test_toc_lists_existing_documents_and_every_chapter():
    for name in toc_files():
        assert (ROOT / f"{name}.md").exists(), f"_toc.yml lists {name}, which has no .md source"
    on_disk = sorted((ROOT / "chapters").glob("*.md"))
    assert on_disk == sorted(CHAPTERS), "every chapter source must be in _toc.yml, and only those"
    assert CHAPTERS, "the book has no chapters"


def data_names_used(source: Path) -> list[str]:
    """The string arguments of every fetch(...) / torchvision_root(...) call in a chapter's code cells."""
    names = []
    for cell in jupytext.read(source).cells:
        if cell.cell_type != "code":
            continue
        for node in ast.walk(ast.parse(as_python(cell.source))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) in DATA_FUNCTIONS:
                argument = node.args[0]
                if isinstance(argument, ast.Constant):
                    names.append(argument.value)
                elif isinstance(argument, ast.JoinedStr):  # f"p1ch4/image-cats/{name}": check its fixed prefix
                    prefix = "".join(part.value for part in argument.values if isinstance(part, ast.Constant))
                    names.append(prefix.rsplit("/", 1)[0])
                else:
                    pytest.fail(f"{source.name}: {ast.unparse(node)} names its data in a way this test cannot check")
    return names


@pytest.mark.parametrize("source", CHAPTERS, ids=chapter_ids)
def test_registry_covers_every_file_the_chapter_reads(source):
    registry = Registry.from_json(ROOT / "data" / "registry.json")
    for name in data_names_used(source):
        assert name in registry, f"{source.name} reads {name!r}, which is not in data/registry.json"


def test_data_name_finder_sees_fetch_calls():
    names = data_names_used(ROOT / "chapters" / "01-tensors.md")
    assert "p1ch4/image-dog/bobby.jpg" in names
    assert "p1ch4/image-cats" in names  # from the f-string in the loop


@pytest.mark.parametrize("source", CHAPTERS, ids=chapter_ids)
def test_md_and_ipynb_are_in_sync(source):
    assert sync_problems(source) == []


def test_sync_check_notices_an_edit_to_one_side(tmp_path):
    source = CHAPTERS[0]
    notebook = jupytext.read(paired_notebook(source))
    code_cell = next(cell for cell in notebook.cells if cell.cell_type == "code" and "torch.tensor(" in cell.source)
    code_cell.source = code_cell.source.replace("4.0", "4.5", 1)
    edited = tmp_path / "edited.ipynb"
    jupytext.write(notebook, edited, fmt="ipynb")
    problems = sync_problems(source, edited)
    assert len(problems) == 1 and "4.5" in problems[0]


@pytest.mark.parametrize("source", CHAPTERS, ids=chapter_ids)
def test_stored_notebook_is_executed_in_order_and_clean(source):
    assert hygiene_problems(paired_notebook(source)) == []


def test_hygiene_check_catches_what_it_should(tmp_path):
    notebook = nbformat.read(paired_notebook(CHAPTERS[0]), as_version=4)
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    with_result = next(cell for cell in reversed(code_cells) if any(o.output_type == "execute_result" for o in cell.outputs))
    with_result.outputs[0].data["text/plain"] = "<object at 0x7f3a2b1c9d40> read from /home/someone/data"
    code_cells[1].execution_count = 99
    code_cells[2].outputs = [nbformat.v4.new_output("error", ename="ValueError", evalue="", traceback=[])]
    shows_a_value = next(cell for cell in code_cells if cell.source.startswith("copied"))
    shows_a_value.outputs = []
    path = tmp_path / "dirty.ipynb"
    nbformat.write(notebook, path)
    problems = "\n".join(hygiene_problems(path))
    assert "a memory address" in problems
    assert "an absolute path" in problems
    assert "execution count 99" in problems
    assert "stored an error (ValueError)" in problems
    assert "('copied  # the copy does not'): ends in an expression but has no stored output" in problems


def truncated_chapter(source: Path, code_cells: int) -> nbformat.NotebookNode:
    """The chapter's stored notebook, cut after its first `code_cells` code cells (quick to run)."""
    notebook = nbformat.read(paired_notebook(source), as_version=4)
    kept, seen = [], 0
    for cell in notebook.cells:
        kept.append(cell)
        seen += cell.cell_type == "code"
        if seen == code_cells:
            break
    notebook.cells = kept
    return notebook


def run_nbval(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval", "--nbval-current-env", "-p", "no:cacheprovider", str(path)],
        cwd=path.parent,
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ.copy(),
    )


def test_nbval_fails_when_a_stored_output_is_altered(tmp_path):
    pristine = truncated_chapter(CHAPTERS[0], code_cells=5)
    altered = copy.deepcopy(pristine)
    target = next(
        cell for cell in altered.cells if cell.cell_type == "code" and cell.source.startswith("points = torch.tensor(")
    )
    stored = target.outputs[0].data["text/plain"]
    assert "[5., 3.]" in stored
    target.outputs[0].data["text/plain"] = stored.replace("[5., 3.]", "[5., 4.]")

    nbformat.write(pristine, tmp_path / "pristine.ipynb")
    nbformat.write(altered, tmp_path / "altered.ipynb")

    passing = run_nbval(tmp_path / "pristine.ipynb")
    assert passing.returncode == 0, passing.stdout[-3000:]
    failing = run_nbval(tmp_path / "altered.ipynb")
    assert failing.returncode == 1, failing.stdout[-3000:]
    assert "Cell outputs differ" in failing.stdout
    assert "[5., 4.]" in failing.stdout and "[5., 3.]" in failing.stdout
