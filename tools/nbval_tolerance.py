"""A pytest plugin for nbval: numbers that training computes may differ within a declared tolerance.

nbval compares every output of a re-run notebook with the stored one, character for
character. That is right for most cells (data loading, shapes, dtypes, counts, tensor
operations that do not train), but not for cells whose numbers come out of training:
another CPU's instruction set, or another number of threads, rounds the first updates
differently, and training amplifies that into other last digits of the printed losses
and accuracies. Such a cell declares, in its metadata, how far its numbers may move:

    ```{code-cell} ipython3
    ---
    nbval-tolerance: {abs: 0.01, rel: 0.001}
    ---
    ```

A number in the re-run output then passes when it differs from the stored one by at most
``abs`` if the stored number is a *fraction* (a percentage, ``82.2%`` being 0.822, or a
number at most 1 in size: accuracies, most losses), and by at most ``rel * |stored|``
otherwise (counts, larger losses, epochs): the two kinds that the rule below derives
``abs`` and ``rel`` from, so neither widens the other's check. Everything else in the
output (the words, the order, how many numbers there are) must still match exactly.
Cells without the key are compared exactly, as nbval always does; glued values are
outputs of their cell, so the cell's
tolerance covers them too. Nothing is blanked out: a number outside its tolerance fails
the cell with nbval's usual diff of the real output.

No tolerance is set by hand. Each is derived by one rule, from how much the cell's numbers
vary when every rounding is perturbed: six times the largest spread of its numbers over
the stored run and the perturbed ones, taken at its upper 95% confidence bound for that
many runs, plus one unit of the last printed digit, as ``abs`` for fractions and ``rel``
for the rest (``tools/tolerances.py``, ``make tolerances``; the measurements are kept in
``chapters/tolerances.json``). Only what nbval compares is read (not images), and a
failure names the output, its line and both values.

Loaded with ``-p tools.nbval_tolerance`` (the Makefile's test targets do). With
``--nbval-tolerance-report=FILE`` it also writes, as JSON, the largest difference it
accepted in every cell (how close a run came to its tolerances).
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

METADATA_KEY = "nbval-tolerance"
# A decimal number as Python and PyTorch print it: optional sign, thousands separators,
# decimals, exponent, and a percent sign that makes it a fraction.
NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?%?(?![\w])")

_accepted: dict[str, dict] = {}  # cell id -> the largest accepted difference, for the report


def parse_tolerance(metadata: dict) -> tuple[float, float] | None:
    """``(abs, rel)`` from a cell's metadata, or None when the cell is compared exactly."""
    declared = metadata.get(METADATA_KEY)
    if declared is None:
        return None
    unknown = set(declared) - {"abs", "rel"}
    if unknown or not declared:
        raise ValueError(f"{METADATA_KEY} takes 'abs' and/or 'rel', got {declared!r}")
    return float(declared.get("abs", 0.0)), float(declared.get("rel", 0.0))


def number_value(token: str) -> float:
    value = float(token.rstrip("%").replace(",", ""))
    return value / 100 if token.endswith("%") else value


def is_fraction(token: str, value: float) -> bool:
    """Whether a printed number is compared by ``abs`` (a percentage, or at most 1 in size) rather than by ``rel``."""
    return token.endswith("%") or abs(value) <= 1


def allowed_difference(token: str, tolerance: tuple[float, float]) -> float:
    """How far a number printed as ``token`` may move: ``abs`` for a fraction, ``rel`` times its size for the rest."""
    absolute, relative = tolerance
    value = number_value(token)
    return absolute if is_fraction(token, value) else relative * abs(value)


def beyond(difference: float, allowed: float) -> bool:
    """Whether a difference exceeds what is allowed ("at most": 0.869 - 0.865 is 0.0040000000000000036 in binary)."""
    return difference > allowed * (1 + 1e-9) + 1e-12


def _line_of(text: str, position: int) -> int:
    return text.count("\n", 0, position) + 1


def compare_numbers(new: str, stored: str, tolerance: tuple[float, float],
                    only_words: bool = False) -> tuple[list[tuple[float, float, float]], str | None]:
    """Each ``(stored value, difference, allowed)`` where ``new`` differs from ``stored``, and what breaks the tolerance (or None).

    With ``only_words``, a number beyond its tolerance is listed like the others instead of
    being a problem: only other words or another count of numbers are.

    Runs of spaces count as one, since a number with another count of digits shifts the
    padding after it. ``nan`` and ``inf`` are words here: they must match exactly. A problem
    names the line of the stored text it is on.
    """
    new_parts, stored_parts = NUMBER.split(new), NUMBER.split(stored)
    new_numbers, stored_matches = NUMBER.findall(new), list(NUMBER.finditer(stored))
    stored_numbers = [match.group(0) for match in stored_matches]
    if len(new_numbers) != len(stored_numbers):
        return [], f"{len(new_numbers)} numbers where {len(stored_numbers)} were stored"
    offset = 0  # where each stored part starts, for the line a problem is on
    for index, (new_part, stored_part) in enumerate(zip(new_parts, stored_parts)):
        if new_part.split() != stored_part.split() or new_part.count("\n") != stored_part.count("\n"):
            first_word = offset + len(stored_part) - len(stored_part.lstrip())
            return [], (f"line {_line_of(stored, first_word)}: the text around the numbers differs: "
                        f"{new_part.strip()[:60]!r} where {stored_part.strip()[:60]!r} was stored")
        offset += len(stored_part) + (len(stored_numbers[index]) if index < len(stored_numbers) else 0)
    differences = []
    for new_token, match in zip(new_numbers, stored_matches):
        stored_token = match.group(0)
        if new_token == stored_token:
            continue
        line = _line_of(stored, match.start())
        if new_token.endswith("%") != stored_token.endswith("%"):
            return differences, f"line {line}: {new_token} where {stored_token} was stored"
        stored_value = number_value(stored_token)
        difference = abs(number_value(new_token) - stored_value)
        allowed = allowed_difference(stored_token, tolerance)
        if not only_words and beyond(difference, allowed):
            return differences, (f"line {line}: {new_token} where {stored_token} was stored: "
                                 f"a difference of {difference:.6g}, beyond the {allowed:.6g} allowed")
        differences.append((stored_value, difference, allowed))
    return differences, None


# What nbval leaves out of its comparison by default (nbval.plugin.IPyNbFile.skip_compare).
NBVAL_SKIPPED = ("metadata", "traceback", "prompt_number", "output_type", "name", "execution_count",
                 "application/vnd.jupyter.widget-view+json", "image/png", "image/jpeg")


def compared_texts(outputs: list, skip_compare=NBVAL_SKIPPED) -> list[tuple[str, str]]:
    """``(key, text)`` for every text that nbval compares in these outputs: a stream by its name, data by its mime."""
    texts = []
    for output in outputs:
        if output.get("output_type") == "stream":
            texts.append((output["name"], output["text"]))
            continue
        for mime, value in sorted(output.get("data", {}).items()):  # nbval compares by mime, in no order
            if mime not in skip_compare and isinstance(value, str):
                texts.append((mime, value))
    return texts


def aligned_outputs(new_outputs: list, stored_outputs: list, tolerance, record: list, problems: list,
                     skip_compare=NBVAL_SKIPPED) -> list:
    """A copy of the new outputs in which each text within tolerance of the stored one is replaced by it.

    Only what nbval compares is looked at (``skip_compare``: images are not). ``record``
    collects the differences accepted, ``problems`` what the other texts differ in, each
    named by its stream or mime type and output.
    """
    aligned = []
    for index, new in enumerate(new_outputs):
        new = copy.deepcopy(new)
        stored = stored_outputs[index] if index < len(stored_outputs) else None
        if stored is not None and new.get("output_type") == stored.get("output_type"):
            if new.get("output_type") == "stream" and new.get("name") == stored.get("name"):
                differences, problem = compare_numbers(new["text"], stored["text"], tolerance)
                if problem is None:
                    new["text"] = stored["text"]
                    record.extend(differences)
                else:
                    problems.append(f"{new['name']} (output {index + 1}), {problem}")
            for mime, value in new.get("data", {}).items():
                stored_value = stored.get("data", {}).get(mime)
                if mime in skip_compare or not (isinstance(value, str) and isinstance(stored_value, str)):
                    continue
                differences, problem = compare_numbers(value, stored_value, tolerance)
                if problem is None:
                    new["data"][mime] = stored_value
                    record.extend(differences)
                else:
                    problems.append(f"{mime} (output {index + 1}), {problem}")
        aligned.append(new)
    return aligned


def within_tolerance(new_outputs: list, stored_outputs: list, tolerance: tuple[float, float], equal=None,
                     skip_compare=NBVAL_SKIPPED) -> tuple[bool, list, list]:
    """Whether the new outputs match the stored ones once every number within tolerance counts as stored,
    with the differences accepted and the problems found (as ``aligned_outputs`` lists them).

    ``equal(aligned, stored)`` is the exact comparison: nbval's own in ``make test``; by
    default, the texts that nbval compares must be the same.
    """
    differences, problems = [], []
    aligned = aligned_outputs(new_outputs, stored_outputs, tolerance, differences, problems, skip_compare)
    if equal is None:
        def equal(aligned, stored):
            return compared_texts(aligned, skip_compare) == compared_texts(stored, skip_compare)
    return not problems and equal(aligned, stored_outputs), differences, problems


def pytest_addoption(parser):
    parser.getgroup("nbval").addoption(
        "--nbval-tolerance-report",
        metavar="FILE",
        help="write the largest difference accepted in each cell with a declared nbval-tolerance, as JSON",
    )


def pytest_configure(config):
    from nbval.plugin import IPyNbCell

    if getattr(IPyNbCell.compare_outputs, "with_tolerance", False):
        return  # already wrapped in this process
    exact = IPyNbCell.compare_outputs

    def compare_outputs(self, test, ref, skip_compare=None):
        if exact(self, test, ref, skip_compare):
            return True
        tolerance = parse_tolerance(self.cell.get("metadata", {}))
        if tolerance is None:
            return False
        cell_id = f"{Path(str(self.parent.fspath)).name}::cell {self.cell_num}"
        accepted, differences, problems = within_tolerance(
            test, ref, tolerance, equal=lambda aligned, ref: exact(self, aligned, ref, skip_compare),
            skip_compare=skip_compare or self.parent.skip_compare)
        if not accepted:
            # nbval's traceback shows the real output; say first what lies beyond the declared tolerance.
            declared = f"{METADATA_KEY} {{abs: {tolerance[0]:g}, rel: {tolerance[1]:g}}}"
            self.comparison_traceback[:0] = [f"beyond {declared}: {problem}" for problem in problems] or [f"beyond {declared}"]
            return False
        _accepted[cell_id] = {
            "tolerance": {"abs": tolerance[0], "rel": tolerance[1]},
            "numbers_that_differed": len(differences),
            "largest_difference": max((difference for _, difference, _ in differences), default=0.0),
            "largest_relative_difference": max((difference / abs(value) for value, difference, _ in differences if value), default=0.0),
            "largest_share_of_the_allowed": max((difference / allowed for _, difference, allowed in differences if allowed), default=0.0),
        }
        return True

    compare_outputs.with_tolerance = True
    IPyNbCell.compare_outputs = compare_outputs


def pytest_sessionfinish(session):
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # a pytest-xdist worker: what it accepted goes to the main process
        workeroutput["nbval_tolerance_accepted"] = json.dumps(_accepted)


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook, called in the main process as each worker ends
def pytest_testnodedown(node, error):
    _accepted.update(json.loads(getattr(node, "workeroutput", {}).get("nbval_tolerance_accepted", "{}")))


def pytest_terminal_summary(terminalreporter, config):
    if _accepted:
        numbers = sum(entry["numbers_that_differed"] for entry in _accepted.values())
        terminalreporter.write_line(
            f"nbval-tolerance: {len(_accepted)} cells passed within their declared tolerance, with {numbers} numbers "
            f"that differed from the stored ones (--nbval-tolerance-report=FILE lists the largest differences)"
        )
    path = config.getoption("nbval_tolerance_report", None)
    if path:
        Path(path).write_text(json.dumps(_accepted, indent=1, sort_keys=True) + "\n")
