"""The book's data layer: one registry of every file the chapters read, and `fetch`.

A chapter asks for a file by its path in the registry::

    path = fetch("p1ch4/image-dog/bobby.jpg")

and gets a local path to a copy whose sha256 matches the registry. A registry *folder*
(``fetch("CIFAR-10-images")``, 60,000 files) is verified as a whole, by a tree hash over
all its files, and comes from an archive upstream; see `DataFolder`. The copy is
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
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
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


@dataclass(frozen=True)
class DataFolder:
    """A folder of many files, verified as a whole and fetched as one archive.

    Its *tree hash* is the sha256 of the UTF-8 text with one line ``relative/path<TAB>sha256<LF>``
    per file, paths relative to the folder with ``/`` separators, sorted bytewise. The archive's
    own bytes are not pinned (GitHub builds its zip archives on request), so what is verified is
    the extracted tree.
    """

    path: str  # the folder, relative to the data folder and to the mirror; the registry's key
    tree_sha256: str
    file_count: int
    archive_url: str
    archive_root: str  # the archive's top folder, which holds what the folder keeps
    keep: tuple[str, ...]  # the archive's subfolders that make up the folder
    dataset: str


class Registry:
    """Every file and folder the book reads, read from ``data/registry.json``."""

    def __init__(self, spec: dict):
        self.upstreams: dict = spec["upstreams"]
        self.datasets: dict = spec["datasets"]
        self._files: dict[str, DataFile] = {}
        self.folders: dict[str, DataFolder] = {}
        for dataset, info in self.datasets.items():
            upstream = self.upstreams[info["upstream"]]
            for path, sha256 in info.get("files", {}).items():
                remote = path.removeprefix(upstream["strip"])
                url = upstream["base_url"] + quote(remote)
                self._files[path] = DataFile(path, sha256, url, dataset)
            for path, folder in info.get("folders", {}).items():
                self.folders[path] = DataFolder(
                    path, folder["tree_sha256"], folder["file_count"], folder["archive_url"],
                    folder["archive_root"], tuple(folder["keep"]), dataset,
                )

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> Registry:
        return cls(json.loads(Path(path).read_text(encoding="utf-8")))

    def __iter__(self) -> Iterator[DataFile]:
        return iter(self._files.values())

    def __len__(self) -> int:
        return len(self._files)

    def __contains__(self, name: str) -> bool:
        return name in self._files or name in self.folders or bool(self.files_under(name))

    def names(self) -> list[str]:
        """Every file and folder entry, the way `fetch` names them."""
        return [*self._files, *self.folders]

    def __getitem__(self, path: str) -> DataFile:
        try:
            return self._files[path]
        except KeyError:
            raise KeyError(self._unknown(path)) from None

    def files_under(self, folder: str) -> list[DataFile]:
        prefix = folder.rstrip("/") + "/"
        return [f for p, f in self._files.items() if p.startswith(prefix)]

    def _unknown(self, name: str) -> str:
        close = difflib.get_close_matches(name, self.names(), n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        return f"{name!r} is not in the book's data registry (data/registry.json).{hint}"


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


VERIFIED_STAMP = ".torchbook-verified.json"  # inside a verified folder: its tree hash and a digest of its files' sizes and mtimes


def _files_in(folder: Path) -> list[tuple[str, str]]:
    """Every file under ``folder`` (but the stamp), as (``a/b.jpg``, full path), sorted bytewise by relative path."""
    found, pending = [], [("", str(folder))]
    while pending:  # os.scandir with plain strings: a stat of 60,000 files in well under a second
        prefix, directory = pending.pop()
        with os.scandir(directory) as entries:
            for entry in entries:
                relative = prefix + entry.name
                if entry.is_dir(follow_symlinks=False):
                    pending.append((relative + "/", entry.path))
                elif relative != VERIFIED_STAMP:
                    found.append((relative, entry.path))
    return sorted(found, key=lambda item: item[0].encode())


def tree_sha256(folder: str | os.PathLike) -> tuple[str, int]:
    """The tree hash of a folder (see `DataFolder`) and how many files it covers."""
    listing = hashlib.sha256()
    files = _files_in(Path(folder))
    for relative, path in files:
        listing.update(f"{relative}\t{sha256_of(path)}\n".encode())
    return listing.hexdigest(), len(files)


def _stat_digest(folder: Path) -> str:
    """A digest of every file's path, size and modification time: cheap, and changes when a file does."""
    digest = hashlib.sha256()
    for relative, path in _files_in(folder):
        status = os.stat(path)
        digest.update(f"{relative}\t{status.st_size}\t{status.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _download(url: str, destination: Path) -> None:
    import pooch  # imported here so that reading from a mirror never needs the network stack

    try:  # pooch draws a progress bar with tqdm, where it is installed
        import tqdm  # noqa: F401

        progressbar = True
    except ImportError:
        progressbar = False
    pooch.HTTPDownloader(progressbar=progressbar, timeout=60)(url, str(destination), None)


def _print_stage(message: str) -> None:
    print(message, flush=True)


class DataStore:
    """Keeps verified copies of registry files in ``cache_dir``.

    With ``mirror`` set, missing files are copied from that folder; without it they
    are downloaded from their upstream URLs. Fetching a folder takes a while the first
    time (60,000 files for CIFAR-10), so each of its stages is announced through
    ``report`` (by default printed); files, and folders already verified, say nothing.
    """

    def __init__(
        self,
        registry: Registry,
        cache_dir: str | os.PathLike,
        mirror: str | os.PathLike | None = None,
        download: Callable[[str, Path], None] = _download,
        report: Callable[[str], None] = _print_stage,
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
        self._report = report

    def fetch(self, name: str, verify: bool = False) -> Path:
        """Return the local path of a registry file, or of a registry folder with all its files.

        A folder entry verified before is trusted while its files' sizes and modification
        times are unchanged; ``verify=True`` rehashes every file anyway.
        """
        if name not in self.registry:
            raise KeyError(self.registry._unknown(name))
        if name in self.registry.folders:
            return self._fetch_folder(self.registry.folders[name], verify)
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
                fix=self._refetch_advice(f"rm {shlex.quote(str(target))}"),
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
            self._install(
                target, data_file, lambda tmp: self._download_or_explain(data_file.path, data_file.url, tmp),
                fix, origin=data_file.url,
            )
        return target

    def _download_or_explain(self, name: str, url: str, destination: Path) -> None:
        """Download a file or a folder's archive; without a network, say how to work offline."""
        try:
            self._download(url, destination)
        except Exception as error:  # requests' and urllib3's errors, whatever the cause
            raise DataUnavailableError(
                f"Could not download {name!r} from {url}: {error}. "
                f"Without a network, set {MIRROR_ENV} to a folder that holds the book's data "
                f"under the same relative paths (see the README)."
            ) from error

    def _refetch_advice(self, delete_command: str) -> str:
        """How to replace a damaged copy in the data folder."""
        source = "copied from the mirror" if self.mirror else "downloaded anew"
        return f"Delete it ({delete_command}) and fetch it again; it will be {source}."

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

    # --- folders -------------------------------------------------------------------------

    def _fetch_folder(self, folder: DataFolder, verify: bool) -> Path:
        target = self.cache_dir / folder.path
        if target.exists():
            if not verify and self._stamp_matches(target, folder):
                return target
            self._report(f"{folder.path}: checking {folder.file_count:,} files against the registry's hash ...")
            self._check_tree(target, folder, self._refetch_advice(f"rm -r {shlex.quote(str(target))}"))
            self._write_stamp(target, folder)
            return target
        if self.mirror is not None:
            source = self.mirror / folder.path
            if not source.is_dir():
                raise DataUnavailableError(
                    f"The folder {folder.path!r} is missing from the offline mirror {self.mirror} ({MIRROR_ENV}). "
                    f"Put the folders {', '.join(folder.keep)} of the archive {folder.archive_url} there, "
                    f"or unset {MIRROR_ENV} to download it."
                )
            fix = (
                f"The mirror's copy {source} is not the folder the book expects: replace it with the folders "
                f"{', '.join(folder.keep)} of {folder.archive_url}, or unset {MIRROR_ENV} to download it."
            )
            self._report(f"{folder.path}: copying {folder.file_count:,} files from the mirror {source} ...")
            self._install_folder(target, folder, lambda tmp: shutil.copytree(source, tmp, dirs_exist_ok=True), fix)
        else:
            fix = (
                f"The archive {folder.archive_url} did not unpack into the folder the book expects. Try again "
                f"later; if it persists, the upstream changed: please open an issue."
            )
            self._install_folder(target, folder, lambda tmp: self._download_and_unpack(folder, tmp), fix)
        return target

    def _download_and_unpack(self, folder: DataFolder, destination: Path) -> None:
        archive = destination / ".archive.zip"
        self._report(f"{folder.path}: downloading {folder.archive_url} ...")
        self._download_or_explain(folder.path, folder.archive_url, archive)
        self._report(f"{folder.path}: unpacking {folder.file_count:,} files ...")
        try:
            with zipfile.ZipFile(archive) as zipped:
                for member in zipped.infolist():
                    parts = PurePosixPath(member.filename).parts
                    if member.is_dir() or len(parts) < 3 or parts[0] != folder.archive_root or parts[1] not in folder.keep:
                        continue  # the repository's other files, and folder entries
                    if ".." in parts or any("\\" in part for part in parts):
                        raise DataIntegrityError(f"{folder.archive_url} holds an unsafe path: {member.filename!r}")
                    out = destination.joinpath(*parts[1:])
                    out.parent.mkdir(parents=True, exist_ok=True)
                    with zipped.open(member) as stream, open(out, "wb") as written:
                        shutil.copyfileobj(stream, written)
        except (zipfile.BadZipFile, EOFError, zlib.error) as error:
            raise DataIntegrityError(
                f"The archive downloaded from {folder.archive_url} is truncated or corrupt ({error}). "
                f"Fetch it again; nothing was kept."
            ) from error
        finally:
            archive.unlink(missing_ok=True)

    def _install_folder(self, target: Path, folder: DataFolder, write: Callable[[Path], None], fix: str) -> None:
        """Fill a temporary folder beside ``target``; rename it into place only once its tree hash is right."""
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent))
        try:
            write(tmp)
            self._report(f"{folder.path}: checking {folder.file_count:,} files against the registry's hash ...")
            self._check_tree(tmp, folder, fix)
            self._write_stamp(tmp, folder)
            os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        self._report(f"{folder.path}: ready in {target}")

    @staticmethod
    def _check_tree(path: Path, folder: DataFolder, fix: str) -> None:
        actual, count = tree_sha256(path)
        if actual != folder.tree_sha256 or count != folder.file_count:
            files = f"{count:,} files" + ("" if count == folder.file_count else f" where {folder.file_count:,} are expected")
            raise DataIntegrityError(
                f"The folder {path} ({files}) does not match the registry entry {folder.path!r}:\n"
                f"  expected tree sha256 {folder.tree_sha256} over {folder.file_count:,} files\n"
                f"  actual tree sha256   {actual} over {count:,} files\n"
                f"A file is missing, extra or altered. {fix}"
            )

    @staticmethod
    def _write_stamp(path: Path, folder: DataFolder) -> None:
        stamp = {"tree_sha256": folder.tree_sha256, "files": _stat_digest(path)}
        (path / VERIFIED_STAMP).write_text(json.dumps(stamp) + "\n", encoding="utf-8")

    @staticmethod
    def _stamp_matches(path: Path, folder: DataFolder) -> bool:
        try:
            stamp = json.loads((path / VERIFIED_STAMP).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return stamp.get("tree_sha256") == folder.tree_sha256 and stamp.get("files") == _stat_digest(path)


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


def fetch(name: str, verify: bool = False) -> Path:
    """Return a verified local copy of a registry file (or folder of files). See the module's doc."""
    return default_store().fetch(name, verify=verify)


def torchvision_root(folder: str) -> Path:
    """Fetch a torchvision dataset's raw files (e.g. ``"MNIST"``) and return the ``root`` to give its class.

    torchvision looks for them in ``root/<folder>/raw/``; finding them verified there,
    ``datasets.MNIST(root, download=True)`` downloads nothing.
    """
    return fetch(folder).parent


# The words of the credits list (`credits_markdown`) in each edition's language, in one place.
# "files" is how many files a dataset has in which folder; "kept" names a folder's subfolders.
CREDITS_LABELS = {
    "en": {
        "files": "files", "upstream": "upstream", "credit": "credit", "licence": "licence",
        "in": "{count} in {where}", "kept": "{where} ({kept})", "separator": "; ",
    },
    "ko": {
        "files": "파일", "upstream": "원본 위치", "credit": "출처", "licence": "라이선스",
        "in": "{where}에 {count}개", "kept": "{where}({kept})", "separator": ", ",
    },
}
LANGUAGE_ENV = "BOOK_LANGUAGE"  # the language of the page being built; the book's Sphinx extension sets it


def book_language() -> str:
    """The language of the page whose code is running: ``ko`` while the Korean edition is built, else ``en``.

    Both editions run the same code cells (the Korean pages' code is the English code), so a
    cell cannot name its language; the Korean build says it in ``BOOK_LANGUAGE`` instead
    (_ext/language_switch.py), which the kernel that runs the page inherits.
    """
    language = (os.environ.get(LANGUAGE_ENV) or "en").split("_")[0].split("-")[0].lower()
    return language if language in CREDITS_LABELS else "en"


def credits_markdown(registry: Registry | None = None, language: str | None = None) -> str:
    """Markdown that credits every dataset in the registry: its files, upstream, credit and licence.

    ``language`` (``"en"`` or ``"ko"``; by default `book_language()`) is the language of its labels;
    titles, credits and licences are the registry's own text.
    """
    registry = registry or Registry.from_json(registry_path())
    language = language or book_language()
    if language not in CREDITS_LABELS:
        raise ValueError(f"credits_markdown: no labels for language {language!r} (only {', '.join(CREDITS_LABELS)})")
    words = CREDITS_LABELS[language]
    entries = []
    for name, info in registry.datasets.items():
        upstream = registry.upstreams[info["upstream"]]
        files = info.get("files", {})
        folders = sorted({path.rsplit("/", 1)[0] + "/" for path in files})
        where = [words["in"].format(count=len(files), where=", ".join(f"`{folder}`" for folder in folders))] if files else []
        for path, folder in info.get("folders", {}).items():
            kept = words["kept"].format(where=f"`{path}/`", kept=", ".join(f"`{kept}/`" for kept in folder["keep"]))
            where.append(words["in"].format(count=f"{folder['file_count']:,}", where=kept))
        entries.append(
            f"**{info['title']}** (`{name}`)\n\n"
            f"- {words['files']}: {words['separator'].join(where)}\n"
            f"- {words['upstream']}: [{info['upstream']}]({upstream['base_url']})\n"
            f"- {words['credit']}: {info['credit']}\n"
            f"- {words['licence']}: {info['licence']}\n"
        )
    return "\n".join(entries)


def main(argv: list[str] | None = None) -> int:
    """``torchbook-fetch [--verify] [NAME ...]``: fetch the named files or folders, or everything in the registry.

    ``--verify`` rehashes folders verified before (files are always rehashed).
    """
    import sys

    names = sys.argv[1:] if argv is None else list(argv)
    verify = "--verify" in names
    names = [name for name in names if name != "--verify"]
    store = default_store()
    names = names or store.registry.names()
    for name in names:
        store.fetch(name, verify=verify)
    source = f"the mirror {store.mirror}" if store.mirror else "upstream"
    print(f"{len(names)} registry entries verified in {store.cache_dir} (from {source})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
