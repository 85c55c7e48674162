"""Extract+land benchmark: the registry connector and landing against a plain PostgreSQL COPY.

    .venv/bin/python -m bench.extract_land [--records 1000000] [--page-size 10000] [--repeat 1]
    .venv/bin/python -m bench.extract_land --records 20000 --no-write    # smoke, seconds

Starts the stand-in registry with ``--records`` S&T tasks and creates a fresh database (on
WAREHOUSE_URL's server, else on the embedded one, which is started if needed), dropped at the
end. The baseline rows are built in memory and copied once, untimed, as a warm-up (a fresh
server's first big load also creates its WAL files). Then, ``--repeat`` times, starting from
empty tables each time:

1. **Plain COPY (the baseline).** The same rows the landing writes, built beforehand in this
   process through the landing's own row code from one extraction of the stand-in, are copied
   from memory with a binary COPY into ``bench.plain_copy`` (``like raw.landed_record including
   all``: same columns, identity, indexes) in one transaction. Reported as rows/s.
2. **Extract+land.** :func:`connectors.jobs.extract_and_land_registry` runs in a child process
   (``python -m bench.land_child``), timed inside the child; records/s = records landed /
   seconds. The child's peak resident memory is the extracting process's alone (``VmHWM``;
   see :mod:`bench.land_child` for why not ``ru_maxrss``).

Both loads are then checked to hold the same rows. The ratio of the two rates is the figure to
read on a shared, noisy machine. Targets: ratio >= 50 %, peak < 500 MB. The results are
printed and appended to ``bench/results/extract_land.md`` (unless ``--no-write``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson
import psycopg
from psycopg.types.json import set_json_dumps

from connectors import landing
from connectors.contract_rules import api_rules
from connectors.jobs import REGISTRY_API_V1_PATHS
from connectors.registry_api import MAX_PAGE_SIZE, RegistryClient
from connectors.warehouse import ensure_schema
from local.postgres import drop_database, ensure_database
from local.registry.process import RunningRegistry, run_registry
from local.warehouse import local_server

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS = REPO_ROOT / "bench" / "results" / "extract_land.md"

TARGET_RATIO = 0.50  # extract+land rate / plain COPY rate, at least
TARGET_PEAK_MB = 500.0  # peak RSS of the extracting process, below

SOURCE_ID = "bench_registry"
ENTITY = "st_task"
BASELINE_BATCH_ID = 1

_PAYLOAD = 9  # position of the payload in a landed row (landing.COPY_SQL)
_BASELINE_COPY_SQL = landing.COPY_SQL.replace("raw.landed_record", "bench.plain_copy")
_RESET_SQL = "truncate raw.landed_record, ops.load_batch, bench.plain_copy restart identity cascade"
# What a landed row is, minus what differs between two loads of it (ids, batch, timestamps).
_CONTENT_DIGEST_SQL = (
    "select count(*), coalesce(sum(hashtextextended(concat_ws('|', source_id, entity,"
    " record_id, version, updated_at, deleted, encode(checksum, 'hex'), payload::text,"
    " landing_issue, standardised::text, repairs::text), 0)::numeric), 0) from {}"
)


@dataclass(frozen=True)
class Run:
    records: int  # records landed by extract+land
    seconds: float
    peak_mb: float
    baseline_rows: int
    baseline_seconds: float

    @property
    def rate(self) -> float:
        return self.records / self.seconds

    @property
    def baseline_rate(self) -> float:
        return self.baseline_rows / self.baseline_seconds

    @property
    def ratio(self) -> float:
        return self.rate / self.baseline_rate

    @property
    def passed(self) -> bool:
        return self.ratio >= TARGET_RATIO and self.peak_mb < TARGET_PEAK_MB


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.extract_land",
        description="Extract+land from the stand-in registry vs a plain COPY of the same rows.",
    )
    parser.add_argument("--records", type=int, default=1_000_000, help="default: %(default)s")
    parser.add_argument("--page-size", type=int, default=MAX_PAGE_SIZE, help="default: %(default)s")
    parser.add_argument("--repeat", type=int, default=1, help="runs of both loads (default 1)")
    parser.add_argument(
        "--no-write", action="store_true", help=f"do not append to {RESULTS.relative_to(REPO_ROOT)}"
    )
    parser.add_argument(
        "--note", default="", help="a remark for the results section, e.g. what changed"
    )
    parser.add_argument(
        "--profile",
        metavar="FILE",
        type=Path,
        help="run extract+land under cProfile and write its stats to FILE (implies --no-write:"
        " the profiler slows it down); read them with python -m pstats FILE",
    )
    args = parser.parse_args(argv)
    if args.profile is not None:
        args.no_write = True
        args.profile = args.profile.resolve()
    if args.records < 1 or args.repeat < 1:
        parser.error("--records and --repeat must be at least 1")
    if not 1 <= args.page_size <= MAX_PAGE_SIZE:
        parser.error(f"--page-size must be from 1 to {MAX_PAGE_SIZE}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started_at = datetime.now(UTC)
    with fresh_database() as (url, server):
        ensure_schema(url)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("create schema bench")
            conn.execute("create table bench.plain_copy (like raw.landed_record including all)")
            pg_version = conn.execute("show server_version").fetchone()[0]
        _say(f"stand-in registry: starting with {args.records:,} records")
        with run_registry(records=args.records) as registry:
            _say("baseline: building the landing rows in memory (one extraction) ...")
            rows = rows_in_memory(registry, args.page_size)
            _say(f"baseline: {len(rows):,} rows in memory ({_own_rss_mb():.0f} MB resident)")
            # The first load into a fresh server creates its WAL files and warms its caches;
            # later loads recycle them. Pay that once, untimed, so run 1 is like the others.
            _say("warm-up: one untimed plain COPY ...")
            plain_copy(url, rows)
            runs = []
            for number in range(1, args.repeat + 1):
                runs.append(one_run(url, registry, rows, args.page_size, args.profile))
                _say(_run_line(number, runs[-1]))
            del rows
    machine = machine_description(server, pg_version)
    print()
    print(report(args, runs, machine, started_at))
    if not args.no_write:
        append_results(args, runs, machine, started_at)
        _say(f"results appended to {RESULTS.relative_to(REPO_ROOT)}")
    return 0 if verdict(runs) else 1


# --- Database -------------------------------------------------------------------------------


@contextmanager
def fresh_database() -> Iterator[tuple[str, str]]:
    """A new database on WAREHOUSE_URL's server or the embedded one; dropped on exit."""
    configured = os.environ.get("WAREHOUSE_URL")
    if configured:
        admin_url, server = configured, "WAREHOUSE_URL"
    else:
        admin_url, server = local_server().start(), "embedded (.local/postgres)"
    dbname = f"bench_extract_land_{uuid.uuid4().hex[:12]}"
    ensure_database(admin_url, dbname)
    _say(f"database {dbname} created on the {server} server")
    try:
        yield _with_database(admin_url, dbname), server
    finally:
        drop_database(admin_url, dbname)
        _say(f"database {dbname} dropped")


def _with_database(url: str, dbname: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{dbname}"))


def _checkpoint(conn: psycopg.Connection) -> None:
    """Flush dirty buffers before a timed load, so neither load pays for the other's."""
    # Without the right (superuser or pg_checkpoint) on WAREHOUSE_URL's server: more noise.
    with suppress(psycopg.errors.InsufficientPrivilege):
        conn.execute("checkpoint")


# --- The two loads --------------------------------------------------------------------------


def rows_in_memory(registry: RunningRegistry, page_size: int) -> list[tuple[Any, ...]]:
    """Every row the landing would COPY for a full extraction, through the landing's code.

    Two passes keep this process's memory near the size of the rows themselves: first the
    records of each page as compact JSON, then each one parsed on its own and turned into its
    row. Built page by page, the short-lived parsed pages would leave the heap fragmented
    around the long-lived rows. The JSON is copied to an exact-size ``bytes``: orjson returns
    its output in a buffer of several KiB, harmless for the landing (which drops each payload
    once sent) but ten times the payload when a million of them are kept.
    """
    with RegistryClient(
        registry.base_url, registry.client_id, registry.client_secret, page_size=page_size
    ) as client:
        documents: list[bytes | None] = [
            _compact(orjson.dumps(record))
            for page in client.iter_pages(REGISTRY_API_V1_PATHS[ENTITY])
            for record in page.records
        ]
    extracted_at = datetime.now(UTC)
    rules = api_rules("registry-api-v1", ENTITY)  # the same standardisation as the job's
    rows: list[tuple[Any, ...]] = []
    for index, document in enumerate(documents):
        documents[index] = None  # release as we go
        (row,) = landing.landed_rows(
            [orjson.loads(document)], BASELINE_BATCH_ID, SOURCE_ID, ENTITY, extracted_at, rules
        )
        rows.append((*row[:_PAYLOAD], _compact(row[_PAYLOAD]), *row[_PAYLOAD + 1 :]))
    return rows


def _compact(data: bytes) -> bytes:
    return bytes(memoryview(data))


def one_run(
    url: str, registry: RunningRegistry, rows: list[tuple], page_size: int, profile: Path | None
) -> Run:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(_RESET_SQL)
        _checkpoint(conn)
    baseline_seconds = plain_copy(url, rows)
    with psycopg.connect(url, autocommit=True) as conn:
        _checkpoint(conn)
    child = extract_and_land_in_child(url, registry, page_size, profile)
    check_same_rows(url)
    return Run(
        records=child["landed"],
        seconds=child["seconds"],
        peak_mb=child["peak_rss_kib"] / 1024,
        baseline_rows=len(rows),
        baseline_seconds=baseline_seconds,
    )


def plain_copy(url: str, rows: list[tuple]) -> float:
    """Seconds to COPY `rows` from memory into bench.plain_copy in one transaction."""
    with psycopg.connect(url, autocommit=True) as conn:
        # As the landing does: the payload is already JSON bytes, sent as-is.
        set_json_dumps(landing.pass_through_json, context=conn)
        started = time.perf_counter()
        with conn.transaction(), conn.cursor().copy(_BASELINE_COPY_SQL) as copy:
            copy.set_types(landing.COPY_TYPES)
            for row in rows:
                copy.write_row(row)
        return time.perf_counter() - started


def extract_and_land_in_child(
    url: str, registry: RunningRegistry, page_size: int, profile: Path | None = None
) -> dict[str, Any]:
    """Run extract+land in a fresh interpreter; its report (see bench.land_child)."""
    job = {
        "warehouse_url": url,
        "source_id": SOURCE_ID,
        "entity": ENTITY,
        "base_url": registry.base_url,
        "client_id": registry.client_id,
        "client_secret": registry.client_secret,
        "page_size": page_size,
        "profile": None if profile is None else str(profile),
    }
    completed = subprocess.run(
        [sys.executable, "-m", "bench.land_child"],
        input=json.dumps(job),
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"extract+land child failed with exit code {completed.returncode}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def check_same_rows(url: str) -> None:
    """Both loads must hold the same rows, or the comparison means nothing."""
    with psycopg.connect(url, autocommit=True) as conn:
        landed = conn.execute(_CONTENT_DIGEST_SQL.format("raw.landed_record")).fetchone()
        copied = conn.execute(_CONTENT_DIGEST_SQL.format("bench.plain_copy")).fetchone()
    if landed != copied:
        raise RuntimeError(
            f"extract+land and the plain COPY hold different rows: {landed[0]:,} rows vs "
            f"{copied[0]:,} (or the same count with different content)"
        )


# --- Reporting ------------------------------------------------------------------------------


def machine_description(server: str, pg_version: str) -> str:
    cpus = len(os.sched_getaffinity(0))
    memory_gib = _mem_total_kib() / 1024 / 1024
    return (
        f"{cpus} CPUs (nproc), {memory_gib:.1f} GiB RAM, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}, PostgreSQL {pg_version} "
        f"({server}), commit {_git_commit()}"
    )


def _mem_total_kib() -> int:
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                return int(line.split()[1])
    return 0


def _git_commit() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "connectors", "bench"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" + uncommitted changes in connectors/ or bench/" if dirty else "")


def verdict(runs: list[Run]) -> bool:
    """PASS when the median ratio meets the target and no run's peak memory exceeds it."""
    return (
        statistics.median(run.ratio for run in runs) >= TARGET_RATIO
        and max(run.peak_mb for run in runs) < TARGET_PEAK_MB
    )


def _run_line(number: int, run: Run) -> str:
    return (
        f"run {number}: extract+land {run.records:,} in {run.seconds:.1f} s = {run.rate:,.0f}/s;"
        f" plain COPY {run.baseline_rate:,.0f} rows/s; ratio {run.ratio:.0%};"
        f" peak {run.peak_mb:.0f} MB"
    )


def _table(runs: list[Run]) -> list[str]:
    lines = [
        "| run | records landed | extract+land s | records/s | plain COPY s | plain COPY rows/s "
        "| ratio | peak MB | result |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|:--|",
    ]
    for number, run in enumerate(runs, 1):
        lines.append(
            f"| {number} | {run.records:,} | {run.seconds:.1f} | {run.rate:,.0f} "
            f"| {run.baseline_seconds:.1f} | {run.baseline_rate:,.0f} | {run.ratio:.0%} "
            f"| {run.peak_mb:.0f} | {'PASS' if run.passed else 'FAIL'} |"
        )
    return lines


def _summary(runs: list[Run]) -> str:
    ratios = [run.ratio for run in runs]
    rates = [run.rate for run in runs]
    text = (
        f"**{'PASS' if verdict(runs) else 'FAIL'}** (targets: ratio >= {TARGET_RATIO:.0%}, "
        f"peak < {TARGET_PEAK_MB:.0f} MB) -- median ratio {statistics.median(ratios):.0%}"
    )
    if len(runs) > 1:
        text += (
            f" (best {max(ratios):.0%}, worst {min(ratios):.0%}); extract+land median "
            f"{statistics.median(rates):,.0f} records/s (best {max(rates):,.0f})"
        )
    return text + f"; highest peak {max(run.peak_mb for run in runs):.0f} MB."


def report(args: argparse.Namespace, runs: list[Run], machine: str, started_at: datetime) -> str:
    return "\n".join(
        [
            f"extract+land benchmark, {started_at:%Y-%m-%d %H:%M} UTC: {args.records:,} records,"
            f" page size {args.page_size:,}",
            machine,
            "",
            *_table(runs),
            "",
            _summary(runs),
        ]
    )


def append_results(
    args: argparse.Namespace, runs: list[Run], machine: str, started_at: datetime
) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    new = not RESULTS.exists()
    with RESULTS.open("a", encoding="utf-8") as out:
        if new:
            out.write(
                "# Extract+land benchmark results\n\n"
                "Appended by `python -m bench.extract_land`; see `bench/README.md` for what the "
                "columns mean.\n"
            )
        out.write(
            "\n".join(
                [
                    "",
                    f"## {started_at:%Y-%m-%d %H:%M} UTC -- {args.records:,} records, "
                    f"page size {args.page_size:,}, {len(runs)} run(s)",
                    "",
                    f"Machine: {machine}.",
                    *(["", f"Note: {args.note}"] if args.note else []),
                    "",
                    *_table(runs),
                    "",
                    _summary(runs),
                    "",
                ]
            )
        )


def _own_rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
