"""The built website (_build/html), read the way a person reads it.

`make test` builds the book first. The link checks parse the HTML; the browser checks drive
Debian's Chromium headless through Playwright, and are skipped, saying so, where Chromium
is not installed (`.ci/run` installs it, so CI always runs them).
"""

from __future__ import annotations

import collections
import functools
import http.server
import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urldefrag, urljoin, urlparse

import pytest

from tools import translation

from .conftest import HANGUL, REPOSITORY, ROOT, serving, toc_files

SITE = ROOT / "_build" / "html"
SCREENSHOTS = ROOT / "_build" / "screenshots"
CHROMIUM = Path(os.environ.get("BOOK_CHROMIUM", "/usr/bin/chromium"))  # Debian's package
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
REPO_URL, BRANCH = REPOSITORY["url"], REPOSITORY["branch"]
ORG_REPO = urlparse(REPO_URL).path.strip("/")
PAGES = toc_files()
CHAPTERS = [page for page in PAGES if page.startswith("chapters/")]
KOREAN = "ko/"  # the Korean edition's pages, under _build/html/ko/ (see running.md, "The Korean edition")
# Every page of both editions, as its path in the site without ".html": "chapters/01-tensors", "ko/chapters/01-tensors".
SITE_PAGES = PAGES + [KOREAN + page for page in PAGES]
# Pages of the Korean edition only (the glossary, generated from ko/glossary.csv), as ko/edition.yml lists them.
KOREAN_ONLY_PAGES = [KOREAN + page for page in translation.edition_config()["sphinx"]["config"]["other_edition"]["only_here"]]


@pytest.fixture(scope="module")
def site() -> Path:
    if not (SITE / "index.html").exists():
        pytest.fail("_build/html is missing: run `make book` (or `make test`, which builds it) first")
    return SITE


# --- links and anchors, from the HTML itself ---------------------------------------------------


class _PageParts(HTMLParser):
    """What the checks need from a page: its links, its element ids, and its images' attributes."""

    def __init__(self):
        super().__init__()
        self.links: list[str] = []
        self.ids: set[str] = set()
        self.images: list[dict] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs)
        for name in ("id", "name"):
            if attrs.get(name):
                self.ids.add(attrs[name])
        for name in ("href", "src"):
            if attrs.get(name) and not (tag == "link" and attrs.get("rel") in ("preconnect", "dns-prefetch")):
                self.links.append(attrs[name])


@functools.lru_cache(maxsize=None)
def _parse(path: Path) -> _PageParts:
    parser = _PageParts()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def link_problems(site: Path) -> tuple[list[Path], list[str], set[str]]:
    """The pages of a built site, its broken internal links and anchors, and its external URLs."""
    broken, external = [], set()
    pages = sorted(p for p in site.rglob("*.html") if "_static" not in p.parts and "_sources" not in p.parts)
    for page in pages:
        base = page.relative_to(site).as_posix()
        for link in _parse(page).links:
            scheme = urlparse(link).scheme
            if scheme in ("http", "https", "mailto"):
                external.add(link)
                continue
            if scheme or link.startswith("//"):
                continue  # javascript:, data: and the like
            target, fragment = urldefrag(urljoin(base, link))
            target = urlparse(target).path  # without ?v=... cache busters
            target_path = site / unquote(target) if target else page
            if target_path.is_dir():
                target_path = target_path / "index.html"
            if not target_path.exists() and target_path.suffix == ".pdf" and os.environ.get("BOOK_WITHOUT_PDFS"):
                print(f"{base}: {link}: not built, the PDFs were skipped (no XeLaTeX)")  # make test said so
            elif not target_path.exists():
                broken.append(f"{base}: {link} (no file {target_path.relative_to(site)})")
            elif fragment and target_path.suffix == ".html" and unquote(fragment) not in _parse(target_path).ids:
                broken.append(f"{base}: {link} (no anchor #{fragment})")
    return pages, broken, external


def test_internal_links_and_anchors_resolve(site):
    pages, broken, external = link_problems(site)
    listing = ROOT / "_build" / "external-links.txt"
    listing.write_text("".join(f"{url}\n" for url in sorted(external)))
    print(f"{len(pages)} pages checked; {len(external)} external URLs listed, not fetched, in {listing.relative_to(ROOT)}")
    assert not broken, "broken links:\n" + "\n".join(broken)
    assert any(url.startswith(REPO_URL) for url in external), "the repository buttons are missing"


def test_link_checker_reports_a_broken_anchor(site, tmp_path):
    """The checker above must be able to fail: a copy of the site with one anchor removed."""
    copy = tmp_path / "html"
    shutil.copytree(site, copy, ignore=shutil.ignore_patterns("_static", "_sources", "_images"))
    chapter = copy / f"{CHAPTERS[0]}.html"
    html = chapter.read_text(encoding="utf-8")
    anchor = re.search(r'<section id="([^"]+)"', html).group(1)
    linking_pages = [p for p in copy.rglob("*.html") if f"#{anchor}" in p.read_text(encoding="utf-8")]
    assert linking_pages, f"nothing links to #{anchor}"
    chapter.write_text(html.replace(f'id="{anchor}"', 'id="renamed"'), encoding="utf-8")
    _, broken, _ = link_problems(copy)
    assert any(f"#{anchor} (no anchor #{anchor})" in problem for problem in broken), broken


def test_a_missing_pdf_is_a_broken_link_unless_make_test_skipped_the_pdfs(tmp_path, monkeypatch):
    """Without XeLaTeX make test says it skips the PDFs (BOOK_WITHOUT_PDFS=1): only then may their links dangle."""
    (tmp_path / "index.html").write_text('<a href="book.pdf">PDF</a> <a href="other.html">page</a>', encoding="utf-8")
    monkeypatch.delenv("BOOK_WITHOUT_PDFS", raising=False)
    assert [problem.split(" (")[0] for problem in link_problems(tmp_path)[1]] == ["index.html: book.pdf", "index.html: other.html"]
    monkeypatch.setenv("BOOK_WITHOUT_PDFS", "1")
    _parse.cache_clear()
    assert [problem.split(" (")[0] for problem in link_problems(tmp_path)[1]] == ["index.html: other.html"]


@pytest.mark.parametrize("page_name", SITE_PAGES)
def test_every_image_has_alt_text(site, page_name):
    images = _parse(site / f"{page_name}.html").images
    assert [img["src"] for img in images if not (img.get("alt") or "").strip()] == []
    if page_name.removeprefix(KOREAN) in CHAPTERS:
        # The chapter's own figures (written by its cells to _images/), not the logo every page has.
        figures = [img for img in images if "_images/" in img["src"]]
        assert figures, "a chapter should show at least one figure of its own"


# --- in a real browser ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def base_url(site):
    with serving(functools.partial(_QuietHandler, directory=str(site))) as server:
        yield f"http://127.0.0.1:{server.server_address[1]}/"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"browser tests skipped: {CHROMIUM} is not installed (apt-get install chromium, or set BOOK_CHROMIUM)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


class PageVisit:
    """A page opened in a fresh tab that records console errors and every request leaving 127.0.0.1."""

    def __init__(self, browser, url):
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.console_errors: list[str] = []
        self.external_requests: list[str] = []
        self.page.on("console", lambda message: message.type == "error" and self.console_errors.append(message.text))
        self.page.on("pageerror", lambda error: self.console_errors.append(f"uncaught: {error}"))
        self.page.route(re.compile(r"^(?!http://127\.0\.0\.1[:/]).*"), self._block)
        self.page.goto(url, wait_until="networkidle")

    def _block(self, route):
        # This machine has no network: an outside request would fail anyway. Record it instead.
        self.external_requests.append(route.request.url)
        route.abort()

    def close(self):
        self.context.close()


# The text of a page's prose, paragraph by paragraph, as a reader sees it: paragraphs, list
# items, table cells and captions of the article, without code, cell outputs, formulas and
# the citations of a references list (titles stay in their language).
PROSE_BLOCKS_JS = """() => {
    const blocks = document.querySelectorAll(
        'article p, article li, article td, article th, article figcaption, article dt, article dd');
    return [...blocks]
        .filter(b => !b.closest('.cell_output, .cell_input, pre, .highlight, .references, nav'))
        .filter(b => !b.querySelector('p, li'))  // the innermost blocks only
        .map(b => {
            const copy = b.cloneNode(true);
            copy.querySelectorAll('code, .math, mjx-container, .pasted-text, a.reference.external')
                .forEach(e => e.remove());
            return copy.textContent.replace(/\\s+/g, " ").trim();
        });
}"""


def english_paragraphs(blocks: list[str]) -> list[str]:
    """Blocks of a Korean page that are English prose: four or more English words and no Korean at all."""
    return [b for b in blocks if not HANGUL.search(b) and len(re.findall(r"[A-Za-z]{2,}", b)) >= 4]


@pytest.mark.parametrize("page_name", SITE_PAGES)
def test_page_in_browser(browser, base_url, page_name):
    visit = PageVisit(browser, urljoin(base_url, f"{page_name}.html"))
    page = visit.page
    korean = page_name.startswith(KOREAN)
    source_page = page_name.removeprefix(KOREAN)
    try:
        # Images: load lazy ones too, then every <img> must have pixels and a text alternative.
        page.evaluate("document.querySelectorAll('img').forEach(img => img.loading = 'eager')")
        page.wait_for_function("[...document.images].every(img => img.complete)")
        images = page.evaluate(
            """[...document.images].map(img => ({
                src: img.getAttribute('src'), width: img.naturalWidth,
                alt: img.getAttribute('alt') || '',
                caption: img.closest('figure')?.querySelector('figcaption')?.innerText || ''}))"""
        )
        assert not [i["src"] for i in images if i["width"] == 0], "images that did not load"
        assert not [i["src"] for i in images if not (i["alt"].strip() or i["caption"].strip())], "images without alt text or caption"
        if korean:
            figures = [i for i in images if "_images/" in i["src"]]
            assert not [i["src"] for i in figures if not HANGUL.search(i["alt"] + i["caption"])], "figures without Korean alt text or caption"
            assert page.evaluate("document.documentElement.lang") == "ko"
            assert english_paragraphs(page.evaluate(PROSE_BLOCKS_JS)) == [], "English prose left on a Korean page"

        if source_page in CHAPTERS:
            hrefs = page.eval_on_selector_all("a[href]", "links => links.map(a => a.href)")
            site_root = urljoin(base_url, KOREAN if korean else "")
            expected = {
                "Colab": f"https://colab.research.google.com/github/{ORG_REPO}/blob/{BRANCH}/{page_name}.ipynb",
                "Binder": f"https://mybinder.org/v2/gh/{ORG_REPO}/{BRANCH}?urlpath=lab/tree/{page_name}.ipynb",
                ".ipynb download": urljoin(site_root, f"_sources/{source_page}.ipynb"),
                ".md download": urljoin(site_root, f"_sources/{source_page}.md"),
                "edit button": f"{REPO_URL}/edit/{BRANCH}/{page_name}.md",
            }
            missing = {what: href for what, href in expected.items() if href not in hrefs}
            assert not missing, f"missing buttons: {missing}"
            notebook = page.request.get(expected[".ipynb download"])
            assert notebook.ok and '"cells"' in notebook.text(), "the .ipynb download is not a notebook"
            source = page.request.get(expected[".md download"])
            assert source.ok and "format_name: myst" in source.text(), "the .md download is not the MyST source"
            figures = page.locator("figure img").count()
            assert figures >= 1, "a chapter should show at least one figure"
            assert "import torchbook" not in page.inner_text("main"), "the Colab setup cell should not show on the site"

        if page.locator("div.math, span.math").count():
            page.wait_for_selector("mjx-container", timeout=10_000)  # MathJax, served by the site itself, ran

        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{page_name.replace('/', '__')}.png"), full_page=True)
        assert visit.console_errors == [], "console errors"
        assert visit.external_requests == [], "the page tried to load something from outside the site"
    finally:
        visit.close()


def test_search_finds_dataloader(browser, base_url):
    visit = PageVisit(browser, urljoin(base_url, "search.html?q=DataLoader"))
    try:
        visit.page.wait_for_selector("#search-results ul.search li", timeout=15_000)
        results = visit.page.eval_on_selector_all("#search-results ul.search li a", "links => links.map(a => a.href)")
        assert any("chapters/04-sgd-and-dataloaders.html" in href for href in results), results
        assert visit.console_errors == []
    finally:
        visit.close()


# Each edition's words for the exercises' section, headings and solution toggles.
EXERCISE_WORDS = {
    "": ("Exercises", r"Exercise \d+\.\d+: ", "Show solution"),
    KOREAN: ("연습 문제", r"연습 문제 \d+\.\d+: ", "풀이 보기"),
}


@pytest.mark.parametrize("page_name", CHAPTERS + [KOREAN + chapter for chapter in CHAPTERS])
def test_solutions_are_folded_until_clicked(browser, base_url, page_name):
    """Every exercise shows its statement and folds its solution (code, outputs and discussion) until clicked."""
    section_title, heading_pattern, prompt = EXERCISE_WORDS[KOREAN if page_name.startswith(KOREAN) else ""]
    visit = PageVisit(browser, urljoin(base_url, f"{page_name}.html"))
    page = visit.page
    try:
        section = page.locator("section", has=page.locator(":scope > h2", has_text=section_title))
        exercises = section.locator(":scope > section")
        assert exercises.count() >= 4, "the chapter should end with at least four exercises"
        for i in range(exercises.count()):
            exercise = exercises.nth(i)
            heading = exercise.locator(":scope > h3").inner_text()
            assert re.match(heading_pattern, heading), heading
            assert exercise.locator(":scope > p").first.is_visible(), f"{heading}: the statement should be visible"
            solutions = exercise.locator("details", has=page.locator("summary", has_text=prompt))
            assert solutions.count() >= 1, f"{heading}: no '{prompt}' toggle"
            folds = exercise.locator("details")  # the solution cells and the dropdown that discusses them
            for j in range(folds.count()):
                fold = folds.nth(j)
                content = fold.locator(":scope > :not(summary)").first
                assert not fold.evaluate("details => details.open"), f"{heading}: fold {j} starts open"
                assert not content.is_visible(), f"{heading}: fold {j} shows its content before a click"
                fold.locator(":scope > summary").click()
                assert fold.evaluate("details => details.open"), f"{heading}: fold {j} did not open"
                content.wait_for(state="visible", timeout=5_000)
        assert visit.console_errors == []
    finally:
        visit.close()


# --- the two editions side by side ----------------------------------------------------------


@pytest.mark.parametrize("page_name", PAGES)
def test_language_switch_goes_to_the_same_page_and_back(browser, base_url, page_name):
    english_url = urljoin(base_url, f"{page_name}.html")
    korean_url = urljoin(base_url, f"{KOREAN}{page_name}.html")
    visit = PageVisit(browser, english_url)
    page = visit.page
    try:
        switch = page.locator("p.language-switch a")
        assert switch.is_visible() and switch.get_attribute("hreflang") == "ko"
        switch.click()
        page.wait_for_url(korean_url)
        back = page.locator("p.language-switch a")
        assert back.is_visible() and back.get_attribute("hreflang") == "en"
        back.click()
        page.wait_for_url(english_url)
        assert visit.console_errors == []
    finally:
        visit.close()


def glued_values(html_path: Path) -> collections.Counter:
    """The values that glue roles put into a page's text (MyST-NB's ``pasted-text`` spans)."""
    return collections.Counter(re.findall(r'<span class="pasted-text">([^<]*)</span>', html_path.read_text(encoding="utf-8")))


@pytest.mark.parametrize("page_name", CHAPTERS)
def test_glued_numbers_are_the_same_in_both_editions(site, page_name):
    english, korean = glued_values(site / f"{page_name}.html"), glued_values(site / f"{KOREAN}{page_name}.html")
    assert english, "no glued values found: has MyST-NB changed how it renders them?"
    assert korean == english


def test_english_prose_check_catches_a_planted_paragraph(browser, base_url):
    """The check above must be able to fail: one Korean paragraph replaced by its English original."""
    page_name = CHAPTERS[1]
    visit = PageVisit(browser, urljoin(base_url, f"{page_name}.html"))
    try:
        english = next(b for b in visit.page.evaluate(PROSE_BLOCKS_JS) if len(b.split()) > 8)
    finally:
        visit.close()
    visit = PageVisit(browser, urljoin(base_url, f"{KOREAN}{page_name}.html"))
    try:
        assert english_paragraphs(visit.page.evaluate(PROSE_BLOCKS_JS)) == []
        visit.page.evaluate(
            "text => { const p = [...document.querySelectorAll('article p')]"
            ".find(p => !p.closest('.cell_output') && /[\\uac00-\\ud7a3]/.test(p.innerText));"
            " p.textContent = text; }",
            english,
        )
        found = english_paragraphs(visit.page.evaluate(PROSE_BLOCKS_JS))
        assert [" ".join(b.split()) for b in found] == [" ".join(english.split())]
    finally:
        visit.close()


# --- the rendered prose, read from the HTML: Markdown left as text, Latin words in Korean ---------
#
# These read _build/html with BeautifulSoup (installed with the site's theme); no browser.
# A page's prose is the text of its article, block by block (paragraph, list item, heading,
# caption, table cell...), with what is not prose taken out: code, formulas, the text that
# cells print, scripts and styles. Each element taken out leaves NOT_PROSE_MARK, so the words
# on either side of it are not joined. Markdown that cells display (the data credits of
# data-sources) is prose, and is read.

NOT_PROSE = (
    "script", "style", "pre", "code", ".highlight", ".cell_input",
    ".cell_output .output",  # printed text and plain results; Markdown a cell displays stays
    ".math", "mjx-container",  # formulas, before and after MathJax
    "a.headerlink", "p.language-switch",
)
NOT_PROSE_MARK = "▯"
_BLOCKS = frozenset(
    "p li dt dd td th h1 h2 h3 h4 h5 h6 figcaption caption summary blockquote div section details figure table article".split()
)


def prose_blocks(html: str, not_prose: tuple[str, ...] = NOT_PROSE) -> list[str]:
    """The prose of a built page's article, one string per innermost block, whitespace collapsed."""
    from bs4 import BeautifulSoup, Comment

    article = BeautifulSoup(html, "html.parser").select_one("article.bd-article")
    assert article is not None, "no <article class='bd-article'>: has the theme changed its page layout?"
    for element in article.select(", ".join(not_prose)):
        element.replace_with(NOT_PROSE_MARK)
    blocks: dict[int, list[str]] = {}
    for string in article.find_all(string=True):
        if isinstance(string, Comment):
            continue
        block = next(parent for parent in string.parents if parent.name in _BLOCKS)
        blocks.setdefault(id(block), []).append(str(string))
    return [text for text in (" ".join("".join(parts).split()) for parts in blocks.values()) if text.strip(NOT_PROSE_MARK + " ")]


def _snippet(text: str, start: int, end: int, width: int = 35) -> str:
    return f"…{text[max(0, start - width):end + width]}…"


# Markdown that a reader would see as text. `*` and `_` count where they could have been
# emphasis markers: not "a * b" (spaces around it: no marker), not snake_case inside a word.
# CommonMark leaves a marker as text where it cannot open or close: `*뷰(view)*를` shows its
# asterisks, because a closing `*` after punctuation must be followed by a space or punctuation.
MARKDOWN_LEFTOVERS = {
    "emphasis marker *": re.compile(r"(?<!\s)\*|\*(?!\s)"),
    "emphasis marker _": re.compile(r"(?<![A-Za-z0-9_])_|_(?![A-Za-z0-9_])"),
    "backtick": re.compile(r"`"),
    "role or directive": re.compile(r"\{[A-Za-z][\w.:-]*\}"),  # {glue:md}, {glue:text}, {doc}, {ref}, {numref}, {eq}, {note}
    "math delimiter $": re.compile(r"\$"),
    "link syntax": re.compile(r"\]\("),
    "block syntax": re.compile(r"^(?:\+\+\+|:::|#{1,6} )|\(\w[\w-]*\)="),  # a block break, fence, heading, target
}


def markdown_leftovers(html: str) -> list[str]:
    """Each piece of Markdown syntax shown as text in a page's prose, with some text around it."""
    found = []
    for block in prose_blocks(html):
        for what, pattern in MARKDOWN_LEFTOVERS.items():
            found.extend(f"{what}: {_snippet(block, m.start(), m.end())}" for m in pattern.finditer(block))
    return found


@pytest.mark.parametrize("page_name", SITE_PAGES + KOREAN_ONLY_PAGES)
def test_no_markdown_syntax_shows_in_the_prose(site, page_name):
    found = markdown_leftovers((site / f"{page_name}.html").read_text(encoding="utf-8"))
    assert found == [], f"{page_name}.html shows Markdown as text ({NOT_PROSE_MARK}: code or a formula):\n" + "\n".join(found)


def planted_findings(check, planted: list[str]) -> list[str]:
    """What ``check`` finds in a built Korean chapter with these HTML fragments added to its first
    section, beyond what it finds there already: the planted faults a check must catch."""
    from bs4 import BeautifulSoup

    original = (SITE / f"{KOREAN}{CHAPTERS[0]}.html").read_text(encoding="utf-8")
    soup = BeautifulSoup(original, "html.parser")
    section = soup.select_one("article.bd-article section")
    for fragment in planted:
        section.append(BeautifulSoup(fragment, "html.parser"))
    before = check(original)
    return [found for found in check(str(soup)) if found not in before]


def test_markdown_check_catches_planted_leftovers(site):
    """The check above must be able to fail: a copy of a built page with leftovers planted in its prose."""
    planted = planted_findings(markdown_leftovers, [
            "<p>슬라이싱은 원본의 *뷰(view)*를 돌려줍니다.</p>",
            "<p>{glue:md}`best_recipe` 조합이 가장 좋습니다.</p>",
            # the same text where it is no prose: not reported
            "<pre>*뷰(view)*를 {glue:md}`best_recipe`</pre>",
            "<p>코드 <code>a * b</code>, <code>x_*</code>와 곱셈 2 * 3, 변수 requires_grad는 괜찮습니다.</p>",
            '<div class="cell_output"><div class="output stream"><p>$5 *text*</p></div></div>',
    ])
    assert planted == [
        "emphasis marker *: …슬라이싱은 원본의 *뷰(view)*를 돌려줍니다.…",
        "emphasis marker *: …슬라이싱은 원본의 *뷰(view)*를 돌려줍니다.…",
        "backtick: …{glue:md}`best_recipe` 조합이 가장 좋습니다.…",
        "backtick: …{glue:md}`best_recipe` 조합이 가장 좋습니다.…",
        "role or directive: …{glue:md}`best_recipe` 조합이 가장 좋습니다.…",
    ], planted


# Latin-letter words in the Korean pages' prose. A Korean sentence may hold Latin letters only
# as code or a formula (taken out above), in a glossary parenthesis (an English term right
# after its Korean one: 텐서(tensor), or after a comma in it: (헤세 행렬, Hessian)), in quotation
# marks (a word quoted as a word: “impossible”), as a single letter (the variables i, j, k, N, C),
# or as one of the names and tokens below. Words that arrive through glued values are caught
# the same way: a {glue:text} value is a `pasted-text` span in the paragraph, and a {glue:md}
# value is parsed into the paragraph's own text, with no mark at all.
#
# The one list of what a Korean page may leave in Latin letters, built from what the pages use.
# A new name goes here; a new English word in a sentence is a translation still to do.
KOREAN_PROSE_LATIN_TOKENS = frozenset("""
    PyTorch NumPy Python Jupyter Colab Google Binder torchvision matplotlib imageio pydicom PIL libjpeg
    jupytext nbval pytest Sphinx LaTeX gettext MyST MyST-NB Markdown Chromium GitHub Pages git GNU Make readme
    Linux Windows macOS Mac Apple AMD Intel Zen Core x86 x86-64 arm64 AVX AVX2 AVX-512 NEON BLAS MKL oneDNN MPS vCPU VM CI TensorFlow Keras
    CUDA GPU CPU A100 V100 API URL ASCII PDF
    CIFAR-10 MNIST ImageNet Gutenberg DICOM JPEG PNG RGB Cb Cr CT HU SHA-256 pickle
    SGD Adam ReLU LeNet ResNet ResNet-18 ResNet-9 airbench L2 autograd Autograd log-sum-exp
    nn.Module nn.Linear nn.Sequential Dataset DataLoader float uint8 assert
    CHW HWC kH kW mm MB MiB D.C csv
""".split())  # projects, tools, machines; datasets, formats; methods; API names; layouts, units, places
# Names of works and people cited in a sentence, as whole phrases.
KOREAN_PROSE_LATIN_PHRASES = (
    "Deep Learning with PyTorch", "Learning Multiple Layers of Features from Tiny Images",
    "A. Krizhevsky", "Eli Stevens", "Luca Antiga", "Thomas Viehmann", "Manning", "Project Gutenberg",
)
KOREAN_PAGES = [KOREAN + page for page in PAGES]

_LATIN_WORD = re.compile(r"(?<![A-Za-z0-9])[A-Za-z][A-Za-z0-9]*(?:[-.'’][A-Za-z0-9]+)*")  # not 3D, 1e-04
_GLOSSARY_PARENTHESIS = re.compile(r"(?<=[\uac00-\ud7a3])\(([^()]*)\)")
_QUOTED = re.compile(r"“[^“”]*”|\"[^\"]*\"")


def _without_glosses(text: str) -> str:
    def korean_parts(match):
        return "(" + ", ".join(part for part in match.group(1).split(", ") if HANGUL.search(part)) + ")"

    text = _GLOSSARY_PARENTHESIS.sub(korean_parts, text)
    return _QUOTED.sub(lambda m: m.group(0) if HANGUL.search(m.group(0)) else "“”", text)


def korean_prose(html: str) -> list[str]:
    """A Korean page's prose blocks with what may stay in Latin letters taken out, but single letters.

    Cell outputs are not read here: the Korean edition shows the English code's outputs.
    """
    texts = []
    for block in prose_blocks(html, NOT_PROSE + (".cell_output", ".references")):  # citations keep their titles
        text = _without_glosses(block)
        for phrase in KOREAN_PROSE_LATIN_PHRASES:
            text = re.sub(rf"(?<![A-Za-z]){re.escape(phrase)}(?![A-Za-z])", NOT_PROSE_MARK, text)
        texts.append(text)
    return texts


def latin_words(html: str) -> list[str]:
    """Each Latin-letter word of a Korean page's prose that is not allowed above, with its context."""
    return [
        f"{m.group(0)}: {_snippet(text, m.start(), m.end(), 30)}"
        for text in korean_prose(html)
        for m in _LATIN_WORD.finditer(text)
        if len(m.group(0)) > 1 and m.group(0) not in KOREAN_PROSE_LATIN_TOKENS
    ]


@pytest.mark.parametrize("page_name", KOREAN_PAGES)
def test_korean_prose_has_no_latin_words(site, page_name):
    found = latin_words((site / f"{page_name}.html").read_text(encoding="utf-8"))
    assert found == [], (
        f"{page_name}.html: Latin-letter words in Korean prose (translate them, or add a name to "
        "KOREAN_PROSE_LATIN_TOKENS in tests/test_site.py):\n" + "\n".join(found)
    )


def test_latin_word_check_catches_a_planted_english_glued_label(site):
    """The check above must be able to fail: a copy of a Korean page with English glued labels planted."""
    planted = planted_findings(latin_words, [
            '<p>가장 좋은 방법은 <span class="pasted-text">momentum only</span> 조합입니다.</p>',  # a {glue:text} value
            "<p>가장 자주 헷갈리는 두 클래스는 bird, frog입니다.</p>",  # {glue:md} values: no mark in the HTML
            # allowed: a glossary parenthesis, a name, a quoted word, a single letter, code, a formula
            "<p>텐서(tensor)는 PyTorch의 배열이고, 이계도함수 행렬(헤세 행렬, Hessian)과 “bennet”, 행 i와 <code>x.view</code>, "
            '<span class="math notranslate nohighlight">\\(\\mathrm{loss}\\)</span>는 괜찮습니다.</p>',
    ])
    assert [found.split(":")[0] for found in planted] == ["momentum", "only", "bird", "frog"], planted
    assert "bird: …가장 자주 헷갈리는 두 클래스는 bird, frog입니다.…" in planted


@pytest.mark.parametrize("page_name", ["data-sources", f"{KOREAN}data-sources"])
def test_data_credits_are_in_the_pages_language(site, page_name):
    """The credits list that data-sources.md generates from the registry labels its lines in the page's language."""
    from bs4 import BeautifulSoup

    from torchbook.data import CREDITS_LABELS

    from .conftest import book_registry

    words = CREDITS_LABELS["ko" if page_name.startswith(KOREAN) else "en"]
    soup = BeautifulSoup((site / f"{page_name}.html").read_text(encoding="utf-8"), "html.parser")
    lines = [li.get_text(" ", strip=True) for li in soup.select("article .cell_output li")]
    labels = collections.Counter(line.split(":", 1)[0] for line in lines)
    datasets = len(book_registry().datasets)
    assert labels == {words[key]: datasets for key in ("files", "upstream", "credit", "licence")}, lines
