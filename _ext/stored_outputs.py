"""Sphinx extension: build the site from the chapters' stored, verified outputs instead of executing them.

`make book` executes every chapter from its `.md` source (``execute_notebooks: force`` in
_config.yml). `make test` first runs nbval, which executes every stored chapter notebook
(``chapters/NN-name.ipynb``) and checks that each output is reproduced; executing them all
again to build the site would only repeat that work. With ``BOOK_OUTPUTS=stored`` in the
environment this extension switches MyST-NB to its cache mode and fills a fresh cache with
those stored notebooks, so each page takes its text from the `.md` source and its outputs
from the `.ipynb` that nbval just verified.

The cache matches a notebook by its code cells (source and metadata) and kernel. A chapter
whose `.md` code no longer matches its `.ipynb` stops the build here with the fix, rather
than being executed quietly: its stored outputs are out of date.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from sphinx.errors import ExtensionError
from sphinx.util import logging

MODE_ENV = "BOOK_OUTPUTS"
CACHE_FOLDER = "stored-outputs-cache"  # inside _build/, apart from MyST-NB's own .jupyter_cache

logger = logging.getLogger(__name__)


def _use_stored_outputs(app, config):
    mode = os.environ.get(MODE_ENV, "")
    if mode not in ("", "stored"):
        raise ExtensionError(f"{MODE_ENV}={mode!r}: the only value it takes is 'stored' (unset it to execute)")
    if mode != "stored":
        return

    from jupyter_cache import get_cache
    from myst_nb.core.read import read_myst_markdown_notebook

    cache_path = Path(app.outdir).parent / CACHE_FOLDER
    shutil.rmtree(cache_path, ignore_errors=True)  # only what is stored now, never an older run's outputs
    cache = get_cache(cache_path)
    sources = sorted(Path(app.srcdir, "chapters").glob("*.md"))
    for source in sources:
        stored = source.with_suffix(".ipynb")
        if not stored.exists():
            raise ExtensionError(f"{stored.name} is missing: run `make execute` to store {source.name}'s outputs")
        cache.cache_notebook_file(str(stored), uri=str(source), check_validity=True, overwrite=True)
        try:
            cache.match_cache_notebook(read_myst_markdown_notebook(source.read_text(encoding="utf-8")))
        except KeyError:
            raise ExtensionError(
                f"The code of {source.name} differs from its stored notebook {stored.name}, so the stored "
                f"outputs are out of date: run `make execute` (or `make sync` if only the .ipynb was edited)."
            ) from None
    config.nb_execution_mode = "cache"
    config.nb_execution_cache_path = str(cache_path)
    logger.info(f"[stored_outputs] pages take their outputs from {len(sources)} stored chapter notebooks")


def setup(app):
    # Before MyST-NB reads its configuration (builder-inited), so that the mode set here counts.
    app.connect("config-inited", _use_stored_outputs, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
