"""The Korean edition (ko/, tools/translation.py): same pages, same code (comments aside), same outputs, translated prose.

The site itself (both editions, in a browser) is checked in tests/test_site.py.
"""

from __future__ import annotations

import collections
import functools
import io
import re
import shutil
import tokenize

import jupytext
import nbformat
import pytest
import yaml

from tools import translation
from tools.notebooks import typed_numbers_from_outputs

from .conftest import HANGUL, ROOT

PAGES = translation.pages()
NOTEBOOK_PAGES = [page for page in PAGES if translation.is_notebook(ROOT / f"{page}.md")]
CHAPTERS = [page for page in PAGES if page.startswith("chapters/")]
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


def test_the_korean_toc_lists_the_same_pages_and_the_glossary():
    korean = yaml.safe_load((ROOT / "ko" / "_toc.yml").read_text())
    english = yaml.safe_load((ROOT / "_toc.yml").read_text())
    assert korean["root"] == english["root"]
    english_parts = [[c["file"] for c in part["chapters"]] for part in english["parts"]]
    english_parts[-1].append(translation.GLOSSARY_PAGE)  # the one page of the Korean edition only, under 참고 자료
    assert [[c["file"] for c in part["chapters"]] for part in korean["parts"]] == english_parts
    assert korean["parts"][-1]["caption"] == "참고 자료"
    # Its language switch is left out, for want of an English page to go to (_ext/language_switch.py).
    assert translation.edition_config()["sphinx"]["config"]["other_edition"]["only_here"] == [translation.GLOSSARY_PAGE]


@pytest.mark.parametrize("page", PAGES)
def test_every_passage_is_translated_and_in_step(page):
    """100% coverage: no passage missing, none whose English text changed since it was translated."""
    status = translation.page_status(page)
    assert status.problems == []
    behind = [f"{p.state}: {p.where}: {p.english.strip()[:80]!r}" for p in status.passages if p.state != "translated"]
    assert behind == [], "run `make translation-status`; the passages below need translating:\n" + "\n".join(behind)


def code_differences(english_cells: list, korean_cells: list) -> list[str]:
    """The Korean code cells that are not their English cell modulo comments (the cells in the same order)."""
    return [
        f"cell {index}: {twin.source.strip()[:80]!r}"
        for index, (cell, twin) in enumerate(zip(english_cells, korean_cells))
        if cell.cell_type == "code" and translation.code_tokens(twin.source) != translation.code_tokens(cell.source)
    ]


@pytest.mark.parametrize("page", NOTEBOOK_PAGES)
def test_korean_notebook_has_the_english_code_and_outputs(page):
    """Proves that nbval's verdict on the English notebook covers the Korean one, which is never executed:
    every Korean code cell is its English cell modulo comments, with the English cell's outputs."""
    english, korean = jupytext.read(ROOT / f"{page}.md"), jupytext.read(translation.korean_path(page))
    assert [c.cell_type for c in korean.cells] == [c.cell_type for c in english.cells]
    assert code_differences(english.cells, korean.cells) == []
    for index, (cell, twin) in enumerate(zip(english.cells, korean.cells)):
        if cell.cell_type == "code":
            assert translation.untranslated_metadata(twin.metadata) == translation.untranslated_metadata(cell.metadata)
    english_ipynb = (ROOT / f"{page}.ipynb")
    if not english_ipynb.exists():
        return  # data-sources is executed when the site is built
    stored = nbformat.read(english_ipynb, as_version=4)
    stored_korean = nbformat.read(translation.korean_path(page).with_suffix(".ipynb"), as_version=4)
    assert len(stored_korean.cells) == len(stored.cells)
    assert code_differences(stored.cells, stored_korean.cells) == []
    for index, (cell, twin) in enumerate(zip(stored.cells, stored_korean.cells)):
        if cell.cell_type == "code":
            assert (twin.outputs, twin.execution_count) == (cell.outputs, cell.execution_count), index
    for index, (twin, in_md) in enumerate(zip(stored_korean.cells, korean.cells)):
        assert twin.source == in_md.source, f"cell {index}: the Korean .ipynb is not its .md: run `make translations`"
    assert translation.out_of_sync() == []


# What a translation may change in a kept element: the text of a link (its target stays), and a
# glued label's name, which takes the `_ko` twin glued beside it (torchbook.korean).
LINK_TEXT = re.compile(r"(\{(?:doc|ref|numref)\}`)[^`<]*<([^`>]+)>`")
KOREAN_LABEL = re.compile(r"(\{glue(?::\w+)?\}`\w+?)_ko([`:])")


def kept_form(element: str) -> str:
    """A kept element as it must match: whitespace collapsed, a link by its target, a Korean label by its English one."""
    element = LINK_TEXT.sub(r"\1\2`", " ".join(element.split()))
    return KOREAN_LABEL.sub(r"\1\2", element)


def kept_differences(english: str, korean: str) -> list[str]:
    """What a translation changed of what it must keep as it is: glued values, cross-references, formulas."""
    problems = []
    for what, pattern in KEPT_AS_IS.items():
        in_english = collections.Counter(kept_form(f) for f in pattern.findall(without_code(english)))
        in_korean = collections.Counter(kept_form(f) for f in pattern.findall(without_code(korean)))
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
    # A link may say "2장"; it must still point where the English one does. A label may be its Korean twin.
    assert kept_differences(english, "손실은 {glue:text}`final_loss:.1f`로 떨어집니다($t = 0$). {doc}`2장 <02-learning-mechanics>` 참고.") == []
    assert len(kept_differences(english, "손실은 {glue:text}`final_loss:.1f`로 떨어집니다($t = 0$). {doc}`3장 <03-autograd-and-optimizers>` 참고.")) == 1
    assert kept_differences("with {glue:md}`best_recipe`", "{glue:md}`best_recipe_ko`로") == []
    assert len(kept_differences("with {glue:md}`best_recipe`", "{glue:md}`worst_class_ko`로")) == 1
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


PAGE = "chapters/02-learning-mechanics"  # the chapter whose copy the tests below change


def _copy_page(tmp_path, page):
    """A book of this one page (and the glossary) in tmp_path, as the repository has it."""
    for path in (ROOT / f"{page}.md", translation.korean_path(page), ROOT / translation.GLOSSARY):
        target = tmp_path / path.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
    (tmp_path / "_toc.yml").write_text(yaml.safe_dump({"format": "jb-book", "root": page}), encoding="utf-8")
    if (ROOT / f"{page}.ipynb").exists():
        shutil.copy(ROOT / f"{page}.ipynb", tmp_path / f"{page}.ipynb")
        shutil.copy(translation.korean_path(page).with_suffix(".ipynb"), translation.korean_path(page, tmp_path).with_suffix(".ipynb"))


def _stale(status) -> list[str]:
    return [passage.where for passage in status.passages if passage.state == "stale"]


@pytest.mark.parametrize("page", [PAGE, "running"])
def test_a_changed_english_passage_makes_its_translation_stale(tmp_path, page):
    _copy_page(tmp_path, page)
    before = translation.page_status(page, tmp_path)
    english = tmp_path / f"{page}.md"
    text = english.read_text(encoding="utf-8")
    changed = text.replace("the ", "the very ", 1) if "the " in text else None
    english.write_text(changed, encoding="utf-8")
    after = translation.page_status(page, tmp_path)
    stale = [where for where in _stale(after) if where not in _stale(before)]  # the real page's may be stale too
    assert len(stale) == 1, stale
    assert after.count("translated") == before.count("translated") - 1
    # Once the translation is brought up to date, `mark` records the new English text's hash.
    translation.mark_translated(page, [int(re.search(r"\d+", stale[0]).group())], tmp_path)
    assert translation.page_status(page, tmp_path).count("stale") == before.count("stale")


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


# --- code comments, the one part of a code cell that is translated -------------------------


def test_code_tokens_are_the_code_without_its_comments():
    code = 'for x in xs:\n    total += x  # add\nprint("sum # of xs", total)\n'
    assert translation.code_comments(code) == ["# add"]
    translated = '# 합계\nfor x in xs:\n    # 하나씩\n    total += x  # 더한다\nprint("sum # of xs", total)\n'
    assert translation.code_tokens(translated) == translation.code_tokens(code)
    for changed in (
        'for x in xs:\n    total += x\n    print("sum # of xs", total)\n',  # moved into the loop
        'for x in xs:\n    total += x  # add\nprint("합계", total)\n',  # a printed string is output, not a comment
        'for x in xs:\n    total -= x  # add\nprint("sum # of xs", total)\n',
    ):
        assert translation.code_tokens(changed) != translation.code_tokens(code), changed
    # A magic or shell line is the shell's, "#" included; code Python cannot read is compared line by line.
    magic = "try:\n    import torchbook  # the book's helpers\nexcept ImportError:\n    %pip install 'x @ git+https://h/x#egg=x'\n!ls  # list\n"
    assert translation.code_comments(magic) == ["# the book's helpers"]
    assert translation.code_tokens(magic.replace("# the book's", "# 이 책의")) == translation.code_tokens(magic)
    assert translation.code_tokens(magic.replace("#egg", "#EGG")) != translation.code_tokens(magic)
    assert translation.code_tokens(magic.replace("# list", "# 목록")) != translation.code_tokens(magic)
    unreadable = "def f(:\n    # a comment\n    return 1\n"
    assert translation.code_tokens(unreadable.replace("# a comment", "# 주석")) == translation.code_tokens(unreadable)
    assert translation.code_tokens(unreadable.replace("1", "2")) != translation.code_tokens(unreadable)


KOREAN_COMMENT = "# 시험 삼아 옮긴 주석"


def _translate_comments(source: str) -> str:
    """The source with each comment replaced by a Korean one, as a translator would."""
    lines = source.splitlines(keepends=True)
    comments = [t for t in tokenize.generate_tokens(io.StringIO(source).readline) if t.type == tokenize.COMMENT]
    for token in reversed(comments):
        (row, start), (_, end) = token.start, token.end
        lines[row - 1] = lines[row - 1][:start] + KOREAN_COMMENT + lines[row - 1][end:]
    return "".join(lines)


def _edit_cell(path, index, edit):
    notebook = jupytext.read(path)
    notebook.cells[index].source = edit(notebook.cells[index].source)
    path.write_text(jupytext.writes(notebook, fmt="md:myst"), encoding="utf-8")


def _commented_cell(root) -> int:
    """The index of PAGE's first code cell that has comments, after syncing its copy in root."""
    translation.sync(root)
    cells = jupytext.read(root / f"{PAGE}.md").cells
    return next(i for i, c in enumerate(cells) if c.cell_type == "code" and translation.code_comments(c.source))


def _state(root, index) -> str:
    return next(p.state for p in translation.page_status(PAGE, root).passages if p.where.startswith(f"cell {index} "))


def test_translated_comments_are_in_step_and_sync_keeps_them(tmp_path):
    _copy_page(tmp_path, PAGE)
    index = _commented_cell(tmp_path)
    korean = translation.korean_path(PAGE, tmp_path)
    _edit_cell(korean, index, _translate_comments)
    assert translation.page_status(PAGE, tmp_path).problems == []
    assert translation.sync(tmp_path) == [korean.with_suffix(".ipynb")], "the .md is kept as it is, comments and all"
    assert translation.out_of_sync(tmp_path) == []
    stored, stored_korean = nbformat.read(tmp_path / f"{PAGE}.ipynb", 4), nbformat.read(korean.with_suffix(".ipynb"), 4)
    assert KOREAN_COMMENT in stored_korean.cells[index].source
    assert stored_korean.cells[index].outputs == stored.cells[index].outputs
    translation.mark_translated(PAGE, [index], tmp_path)
    assert _state(tmp_path, index) == "translated"


@pytest.mark.parametrize("old, new", [("learning_rate=1e-2", "learning_rate=2e-2"), ('print(f"epoch ', 'print(f"에포크 ')])
def test_a_code_change_in_a_korean_cell_is_caught_and_undone(tmp_path, old, new):
    """Only comments are translated: a changed value or printed string is not the English code."""
    _copy_page(tmp_path, PAGE)
    translation.sync(tmp_path)
    korean = translation.korean_path(PAGE, tmp_path)
    index = next(i for i, c in enumerate(jupytext.read(korean).cells) if c.cell_type == "code" and old in c.source)
    _edit_cell(korean, index, lambda source: source.replace(old, new))
    english_cells, korean_cells = jupytext.read(tmp_path / f"{PAGE}.md").cells, jupytext.read(korean).cells
    assert [difference.split(":")[0] for difference in code_differences(english_cells, korean_cells)] == [f"cell {index}"]
    assert any("cells differ" in problem for problem in translation.page_status(PAGE, tmp_path).problems)
    assert any(problem.startswith(f"ko/{PAGE}.md:") for problem in translation.out_of_sync(tmp_path))
    translation.sync(tmp_path)
    assert old in jupytext.read(korean).cells[index].source, "sync puts the English code back"
    assert translation.out_of_sync(tmp_path) == []


def test_a_changed_english_comment_makes_its_cell_stale(tmp_path):
    _copy_page(tmp_path, PAGE)
    index = _commented_cell(tmp_path)
    _edit_cell(translation.korean_path(PAGE, tmp_path), index, _translate_comments)
    translation.mark_translated(PAGE, [index], tmp_path)
    english = tmp_path / f"{PAGE}.md"
    comment = translation.code_comments(jupytext.read(english).cells[index].source)[0]
    _edit_cell(english, index, lambda source: source.replace(comment, f"{comment}, and more", 1))
    assert _state(tmp_path, index) == "stale"
    translation.sync(tmp_path)  # the code is the same: the Korean comments stay until they are translated again
    assert KOREAN_COMMENT in jupytext.read(translation.korean_path(PAGE, tmp_path)).cells[index].source
    translation.mark_translated(PAGE, [index], tmp_path)
    assert _state(tmp_path, index) == "translated"


# --- the glossary ------------------------------------------------------------------------

GLOSSARY = translation.glossary()


@functools.cache
def passages(page: str) -> list[translation.Passage]:
    return translation.page_status(page).passages  # each page parsed once, not once per glossary term


@functools.cache
def korean_prose(page: str, headings: bool = True, code: bool = True) -> str:
    """The Korean page's text in reading order: Markdown passages and, with code, the translated comments,
    captions and alt text of its code cells."""
    texts = [p.korean or "" for p in passages(page) if code or not p.code]
    text = "\n".join(texts)
    if not headings:
        text = re.sub(r"^#+ .*$", "", text, flags=re.MULTILINE)
    return re.sub(r"\s+", " ", text)  # a term broken across lines is still the term


def without_longer_terms(term: dict, text: str) -> str:
    """The text with the longer terms that contain this one masked: "가중치" in "가중치 공유" is the longer term."""
    for longer in GLOSSARY:
        if term["korean"] in longer["korean"] and longer["korean"] != term["korean"]:
            text = text.replace(longer["korean"], "□" * len(longer["korean"]))
    return text


def test_glossary_is_well_formed():
    assert len(GLOSSARY) >= 30
    assert [set(term) for term in GLOSSARY] == [{"english", "korean", "avoid", "elsewhere"}] * len(GLOSSARY)
    for key in ("english", "korean"):
        values = [term[key] for term in GLOSSARY]
        assert len(values) == len(set(values)), f"a {key} term listed twice"


@pytest.mark.parametrize("term", GLOSSARY, ids=lambda term: term["english"])
def test_glossary_terms_are_used_consistently(term):
    """Every term is used, never in a form the glossary rejects. Its first use in the book (pages in toc
    order) gives the English term in parentheses, and the book gives it at most once more, for a reader
    who meets the term again chapters later."""
    korean, english = term["korean"], term["english"]
    for page in PAGES:
        for avoided in filter(None, (variant.strip() for variant in term["avoid"].split(";"))):
            assert avoided not in korean_prose(page), f"{page}: '{avoided}' instead of '{korean}'"
    assert any(korean in korean_prose(page) for page in PAGES), f"'{korean}' is used on no page"
    gloss = re.compile(rf"{re.escape(korean)}\*?\s?\(\*?{re.escape(english)}", flags=re.IGNORECASE)  # *뷰*(view)
    introduced = {page: without_longer_terms(term, korean_prose(page, headings=False, code=False)) for page in PAGES}
    first = next((page for page in PAGES if korean in introduced[page]), None)
    if first is not None:  # used in prose, not only in headings or captions
        at = introduced[first].find(korean)
        assert gloss.match(introduced[first], at), (
            f"{first}: the book's first '{korean}' should give the English term: "
            f"'{korean}({english})', not {introduced[first][at:at + 60]!r}"
        )
    glosses = {page: len(gloss.findall(without_longer_terms(term, korean_prose(page)))) for page in PAGES}
    assert sum(glosses.values()) <= 2, f"'{korean}({english})' given more than twice: {glosses}"


def test_the_glossary_page_is_written_from_the_glossary():
    text = translation.korean_path(translation.GLOSSARY_PAGE).read_text(encoding="utf-8")
    assert text == translation.glossary_page(), "run `make translations` after editing ko/glossary.csv"
    for term in GLOSSARY:
        assert f"| {term['korean']} | {term['english']} |" in text
