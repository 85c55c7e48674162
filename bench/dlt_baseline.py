"""dlt baseline: the same registry extraction with dlt's REST API source, in the same run.

    .venv/bin/python -m bench.dlt_baseline [--records 200000] [--repeat 1]
    .venv/bin/python -m bench.dlt_baseline --records 5000 --no-write      # smoke, seconds
    .venv/bin/python -m bench.dlt_baseline --dlt-defaults                 # dlt untuned

Starts the stand-in registry with ``--records`` S&T tasks. Then, ``--repeat`` times, in a fresh
database (as :mod:`bench.extract_land` makes them: WAREHOUSE_URL's server, else the embedded
one; dropped afterwards), on that same stand-in, runs once each:

- **Ours.** :func:`connectors.jobs.extract_and_land_registry` in a child process
  (:func:`bench.extract_land.extract_and_land_in_child`): records landed / seconds, and the
  child's peak resident memory.
- **dlt.** ``bench/dlt/registry_pipeline.py`` in dlt's own virtualenv (``bench/dlt/.venv``,
  created from ``bench/dlt/uv.lock`` on first use): ``rest_api_source`` (OAuth2 client
  credentials, cursor paginator, incremental ``updated_since``) into PostgreSQL schema
  ``bench_dlt`` of the same database. Rows in its table / seconds of ``pipeline.run``, and the
  peak memory of its process tree.

The order alternates between pairs (ours first in odd ones), with a CHECKPOINT before each load.
Both must have loaded every record of the stand-in, or the run aborts: the comparison is only
fair if both load everything. Prints each pair's rates, ratio and peaks; appends them to
``bench/results/dlt_baseline.md`` unless ``--no-write``. Targets (from the issue): ours at
least 5x dlt's records/s (median over pairs), our peak under 500 MB. dlt runs by default with
the best settings found (our page size, ``csv`` files loaded with COPY, one normalize process
per CPU, uncompressed intermediate files); ``--dlt-defaults`` runs it untuned. bench/README.md
has the settings tried.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

from bench import extract_land
from connectors.jobs import REGISTRY_API_V1_PATHS
from connectors.registry_api import MAX_PAGE_SIZE
from connectors.warehouse import ensure_schema
from local.registry.process import RunningRegistry, run_registry

_say = extract_land._say

REPO_ROOT = Path(__file__).resolve().parents[1]
DLT_PROJECT = REPO_ROOT / "bench" / "dlt"
DLT_PYTHON = DLT_PROJECT / ".venv" / "bin" / "python"
PIPELINE_SCRIPT = DLT_PROJECT / "registry_pipeline.py"
RESULTS = REPO_ROOT / "bench" / "results" / "dlt_baseline.md"

TARGET_SPEEDUP = 5.0  # our records/s over dlt's, at least
TARGET_PEAK_MB = extract_land.TARGET_PEAK_MB  # peak RSS of our extracting process, below

DEFAULT_DATASET = "bench_dlt"
ENTITY = extract_land.ENTITY
# dlt's settings for the comparison: the best found (bench/README.md has the others tried).
TUNED_LOADER_FILE_FORMAT = "csv"  # COPY; dlt's preferred format for postgres is insert_values
TUNED_FILE_MAX_ITEMS = 50_000  # extract files rotated, so normalize workers share the work


def tuned_dlt_config(
    normalize_workers: int, file_max_items: int = TUNED_FILE_MAX_ITEMS
) -> dict[str, str]:
    """dlt's documented speed settings ("Optimizing dlt"), as its environment variables.

    Several normalize processes, extract files rotated so that there is more than one to share
    out (dlt writes one file per table otherwise), intermediate files not gzipped.
    """
    config = {"DATA_WRITER__DISABLE_COMPRESSION": "true"}
    if normalize_workers > 1:
        config["NORMALIZE__WORKERS"] = str(normalize_workers)
        config["DATA_WRITER__FILE_MAX_ITEMS"] = str(file_max_items)
    return config


@dataclass(frozen=True)
class DltRun:
    records: int  # rows in dlt's table after the run
    seconds: float  # pipeline.run: extract, normalise, load
    peak_rss_mb: float  # dlt's process and its children (see registry_pipeline.py)
    peak_rss_upper_mb: float = 0.0  # every process at its own peak (an upper bound)
    steps: dict[str, float] = field(default_factory=dict)  # seconds per dlt step
    dlt_version: str = ""
    cpu_seconds: float | None = None  # CPU of pipeline.run, its ended worker processes included

    @property
    def rate(self) -> float:
        return self.records / self.seconds


@functools.cache
def ensure_dlt_env() -> Path:
    """bench/dlt/.venv as bench/dlt/uv.lock says (``uv sync --frozen``); its python.

    Cached per process: the first call installs (or checks, in a fraction of a second).
    """
    uv = Path(sys.executable).with_name("uv")
    command = [
        str(uv) if uv.exists() else (shutil.which("uv") or "uv"),
        "sync", "--frozen", "--quiet", "--project", str(DLT_PROJECT),
        "--python", sys.executable,  # a 3.11 that is surely here; uv takes its base install
    ]  # fmt: skip
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(DLT_PROJECT / ".venv")}
    env.pop("VIRTUAL_ENV", None)  # the project's venv is not the one to sync
    completed = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(
            f"could not create dlt's environment ({' '.join(command)}):\n{completed.stderr}"
        )
    return DLT_PYTHON


def run_dlt(
    base_url: str,
    client_id: str,
    client_secret: str,
    entity_path: str,
    warehouse_url: str,
    *,
    records: int,
    dataset: str = DEFAULT_DATASET,
    page_size: int | None = None,
    loader_file_format: str | None = None,
    dlt_config: Mapping[str, str] | None = None,
) -> DltRun:
    """One full extraction of ``entity_path`` with dlt into schema ``dataset``.

    The schema is dropped first, so dlt starts without state and loads everything. Raises
    RuntimeError if the script fails or if its table does not hold exactly ``records`` rows.
    By default dlt runs as it comes: ``page_size=None`` leaves the page size to the API,
    ``loader_file_format=None`` the file format to dlt; ``dlt_config`` adds dlt settings as
    environment variables (see :func:`tuned_dlt_config`).
    """
    python = ensure_dlt_env()
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(dataset)))
    with tempfile.TemporaryDirectory(prefix="sti-bench-dlt-") as work:
        command = [
            str(python), str(PIPELINE_SCRIPT), base_url, entity_path, dataset,
            "--pipelines-dir", str(Path(work, "pipelines")),
        ]  # fmt: skip
        if page_size is not None:
            command += ["--page-size", str(page_size)]
        if loader_file_format is not None:
            command += ["--loader-file-format", loader_file_format]
        env = {
            **_without_python_settings(os.environ),
            **(dlt_config or {}),
            "RUNTIME__DLTHUB_TELEMETRY": "false",
            "RUNTIME__LOG_LEVEL": "WARNING",
            "DLT_DATA_DIR": str(Path(work, "data")),  # nothing in ~/.dlt or /var/dlt
            "REGISTRY_CLIENT_ID": client_id,
            "REGISTRY_CLIENT_SECRET": client_secret,
            "DESTINATION_URL": warehouse_url,
        }
        # cwd: dlt reads ./.dlt/config.toml; an empty dir has none that could change its setup.
        completed = subprocess.run(
            command, env=env, cwd=work, capture_output=True, text=True, check=False
        )
    if completed.returncode != 0:
        log = completed.stderr[-4000:]
        for secret in (client_secret, urlsplit(warehouse_url).password):
            if secret:
                log = log.replace(secret, "***")
        raise RuntimeError(f"dlt pipeline failed with exit code {completed.returncode}:\n{log}")
    report: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    check_dlt_table(warehouse_url, dataset, entity_path, records)
    return DltRun(
        records=report["records"],
        seconds=report["seconds"],
        cpu_seconds=report.get("cpu_seconds"),
        peak_rss_mb=report["peak_rss_mb"],
        peak_rss_upper_mb=report.get("peak_rss_upper_mb", 0.0),
        steps=report.get("steps", {}),
        dlt_version=report.get("dlt_version", ""),
    )


def check_dlt_table(warehouse_url: str, dataset: str, entity_path: str, records: int) -> None:
    """dlt's table must hold exactly ``records`` rows, or the comparison means nothing."""
    table = sql.Identifier(dataset, entity_path.replace("-", "_"))
    with psycopg.connect(warehouse_url) as conn:
        (rows,) = conn.execute(sql.SQL("select count(*) from {}").format(table)).fetchone()
    if rows != records:
        raise RuntimeError(
            f"dlt loaded {rows:,} rows into {dataset}, not the {records:,} records served"
        )


def _without_python_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment minus what would point dlt's interpreter at the project's packages."""
    return {
        key: value
        for key, value in environ.items()
        if key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
    }


# --- The comparison -------------------------------------------------------------------------


@dataclass(frozen=True)
class Pair:
    """One run of each load, on the same stand-in, in the same fresh database."""

    records: int
    ours_seconds: float
    ours_peak_mb: float
    dlt: DltRun

    @property
    def ours_rate(self) -> float:
        return self.records / self.ours_seconds

    @property
    def speedup(self) -> float:
        return self.ours_rate / self.dlt.rate


def verdict(pairs: list[Pair]) -> bool:
    """PASS when the median speed-up meets the target and none of our peaks exceeds it."""
    return (
        statistics.median(pair.speedup for pair in pairs) >= TARGET_SPEEDUP
        and max(pair.ours_peak_mb for pair in pairs) < TARGET_PEAK_MB
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.dlt_baseline",
        description="Our extract+land vs dlt's REST API source, same stand-in, same database.",
    )
    parser.add_argument("--records", type=int, default=200_000, help="default: %(default)s")
    parser.add_argument(
        "--page-size", type=int, default=MAX_PAGE_SIZE, help="both loads (default: %(default)s)"
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="pairs of runs, each in a fresh database (default 1)"
    )
    parser.add_argument(
        "--dlt-page-size",
        type=int,
        help="dlt's limit parameter (default: --page-size; 0: none, the API's default 1,000)",
    )
    parser.add_argument(
        "--dlt-file-format",
        default=TUNED_LOADER_FILE_FORMAT,
        help="dlt's loader file format (default: %(default)s; dlt's own: insert_values)",
    )
    parser.add_argument(
        "--dlt-normalize-workers",
        type=int,
        default=len(os.sched_getaffinity(0)),
        help="dlt's normalize processes (default: one per CPU, %(default)s); 1: dlt's default,"
        " in-process. Above 1, extract files are rotated every 50,000 items",
    )
    parser.add_argument(
        "--dlt-defaults",
        action="store_true",
        help="dlt as it comes: the API's page size (1,000), insert_values, one normalize"
        " process, compressed files",
    )
    parser.add_argument(
        "--dlt-config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other dlt setting, as its environment variable (repeatable), e.g."
        " DATA_WRITER__BUFFER_MAX_ITEMS=20000",
    )
    parser.add_argument(
        "--no-write", action="store_true", help=f"do not append to {RESULTS.relative_to(REPO_ROOT)}"
    )
    parser.add_argument("--note", default="", help="a remark for the results section")
    args = parser.parse_args(argv)
    if args.records < 1 or args.repeat < 1:
        parser.error("--records and --repeat must be at least 1")
    if not 1 <= args.page_size <= MAX_PAGE_SIZE:
        parser.error(f"--page-size must be from 1 to {MAX_PAGE_SIZE}")
    if args.dlt_defaults:
        args.dlt_page_size, args.dlt_file_format = 0, "insert_values"
    elif args.dlt_page_size is None:
        args.dlt_page_size = args.page_size
    if not 0 <= args.dlt_page_size <= MAX_PAGE_SIZE:
        parser.error(f"--dlt-page-size must be from 0 to {MAX_PAGE_SIZE}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started_at = datetime.now(UTC)
    load_at_start = os.getloadavg()[0]  # other work on the machine skews both loads
    ensure_dlt_env()  # before any timing: a first run installs dlt
    _say(f"stand-in registry: starting with {args.records:,} records")
    pairs = []
    with run_registry(records=args.records) as registry:
        for number in range(1, args.repeat + 1):
            pair, server, pg_version = one_pair(args, registry, dlt_first=number % 2 == 0)
            pairs.append(pair)
            _say(
                f"run {number}: ours {pair.ours_rate:,.0f}/s, dlt {pair.dlt.rate:,.0f}/s, "
                f"ours is {pair.speedup:.1f}x"
            )
    machine = (
        f"{extract_land.machine_description(server, pg_version)}; 1-minute load average"
        f" {load_at_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"
    )
    text = report(args, pairs, machine, started_at)
    print()
    print(text)
    if not args.no_write:
        append_results(text)
        _say(f"results appended to {RESULTS.relative_to(REPO_ROOT)}")
    return 0 if verdict(pairs) else 1


def one_pair(
    args: argparse.Namespace, registry: RunningRegistry, *, dlt_first: bool
) -> tuple[Pair, str, str]:
    """Ours and dlt once each in a fresh database; the order alternates between pairs."""
    with extract_land.fresh_database() as (url, server):
        ensure_schema(url)
        with psycopg.connect(url, autocommit=True) as conn:
            pg_version = conn.execute("show server_version").fetchone()[0]
        loads = [_run_ours, _run_dlt]
        results = {}
        for load in reversed(loads) if dlt_first else loads:
            with psycopg.connect(url, autocommit=True) as conn:
                extract_land._checkpoint(conn)  # neither load pays for the other's writes
            results[load] = load(args, registry, url)
    ours = results[_run_ours]
    pair = Pair(args.records, ours["seconds"], ours["peak_rss_kib"] / 1024, results[_run_dlt])
    return pair, server, pg_version


def _run_ours(args: argparse.Namespace, registry: RunningRegistry, url: str) -> dict[str, Any]:
    _say("ours: extract+land ...")
    ours = extract_land.extract_and_land_in_child(url, registry, args.page_size)
    if ours["landed"] != args.records:
        raise RuntimeError(f"ours landed {ours['landed']:,} of {args.records:,} records")
    return ours


def _run_dlt(args: argparse.Namespace, registry: RunningRegistry, url: str) -> DltRun:
    _say("dlt: rest_api source -> postgres ...")
    return run_dlt(
        registry.base_url,
        registry.client_id,
        registry.client_secret,
        REGISTRY_API_V1_PATHS[ENTITY],
        url,
        records=args.records,
        page_size=args.dlt_page_size or None,
        loader_file_format=args.dlt_file_format,
        dlt_config=dlt_environment(args),
    )


def dlt_environment(args: argparse.Namespace) -> dict[str, str]:
    """The dlt settings the options ask for, as dlt's environment variables."""
    config = {} if args.dlt_defaults else tuned_dlt_config(args.dlt_normalize_workers)
    for setting in args.dlt_config:
        key, _, value = setting.partition("=")
        config[key.strip()] = value.strip()
    return config


def dlt_settings(args: argparse.Namespace) -> str:
    if args.dlt_defaults:
        settings = "dlt defaults (page size 1,000, insert_values, 1 normalize process)"
    else:
        page = f"{args.dlt_page_size:,}" if args.dlt_page_size else "the API's (1,000)"
        settings = (
            f"dlt page size {page}, {args.dlt_file_format},"
            f" {args.dlt_normalize_workers} normalize process(es), uncompressed files"
        )
    return settings + "".join(f", {setting}" for setting in args.dlt_config)


def report(args: argparse.Namespace, pairs: list[Pair], machine: str, started_at: datetime) -> str:
    lines = [
        f"## {started_at:%Y-%m-%d %H:%M} UTC -- {args.records:,} records, {len(pairs)} run(s);"
        f" our page size {args.page_size:,}; {dlt_settings(args)}",
        "",
        f"Machine: {machine}; dlt {pairs[0].dlt.dlt_version}.",
        *(["", f"Note: {args.note}"] if args.note else []),
        "",
        "| run | ours s | ours records/s | ours peak MB | dlt s | dlt records/s | dlt peak MB "
        "| dlt extract / normalize / load s | ours / dlt |",
        "|---:|---:|---:|---:|---:|---:|---:|:--|---:|",
    ]
    for number, pair in enumerate(pairs, 1):
        steps = " / ".join(
            f"{pair.dlt.steps.get(step, float('nan')):.1f}"
            for step in ("extract", "normalize", "load")
        )
        lines.append(
            f"| {number} | {pair.ours_seconds:.1f} | {pair.ours_rate:,.0f} "
            f"| {pair.ours_peak_mb:.0f} | {pair.dlt.seconds:.1f} | {pair.dlt.rate:,.0f} "
            f"| {pair.dlt.peak_rss_mb:.0f} | {steps} | {pair.speedup:.1f}x |"
        )
    best_ours = max(pair.ours_rate for pair in pairs)
    best_dlt = max(pair.dlt.rate for pair in pairs)
    lines += [
        "",
        f"**{'PASS' if verdict(pairs) else 'FAIL'}** (targets: ours >= {TARGET_SPEEDUP:.0f}x"
        f" dlt's records/s, our peak < {TARGET_PEAK_MB:.0f} MB) -- median"
        f" {statistics.median(pair.speedup for pair in pairs):.1f}x; best of each:"
        f" ours {best_ours:,.0f}/s, dlt {best_dlt:,.0f}/s ({best_ours / best_dlt:.1f}x);"
        f" our highest peak {max(pair.ours_peak_mb for pair in pairs):.0f} MB, dlt's"
        f" {max(pair.dlt.peak_rss_mb for pair in pairs):.0f} MB (upper bound"
        f" {max(pair.dlt.peak_rss_upper_mb for pair in pairs):.0f} MB).",
    ]
    return "\n".join(lines)


def append_results(text: str) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    new = not RESULTS.exists()
    with RESULTS.open("a", encoding="utf-8") as out:
        if new:
            out.write(
                "# dlt baseline results\n\nAppended by `python -m bench.dlt_baseline`; see "
                "`bench/README.md`.\n"
            )
        out.write("\n" + text + "\n")


if __name__ == "__main__":
    sys.exit(main())
