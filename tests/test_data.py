"""The data layer (torchbook/data.py): registry, fetch, mirror mode and its failure modes."""

from __future__ import annotations

import hashlib
import os
import re
import socket
from pathlib import Path

import pytest

from torchbook import data
from torchbook.data import DataIntegrityError, DataStore, DataUnavailableError, Registry

from .conftest import ROOT

GOOD = b"the bytes the registry expects\n" * 100
GOOD_SHA = hashlib.sha256(GOOD).hexdigest()


def tiny_registry(base_url: str) -> Registry:
    return Registry(
        {
            "upstreams": {"test": {"description": "", "base_url": base_url, "strip": "raw/"}},
            "datasets": {
                "toy": {
                    "title": "",
                    "upstream": "test",
                    "credit": "",
                    "licence": "",
                    "files": {"raw/dir with space/good.bin": GOOD_SHA, "raw/dir with space/other.bin": GOOD_SHA},
                }
            },
        }
    )


def closed_port_url() -> str:
    """An address on this machine where nothing listens: a download there fails like one without a network."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def no_network(url, destination):
    raise AssertionError(f"mirror mode must not download, but tried {url}")


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file())


# --- the registry -----------------------------------------------------------------------------


def test_real_registry_is_well_formed():
    registry = Registry.from_json(ROOT / "data" / "registry.json")
    assert len(registry) > 100
    for data_file in registry:
        assert re.fullmatch(r"[0-9a-f]{64}", data_file.sha256), data_file.path
        assert data_file.url.startswith("https://"), data_file.url
        assert " " not in data_file.url, data_file.url


def test_dlwpt_urls_are_pinned_to_one_commit_and_quoted():
    registry = Registry.from_json(ROOT / "data" / "registry.json")
    dicom = registry["p1ch4/volumetric-dicom/2-LUNG 3.0  B70f-04083/000000.dcm"]
    assert dicom.url == (
        "https://raw.githubusercontent.com/deep-learning-with-pytorch/dlwpt-code/"
        "d6c0210143daa133bbdeddaffc8993b1e17b5174/data/p1ch4/volumetric-dicom/2-LUNG%203.0%20%20B70f-04083/000000.dcm"
    )
    mnist = registry["MNIST/raw/train-images-idx3-ubyte.gz"]
    assert mnist.url.endswith("/mnist/train-images-idx3-ubyte.gz")


def test_unknown_name_suggests_close_matches(tmp_path):
    store = DataStore(Registry.from_json(ROOT / "data" / "registry.json"), tmp_path, download=no_network)
    with pytest.raises(KeyError, match="Did you mean 'p1ch4/image-dog/bobby.jpg'"):
        store.fetch("p1ch4/image-dog/boby.jpg")


def test_mirror_checksums_match_the_registry():
    """The offline mirror's own SHA256SUMS and the registry list the same files with the same hashes."""
    mirror = os.environ.get(data.MIRROR_ENV)
    if not mirror:
        pytest.skip(f"{data.MIRROR_ENV} is not set: no offline mirror to compare with")
    listed = {}
    for line in (Path(mirror) / "SHA256SUMS").read_text().splitlines():
        sha, path = line.split("  ", 1)
        listed[path] = sha
    registry = Registry.from_json(ROOT / "data" / "registry.json")
    assert {f.path: f.sha256 for f in registry} == listed


# --- downloading ------------------------------------------------------------------------------


def test_download_lands_verified_file(http_server, tmp_path):
    http_server.routes["/dir%20with%20space/good.bin"] = (GOOD, None)
    store = DataStore(tiny_registry(http_server.url("/")), tmp_path)
    path = store.fetch("raw/dir with space/good.bin")
    assert path == tmp_path / "raw/dir with space/good.bin"
    assert path.read_bytes() == GOOD
    assert leftovers(tmp_path) == ["good.bin"]


def test_offline_without_mirror_names_file_url_and_mirror_variable(tmp_path):
    base = closed_port_url()
    store = DataStore(tiny_registry(base), tmp_path)
    with pytest.raises(DataUnavailableError) as error:
        store.fetch("raw/dir with space/good.bin")
    message = str(error.value)
    assert "'raw/dir with space/good.bin'" in message
    assert base + "dir%20with%20space/good.bin" in message
    assert "BOOK_DATA_MIRROR" in message
    assert leftovers(tmp_path) == []


def test_download_with_wrong_hash_is_refused_and_not_kept(http_server, tmp_path):
    http_server.routes["/dir%20with%20space/good.bin"] = (b"something else entirely", None)
    store = DataStore(tiny_registry(http_server.url("/")), tmp_path)
    for _ in range(2):  # refused on the next call too
        with pytest.raises(DataIntegrityError) as error:
            store.fetch("raw/dir with space/good.bin")
        assert f"expected sha256 {GOOD_SHA}" in str(error.value)
        assert f"actual sha256   {hashlib.sha256(b'something else entirely').hexdigest()}" in str(error.value)
    assert leftovers(tmp_path) == []


def test_interrupted_download_leaves_no_file_at_the_final_path(http_server, tmp_path):
    # The server announces the whole file but closes the connection after a tenth of it.
    http_server.routes["/dir%20with%20space/good.bin"] = (GOOD[: len(GOOD) // 10], len(GOOD))
    store = DataStore(tiny_registry(http_server.url("/")), tmp_path)
    with pytest.raises((DataUnavailableError, DataIntegrityError)):
        store.fetch("raw/dir with space/good.bin")
    assert not (tmp_path / "raw/dir with space/good.bin").exists()
    assert leftovers(tmp_path) == []  # no partial file either


# --- the cached copy in data/ -----------------------------------------------------------------


def test_corrupt_cached_file_is_reported_and_never_accepted(tmp_path):
    store = DataStore(tiny_registry(closed_port_url()), tmp_path, download=no_network)
    cached = tmp_path / "raw/dir with space/good.bin"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(GOOD[:-10])  # truncated
    for _ in range(2):
        with pytest.raises(DataIntegrityError) as error:
            store.fetch("raw/dir with space/good.bin")
        message = str(error.value)
        assert f"expected sha256 {GOOD_SHA}" in message
        assert f"actual sha256   {hashlib.sha256(GOOD[:-10]).hexdigest()}" in message
        assert "Delete it (rm " in message and "fetch it again" in message
    # Following the advice fixes it.
    cached.unlink()
    mirror = tmp_path / "mirror"
    (mirror / "raw/dir with space").mkdir(parents=True)
    (mirror / "raw/dir with space/good.bin").write_bytes(GOOD)
    fixed = DataStore(store.registry, tmp_path, mirror=mirror, download=no_network)
    assert fixed.fetch("raw/dir with space/good.bin").read_bytes() == GOOD


# --- the offline mirror -----------------------------------------------------------------------


@pytest.fixture
def mirror(tmp_path):
    folder = tmp_path / "mirror"
    (folder / "raw/dir with space").mkdir(parents=True)
    for name in ("good.bin", "other.bin"):
        (folder / "raw/dir with space" / name).write_bytes(GOOD)
    return folder


def test_mirror_mode_copies_and_never_downloads(mirror, tmp_path):
    cache = tmp_path / "cache"
    store = DataStore(tiny_registry(closed_port_url()), cache, mirror=mirror, download=no_network)
    path = store.fetch("raw/dir with space/good.bin")
    assert path == cache / "raw/dir with space/good.bin"
    assert path.read_bytes() == GOOD
    assert store.fetch("raw/dir with space/good.bin") == path  # second call: verified copy reused


def test_fetching_a_folder_fetches_all_its_files(mirror, tmp_path):
    cache = tmp_path / "cache"
    store = DataStore(tiny_registry(closed_port_url()), cache, mirror=mirror, download=no_network)
    folder = store.fetch("raw/dir with space")
    assert folder == cache / "raw/dir with space"
    assert leftovers(folder) == ["good.bin", "other.bin"]


def test_corrupt_mirror_file_is_reported_and_never_accepted(mirror, tmp_path):
    (mirror / "raw/dir with space/good.bin").write_bytes(GOOD[:100])  # truncated in the mirror
    cache = tmp_path / "cache"
    store = DataStore(tiny_registry(closed_port_url()), cache, mirror=mirror, download=no_network)
    for _ in range(2):
        with pytest.raises(DataIntegrityError) as error:
            store.fetch("raw/dir with space/good.bin")
        message = str(error.value)
        assert str(mirror / "raw/dir with space/good.bin") in message
        assert f"expected sha256 {GOOD_SHA}" in message
        assert f"actual sha256   {hashlib.sha256(GOOD[:100]).hexdigest()}" in message
        assert "replace" in message and "unset BOOK_DATA_MIRROR" in message
    assert not (cache / "raw/dir with space/good.bin").exists()
    assert leftovers(cache) == []


def test_file_missing_from_mirror_says_where_to_get_it(mirror, tmp_path):
    (mirror / "raw/dir with space/good.bin").unlink()
    store = DataStore(tiny_registry("https://example.org/"), tmp_path / "cache", mirror=mirror, download=no_network)
    with pytest.raises(DataUnavailableError, match=r"missing from the offline mirror .*https://example.org/dir%20with%20space/good.bin"):
        store.fetch("raw/dir with space/good.bin")


def test_mirror_that_is_not_a_folder_is_a_clear_error(tmp_path):
    with pytest.raises(DataUnavailableError, match="BOOK_DATA_MIRROR is set to .* not a folder"):
        DataStore(tiny_registry("https://example.org/"), tmp_path, mirror=tmp_path / "nowhere")


def test_default_store_follows_the_environment(monkeypatch, mirror, tmp_path):
    monkeypatch.setenv(data.MIRROR_ENV, str(mirror))
    monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path / "elsewhere"))
    store = data.default_store()
    assert store.mirror == mirror.resolve()
    assert store.cache_dir == (tmp_path / "elsewhere").resolve()
    monkeypatch.delenv(data.MIRROR_ENV)
    monkeypatch.delenv(data.DATA_DIR_ENV)
    assert data.default_store().mirror is None
    assert data.default_store().cache_dir == ROOT / "data"  # in a checkout, the gitignored data/ folder


def test_torchvision_finds_mnist_where_the_data_layer_puts_it(monkeypatch, tmp_path):
    """With the real mirror: MNIST(root, download=True) reads the mirror's files and downloads nothing."""
    if not os.environ.get(data.MIRROR_ENV):
        pytest.skip(f"{data.MIRROR_ENV} is not set: no offline mirror to read MNIST from")
    from torchvision import datasets

    monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path))
    root = data.torchvision_root("MNIST")
    assert root == tmp_path
    assert sorted(p.name for p in (root / "MNIST" / "raw").iterdir()) == [
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
    ]
    test_split = datasets.MNIST(root, train=False, download=True)
    image, label = test_split[0]
    assert len(test_split) == 10_000
    assert image.size == (28, 28) and label == 7


def test_credits_list_every_dataset_with_its_upstream_and_licence():
    registry = Registry.from_json(ROOT / "data" / "registry.json")
    credits = data.credits_markdown(registry)
    for name, info in registry.datasets.items():
        assert f"**{info['title']}** (`{name}`)" in credits
        assert f"- licence: {info['licence']}" in credits
        assert registry.upstreams[info["upstream"]]["base_url"] in credits
    toy = data.credits_markdown(tiny_registry("https://example.org/"))
    assert "- files: 2 in `raw/dir with space/`" in toy
