"""Maintaining the book's notebooks: execute a chapter, and check a pair's sync and hygiene.

Maintainer tooling, kept out of the reader's package `torchbook`: it needs jupytext, nbformat,
nbclient and IPython, which `requirements.txt` installs for building and testing the book.
Each chapter is a MyST-markdown notebook ``chapters/NN-name.md`` (the source people edit)
paired through jupytext with ``chapters/NN-name.ipynb`` (which stores the executed outputs).

    python -m tools.notebooks execute chapters/01-tensors.md   # what `make execute` runs
"""

from __future__ import annotations

import ast
import hashlib
import re
import sys
from pathlib import Path

import jupytext
import nbformat

EXECUTION_TIMEOUT_S = 600

# Output text that would differ from one machine or run to the next.
VOLATILE_PATTERNS = {
    "an absolute path": re.compile(r"(?<![\w.~-])/(?:home|root|work|tmp|Users|usr|opt|var|mnt|content)/|\b[A-Z]:\\\\"),
    "a memory address": re.compile(r"\b0x[0-9a-fA-F]{6,}\b"),
    "a timestamp": re.compile(r"\b\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}"),
}


def paired_notebook(source: Path) -> Path:
    return Path(source).with_suffix(".ipynb")


def execute(source: str | Path) -> Path:
    """Run a chapter's ``.md`` top to bottom in a fresh kernel and write the paired ``.ipynb``."""
    from nbclient import NotebookClient

    source = Path(source)
    notebook = jupytext.read(source)
    NotebookClient(
        notebook,
        timeout=EXECUTION_TIMEOUT_S,
        kernel_name=notebook.metadata.get("kernelspec", {}).get("name", "python3"),
        resources={"metadata": {"path": str(source.parent)}},  # run where the chapter lives
        record_timing=False,  # no timestamps in the stored notebook
    ).execute()
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            cell.outputs = _merge_streams(cell.outputs)
        # jupytext gives each cell a random id; derive one from the cell instead, so that
        # re-executing an unchanged chapter rewrites an identical file.
        cell.id = hashlib.sha1(f"{index}:{cell.source}".encode()).hexdigest()[:8]
    target = paired_notebook(source)
    jupytext.write(notebook, target, fmt="ipynb")
    return target


def execute_with_first_cell(notebook: nbformat.NotebookNode, folder: Path, first_cell: str, *,
                            timeout: int = EXECUTION_TIMEOUT_S, allow_errors: bool = False) -> nbformat.NotebookNode:
    """``notebook`` (the caller's own copy of a stored notebook) executed in ``folder`` after ``first_cell``
    (which changes how it runs), in place, and returned.

    What the tools that re-run a chapter under a change share: the first cell is dropped again,
    so the copy's cells line up with the stored ones, and its streams are merged as `make execute` stores them.
    """
    from nbclient import NotebookClient

    notebook.cells.insert(0, nbformat.v4.new_code_cell(first_cell))
    NotebookClient(notebook, timeout=timeout, kernel_name="python3", allow_errors=allow_errors,
                   resources={"metadata": {"path": str(folder)}}).execute()
    notebook.cells.pop(0)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = _merge_streams(cell.outputs)
    return notebook


def _merge_streams(outputs: list) -> list:
    """Join consecutive writes to the same stream: how a kernel happens to flush them is not content."""
    merged = []
    for output in outputs:
        previous = merged[-1] if merged else None
        if output.output_type == "stream" and previous is not None and previous.output_type == "stream" and previous.name == output.name:
            previous.text += output.text
        else:
            merged.append(output)
    return merged


def _comparable_cells(notebook) -> list[tuple[str, str, tuple]]:
    return [(cell.cell_type, cell.source.strip(), tuple(cell.metadata.get("tags", ()))) for cell in notebook.cells]


def sync_problems(source: str | Path, notebook_path: str | Path | None = None) -> list[str]:
    """Differences between a ``.md`` source and its paired ``.ipynb`` (cell types, sources, tags)."""
    source = Path(source)
    notebook_path = Path(notebook_path) if notebook_path else paired_notebook(source)
    if not notebook_path.exists():
        return [f"{notebook_path.name} is missing: run `make execute`"]
    from_md = _comparable_cells(jupytext.read(source))
    from_ipynb = _comparable_cells(jupytext.read(notebook_path))
    problems = []
    if len(from_md) != len(from_ipynb):
        problems.append(f"{source.name} has {len(from_md)} cells, {notebook_path.name} has {len(from_ipynb)}")
    for index, (md_cell, ipynb_cell) in enumerate(zip(from_md, from_ipynb)):
        if md_cell != ipynb_cell:
            problems.append(f"cell {index} differs:\n  .md:    {md_cell[1][:120]!r}\n  .ipynb: {ipynb_cell[1][:120]!r}")
            break  # everything after a first difference is usually shifted too
    return problems


def as_python(cell_source: str) -> str:
    """A code cell as plain Python, with IPython's magics (``%pip ...``) turned into calls."""
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell(cell_source)


def _ends_in_value(code: str) -> bool:
    """Whether the cell ends in an expression that IPython displays (calls may return None, so they don't count)."""
    if code.rstrip().endswith(";"):
        return False
    body = ast.parse(as_python(code)).body
    return bool(body) and isinstance(body[-1], ast.Expr) and not isinstance(body[-1].value, ast.Call)


def _output_texts(output) -> list[str]:
    if output.output_type == "stream":
        return [output.text]
    data = output.get("data", {})
    return [data[mime] for mime in ("text/plain", "text/html", "text/markdown") if mime in data]


def hygiene_problems(notebook_path: str | Path) -> list[str]:
    """What is wrong with a stored, executed notebook (empty list if nothing)."""
    notebook = nbformat.read(notebook_path, as_version=4)
    problems = []
    expected_count = 1
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code" or not cell.source.strip():
            continue
        where = f"code cell {index} ({cell.source.strip().splitlines()[0][:60]!r})"
        if cell.execution_count != expected_count:
            problems.append(f"{where}: execution count {cell.execution_count}, expected {expected_count}")
        expected_count += 1
        if _ends_in_value(cell.source) and not cell.outputs:
            problems.append(f"{where}: ends in an expression but has no stored output")
        for output in cell.outputs:
            if output.output_type == "error":
                problems.append(f"{where}: stored an error ({output.ename})")
            if output.output_type == "stream" and output.name == "stderr":
                problems.append(f"{where}: wrote to stderr: {output.text[:200]!r}")
            for text in _output_texts(output):
                for what, pattern in VOLATILE_PATTERNS.items():
                    match = pattern.search(text)
                    if match:
                        problems.append(f"{where}: output contains {what}: {match.group(0)!r}")
    return problems


def called_name(call: ast.Call) -> str | None:
    """The name a call calls: ``f`` for ``f(x)``, ``g`` for ``module.g(x)``."""
    return getattr(call.func, "id", getattr(call.func, "attr", None))


def device_cell_problems(notebook_path: str | Path) -> list[str]:
    """Code cells whose outputs nbval compares although they use the device that ``get_device()`` picks.

    Such a cell prints ``cpu`` on one machine and ``cuda`` on another, or digits that a GPU
    computes in a different order: it must be tagged ``nbval-ignore-output``, and the
    chapter should check what does not depend on the device in a cell of its own.
    """
    notebook = jupytext.read(notebook_path)
    device_names: set[str] = set()  # names bound to get_device()'s answer so far
    problems = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        uses_device = False
        for node in ast.walk(ast.parse(as_python(cell.source))):
            if isinstance(node, ast.Call) and called_name(node) == "get_device":
                uses_device = True
            elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and called_name(node.value) == "get_device":
                device_names.update(target.id for target in node.targets if isinstance(target, ast.Name))
            elif isinstance(node, ast.Name) and node.id in device_names:
                uses_device = True
        if uses_device and "nbval-ignore-output" not in cell.metadata.get("tags", ()):
            first_line = cell.source.strip().splitlines()[0][:60]
            problems.append(f"code cell {index} ({first_line!r}) uses the device but is not tagged nbval-ignore-output")
    return problems


DECIMAL = re.compile(r"(?<![\w.])[-−]?\d+\.\d+(?!\w|\.\d)")  # a full stop may end the sentence
# Numbers that prose may type although an output happens to show them: settings the text
# chooses (learning rates, momentum) and round values, not results read off an output.
TYPED_NUMBERS_ALLOWED = {"0.0", "0.1", "0.5", "0.9", "1.0", "0.01", "0.001", "0.0001", "2.0", "3.0", "4.0"}


def _prose(markdown: str) -> str:
    """Markdown without what may hold numbers legitimately: code, math, glue roles, link targets, exercise numbers."""
    markdown = re.sub(r"```.*?```", " ", markdown, flags=re.DOTALL)
    markdown = re.sub(r"\bexercise \d+\.\d+", " ", markdown, flags=re.IGNORECASE)  # a heading or a reference, not a result
    markdown = re.sub(r"연습 문제 \d+\.\d+", " ", markdown)  # the same in the Korean edition
    markdown = re.sub(r"\{glue(?::\w+)?\}`[^`]*`", " ", markdown)
    markdown = re.sub(r"`[^`]*`", " ", markdown)
    markdown = re.sub(r"\$\$.*?\$\$|\$[^$]*\$", " ", markdown, flags=re.DOTALL)
    return re.sub(r"\]\([^)]*\)", "]", markdown)


def typed_numbers_from_outputs(notebook_path: str | Path) -> list[str]:
    """Decimal numbers typed in a chapter's prose that match an output of the chapter, once rounded.

    Such a number was copied from an output and will drift when the output changes: it
    should be glued (MyST-NB's ``glue`` and ``{glue:text}``) instead. A heuristic: only
    decimals are checked, and `TYPED_NUMBERS_ALLOWED` lists round values prose may type.
    """
    notebook = nbformat.read(notebook_path, as_version=4)
    output_numbers = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            for text in _output_texts(output):
                output_numbers += DECIMAL.findall(text)
    problems = []
    for cell in notebook.cells:
        if cell.cell_type != "markdown":
            continue
        for typed in DECIMAL.findall(_prose(cell.source)):
            typed_plain = typed.replace("−", "-")
            if typed_plain.lstrip("-") in TYPED_NUMBERS_ALLOWED:
                continue
            places = len(typed_plain.split(".")[1])
            for shown in output_numbers:
                shown_places = len(shown.split(".")[1])
                if shown_places >= places and round(float(shown.replace("−", "-")), places) == float(typed_plain):
                    line = next(l for l in cell.source.splitlines() if typed in l)
                    problems.append(f"{typed} (output {shown}) typed in: {line.strip()[:100]!r}")
                    break
    return problems


# Exercises: the last section of every chapter, "## Exercises", after "## Summary". Each
# exercise is a "### Exercise C.K: title" heading (C the chapter's number, K counting from 1)
# with its statement, then its worked solution: code cells tagged hide-cell with the prompt
# "Show solution" (folded on the website, visible in the notebook), optionally followed by
# prose that explains it, inside a :::{dropdown} so that it is folded too.
EXERCISES_PER_CHAPTER = range(4, 7)
SOLUTION_PROMPT = "Show solution"
EXERCISE_HEADING = re.compile(r"^### Exercise (\d+)\.(\d+): \S")
DROPDOWN = re.compile(r"^:::\{dropdown\}[^\n]*\n.*?^:::[ \t]*$", flags=re.DOTALL | re.MULTILINE)


def _exercises_section(notebook) -> tuple[list, list[str]]:
    """The exercises of a notebook as [{"number", "heading", "statement", "cells", "after"}], and problems of layout."""
    problems, exercises = [], []
    sections: list[str] = []
    current = None
    for cell in notebook.cells:
        if cell.cell_type == "code":
            if sections[-1:] == ["Exercises"]:
                if current is None:
                    problems.append("a code cell in the exercises section before the first exercise")
                else:
                    current["cells"].append(cell)
            continue
        if cell.cell_type != "markdown":
            continue
        for line in cell.source.splitlines():
            if line.startswith("## "):
                sections.append(line[3:].strip())
                current = None
            elif sections[-1:] == ["Exercises"] and line.startswith("#"):
                match = EXERCISE_HEADING.match(line)
                if not match:
                    problems.append(f"a heading in the exercises section that is not an exercise: {line!r}")
                    current = None
                    continue
                current = {"number": (int(match[1]), int(match[2])), "heading": line, "statement": "", "cells": [], "after": ""}
                exercises.append(current)
            elif current is not None:
                current["after" if current["cells"] else "statement"] += line + "\n"
    if "Exercises" not in sections:
        return [], ["no '## Exercises' section"]
    if sections[-1] != "Exercises":
        problems.append(f"'## Exercises' should be the last section, but {sections[-1]!r} follows it")
    if "Summary" not in sections or sections.index("Summary") > sections.index("Exercises"):
        problems.append("'## Exercises' should come after '## Summary'")
    return exercises, problems


def exercise_problems(notebook_path: str | Path) -> list[str]:
    """What is wrong with a stored chapter's exercises and their solutions (empty list if nothing).

    The chapter's number is the file name's leading digits (``04-sgd-and-dataloaders.ipynb``).
    """
    notebook_path = Path(notebook_path)
    chapter = int(re.match(r"\d+", notebook_path.name).group(0))
    exercises, problems = _exercises_section(nbformat.read(notebook_path, as_version=4))
    if not problems and len(exercises) not in EXERCISES_PER_CHAPTER:
        problems.append(f"{len(exercises)} exercises, expected {EXERCISES_PER_CHAPTER.start} to {EXERCISES_PER_CHAPTER.stop - 1}")
    for expected, exercise in enumerate(exercises, start=1):
        where = exercise["heading"]
        if exercise["number"] != (chapter, expected):
            problems.append(f"{where}: expected number {chapter}.{expected}")
        if not exercise["statement"].strip():
            problems.append(f"{where}: no statement before the solution")
        if "{glue" in exercise["statement"]:
            problems.append(f"{where}: the statement quotes a result of the solution (a glue role)")
        if not exercise["cells"]:
            problems.append(f"{where}: no solution code cell")
        for cell in exercise["cells"]:
            first_line = (cell.source.strip().splitlines() or [""])[0][:60]
            if "hide-cell" not in cell.metadata.get("tags", []):
                problems.append(f"{where}: solution cell {first_line!r} is not tagged hide-cell")
            if cell.metadata.get("mystnb", {}).get("code_prompt_show") != SOLUTION_PROMPT:
                problems.append(f"{where}: solution cell {first_line!r} does not offer {SOLUTION_PROMPT!r}")
            if cell.get("execution_count") is None:
                problems.append(f"{where}: solution cell {first_line!r} was not executed")
            if any(output.output_type == "error" for output in cell.get("outputs", [])):
                problems.append(f"{where}: solution cell {first_line!r} stored an error")
        if DROPDOWN.sub("", exercise["after"]).strip():
            problems.append(f"{where}: prose after the solution code must be folded in a :::{{dropdown}}")
    return problems


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] != "execute":
        print(__doc__)
        return 2
    for source in argv[1:]:
        print(f"executed {source} -> {execute(source)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
