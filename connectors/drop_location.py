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
import logging
import os
import stat
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, Protocol
from urllib.parse import unquote, urlsplit

log = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 20  # sha256 is streamed in 1 MiB chunks
DEFAULT_MIN_AGE_SECONDS = 30.0
# A modification time this far ahead of our clock is not a file being written (whose time is
# "now", give or take the file server's clock skew) but a wrong clock or a tampered date.
FUTURE_SLACK_SECONDS = 60.0
# Files that are not drops (yet), left alone without a word: Office and LibreOffice lock files,
# downloads and copies in progress (".x.part" too, hidden or not).
_TRANSIENT_PREFIXES = ("~$", ".~lock.")
_TRANSIENT_SUFFIXES = (".part", ".partial", ".tmp", ".temp", ".crdownload", ".download", "~")


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


@dataclass(frozen=True, slots=True)
class SkippedFile:
    """A file the location does not hand over, and why: `skipped` (hidden, dated in the
    future: it may land later) or `rejected` (it must never be read, e.g. a link out of the
    location). Recorded in ops.drop_file, so that no file is left out silently."""

    name: str
    size: int
    modified_at: datetime
    sha256: str  # of the content; of the link's target path for a link that is not followed
    state: Literal["skipped", "rejected"]
    reason: str


OnSkipped = Callable[[SkippedFile], None]


class DropLocation(Protocol):
    def list_files(self, on_skipped: OnSkipped | None = None) -> Iterator[DroppedFile]:
        """The files ready to land, in name order; each file left out is logged and passed to
        `on_skipped` (transient files, such as lock files and partial downloads, excepted)."""
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

    __slots__ = ("_folder", "_mtime_ns", "_sha256", "modified_at", "name", "path", "size")

    def __init__(
        self, path: Path, name: str, status: os.stat_result, folder: Path | None = None
    ) -> None:
        self.path = path
        self._folder = folder  # resolved; the file must still resolve inside it when read
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
        if self._folder is not None and _outside(self.path, self._folder):
            raise FileChangedError(f"{self.name} became a link out of the drop folder")

    def __repr__(self) -> str:
        modified = f"{self.modified_at:%Y-%m-%dT%H:%M:%SZ}"
        return f"LocalFile({self.name!r}, size={self.size}, modified_at={modified})"


class LocalFolder:
    """A local folder watched for drops (implements DropLocation).

    `pattern` is a glob relative to the folder ("*" = its files, not its subfolders;
    "**/*.xlsx" = recursive). Office lock files ("~$x.xlsx"), partial downloads (".part",
    ".crdownload", …) and files modified less than `min_age_seconds` ago (possibly still being
    written) are left for a later run without a word. Hidden files and files dated in the
    future are skipped, and a file resolving (through a link) outside the folder is rejected:
    these are logged and passed to `on_skipped`, to be recorded.
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

    def list_files(self, on_skipped: OnSkipped | None = None) -> Iterator[LocalFile]:
        if not self.folder.is_dir():
            raise FileNotFoundError(f"drop folder {self.folder} does not exist or is no folder")
        folder = self.folder.resolve()
        now_ns = time.time_ns()
        newest_allowed_ns = now_ns - int(self.min_age_seconds * 1e9)
        future_ns = now_ns + int(FUTURE_SLACK_SECONDS * 1e9)
        for path in sorted(self.folder.glob(self.pattern)):
            name = path.relative_to(self.folder).as_posix()
            if _transient(name):
                continue
            try:
                status = path.stat()
            except FileNotFoundError:  # removed since the folder was read (or a broken link)
                continue
            if not stat.S_ISREG(status.st_mode):
                continue
            # A link (or a linked subfolder) out of the folder would land whatever it points
            # at: rejected without reading it; its "content" is its target, as git stores links.
            if _outside(path, folder):
                target = str(path.resolve())
                link = path.lstat()
                _skip(
                    on_skipped,
                    SkippedFile(
                        name,
                        link.st_size,
                        datetime.fromtimestamp(link.st_mtime_ns / 1e9, UTC),
                        hashlib.sha256(f"link:{target}".encode()).hexdigest(),
                        "rejected",
                        f"{name}: a link to {target}, outside the drop folder; copy the file"
                        " into the folder instead",
                    ),
                )
                continue
            if status.st_mtime_ns > newest_allowed_ns and status.st_mtime_ns <= future_ns:
                continue  # possibly still being written: a later run lands it
            dropped = LocalFile(path, name, status, folder)
            if status.st_mtime_ns > future_ns:
                reason = (
                    f"{name}: modified at {dropped.modified_at:%Y-%m-%d %H:%M:%SZ}, in the"
                    " future; it lands once that time has passed (check the clock of the"
                    " machine that saved it)"
                )
            elif any(part.startswith(".") for part in name.split("/")):
                reason = f"{name}: a hidden file (its name starts with '.'); rename it to land it"
            else:
                yield dropped
                continue
            try:
                digest = dropped.sha256
            except FileChangedError:
                continue  # being written after all: the next run looks again
            _skip(
                on_skipped,
                SkippedFile(name, dropped.size, dropped.modified_at, digest, "skipped", reason),
            )

    def __repr__(self) -> str:
        return f"LocalFolder({str(self.folder)!r}, pattern={self.pattern!r})"


def _transient(name: str) -> bool:
    return any(
        part.startswith(_TRANSIENT_PREFIXES) or part.lower().endswith(_TRANSIENT_SUFFIXES)
        for part in name.split("/")
    )


def _outside(path: Path, folder: Path) -> bool:
    """Whether `path`, links resolved, is outside `folder` (resolved)."""
    return not path.resolve().is_relative_to(folder)


def _skip(on_skipped: OnSkipped | None, skipped: SkippedFile) -> None:
    log.warning("%s %s", skipped.state, skipped.reason)
    if on_skipped is not None:
        on_skipped(skipped)


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
