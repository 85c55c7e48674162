"""Where spreadsheet drops arrive: a watched location, a local folder by default.

A location lists the files that are ready to land, each with its name, size, modification time
and content hash (sha256, which the landing uses to land each file once, whatever its name).
Reading goes through :meth:`DroppedFile.local_path`, so a location in object storage can later
download to a temporary file and hand that over; the reader never needs to know.

To add object storage (s3://, gs://): implement a ``DropLocation`` whose ``list_files`` yields
``DroppedFile`` objects (sha256 streamed from the object, or from a trusted checksum in its
metadata) and whose ``local_path`` downloads to a temporary file, then map its scheme in
:func:`open_location`.
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

CHUNK_BYTES = 1 << 20  # sha256 is streamed in 1 MiB chunks
DEFAULT_MIN_AGE_SECONDS = 30.0
# Files that are not drops (yet): Office lock files, hidden files (which covers ".x.part"),
# downloads and copies in progress.
_IGNORED_PREFIXES = ("~$", ".")
_IGNORED_SUFFIXES = (".part", ".partial", ".tmp", ".temp", ".crdownload", ".download", "~")


class DroppedFile(Protocol):
    """A file in a drop location, ready to land."""

    @property
    def name(self) -> str: ...  # relative to the location, "/"-separated

    @property
    def size(self) -> int: ...

    @property
    def modified_at(self) -> datetime: ...  # UTC

    @property
    def sha256(self) -> str: ...  # hex digest of the content

    def local_path(self) -> AbstractContextManager[Path]:
        """A local file with the content (object storage: a temporary download)."""
        ...


class DropLocation(Protocol):
    def list_files(self) -> Iterator[DroppedFile]:
        """The files ready to land, in name order."""
        ...


class FileChangedError(RuntimeError):
    """A dropped file changed between listing and reading; land it on the next run."""


def file_sha256(path: Path) -> str:
    """sha256 of the file's content, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


class LocalFile:
    """A file in a local folder. Its sha256 is computed on first use and kept."""

    __slots__ = ("_mtime_ns", "_sha256", "modified_at", "name", "path", "size")

    def __init__(self, path: Path, name: str, status: os.stat_result) -> None:
        self.path = path
        self.name = name
        self.size = status.st_size
        self._mtime_ns = status.st_mtime_ns
        self.modified_at = datetime.fromtimestamp(status.st_mtime_ns / 1e9, UTC)
        self._sha256: str | None = None

    @property
    def sha256(self) -> str:
        if self._sha256 is None:
            self._check_unchanged()
            digest = file_sha256(self.path)
            self._check_unchanged()  # it was not rewritten while being hashed
            self._sha256 = digest
        return self._sha256

    @contextmanager
    def local_path(self) -> Iterator[Path]:
        """The file itself, after checking it is still what was listed (size, mtime)."""
        self._check_unchanged()
        yield self.path

    def _check_unchanged(self) -> None:
        try:
            status = self.path.stat()
        except FileNotFoundError:
            raise FileChangedError(f"{self.name} was removed after it was listed") from None
        if status.st_size != self.size or status.st_mtime_ns != self._mtime_ns:
            raise FileChangedError(f"{self.name} changed after it was listed; it lands next run")

    def __repr__(self) -> str:
        modified = f"{self.modified_at:%Y-%m-%dT%H:%M:%SZ}"
        return f"LocalFile({self.name!r}, size={self.size}, modified_at={modified})"


class LocalFolder:
    """A local folder watched for drops (implements DropLocation).

    `pattern` is a glob relative to the folder ("*" = its files, not its subfolders;
    "**/*.xlsx" = recursive). Hidden files, Office lock files ("~$x.xlsx"), partial
    downloads (".part", ".crdownload", …) and files modified less than `min_age_seconds` ago
    (possibly still being written) are left for a later run.
    """

    def __init__(
        self,
        folder: Path,
        *,
        pattern: str = "*",
        min_age_seconds: float = DEFAULT_MIN_AGE_SECONDS,
    ) -> None:
        if min_age_seconds < 0:
            raise ValueError("min_age_seconds must be >= 0")
        self.folder = Path(folder)
        self.pattern = pattern
        self.min_age_seconds = min_age_seconds

    def list_files(self) -> Iterator[LocalFile]:
        if not self.folder.is_dir():
            raise FileNotFoundError(f"drop folder {self.folder} does not exist or is no folder")
        newest_allowed_ns = time.time_ns() - int(self.min_age_seconds * 1e9)
        for path in sorted(self.folder.glob(self.pattern)):
            name = path.relative_to(self.folder).as_posix()
            if _ignored(name):
                continue
            try:
                status = path.stat()
            except FileNotFoundError:  # removed since the folder was read
                continue
            if not stat.S_ISREG(status.st_mode) or status.st_mtime_ns > newest_allowed_ns:
                continue
            yield LocalFile(path, name, status)

    def __repr__(self) -> str:
        return f"LocalFolder({str(self.folder)!r}, pattern={self.pattern!r})"


def _ignored(name: str) -> bool:
    return any(
        part.startswith(_IGNORED_PREFIXES) or part.lower().endswith(_IGNORED_SUFFIXES)
        for part in name.split("/")
    )


def open_location(
    url: str, *, pattern: str = "*", min_age_seconds: float = DEFAULT_MIN_AGE_SECONDS
) -> DropLocation:
    """The drop location at `url`: "file:///abs/path" or a plain path is a local folder.

    Object storage (s3://, gs://, …) is not implemented yet: NotImplementedError says what to add.
    """
    parts = urlsplit(url)
    if len(parts.scheme) <= 1:  # a plain path (or a Windows drive letter)
        return LocalFolder(Path(url), pattern=pattern, min_age_seconds=min_age_seconds)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ValueError(f"{url}: a file URL must name a local path (file:///abs/path)")
        return LocalFolder(
            Path(unquote(parts.path)), pattern=pattern, min_age_seconds=min_age_seconds
        )
    raise NotImplementedError(
        f"drop location scheme {parts.scheme!r} is not supported yet (only local folders:"
        " file:///abs/path or a plain path). To add it, implement DropLocation for it in"
        " connectors/drop_location.py (list_files yielding DroppedFile with sha256, local_path"
        " downloading to a temporary file) and map the scheme in open_location"
    )
