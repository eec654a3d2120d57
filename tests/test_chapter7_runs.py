"""Chapter 7 quotes trainings it does not repeat (tools/chapter7_runs.py): its literal must be that script's output, for today's recipe."""

from __future__ import annotations

import ast
import json

import jupytext

from tools import chapter7_runs
from tools.tolerances import cell_key


def quoted_runs(chapter=chapter7_runs.CHAPTER) -> list[dict]:
    """The `measured_runs = [...]` literal of the chapter."""
    for cell in jupytext.read(chapter).cells:
        if cell.cell_type == "code" and "measured_runs = [" in cell.source:
            tree = ast.parse(cell.source)
            (value,) = [node.value for node in tree.body if isinstance(node, ast.Assign) and node.targets[0].id == "measured_runs"]
            return ast.literal_eval(value)
    raise AssertionError("Chapter 7 has no measured_runs literal")


def problems(quoted: list[dict], results: dict, recipe_key: str) -> list[str]:
    found = []
    if results["recipe_cell"] != recipe_key:
        found.append("the recipe changed since tools/chapter7_runs.py measured it: run it again")
    if quoted != results["runs"]:
        found.append("the chapter's measured_runs literal is not chapters/07-runs.json's runs")
    return found


def test_the_chapter_quotes_the_measured_runs_of_its_current_recipe():
    _, recipe = chapter7_runs.recipe_cells()
    results = json.loads(chapter7_runs.RESULTS.read_text())
    assert problems(quoted_runs(), results, cell_key(recipe)) == []
    assert {run["name"] for run in results["runs"]} == {name for name, _, _ in chapter7_runs.RUNS}


def test_a_changed_recipe_or_an_edited_number_is_caught():
    _, recipe = chapter7_runs.recipe_cells()
    results = json.loads(chapter7_runs.RESULTS.read_text())
    quoted = quoted_runs()
    edited = [dict(run) for run in quoted]
    edited[0]["val"] += 0.001
    assert problems(edited, results, cell_key(recipe)) == ["the chapter's measured_runs literal is not chapters/07-runs.json's runs"]
    recipe.source = recipe.source.replace("lr=0.4", "lr=0.5")
    assert problems(quoted, results, cell_key(recipe)) == ["the recipe changed since tools/chapter7_runs.py measured it: run it again"]
