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

from .conftest import REPOSITORY, ROOT, serving, toc_files

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
HANGUL = re.compile(r"[\uac00-\ud7a3]")


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
            if not target_path.exists():
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
