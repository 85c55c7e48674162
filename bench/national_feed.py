"""National feed throughput: published records delivered to the stand-in national intake and
acknowledged, per second, against a plain bulk POST of the same bodies to the same server.

A fresh warehouse database holds `--records` published records in `marts.feed_st_task` (the
shape of the dbt feed models, realistic payloads, three provinces); the stand-in national
intake (local/national_intake) runs in its own process over its own fresh database. Each run:

1. baseline: the same bodies the publisher would send, built and signed beforehand, POSTed one
   after another over one keep-alive connection (the intake stores them: same server work);
2. the intake's holdings are reset, then the publisher (connectors/national_feed.deliver)
   delivers everything from an empty ledger: diff, chunks planned in the ledger, signed, sent,
   answers applied — records delivered *and acknowledged* per second;
3. a full reconciliation (connectors/national_reconcile.reconcile, the intake's holdings
   included), timed.

Targets (issue 15): >= 20,000 records/s, >= 50 % of the plain POST rate; reconciliation of
1,000,000 records under 30 s.

    .venv/bin/python -m bench.national_feed                          # 1,000,000 records, 3 runs
    .venv/bin/python -m bench.national_feed --records 50000 --repeat 1 --no-write    # smoke
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import psycopg
import requests

from bench.event_intake import fresh_database, machine_description
from bench.results_log import record_results, say
from connectors.national_feed import (
    CHUNK_RECORDS,
    IntakeClients,
    batch_body,
    change_chunks,
    deliver,
)
from connectors.national_intake import batch_headers
from connectors.national_reconcile import reconcile
from local.feed import intake_connection
from local.national_intake.process import RunningIntake, run_national_intake
from local.postgres import drop_database, ensure_database

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS = REPO_ROOT / "bench" / "results" / "national_feed.md"
PROVINCES = ("37", "38", "40")
TARGET_RATE = 20_000  # records/s
TARGET_RATIO = 0.5  # of the plain POST rate
TARGET_RECONCILE = 30.0  # seconds for 1,000,000 records

_PUBLISHED_SQL = """
create schema if not exists reference;
create schema if not exists marts;
create table reference.national_feed_entities (entity text, model text);
insert into reference.national_feed_entities values ('st_task', 'feed_st_task');
create table marts.feed_st_task as
select
    province_code,
    'st_task' as entity,
    province_code || ':' || task_code as record_key,
    payload,
    encode(sha256(convert_to(payload::text, 'UTF8')), 'hex') as content_digest,
    'bench_registry' as source_id,
    task_code as record_id,
    n as landed_id
from (
    select
        n,
        (array['37', '38', '40'])[n % 3 + 1] as province_code,
        format('DT-%s-%s', 2015 + n % 11, lpad(n::text, 7, '0')) as task_code
    from generate_series(1, :records) as n
) as task
cross join lateral (
    select jsonb_build_object(
        'task_code', task.task_code,
        'title', format('Nghiên cứu ứng dụng công nghệ số %s trong sản xuất nông nghiệp', n),
        'task_level', (array['national', 'ministerial', 'provincial'])[n % 3 + 1],
        'task_type', 'research',
        'field_code', (array['10101', '20201', '40101', '50201'])[n % 4 + 1],
        'province_code', task.province_code,
        'province_code_recorded', task.province_code,
        'host_organisation_key', (:organisations::text[])[n % :count + 1],
        'principal_investigator_key', md5(n::text),
        'budget_state_million_vnd', (n % 5000) + 0.5,
        'start_date', (date '2015-01-01' + n % 3000)::text,
        'end_date', (date '2017-01-01' + n % 3000)::text,
        'status', (array['approved', 'in_progress', 'accepted'])[n % 3 + 1]
    ) as payload
) as record;
alter table marts.feed_st_task add primary key (record_key);
analyze marts.feed_st_task;
"""


def _published_sql(conn: psycopg.Connection, records: int, organisations: int = 1_000) -> str:
    """_PUBLISHED_SQL for `records` records of `organisations` organisations with valid MSTs."""
    from psycopg.sql import Literal
    from stdnum.vn import mst

    codes = []
    for number in range(1_000_000, 1_000_000 + 2 * organisations):
        code = f"01{number:07d}"
        code += mst.calc_check_digit(code)
        if mst.is_valid(code) and code not in codes:
            codes.append(code)
        if len(codes) == organisations:
            break
    values = {":records": records, ":organisations": codes, ":count": len(codes)}
    text = _PUBLISHED_SQL
    for name, value in values.items():
        text = text.replace(name, Literal(value).as_string(conn))
    return text


@dataclass
class Run:
    records: int
    plain_seconds: float
    feed_seconds: float
    reconcile_seconds: float
    acknowledged: int
    differences: int
    duplicates: int

    @property
    def plain_rate(self) -> float:
        return self.records / self.plain_seconds

    @property
    def feed_rate(self) -> float:
        return self.records / self.feed_seconds

    @property
    def ratio(self) -> float:
        return self.feed_rate / self.plain_rate

    @property
    def passed(self) -> bool:
        return (
            self.feed_rate >= TARGET_RATE
            and self.ratio >= TARGET_RATIO
            and self.reconcile_seconds * 1_000_000 / self.records < TARGET_RECONCILE
            and self.acknowledged == self.records
            and self.differences == 0
            and self.duplicates == 0
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.national_feed", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--records", type=int, default=1_000_000, help="default: %(default)s")
    parser.add_argument("--chunk", type=int, default=CHUNK_RECORDS, help="records per batch")
    parser.add_argument("--repeat", type=int, default=3, help="runs (default 3)")
    parser.add_argument("--note", default="", help="a remark for the results section")
    parser.add_argument("--no-write", action="store_true", help="do not append to the results")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started_at = datetime.now(UTC)
    runs, machine = run_benchmark(args.records, args.chunk, args.repeat)
    text = report(args, runs, machine, started_at)
    record_results(
        text,
        RESULTS,
        "National feed benchmark results",
        "bench.national_feed",
        write=not args.no_write,
    )
    return 0 if all(run.passed for run in runs) else 1


def run_benchmark(records: int, chunk: int, repeat: int) -> tuple[list[Run], str]:
    with fresh_database("bench_national_feed") as (url, server):
        admin_url = url.rsplit("/", 1)[0] + "/postgres"
        intake_db = f"bench_national_intake_{os.getpid()}"
        drop_database(admin_url, intake_db)
        ensure_database(admin_url, intake_db)
        try:
            say(f"publishing {records:,} feed records")
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(_published_sql(conn, records))
                pg_version = conn.execute("show server_version").fetchone()[0]
            intake_url = url.rsplit("/", 1)[0] + f"/{intake_db}"
            with run_national_intake(intake_url, PROVINCES) as intake:
                runs = []
                for number in range(1, repeat + 1):
                    runs.append(one_run(url, intake, intake_url, records, chunk))
                    say(f"run {number}: {_line(runs[-1])}")
        finally:
            drop_database(admin_url, intake_db)
    return runs, machine_description(server, pg_version)


def one_run(url: str, intake: RunningIntake, intake_url: str, records: int, chunk: int) -> Run:
    _reset(url, intake)
    bodies = _signed_bodies(url, intake, chunk)
    plain = _post_plain(intake, bodies)
    del bodies
    _reset(url, intake)
    connection_for = partial(intake_connection, intake)
    started = time.perf_counter()
    with IntakeClients(connection_for) as clients:
        delivered = deliver(url, clients, "st_task", chunk_records=chunk)
    feed_seconds = time.perf_counter() - started
    started = time.perf_counter()
    with IntakeClients(connection_for) as clients:
        balances, _ = reconcile(url, clients)
    reconcile_seconds = time.perf_counter() - started
    with psycopg.connect(intake_url) as conn:
        duplicates = conn.execute(
            "select count(*) from (select 1 from intake.applied"
            " group by entity, record_key, content_digest, op having count(*) > 1) as twice"
        ).fetchone()[0]
    return Run(
        records=records,
        plain_seconds=plain,
        feed_seconds=feed_seconds,
        reconcile_seconds=reconcile_seconds,
        acknowledged=delivered.accepted,
        differences=sum(b.differences for b in balances)
        + sum(b.national != b.acknowledged for b in balances),
        duplicates=duplicates,
    )


def _signed_bodies(url: str, intake: RunningIntake, chunk: int) -> list[tuple[str, bytes, int]]:
    """(province, body, records) of every batch the publisher would send from an empty
    ledger, built as it builds them."""
    with psycopg.connect(url) as reader:
        return [
            (part.province, batch_body("st_task", part), len(part.keys))
            for part in change_chunks(reader, "st_task", [], chunk)
        ]


def _post_plain(intake: RunningIntake, bodies: list[tuple[str, bytes, int]]) -> float:
    """POST the bodies (signed beforehand, not timed) one after another; seconds taken."""
    session = requests.Session()
    tokens = {}
    prepared = []
    run = time.monotonic_ns()
    for number, (province, body, count) in enumerate(bodies):
        credential = intake.credentials[province]
        if province not in tokens:
            tokens[province] = session.post(
                intake.base_url + "/oauth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": credential.client_id,
                    "client_secret": credential.client_secret,
                },
                timeout=30,
            ).json()["access_token"]
        key = f"plain.{run}.{number}"
        headers = {
            "Authorization": f"Bearer {tokens[province]}",
            **batch_headers(intake_connection(intake, province), key, body, count),
        }
        prepared.append((body, headers))
    started = time.perf_counter()
    for body, headers in prepared:
        reply = session.post(
            intake.base_url + "/v1/batches", data=body, headers=headers, timeout=120
        )
        reply.raise_for_status()
    seconds = time.perf_counter() - started
    session.close()
    return seconds


def _reset(url: str, intake: RunningIntake) -> None:
    """The intake loses everything; the ledger is emptied: the next delivery sends it all."""
    requests.post(
        intake.base_url + "/admin/reset",
        headers={"Authorization": f"Bearer {intake.admin_token}"},
        timeout=120,
    ).raise_for_status()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "truncate ops.feed_batch_record, ops.feed_batch, ops.feed_record_state,"
            " ops.feed_rejection, ops.feed_control"
        )
        conn.execute("vacuum analyze ops.feed_batch_record, ops.feed_record_state")


def _line(run: Run) -> str:
    return (
        f"plain POST {run.plain_rate:,.0f} records/s; feed {run.feed_rate:,.0f} records/s"
        f" delivered and acknowledged ({run.ratio:.0%} of plain); reconciliation"
        f" {run.reconcile_seconds:.1f} s; {run.differences} differences,"
        f" {run.duplicates} applied twice"
    )


def report(args: argparse.Namespace, runs: list[Run], machine: str, started: datetime) -> str:
    feed = statistics.median(r.feed_rate for r in runs)
    ratio = statistics.median(r.ratio for r in runs)
    reconcile_seconds = statistics.median(r.reconcile_seconds for r in runs)
    lines = [
        f"{started:%Y-%m-%d %H:%M} UTC: {args.records:,} records, batches of {args.chunk:,},"
        f" {len(runs)} run(s)",
        "",
        f"- Machine: {machine}",
        f"- Command: `python -m bench.national_feed --records {args.records} --chunk"
        f" {args.chunk} --repeat {args.repeat}`",
        *(f"- Run {n}: {_line(run)}" for n, run in enumerate(runs, 1)),
        f"- Median: feed {feed:,.0f} records/s (target >= {TARGET_RATE:,}), {ratio:.0%} of the"
        f" plain POST rate (target >= {TARGET_RATIO:.0%}), reconciliation"
        f" {reconcile_seconds:.1f} s (target < {TARGET_RECONCILE:.0f} s at 1,000,000)",
        f"- Verdict: {'PASS' if all(r.passed for r in runs) else 'FAIL'}",
    ]
    if args.note:
        lines.append(f"- Note: {args.note}")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
