"""The results files of the benchmarks (bench/results/*.md): a section appended per run."""

from __future__ import annotations

import sys
from pathlib import Path


def append_section(path: Path, header: str, section: str) -> None:
    """Append `section` to `path`, writing `header` first when the file is new."""
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists()
    with path.open("a", encoding="utf-8") as out:
        if new:
            out.write(header)
        out.write(section)


def say(message: str) -> None:
    """A benchmark's progress line (stderr, so the results on stdout stay clean)."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def record_results(text: str, path: Path, title: str, module: str, *, write: bool) -> None:
    """Print a run's results and, when `write`, append them to `path` as a section (the file
    starts with `title` and where its sections come from)."""
    print(text)
    if write:
        header = f"# {title}\n\nAppended by `python -m {module}`; see `bench/README.md`.\n"
        append_section(path, header, "\n## " + text + "\n")
        say(f"results appended to bench/results/{path.name}")
