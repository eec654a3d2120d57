"""What the declared tolerances still catch: a real change, made in a copy of a chapter, and the cells it fails.

    python -m tools.real_changes chapters/NN-name.ipynb ...   # updates chapters/real-changes.json
    python -m tools.real_changes chapters/06-cifar10-classifier.ipynb --factors 2   # other factors than its own
    # (kept results of the other factors stay only while the cell's tolerance and stored outputs do; include 1, the
    # control, after either changed)

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
loading, a formula) has a margin of 0 under every factor. Each chapter also runs with the
factor 1 (``CONTROL``), through the same patches: no cell may catch that, or what the
others catch would not be the change.

The results are kept in ``chapters/real-changes.json``, per notebook (with the commit they
were measured at) and per cell key (``tools.tolerances.measured_keys``), with the tolerance
and a hash of the stored outputs they were measured against. This is an audit, run when a
maintainer chooses (running.md says when), not a gate: ``make test`` checks only that the
recorded results agree with themselves and with running.md's table, and
``python -m tools.real_changes --status`` lists the cells whose results are missing or were
measured against another tolerance or other stored outputs.
Chapters 3 and 5 prove two of them in ``tests/test_nbval_tolerance.py`` with nbval itself.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
import sys
import time
from pathlib import Path

import nbformat

from tools.nbval_tolerance import METADATA_KEY, beyond, compare_numbers, compared_texts, parse_tolerance, within_tolerance
from tools.notebooks import execute_with_first_cell
from tools.tolerances import MEASURED_AT, cells_measured, measured_at, measured_keys

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "chapters" / "real-changes.json"
# Each chapter's factors: Chapters 6 and 7 take minutes a run, and change little at 1.1; Chapter 1 has no learning rate.
# Every chapter also runs unchanged (CONTROL), through the same patches: no cell may catch that.
CONTROL = 1.0
FACTORS = {"01-tensors": (CONTROL, 1.5), "06-cifar10-classifier": (CONTROL, 1.5, 2.0), "07-better-convnets": (CONTROL, 1.5, 2.0)}
DEFAULT_FACTORS = (CONTROL, 1.01, 1.1, 1.5)
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
    """A copy of the notebook whose every hand-written learning-rate update is ``factor`` times larger
    (``execute`` scales the optimizers, with ``SCALE_OPTIMIZERS`` run before the copy's first cell)."""
    copy = nbformat.from_dict(json.loads(json.dumps(notebook)))
    for cell in copy.cells:
        if cell.cell_type == "code":
            cell.source = HAND_WRITTEN_UPDATE.sub(lambda match: f"({factor!r} * {match[1]}) * ", cell.source)
    return copy


def execute(notebook: nbformat.NotebookNode, folder: Path, factor: float, timeout: int = 1800) -> nbformat.NotebookNode:
    """The stored notebook executed with every learning rate ``factor`` times larger; errors become outputs."""
    return execute_with_first_cell(changed_notebook(notebook, factor), folder, SCALE_OPTIMIZERS.format(factor=factor),
                                   timeout=timeout, allow_errors=True)


def margin(new_outputs: list, stored_outputs: list, tolerance: tuple[float, float]) -> float | None:
    """The largest difference of one number, over what the tolerance allows it: inf when a number that the
    tolerance holds exact changed (a count in a cell that declares only ``abs``), None when more than numbers changed."""
    new, stored = compared_texts(new_outputs), compared_texts(stored_outputs)
    if [key for key, _ in new] != [key for key, _ in stored]:
        return None
    largest = 0.0
    for (_, new_text), (_, stored_text) in zip(new, stored):
        # Every number that changed, with what its tolerance allows it; a problem is only other words or another count.
        differences, problem = compare_numbers(new_text, stored_text, tolerance, only_words=True)
        if problem is not None:
            return None
        for _, difference, allowed in differences:  # allowed: abs for a fraction, rel times its size for the rest
            if allowed:
                largest = max(largest, difference / allowed)
            elif beyond(difference, allowed):  # as the plugin decides it: a last-bit difference is not a change
                largest = math.inf
    return largest


def caught(new_outputs: list, stored_outputs: list, tolerance: tuple[float, float]) -> bool:
    """Whether make test's comparison (nbval, with the declared tolerance) fails these outputs."""
    return not within_tolerance(new_outputs, stored_outputs, tolerance)[0]


def stored_outputs_hash(cell) -> str:
    """A hash of what nbval compares in a cell's stored outputs: results measured against other outputs are stale."""
    return hashlib.sha1(json.dumps(compared_texts(cell.outputs)).encode()).hexdigest()[:12]


def measure(notebook_path: Path, factors: tuple[float, ...], save=lambda results: None) -> dict:
    stored = nbformat.read(notebook_path, as_version=4)
    code = [cell for cell in stored.cells if cell.cell_type == "code"]
    key_of = {id(cell): key for key, cell in measured_keys(stored).items()}
    tolerated = [(index, key_of[id(cell)], cell) for index, cell in enumerate(code) if parse_tolerance(cell.metadata)]
    results = {key: {"cell": index, "tolerance": dict(cell.metadata[METADATA_KEY]),
                     "stored_outputs": stored_outputs_hash(cell), "factors": {}}
               for index, key, cell in tolerated}
    for factor in factors:
        start = time.perf_counter()
        run = execute(stored, notebook_path.parent, factor)
        new_code = [cell for cell in run.cells if cell.cell_type == "code"]
        for index, key, cell in tolerated:
            tolerance = parse_tolerance(cell.metadata)
            outputs = new_code[index].outputs
            errored = any(output.get("output_type") == "error" for output in outputs)
            largest = None if errored else margin(outputs, cell.outputs, tolerance)
            entry = {"caught": errored or caught(outputs, cell.outputs, tolerance),
                     "margin": ("error" if errored else "other words" if largest is None
                                else "a number held exact" if largest == math.inf else round(largest, 2))}
            results[key]["factors"][f"{factor:g}"] = entry
        found = sum(results[key]["factors"][f"{factor:g}"]["caught"] for _, key, _ in tolerated)
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
    for notebook, chapter in sorted(results.items()):
        cells = cells_measured(chapter)
        factors = sorted({float(factor) for entry in cells.values() for factor in entry["factors"]})
        row = {"chapter": int(notebook[:2]), "cells": len(cells), "caught": {}}
        for factor in factors:
            row["caught"][f"{factor:g}"] = sum(entry["factors"].get(f"{factor:g}", {}).get("caught", False)
                                              for entry in cells.values())
        rows.append(row)
    return rows


def stale(notebook_path: Path, results: dict) -> list[str]:
    """The cells with a tolerance whose recorded results are missing, or were measured against another
    tolerance or other stored outputs (the audit is then older than the chapter: re-run it when it matters)."""
    chapter = results.get(notebook_path.name, {})
    measured, notes = cells_measured(chapter), []
    tolerated = {key: cell for key, cell in measured_keys(nbformat.read(notebook_path, as_version=4)).items()
                 if parse_tolerance(cell.metadata)}
    for key, cell in tolerated.items():
        where = f"{notebook_path.name}: {cell.source.splitlines()[0][:60]!r}"
        entry = measured.get(key)
        if entry is None:
            notes.append(f"{where}: no real change measured")
        elif entry["tolerance"] != dict(cell.metadata[METADATA_KEY]):
            notes.append(f"{where}: measured against {entry['tolerance']}, now declares {dict(cell.metadata[METADATA_KEY])}")
        elif entry.get("stored_outputs") != stored_outputs_hash(cell):
            notes.append(f"{where}: measured against other stored outputs (executed again since)")
    notes += [f"{notebook_path.name}: cell {measured[key]['cell']}: measured, but no cell with a tolerance prints those words now"
              for key in set(measured) - set(tolerated)]
    return notes


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--factors", nargs="+", type=float, help="instead of each chapter's own (FACTORS)")
    parser.add_argument("--status", action="store_true", help="list the cells whose results are stale; run nothing")
    args = parser.parse_args(argv)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    if args.status:
        for path in args.notebooks:
            path = path.with_suffix(".ipynb").resolve()
            notes = stale(path, results)
            print(f"{path.name}: measured at {results.get(path.name, {}).get(MEASURED_AT, 'never')}; "
                  f"{len(notes) or 'no'} stale cell{'s' * (len(notes) != 1)}")
            for note in notes:
                print(f"  {note}")
        return 0
    for path in args.notebooks:
        path = path.with_suffix(".ipynb").resolve()
        kept = cells_measured(results.get(path.name, {}))
        when = measured_at()

        def save(measured: dict) -> None:
            for key, entry in measured.items():
                if key in kept and all(kept[key].get(k) == entry[k] for k in ("tolerance", "stored_outputs")):
                    entry["factors"] = {**kept[key]["factors"], **entry["factors"]}
                entry["smallest_factor_caught"] = smallest_caught(entry)
            results[path.name] = {MEASURED_AT: when, **measured}  # cells no longer there, or no longer tolerated, are dropped
            RESULTS.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")

        measure(path, tuple(args.factors or FACTORS.get(path.stem, DEFAULT_FACTORS)), save)
    for row in summary(results):
        print(f"Chapter {row['chapter']}: {row['cells']} cells with a tolerance; caught by",
              ", ".join(f"x{factor}: {count}" for factor, count in row["caught"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
