"""tools.real_changes: what each declared tolerance still catches, measured for every cell that declares one."""

from __future__ import annotations

import json
import re
import sys

import nbformat
import pytest

from tools.nbval_tolerance import parse_tolerance
from tools.real_changes import CONTROL, RESULTS, SCALE_OPTIMIZERS, caught, changed_notebook, margin, stale, summary
from tools.tolerances import MEASURED_AT, cells_measured

from .test_tolerances import chapter_notebooks


def stream(text):
    return [nbformat.v4.new_output("stream", name="stdout", text=text)]


def test_caught_and_margin_agree_with_the_declared_tolerance():
    stored = stream("loss 0.500  accuracy 80.0%\n")
    within, beyond = stream("loss 0.505  accuracy 80.4%\n"), stream("loss 0.530  accuracy 80.4%\n")
    tolerance = (0.01, 0.0)
    assert not caught(within, stored, tolerance) and margin(within, stored, tolerance) == pytest.approx(0.5)
    assert caught(beyond, stored, tolerance) and margin(beyond, stored, tolerance) == pytest.approx(3.0)
    # A count with fewer digits shifts the padding after it, which nbval's comparison (and so this one) ignores.
    padded, shifted = stream("up to 0.5      1,197    0.411\n"), stream("up to 0.5        999    0.411\n")
    assert not caught(shifted, padded, (0.0, 0.2)) and margin(shifted, padded, (0.0, 0.2)) == pytest.approx(198 / 239.4)
    other_words = stream("loss 0.500  accuracy 80.0% (a bird)\n")
    assert caught(other_words, stored, tolerance) and margin(other_words, stored, tolerance) is None
    # abs covers the fractions only: a count that changes in a cell that declares no rel is held exact.
    counted, recounted = stream("3 mistakes, accuracy 80.0%\n"), stream("4 mistakes, accuracy 80.0%\n")
    assert caught(recounted, counted, tolerance) and margin(recounted, counted, tolerance) == float("inf")
    # A last-bit difference in a number held exact is no change for the plugin, nor for the margin.
    tiny, tinier = stream("x 1e-13\n"), stream("x 2e-13\n")
    assert not caught(tinier, tiny, (0.0, 0.1)) and margin(tinier, tiny, (0.0, 0.1)) == 0


def test_the_change_scales_every_optimizer_and_every_hand_written_update():
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("params = params - learning_rate * grad\nstep = self.learning_rate * 2\n"
                                  "w = w - learning_rate(epoch) * g"),
        nbformat.v4.new_code_cell(
            "import torch\n"
            "p = [torch.zeros(1, requires_grad=True)]\n"
            "sgd, adam = torch.optim.SGD(p, lr=0.1), torch.optim.Adam(p)\n"
            "cycle = torch.optim.lr_scheduler.OneCycleLR(torch.optim.SGD(p, lr=0.1), max_lr=0.4, total_steps=10)\n"
            "rates = sgd.param_groups[0]['lr'], adam.param_groups[0]['lr'], cycle.optimizer.param_groups[0]['max_lr']"),
    ])
    changed = changed_notebook(notebook, 1.5)
    assert changed.cells[0].source.splitlines() == ["params = params - (1.5 * learning_rate) * grad",
                                                    "step = self.learning_rate * 2",  # an attribute is not a rate
                                                    "w = w - (1.5 * learning_rate(epoch)) * g"]
    namespace: dict = {}
    exec(SCALE_OPTIMIZERS.format(factor=1.5), namespace)  # the first cell of the executed copy
    try:
        exec(changed.cells[1].source, namespace)
        assert namespace["rates"] == pytest.approx((0.15, 1.5e-3, 0.6))
    finally:  # undo the change, which patched torch.optim in this process
        import torch

        torch.optim.Optimizer.__init__ = namespace["_optimizer_init"]
        torch.optim.lr_scheduler.OneCycleLR.__init__ = namespace["_one_cycle_init"]
    assert notebook.cells[0].source.startswith("params = params - learning_rate")  # the stored notebook is untouched


def disagree(result: dict) -> bool:
    """Whether a result's caught and its margin contradict each other (a margin of 1, rounded, can go either way)."""
    if result["margin"] in ("error", "other words", "a number held exact"):
        return not result["caught"]
    return not 0.99 <= result["margin"] <= 1.01 and result["caught"] != (result["margin"] > 1)


@pytest.mark.parametrize("notebook_path", chapter_notebooks(), ids=lambda p: p.stem)
def test_the_recorded_real_changes_agree_with_themselves(notebook_path):
    """chapters/real-changes.json's results, as recorded: each chapter's with the commit it was measured at, each
    cell's with an unchanged control run that its tolerance passed, and with each verdict that its margin gives.

    Whether they are current is not checked: measuring them is an audit a maintainer runs when it matters
    (running.md; `python -m tools.real_changes --status` lists the stale cells), so an edit or a re-execution
    does not wait on three more executions of the chapter.
    """
    chapter = json.loads(RESULTS.read_text()).get(notebook_path.name, {})
    problems = [] if MEASURED_AT in chapter or not chapter else [f"{notebook_path.name}: results without the commit they were measured at"]
    for key, entry in cells_measured(chapter).items():
        where = f"cell {entry['cell']}"
        if f"{CONTROL:g}" not in entry["factors"]:
            problems.append(f"{where}: no control run (the factor {CONTROL:g})")
        elif entry["factors"][f"{CONTROL:g}"]["caught"]:  # on another machine than the stored run's, a margin up to 1
            problems.append(f"{where}: the unchanged run fails the cell: {entry['factors'][f'{CONTROL:g}']}")
        elif len(entry["factors"]) < 2:
            problems.append(f"{where}: no factor measured besides the control")
        elif any(disagree(result) for result in entry["factors"].values()):
            problems.append(f"{where}: a result says caught where its margin says otherwise: {entry['factors']}")
    assert not problems, "\n".join(problems)


def test_results_without_a_control_or_failing_it_are_caught(tmp_path, monkeypatch):
    """The check above fails on results without the control run, or whose control the cell fails (planted)."""
    path = tmp_path / "07-better-convnets.ipynb"
    results = json.loads(RESULTS.read_text())
    key, entry = next(iter(cells_measured(results[path.name]).items()))
    planted = tmp_path / "real-changes.json"
    monkeypatch.setattr(sys.modules[__name__], "RESULTS", planted)
    for control, message in ((None, "no control run"), ({"caught": True, "margin": 1.5}, "the unchanged run fails the cell")):
        if control is None:
            del entry["factors"][f"{CONTROL:g}"]
        else:
            entry["factors"][f"{CONTROL:g}"] = control
        planted.write_text(json.dumps(results))
        with pytest.raises(AssertionError, match=message):
            test_the_recorded_real_changes_agree_with_themselves(path)


def test_the_status_lists_cells_measured_against_other_outputs_or_tolerances_or_none(tmp_path):
    """`--status` names what an audit would measure again: a cell without results, one re-derived, one re-executed."""
    path = tmp_path / "07-better-convnets.ipynb"
    results = json.loads(RESULTS.read_text())
    notebook = nbformat.read(RESULTS.parent / path.name, as_version=4)
    nbformat.write(notebook, path)
    assert stale(path, results) == []
    tolerated = [cell for cell in notebook.cells if cell.cell_type == "code" and parse_tolerance(cell.metadata)]
    tolerated[0].metadata["nbval-tolerance"] = {"abs": 0.5}
    stream = next(output for output in tolerated[1].outputs if output.get("output_type") == "stream")
    stream.text = re.sub(r"\d\.\d", lambda m: m.group()[:-1] + str((int(m.group()[-1]) + 1) % 10), stream.text, count=1)  # re-executed
    tolerated[2].outputs = [nbformat.v4.new_output("stream", name="stdout", text="other words 0.5\n")]
    nbformat.write(notebook, path)
    notes = "\n".join(stale(path, results))
    assert "measured against {" in notes and "other stored outputs" in notes and "no real change measured" in notes
    assert "no cell with a tolerance prints those words now" in notes


FACTORS_SHOWN = ("1", "1.01", "1.1", "1.5", "2")  # the columns of the table in running.md


def stated_rows(page_text: str) -> dict[int, list[str]]:
    """The table of running.md that counts, per chapter, the cells failing each factor: chapter -> its other cells."""
    rows = {}
    for line in page_text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == 2 + len(FACTORS_SHOWN) and cells[0].isdigit():
            rows[int(cells[0])] = cells[1:]
    return rows


@pytest.mark.parametrize("page", ["running.md", "ko/running.md"])
def test_the_table_in_running_md_is_the_measured_one(page):
    results = json.loads(RESULTS.read_text())
    expected = {row["chapter"]: [str(row["cells"])] + [str(row["caught"].get(factor, "–")) for factor in FACTORS_SHOWN]
                for row in summary(results)}
    assert stated_rows((RESULTS.parents[1] / page).read_text()) == expected
