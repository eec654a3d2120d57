"""The Korean edition (ko/, tools/translation.py): same pages, same code, same outputs, translated prose.

The site itself (both editions, in a browser) is checked in tests/test_site.py.
"""

from __future__ import annotations

import collections
import csv
import re
import shutil

import jupytext
import nbformat
import pytest
import yaml

from tools import translation
from tools.notebooks import typed_numbers_from_outputs

from .conftest import ROOT, toc_files

PAGES = translation.pages()
NOTEBOOK_PAGES = [page for page in PAGES if translation.is_notebook(ROOT / f"{page}.md")]
CHAPTERS = [page for page in PAGES if page.startswith("chapters/")]
GLOSSARY = ROOT / "ko" / "glossary.csv"
HANGUL = re.compile(r"[\uac00-\ud7a3]")
# What a translation keeps as it is: glued values, cross-references, code, math.
KEPT_AS_IS = {
    "glued value": re.compile(r"\{glue(?::\w+)?\}`[^`]*`|```\{glue(?::\w+)?\} [^\n]*"),
    "cross-reference": re.compile(r"\{(?:doc|ref|numref)\}`[^`]*`"),
    "inline math": re.compile(r"(?<!\$)\$[^$]+\$(?!\$)"),
    "display math": re.compile(r"\$\$.+?\$\$", flags=re.DOTALL),
}


def without_code(markdown: str) -> str:
    """Markdown without code spans and code blocks (which may show a role as text), keeping roles and glue directives."""
    def keep(match):
        text = match.group(0)
        return text if match.group("role") or text.startswith("```{glue") else " "
    return re.sub(r"(?P<role>\{[\w:-]+\}`[^`]*`)|```.*?```|`[^`]*`", keep, markdown, flags=re.DOTALL)


def test_the_korean_toc_lists_the_same_pages():
    korean = yaml.safe_load((ROOT / "ko" / "_toc.yml").read_text())
    english = yaml.safe_load((ROOT / "_toc.yml").read_text())
    assert korean["root"] == english["root"]
    assert [[c["file"] for c in part["chapters"]] for part in korean["parts"]] == [
        [c["file"] for c in part["chapters"]] for part in english["parts"]
    ]
    assert PAGES == toc_files()


@pytest.mark.parametrize("page", PAGES)
def test_every_passage_is_translated_and_in_step(page):
    """100% coverage: no passage missing, none whose English text changed since it was translated."""
    status = translation.page_status(page)
    assert status.problems == []
    behind = [f"{p.state}: {p.where}: {p.english.strip()[:80]!r}" for p in status.passages if p.state != "translated"]
    assert behind == [], "run `make translation-status`; the passages below need translating:\n" + "\n".join(behind)


@pytest.mark.parametrize("page", NOTEBOOK_PAGES)
def test_korean_notebook_has_the_english_code_and_outputs(page):
    """Proves that nbval's verdict on the English notebook covers the Korean one, which is never executed."""
    english, korean = jupytext.read(ROOT / f"{page}.md"), jupytext.read(translation.korean_path(page))
    assert [c.cell_type for c in korean.cells] == [c.cell_type for c in english.cells]
    for index, (cell, twin) in enumerate(zip(english.cells, korean.cells)):
        if cell.cell_type == "code":
            assert twin.source == cell.source, f"cell {index}: code differs"
            assert translation.untranslated_metadata(twin.metadata) == translation.untranslated_metadata(cell.metadata)
    english_ipynb = (ROOT / f"{page}.ipynb")
    if not english_ipynb.exists():
        return  # data-sources is executed when the site is built
    stored = nbformat.read(english_ipynb, as_version=4)
    stored_korean = nbformat.read(translation.korean_path(page).with_suffix(".ipynb"), as_version=4)
    assert len(stored_korean.cells) == len(stored.cells)
    for index, (cell, twin) in enumerate(zip(stored.cells, stored_korean.cells)):
        if cell.cell_type == "code":
            assert (twin.source, twin.outputs, twin.execution_count) == (cell.source, cell.outputs, cell.execution_count), index
    for index, (twin, in_md) in enumerate(zip(stored_korean.cells, korean.cells)):
        assert twin.source == in_md.source, f"cell {index}: the Korean .ipynb is not its .md: run `make translations`"
    assert translation.out_of_sync() == []


def kept_differences(english: str, korean: str) -> list[str]:
    """What a translation changed of what it must keep as it is: glued values, cross-references, formulas."""
    problems = []
    for what, pattern in KEPT_AS_IS.items():
        in_english = collections.Counter(" ".join(f.split()) for f in pattern.findall(without_code(english)))
        in_korean = collections.Counter(" ".join(f.split()) for f in pattern.findall(without_code(korean)))
        if in_korean != in_english:
            problems.append(f"{what}: {sorted((in_english - in_korean).elements())} missing, "
                            f"{sorted((in_korean - in_english).elements())} added")
    return problems


@pytest.mark.parametrize("page", PAGES)
def test_translation_keeps_glue_references_and_math(page):
    """Each translated passage quotes the same glued values, links and formulas as its English text."""
    for passage in translation.page_status(page).passages:
        if passage.korean is not None:
            assert kept_differences(passage.english, passage.korean) == [], passage.where


def test_kept_differences_notices_a_dropped_glue_value_and_a_changed_formula():
    english = "The loss falls to {glue:text}`final_loss:.1f` at $t = 0$; see {doc}`02-learning-mechanics`."
    assert kept_differences(english, "손실은 {glue:text}`final_loss:.1f`로 떨어집니다($t = 0$). {doc}`02-learning-mechanics` 참고.") == []
    assert kept_differences(english, "손실은 약 2.9로 떨어집니다($t = 0$). {doc}`02-learning-mechanics` 참고.") == [
        "glued value: ['{glue:text}`final_loss:.1f`'] missing, [] added"
    ]
    assert len(kept_differences(english, "손실은 {glue:text}`final_loss:.1f`로 떨어집니다($t = 1$). {doc}`02-learning-mechanics` 참고.")) == 1
    # A role shown as code is text, not a glued value.
    assert kept_differences("the `{glue:text}` role", "`{glue:text}` 역할") == []


@pytest.mark.parametrize("page", PAGES)
def test_korean_passages_are_in_korean(page):
    """A passage marked translated holds Korean (not an English text with a hash copied onto it)."""
    for passage in translation.page_status(page).passages:
        if passage.state == "translated" and re.search(r"[A-Za-z]{3,}", passage.english):
            assert HANGUL.search(passage.korean), f"{passage.where}: no Korean in {passage.korean[:80]!r}"


@pytest.mark.parametrize("page", [p for p in CHAPTERS])
def test_korean_prose_glues_the_numbers_it_quotes(page):
    assert typed_numbers_from_outputs(translation.korean_path(page).with_suffix(".ipynb")) == []


def _copy_page(tmp_path, page):
    for path in (ROOT / f"{page}.md", translation.korean_path(page), ROOT / "_toc.yml"):
        target = tmp_path / path.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
    if (ROOT / f"{page}.ipynb").exists():
        shutil.copy(ROOT / f"{page}.ipynb", tmp_path / f"{page}.ipynb")
        shutil.copy(translation.korean_path(page).with_suffix(".ipynb"), translation.korean_path(page, tmp_path).with_suffix(".ipynb"))


@pytest.mark.parametrize("page", ["chapters/02-learning-mechanics", "running"])
def test_a_changed_english_passage_makes_its_translation_stale(tmp_path, page):
    _copy_page(tmp_path, page)
    before = translation.page_status(page, tmp_path)
    assert before.count("stale") == 0
    english = tmp_path / f"{page}.md"
    text = english.read_text(encoding="utf-8")
    changed = text.replace("the ", "the very ", 1) if "the " in text else None
    english.write_text(changed, encoding="utf-8")
    after = translation.page_status(page, tmp_path)
    stale = [p.where for p in after.passages if p.state == "stale"]
    assert len(stale) == 1, stale
    assert after.count("translated") == before.count("translated") - 1
    # Once the translation is brought up to date, `mark` records the new English text's hash.
    translation.mark_translated(page, [int(re.search(r"\d+", stale[0]).group())], tmp_path)
    assert translation.page_status(page, tmp_path).count("stale") == 0


def test_sync_carries_a_code_change_into_the_korean_notebook(tmp_path):
    page = "chapters/02-learning-mechanics"
    _copy_page(tmp_path, page)
    english = tmp_path / f"{page}.md"
    text = english.read_text(encoding="utf-8")
    english.write_text(text.replace("import math\n", "import math\nimport os\n", 1), encoding="utf-8")
    status = translation.page_status(page, tmp_path)
    assert any("cells differ" in problem for problem in status.problems)
    korean = translation._korean_notebook(english, translation.korean_path(page, tmp_path))
    code = [c.source for c in korean.cells if c.cell_type == "code"]
    assert any("import os" in source for source in code)
    markdown = [c.source for c in korean.cells if c.cell_type == "markdown"]
    assert all(HANGUL.search(source) for source in markdown[:3]), "translations kept"


# --- the glossary ------------------------------------------------------------------------


def glossary() -> list[dict]:
    with GLOSSARY.open(encoding="utf-8") as stream:
        return list(csv.DictReader(line for line in stream if not line.startswith("#")))


def korean_prose(page: str, headings: bool = True, metadata: bool = True) -> str:
    """The Korean page's text in reading order: Markdown passages, and the captions and alt text of figures."""
    passages = [p.korean or "" for p in translation.page_status(page).passages if metadata or "caption" not in p.where]
    text = "\n".join(passages)
    if not headings:
        text = re.sub(r"^#+ .*$", "", text, flags=re.MULTILINE)
    return re.sub(r"\s+", " ", text)  # a term broken across lines is still the term


def test_glossary_is_well_formed():
    terms = glossary()
    assert len(terms) >= 30
    assert [set(term) for term in terms] == [{"english", "korean", "avoid"}] * len(terms)
    for key in ("english", "korean"):
        values = [term[key] for term in terms]
        assert len(values) == len(set(values)), f"a {key} term listed twice"


@pytest.mark.parametrize("term", glossary(), ids=lambda term: term["english"])
def test_glossary_terms_are_used_consistently(term):
    """Every term is used, never in one of the forms the glossary rejects, and introduced with its English name."""
    used_on = []
    for page in PAGES:
        text = korean_prose(page)
        for avoided in filter(None, term["avoid"].split(";")):
            assert avoided.strip() not in text, f"{page}: '{avoided.strip()}' instead of '{term['korean']}'"
        if term["korean"] in text:
            used_on.append(page)
        prose = korean_prose(page, headings=False, metadata=False)  # where a term is introduced
        for longer in glossary():  # "가중치" inside "가중치 공유" is the longer term, introduced on its own
            if term["korean"] in longer["korean"] and longer["korean"] != term["korean"]:
                prose = prose.replace(longer["korean"], "□" * len(longer["korean"]))
        first = prose.find(term["korean"])
        if first >= 0 and page.startswith("chapters/"):
            after = prose[first + len(term["korean"]): first + len(term["korean"]) + 60]
            assert re.match(rf"\*?\s?\(\*?{re.escape(term['english'])}", after, flags=re.IGNORECASE), (  # *뷰*(view)
                f"{page}: the first '{term['korean']}' should give the English term: "
                f"'{term['korean']}({term['english']})', not {prose[first:first + 60]!r}"
            )
    assert used_on, f"'{term['korean']}' is used on no page"
