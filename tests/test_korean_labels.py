"""torchbook.korean: every label a chapter glues in English has its Korean twin, glued from the same value."""

from __future__ import annotations

import nbformat
import pytest

from torchbook.korean import KOREAN_LABELS, korean

from .conftest import HANGUL, chapter_sources


def glued_labels(notebook) -> dict[str, str]:
    """Each glued Markdown value of a stored notebook, by its glue name."""
    labels = {}
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            name = output.get("metadata", {}).get("scrapbook", {}).get("name")
            text = output.get("data", {}).get("application/papermill.record/text/markdown")
            if name and text is not None:
                labels[name] = text
    return labels


def unpaired(labels: dict[str, str]) -> list[str]:
    """Where a glued label and its `_ko` twin are not the English label and its Korean word."""
    problems = []
    for name, text in labels.items():
        if name.endswith("_ko"):
            continue
        twin = labels.get(f"{name}_ko")
        if twin is None:
            problems.append(f"{name} ({text!r}) has no {name}_ko glued beside it: the Korean page would quote English")
        elif text in KOREAN_LABELS and twin != korean(text):
            problems.append(f"{name}_ko is {twin!r}, but {name} is {text!r}, whose Korean word is {korean(text)!r}")
        elif text not in KOREAN_LABELS:
            problems.append(f"{name} is {text!r}, which torchbook.korean has no word for")
    return problems


@pytest.mark.parametrize("source", chapter_sources(), ids=lambda p: p.stem)
def test_every_glued_label_has_its_korean_twin_from_the_same_value(source):
    labels = glued_labels(nbformat.read(source.with_suffix(".ipynb"), as_version=4))
    assert unpaired(labels) == []


def test_a_twin_from_another_value_or_a_missing_twin_is_caught():
    assert unpaired({"worst_class": "cat", "worst_class_ko": "고양이"}) == []
    assert "whose Korean word is '고양이'" in unpaired({"worst_class": "cat", "worst_class_ko": "개"})[0]
    assert "has no worst_class_ko" in unpaired({"worst_class": "cat"})[0]


def test_every_korean_word_is_korean_and_an_unknown_label_is_named():
    assert all(HANGUL.search(word) for word in KOREAN_LABELS.values())
    with pytest.raises(KeyError, match="torchbook/korean.py"):
        korean("hovercraft")
