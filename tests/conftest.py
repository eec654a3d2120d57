"""Shared helpers: the book's layout, its data registry, an nbval runner, and a small HTTP server on 127.0.0.1."""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from tools import translation
from torchbook.data import Registry

ROOT = Path(__file__).resolve().parents[1]
REPOSITORY = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]  # url and branch, named once
HANGUL = re.compile(r"[\uac00-\ud7a3]")  # a Korean syllable


@functools.lru_cache(maxsize=1)
def book_registry() -> Registry:
    """The book's real data registry, data/registry.json."""
    return Registry.from_json(ROOT / "data" / "registry.json")


def run_nbval(notebook: Path, env: dict | None = None, timeout: int = 600, plugins=()) -> subprocess.CompletedProcess:
    """Run nbval on one notebook in its own folder, in a fresh pytest process; returns the finished process.

    ``plugins`` names pytest plugins of this repository to load (``tools.nbval_tolerance``),
    which the process then imports from the checkout.
    """
    env = os.environ.copy() if env is None else dict(env)
    if plugins:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval", "--nbval-current-env", "-p", "no:cacheprovider",
         *(argument for plugin in plugins for argument in ("-p", plugin)), notebook.name],
        cwd=notebook.parent,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def toc_files() -> list[str]:
    """Every document of _toc.yml, root first, without file extension."""
    return translation.pages(ROOT / "_toc.yml")


def chapter_sources() -> list[Path]:
    """The chapter notebooks' .md sources listed in _toc.yml."""
    return [ROOT / f"{name}.md" for name in toc_files() if name.startswith("chapters/")]


class _Routes(http.server.BaseHTTPRequestHandler):
    routes: dict[str, tuple[bytes, int | None]] = {}  # path -> (body, Content-Length to announce)

    def do_GET(self):  # noqa: N802 (http.server's naming)
        if self.path not in self.routes:
            self.send_error(404)
            return
        body, announced_length = self.routes[self.path]
        self.send_response(200)
        self.send_header("Content-Length", str(announced_length or len(body)))
        self.end_headers()
        self.wfile.write(body)  # a shorter body than announced imitates a dropped connection
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serving(handler):
    """Run an HTTP server with this request handler on 127.0.0.1 (a free port) while the block runs."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def http_server():
    """Serve `server.routes` on 127.0.0.1; yields the server, whose `url(path)` gives the address."""

    class Handler(_Routes):
        routes = {}

    with serving(Handler) as server:
        server.routes = Handler.routes
        server.url = lambda path: f"http://127.0.0.1:{server.server_address[1]}{path}"
        yield server
