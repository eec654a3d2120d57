"""The maintainer tooling (tools/notebooks.py), tried on tiny notebooks made here, and nbval itself."""

from __future__ import annotations

import copy

import jupytext
import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from tools.notebooks import (
    SOLUTION_PROMPT,
    device_cell_problems,
    execute,
    exercise_problems,
    hygiene_problems,
    sync_problems,
    typed_numbers_from_outputs,
)

from .conftest import run_nbval

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def tiny_notebook(*cells) -> nbformat.NotebookNode:
    return new_notebook(cells=list(cells), metadata={"kernelspec": KERNELSPEC})


def executed(source: str, *outputs, count: int, tags=()) -> nbformat.NotebookNode:
    cell = new_code_cell(source, execution_count=count, outputs=list(outputs))
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def result(text: str, count: int) -> nbformat.NotebookNode:
    return new_output("execute_result", data={"text/plain": text}, execution_count=count)


def clean_notebook() -> nbformat.NotebookNode:
    return tiny_notebook(
        new_markdown_cell("# A tiny chapter"),
        executed("x = 2 + 2\nx", result("4", 1), count=1),
        executed("print('hello')", new_output("stream", name="stdout", text="hello\n"), count=2),
    )


# --- sync between .md and .ipynb -----------------------------------------------------------------


def write_pair(folder, notebook):
    source = folder / "tiny.md"
    jupytext.write(notebook, source, fmt="md:myst")
    jupytext.write(notebook, folder / "tiny.ipynb", fmt="ipynb")
    return source


def test_sync_check_passes_a_pair_written_from_one_notebook(tmp_path):
    assert sync_problems(write_pair(tmp_path, clean_notebook())) == []


def test_sync_check_notices_an_edit_to_one_side(tmp_path):
    source = write_pair(tmp_path, clean_notebook())
    edited = jupytext.read(tmp_path / "tiny.ipynb")
    edited.cells[1].source = "x = 2 + 3\nx"
    jupytext.write(edited, tmp_path / "tiny.ipynb", fmt="ipynb")
    problems = sync_problems(source)
    assert len(problems) == 1 and "cell 1 differs" in problems[0] and "2 + 3" in problems[0]


def test_sync_check_notices_a_changed_tag_and_a_missing_notebook(tmp_path):
    source = write_pair(tmp_path, clean_notebook())
    tagged = jupytext.read(tmp_path / "tiny.ipynb")
    tagged.cells[2].metadata["tags"] = ["nbval-ignore-output"]
    jupytext.write(tagged, tmp_path / "tiny.ipynb", fmt="ipynb")
    assert sync_problems(source) and "cell 2 differs" in sync_problems(source)[0]
    (tmp_path / "tiny.ipynb").unlink()
    assert sync_problems(source) == ["tiny.ipynb is missing: run `make execute`"]


# --- hygiene of stored outputs --------------------------------------------------------------------


def test_hygiene_passes_a_clean_notebook(tmp_path):
    nbformat.write(clean_notebook(), tmp_path / "clean.ipynb")
    assert hygiene_problems(tmp_path / "clean.ipynb") == []


@pytest.mark.parametrize(
    "cell, expected",
    [
        (executed("obj", result("<object at 0x7f3a2b1c9d40>", 1), count=1), "a memory address: '0x7f3a2b1c9d40'"),
        (executed("path", result("'/home/someone/data'", 1), count=1), "an absolute path"),
        (executed("when", result("2026-11-24 01:46:25", 1), count=1), "a timestamp"),
        (executed("1 + 1", result("2", 5), count=5), "execution count 5, expected 1"),
        (executed("1 / 0", new_output("error", ename="ZeroDivisionError", evalue="", traceback=[]), count=1), "stored an error (ZeroDivisionError)"),
        (executed("warn()", new_output("stream", name="stderr", text="careful\n"), count=1), "wrote to stderr: 'careful\\n'"),
        (executed("copied", count=1), "('copied'): ends in an expression but has no stored output"),
    ],
    ids=["address", "path", "timestamp", "order", "error", "stderr", "missing-output"],
)
def test_hygiene_catches_each_problem(tmp_path, cell, expected):
    nbformat.write(tiny_notebook(cell), tmp_path / "dirty.ipynb")
    problems = hygiene_problems(tmp_path / "dirty.ipynb")
    assert len(problems) == 1 and expected in problems[0], problems


def test_hygiene_accepts_calls_and_semicolons_without_output(tmp_path):
    notebook = tiny_notebook(executed("print_nothing()", count=1), executed("value;", count=2))
    nbformat.write(notebook, tmp_path / "quiet.ipynb")
    assert hygiene_problems(tmp_path / "quiet.ipynb") == []


# --- cells that depend on the device ----------------------------------------------------------------


def test_device_cells_must_not_be_compared(tmp_path):
    notebook = tiny_notebook(
        executed("from torchbook import get_device", count=1),
        executed("device = get_device()\nprint(device)", count=2),
        executed("x.to(device).sum()", count=3, tags=["nbval-ignore-output"]),
        executed("y = x.to(device)", count=4),
        executed("get_device().type", count=5),
        executed("x.sum()", count=6),
    )
    nbformat.write(notebook, tmp_path / "devices.ipynb")
    problems = device_cell_problems(tmp_path / "devices.ipynb")
    assert [problem.split(" (")[0] for problem in problems] == ["code cell 1", "code cell 3", "code cell 4"], problems


# --- executing a chapter, and nbval ----------------------------------------------------------------


@pytest.mark.kernel
def test_execute_stores_outputs_with_stable_cell_ids(tmp_path):
    notebook = tiny_notebook(
        new_markdown_cell("# Tiny"),
        new_code_cell("import sys\nfor word in ('one', 'two'):\n    print(word)\n    sys.stdout.flush()"),
        new_code_cell("6 * 7"),
    )
    source = tmp_path / "tiny.md"
    jupytext.write(notebook, source, fmt="md:myst")
    first = execute(source).read_text()
    stored = nbformat.reads(first, as_version=4)
    assert stored.cells[1].outputs == [new_output("stream", name="stdout", text="one\ntwo\n")]  # merged
    assert stored.cells[2].outputs[0].data["text/plain"] == "42"
    assert hygiene_problems(tmp_path / "tiny.ipynb") == [] and sync_problems(source) == []
    assert execute(source).read_text() == first, "re-executing an unchanged chapter must write the same file"


@pytest.mark.kernel
def test_nbval_passes_stored_outputs_and_fails_an_altered_one(tmp_path):
    notebook = tiny_notebook(
        executed("import torch\ntorch.arange(3) * 2", result("tensor([0, 2, 4])", 1), count=1),
    )
    altered = copy.deepcopy(notebook)
    altered.cells[0].outputs[0].data["text/plain"] = "tensor([0, 2, 5])"
    for name, nb in (("pristine", notebook), ("altered", altered)):
        (tmp_path / name).mkdir()
        nbformat.write(nb, tmp_path / name / "tiny.ipynb")

    passing = run_nbval(tmp_path / "pristine" / "tiny.ipynb")
    assert passing.returncode == 0, passing.stdout[-3000:]
    failing = run_nbval(tmp_path / "altered" / "tiny.ipynb")
    assert failing.returncode == 1, failing.stdout[-3000:]
    assert "Cell outputs differ" in failing.stdout
    assert "tensor([0, 2, 5])" in failing.stdout and "tensor([0, 2, 4])" in failing.stdout


# --- numbers typed in the prose ----------------------------------------------------------------------


def test_typed_numbers_copied_from_outputs_are_caught(tmp_path):
    notebook = tiny_notebook(
        executed("train()", new_output("stream", name="stdout", text="final loss 2.927648, accuracy 0.8165\n"), count=1),
        new_markdown_cell("The loss ends near 2.93, and the accuracy at 0.8165."),  # planted: both copied
        new_markdown_cell(
            "Glued: {glue:text}`loss:.2f`. In code: `lr=2.93`. In math: $w = 0.8165$. "
            "A setting: learning rate 0.01. Unrelated: 3.14."
        ),
        new_markdown_cell("### Exercise 2.93: Numbered like an output\n\nAs exercise 2.93 shows, a name, not a result."),
    )
    nbformat.write(notebook, tmp_path / "typed.ipynb")
    problems = typed_numbers_from_outputs(tmp_path / "typed.ipynb")
    assert [problem.split(" (")[0] for problem in problems] == ["2.93", "0.8165"], problems


# --- exercises and their solutions ---------------------------------------------------------------


def solution(source: str, count: int) -> nbformat.NotebookNode:
    cell = executed(source, new_output("stream", name="stdout", text="42\n"), count=count, tags=["hide-cell"])
    cell.metadata["mystnb"] = {"code_prompt_show": SOLUTION_PROMPT, "code_prompt_hide": "Hide solution"}
    return cell


def chapter_with_exercises(n_exercises: int = 4) -> nbformat.NotebookNode:
    cells = [new_markdown_cell("# A tiny chapter\n\n## Summary\n\nNext, exercises.\n\n## Exercises\n\nTry these.")]
    for k in range(1, n_exercises + 1):
        cells.append(new_markdown_cell(f"### Exercise 7.{k}: Question {k}\n\nWhat is six times seven?"))
        cells.append(solution(f"answer = 6 * 7\nprint(answer)  # exercise {k}", count=k))
        cells.append(new_markdown_cell(":::{dropdown} What the solution shows\nIt is {glue:text}`answer`.\n:::"))
    return tiny_notebook(*cells)


def exercise_problems_of(folder, notebook) -> list[str]:
    path = folder / "07-tiny.ipynb"  # chapter 7, from the file name
    nbformat.write(notebook, path)
    return exercise_problems(path)


def test_exercise_check_passes_a_well_formed_chapter(tmp_path):
    assert exercise_problems_of(tmp_path, chapter_with_exercises()) == []


def _without_exercises(nb):
    nb.cells = nb.cells[:1]
    nb.cells[0].source = nb.cells[0].source.split("## Exercises")[0]


def _three_exercises(nb):
    del nb.cells[-3:]


def _renumbered(nb):
    nb.cells[4].source = nb.cells[4].source.replace("7.2", "7.3")


def _numbered_for_another_chapter(nb):
    nb.cells[1].source = nb.cells[1].source.replace("7.1", "6.1")


def _visible_solution(nb):
    nb.cells[2].metadata["tags"] = []


def _default_prompt(nb):
    del nb.cells[2].metadata["mystnb"]


def _not_executed(nb):
    nb.cells[5].execution_count = None


def _failed(nb):
    nb.cells[5].outputs = [new_output("error", ename="ValueError", evalue="no", traceback=[])]


def _unfolded_discussion(nb):
    nb.cells[3].source = "It is {glue:text}`answer`."


def _answer_in_the_statement(nb):
    nb.cells[1].source += " It is {glue:text}`answer`."


def _no_solution(nb):
    del nb.cells[2]


def _section_after_exercises(nb):
    nb.cells[-1].source += "\n\n## Appendix\n\nMore."


def _exercises_before_summary(nb):
    nb.cells[0].source = "# A tiny chapter\n\n## Exercises\n\nTry these."
    nb.cells[-1].source += "\n\n## Summary\n\nNext."


@pytest.mark.parametrize(
    "break_it, expected",
    [
        (_without_exercises, "no '## Exercises' section"),
        (_three_exercises, "3 exercises, expected 4 to 6"),
        (_renumbered, "expected number 7.2"),
        (_numbered_for_another_chapter, "expected number 7.1"),
        (_visible_solution, "is not tagged hide-cell"),
        (_default_prompt, f"does not offer {SOLUTION_PROMPT!r}"),
        (_not_executed, "was not executed"),
        (_failed, "stored an error"),
        (_unfolded_discussion, "must be folded in a :::{dropdown}"),
        (_answer_in_the_statement, "the statement quotes a result"),
        (_no_solution, "no solution code cell"),
        (_section_after_exercises, "should be the last section"),
        (_exercises_before_summary, "should come after '## Summary'"),
    ],
)
def test_exercise_check_catches_each_problem(tmp_path, break_it, expected):
    notebook = chapter_with_exercises()
    break_it(notebook)
    problems = exercise_problems_of(tmp_path, notebook)
    assert any(expected in problem for problem in problems), problems
