"""The results files of the benchmarks (bench/results/*.md): a section appended per run."""

from __future__ import annotations

from pathlib import Path


def append_section(path: Path, header: str, section: str) -> None:
    """Append `section` to `path`, writing `header` first when the file is new."""
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists()
    with path.open("a", encoding="utf-8") as out:
        if new:
            out.write(header)
        out.write(section)
