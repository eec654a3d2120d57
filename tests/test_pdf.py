"""The PDFs of both editions (`make pdf`), read as a reader of the printed book reads them.

`make test` builds the site and then the PDFs. Each check compares a PDF with the built site
of its edition: the text (extracted with pdftotext, Debian's poppler-utils) holds every page's
title and section titles in order with their numbers, every glued value of each chapter in
that chapter, every figure caption with its number, and, in the Korean PDF, no paragraph of
English prose; the PDF has as many images as the site's pages (pdfimages), every font
embedded and a Hangul font in the Korean one (pdffonts); no line of code or output is wider
than the text (LaTeX's log); and two rendered pages are not blank (pdftoppm). Faults planted in
copies (a glued value taken out of the text, the page of a figure taken out of the PDF) are
caught.
"""

from __future__ import annotations

import collections
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

PDF_FOLDER = ROOT / "_build" / "pdf"
# A framed code block at the foot of a page can come out a little taller than the space left
# (framed's split); more than this, a third of a line, would show as a block in the footer.
LARGEST_PAGE_OVERSHOOT_PT = 4.0


@dataclass(frozen=True)
class Edition:
    name: str  # "en", "ko"
    site: Path  # its built site
    toc: Path  # its _toc.yml
    latex: Path  # the folder LaTeX wrote it in
    stem: str  # the file name of its PDF, .tex and .log, without suffix

    @property
    def pdf(self) -> Path:
        return PDF_FOLDER / f"{self.stem}.pdf"

    def pages(self) -> list[str]:
        return translation.pages(self.toc)


def _stem(config: dict) -> str:
    return Path(config["latex"]["latex_documents"]["targetname"]).stem


EDITIONS = {
    "en": Edition("en", SITE, ROOT / "_toc.yml", ROOT / "_build" / "latex",
                  _stem(yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8")))),
    "ko": Edition("ko", SITE / KOREAN, ROOT / translation.EDITION / "_toc.yml",
                  ROOT / "_build" / "ko" / "_build" / "latex", _stem(translation.edition_config())),
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


# --- the text, as pdftotext gives it ----------------------------------------------------------


def pdf_pages(pdf: Path) -> list[str]:
    text = subprocess.run(["pdftotext", "-enc", "UTF-8", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    return text.split("\f")


def is_contents_page(page: str) -> bool:
    """A page of the table of contents, by its dot leaders."""
    return ". . . . . ." in page


def body_text(pages: list[str]) -> str:
    return "\n".join(page for page in pages if not is_contents_page(page))


def squeezed(text: str) -> str:
    """Text as compared: ligatures and quotes unified, line-end hyphens joined, no whitespace.

    LaTeX hyphenates words at line ends and pdftotext keeps the hyphen; a hyphen of the text
    itself can fall at a line end too, so callers search both `squeezed(text)` and
    `squeezed(text, join_hyphens=False)`.
    """
    text = unicodedata.normalize("NFKC", text)
    text = text.translate(str.maketrans({"‘": "'", "’": "'", "“": '"', "”": '"', "\u00ad": None, "␣": None, "↪": None}))
    return re.sub(r"\s+", "", text)


class Haystack:
    """A PDF's body text, searchable in order for texts however LaTeX broke their lines."""

    def __init__(self, text: str):
        self.joined = squeezed(re.sub(r"-\n", "", text))
        self.kept = squeezed(text)

    def find(self, needle: str, start: tuple[int, int] = (0, 0)) -> tuple[tuple[int, int], tuple[int, int]] | None:
        """Where the needle (a regular expression over squeezed text) first occurs from ``start``: its start and end in both texts.

        The two texts differ only by the joined hyphens, so where the needle is found in one text
        only, its place in the other is taken to be the same distance from ``start``.
        """
        found = [re.search(needle, text[position:]) for text, position in zip((self.joined, self.kept), start)]
        if not any(found):
            return None
        other = next(match for match in found if match)
        spans = [match.span() if match else other.span() for match in found]
        return tuple(position + span[0] for position, span in zip(start, spans)), tuple(position + span[1] for position, span in zip(start, spans))


def needle(*texts: str, separator: str = "") -> str:
    return separator.join(re.escape(squeezed(text)) for text in texts)


# --- what the site shows ----------------------------------------------------------------------


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


# --- the checks, as functions that a planted fault can be run through ---------------------------

# What a heading puts between a chapter's number and its title, where the site puts nothing: 제 1 장.
AFTER_CHAPTER_NUMBER = {"en": "", "ko": "장"}


def title_problems(haystack: Haystack, titles: list[tuple[str, str, str]], edition: str) -> tuple[list[str], dict[str, tuple[int, int]]]:
    """Titles missing from the text, or out of order; and where each page's first title was found."""
    problems, page_starts, position = [], {}, (0, 0)
    for page, number, title in titles:
        after_number = f"(?:{AFTER_CHAPTER_NUMBER[edition]})?" if number.isdigit() else ""
        found = haystack.find(needle(number) + after_number + needle(title), position)
        if found is None:
            problems.append(f"{page}: {number + ' ' if number else ''}{title!r} is not in the PDF after the title before it")
            continue
        page_starts.setdefault(page, found[0])
        position = found[1]
    return problems, page_starts


def glue_problems(haystack: Haystack, page: str, values: collections.Counter, start: tuple[int, int], end: tuple[int, int] | None) -> list[str]:
    """Glued values of one page missing from its part of the text (from its first title to the next page's)."""
    joined, kept = haystack.joined[start[0]:end[0] if end else None], haystack.kept[start[1]:end[1] if end else None]
    return [f"{page}: glued value {value!r} is not in its chapter of the PDF"
            for value in values if squeezed(value) not in joined and squeezed(value) not in kept]


def caption_problems(haystack: Haystack, captions: list[tuple[str, str, str]]) -> list[str]:
    # LaTeX writes "Fig. 1.1: caption" where the site writes "Fig. 1.1 caption".
    return [f"{page}: figure {number!r} ({caption[:50]!r}...) is not in the PDF"
            for page, number, caption in captions if haystack.find(needle(number) + ":?" + needle(caption)) is None]


def pdf_image_count(pdf: Path, first: int = 1, last: int | None = None) -> int:
    pages = ["-f", str(first)] + (["-l", str(last)] if last else [])
    listing = subprocess.run(["pdfimages", "-list", *pages, str(pdf)], capture_output=True, text=True, check=True).stdout
    return sum(1 for line in listing.splitlines()[2:] if line.split()[2] == "image")  # not the soft masks


# --- tests ------------------------------------------------------------------------------------


def test_titles_are_in_order_with_the_sites_numbers(edition):
    titles = site_titles(edition)
    problems, _ = title_problems(Haystack(body_text(pdf_pages(edition.pdf))), titles, edition.name)
    assert problems == []
    assert len(titles) > 3 * len(edition.pages())  # pages and their sections were read


def test_every_glued_value_is_in_its_chapter(edition):
    haystack = Haystack(body_text(pdf_pages(edition.pdf)))
    _, starts = title_problems(haystack, site_titles(edition), edition.name)
    pages = edition.pages()
    problems, compared = [], 0
    for page in (page for page in pages if page.startswith("chapters/")):
        following = [starts[later] for later in pages[pages.index(page) + 1:] if later in starts]
        values = glued_values(edition.site / f"{page}.html")
        compared += len(values)
        problems += glue_problems(haystack, page, values, starts[page], following[0] if following else None)
    assert problems == []
    assert compared > 100


def test_every_figure_is_there_with_its_number_and_caption(edition):
    captions = site_captions(edition)
    assert caption_problems(Haystack(body_text(pdf_pages(edition.pdf))), captions) == []
    assert pdf_image_count(edition.pdf) == site_image_count(edition) >= len(captions) > 20


def test_fonts_are_embedded_and_korean_has_a_hangul_font(edition):
    listing = subprocess.run(["pdffonts", str(edition.pdf)], capture_output=True, text=True, check=True).stdout
    fonts = [line for line in listing.splitlines()[2:] if line.strip()]
    # Columns: name, type (one or two words), encoding, emb, sub, uni, object ID; "emb" is the fifth from the end.
    assert [font for font in fonts if font.split()[-5] != "yes"] == []
    hangul_fonts = [font.split()[0] for font in fonts if "Nanum" in font.split()[0]]
    if edition.name == "ko":
        assert hangul_fonts, "no Nanum font in the Korean PDF"


def letters_and_digits(text: str) -> str:
    """Only what survives any typesetting: letters and digits (no spaces, punctuation, wrap marks, TeX commands)."""
    return "".join(character for character in unicodedata.normalize("NFKC", re.sub(r"\\[A-Za-z]+", "", text)) if character.isalnum())


def test_korean_pdf_has_no_english_prose(korean):
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


def overfull_boxes(edition: Edition) -> tuple[list[str], list[float]]:
    """Lines of code or output wider than the text, from LaTeX's log; and how far pages overshot, in pt."""
    tex = (edition.latex / f"{edition.stem}.tex").read_text(encoding="utf-8").splitlines()
    log = (edition.latex / f"{edition.stem}.log").read_text(encoding="utf-8", errors="replace")
    in_verbatim, inside = set(), False
    for number, line in enumerate(tex, start=1):
        if line.startswith("\\begin{sphinxVerbatim}"):
            inside = True
        if inside:
            in_verbatim.add(number)
        if line.startswith("\\end{sphinxVerbatim}"):
            inside = False
    wide = [f"{match.group(0)}" for match in re.finditer(r"Overfull \\hbox \(([\d.]+)pt too wide\) in (?:paragraph|alignment) at lines (\d+)--(\d+)", log)
            if in_verbatim & set(range(int(match.group(2)), int(match.group(3)) + 1))]
    tall = [float(size) for size in re.findall(r"Overfull \\vbox \(([\d.]+)pt too high\)", log)]
    return wide, tall


def test_no_line_of_code_or_output_runs_past_the_text(edition):
    wide, tall = overfull_boxes(edition)
    assert wide == []
    assert max(tall, default=0.0) <= LARGEST_PAGE_OVERSHOOT_PT, f"pages overshot by {sorted(tall)} pt"
    pages = len(pdf_pages(edition.pdf)) - 1
    print(f"{edition.pdf.name}: {pages} pages; overfull boxes in code and output: {len(wide)}; "
          f"pages a framed block made taller than the text: {len(tall)}, by at most {max(tall, default=0.0):.1f} pt")


def page_of(pages: list[str], pattern: str) -> int:
    """The number of the first page outside the contents whose squeezed text matches the pattern."""
    return next(index for index, text in enumerate(pages, start=1)
                if re.search(pattern, squeezed(text)) and not is_contents_page(text))


def test_rendered_pages_are_not_blank(edition):
    """Two pages of each edition as PNG: Chapter 2's first figure, and Chapter 7's weight decay (code and a formula)."""
    from PIL import Image, ImageStat

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    pages = pdf_pages(edition.pdf)
    _, figure, _ = next(caption for caption in site_captions(edition) if caption[0] == "chapters/02-learning-mechanics")
    _, section, title = next(title for title in site_titles(edition) if title[0] == "chapters/07-better-convnets" and title[1] == "7.4")
    for name, page in (("figure", page_of(pages, needle(figure) + ":")), ("code-and-formula", page_of(pages, needle(section, title)))):
        prefix = SCREENSHOTS / f"pdf-{edition.name}-{name}"
        subprocess.run(["pdftoppm", "-png", "-r", "80", "-f", str(page), "-l", str(page), "-singlefile", str(edition.pdf), str(prefix)], check=True)
        image = Image.open(f"{prefix}.png").convert("L")
        assert ImageStat.Stat(image).stddev[0] > 20, f"page {page} of {edition.pdf.name} looks blank"
        print(f"page {page} of {edition.pdf.name}: {prefix}.png")


# --- planted faults ---------------------------------------------------------------------------


def test_a_glued_value_taken_out_of_the_text_is_caught(edition):
    page = "chapters/06-cifar10-classifier"
    text = body_text(pdf_pages(edition.pdf))
    haystack = Haystack(text)
    _, starts = title_problems(haystack, site_titles(edition), edition.name)
    value = next(value for value in glued_values(edition.site / f"{page}.html") if "%" in value)
    assert glue_problems(haystack, page, collections.Counter([value]), starts[page], None) == []
    planted = Haystack(text.replace(value, ""))
    assert glue_problems(planted, page, collections.Counter([value]), starts[page], None) == [
        f"{page}: glued value {value!r} is not in its chapter of the PDF"]


def test_a_figure_taken_out_of_a_copy_is_caught(edition, tmp_path):
    """A copy of the PDF's first pages without the page of its first figure: that caption and image are missed."""
    captions = site_captions(edition)[:2]
    pages = pdf_pages(edition.pdf)
    figure_page, next_figure_page = (page_of(pages, needle(number) + ":") for _, number, _ in captions)
    assert figure_page < next_figure_page
    subprocess.run(["pdfseparate", "-l", str(next_figure_page), str(edition.pdf), str(tmp_path / "page-%d.pdf")], check=True)
    copy = tmp_path / "copy.pdf"
    subprocess.run(["pdfunite", *(str(tmp_path / f"page-{index}.pdf") for index in range(1, next_figure_page + 1)
                                  if index != figure_page), str(copy)], check=True)
    page_name, number, caption = captions[0]
    assert caption_problems(Haystack(body_text(pdf_pages(copy))), captions) == [
        f"{page_name}: figure {number!r} ({caption[:50]!r}...) is not in the PDF"]
    assert pdf_image_count(copy) == pdf_image_count(edition.pdf, last=next_figure_page) - pdf_image_count(edition.pdf, figure_page, figure_page)
    assert pdf_image_count(edition.pdf, figure_page, figure_page) >= 1


def test_titles_out_of_order_are_caught(edition):
    haystack = Haystack(body_text(pdf_pages(edition.pdf)))
    titles = site_titles(edition)
    chapters = [index for index, title in enumerate(titles) if title[0].startswith("chapters/") and title[1].isdigit()]
    first, second = chapters[0], chapters[1]
    swapped = titles[:first] + [titles[second]] + titles[first + 1:second] + [titles[first]] + titles[second + 1:]
    assert title_problems(haystack, titles, edition.name)[0] == []
    problems, _ = title_problems(haystack, swapped, edition.name)
    assert any(titles[first][2] in problem for problem in problems)  # Chapter 1's title, looked for after Chapter 2's


def test_a_code_line_past_the_text_is_caught(tmp_path):
    """A log that reports an overfull line inside a code block, and one in prose, which is not a code block's."""
    edition = Edition("en", SITE, ROOT / "_toc.yml", tmp_path, "book")
    (tmp_path / "book.tex").write_text("prose\n\\begin{sphinxVerbatim}[commandchars=\\\\\\{\\}]\ncode\n\\end{sphinxVerbatim}\nprose\n")
    (tmp_path / "book.log").write_text(
        "Overfull \\hbox (12.5pt too wide) in paragraph at lines 3--3\n"
        "Overfull \\hbox (3.0pt too wide) in paragraph at lines 5--5\n"
        "Overfull \\vbox (2.1pt too high) detected at line 4\n")
    assert overfull_boxes(edition) == (["Overfull \\hbox (12.5pt too wide) in paragraph at lines 3--3"], [2.1])
