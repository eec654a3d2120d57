"""tools.nbval_tolerance: declared numeric tolerances for nbval, and that a real change still fails."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import nbformat
import pytest

from tools.nbval_tolerance import aligned_outputs, compare_numbers, parse_tolerance

from .conftest import ROOT, run_nbval

TOLERANCE = (0.005, 0.0)


def test_numbers_within_tolerance_match_and_report_each_difference():
    stored = "epoch  9  loss 0.4204  validation accuracy 82.2%"
    new = "epoch  9  loss 0.4221  validation accuracy 82.5%"
    assert compare_numbers(new, stored, TOLERANCE) == (
        [(0.4204, pytest.approx(0.0017), 0.005), (pytest.approx(0.822), pytest.approx(0.003), 0.005)], None)


def test_a_number_beyond_its_tolerance_does_not_match_and_says_by_how_much():
    assert compare_numbers("loss 0.4300", "loss 0.4204", TOLERANCE)[1] == (
        "line 1: 0.4300 where 0.4204 was stored: a difference of 0.0096, beyond the 0.005 allowed")
    assert compare_numbers("accuracy 83.0%", "accuracy 82.2%", TOLERANCE)[1] is not None  # 0.8 points > 0.5


def test_a_difference_of_exactly_the_tolerance_passes_despite_binary_rounding():
    assert compare_numbers("86.5%", "86.9%", (0.004, 0.0))[1] is None  # "at most", though 0.869 - 0.865 > 0.004 in floats
    assert compare_numbers("86.4%", "86.9%", (0.004, 0.0))[1] is not None


def test_words_and_the_count_of_numbers_must_match_exactly():
    assert compare_numbers("momentum only 80.6%", "plain SGD 80.6%", TOLERANCE)[1] is not None
    assert compare_numbers("loss 0.42 0.43", "loss 0.42", TOLERANCE)[1] is not None
    assert compare_numbers("loss nan", "loss 0.42", TOLERANCE)[1] is not None
    assert compare_numbers("a\nb 0.1", "a b 0.1", TOLERANCE)[1] is not None  # line structure counts


def test_padding_that_moves_with_a_number_of_other_width_is_not_content():
    assert compare_numbers("epoch 9:  9.999 |", "epoch 9: 10.001 |", (0.0, 0.001)) == (
        [(10.001, pytest.approx(0.002), pytest.approx(0.010001))], None)


def test_a_percentage_is_a_fraction_and_does_not_match_a_plain_number():
    assert compare_numbers("82.4%", "82.2%", TOLERANCE)[1] is None
    assert compare_numbers("0.822", "82.2%", TOLERANCE)[1] is not None


def test_relative_tolerance_and_thousands_separators():
    assert compare_numbers("3,301 updates", "3,300 updates", (0.0, 0.001))[1] is None
    assert compare_numbers("3,310 updates", "3,300 updates", (0.0, 0.001))[1] is not None


def test_abs_checks_the_fractions_and_rel_the_other_numbers_so_neither_widens_the_other():
    """The rule derives abs from the fractions and rel from the rest; each is applied to its own kind only."""
    stored = "3 wrong of 2,000 (99.85%), loss 0.0123, loss x 1000 12.3"
    tolerance = (0.001, 0.5)  # a count that varies a lot, accuracies that vary little
    assert compare_numbers("4 wrong of 2,000 (99.80%), loss 0.0130, loss x 1000 13.0", stored, tolerance)[1] is None
    # Half of 99.85% is far more than 0.001: the large rel of the count does not widen the accuracy's check.
    assert compare_numbers("3 wrong of 2,000 (99.50%), loss 0.0123, loss x 1000 12.3", stored, tolerance)[1] == (
        "line 1: 99.50% where 99.85% was stored: a difference of 0.0035, beyond the 0.001 allowed")
    # And abs does not cover a count: with rel 0 it must match exactly.
    assert compare_numbers("4 wrong of 2,000 (99.85%), loss 0.0123, loss x 1000 12.3", stored, (0.01, 0.0))[1] == (
        "line 1: 4 where 3 was stored: a difference of 1, beyond the 0 allowed")


def test_tolerance_is_declared_with_abs_or_rel_only():
    assert parse_tolerance({}) is None
    assert parse_tolerance({"nbval-tolerance": {"abs": 0.01}}) == (0.01, 0.0)
    with pytest.raises(ValueError, match="abs"):
        parse_tolerance({"nbval-tolerance": {"absolute": 0.01}})


def notebook_printing(value_source: str, stored: str, tolerance: dict | None) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(f"print(f'loss {{{value_source}:.4f}}')", execution_count=1)
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"loss {stored}\n")]
    if tolerance is not None:
        cell.metadata["nbval-tolerance"] = tolerance
    return nbformat.v4.new_notebook(cells=[cell])


@pytest.mark.kernel
@pytest.mark.parametrize(
    ("printed", "tolerance", "passes"),
    [
        ("0.4205", {"abs": 0.001}, True),  # another machine's last digit
        ("0.4205", None, False),  # no declared tolerance: exact, as nbval always was
        ("0.4300", {"abs": 0.001}, False),  # a real change
        ("0.4205", {"rel": 0.5}, False),  # a fraction in a cell that declares only rel is held exact
    ],
)
def test_nbval_with_the_plugin_passes_only_what_the_tolerance_covers(tmp_path, printed, tolerance, passes):
    path = tmp_path / "tiny.ipynb"
    nbformat.write(notebook_printing(printed, "0.4204", tolerance), path)
    result = run_nbval(path, plugins=["tools.nbval_tolerance"])
    assert (result.returncode == 0) == passes, result.stdout[-3000:]


def replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"expected {old!r} once"
    return text.replace(old, new)


@pytest.mark.kernel
@pytest.mark.parametrize(
    ("chapter", "cell_marker", "change"),
    [
        # Adam's learning rate 10% higher, on the raw thermometer readings.
        ("03-autograd-and-optimizers", "params, adam_raw_losses = training_loop(", ("lr=1e-1", "lr=0.11")),
        # The 1-13-1 network's learning rate times 1.5 (its tolerance is the widest of Chapter 5).
        ("05-nn-module", "network_history = training_loop(", ("lr=5e-4", "lr=7.5e-4")),
    ],
)
def test_a_changed_training_setting_fails_a_cell_that_declares_a_tolerance(tmp_path, chapter, cell_marker, change):
    """A changed setting, in a copy of the stored notebook, fails nbval in the cell that trains.

    The unchanged copy passes in the same run: the failure comes from the change, and the
    derived tolerance that absorbs other machines' rounding is smaller than what this change does.
    """
    source = ROOT / "chapters" / f"{chapter}.ipynb"
    notebook = nbformat.read(source, as_version=4)
    (index, cell), = ((i, c) for i, c in enumerate(notebook.cells) if c.cell_type == "code" and cell_marker in c.source)
    assert "nbval-tolerance" in cell.metadata, "the cell this test changes should be one with a declared tolerance"
    kept = notebook.cells[: index + 1]  # the chapter up to and including the training
    for name, edit in (("unchanged", None), ("changed", change)):
        copy = nbformat.from_dict({**notebook, "cells": [nbformat.from_dict(dict(c)) for c in kept]})
        if edit:
            copy.cells[-1].source = replace_once(copy.cells[-1].source, *edit)
        folder = tmp_path / name
        folder.mkdir()
        path = folder / source.name
        nbformat.write(copy, path)
        result = run_nbval(path, plugins=["tools.nbval_tolerance"])
        if edit:
            assert result.returncode != 0, result.stdout[-3000:]
            code_index = sum(c.cell_type == "code" for c in kept) - 1  # nbval numbers the code cells
            assert f"::Cell {code_index} " in result.stdout and "beyond nbval-tolerance" in result.stdout, result.stdout[-3000:]
        else:
            assert result.returncode == 0, result.stdout[-3000:]


def test_only_what_nbval_compares_is_read_and_a_problem_names_its_mime_and_line():
    stored = [nbformat.v4.new_output("display_data", data={"image/png": "iVBOR1w2", "text/plain": "<Figure size 600x400>"}),
              nbformat.v4.new_output("stream", name="stdout", text="epoch 1 loss 0.50\nepoch 2 loss 0.40\n")]
    new = [nbformat.v4.new_output("display_data", data={"image/png": "iVBOR7q9x3", "text/plain": "<Figure size 600x400>"}),
           nbformat.v4.new_output("stream", name="stdout", text="epoch 1 loss 0.50\nepoch 2 loss 0.47\n")]
    problems, record = [], []
    aligned_outputs(new, stored, (0.01, 0.0), record, problems)
    assert problems == ["stdout (output 2), line 2: 0.47 where 0.40 was stored: a difference of 0.07, beyond the 0.01 allowed"]
    assert compare_numbers("loss 0.5\nepoch b 0.3", "loss 0.5\nepoch a 0.3", (0.01, 0.0))[1].startswith("line 2: ")


@pytest.mark.kernel
def test_with_two_xdist_workers_the_summary_counts_the_cells_of_both(tmp_path):
    """make test runs nbval in two pytest-xdist workers: what each accepted reaches the summary and the report."""
    for name in ("first", "second"):
        nbformat.write(notebook_printing("0.4205", "0.4204", {"abs": 0.001}), tmp_path / f"{name}.ipynb")
    env = {name: value for name, value in os.environ.items() if not name.startswith("PYTEST_XDIST_")}
    env["PYTHONPATH"] = str(ROOT)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--nbval", "--nbval-current-env",
         "-p", "tools.nbval_tolerance", "-n", "2", "--dist", "loadfile", "--nbval-tolerance-report=report.json",
         "first.ipynb", "second.ipynb"],
        cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert "nbval-tolerance: 2 cells passed within their declared tolerance" in result.stdout, result.stdout[-3000:]
    assert sorted(json.loads((tmp_path / "report.json").read_text())) == ["first.ipynb::cell 0", "second.ipynb::cell 0"]
