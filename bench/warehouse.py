"""Warehouse benchmark: a full dbt build of the national profile, then an incremental build
after 1% of the records changed.

    .venv/bin/python -m bench.warehouse                          # national profile, ~5M records
    .venv/bin/python -m bench.warehouse --registries 2 --no-write         # a quick look
    .venv/bin/python -m bench.warehouse --keep bench_wh --land-only       # land once, keep it
    .venv/bin/python -m bench.warehouse --database bench_wh               # build a copy of it

1. Lands the national profile as bench.national does (34 registries x 10 entities, the three
   exchanges, statistical report drops) in a fresh database, and runs the quality gate on every
   batch (two processes), publishing what passes: nothing unvalidated reaches dbt here either,
   and the stand-ins' spoiled records (5% of the registries') are quarantined as in production.
   With --keep the gated database is kept, so that later runs (--database) skip all of this.
2. Full build: `local.dbt.build_and_publish` — seeds, staging views, version tables, snapshots,
   dimensions, facts, KPI scorecard and every test, built into the build schemas and published.
3. Changes 1% of the records of every source and entity (a new version, as a re-sent record
   would land) and deletes 0.1% (a deletion version), each as a new published batch.
4. Incremental build: the same call. The version tables append only the new batches; snapshots
   read only the versions loaded since they last ran.

Reports both builds' wall time and dbt's per-node times grouped by kind (version tables,
snapshots, other models, tests, seeds), and the ratio incremental / full. Targets (from the
issue): the incremental build takes at most 15% of the full build's time; snapshots scale with
the change, not the table. Appends to bench/results/warehouse.md unless --no-write.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

from bench.extract_land import fresh_database, machine_description
from bench.national import EXCHANGES, _jobs, run_tasks
from connectors.warehouse import ensure_schema
from local.dbt import DBT_PROJECT, build_and_publish
from local.exchange.app import ExchangeSpec
from local.exchange.process import run_exchanges
from local.registry.process import run_registries
from local.registry.profiles import load_profiles

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS = REPO_ROOT / "bench" / "results" / "warehouse.md"
TARGET_RATIO = 0.15
KINDS = ("version tables", "snapshots", "other models", "seeds", "tests")
# Its own dbt target folder, so a build elsewhere in the project does not mix its artifacts in.
TARGET = Path("target") / "bench_warehouse"


@dataclass
class Build:
    seconds: float
    by_kind: dict[str, float] = field(default_factory=dict)
    slowest: list[tuple[str, float]] = field(default_factory=list)


@dataclass
class Result:
    records: int
    changed: int
    deleted: int
    full: Build
    incremental: Build
    version_rows_full: int
    version_rows: int
    snapshot_rows_full: int
    snapshot_rows_incremental: int
    machine: str

    @property
    def ratio(self) -> float:
        return self.incremental.seconds / self.full.seconds


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.warehouse", description=__doc__)
    parser.add_argument("--profile", default="national", help="registry profile (%(default)s)")
    parser.add_argument(
        "--registries", type=int, default=0, help="only the first N registries (default: all)"
    )
    parser.add_argument("--change", type=float, default=0.01, help="share changed (0.01)")
    parser.add_argument("--delete", type=float, default=0.001, help="share deleted (0.001)")
    parser.add_argument("--keep", metavar="DBNAME", help="land into this database and keep it")
    parser.add_argument(
        "--database", metavar="DBNAME", help="benchmark a copy of a database --keep landed"
    )
    parser.add_argument("--land-only", action="store_true", help="with --keep: land, no builds")
    parser.add_argument("--no-write", action="store_true", help="do not append to results")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started_at = datetime.now(UTC)
    with _database(args) as (url, server):
        if args.land_only:
            _say(f"landed into {args.keep}; benchmark it with --database {args.keep}")
            return 0
        with psycopg.connect(url) as conn:
            pg_version = conn.execute("show server_version").fetchone()[0]
        result = run_benchmark(url, args, machine_description(server, pg_version))
    text = report(args, result, started_at)
    print()
    print(text)
    if not args.no_write:
        with RESULTS.open("a", encoding="utf-8") as results:
            results.write("\n" + text + "\n")
        _say(f"results appended to {RESULTS.relative_to(REPO_ROOT)}")
    return 0


@contextmanager
def _database(args: argparse.Namespace) -> Iterator[tuple[str, str]]:
    """The run's database: a fresh one (dropped after), a kept one, or one to reuse."""
    if not (args.keep or args.database):
        with fresh_database() as (url, server):
            land_profile(url, args.profile, args.registries)
            yield url, server
        return
    admin_url = os.environ.get("WAREHOUSE_URL")
    if not admin_url:
        from local.warehouse import local_server

        admin_url = local_server().start()
    url = urlunsplit(urlsplit(admin_url)._replace(path=f"/{args.database or args.keep}"))
    if args.keep:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'create database "{args.keep}"')
        land_profile(url, args.profile, args.registries)
    else:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            # A copy: the kept database stays landed and unbuilt for the next run.
            conn.execute(f'drop database if exists "{args.database}_run"')
            conn.execute(f'create database "{args.database}_run" template "{args.database}"')
        url = urlunsplit(urlsplit(admin_url)._replace(path=f"/{args.database}_run"))
    yield url, "WAREHOUSE_URL" if os.environ.get("WAREHOUSE_URL") else "embedded"


def land_profile(
    url: str,
    profile_name: str,
    registries: int,
    exchanges: dict[str, tuple[int, int]] = EXCHANGES,
) -> None:
    """Land every source of the profile (as bench.national), gate and publish every batch."""
    ensure_schema(url)
    profiles = load_profiles()
    registry_ids = list(profiles.profile(profile_name).registries)[: registries or None]
    specs = [ExchangeSpec(i, listings, deals) for i, (listings, deals) in exchanges.items()]
    _say(f"landing {len(registry_ids)} registries ({profile_name}), exchanges, drops ...")
    with (
        tempfile.TemporaryDirectory() as drops,
        run_registries(profile_name, registry_ids) as running,
        run_exchanges(specs) as served,
    ):
        run_tasks(url, _jobs(running, served, profiles, registry_ids, Path(drops)))
    gate_and_publish(url)


# Statistical forms are hand-typed reports, one file each (dags/sources.yml's `quality:`).
FORM_RULES = {"max_quarantined_share": 0.25, "max_volume_drop": 1.0}


def gate_and_publish(url: str, workers: int = 2) -> None:
    """The quality gate on every landed batch, as the sync DAG runs it; publishes what passes.
    Tasks and listings first: reports and deals are checked against the published ones."""
    with psycopg.connect(url) as conn:
        batches = conn.execute(
            "select batch_id, source_id like '%%_stat_reports',"
            " entity in ('st_task', 'listing') from ops.load_batch"
            " where state = 'landed' order by batch_id"
        ).fetchall()
    _say(f"gating {len(batches)} batches in {workers} processes ...")
    started = time.monotonic()
    blocked: list[str] = []
    with ProcessPoolExecutor(workers) as pool:
        for referenced in (True, False):
            wave = [(batch_id, form) for batch_id, form, ref in batches if ref is referenced]
            ids, forms = [batch_id for batch_id, _ in wave], [form for _, form in wave]
            blocked += filter(None, pool.map(_gate_one, [url] * len(wave), ids, forms))
    _say(f"  gated in {time.monotonic() - started:.0f} s; {len(blocked)} batches blocked")
    for reason in blocked[:5]:
        _say(f"  blocked: {reason}")


def _gate_one(url: str, batch_id: int, is_form: bool) -> str | None:
    from expectations.gate import BatchRules, GateFailedError, publish_batch, run_gate

    rules = BatchRules.from_mapping(FORM_RULES if is_form else {})
    try:
        # One report folder per process: the reports index is not shared between writers.
        reports = Path(tempfile.gettempdir()) / "bench_gate" / str(os.getpid())
        run_gate(url, batch_id, rules, report_dir=reports)
    except GateFailedError as error:
        return f"batch {batch_id}: {error}"
    publish_batch(url, batch_id)
    return None


def run_benchmark(url: str, args: argparse.Namespace, machine: str) -> Result:
    ensure_schema(url)  # a database landed by an older version of the project
    records = _scalar(url, "select count(*) from raw.landed_record")
    _say(f"full build of {records:,} landed records ...")
    full = timed_build(url)
    snapshot_rows_full = _snapshot_rows(url)
    version_rows_full = _version_rows(url)
    changed, deleted = change_records(url, args.change, args.delete)
    _say(f"changed {changed:,} and deleted {deleted:,} records; incremental build ...")
    incremental = timed_build(url)
    return Result(
        records=records,
        changed=changed,
        deleted=deleted,
        full=full,
        incremental=incremental,
        version_rows_full=version_rows_full,
        version_rows=_version_rows(url),
        snapshot_rows_full=snapshot_rows_full,
        snapshot_rows_incremental=_snapshot_rows(url) - snapshot_rows_full,
        machine=machine,
    )


def timed_build(url: str) -> Build:
    """build_and_publish, timed; dbt's node times from the build's run_results.json."""
    started = time.monotonic()
    run_id = f"bench__{datetime.now(UTC):%Y%m%dT%H%M%S%f}"
    build_and_publish(url, run_id=run_id, target_path=TARGET)
    seconds = time.monotonic() - started
    results = json.loads((DBT_PROJECT / TARGET / "run_results.json").read_text())
    by_kind: dict[str, float] = defaultdict(float)
    nodes = []
    for node in results["results"]:
        unique_id, took = node["unique_id"], float(node["execution_time"])
        by_kind[_kind(unique_id)] += took
        nodes.append((unique_id.split(".", 2)[-1], took))
    slowest = sorted(nodes, key=lambda n: -n[1])[:8]
    _say(f"  {seconds:.1f} s")
    return Build(seconds, dict(by_kind), slowest)


def _kind(unique_id: str) -> str:
    if unique_id.startswith("snapshot."):
        return "snapshots"
    if unique_id.startswith(("test.", "unit_test.")):
        return "tests"
    if unique_id.startswith("seed."):
        return "seeds"
    if unique_id.startswith("model.") and unique_id.endswith("_versioned"):
        return "version tables"
    return "other models"


def change_records(url: str, share: float, delete_share: float) -> tuple[int, int]:
    """A new version of `share` of the records of every source and entity (and a deletion
    version of `delete_share`), landed as one new published batch per source and entity."""
    with psycopg.connect(url) as conn:
        conn.execute(
            """
            create temporary table picked on commit drop as
            -- The latest version the gate accepted of each record: a re-sent record that
            -- passes again, so the incremental build sees only valid changes.
            select
                source_id, entity, record_id, version, record,
                (abs(hashtext(record_id || '|delete')) %% 100000) < %(delete)s * 100000
                    as to_delete
            from ops.accepted_record
            where not deleted and (abs(hashtext(record_id)) %% 100000) < %(change)s * 100000
            """,
            {"change": share, "delete": delete_share},
        )
        conn.execute(
            """
            create temporary table new_batch on commit drop as
            with inserted as (
                insert into ops.load_batch (source_id, entity, contract, state, landed_at,
                    validated_at, published_at, records_landed, records_passed,
                    records_quarantined)
                select p.source_id, p.entity, b.contract, 'published', now(), now(), now(),
                    count(*), count(*), 0
                from picked as p
                cross join lateral (
                    select contract from ops.load_batch as b
                    where b.source_id = p.source_id and b.entity = p.entity limit 1
                ) as b
                group by p.source_id, p.entity, b.contract
                returning batch_id, source_id, entity
            )
            select * from inserted
            """
        )
        conn.execute(
            """
            insert into raw.landed_record (batch_id, source_id, entity, record_id, version,
                updated_at, deleted, extracted_at, checksum, payload)
            -- A second after the version it replaces: a re-sent record keeps the dates the gate
            -- checked its unit codes against (a pre-merger record stays dated before 2025-07-01).
            select nb.batch_id, p.source_id, p.entity, p.record_id, coalesce(p.version, 0) + 1,
                (
                    select max(prior.updated_at) from raw.landed_record as prior
                    where prior.source_id = p.source_id and prior.entity = p.entity
                        and prior.record_id = p.record_id
                ) + interval '1 second',
                p.to_delete, now(),
                sha256(convert_to(p.record::text || '|bench change', 'UTF8')), p.record
            from picked as p
            inner join new_batch as nb using (source_id, entity)
            """
        )
        changed, deleted = conn.execute(
            "select count(*), count(*) filter (where to_delete) from picked"
        ).fetchone()
    return changed, deleted


def _version_rows(url: str) -> int:
    tables = _tables(url, "history", r"_versioned$")
    return sum(_scalar(url, f"select count(*) from history.{name}") for name in tables)


def _snapshot_rows(url: str) -> int:
    tables = _tables(url, "history", r"^snap_")
    return sum(_scalar(url, f"select count(*) from history.{name}") for name in tables)


def _tables(url: str, schema: str, pattern: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [
            name
            for (name,) in conn.execute(
                "select tablename from pg_tables where schemaname = %s and tablename ~ %s",
                (schema, pattern),
            )
        ]


def _scalar(url: str, query: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(query).fetchone()[0]


def report(args: argparse.Namespace, result: Result, started_at: datetime) -> str:
    met = "met" if result.ratio <= TARGET_RATIO else "NOT met"
    snapshot_ratio = result.incremental.by_kind.get("snapshots", 0) / max(
        result.full.by_kind.get("snapshots", 0), 1e-9
    )
    lines = [
        f"## {started_at:%Y-%m-%d %H:%M} UTC — profile {args.profile}"
        + (f", {args.registries} registries" if args.registries else ""),
        "",
        f"- Machine: {result.machine}",
        f"- Landed records: {result.records:,}; changed {result.changed:,}"
        f" ({args.change:.1%}), deleted {result.deleted:,} ({args.delete:.1%})",
        f"- Full build: **{result.full.seconds:.1f} s**; incremental build:"
        f" **{result.incremental.seconds:.1f} s**; ratio **{result.ratio:.1%}**"
        f" (target ≤ {TARGET_RATIO:.0%}: {met})",
        f"- Snapshots: {result.full.by_kind.get('snapshots', 0):.1f} s for"
        f" {result.snapshot_rows_full:,} rows (full) vs"
        f" {result.incremental.by_kind.get('snapshots', 0):.1f} s for"
        f" {result.snapshot_rows_incremental:,} new rows (incremental): {snapshot_ratio:.1%}",
        f"- Version tables: {result.version_rows_full:,} rows after the full build,"
        f" {result.version_rows - result.version_rows_full:,} appended by the incremental one",
        "",
        "| dbt node time (s) | full | incremental |",
        "|---|---:|---:|",
    ]
    for kind in KINDS:
        lines.append(
            f"| {kind} | {result.full.by_kind.get(kind, 0):.1f} |"
            f" {result.incremental.by_kind.get(kind, 0):.1f} |"
        )
    for name, build in (("full", result.full), ("incremental", result.incremental)):
        slowest = ", ".join(f"{node} {took:.1f}" for node, took in build.slowest)
        lines.append(f"\nSlowest nodes ({name}): {slowest}")
    return "\n".join(lines)


def _say(message: str) -> None:
    print(f"[bench.warehouse] {message}", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
