"""tools.real_changes: what each declared tolerance still catches, measured for every cell that declares one."""

from __future__ import annotations

import json
import sys

import nbformat
import pytest

from tools.nbval_tolerance import parse_tolerance
from tools.real_changes import CONTROL, RESULTS, SCALE_OPTIMIZERS, caught, stored_outputs_hash, changed_notebook, margin, summary
from tools.tolerances import cell_key

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
def test_every_cell_with_a_tolerance_has_its_real_changes_measured(notebook_path):
    """Each cell that declares a tolerance has chapters/real-changes.json's results, measured against that tolerance.

    A cell edited since, or a tolerance re-derived since, asks for `python -m tools.real_changes` again.
    """
    results = json.loads(RESULTS.read_text()).get(notebook_path.name, {})
    notebook = nbformat.read(notebook_path, as_version=4)
    problems = []
    tolerated = [cell for cell in notebook.cells if cell.cell_type == "code" and parse_tolerance(cell.metadata)]
    for key in set(results) - {cell_key(cell) for cell in tolerated}:
        problems.append(f"cell {results[key]['cell']}: measured, but no cell with a tolerance has that code now")
    for cell in tolerated:
        entry = results.get(cell_key(cell))
        where = f"{cell.source.splitlines()[0][:60]!r}"
        if entry is None:
            problems.append(f"{where}: no real change measured (python -m tools.real_changes chapters/{notebook_path.name})")
        elif entry["tolerance"] != dict(cell.metadata["nbval-tolerance"]):
            problems.append(f"{where}: measured against {entry['tolerance']}, now declares {dict(cell.metadata['nbval-tolerance'])}")
        elif entry.get("stored_outputs") != stored_outputs_hash(cell):
            problems.append(f"{where}: measured against other stored outputs (executed again since)")
        elif f"{CONTROL:g}" not in entry["factors"]:
            problems.append(f"{where}: no control run (the factor {CONTROL:g})")
        elif entry["factors"][f"{CONTROL:g}"]["caught"]:  # on another machine than the stored run's, a margin up to 1
            problems.append(f"{where}: the unchanged run fails the cell: {entry['factors'][f'{CONTROL:g}']}")
        elif len(entry["factors"]) < 2:
            problems.append(f"{where}: no factor measured besides the control")
        elif any(disagree(result) for result in entry["factors"].values()):
            problems.append(f"{where}: a result says caught where its margin says otherwise: {entry['factors']}")
    assert not problems, "\n".join(problems)


def test_a_cell_without_current_measurements_is_caught(tmp_path, monkeypatch):
    """The check above fails on a tolerated cell that the results do not know, on one re-derived or executed again
    since, and on results of a cell that no longer declares a tolerance (planted)."""
    path = tmp_path / "07-better-convnets.ipynb"
    stored = nbformat.read(RESULTS.parent / path.name, as_version=4)
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(0.5)", metadata={"nbval-tolerance": {"abs": 0.1}})]), path)
    with pytest.raises(AssertionError, match="no real change measured"):
        test_every_cell_with_a_tolerance_has_its_real_changes_measured(path)
    tolerated = next(cell for cell in stored.cells if cell.cell_type == "code" and parse_tolerance(cell.metadata))
    tolerated.metadata["nbval-tolerance"] = {"abs": 0.5}
    nbformat.write(stored, path)
    with pytest.raises(AssertionError, match="measured against"):
        test_every_cell_with_a_tolerance_has_its_real_changes_measured(path)
    tolerated.metadata["nbval-tolerance"] = json.loads(RESULTS.read_text())[path.name][cell_key(tolerated)]["tolerance"]
    tolerated.outputs = tolerated.outputs[:-1] + [nbformat.v4.new_output("stream", name="stdout", text="executed again\n")]
    nbformat.write(stored, path)
    with pytest.raises(AssertionError, match="measured against other stored outputs"):
        test_every_cell_with_a_tolerance_has_its_real_changes_measured(path)
    # Results without the control run, or with a control that the cell fails.
    nbformat.write(nbformat.read(RESULTS.parent / path.name, as_version=4), path)
    results = json.loads(RESULTS.read_text())
    entry = results[path.name][cell_key(tolerated)]
    planted = tmp_path / "real-changes.json"
    monkeypatch.setattr(sys.modules[__name__], "RESULTS", planted)
    for control, message in ((None, "no control run"), ({"caught": True, "margin": 1.5}, "the unchanged run fails the cell")):
        if control is None:
            del entry["factors"][f"{CONTROL:g}"]
        else:
            entry["factors"][f"{CONTROL:g}"] = control
        planted.write_text(json.dumps(results))
        with pytest.raises(AssertionError, match=message):
            test_every_cell_with_a_tolerance_has_its_real_changes_measured(path)
    monkeypatch.undo()
    del tolerated.metadata["nbval-tolerance"]  # a cell that no longer declares a tolerance, still in the results
    nbformat.write(stored, path)
    with pytest.raises(AssertionError, match="no cell with a tolerance has that code now"):
        test_every_cell_with_a_tolerance_has_its_real_changes_measured(path)


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
