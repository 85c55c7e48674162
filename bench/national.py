"""National profile benchmark: every source kind ingested end to end into the landing zone.

    .venv/bin/python -m bench.national                      # 34 registries, ~5M records (long)
    .venv/bin/python -m bench.national --registries 2 --no-write          # a quick look

Serves the stand-ins of the ``national`` profile (local/registry/profiles.yml: 34 provincial
registries x 10 entities), the three technology exchanges (sizes below) and statistical report
drops for every province, in a fresh database (WAREHOUSE_URL's server, else the embedded one;
dropped afterwards). One child process (:mod:`bench.national_child`) then runs every
(source, entity) task exactly as the DAG's extract_and_land task does it — extraction,
Vietnamese repairs, schema-drift check, landing — and reports each task's records, seconds and
peak memory.

In the same run, dlt's REST API source extracts one whole registry (the largest: all its
entities) from the same stand-in into the same PostgreSQL (:mod:`bench.dlt_baseline`) twice,
with dlt's default settings and with its documented speed settings, and our figures for that
registry's tasks are set beside both.

Prints records/s per source kind (records landed / seconds of the tasks), the largest peak of a
task, and the dlt comparison; appends them to ``bench/results/national.md`` unless
``--no-write``. Targets (from the issue): ours at least 5x dlt's records/s; peak under 500 MB
per task.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from bench.dlt_baseline import TUNED_LOADER_FILE_FORMAT, run_dlt, tuned_dlt_config
from bench.extract_land import fresh_database, machine_description
from connectors.catalogue import REGISTRY_ENTITIES, SPREADSHEET_ENTITIES, SYSTEMS, Source
from connectors.jobs import REGISTRY_API_V1_PATHS
from connectors.registry_api import MAX_PAGE_SIZE
from connectors.warehouse import ensure_schema
from local.exchange.app import ExchangeSpec
from local.exchange.process import run_exchanges
from local.registry.process import run_registries
from local.registry.profiles import load_profiles
from local.standins import write_drops

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS = REPO_ROOT / "bench" / "results" / "national.md"
TARGET_DLT_FACTOR = 5.0
TARGET_PEAK_MB = 500
EXCHANGES = {  # listings, transactions
    "national_exchange": (200_000, 80_000),
    "ninh_binh_exchange": (60_000, 25_000),
    "thanh_hoa_exchange": (60_000, 25_000),
}
DROP_ROWS = {"stat_form_04": 300, "stat_form_06": 150, "stat_form_08": 200}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.national", description=__doc__)
    parser.add_argument("--profile", default="national", help="registry profile (%(default)s)")
    parser.add_argument(
        "--registries", type=int, default=0, help="only the first N registries (default: all)"
    )
    parser.add_argument("--no-write", action="store_true", help="do not append to results")
    parser.add_argument("--no-dlt", action="store_true", help="skip the dlt comparison")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started_at = datetime.now(UTC)
    profiles = load_profiles()
    profile = profiles.profile(args.profile)
    registry_ids = list(profile.registries)[: args.registries or None]
    with fresh_database() as (url, server), tempfile.TemporaryDirectory() as drops:
        ensure_schema(url)
        with psycopg.connect(url) as conn:
            pg_version = conn.execute("show server_version").fetchone()[0]
        _say(f"stand-ins: {len(registry_ids)} registries ({args.profile}), 3 exchanges, drops")
        specs = [ExchangeSpec(i, listings, deals) for i, (listings, deals) in EXCHANGES.items()]
        with (
            run_registries(args.profile, registry_ids) as registries,
            run_exchanges(specs) as exchanges,
        ):
            jobs = _jobs(registries, exchanges, profiles, registry_ids, Path(drops))
            _say(f"landing: {len(jobs)} tasks in one child process ...")
            tasks = run_tasks(url, jobs)
            dlt = None if args.no_dlt else dlt_comparison(url, registries, tasks)
        machine = machine_description(server, pg_version)
    text = report(args, tasks, dlt, machine, started_at)
    print()
    print(text)
    if not args.no_write:
        with RESULTS.open("a", encoding="utf-8") as results:
            results.write("\n" + text + "\n")
        _say(f"results appended to {RESULTS.relative_to(REPO_ROOT)}")
    return 0


def _jobs(
    registries: dict[str, Any],
    exchanges: dict[str, Any],
    profiles: Any,
    registry_ids: list[str],
    drops_root: Path,
) -> list[dict[str, Any]]:
    jobs = []
    for registry_id in registry_ids:
        registry = registries[registry_id]
        province = profiles.registries[registry_id].province_code
        source = _source(f"{registry_id}_registry", province, "registry", REGISTRY_ENTITIES)
        connection = {
            "host": registry.base_url,
            "login": registry.client_id,
            "password": registry.client_secret,
        }
        jobs += [
            {"source": source, "entity": e, "connection": connection} for e in source["entities"]
        ]
        folder = drops_root / registry_id
        write_drops(folder, {"province": province, "years": [2024], "rows": DROP_ROWS})
        drop = _source(
            f"{registry_id}_stat_reports", province, "spreadsheet_drop", SPREADSHEET_ENTITIES
        )
        location = {"host": "", "extra": {"location": folder.as_uri()}}
        jobs += [{"source": drop, "entity": e, "connection": location} for e in drop["entities"]]
    for exchange_id, exchange in exchanges.items():
        source = _source(exchange_id, None, "exchange", ("listing", "transaction"))
        connection = {"host": exchange.base_url, "login": exchange_id, "password": exchange.api_key}
        jobs += [
            {"source": source, "entity": e, "connection": connection} for e in source["entities"]
        ]
    return jobs


def _source(source_id: str, province: str | None, system: str, entities: tuple[str, ...]) -> dict:
    source = Source(
        id=source_id,
        name=source_id,
        province_code=province,
        system=system,
        contract=SYSTEMS[system].contracts[0],
        connection_id=source_id,
        entities=entities,
        schedule="0 * * * *",
        owner="bench",
    )
    return {**asdict(source), "entities": list(entities)}


def run_tasks(url: str, jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every job in one fresh interpreter (bench.national_child); its per-task reports."""
    started = time.monotonic()
    child = subprocess.Popen(
        [sys.executable, "-m", "bench.national_child"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
    )
    assert child.stdin is not None and child.stdout is not None
    child.stdin.write(json.dumps({"warehouse_url": url, "jobs": jobs}))
    child.stdin.close()
    tasks = []
    for line in child.stdout:
        task = json.loads(line)
        tasks.append(task)
        if len(tasks) % 25 == 0:
            _say(f"  {len(tasks)}/{len(jobs)} tasks, {time.monotonic() - started:.0f} s")
    if child.wait() != 0:
        raise RuntimeError(f"bench.national_child failed with exit code {child.returncode}")
    return tasks


def dlt_comparison(
    url: str, registries: dict[str, Any], tasks: list[dict[str, Any]]
) -> dict[str, Any]:
    """dlt over the largest registry's entities, beside our tasks for the same registry."""
    landed: dict[str, int] = defaultdict(int)
    for task in tasks:
        if task["system"] == "registry":
            landed[task["source_id"]] += task["landed"]
    source_id = max(landed, key=landed.__getitem__)
    registry = registries[source_id.removesuffix("_registry")]
    ours = [t for t in tasks if t["source_id"] == source_id]
    _say(f"dlt: {source_id}, {len(ours)} entities, {landed[source_id]:,} records, twice ...")
    comparison: dict[str, Any] = {
        "source_id": source_id,
        "records": sum(t["landed"] for t in ours),
        "ours_seconds": sum(t["seconds"] for t in ours),
        "ours_cpu_seconds": sum(t["cpu_seconds"] for t in ours),
        "ours_peak_mb": max(t["peak_rss_kib"] for t in ours) / 1024,
    }
    settings = {  # dlt as installed, and with its documented speed settings (bench/README.md)
        "default": {},
        "tuned": {
            "page_size": MAX_PAGE_SIZE,
            "loader_file_format": TUNED_LOADER_FILE_FORMAT,
            "dlt_config": tuned_dlt_config(os.cpu_count() or 1),
        },
    }
    for name, options in settings.items():
        runs = [
            run_dlt(
                registry.base_url,
                registry.client_id,
                registry.client_secret,
                REGISTRY_API_V1_PATHS[task["entity"]],
                url,
                records=task["landed"],
                dataset=f"bench_dlt_{task['entity']}",
                **options,
            )
            for task in ours
        ]
        comparison[name] = {
            "seconds": sum(r.seconds for r in runs),
            "cpu_seconds": sum(r.cpu_seconds or 0.0 for r in runs),
            "peak_mb": max(r.peak_rss_mb for r in runs),
            "version": runs[0].dlt_version,
        }
    return comparison


def report(
    args: argparse.Namespace,
    tasks: list[dict[str, Any]],
    dlt: dict[str, Any] | None,
    machine: str,
    started_at: datetime,
) -> str:
    by_kind: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for task in tasks:
        by_kind[task["system"]].append(task)
    lines = [
        f"## {started_at:%Y-%m-%d %H:%M} UTC, profile {args.profile}"
        f" ({len({t['source_id'] for t in tasks})} sources, {len(tasks)} tasks)",
        "",
        f"Machine: {machine}",
        "",
        "| source kind | tasks | records landed | seconds | records/s | peak per task (max) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for kind, group in sorted(by_kind.items()):
        records = sum(t["landed"] for t in group)
        seconds = sum(t["seconds"] for t in group)
        peak = max(t["peak_rss_kib"] for t in group) / 1024
        lines.append(
            f"| {kind} | {len(group)} | {records:,} | {seconds:.1f} | {records / seconds:,.0f}"
            f" | {peak:.0f} MB |"
        )
    records = sum(t["landed"] for t in tasks)
    seconds = sum(t["seconds"] for t in tasks)
    peak = max(t["peak_rss_kib"] for t in tasks) / 1024
    lines.append(
        f"| **all** | {len(tasks)} | {records:,} | {seconds:.1f} | {records / seconds:,.0f}"
        f" | {peak:.0f} MB |"
    )
    if dlt is not None:
        ours_rate = dlt["records"] / dlt["ours_seconds"]
        ours_cpu_us = dlt["ours_cpu_seconds"] / dlt["records"] * 1e6
        lines += [
            "",
            f"Same extraction, registry `{dlt['source_id']}` (all entities, {dlt['records']:,}"
            f" records), same stand-in and PostgreSQL:",
            "",
            "| | records/s | ours / it | CPU µs per record | peak memory |",
            "|---|---:|---:|---:|---:|",
            f"| ours (extract_and_land) | {ours_rate:,.0f} | | {ours_cpu_us:.0f}"
            f" | {dlt['ours_peak_mb']:.0f} MB |",
        ]
        factors = {}
        for name in ("default", "tuned"):
            run = dlt[name]
            rate = dlt["records"] / run["seconds"]
            factors[name] = ours_rate / rate
            lines.append(
                f"| dlt {run['version']} rest_api_source, {name} settings | {rate:,.0f}"
                f" | {factors[name]:.1f}x | {run['cpu_seconds'] / dlt['records'] * 1e6:.0f}"
                f" | {run['peak_mb']:.0f} MB |"
            )
        met = {name: "met" if f >= TARGET_DLT_FACTOR else "NOT met" for name, f in factors.items()}
        lines += [
            "",
            f"Target >= {TARGET_DLT_FACTOR:.0f}x dlt: {met['default']} against dlt's default"
            f" settings, {met['tuned']} against its tuned settings. Peak < {TARGET_PEAK_MB} MB"
            f" per task: {'met' if peak < TARGET_PEAK_MB else 'NOT met'}. CPU: the extracting"
            " process's user + system time (dlt's ended worker processes included); the stand-in"
            " and PostgreSQL share the same cores.",
        ]
    return "\n".join(lines)


def _say(message: str) -> None:
    print(f"[bench] {message}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
