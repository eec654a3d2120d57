"""A chapter opened alone, the way a reader opens it in Jupyter or Colab.

One chapter's stored .ipynb is copied into an empty folder and run there with nbval. The kernel
finds the book's helper package as a reader would after the setup cell: installed from a wheel
built from this checkout, not from the checkout itself. Its data goes to the package's default
cache (here inside the temporary folder), from BOOK_DATA_MIRROR when that is set.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from torchbook.data import DATA_DIR_ENV

from .conftest import ROOT, chapter_sources, run_nbval

CHAPTER = chapter_sources()[0]  # the chapter that reads the most data files


def run(command, **kwargs):
    """Run a command (pip here); fail the test with its output if it fails."""
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, **kwargs)
    assert result.returncode == 0, f"{' '.join(map(str, command))} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result


@pytest.mark.kernel
def test_chapter_passes_nbval_alone_in_an_empty_folder(tmp_path):
    wheels, site_packages, cache, reader = (tmp_path / name for name in ("wheels", "site", "cache", "reader"))
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", wheels, ROOT])
    (wheel,) = wheels.glob("torchbook-*.whl")
    run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", site_packages, wheel])
    assert (site_packages / "torchbook" / "registry.json").is_file(), "the wheel must carry the data registry"

    reader.mkdir()
    notebook = reader / CHAPTER.with_suffix(".ipynb").name
    shutil.copy(CHAPTER.with_suffix(".ipynb"), notebook)

    env = {key: value for key, value in os.environ.items() if key != DATA_DIR_ENV}
    env.update(PYTHONPATH=str(site_packages), XDG_CACHE_HOME=str(cache))
    result = run_nbval(notebook, env=env)
    assert result.returncode == 0, result.stdout[-4000:]
    assert " passed" in result.stdout and "failed" not in result.stdout

    assert sorted(p.name for p in reader.iterdir()) == [notebook.name], "the chapter wrote files next to itself"
    fetched = cache / "torchbook" / "p1ch4" / "image-dog" / "bobby.jpg"
    assert fetched.is_file(), "the installed package should have fetched the data into its own cache"
