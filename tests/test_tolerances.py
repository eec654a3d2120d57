"""tools.tolerances: the rule that derives each cell's tolerance, its perturbation, and that every declared tolerance follows it."""

from __future__ import annotations

import re

import nbformat
import pytest

from tools.tolerances import (
    MEASURED_AT,
    MEASUREMENTS,
    cells_measured,
    chi2_quantile,
    compared_cells,
    last_digit_unit,
    load_measurements,
    measured_keys,
    significant,
    spread_bound,
    spreads,
    tolerance_from,
    tolerance_of_measurement,
)

from .conftest import chapter_sources


def number(token, value, spread, unit, varied=True):
    return {"token": token, "value": value, "spread": spread, "unit": unit, "varied": varied}


def test_the_rule_is_six_bounded_spreads_plus_a_last_digit_as_abs_for_fractions_and_rel_for_the_rest():
    numbers = [number("82.2%", 0.822, 0.004, 0.001), number("80.0%", 0.8, 0.001, 0.001),
               number("1,197", 1197, 20.0, 1), number("10,000", 10000, 0.0, 1, varied=False)]
    # From five runs the spread's upper 95% bound is 2.372 times its estimate:
    # 6 * 2.372 * 0.004 + 0.001 = 0.0579; (6 * 2.372 * 20 + 1) / 1197 = 0.2387, both rounded up.
    assert tolerance_from(numbers, runs=5) == {"abs": 0.058, "rel": 0.24}
    assert tolerance_from([number("0.5", 0.5, 0.0, 0.1, varied=False)], runs=5) == {}  # nothing varied: exact


def test_fewer_runs_give_wider_tolerances_by_the_chi_square_bound():
    assert chi2_quantile(0.05, 3) == pytest.approx(0.3518, abs=1e-4)  # tables: 0.352
    assert chi2_quantile(0.95, 10) == pytest.approx(18.307, abs=1e-3)
    assert spread_bound(4) == pytest.approx(2.920, abs=1e-3)
    assert spread_bound(2) > spread_bound(4) > spread_bound(10) > 1
    one = [number("86.9%", 0.869, 0.0005, 0.001)]
    assert tolerance_from(one, runs=4)["abs"] > tolerance_from(one, runs=10)["abs"]


def test_tolerances_are_rounded_up_never_down():
    assert significant(0.0251) == 0.026
    assert significant(0.025) == 0.025
    assert significant(1.01e-6) == 1.1e-6
    assert significant(0.0) == 0.0


def test_the_last_printed_digit_in_the_plugins_units():
    assert last_digit_unit("82.2%") == pytest.approx(0.001)
    assert last_digit_unit("0.4204") == pytest.approx(0.0001)
    assert last_digit_unit("1,197") == 1
    assert last_digit_unit("2.5e-05") == pytest.approx(1e-6)


def test_changed_words_or_a_changed_count_of_outputs_are_volatile_not_tolerated():
    stored = [("stdout", "most often confused: cat and dog (182 images)\n")]
    assert spreads([stored, [("stdout", "most often confused: cat and dog (190 images)\n")]])[1] is None
    problem = spreads([stored, [("stdout", "most often confused: dog and truck (190 images)\n")]])[1]
    assert "otherwise" in problem and "dog and truck" in problem
    assert "other outputs" in spreads([stored, stored * 2])[1]
    assert "otherwise" in spreads([stored, [("stdout", "most often confused: cat and\ndog (182 images)\n")]])[1]


def test_spread_of_each_number_over_the_runs():
    runs = [[("stdout", "loss 0.40 acc 80.0%\n")], [("stdout", "loss 0.42 acc 80.0%\n")], [("stdout", "loss 0.44 acc 80.0%\n")]]
    numbers, problem = spreads(runs)
    assert problem is None
    assert [n["varied"] for n in numbers] == [True, False]
    assert numbers[0]["spread"] == pytest.approx(0.02)


def test_the_perturbation_moves_rounding_operations_only_and_keeps_autograd_intact():
    import torch

    from tools.tolerances import perturb_every_operation

    x = torch.linspace(0.1, 1.0, 64).reshape(8, 8)
    exact = (x @ x).clone()
    weight = torch.tensor([1.5, 2.5], requires_grad=True)
    mode = perturb_every_operation(seed=1)
    try:
        perturbed = x @ x
        created = torch.tensor([2.0, 3.0])
        whole = 3 * created**3  # whole numbers: exact on every machine
        copied = torch.tensor([0.3, 0.7]).clone() * 1.0  # creating, copying, multiplying: correctly rounded everywhere
        saturated = torch.sigmoid(torch.tensor([0.5, 20.0]))  # rounds: moved, but not its exact 1.0
        loss = (weight * torch.tensor([0.3, 0.7])).sum()
        loss.backward()
    finally:
        mode.__exit__(None, None, None)
    assert not torch.equal(perturbed, exact)
    assert torch.allclose(perturbed, exact, rtol=1e-5)
    assert created.tolist() == [2.0, 3.0] and whole.tolist() == [24.0, 81.0]
    assert copied.tolist() == torch.tensor([0.3, 0.7]).tolist()
    assert saturated[1].item() == 1.0
    assert weight.is_leaf and weight.grad is not None and loss.grad_fn.name() == "SumBackward0"


@pytest.mark.kernel
def test_a_perturbed_run_executes_a_copy_with_the_perturbation_and_lines_up_with_the_stored_cells(tmp_path):
    from tools.tolerances import perturbed_run

    cell = nbformat.v4.new_code_cell("import torch\nx = torch.linspace(0.1, 1.0, 64, dtype=torch.float64)\n"
                                     "print(repr((x @ x).item()))\nprint('done', flush=True)\nprint('twice')")
    path = tmp_path / "tiny.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), path)
    import torch

    x = torch.linspace(0.1, 1.0, 64, dtype=torch.float64)
    runs = [perturbed_run(path, seed) for seed in (1, 2)]
    printed = [run.cells[0].outputs for run in runs]
    assert [len(run.cells) for run in runs] == [1, 1]  # the first cell dropped again
    assert [len(outputs) for outputs in printed] == [1, 1]  # one stdout output, as make execute stores it
    values = [float(outputs[0].text.split()[0]) for outputs in printed]
    assert values[0] != values[1] and values[0] != (x @ x).item()  # each seed its own rounding
    assert values[0] == pytest.approx((x @ x).item(), rel=1e-14)


def chapter_notebooks():
    return [source.with_suffix(".ipynb") for source in chapter_sources()]


@pytest.mark.parametrize("notebook_path", chapter_notebooks(), ids=lambda p: p.stem)
def test_every_declared_tolerance_is_the_one_the_rule_gives_from_its_measurement(notebook_path):
    """No tolerance set by hand: each comes from chapters/tolerances.json, and each measured cell declares it.

    A measurement is keyed by the words its cell prints (``measured_keys``): a renamed variable, or a
    re-execution whose numbers moved within their tolerance, keeps it; a cell that prints other words asks for
    `make tolerances`. When it was measured is recorded, not checked: deriving again is an audit (running.md).
    """
    chapter = load_measurements().get(notebook_path.name, {})
    assert MEASURED_AT in chapter or not chapter, f"{notebook_path.name}: measurements without the commit they were measured at"
    measured = cells_measured(chapter)
    notebook = nbformat.read(notebook_path, as_version=4)
    problems = []
    cells = measured_keys(notebook)
    for key, cell in cells.items():
        if "nbval-tolerance" in cell.metadata and key not in measured:
            problems.append(f"{cell.source.splitlines()[0][:60]!r} declares a tolerance that no measurement in "
                            f"{MEASUREMENTS.name} derives: run `make tolerances CHAPTERS=chapters/{notebook_path.stem}.md`")
    for key, entry in measured.items():
        if key not in cells:
            problems.append(f"{entry['first_line']!r}: measured, but no cell prints those words now: run `make tolerances`")
            continue
        expected = tolerance_of_measurement(entry)
        if cells[key].metadata.get("nbval-tolerance") != expected:
            problems.append(f"{entry['first_line']!r} declares {cells[key].metadata.get('nbval-tolerance')}, the rule gives {expected}")
    assert not problems, "\n".join(problems)


def tolerated_copy(tmp_path, edit):
    """A copy of Chapter 7's stored notebook with ``edit`` applied to its first tolerated cell."""
    path = tmp_path / "07-better-convnets.ipynb"
    notebook = nbformat.read(MEASUREMENTS.parent / path.name, as_version=4)
    edit(next(cell for cell in notebook.cells if "nbval-tolerance" in cell.metadata))
    nbformat.write(notebook, path)
    return path


def test_a_renamed_variable_or_numbers_moved_within_tolerance_keep_the_measurement(tmp_path):
    """What make test must not fail on: the cell's code edited without changing its words, its numbers re-run."""
    def rename_and_rerun(cell):
        renamed = re.sub(r"\bwidth\b", "channels", cell.source)
        assert renamed != cell.source, "the planted rename changed nothing"
        cell.source = renamed
        stream = next(output for output in cell.outputs if output.get("output_type") == "stream")
        stream.text = re.sub(r"\d+\.\d%", lambda m: f"{float(m.group()[:-1]) + 0.1:.1f}%", stream.text, count=1)

    path = tolerated_copy(tmp_path, rename_and_rerun)
    test_every_declared_tolerance_is_the_one_the_rule_gives_from_its_measurement(path)


def test_a_tolerance_other_than_the_rules_is_caught(tmp_path):
    def widen(cell):
        cell.metadata["nbval-tolerance"] = {key: 2 * value for key, value in cell.metadata["nbval-tolerance"].items()}

    with pytest.raises(AssertionError, match="the rule gives"):
        test_every_declared_tolerance_is_the_one_the_rule_gives_from_its_measurement(tolerated_copy(tmp_path, widen))


def test_a_cell_that_prints_other_words_asks_for_a_new_derivation(tmp_path):
    def reword(cell):
        stream = next(output for output in cell.outputs if output.get("output_type") == "stream")
        stream.text = "a new line of output 1.5\n" + stream.text

    with pytest.raises(AssertionError, match="no measurement .* derives"):
        test_every_declared_tolerance_is_the_one_the_rule_gives_from_its_measurement(tolerated_copy(tmp_path, reword))


def test_a_hand_set_tolerance_is_caught(tmp_path, monkeypatch):
    """The check above fails on a tolerance typed into a cell's metadata (planted in a copy)."""
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(0.5)", metadata={"nbval-tolerance": {"abs": 0.1}})])
    path = tmp_path / "99-planted.ipynb"
    nbformat.write(notebook, path)
    with pytest.raises(AssertionError, match="no measurement"):
        test_every_declared_tolerance_is_the_one_the_rule_gives_from_its_measurement(path)


def test_declaring_from_missing_or_stale_measurements_fails(tmp_path, monkeypatch):
    """`declare` refuses a chapter without kept measurements, or whose measured cells changed, instead of removing its tolerances."""
    import tools.tolerances as tolerances

    path = tmp_path / "99-planted.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(0.5)")]), path)
    monkeypatch.setattr(tolerances, "MEASUREMENTS", tmp_path / "tolerances.json")
    with pytest.raises(SystemExit, match="no measurements"):
        tolerances.declare(path)
    (tmp_path / "tolerances.json").write_text('{"99-planted.ipynb": {"measured_at": "x", "000000000000": {}}}')
    with pytest.raises(SystemExit, match="no longer in the chapter"):
        tolerances.declare(path)
