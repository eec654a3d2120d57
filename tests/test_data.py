"""The data layer (torchbook/data.py): registry, fetch, mirror mode and its failure modes."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import socket
import zipfile
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlparse

import pytest

from torchbook import data
from torchbook.data import DataIntegrityError, DataStore, DataUnavailableError, Registry

from .conftest import ROOT, book_registry

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
    registry = book_registry()
    for data_file in registry:
        assert re.fullmatch(r"[0-9a-f]{64}", data_file.sha256), data_file.path
        path = PurePosixPath(data_file.path)
        assert not path.is_absolute() and ".." not in path.parts and str(path) == data_file.path, data_file.path
        url = urlparse(data_file.url)
        assert url.scheme == "https" and url.netloc, data_file.url
        upstream = registry.upstreams[registry.datasets[data_file.dataset]["upstream"]]
        # The URL names this very file: the upstream's base and the path, percent-encoded once.
        assert unquote(data_file.url) == upstream["base_url"] + data_file.path.removeprefix(upstream["strip"])
    for folder in registry.folders.values():
        assert re.fullmatch(r"[0-9a-f]{64}", folder.tree_sha256) and folder.file_count > 0, folder.path
        assert urlparse(folder.archive_url).scheme == "https" and folder.keep, folder.path
    used = {info["upstream"] for info in registry.datasets.values()}
    assert used == set(registry.upstreams), "an upstream no dataset uses, or a dataset whose upstream is missing"
    for name, info in registry.datasets.items():
        assert info["credit"].strip() and info["licence"].strip(), name
        assert info.get("files") or info.get("folders"), f"{name} lists no files"


def test_dlwpt_urls_are_pinned_to_one_commit_and_quoted():
    registry = book_registry()
    dicom = registry["p1ch4/volumetric-dicom/2-LUNG 3.0  B70f-04083/000000.dcm"]
    assert dicom.url == (
        "https://raw.githubusercontent.com/deep-learning-with-pytorch/dlwpt-code/"
        "d6c0210143daa133bbdeddaffc8993b1e17b5174/data/p1ch4/volumetric-dicom/2-LUNG%203.0%20%20B70f-04083/000000.dcm"
    )
    mnist = registry["MNIST/raw/train-images-idx3-ubyte.gz"]
    assert mnist.url.endswith("/mnist/train-images-idx3-ubyte.gz")


def test_unknown_name_suggests_close_matches(tmp_path):
    store = DataStore(book_registry(), tmp_path, download=no_network)
    with pytest.raises(KeyError, match="Did you mean 'p1ch4/image-dog/bobby.jpg'"):
        store.fetch("p1ch4/image-dog/boby.jpg")


def test_mirror_checksums_match_the_registry():
    """The offline mirror's own SHA256SUMS and the registry list the same files with the same hashes."""
    mirror = os.environ.get(data.MIRROR_ENV)
    if not mirror:
        pytest.skip(f"{data.MIRROR_ENV} is not set: no offline mirror to compare with (the data/ tests run anyway)")
    listed = {}
    for line in (Path(mirror) / "SHA256SUMS").read_text().splitlines():
        sha, path = line.split("  ", 1)
        listed[path] = sha
    registry = book_registry()
    for folder in registry.folders.values():
        # The folder's tree hash, recomputed from the mirror's own list of its files.
        inside = sorted(((p.removeprefix(folder.path + "/"), sha) for p, sha in listed.items() if p.startswith(folder.path + "/")), key=lambda i: i[0].encode())
        listing = "".join(f"{p}\t{sha}\n" for p, sha in inside)
        assert (hashlib.sha256(listing.encode()).hexdigest(), len(inside)) == (folder.tree_sha256, folder.file_count)
        listed = {p: sha for p, sha in listed.items() if not p.startswith(folder.path + "/")}
    assert {f.path: f.sha256 for f in registry} == listed


def test_fetched_data_matches_the_registry():
    """What `make data` fetched into data/ (from upstream or from a mirror) is what the registry lists."""
    registry = book_registry()
    missing = [name for name in registry.names() if not (ROOT / "data" / name).exists()]
    if missing:
        pytest.skip(f"run `make data` first: {len(missing)} registry entries are not in data/")
    for data_file in registry:
        assert data.sha256_of(ROOT / "data" / data_file.path) == data_file.sha256, data_file.path
    for folder in registry.folders.values():
        assert data.tree_sha256(ROOT / "data" / folder.path) == (folder.tree_sha256, folder.file_count)


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


@pytest.fixture
def mirror_store(mirror, tmp_path):
    """A store that copies from the mirror above into tmp_path/cache, and fails if it tries to download."""
    return DataStore(tiny_registry(closed_port_url()), tmp_path / "cache", mirror=mirror, download=no_network)


def test_mirror_mode_copies_and_never_downloads(mirror_store, tmp_path):
    store, cache = mirror_store, tmp_path / "cache"
    path = store.fetch("raw/dir with space/good.bin")
    assert path == cache / "raw/dir with space/good.bin"
    assert path.read_bytes() == GOOD
    assert store.fetch("raw/dir with space/good.bin") == path  # second call: verified copy reused


def test_fetching_a_folder_fetches_all_its_files(mirror_store, tmp_path):
    store, cache = mirror_store, tmp_path / "cache"
    folder = store.fetch("raw/dir with space")
    assert folder == cache / "raw/dir with space"
    assert leftovers(folder) == ["good.bin", "other.bin"]


def test_corrupt_mirror_file_is_reported_and_never_accepted(mirror, mirror_store, tmp_path):
    (mirror / "raw/dir with space/good.bin").write_bytes(GOOD[:100])  # truncated in the mirror
    store, cache = mirror_store, tmp_path / "cache"
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
    """MNIST(root, download=True) reads the verified files and downloads nothing.

    The files come from data/, where `make data` put them (from upstream or a mirror), used
    as the mirror of a fresh data folder: this runs wherever `make data` has run.
    """
    if not (ROOT / "data" / "MNIST" / "raw").is_dir():
        pytest.skip("run `make data` first: data/MNIST/raw is missing")
    from torchvision import datasets

    monkeypatch.setenv(data.MIRROR_ENV, str(ROOT / "data"))
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
    registry = book_registry()
    credits = data.credits_markdown(registry)
    for name, info in registry.datasets.items():
        assert f"**{info['title']}** (`{name}`)" in credits
        assert f"- licence: {info['licence']}" in credits
        assert registry.upstreams[info["upstream"]]["base_url"] in credits
    toy = data.credits_markdown(tiny_registry("https://example.org/"))
    assert "- files: 2 in `raw/dir with space/`" in toy


def test_credits_are_written_in_the_pages_language(monkeypatch):
    """The Korean edition's data-sources page runs the English code cell: the build's language picks the labels."""
    registry = book_registry()
    monkeypatch.delenv(data.LANGUAGE_ENV, raising=False)
    english = data.credits_markdown(registry)
    assert english == data.credits_markdown(registry, language="en")
    korean = data.credits_markdown(registry, language="ko")
    for name, info in registry.datasets.items():
        assert f"**{info['title']}** (`{name}`)" in korean
        assert f"- 라이선스: {info['licence']}" in korean and f"- 출처: {info['credit']}" in korean
        assert f"- 원본 위치: [{info['upstream']}]({registry.upstreams[info['upstream']]['base_url']})" in korean
    assert "- 파일: `CIFAR-10-images/`(`train/`, `test/`)에 60,000개" in korean
    assert "- files: 60,000 in `CIFAR-10-images/` (`train/`, `test/`)" in english
    assert not re.search(r"^- (files|upstream|credit|licence):", korean, re.MULTILINE)
    assert "- 파일: `raw/dir with space/`에 2개" in data.credits_markdown(tiny_registry("https://example.org/"), language="ko")
    for language, expected in (("ko", korean), ("ko_KR.UTF-8", korean), ("en", english), ("", english), ("fr", english)):
        monkeypatch.setenv(data.LANGUAGE_ENV, language)
        assert data.credits_markdown(registry) == expected, language
    with pytest.raises(ValueError, match="no labels for language 'fr'"):
        data.credits_markdown(registry, language="fr")


def test_each_edition_build_tells_the_kernels_its_language(monkeypatch):
    """_ext/language_switch.py puts Sphinx's ``language`` in BOOK_LANGUAGE, which the pages' kernels inherit."""
    import importlib.util
    from types import SimpleNamespace

    spec = importlib.util.spec_from_file_location("language_switch", ROOT / "_ext" / "language_switch.py")
    extension = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(extension)
    monkeypatch.setenv(data.LANGUAGE_ENV, "before")  # restored after the test
    for language, expected in (("ko", "ko"), ("en", "en"), (None, "en")):
        extension._export_language(None, SimpleNamespace(language=language))
        assert os.environ[data.LANGUAGE_ENV] == expected
        assert data.book_language() == expected


# --- folders: many files verified as one tree, fetched as one archive --------------------------

TREE = {"train/cat/0000.jpg": b"cat one", "train/dog/0000.jpg": b"dog one" * 50, "test/cat/0000.jpg": b"cat two"}
ARCHIVE_ROOT = "copy-0123abc"


def tree_hash_of(files: dict[str, bytes]) -> str:
    """The tree hash, computed here independently of torchbook.data."""
    lines = "".join(f"{path}\t{hashlib.sha256(body).hexdigest()}\n" for path, body in sorted(files.items(), key=lambda i: i[0].encode()))
    return hashlib.sha256(lines.encode()).hexdigest()


def folder_registry_spec(archive_url: str) -> dict:
    """A registry, as data/registry.json spells it, with one folder entry `images` holding TREE."""
    folder = {"archive_url": archive_url, "archive_root": ARCHIVE_ROOT, "keep": ["train", "test"],
              "tree_sha256": tree_hash_of(TREE), "file_count": len(TREE)}
    return {
        "upstreams": {"copy": {"description": "", "base_url": "https://example.org/copy/", "strip": ""}},
        "datasets": {"images": {"title": "", "upstream": "copy", "credit": "", "licence": "", "folders": {"images": folder}}},
    }


def folder_registry(archive_url: str) -> Registry:
    return Registry(folder_registry_spec(archive_url))


def write_tree(folder: Path, files: dict[str, bytes]) -> Path:
    for path, body in files.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes(body)
    return folder


def zipped(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{ARCHIVE_ROOT}/README.md", b"not part of the folder")
        for path, body in files.items():
            archive.writestr(f"{ARCHIVE_ROOT}/{path}", body)
    return buffer.getvalue()


def everything_in(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


@pytest.fixture
def folder_mirror(tmp_path):
    return write_tree(tmp_path / "mirror" / "images", TREE).parent


def test_tree_hash_follows_its_definition(tmp_path):
    assert data.tree_sha256(write_tree(tmp_path / "t", TREE)) == (tree_hash_of(TREE), 3)


def test_folder_from_mirror_is_verified_then_trusted_by_its_stamp(folder_mirror, tmp_path, monkeypatch):
    store = DataStore(folder_registry(closed_port_url()), tmp_path / "cache", mirror=folder_mirror, download=no_network)
    path = store.fetch("images")
    assert path == tmp_path / "cache" / "images"
    assert everything_in(tmp_path / "cache") == sorted(["images", "images/.torchbook-verified.json", "images/train", "images/test", "images/train/cat", "images/train/dog", "images/test/cat", *(f"images/{p}" for p in TREE)])

    def no_hashing(path):
        raise AssertionError("a stamped folder whose files are unchanged must not be rehashed")

    monkeypatch.setattr(data, "sha256_of", no_hashing)
    assert store.fetch("images") == path
    with pytest.raises(AssertionError, match="must not be rehashed"):
        store.fetch("images", verify=True)  # --verify rehashes all the same


def test_stamp_notices_a_changed_file_and_verify_catches_what_it_cannot(folder_mirror, tmp_path):
    store = DataStore(folder_registry(closed_port_url()), tmp_path / "cache", mirror=folder_mirror, download=no_network)
    path = store.fetch("images")
    cat = path / "train/cat/0000.jpg"
    status = cat.stat()
    cat.write_bytes(b"cat ONE")  # same size, new contents, new mtime
    with pytest.raises(DataIntegrityError, match="A file is missing, extra or altered"):
        store.fetch("images")
    os.utime(cat, ns=(status.st_atime_ns, status.st_mtime_ns))  # hide the change from the stamp
    assert store.fetch("images") == path  # the stamp trusts sizes and times...
    with pytest.raises(DataIntegrityError):
        store.fetch("images", verify=True)  # ...which is why `torchbook-fetch --verify` exists


@pytest.mark.parametrize("damage", ["missing", "extra", "altered"])
def test_damaged_folder_in_data_is_reported_and_refused_again(folder_mirror, tmp_path, damage):
    store = DataStore(folder_registry(closed_port_url()), tmp_path / "cache", mirror=folder_mirror, download=no_network)
    path = store.fetch("images")
    if damage == "missing":
        (path / "test/cat/0000.jpg").unlink()
    elif damage == "extra":
        (path / "test/cat/0001.jpg").write_bytes(b"a stray file")
    else:
        (path / "train/dog/0000.jpg").write_bytes(b"dog two" * 50)
    count = {"missing": 2, "extra": 4, "altered": 3}[damage]
    for _ in range(2):
        with pytest.raises(DataIntegrityError) as error:
            store.fetch("images")
        message = str(error.value)
        assert f"expected tree sha256 {tree_hash_of(TREE)} over 3 files" in message
        assert f"over {count} files" in message.splitlines()[2]
        assert f"rm -r {path}" in message and "copied from the mirror" in message


@pytest.mark.parametrize("damage", ["missing", "extra", "altered"])
def test_damaged_folder_in_mirror_is_refused_and_leaves_nothing(folder_mirror, tmp_path, damage):
    source = folder_mirror / "images"
    if damage == "missing":
        (source / "train/cat/0000.jpg").unlink()
    elif damage == "extra":
        (source / "train/cat/0001.jpg").write_bytes(b"a stray file")
    else:
        (source / "test/cat/0000.jpg").write_bytes(b"cat 2")
    cache = tmp_path / "cache"
    store = DataStore(folder_registry(closed_port_url()), cache, mirror=folder_mirror, download=no_network)
    with pytest.raises(DataIntegrityError) as error:
        store.fetch("images")
    assert f"The mirror's copy {source} is not the folder the book expects" in str(error.value)
    assert everything_in(cache) == []  # no half-copied folder, no .part folder


def test_folder_missing_from_mirror_says_what_to_put_there(tmp_path):
    (tmp_path / "empty-mirror").mkdir()
    store = DataStore(folder_registry("https://example.org/copy.zip"), tmp_path / "cache", mirror=tmp_path / "empty-mirror", download=no_network)
    with pytest.raises(DataUnavailableError, match=r"'images' is missing from the offline mirror .* folders train, test of the archive https://example.org/copy.zip"):
        store.fetch("images")


def test_a_folder_fetch_announces_each_stage_and_a_verified_folder_says_nothing(folder_mirror, http_server, tmp_path):
    http_server.routes["/copy.zip"] = (zipped(TREE), None)
    stages = []
    store = DataStore(folder_registry(http_server.url("/copy.zip")), tmp_path / "cache", report=stages.append)
    store.fetch("images")
    assert [stage.split(": ")[1].split(" ")[0] for stage in stages] == ["downloading", "unpacking", "checking", "ready"]
    stages.clear()
    store.fetch("images")
    assert stages == []  # trusted by its stamp: nothing to wait for, nothing to say

    stages.clear()
    from_mirror = DataStore(folder_registry(closed_port_url()), tmp_path / "other", mirror=folder_mirror,
                            download=no_network, report=stages.append)
    from_mirror.fetch("images")
    assert [stage.split(": ")[1].split(" ")[0] for stage in stages] == ["copying", "checking", "ready"]
    stages.clear()
    from_mirror.fetch("images", verify=True)
    assert [stage.split(": ")[1].split(" ")[0] for stage in stages] == ["checking"]


def test_folder_download_unpacks_only_the_kept_folders(http_server, tmp_path):
    http_server.routes["/copy.zip"] = (zipped(TREE), None)
    store = DataStore(folder_registry(http_server.url("/copy.zip")), tmp_path / "cache")
    path = store.fetch("images")
    assert {p: (path / p).read_bytes() for p in TREE} == TREE
    assert not (path / "README.md").exists()
    assert everything_in(tmp_path / "cache")[0:1] == ["images"]  # nothing beside it


@pytest.mark.parametrize("archive", ["truncated", "not a zip"])
def test_broken_archive_is_refused_and_leaves_nothing(http_server, tmp_path, archive):
    body = zipped(TREE)
    http_server.routes["/copy.zip"] = (body[: len(body) // 2] if archive == "truncated" else b"<html>rate limited</html>", None)
    store = DataStore(folder_registry(http_server.url("/copy.zip")), tmp_path / "cache")
    with pytest.raises(DataIntegrityError, match="is truncated or corrupt"):
        store.fetch("images")
    assert everything_in(tmp_path / "cache") == []


def test_archive_with_an_altered_file_is_refused(http_server, tmp_path):
    http_server.routes["/copy.zip"] = (zipped({**TREE, "test/cat/0000.jpg": b"cat 2"}), None)
    store = DataStore(folder_registry(http_server.url("/copy.zip")), tmp_path / "cache")
    with pytest.raises(DataIntegrityError, match="did not unpack into the folder the book expects"):
        store.fetch("images")
    assert everything_in(tmp_path / "cache") == []


def test_folder_without_network_or_mirror_names_the_archive_and_the_mirror_variable(tmp_path):
    url = closed_port_url() + "copy.zip"
    store = DataStore(folder_registry(url), tmp_path / "cache")
    with pytest.raises(DataUnavailableError) as error:
        store.fetch("images")
    assert f"Could not download 'images' from {url}" in str(error.value) and "BOOK_DATA_MIRROR" in str(error.value)
    assert everything_in(tmp_path / "cache") == []


def test_fetch_command_verifies_folders_on_request(folder_mirror, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(data, "registry_path", lambda: tmp_path / "registry.json")
    (tmp_path / "registry.json").write_text(json.dumps(folder_registry_spec("https://example.org/c.zip")))
    monkeypatch.setenv(data.MIRROR_ENV, str(folder_mirror))
    monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path / "cache"))
    assert data.main([]) == 0
    assert "1 registry entries verified" in capsys.readouterr().out
    damaged = tmp_path / "cache/images/test/cat/0000.jpg"
    status = damaged.stat()
    damaged.write_bytes(b"cat TWO")
    os.utime(damaged, ns=(status.st_atime_ns, status.st_mtime_ns))  # same size and time: the stamp cannot tell
    assert data.main(["images"]) == 0
    with pytest.raises(DataIntegrityError):
        data.main(["--verify", "images"])
