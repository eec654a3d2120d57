"""Every chapter in _toc.yml: its data is registered, its .md and .ipynb agree, its stored outputs are clean.

nbval itself re-runs every stored chapter notebook in `make test` (pytest --nbval chapters);
tests/test_notebooks.py shows that nbval and the checks used here really fail on a bad notebook.
"""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import jupytext
import nbformat
import pytest

from torchbook.device import DEVICE_ENV
from tools.notebooks import (
    as_python,
    called_name,
    device_cell_problems,
    exercise_problems,
    hygiene_problems,
    paired_notebook,
    sync_problems,
    typed_numbers_from_outputs,
)

from .conftest import REPOSITORY, ROOT, book_registry, chapter_sources, run_nbval, toc_files

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
    # Needed in Jupyter and Colab, noise on the website: removed from the page, kept in the notebook.
    assert "remove-cell" in first_code_cell.metadata.get("tags", [])


@pytest.mark.parametrize("source", CHAPTERS, ids=chapter_ids)
def test_chapter_says_what_it_teaches_and_sums_up(source):
    """Opens with what the reader will learn; closes with a summary that points to what comes next."""
    markdown = [cell.source for cell in jupytext.read(source).cells if cell.cell_type == "markdown"]
    assert "In this chapter you will:" in markdown[0]
    text = "\n\n".join(markdown)
    summary = re.search(r"^## Summary$(.*?)(?=^## |\Z)", text, flags=re.MULTILINE | re.DOTALL)
    assert summary, "no '## Summary' section"
    assert "next" in summary.group(1).lower(), "the summary should point to what comes next"


@pytest.mark.parametrize("source", CHAPTERS, ids=chapter_ids)
def test_chapter_ends_with_exercises_and_executed_solutions(source):
    """4 to 6 numbered exercises after the summary, each with folded solution cells that ran without error."""
    assert exercise_problems(paired_notebook(source)) == []


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
            if isinstance(node, ast.Call) and called_name(node) in DATA_FUNCTIONS:
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
    registry = book_registry()
    for name in data_names_used(source):
        assert name in registry, f"{source.name} reads {name!r}, which is not in data/registry.json"


def test_data_name_finder_sees_fetch_calls(tmp_path):
    source = tmp_path / "tiny.md"
    jupytext.write(
        nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
            'path = fetch("a/b.jpg")\nroot = torchvision_root("MNIST")\n'
            'for name in names:\n    torchbook.fetch(f"a/cats/{name}")\nprint("fetch")'
        )]),
        source,
        fmt="md:myst",
    )
    assert data_names_used(source) == ["a/b.jpg", "MNIST", "a/cats"]


@pytest.mark.parametrize("source", CHAPTERS, ids=chapter_ids)
def test_md_and_ipynb_are_in_sync(source):
    assert sync_problems(source) == []


@pytest.mark.parametrize("source", CHAPTERS, ids=chapter_ids)
def test_stored_notebook_is_executed_in_order_and_clean(source):
    assert hygiene_problems(paired_notebook(source)) == []


@pytest.mark.parametrize("source", CHAPTERS, ids=chapter_ids)
def test_prose_glues_the_numbers_it_quotes_from_outputs(source):
    """A decimal typed in the prose that an output shows would drift from it: glue it instead."""
    assert typed_numbers_from_outputs(paired_notebook(source)) == []


@pytest.mark.parametrize("source", CHAPTERS, ids=chapter_ids)
def test_outputs_that_depend_on_the_device_are_not_compared(source):
    """A GPU machine must pass the same nbval run: device-dependent cells are tagged nbval-ignore-output."""
    assert device_cell_problems(source) == []


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


@pytest.mark.kernel
def test_compared_outputs_do_not_change_when_get_device_answers_otherwise(tmp_path):
    """Chapter 1 up to its device cell, with get_device() forced to another device ('meta': no GPU needed).

    nbval still passes, so no compared output depends on what get_device() returns; the
    device cell itself (ignored) shows that the other device was really used.
    """
    source = CHAPTERS[0]
    code = [cell for cell in jupytext.read(source).cells if cell.cell_type == "code"]
    device_cell = next(i for i, cell in enumerate(code) if "get_device()" in cell.source)
    notebook = truncated_chapter(source, code_cells=device_cell + 2)  # and one cell after it
    path = tmp_path / "chapter.ipynb"
    nbformat.write(notebook, path)
    result = run_nbval(path, env={**os.environ, DEVICE_ENV: "meta"})
    assert result.returncode == 0, result.stdout[-3000:]
    assert f"{device_cell + 2} passed" in result.stdout, result.stdout[-500:]
