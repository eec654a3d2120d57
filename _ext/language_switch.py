"""Sphinx extension: a link on every page to the same page in the book's other edition.

The English book is built at the site's root and the Korean one under ``ko/`` (see
running.md, "The Korean edition"). Each edition's configuration names the other in
``other_edition``: where its sources are, relative to this edition's (to check that the
page exists there), where its pages are, relative to this edition's site root, and the
link's text and language. The link goes at the top of each page's body, visible, with
``hreflang``; the page's head also gets a ``<link rel="alternate" hreflang>`` to it. A page
of this edition only (``only_here``: the Korean glossary) has no link; any other page without
a twin stops the build.

The edition's language (Sphinx's ``language``: ``ko`` in ko/edition.yml, English by default)
is also put in the environment as ``BOOK_LANGUAGE``, which the kernels that run the pages'
code inherit: both editions run the same code cells, and text that code writes for the
page, such as the data credits of data-sources.md (`torchbook.data.credits_markdown`),
is written in the page's language.
"""

from __future__ import annotations

import html
import os
from pathlib import Path

from sphinx.errors import ExtensionError


def _add_switch(app, pagename, templatename, context, doctree):
    edition = app.config.other_edition
    if not edition or doctree is None or pagename in edition.get("only_here", []):
        return  # genindex, search, the pages of this edition only
    sources = Path(app.srcdir, edition["sources"])
    if not any((sources / f"{pagename}{suffix}").exists() for suffix in (".md", ".ipynb")):
        raise ExtensionError(f"{pagename} has no page in the {edition['lang']} edition ({sources})")
    to_root = "../" * pagename.count("/")
    href = html.escape(f"{to_root}{edition['site']}{pagename}.html")
    lang = html.escape(edition["lang"])
    label = html.escape(edition["label"])
    switch = (
        f'<p class="language-switch"><a href="{href}" hreflang="{lang}" lang="{lang}" rel="alternate">'
        f"{label}</a></p>\n"
    )
    context["body"] = switch + context.get("body", "")
    context["metatags"] = context.get("metatags", "") + f'\n<link rel="alternate" hreflang="{lang}" href="{href}" />'


def _export_language(app, config):
    os.environ["BOOK_LANGUAGE"] = config.language or "en"  # torchbook.data.LANGUAGE_ENV


def setup(app):
    app.add_config_value("other_edition", {}, "html")
    app.connect("config-inited", _export_language)
    app.add_css_file("language-switch.css")
    app.connect("html-page-context", _add_switch)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
