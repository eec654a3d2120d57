"""The book's data layer: one registry of every file the chapters read, and `fetch`.

A chapter asks for a file by its path in the registry::

    path = fetch("p1ch4/image-dog/bobby.jpg")

and gets a local path to a copy whose sha256 matches the registry. The copy is
downloaded from the file's upstream URL, or, when the environment variable
``BOOK_DATA_MIRROR`` names a folder, copied from that offline mirror (same
relative paths) without touching the network. Every call checks the hash again,
so a damaged file is never accepted, and a file only reaches its final path
after its hash has been checked, so an interrupted transfer leaves nothing behind.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import shlex
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

MIRROR_ENV = "BOOK_DATA_MIRROR"
DATA_DIR_ENV = "BOOK_DATA_DIR"

_PACKAGE_DIR = Path(__file__).resolve().parent
_CHECKOUT_DATA_DIR = _PACKAGE_DIR.parent / "data"


class DataError(RuntimeError):
    """Base class of the data layer's errors."""


class DataUnavailableError(DataError):
    """A file could be neither downloaded nor found in the mirror."""


class DataIntegrityError(DataError):
    """A file's sha256 differs from the registry's."""


@dataclass(frozen=True)
class DataFile:
    path: str  # relative to the data folder and to the mirror; the registry's key
    sha256: str
    url: str
    dataset: str


class Registry:
    """Every file the book reads, read from ``data/registry.json``."""

    def __init__(self, spec: dict):
        self.upstreams: dict = spec["upstreams"]
        self.datasets: dict = spec["datasets"]
        self._files: dict[str, DataFile] = {}
        for dataset, info in self.datasets.items():
            upstream = self.upstreams[info["upstream"]]
            for path, sha256 in info["files"].items():
                remote = path.removeprefix(upstream["strip"])
                url = upstream["base_url"] + quote(remote)
                self._files[path] = DataFile(path, sha256, url, dataset)

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> Registry:
        return cls(json.loads(Path(path).read_text(encoding="utf-8")))

    def __iter__(self) -> Iterator[DataFile]:
        return iter(self._files.values())

    def __len__(self) -> int:
        return len(self._files)

    def __contains__(self, name: str) -> bool:
        return name in self._files or bool(self.files_under(name))

    def __getitem__(self, path: str) -> DataFile:
        try:
            return self._files[path]
        except KeyError:
            raise KeyError(self._unknown(path)) from None

    def files_under(self, folder: str) -> list[DataFile]:
        prefix = folder.rstrip("/") + "/"
        return [f for p, f in self._files.items() if p.startswith(prefix)]

    def _unknown(self, name: str) -> str:
        close = difflib.get_close_matches(name, self._files, n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        return f"{name!r} is not in the book's data registry (data/registry.json).{hint}"


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(url: str, destination: Path) -> None:
    import pooch  # imported here so that reading from a mirror never needs the network stack

    pooch.HTTPDownloader(progressbar=False, timeout=60)(url, str(destination), None)


class DataStore:
    """Keeps verified copies of registry files in ``cache_dir``.

    With ``mirror`` set, missing files are copied from that folder; without it they
    are downloaded from their upstream URLs.
    """

    def __init__(
        self,
        registry: Registry,
        cache_dir: str | os.PathLike,
        mirror: str | os.PathLike | None = None,
        download: Callable[[str, Path], None] = _download,
    ):
        self.registry = registry
        self.cache_dir = Path(cache_dir)
        self.mirror = Path(mirror).resolve() if mirror else None
        if self.mirror is not None and not self.mirror.is_dir():
            raise DataUnavailableError(
                f"{MIRROR_ENV} is set to {str(mirror)!r}, which is not a folder. "
                f"Point it at the book's offline data mirror, or unset it to download from upstream."
            )
        self._download = download

    def fetch(self, name: str) -> Path:
        """Return the local path of a registry file, or of a registry folder with all its files."""
        if name not in self.registry:
            raise KeyError(self.registry._unknown(name))
        folder_files = self.registry.files_under(name)
        if folder_files:
            for data_file in folder_files:
                self._fetch_file(data_file)
            return self.cache_dir / name.rstrip("/")
        return self._fetch_file(self.registry[name])

    def _fetch_file(self, data_file: DataFile) -> Path:
        target = self.cache_dir / data_file.path
        if target.exists():
            self._check(
                target,
                data_file,
                fix=f"Delete it (rm {shlex.quote(str(target))}) and fetch it again; "
                f"it will be {'copied from the mirror' if self.mirror else 'downloaded anew'}.",
            )
            return target
        if self.mirror is not None:
            source = self.mirror / data_file.path
            if not source.is_file():
                raise DataUnavailableError(
                    f"{data_file.path!r} is missing from the offline mirror {self.mirror} ({MIRROR_ENV}). "
                    f"Put the file from {data_file.url} there, or unset {MIRROR_ENV} to download it."
                )
            fix = (
                f"The mirror's copy is damaged: replace {source} with the file from {data_file.url}, "
                f"or unset {MIRROR_ENV} to download it."
            )
            self._install(target, data_file, lambda tmp: shutil.copyfile(source, tmp), fix, origin=source)
        else:
            fix = (
                f"The download from {data_file.url} is not the file the book expects. Try again later; "
                f"if it persists, the upstream file changed: please open an issue."
            )
            self._install(target, data_file, self._download_or_explain(data_file), fix, origin=data_file.url)
        return target

    def _download_or_explain(self, data_file: DataFile) -> Callable[[Path], None]:
        def download(tmp: Path) -> None:
            try:
                self._download(data_file.url, tmp)
            except Exception as error:  # requests' and urllib3's errors, whatever the cause
                raise DataUnavailableError(
                    f"Could not download {data_file.path!r} from {data_file.url}: {error}. "
                    f"Without a network, set {MIRROR_ENV} to a folder that holds the book's data "
                    f"under the same relative paths (see the README)."
                ) from error

        return download

    def _install(self, target: Path, data_file: DataFile, write: Callable[[Path], None], fix: str, origin) -> None:
        """Write to a temporary file beside ``target``; move it into place only once its hash is right."""
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
        os.close(handle)
        tmp = Path(tmp_name)
        try:
            write(tmp)
            self._check(tmp, data_file, fix=fix, shown_as=origin)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)

    @staticmethod
    def _check(path: Path, data_file: DataFile, fix: str, shown_as=None) -> None:
        actual = sha256_of(path)
        if actual != data_file.sha256:
            raise DataIntegrityError(
                f"{shown_as or path} does not match the registry entry {data_file.path!r}:\n"
                f"  expected sha256 {data_file.sha256}\n"
                f"  actual sha256   {actual}\n"
                f"{fix}"
            )


def registry_path() -> Path:
    """The registry file: inside the installed package, or in the checkout's ``data/`` folder."""
    for candidate in (_PACKAGE_DIR / "registry.json", _CHECKOUT_DATA_DIR / "registry.json"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("The book's data registry (data/registry.json) is missing.")


def default_data_dir() -> Path:
    """Where fetched files live: $BOOK_DATA_DIR, else the checkout's data/, else a user cache."""
    if os.environ.get(DATA_DIR_ENV):
        return Path(os.environ[DATA_DIR_ENV]).resolve()
    if (_CHECKOUT_DATA_DIR / "registry.json").is_file():
        return _CHECKOUT_DATA_DIR
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "torchbook"


def default_store() -> DataStore:
    """The store the chapters use, configured from the environment at call time."""
    return DataStore(
        Registry.from_json(registry_path()),
        default_data_dir(),
        mirror=os.environ.get(MIRROR_ENV) or None,
    )


def fetch(name: str) -> Path:
    """Return a verified local copy of a registry file (or folder of files). See the module's doc."""
    return default_store().fetch(name)


def torchvision_root(folder: str) -> Path:
    """Fetch a torchvision dataset's raw files (e.g. ``"MNIST"``) and return the ``root`` to give its class.

    torchvision looks for them in ``root/<folder>/raw/``; finding them verified there,
    ``datasets.MNIST(root, download=True)`` downloads nothing.
    """
    return fetch(folder).parent


def credits_markdown(registry: Registry | None = None) -> str:
    """Markdown that credits every dataset in the registry: its files, upstream, credit and licence."""
    registry = registry or Registry.from_json(registry_path())
    entries = []
    for name, info in registry.datasets.items():
        upstream = registry.upstreams[info["upstream"]]
        files = info["files"]
        folders = sorted({path.rsplit("/", 1)[0] + "/" for path in files})
        entries.append(
            f"**{info['title']}** (`{name}`)\n\n"
            f"- files: {len(files)} in {', '.join(f'`{folder}`' for folder in folders)}\n"
            f"- upstream: [{info['upstream']}]({upstream['base_url']})\n"
            f"- credit: {info['credit']}\n"
            f"- licence: {info['licence']}\n"
        )
    return "\n".join(entries)


def main(argv: list[str] | None = None) -> int:
    """``torchbook-fetch [NAME ...]``: fetch the named files or folders, or every file in the registry."""
    import sys

    names = sys.argv[1:] if argv is None else argv
    store = default_store()
    names = names or [data_file.path for data_file in store.registry]
    for name in names:
        store.fetch(name)
    source = f"the mirror {store.mirror}" if store.mirror else "upstream"
    print(f"{len(names)} registry entries verified in {store.cache_dir} (from {source})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
