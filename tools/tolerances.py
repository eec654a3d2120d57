"""Derive each chapter cell's nbval tolerance from how much its numbers vary when rounding varies.

Another machine (another instruction set, another number of threads, another BLAS) rounds
some operations differently in their last bit. Most outputs do not notice; training, and a
few ill-conditioned computations, amplify the difference into other printed digits. So the
variation a tolerance must absorb is measured, not guessed from a few machines:

1. **Perturbed runs.** The chapter's stored notebook is executed ``runs`` times more, each
   time with every floating-point result of every PyTorch operation multiplied by
   ``1 + u * eps`` (``u`` uniform in [-1, 1], drawn from the run's own generator once for
   each operation, shape and dtype, so that a run is deterministic as a machine is; ``eps``
   the dtype's machine epsilon) in every operation that another machine
   rounds differently (``ROUNDING_OPERATIONS``): a change of about one rounding in every
   such operation, which is what another machine is. Backward passes, which run inside
   autograd, and additions with a factor (SGD's ``add_(grad, alpha=-lr)``) are not
   perturbed themselves; the perturbed forward computation reaches them. Python's ``random`` draws the factors, so
   the chapter's own seeded generators are untouched.
2. **Spread.** For every code cell whose compared output changes in any of those runs,
   every number it prints has a spread: the standard deviation of its values over the
   stored run and the perturbed ones.
3. **Rule.** The cell's declared tolerance is ``MULTIPLE`` (6) times the largest spread,
   taken at its upper ``CONFIDENCE`` (95%) bound given how many runs measured it, plus
   one unit of the last printed digit (a value near a rounding boundary flips it):
   ``abs`` from the numbers that are fractions (a percentage, or at most 1 in size),
   ``rel`` from the others (counts, losses, epochs), relative to their stored value. A cell
   whose output no perturbed run changes stays exact.

Why these: a new machine's value and the stored one are two draws, so they differ by
about ``sqrt(2)`` spreads, and six spreads are 4.2 of those (a false alarm about once in
40,000 numbers). A spread estimated from ``n`` values can be far too low (from five, the
stored run and four perturbed ones, a twentieth of the time by more than a factor of 2.4),
so the rule uses the chi-square upper bound ``s * sqrt((n - 1) / chi2_{0.05, n-1})``: more
runs give tighter tolerances. (In the measurements, ``runs`` counts the values: the stored
run and the perturbed ones.) A cell
whose *words* change between runs (a label hanging on a near tie, a count that changes
how many numbers are printed) cannot be given a tolerance: the derivation reports it, and
the chapter should print something stable instead.

Every measurement is kept in ``chapters/tolerances.json``, with the commit it was measured at,
keyed by notebook and by a hash of the words the cell prints (``measured_keys``: a renamed
variable, or a re-execution whose numbers moved within their tolerance, keeps the key; a
cell that prints other words asks for a new derivation), and the declared tolerances are
written into each cell's metadata, in the ``.md`` and the ``.ipynb``:

    python -m tools.tolerances derive chapters/05-nn-module.ipynb [--runs 4]   # make tolerances
    python -m tools.tolerances declare chapters/05-nn-module.ipynb   # the rule again, on the kept measurements

``tests/test_tolerances.py`` checks that every declared tolerance is the one the rule gives
from the kept measurement, and that every measured cell declares it. Deriving is an audit,
run when a maintainer chooses (running.md says when); the check is part of ``make test``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import re
import statistics
import sys
import time
from pathlib import Path

import nbformat

from tools.nbval_tolerance import METADATA_KEY, NUMBER, compare_numbers, compared_texts, is_fraction, number_value
from tools.notebooks import execute_with_first_cell

ROOT = Path(__file__).resolve().parents[1]
MEASUREMENTS = ROOT / "chapters" / "tolerances.json"
RUNS = ROOT / "_build" / "perturbed-runs"
MULTIPLE = 6
CONFIDENCE = 0.95  # the spread is taken at its upper bound at this confidence
DEFAULT_RUNS = 4
MEASURED_AT = "measured_at"  # each chapter's entry in the measurements: the commit they were measured at


# --- 1. Perturbed runs -------------------------------------------------------------------------

# The operations whose results another machine rounds differently: those that accumulate
# (matrix products, convolutions, reductions, losses, linear algebra), the vectorised
# transcendental functions (exp, log, tanh, ...: other code for each instruction set), and
# the fused multiply-adds of optimizer updates. Elementwise +, -, *, / and sqrt are rounded
# correctly by IEEE 754 on every machine, and creating or copying a tensor rounds nothing.
ROUNDING_OPERATIONS = re.compile(
    r"mm|matmul|linear|conv|einsum|dot|mv$|sum|mean|std|var|norm|prod|softmax|logsumexp|exp|log|tanh|"
    r"sigmoid|pow|sin|cos|erf|gelu|silu|loss|entropy|nll|linalg|lstsq|solve|inv|svd|eig|qr|cholesky|"
    r"addc|lerp|_foreach|dist|interpolate|pool|batch_norm|layer_norm")


def perturb_every_operation(seed: int):
    """From now on, multiply the floating-point result of every rounding operation by about 1 ± eps.

    The result's values are scaled in place through ``.data``, which autograd does not track:
    the graph, the ``grad_fn`` and the leaves stay as they were. Views of an input are left
    alone, and so is every value that is a whole number (``3 * 2.0**3``, a count, a sigmoid
    saturated at exactly 1): every machine computes those exactly. Returns the active mode (a ``TorchFunctionMode``), for ``mode.__exit__(None, None, None)``.
    """
    import torch
    from torch.overrides import TorchFunctionMode

    draw = random.Random(seed).uniform

    factors = {}

    def perturb(result, name):
        if isinstance(result, (list, tuple)):
            for item in result:
                perturb(item, name)
        elif isinstance(result, torch.Tensor) and result.is_floating_point() and result.numel() \
                and result.device.type != "meta" and result._base is None:
            values = result.data
            # One factor per operation, shape and dtype: like a real machine, the run is deterministic,
            # so that the same computation done twice gives the same result twice.
            key = (name, tuple(values.shape), values.dtype)
            if key not in factors:
                factors[key] = draw(-1, 1) * torch.finfo(values.dtype).eps
            change = values * factors[key]
            change.masked_fill_(values == values.round(), 0)  # whole numbers (0, 1, a count) are exact everywhere
            values.add_(change)

    rounds = {}  # function name -> whether it rounds, looked up once per name

    class RoundingPerturbation(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            result = func(*args, **(kwargs or {}))
            name = getattr(func, "__name__", "")
            if name not in rounds:
                rounds[name] = not name.startswith("__") and bool(ROUNDING_OPERATIONS.search(name))
            if rounds[name]:
                perturb(result, name)
            return result

    mode = RoundingPerturbation()
    mode.__enter__()
    return mode


def perturbed_run(notebook_path: Path, seed: int, timeout: int = 1200) -> nbformat.NotebookNode:
    """The stored notebook executed again, in its folder, with every operation's rounding perturbed."""
    return execute_with_first_cell(nbformat.read(notebook_path, as_version=4), notebook_path.parent,
                                   f"from tools.tolerances import perturb_every_operation\n"
                                   f"_perturbation = perturb_every_operation(seed={seed})", timeout=timeout)


# --- 2. What nbval compares, and its numbers ---------------------------------------------------

def cell_key(cell) -> str:
    """A hash of a cell's code without its comments (``tools.chapter7_runs`` keys its recipe so)."""
    from tools.translation import code_tokens

    return hashlib.sha1(repr(code_tokens(cell.source)).encode()).hexdigest()[:12]


def output_words(cell) -> str:
    """What nbval compares in a cell's outputs, with every number left out and spaces collapsed: its words."""
    return repr([(key, " ".join(NUMBER.sub("#", text).split())) for key, text in cell_texts(cell)])


def measured_keys(notebook) -> dict[str, object]:
    """Each compared cell by its key in the measurements: a hash of its outputs' words (``-1``, ``-2`` after it
    for the second and third cell that prints the same words). Renaming a variable, editing a comment, or
    numbers that moved within their tolerance leave the key as it was; a cell that prints other words has
    another key, and asks for a new derivation."""
    keys, seen = {}, {}
    for cell in compared_cells(notebook):
        base = hashlib.sha1(output_words(cell).encode()).hexdigest()[:12]
        keys[f"{base}-{seen[base]}" if base in seen else base] = cell
        seen[base] = seen.get(base, 0) + 1
    return keys


def compared_cells(notebook) -> list:
    """The code cells whose outputs nbval compares."""
    skipped = {"nbval-ignore-output", "nbval-skip", "raises-exception"}
    return [cell for cell in notebook.cells
            if cell.cell_type == "code" and not skipped & set(cell.metadata.get("tags", []))]


def cell_texts(cell) -> list[tuple[str, str]]:
    return compared_texts(cell.get("outputs", []))


# --- 3. The rule -------------------------------------------------------------------------------

def last_digit_unit(token: str) -> float:
    """One unit of the last printed digit of a number token, in the units the plugin compares (82.2% -> 0.001)."""
    mantissa = token.rstrip("%").replace(",", "").lower().split("e")[0]
    exponent = int(token.lower().rstrip("%").split("e")[1]) if "e" in token.lower() else 0
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    unit = 10.0 ** (exponent - decimals)
    return unit / 100 if token.endswith("%") else unit


def spreads(runs_texts: list[list[tuple[str, str]]]) -> tuple[list[dict], str | None]:
    """Every number's values over the runs (the first is the stored one), or what makes the output volatile."""
    stored = runs_texts[0]
    for r, texts in enumerate(runs_texts[1:], start=1):
        if [key for key, _ in texts] != [key for key, _ in stored]:
            return [], f"run {r} has other outputs: {[k for k, _ in texts]} where {[k for k, _ in stored]} were stored"
        for (key, text), (_, stored_text) in zip(texts, stored):
            problem = compare_numbers(text, stored_text, (0.0, 0.0), only_words=True)[1]  # what no tolerance accepts
            if problem is not None:
                return [], f"run {r} printed {key} otherwise: {problem}"
    numbers = []
    for index, (key, stored_text) in enumerate(stored):
        for position, token in enumerate(NUMBER.findall(stored_text)):
            tokens = [NUMBER.findall(texts[index][1])[position] for texts in runs_texts]
            values = [number_value(t) for t in tokens]
            numbers.append({"where": key, "token": token, "value": values[0],
                            "spread": statistics.stdev(values) if len(values) > 1 else 0.0,
                            "unit": max(last_digit_unit(t) for t in tokens), "varied": len(set(tokens)) > 1})
    return numbers, None


def chi2_quantile(probability: float, df: int) -> float:
    """The chi-square distribution's ``probability`` quantile with ``df`` degrees of freedom (by bisection)."""
    def cdf(x: float) -> float:  # the regularized lower incomplete gamma P(df/2, x/2), by its series
        a, half = df / 2, x / 2
        term = total = 1 / a
        n = 0
        while term > total * 1e-15:
            n += 1
            term *= half / (a + n)
            total += term
        return total * math.exp(a * math.log(half) - half - math.lgamma(a)) if half > 0 else 0.0

    low, high = 0.0, df + 20 * math.sqrt(2 * df) + 20
    for _ in range(200):
        middle = (low + high) / 2
        low, high = (middle, high) if cdf(middle) < probability else (low, middle)
    return (low + high) / 2


def spread_bound(runs: int, confidence: float = CONFIDENCE) -> float:
    """How many times its estimate the spread can be, at ``confidence``, when ``runs`` values
    (the stored run and the perturbed ones) measured it."""
    df = runs - 1
    return math.sqrt(df / chi2_quantile(1 - confidence, df))


def significant(value: float, digits: int = 2) -> float:
    """``value`` rounded *up* to ``digits`` significant digits, as the declared tolerance is written."""
    if value <= 0:
        return 0.0
    exponent = math.floor(math.log10(value)) - digits + 1
    mantissa = math.ceil(value / 10.0**exponent - 1e-6)
    return float(f"{mantissa}e{exponent}")


def split_fractions(numbers: list[dict]) -> tuple[list[dict], list[dict]]:
    """The numbers that varied, as (fractions, the rest): the first get an abs tolerance, the others a rel one."""
    varied = [n for n in numbers if n["varied"]]
    fractions = [n for n in varied if is_fraction(n["token"], n["value"])]
    return fractions, [n for n in varied if n not in fractions]


def tolerance_from(numbers: list[dict], runs: int, multiple: float = MULTIPLE) -> dict:
    """The rule: ``multiple`` times the largest spread at its upper bound from ``runs`` runs, plus one
    last-digit unit, as abs (fractions) and rel (the rest)."""
    fractions, others = split_fractions(numbers)
    bound = multiple * spread_bound(runs)
    tolerance = {}
    if fractions:
        tolerance["abs"] = significant(max(bound * n["spread"] + n["unit"] for n in fractions))
    if others:
        tolerance["rel"] = significant(max((bound * n["spread"] + n["unit"]) / abs(n["value"]) for n in others))
    return tolerance


def summary(numbers: list[dict]) -> dict:
    """What the measurement file keeps of a cell's numbers: enough to re-derive and to read."""
    fractions, others = split_fractions(numbers)
    return {
        "numbers": len(numbers),
        "numbers_that_varied": len(fractions) + len(others),
        "largest_spread_of_a_fraction": max((n["spread"] for n in fractions), default=0.0),
        "largest_relative_spread_of_the_rest": max((n["spread"] / abs(n["value"]) for n in others), default=0.0),
        "varied": [{key: n[key] for key in ("where", "token", "spread", "unit")} for n in fractions + others],
    }


def tolerance_of_measurement(entry: dict) -> dict:
    """The rule applied to a kept measurement (what the test recomputes)."""
    numbers = [{"token": n["token"], "value": number_value(n["token"]), "spread": n["spread"], "unit": n["unit"], "varied": True}
               for n in entry["varied"]]
    return tolerance_from(numbers, entry["runs"], entry["multiple"])


# --- Writing it down ---------------------------------------------------------------------------

def load_measurements() -> dict:
    return json.loads(MEASUREMENTS.read_text()) if MEASUREMENTS.exists() else {}


def cells_measured(chapter: dict) -> dict:
    """A chapter's measurements without the commit they were measured at."""
    return {key: entry for key, entry in chapter.items() if key != MEASURED_AT}


def measured_at() -> str:
    """The commit a measurement is made on top of (with ``+`` when the working tree had changes), and the date."""
    import subprocess

    def git(*args):
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    commit = git("rev-parse", "--short=12", "HEAD") or "unknown"
    dirty = "+" if git("status", "--porcelain", "--untracked-files=no") else ""
    return f"{commit}{dirty} {time.strftime('%Y-%m-%d', time.gmtime())}"


def write_tolerances(notebook_path: Path, declared: dict[str, dict]) -> None:
    """Set (or remove) each compared cell's declared tolerance in the .ipynb and its paired .md.

    The .md stores no outputs, so its cells are found by their place among the compared cells of the .ipynb.
    """
    import jupytext

    keys = list(measured_keys(nbformat.read(notebook_path, as_version=4)))
    for path in (notebook_path, notebook_path.with_suffix(".md")):
        notebook = jupytext.read(path)
        cells = compared_cells(notebook)
        if len(cells) != len(keys):
            raise SystemExit(f"{path} and {notebook_path.name} differ in their compared cells: run `make sync` first")
        for key, cell in zip(keys, cells):
            tolerance = declared.get(key)
            if tolerance:
                cell.metadata[METADATA_KEY] = tolerance
            else:
                cell.metadata.pop(METADATA_KEY, None)
        if path.suffix == ".ipynb":
            nbformat.write(notebook, path)
        else:
            jupytext.write(notebook, path, fmt="md:myst")


def derive(notebook_path: Path, runs: int) -> list[str]:
    """Run the perturbed executions, keep the measurements, declare the tolerances; returns the volatile cells."""
    notebook_path = Path(notebook_path)
    stored = nbformat.read(notebook_path, as_version=4)
    if str(ROOT) not in os.environ.get("PYTHONPATH", "").split(os.pathsep):  # the kernels import tools.tolerances
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    executed = []
    for seed in range(1, runs + 1):
        start = time.perf_counter()
        executed.append(perturbed_run(notebook_path, seed))
        RUNS.mkdir(parents=True, exist_ok=True)  # kept, to read again without re-running
        nbformat.write(executed[-1], RUNS / f"{notebook_path.stem}-perturbed-{seed}.ipynb")
        print(f"{notebook_path.name}: perturbed run {seed} of {runs} took {time.perf_counter() - start:.0f} s", flush=True)
    measurements = load_measurements()
    chapter = {}
    declared = {}
    volatile = []
    perturbed_cells = [compared_cells(nb) for nb in executed]
    for position, (key, cell) in enumerate(measured_keys(stored).items()):
        runs_texts = [cell_texts(cell)] + [cell_texts(cells[position]) for cells in perturbed_cells]
        if all(texts == runs_texts[0] for texts in runs_texts[1:]):
            continue  # exact under every perturbation
        numbers, problem = spreads(runs_texts)
        first_line = cell.source.strip().splitlines()[0][:70]
        if problem:
            volatile.append(f"{notebook_path.name}, cell {first_line!r}: {problem}")
            continue
        entry = {"first_line": first_line, "runs": runs + 1, "multiple": MULTIPLE, **summary(numbers)}
        entry["tolerance"] = tolerance_of_measurement(entry)
        chapter[key] = entry
        declared[key] = entry["tolerance"]
    measurements[notebook_path.name] = {MEASURED_AT: measured_at(), **chapter}
    MEASUREMENTS.write_text(json.dumps(measurements, indent=1, sort_keys=True) + "\n")
    write_tolerances(notebook_path, declared)
    for entry in cells_measured(chapter).values():
        print(f"  {entry['first_line']!r}: {entry['numbers_that_varied']} of {entry['numbers']} numbers varied -> {entry['tolerance']}")
    return volatile


def declare(notebook_path: Path) -> None:
    """Apply the rule again to the kept measurements of a chapter (after the rule changed), without running it."""
    measurements = load_measurements()
    chapter = measurements.get(notebook_path.name)
    if not chapter:
        raise SystemExit(f"{MEASUREMENTS.name} keeps no measurements of {notebook_path.name}: run `derive` first")
    cells = set(measured_keys(nbformat.read(notebook_path, as_version=4)))
    missing = set(cells_measured(chapter)) - cells
    if missing:
        raise SystemExit(f"{notebook_path.name}: {len(missing)} measured cells are no longer in the chapter "
                         f"(they print other words): run `derive` again")
    for entry in cells_measured(chapter).values():
        entry["multiple"] = MULTIPLE
        entry["tolerance"] = tolerance_of_measurement(entry)
    MEASUREMENTS.write_text(json.dumps(measurements, indent=1, sort_keys=True) + "\n")
    write_tolerances(notebook_path, {key: entry["tolerance"] for key, entry in cells_measured(chapter).items()})


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.tolerances", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["derive", "declare"],
                        help="derive: run and measure, then declare; declare: the rule applied again to the kept measurements")
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--runs", type=int, default=DEFAULT_RUNS, help="perturbed executions per chapter")
    arguments = parser.parse_args(argv)
    if arguments.runs < 2:
        parser.error("--runs must be at least 2: a spread needs perturbed runs to compare")
    if arguments.command == "declare":
        for notebook in arguments.notebooks:
            declare(notebook.with_suffix(".ipynb"))
        return 0
    volatile = []
    for notebook in arguments.notebooks:
        volatile += derive(notebook.with_suffix(".ipynb"), arguments.runs)
    for problem in volatile:
        print(f"volatile output, no tolerance can cover it: {problem}", file=sys.stderr)
    return 1 if volatile else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
