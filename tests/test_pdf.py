"""The PDFs of both editions (`make pdf`), read as a reader of the printed book reads them.

`make test` builds the site and then the PDFs, and each check here compares a PDF with the
built site of its edition. The text (pdftotext, Debian's poppler-utils; running heads and
feet cropped off) holds every page's title and section titles in order with the site's
numbers, every glued value of each chapter in its sentence, every figure caption with its
number, a solution under its label for every folded solution of the site, and, in the
Korean PDF, no English prose and no English label of LaTeX's own (Contents, Chapter,
continued...). The PDF has as many images as the site's pages (pdfimages), every font
embedded and a Hangul font in the Korean one (pdffonts), no character missing from its font
and no line of code or output wider than the text (LaTeX's log), and two rendered pages are
not blank (pdftoppm). Faults planted in copies are caught.

Text is compared by its letters and digits alone: LaTeX hyphenates, wraps code lines with
a mark, sets quotes and dashes of its own, and pdftotext spaces words as it sees fit, but
none of that changes the letters and digits, nor their order.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tools import translation

from .conftest import HANGUL, ROOT
from .test_site import KOREAN, SCREENSHOTS, SITE, english_paragraphs, glued_values

PDF_FOLDER = ROOT / "_build" / "pdf"  # make pdf copies each PDF there, with its .tex and LaTeX's .log
# The text block of a page, in points from the top (US letter, 792 pt): below the running head
# (about 35-46) and above the running foot (about 742-752).
BODY_TOP, BODY_BOTTOM = 55, 735
# A framed code block at the foot of a page can come out a little taller than the space left
# (framed's split); more than this, a third of a line, would show as a block in the footer.
LARGEST_PAGE_OVERSHOOT_PT = 4.0
# What a heading puts between a chapter's number and its title, where the site puts nothing: 제 1 장.
AFTER_CHAPTER_NUMBER = {"en": "", "ko": "장"}
# LaTeX's own English labels, which the Korean PDF must give in Korean (a line that starts so).
ENGLISH_APPARATUS = re.compile(
    r"^(Contents|Chapter \d|Appendix [A-Z]|Part [IVX\d]|Solution$|Fig\. \d|Table \d|Index$"
    r"|\(continued from previous page\)|\(continues on next page\))")


@dataclass(frozen=True)
class Edition:
    name: str  # "en", "ko"
    site: Path  # its built site
    toc: Path  # its _toc.yml
    config: dict  # its Jupyter Book configuration

    @property
    def stem(self) -> str:
        """The file name of its PDF, .tex and .log, without suffix: latex_documents' targetname."""
        return Path(self.config["latex"]["latex_documents"]["targetname"]).stem

    @property
    def pdf(self) -> Path:
        return PDF_FOLDER / f"{self.stem}.pdf"

    @property
    def solution_label(self) -> str:
        return self.config["sphinx"]["config"]["print_solution_label"]

    def pages(self) -> list[str]:
        return translation.pages(self.toc)


EDITIONS = {
    "en": Edition("en", SITE, ROOT / "_toc.yml", yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))),
    "ko": Edition("ko", SITE / KOREAN, ROOT / translation.EDITION / "_toc.yml", translation.edition_config()),
}


@pytest.fixture(scope="module", params=list(EDITIONS))
def edition(request) -> Edition:
    return built(EDITIONS[request.param])


@pytest.fixture(scope="module")
def korean() -> Edition:
    return built(EDITIONS["ko"])


def built(edition: Edition) -> Edition:
    for tool in ("pdftotext", "pdfimages", "pdffonts", "pdftoppm", "pdfseparate", "pdfunite"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: install Debian's poppler-utils (see README, 'The PDFs')")
    if not edition.pdf.exists():
        pytest.fail(f"{edition.pdf.relative_to(ROOT)} is missing: run `make pdf` (or `make test`, which builds it) first")
    if not (edition.site / "index.html").exists():
        pytest.fail("_build/html is missing: the PDF is compared with the site, which `make test` builds first")
    return edition


# --- the PDF's text -----------------------------------------------------------------------------


def pdf_pages(pdf: Path, whole_page: bool = False) -> list[str]:
    """The text of each page: its text block, or with whole_page its running head and foot too."""
    crop = [] if whole_page else ["-x", "0", "-y", str(BODY_TOP), "-W", "612", "-H", str(BODY_BOTTOM - BODY_TOP)]
    text = subprocess.run(["pdftotext", "-enc", "UTF-8", *crop, str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    return text.split("\f")[:-1]  # pdftotext ends every page with a form feed


def is_contents_page(page: str) -> bool:
    """A page of the table of contents, by its dot leaders."""
    return ". . . . . ." in page


def letters_and_digits(text: str) -> str:
    """What typesetting leaves alone: letters and digits, in order (no spaces, punctuation, wrap marks, TeX commands)."""
    text = unicodedata.normalize("NFKC", re.sub(r"\\[A-Za-z]+", "", text))
    return "".join(character for character in text if character.isalnum())


def body(pages: list[str]) -> str:
    """The book's text outside its table of contents, as letters and digits."""
    return letters_and_digits("\n".join(page for page in pages if not is_contents_page(page)))


def page_of(pages: list[str], pattern: str) -> int:
    """The number of the first page outside the contents whose letters and digits match the pattern."""
    return next(index for index, text in enumerate(pages, start=1)
                if re.search(pattern, letters_and_digits(text)) and not is_contents_page(text))


def pdf_image_count(pdf: Path, first: int = 1, last: int | None = None) -> int:
    pages = ["-f", str(first)] + (["-l", str(last)] if last else [])
    listing = subprocess.run(["pdfimages", "-list", *pages, str(pdf)], capture_output=True, text=True, check=True).stdout
    return sum(1 for line in listing.splitlines()[2:] if line.split()[2] == "image")  # not the soft masks


# --- what the site shows ------------------------------------------------------------------------


def _article(html_path: Path):
    from bs4 import BeautifulSoup

    article = BeautifulSoup(html_path.read_text(encoding="utf-8"), "html.parser").select_one("article.bd-article")
    assert article is not None, f"{html_path}: no <article class='bd-article'>"
    for element in article.select("a.headerlink"):
        element.decompose()
    return article


def site_titles(edition: Edition) -> list[tuple[str, str, str]]:
    """(page, number, title) of every h1 and h2 of the edition's pages, in the book's order; number '' where the site has none."""
    titles = []
    for page in edition.pages():
        for heading in _article(edition.site / f"{page}.html").select("h1, h2"):
            number = heading.select_one("span.section-number")
            number_text = number.get_text().strip().rstrip(".") if number else ""
            if number:
                number.decompose()
            titles.append((page, number_text, heading.get_text(" ", strip=True)))
    return titles


def site_captions(edition: Edition) -> list[tuple[str, str, str]]:
    """(page, number, caption) of every figure of the edition's pages."""
    captions = []
    for page in edition.pages():
        for caption in _article(edition.site / f"{page}.html").select("figcaption"):
            number = caption.select_one("span.caption-number")
            text = caption.select_one("span.caption-text")
            captions.append((page, number.get_text().strip() if number else "", text.get_text(" ", strip=True)))
    return captions


def site_image_count(edition: Edition) -> int:
    return sum(len(_article(edition.site / f"{page}.html").select("img")) for page in edition.pages())


# Where the words around a glued value stop being the same on paper: a formula (TeX source on
# the site, typeset in the PDF) or a cross-reference (which the PDF follows with its page).
_CONTEXT_BREAKS = ".math, mjx-container, a.reference.internal"
_CONTEXT = 16  # letters and digits of the sentence kept on one side of a glued value


def glued_in_context(html_path: Path) -> list[tuple[str, str]]:
    """(value, what to look for) for each glued value of a page: the value with the words just before it
    in its sentence, or just after it where it starts one (as letters and digits)."""
    from bs4 import NavigableString

    found = []
    for span in _article(html_path).select("span.pasted-text"):
        block = span.find_parent(["p", "li", "td", "th", "figcaption", "dd", "dt"])
        breaks = {id(element) for element in block.select(_CONTEXT_BREAKS)}
        before, after, seen = [], [], False
        for node in block.descendants:
            if node is span:
                seen = True
            elif isinstance(node, NavigableString) and not any(parent is span for parent in node.parents):
                if any(id(parent) in breaks for parent in node.parents):
                    if seen:
                        break
                    before = []
                else:
                    (after if seen else before).append(str(node))
        value = letters_and_digits(span.get_text())
        before, after = letters_and_digits("".join(before))[-_CONTEXT:], letters_and_digits("".join(after))[:_CONTEXT]
        found.append((span.get_text(), before + value if len(before) >= 4 else value + after))
    return found


# --- the checks, as functions that a planted fault can be run through ---------------------------


def title_problems(text: str, titles: list[tuple[str, str, str]], edition: str) -> tuple[list[str], dict[str, int]]:
    """Titles missing from the text, or out of order; and where each page's first title begins."""
    problems, page_starts, position = [], {}, 0
    for page, number, title in titles:
        after_number = f"(?:{AFTER_CHAPTER_NUMBER[edition]})?" if number.isdigit() else ""
        found = re.compile(re.escape(letters_and_digits(number)) + after_number + re.escape(letters_and_digits(title))).search(text, position)
        if found is None:
            problems.append(f"{page}: {number + ' ' if number else ''}{title!r} is not in the PDF after the title before it")
            continue
        page_starts.setdefault(page, found.start())
        position = found.end()
    return problems, page_starts


def glue_problems(text: str, page: str, glued: list[tuple[str, str]], start: int, end: int | None) -> list[str]:
    """Glued values of one page not found in their sentence, in its part of the text (from its first title to the next page's)."""
    part = text[start:end]
    return [f"{page}: glued value {value!r} is not in its sentence ({context!r}) in its chapter of the PDF"
            for value, context in glued if context not in part]


def caption_problems(text: str, captions: list[tuple[str, str, str]]) -> list[str]:
    return [f"{page}: figure {number!r} ({caption[:50]!r}...) is not in the PDF"
            for page, number, caption in captions if letters_and_digits(number) + letters_and_digits(caption) not in text]


def chapter_parts(edition: Edition, text: str) -> dict[str, tuple[int, int | None]]:
    """Where each chapter's text begins and ends in the PDF's text."""
    _, starts = title_problems(text, site_titles(edition), edition.name)
    pages = [page for page in edition.pages() if page in starts]
    return {page: (starts[page], starts[pages[i + 1]] if i + 1 < len(pages) else None)
            for i, page in enumerate(pages) if page.startswith("chapters/")}


def overfull_boxes(tex: str, log: str) -> tuple[list[str], list[float]]:
    """Lines of code or output wider than the text, from LaTeX's log; and how far pages overshot, in pt."""
    in_verbatim, inside = set(), False
    for number, line in enumerate(tex.splitlines(), start=1):
        if line.startswith("\\begin{sphinxVerbatim}"):
            inside = True
        if inside:
            in_verbatim.add(number)
        if line.startswith("\\end{sphinxVerbatim}"):
            inside = False
    wide = [match.group(0) for match in re.finditer(r"Overfull \\hbox \(([\d.]+)pt too wide\) in (?:paragraph|alignment) at lines (\d+)--(\d+)", log)
            if in_verbatim & set(range(int(match.group(2)), int(match.group(3)) + 1))]
    tall = [float(size) for size in re.findall(r"Overfull \\vbox \(([\d.]+)pt too high\)", log)]
    return wide, tall


def latex_output(edition: Edition) -> tuple[str, str]:
    """The .tex LaTeX typeset and the .log it wrote, as make pdf keeps them beside the PDF."""
    return tuple((PDF_FOLDER / f"{edition.stem}{suffix}").read_text(encoding="utf-8", errors="replace") for suffix in (".tex", ".log"))


# --- tests --------------------------------------------------------------------------------------


def test_titles_are_in_order_with_the_sites_numbers(edition):
    titles = site_titles(edition)
    problems, _ = title_problems(body(pdf_pages(edition.pdf)), titles, edition.name)
    assert problems == []
    assert len(titles) > 3 * len(edition.pages())  # pages and their sections were read


def test_every_glued_value_is_in_its_sentence_in_its_chapter(edition):
    text = body(pdf_pages(edition.pdf))
    parts = chapter_parts(edition, text)
    problems, compared = [], 0
    for page, (start, end) in parts.items():
        glued = glued_in_context(edition.site / f"{page}.html")
        assert len(glued) == sum(glued_values(edition.site / f"{page}.html").values())
        compared += len(glued)
        problems += glue_problems(text, page, glued, start, end)
    assert problems == []
    assert len(parts) == len([page for page in edition.pages() if page.startswith("chapters/")]) and compared > 150


def test_every_figure_is_there_with_its_number_and_caption(edition):
    captions = site_captions(edition)
    assert caption_problems(body(pdf_pages(edition.pdf)), captions) == []
    assert pdf_image_count(edition.pdf) == site_image_count(edition) >= len(captions) > 20


def test_every_solution_is_printed_under_its_label(edition):
    """The site folds each solution (a hide-cell cell); the PDF prints it after a label of its own."""
    folded = sum(len(_article(edition.site / f"{page}.html").select(".cell.tag_hide-cell")) for page in edition.pages())
    labels = sum(line.strip() == edition.solution_label for page in pdf_pages(edition.pdf) for line in page.splitlines())
    assert labels == folded > 20


def test_front_page_links_its_pdf(edition):
    front_page = edition.site / f"{edition.pages()[0]}.html"  # the toc's root
    assert f'href="{edition.pdf.name}"' in front_page.read_text(encoding="utf-8")
    assert (edition.site / edition.pdf.name).read_bytes() == edition.pdf.read_bytes()


def test_fonts_are_embedded_and_no_character_is_missing(edition):
    listing = subprocess.run(["pdffonts", str(edition.pdf)], capture_output=True, text=True, check=True).stdout
    fonts = [line for line in listing.splitlines()[2:] if line.strip()]
    # Columns: name, type (one or two words), encoding, emb, sub, uni, object ID; "emb" is the fifth from the end.
    assert [font for font in fonts if font.split()[-5] != "yes"] == []
    assert any("Nanum" in font.split()[0] for font in fonts), "no Nanum font: Hangul is not set in a Hangul font"
    _, log = latex_output(edition)
    assert re.findall(r"Missing character: .*", log) == []  # XeTeX's note of a glyph its font lacks (an empty box)


def test_korean_pdf_has_no_english_prose_nor_english_labels(korean):
    edition = korean
    # The site's rule (test_site.english_paragraphs), line by line: what is not prose on the site
    # (code, outputs, formulas, citations) is not prose in the PDF either, however it was set.
    not_prose = "".join(letters_and_digits(element.get_text()) for page in edition.pages()
                        for element in _article(edition.site / f"{page}.html").select("pre, code, .math, .cell_output, .references"))
    lines = [line for page in pdf_pages(edition.pdf) if not is_contents_page(page) for line in page.splitlines()
             if letters_and_digits(line) not in not_prose]
    assert english_paragraphs(lines) == []
    assert sum(bool(HANGUL.search(line)) for line in lines) > 2000
    planted = "This sentence of English prose was left untranslated."  # as a line of the PDF: caught
    assert letters_and_digits(planted) not in not_prose and english_paragraphs(lines + [planted]) == [planted]
    # Running heads and feet, headings, captions, continuation notes: LaTeX's words, in Korean.
    everything = [line.strip() for page in pdf_pages(edition.pdf, whole_page=True) for line in page.splitlines()]
    assert [line for line in everything if ENGLISH_APPARATUS.match(line)] == []
    english_everything = [line.strip() for page in pdf_pages(EDITIONS["en"].pdf, whole_page=True) for line in page.splitlines()]
    assert len([line for line in english_everything if ENGLISH_APPARATUS.match(line)]) > 100  # the pattern does find them


def test_no_line_of_code_or_output_runs_past_the_text(edition):
    wide, tall = overfull_boxes(*latex_output(edition))
    assert wide == []
    assert max(tall, default=0.0) <= LARGEST_PAGE_OVERSHOOT_PT, f"pages overshot by {sorted(tall)} pt"
    print(f"{edition.pdf.name}: {len(pdf_pages(edition.pdf))} pages; overfull boxes in code and output: {len(wide)}; "
          f"pages a framed block made taller than the text: {len(tall)}, by at most {max(tall, default=0.0):.1f} pt")


def test_rendered_pages_are_not_blank(edition):
    """Two pages of each edition as PNG: Chapter 2's first figure, and Chapter 7's weight decay (code and a formula)."""
    from PIL import Image, ImageStat

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    pages = pdf_pages(edition.pdf)
    _, figure, caption = next(caption for caption in site_captions(edition) if caption[0] == "chapters/02-learning-mechanics")
    _, section, title = next(title for title in site_titles(edition) if title[0] == "chapters/07-better-convnets" and title[1] == "7.4")
    for name, pattern in (("figure", letters_and_digits(figure + caption)), ("code-and-formula", letters_and_digits(section + title))):
        page = page_of(pages, re.escape(pattern))
        prefix = SCREENSHOTS / f"pdf-{edition.name}-{name}"
        subprocess.run(["pdftoppm", "-png", "-r", "80", "-f", str(page), "-l", str(page), "-singlefile", str(edition.pdf), str(prefix)], check=True)
        image = Image.open(f"{prefix}.png").convert("L")
        assert ImageStat.Stat(image).stddev[0] > 20, f"page {page} of {edition.pdf.name} looks blank"
        print(f"page {page} of {edition.pdf.name}: {prefix}.png")


# --- planted faults -----------------------------------------------------------------------------


def test_a_glued_value_taken_out_of_its_sentence_is_caught(edition):
    page = "chapters/06-cifar10-classifier"
    pages = pdf_pages(edition.pdf)
    text = body(pages)
    start, end = chapter_parts(edition, text)[page]
    value, context = next(item for item in glued_in_context(edition.site / f"{page}.html") if "%" in item[0])
    assert glue_problems(text, page, [(value, context)], start, end) == []
    # The value taken out of that sentence only: it may still stand elsewhere in the chapter.
    sentence = context[: len(context) - len(letters_and_digits(value))] if context.endswith(letters_and_digits(value)) else context
    planted = text[:start] + text[start:end].replace(context, sentence, 1) + (text[end:] if end else "")
    assert glue_problems(planted, page, [(value, context)], start, end) == [
        f"{page}: glued value {value!r} is not in its sentence ({context!r}) in its chapter of the PDF"]


def test_a_figure_taken_out_of_a_copy_is_caught(edition, tmp_path):
    """A copy of the PDF's first pages without the page of its first figure: that caption and image are missed."""
    captions = site_captions(edition)[:2]
    pages = pdf_pages(edition.pdf)
    figure_page, next_figure_page = (page_of(pages, re.escape(letters_and_digits(number + caption))) for _, number, caption in captions)
    assert figure_page < next_figure_page
    subprocess.run(["pdfseparate", "-l", str(next_figure_page), str(edition.pdf), str(tmp_path / "page-%d.pdf")], check=True)
    copy = tmp_path / "copy.pdf"
    subprocess.run(["pdfunite", *(str(tmp_path / f"page-{index}.pdf") for index in range(1, next_figure_page + 1)
                                  if index != figure_page), str(copy)], check=True)
    page_name, number, caption = captions[0]
    assert caption_problems(body(pdf_pages(copy)), captions) == [f"{page_name}: figure {number!r} ({caption[:50]!r}...) is not in the PDF"]
    assert pdf_image_count(copy) == pdf_image_count(edition.pdf, last=next_figure_page) - pdf_image_count(edition.pdf, figure_page, figure_page)
    assert pdf_image_count(edition.pdf, figure_page, figure_page) >= 1


def test_titles_out_of_order_are_caught(edition):
    text = body(pdf_pages(edition.pdf))
    titles = site_titles(edition)
    chapters = [index for index, title in enumerate(titles) if title[0].startswith("chapters/") and title[1].isdigit()]
    first, second = chapters[0], chapters[1]
    swapped = titles[:first] + [titles[second]] + titles[first + 1:second] + [titles[first]] + titles[second + 1:]
    assert title_problems(text, titles, edition.name)[0] == []
    problems, _ = title_problems(text, swapped, edition.name)
    assert any(titles[first][2] in problem for problem in problems)  # Chapter 1's title, looked for after Chapter 2's


def test_a_code_line_past_the_text_is_caught():
    """A log that reports an overfull line inside a code block, and one in prose, which is not a code block's."""
    tex = "prose\n\\begin{sphinxVerbatim}[commandchars=\\\\\\{\\}]\ncode\n\\end{sphinxVerbatim}\nprose\n"
    log = ("Overfull \\hbox (12.5pt too wide) in paragraph at lines 3--3\n"
           "Overfull \\hbox (3.0pt too wide) in paragraph at lines 5--5\n"
           "Overfull \\vbox (2.1pt too high) detected at line 4\n")
    assert overfull_boxes(tex, log) == (["Overfull \\hbox (12.5pt too wide) in paragraph at lines 3--3"], [2.1])
