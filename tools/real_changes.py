"""What the declared tolerances still catch: a real change, made in a copy of a chapter, and the cells it fails.

    python -m tools.real_changes chapters/NN-name.ipynb ...   # updates chapters/real-changes.json
    python -m tools.real_changes --factors 2 chapters/06-cifar10-classifier.ipynb   # other factors than its own

A tolerance wide enough for another machine's rounding can be wide enough to hide a real
change. This measures how wide is too wide. The change is the one that matters most in
training: **every learning rate times a factor** (``FACTORS``), in every optimizer the
chapter makes (``torch.optim``'s, and ``OneCycleLR``'s peak) and in every hand-written
update (``learning_rate * ...``, ``learning_rate(epoch) * ...``). Each copy of the stored notebook is executed with the
change, and every cell with a declared ``nbval-tolerance`` is compared with its stored
outputs exactly as ``tools.nbval_tolerance`` compares them in ``make test``: the cell
*catches* the change when nbval would fail it. ``margin`` is the largest difference the
change made to one of the cell's numbers, in units of what the tolerance allows for that
number (above 1: caught by that number). A cell that no learning rate reaches (data
loading, a formula) has a margin of 0 under every factor.

The results are kept in ``chapters/real-changes.json``, per notebook and per cell key
(``tools.tolerances.cell_key``), with the tolerance they were measured against; a test
checks that they are there, and measured against today's tolerances, for every such cell.
Chapters 3 and 5 prove two of them in ``tests/test_nbval_tolerance.py`` with nbval itself.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from pathlib import Path

import nbformat

from tools.nbval_tolerance import _aligned_outputs, compare_numbers, compared_texts, parse_tolerance
from tools.notebooks import _merge_streams
from tools.tolerances import cell_key

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "chapters" / "real-changes.json"
# Each chapter's factors: Chapters 6 and 7 take minutes a run, and change little at 1.1; Chapter 1 has no learning rate.
FACTORS = {"01-tensors": (1.5,), "06-cifar10-classifier": (1.5, 2.0), "07-better-convnets": (1.5, 2.0)}
DEFAULT_FACTORS = (1.01, 1.1, 1.5)
HAND_WRITTEN_UPDATE = re.compile(r"(?<![\w.])(learning_rate(?:\(\w*\))?) \* ")  # learning_rate * g, learning_rate(epoch) * g

SCALE_OPTIMIZERS = """\
import torch as _torch

_optimizer_init = _torch.optim.Optimizer.__init__
_one_cycle_init = _torch.optim.lr_scheduler.OneCycleLR.__init__


def _scaled_optimizer_init(self, params, defaults):
    if isinstance(defaults.get("lr"), (int, float)):
        defaults = {{**defaults, "lr": defaults["lr"] * {factor!r}}}
    _optimizer_init(self, params, defaults)


def _scaled_one_cycle_init(self, optimizer, max_lr, *args, **kwargs):
    _one_cycle_init(self, optimizer, max_lr * {factor!r}, *args, **kwargs)


_torch.optim.Optimizer.__init__ = _scaled_optimizer_init
_torch.optim.lr_scheduler.OneCycleLR.__init__ = _scaled_one_cycle_init
"""


def changed_notebook(notebook: nbformat.NotebookNode, factor: float) -> nbformat.NotebookNode:
    """A copy of the notebook whose every learning rate is ``factor`` times larger, with a first cell that does it."""
    copy = nbformat.from_dict(json.loads(json.dumps(notebook)))
    for cell in copy.cells:
        if cell.cell_type == "code":
            cell.source = HAND_WRITTEN_UPDATE.sub(lambda match: f"({factor!r} * {match[1]}) * ", cell.source)
    copy.cells.insert(0, nbformat.v4.new_code_cell(SCALE_OPTIMIZERS.format(factor=factor)))
    return copy


def execute(notebook: nbformat.NotebookNode, folder: Path, timeout: int = 1800) -> nbformat.NotebookNode:
    from nbclient import NotebookClient

    NotebookClient(notebook, timeout=timeout, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(folder)}}).execute()
    notebook.cells.pop(0)  # the cell that made the change
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = _merge_streams(cell.outputs)  # as `make execute` stores them
    return notebook


def margin(new_outputs: list, stored_outputs: list, tolerance: tuple[float, float]) -> float:
    """The largest difference of one number, over what the tolerance allows it; inf when more than numbers changed."""
    new, stored = compared_texts(new_outputs), compared_texts(stored_outputs)
    if [key for key, _ in new] != [key for key, _ in stored]:
        return math.inf
    largest = 0.0
    for (_, new_text), (_, stored_text) in zip(new, stored):
        # With no bound, the plugin's comparison reports only other words or another count of numbers, and lists
        # every number that changed: (stored value, difference).
        differences, problem = compare_numbers(new_text, stored_text, (math.inf, math.inf))
        if problem is not None:
            return math.inf
        for value, difference in differences:
            allowed = tolerance[0] + tolerance[1] * abs(value)
            if difference:
                largest = max(largest, difference / allowed if allowed else math.inf)
    return largest


def caught(new_outputs: list, stored_outputs: list, tolerance: tuple[float, float]) -> bool:
    """Whether make test's comparison (nbval, with the declared tolerance) fails these outputs."""
    problems: list = []
    aligned = _aligned_outputs(new_outputs, stored_outputs, tolerance, [], problems)
    return bool(problems) or compared_texts(aligned) != compared_texts(stored_outputs)


def measure(notebook_path: Path, factors: tuple[float, ...], save=lambda results: None) -> dict:
    stored = nbformat.read(notebook_path, as_version=4)
    code = [cell for cell in stored.cells if cell.cell_type == "code"]
    tolerated = [(index, cell) for index, cell in enumerate(code) if parse_tolerance(cell.metadata)]
    results = {cell_key(cell): {"cell": index, "tolerance": dict(cell.metadata["nbval-tolerance"]), "factors": {}}
               for index, cell in tolerated}
    for factor in factors:
        start = time.perf_counter()
        run = execute(changed_notebook(stored, factor), notebook_path.parent)
        new_code = [cell for cell in run.cells if cell.cell_type == "code"]
        for index, cell in tolerated:
            tolerance = parse_tolerance(cell.metadata)
            outputs = new_code[index].outputs
            errored = any(output.get("output_type") == "error" for output in outputs)
            entry = {"caught": errored or caught(outputs, cell.outputs, tolerance),
                     "margin": "error" if errored else round(margin(outputs, cell.outputs, tolerance), 2)}
            if entry["margin"] == math.inf:
                entry["margin"] = "other words"
            results[cell_key(cell)]["factors"][f"{factor:g}"] = entry
        found = sum(results[cell_key(cell)]["factors"][f"{factor:g}"]["caught"] for _, cell in tolerated)
        print(f"{notebook_path.name}: learning rates x{factor:g}: {found} of {len(tolerated)} cells with a "
              f"tolerance catch it ({time.perf_counter() - start:.0f} s)", flush=True)
        save(results)  # after each factor: a later one that fails or times out loses only itself
    return results


def smallest_caught(entry: dict) -> str | None:
    factors = sorted((float(f) for f, result in entry["factors"].items() if result["caught"]))
    return f"{factors[0]:g}" if factors else None


def summary(results: dict) -> list[dict]:
    """Per chapter: its cells with a tolerance, and how many of them catch each factor measured."""
    rows = []
    for notebook, cells in sorted(results.items()):
        factors = sorted({float(factor) for entry in cells.values() for factor in entry["factors"]})
        row = {"chapter": int(notebook[:2]), "cells": len(cells), "caught": {}}
        for factor in factors:
            row["caught"][f"{factor:g}"] = sum(entry["factors"].get(f"{factor:g}", {}).get("caught", False)
                                              for entry in cells.values())
        rows.append(row)
    return rows


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--factors", nargs="+", type=float, help="instead of each chapter's own (FACTORS)")
    args = parser.parse_args(argv)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for path in args.notebooks:
        path = path.with_suffix(".ipynb").resolve()
        kept = results.get(path.name, {})

        def save(measured: dict) -> None:
            for key, entry in measured.items():
                if key in kept and kept[key]["tolerance"] == entry["tolerance"]:
                    entry["factors"] = {**kept[key]["factors"], **entry["factors"]}
                entry["smallest_factor_caught"] = smallest_caught(entry)
            results[path.name] = measured  # cells no longer there, or no longer tolerated, are dropped
            RESULTS.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")

        measure(path, tuple(args.factors or FACTORS.get(path.stem, DEFAULT_FACTORS)), save)
    for row in summary(results):
        print(f"Chapter {row['chapter']}: {row['cells']} cells with a tolerance; caught by",
              ", ".join(f"x{factor}: {count}" for factor, count in row["caught"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
