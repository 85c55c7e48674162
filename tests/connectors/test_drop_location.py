"""The watched drop location: a local folder, real files."""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.drop_location import (
    CHUNK_BYTES,
    FileChangedError,
    LocalFolder,
    SkippedFile,
    file_sha256,
    open_location,
)

OLD = datetime(2025, 3, 15, 2, 30, tzinfo=UTC)


def drop(folder: Path, name: str, content: bytes, *, at: datetime | None = OLD) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    if at is not None:
        os.utime(path, (at.timestamp(), at.timestamp()))
    return path


def names(folder: LocalFolder) -> list[str]:
    return [f.name for f in folder.list_files()]


def test_lists_ready_files_with_size_time_and_hash(tmp_path: Path) -> None:
    drop(tmp_path, "04_ninh_binh_2024.xlsx", b"workbook bytes")
    drop(tmp_path, "06_ninh_binh_2024.csv", b"STT;...")
    files = list(LocalFolder(tmp_path, min_age_seconds=0).list_files())
    assert [f.name for f in files] == ["04_ninh_binh_2024.xlsx", "06_ninh_binh_2024.csv"]
    first = files[0]
    assert first.size == len(b"workbook bytes")
    assert first.modified_at == OLD
    assert first.sha256 == hashlib.sha256(b"workbook bytes").hexdigest()
    with first.local_path() as path:
        assert path == tmp_path / "04_ninh_binh_2024.xlsx"


def test_the_same_file_dropped_twice_under_two_names_has_one_hash(tmp_path: Path) -> None:
    original = drop(tmp_path, "04_ninh_binh_2024.xlsx", os.urandom(3000))
    shutil.copyfile(original, tmp_path / "04_ninh_binh_2024 (1).xlsx")
    files = list(LocalFolder(tmp_path, min_age_seconds=0).list_files())
    assert len(files) == 2
    assert files[0].name != files[1].name
    assert files[0].sha256 == files[1].sha256


def test_hash_is_streamed_over_several_chunks(tmp_path: Path) -> None:
    content = os.urandom(2 * CHUNK_BYTES + 12345)
    path = drop(tmp_path, "big.csv", content)
    assert file_sha256(path) == hashlib.sha256(content).hexdigest()
    (listed,) = LocalFolder(tmp_path, min_age_seconds=0).list_files()
    assert listed.sha256 == hashlib.sha256(content).hexdigest()


def test_temporary_partial_and_hidden_files_and_folders_are_ignored(tmp_path: Path) -> None:
    for name in (
        "~$04_ninh_binh_2024.xlsx",  # Excel's lock file while the workbook is open
        ".06_ninh_binh_2024.csv.part",
        "08_ninh_binh_2024.xlsx.part",
        "08_ninh_binh_2024.xlsx.crdownload",
        "04_ninh_binh_2025.csv.tmp",
        ".hidden.csv",
        "2024/04_ninh_binh_2024.xlsx",  # a subfolder: not with the default pattern
    ):
        drop(tmp_path, name, b"x")
    drop(tmp_path, "04_ninh_binh_2024.xlsx", b"ready")
    assert names(LocalFolder(tmp_path, min_age_seconds=0)) == ["04_ninh_binh_2024.xlsx"]


def test_files_still_being_written_wait_for_a_later_run(tmp_path: Path) -> None:
    drop(tmp_path, "old.csv", b"x")
    drop(tmp_path, "new.csv", b"x", at=None)  # modified just now
    assert names(LocalFolder(tmp_path, min_age_seconds=60)) == ["old.csv"]
    assert names(LocalFolder(tmp_path, min_age_seconds=0)) == ["new.csv", "old.csv"]


def test_a_file_changed_after_listing_is_not_read(tmp_path: Path) -> None:
    path = drop(tmp_path, "04.csv", b"first")
    (listed,) = LocalFolder(tmp_path, min_age_seconds=0).list_files()
    path.write_bytes(b"second, longer")
    with pytest.raises(FileChangedError, match=r"04\.csv changed after it was listed"):
        listed.sha256  # noqa: B018 -- the property hashes
    with pytest.raises(FileChangedError), listed.local_path():
        pass
    path.unlink()
    with pytest.raises(FileChangedError, match=r"04\.csv was removed"), listed.local_path():
        pass


def test_a_glob_pattern_selects_and_recurses(tmp_path: Path) -> None:
    drop(tmp_path, "2024/04_ninh_binh_2024.xlsx", b"a")
    drop(tmp_path, "2024/06_ninh_binh_2024.csv", b"b")
    drop(tmp_path, "2025/~$04_ninh_binh_2025.xlsx", b"c")
    drop(tmp_path, ".trash/04_old.xlsx", b"d")
    folder = LocalFolder(tmp_path, pattern="**/*.xlsx", min_age_seconds=0)
    assert names(folder) == ["2024/04_ninh_binh_2024.xlsx"]


def test_a_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"drop folder .*nowhere does not exist"):
        list(LocalFolder(tmp_path / "nowhere").list_files())


def test_open_location_plain_path_and_file_url(tmp_path: Path) -> None:
    folder = tmp_path / "drops 2024"
    drop(folder, "04.csv", b"x")
    by_path = open_location(str(folder), min_age_seconds=0)
    by_url = open_location(folder.as_uri(), min_age_seconds=0)  # "drops%202024"
    assert "%20" in folder.as_uri()
    assert isinstance(by_path, LocalFolder) and isinstance(by_url, LocalFolder)
    assert by_path.folder == by_url.folder == folder
    assert names(by_url) == ["04.csv"]
    assert open_location(str(folder)).min_age_seconds == 30.0  # the default


@pytest.mark.parametrize("url", ["s3://bucket/drops/", "gs://bucket/drops", "sftp://host/x"])
def test_object_storage_is_not_implemented_yet_and_says_what_to_add(url: str) -> None:
    with pytest.raises(NotImplementedError) as caught:
        open_location(url)
    message = str(caught.value)
    assert repr(url.split(":")[0]) in message
    assert "implement DropLocation" in message and "open_location" in message


def test_a_file_url_on_another_host_is_refused() -> None:
    with pytest.raises(ValueError, match="must name a local path"):
        open_location("file://fileserver/share/drops")


def test_min_age_is_measured_against_now(tmp_path: Path) -> None:
    """A file modified 5 s ago is ready for a 2 s minimum age (no waiting in the test)."""
    five_seconds_ago = datetime.fromtimestamp(time.time() - 5, UTC)
    drop(tmp_path, "04.csv", b"x", at=five_seconds_ago)
    assert names(LocalFolder(tmp_path, min_age_seconds=2)) == ["04.csv"]
    assert names(LocalFolder(tmp_path, min_age_seconds=60)) == []


def test_links_out_hidden_and_future_files_are_passed_on_as_skipped(tmp_path: Path) -> None:
    """What list_files leaves out is said (logged, handed to `on_skipped`), but for transient
    files; a file still being written (young, hidden or not) just waits."""
    outside = drop(tmp_path / "elsewhere", "04.csv", b"not ours")
    folder = tmp_path / "drops"
    drop(folder, "2024/04_ok.csv", b"ours")
    (folder / "linked").symlink_to(outside.parent)  # a linked subfolder out of the folder
    drop(folder, ".hidden.csv", b"hidden")
    drop(folder, ".young.csv", b"young", at=None)
    drop(folder, "future.csv", b"future", at=datetime(2099, 1, 1, tzinfo=UTC))
    drop(folder, "~$04_ok.csv", b"lock")
    skipped: list[SkippedFile] = []
    for pattern in ("*", "*/*.csv"):
        folder_files = LocalFolder(folder, pattern=pattern, min_age_seconds=60)
        listed = list(folder_files.list_files(skipped.append))
    assert [f.name for f in listed] == ["2024/04_ok.csv"]
    by_name = {s.name: s for s in skipped}
    assert sorted(by_name) == [".hidden.csv", "future.csv", "linked/04.csv"]
    assert by_name["linked/04.csv"].state == "rejected"
    assert str(outside) in by_name["linked/04.csv"].reason
    assert by_name[".hidden.csv"].state == "skipped"
    assert by_name[".hidden.csv"].sha256 == hashlib.sha256(b"hidden").hexdigest()
    assert "2099-01-01" in by_name["future.csv"].reason
