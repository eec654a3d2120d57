"""torchbook.images holds functions that Chapter 6 writes in its cells: each must stay the chapter's code.

Chapter 6 teaches them step by step; Chapter 7 imports them. A change to one copy and not the
other would make the two chapters teach different code under the same name.
"""

from __future__ import annotations

import ast
import inspect
import textwrap

import jupytext
import torch

from tools.notebooks import as_python
from torchbook import images

from .conftest import ROOT

CHAPTER_6 = ROOT / "chapters" / "06-cifar10-classifier.md"
SHARED = ("decode_all", "logits_of", "accuracy", "count_parameters", "multiply_adds", "random_flips", "random_crops")


def chapter_functions(source) -> dict[str, str]:
    """Every top-level function a chapter's code cells define, as normalized source (ast.unparse)."""
    functions = {}
    for cell in jupytext.read(source).cells:
        if cell.cell_type != "code":
            continue
        for node in ast.parse(as_python(cell.source)).body:
            if isinstance(node, ast.FunctionDef):
                functions[node.name] = ast.unparse(node)
    return functions


def differing(chapter: dict[str, str]) -> list[str]:
    return [name for name in SHARED
            if chapter.get(name) != ast.unparse(ast.parse(textwrap.dedent(inspect.getsource(getattr(images, name)))).body[0])]


def test_chapter_6_defines_the_shared_functions_as_torchbook_does():
    assert differing(chapter_functions(CHAPTER_6)) == []


def test_a_changed_copy_is_caught():
    chapter = chapter_functions(CHAPTER_6)
    chapter["accuracy"] = chapter["accuracy"].replace("mean()", "sum()")
    assert differing(chapter) == ["accuracy"]


def test_random_crops_without_padding_changes_nothing_and_flips_mirror():
    batch = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).view(2, 3, 4, 4)
    assert torch.equal(images.random_crops(batch, padding=0), batch)
    flipped = images.random_flips(batch)
    for image, result in zip(batch, flipped):
        assert torch.equal(result, image) or torch.equal(result, image.flip(-1))
