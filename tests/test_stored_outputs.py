"""The Sphinx extension that builds `make test`'s site from the stored outputs (_ext/stored_outputs.py)."""

from __future__ import annotations

import importlib.util
from types import SimpleNamespace

import jupytext
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
from sphinx.errors import ExtensionError

from .conftest import ROOT

spec = importlib.util.spec_from_file_location("stored_outputs", ROOT / "_ext" / "stored_outputs.py")
stored_outputs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(stored_outputs)

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def book(tmp_path, stored_source="6 * 7"):
    """A book folder with one chapter: its .md says `6 * 7`, its stored .ipynb ran `stored_source`."""
    chapters = tmp_path / "book" / "chapters"
    chapters.mkdir(parents=True)
    source = new_notebook(cells=[new_markdown_cell("# Tiny"), new_code_cell("6 * 7")], metadata={"kernelspec": KERNELSPEC})
    jupytext.write(source, chapters / "tiny.md", fmt="md:myst")
    stored = new_notebook(
        cells=[
            new_markdown_cell("# Tiny"),
            new_code_cell(stored_source, execution_count=1, outputs=[new_output("execute_result", data={"text/plain": "42"}, execution_count=1)]),
        ],
        metadata={"kernelspec": KERNELSPEC},
    )
    jupytext.write(stored, chapters / "tiny.ipynb", fmt="ipynb")
    app = SimpleNamespace(srcdir=str(tmp_path / "book"), outdir=str(tmp_path / "book" / "_build" / "html"))
    config = SimpleNamespace(nb_execution_mode="force", nb_execution_cache_path="")
    return app, config


def test_without_the_switch_the_book_executes(tmp_path, monkeypatch):
    monkeypatch.delenv(stored_outputs.MODE_ENV, raising=False)
    app, config = book(tmp_path)
    stored_outputs._use_stored_outputs(app, config)
    assert config.nb_execution_mode == "force"


def test_stored_mode_serves_the_stored_outputs_from_a_fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(stored_outputs.MODE_ENV, "stored")
    app, config = book(tmp_path)
    stored_outputs._use_stored_outputs(app, config)
    assert config.nb_execution_mode == "cache"
    from jupyter_cache import get_cache
    from myst_nb.core.read import read_myst_markdown_notebook

    cache = get_cache(config.nb_execution_cache_path)
    page = read_myst_markdown_notebook((tmp_path / "book/chapters/tiny.md").read_text())
    _, merged = cache.merge_match_into_notebook(page)
    assert merged.cells[1].outputs[0]["data"]["text/plain"] == "42"


def test_stored_mode_refuses_a_chapter_whose_code_changed(tmp_path, monkeypatch):
    monkeypatch.setenv(stored_outputs.MODE_ENV, "stored")
    app, config = book(tmp_path, stored_source="6 * 6")
    with pytest.raises(ExtensionError, match=r"The code of tiny.md differs from its stored notebook tiny.ipynb.*make execute"):
        stored_outputs._use_stored_outputs(app, config)


def test_an_unknown_mode_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv(stored_outputs.MODE_ENV, "cached")
    app, config = book(tmp_path)
    with pytest.raises(ExtensionError, match="the only value it takes is 'stored'"):
        stored_outputs._use_stored_outputs(app, config)
