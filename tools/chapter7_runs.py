"""The ten-class trainings that Chapter 7 reports but cannot afford to repeat: other seeds, and one choice left out at a time.

    python -m tools.chapter7_runs            # about 15 minutes here; writes chapters/07-runs.json

It runs the chapter's own code: the code cells of chapters/07-better-convnets.md up to the
recipe's, and that one without its last line, which trains the kept network (the design
comparisons on airplanes and birds are skipped: the runs do not need them), then calls the chapter's `ten_class_run` for each run below. The chapter quotes
the file's numbers in a literal that tests/test_chapter7_runs.py compares with the file, and the
file records the key of the cell that defines the recipe, so that a changed recipe fails that
test until this script is run again.
"""

from __future__ import annotations

import json
import platform
import re
import time
from pathlib import Path

import jupytext
import matplotlib

from tools.notebooks import as_python
from tools.tolerances import cell_key

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = ROOT / "chapters" / "07-better-convnets.md"
RESULTS = ROOT / "chapters" / "07-runs.json"
RECIPE_CELL = "def ten_class_run("  # the cell that defines the recipe
KEPT_RUN = "resnet, resnet_history = ten_class_run("  # the recipe cell's last line, which trains the kept network
# The design comparisons (the cells that call compare) and the cells that read their results.
SKIPPED = re.compile(r"(?<!def )\bcompare\(|\bsummary\b|\bbaseline_val\b")
# (name, seed, ten_class_run's arguments); the full recipe with three seeds, each choice left out with one.
RUNS = [
    ("full recipe", 0, {}),
    ("full recipe", 1, {}),
    ("full recipe", 2, {}),
    ("without the residual block", 0, {"residual": False}),
    ("without augmentation", 0, {"augmented": False}),
    ("without label smoothing", 0, {"label_smoothing": 0.0}),
]


def recipe_cells():
    """The chapter's code cells that the runs need (the last one without its kept training), and the recipe cell."""
    cells = [cell for cell in jupytext.read(CHAPTER).cells if cell.cell_type == "code"]
    (recipe,) = [cell for cell in cells if RECIPE_CELL in cell.source]
    end = cells.index(recipe)
    needed = [cell.source for cell in cells[1:end] if not SKIPPED.search(cell.source)]  # [1:]: not the set-up cell
    needed.append("\n".join(line for line in recipe.source.splitlines() if not line.startswith(KEPT_RUN)))
    return needed, recipe


def machine(torch) -> str:
    """What ran the trainings: CPU model, threads, PyTorch and the instruction set its kernels used."""
    cpuinfo = Path("/proc/cpuinfo")
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                  if line.startswith("model name")), platform.processor()) if cpuinfo.exists() else platform.processor()
    return (f"{model or platform.machine()}; {torch.get_num_threads()} threads; PyTorch {torch.__version__}, "
            f"{torch.backends.cpu.get_cpu_capability()}")


def main() -> None:
    matplotlib.use("Agg")
    needed, recipe = recipe_cells()
    namespace: dict = {}
    for source in needed:
        exec(compile(as_python(source), str(CHAPTER), "exec"), namespace)

    def accuracy_of(logits, labels):  # exact in 4 decimals on 5,000 or 10,000 images
        return round((logits.argmax(dim=1) == labels).float().mean().item(), 4)

    runs = []
    for name, seed, arguments in RUNS:
        start = time.perf_counter()
        model, history = namespace["ten_class_run"](seed, **arguments)
        flip = namespace["flip_averaged_logits"]
        run = {"name": name, "seed": seed,
               "val": round(history[-1]["val"], 4),
               "val_flip": accuracy_of(flip(model, namespace["val_x10"]), namespace["val_y10"])}
        if name == "full recipe":  # the kept recipe: its test accuracy, for the spread over seeds
            run["test_flip"] = accuracy_of(flip(model, namespace["normalise"](namespace["test_images"])), namespace["test_labels"])
        print(run, f"{time.perf_counter() - start:.0f} s", flush=True)
        runs.append(run)
    RESULTS.write_text(json.dumps({
        "recipe_cell": cell_key(recipe),
        "machine": machine(namespace["torch"]),
        "runs": runs,
    }, indent=1) + "\n")
    print("wrote", RESULTS.relative_to(ROOT))


if __name__ == "__main__":
    main()
