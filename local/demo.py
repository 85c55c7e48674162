"""The main job on the embedded default: local warehouse + stand-in sources + Airflow.

Starts the project's PostgreSQL (unless WAREHOUSE_URL is set) and the stand-ins of every source
in the catalogue (three provincial registries, three technology exchanges, statistical report
drops), migrates Airflow's metadata DB, runs every sync DAG and then the warehouse DAG through
Airflow (`dag.test()`, local.run_dags) with a line per run as it finishes, prints per-source
counts, and stops what it started.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pendulum
import psycopg

from connectors.catalogue import load_catalogue
from connectors.warehouse import ensure_schema
from dags.sync_dag_factory import WAREHOUSE_DAG_ID
from expectations.report import reports_dir
from local.airflow_env import airflow_settings, connection_env, migrate_metadata_db
from local.dbt import build_manifest
from local.progress import Progress
from local.standins import run_standins
from local.warehouse import LOCAL_STATE, local_server, resolve_warehouse_url

AIRFLOW_HOME = LOCAL_STATE / "airflow"
LOG_DIR = LOCAL_STATE / "logs"
DROPS_ROOT = LOCAL_STATE / "drops"


def main() -> int:
    started = time.monotonic()
    embedded = not os.environ.get("WAREHOUSE_URL")
    step("warehouse", "embedded PostgreSQL under .local/postgres" if embedded else "WAREHOUSE_URL")
    warehouse_url = resolve_warehouse_url()
    sources = load_catalogue()
    dag_ids = [f"{s.id}__{entity}" for s in sources for entity in s.entities]
    try:
        ensure_schema(warehouse_url)
        step("dbt", "parsing the project (a broken project stops here; later builds parse less)")
        build_manifest()
        settings = airflow_settings(AIRFLOW_HOME)
        step("airflow", f"migrating the metadata DB in {AIRFLOW_HOME.relative_to(Path.cwd())}")
        migrate_metadata_db(settings)
        kinds = sorted({s.system for s in sources})
        step("sources", f"starting stand-ins of {len(sources)} sources ({', '.join(kinds)})")
        with run_standins(sources, DROPS_ROOT) as connections:
            env = {**settings, **connection_env(warehouse_url, connections)}
            step("run", f"{len(dag_ids)} sync DAGs, then {WAREHOUSE_DAG_ID} (dag.test)")
            reports, log_file = run_dags([*dag_ids, WAREHOUSE_DAG_ID], env)
        ok = print_summary(warehouse_url, reports, log_file, time.monotonic() - started)
    finally:
        if embedded:
            local_server().stop()
    return 0 if ok else 1


def step(name: str, message: str) -> None:
    print(f"[{name:>9}] {message}", flush=True)


def run_dags(dag_ids: list[str], env: dict[str, str]) -> tuple[list[dict], Path]:
    """Every DAG through local.run_dags (one process), a progress line as each run finishes."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    stamp = pendulum.now("UTC").format("YYYYMMDDTHHmmss")
    log_file = LOG_DIR / f"demo-{stamp}.log"
    report_file = LOG_DIR / f"demo-{stamp}.jsonl"
    progress = Progress(len(dag_ids))
    with (
        log_file.open("w") as log,
        subprocess.Popen(
            [sys.executable, "-m", "local.run_dags", str(report_file), *dag_ids],
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        ) as process,  # its exit code is not checked: the reports and the ledger tell
    ):
        reports = _follow_reports(report_file, process, progress)
    return reports, log_file


def _follow_reports(
    report_file: Path, process: subprocess.Popen, progress: Progress, poll: float = 0.25
) -> list[dict]:
    """The reports local.run_dags appends to `report_file` (a JSON line per DAG run), read as
    they are appended while it runs; each one printed as a progress line."""
    reports: list[dict] = []
    offset, partial = 0, b""
    while True:
        exited = process.poll() is not None  # then read what it wrote last, and stop
        if report_file.exists():
            with report_file.open("rb") as file:
                file.seek(offset)
                chunk = file.read()
            offset += len(chunk)
            *lines, partial = (partial + chunk).split(b"\n")
            for line in filter(None, lines):
                report = json.loads(line)
                reports.append(report)
                progress.finished(report["dag_id"], report["state"], report["seconds"])
        if exited:
            return reports
        time.sleep(poll)


_PER_SOURCE_SQL = """
with latest as (
    select *, row_number() over (partition by source_id, entity order by batch_id desc) as n
    from ops.load_batch
)
select
    source_id,
    count(distinct entity) as entities,
    sum(records_extracted) as extracted,
    sum(records_landed) as landed,
    sum(records_passed) as passed,
    sum(records_warned) as warned,
    sum(records_quarantined) as quarantined,
    count(*) filter (where state = 'published') as published,
    count(*) filter (where state = 'failed') as failed,
    count(*) filter (where n = 1 and state = 'failed') as failing_now
from latest
group by source_id
order by source_id
"""

_REPAIRS_SQL = """
select repair ->> 'repair' as kind, count(*)
from raw.landed_record, jsonb_array_elements(repairs) as repair
where repairs is not null
group by 1
order by 2 desc
"""

# The three most frequent open reasons of each source.
_TOP_REASONS_SQL = """
select source_id, reason, rows
from (
    select
        source_id, left(reason, 110) as reason, sum(open_rows) as rows,
        row_number() over (partition by source_id order by sum(open_rows) desc) as n
    from ops.open_quarantine
    group by source_id, left(reason, 110)
) as ranked
where n <= 3
order by source_id, rows desc
"""

# Warnings grouped like ops.open_quarantine groups reasons: quoted values folded to "…".
_TOP_WARNINGS_SQL = """
select left(ops.fold_quoted_values(reason), 110), count(*)
from ops.quality_warning group by 1 order by 2 desc limit 5
"""

_BLOCKED_SQL = """
select batch_id, source_id, entity, blocked_reason from ops.load_batch
where state = 'failed' and blocked_reason is not null order by batch_id
"""


_MARTS_SHOWN = (
    "marts.fct_st_task",
    "marts.fct_ip_event",
    "marts.dim_organisation",
    "marts.dim_expert",
    "marts.kpi_scorecard",
)


def _analyst_answers(conn: psycopg.Connection) -> list[str]:
    """The README's two analyst questions, answered on the demo's warehouse."""
    tasks = conn.execute(
        "select p.name, count(*) from marts.fct_st_task as t"
        " join marts.dim_province as p on p.code = t.province_code"
        " and t.unit_date between coalesce(p.valid_from, '-infinity')"
        " and coalesce(p.valid_to, 'infinity')"
        " where t.province_code_current = '37' and t.acceptance_year = 2024"
        " group by p.name order by p.name"
    ).fetchall()
    statuses = conn.execute(
        "select status, count(*) from marts.kpi_scorecard"
        " where province_code = '37' and year = 2025 group by status order by status"
    ).fetchall()
    return [
        f"S&T tasks today's Ninh Bình accepted in 2024: {sum(n for _, n in tasks)} ("
        + ", ".join(f"{name} {n}" for name, n in tasks)
        + ")",
        "Ninh Bình KPI targets for 2025: "
        + ", ".join(f"{status} {n}" for status, n in statuses)
        + " (marts.kpi_scorecard; README: Querying the warehouse)",
    ]


def print_summary(warehouse_url: str, reports: list[dict], log_file: Path, seconds: float) -> bool:
    with psycopg.connect(warehouse_url) as conn:
        per_source = conn.execute(_PER_SOURCE_SQL).fetchall()
        repairs = conn.execute(_REPAIRS_SQL).fetchall()
        reasons = conn.execute(_TOP_REASONS_SQL).fetchall()
        warnings = conn.execute(_TOP_WARNINGS_SQL).fetchall()
        blocked = conn.execute(_BLOCKED_SQL).fetchall()
        rejected = conn.execute(
            "select file_name, error from ops.drop_file where state = 'rejected'"
        ).fetchall()
        drift = conn.execute(
            "select source_id, entity, schema_drift from ops.load_batch"
            " where schema_drift is not null order by batch_id"
        ).fetchall()
        marts = {}
        for table in _MARTS_SHOWN:
            exists = conn.execute("select to_regclass(%s)", (table,)).fetchone()[0]
            marts[table] = (
                conn.execute(f"select count(*) from {table}").fetchone()[0] if exists else None
            )
        answers = _analyst_answers(conn) if all(marts.values()) else []

    print("\nPer source (all batches so far; rows passed / published with a warning / held):")
    header = (
        "source", "ent.", "extracted", "landed", "passed", "warned", "quarant.", "published",
        "failed",
    )  # fmt: skip
    print("  {:<24}{:>5}{:>10}{:>8}{:>8}{:>8}{:>10}{:>10}{:>7}".format(*header))
    for (
        source_id,
        entities,
        extracted,
        landed,
        passed,
        warned,
        quarantined,
        published,
        failed,
        _,
    ) in per_source:
        print(
            f"  {source_id:<24}{entities:>5}{extracted:>10}{landed:>8}{passed or 0:>8}"
            f"{warned or 0:>8}{quarantined or 0:>10}{published:>10}{failed:>7}"
        )
    if repairs:
        print(
            "Repaired at landing (original kept in the payload): "
            + ", ".join(f"{kind} {count}" for kind, count in repairs)
        )
    if reasons:
        print("Top reasons in open quarantine, per source (list it all: make quarantine):")
        current = None
        for source_id, reason, count in reasons:
            if source_id != current:
                print(f"  {source_id}")
                current = source_id
            print(f"    {count:>6}  {reason}")
    if warnings:
        print("Top warnings (published, see ops.quality_warning):")
        for reason, count in warnings:
            print(f"    {count:>6}  {reason}")
    for batch_id, source_id, entity, reason in blocked:
        print(f"Blocked batch {batch_id} ({source_id}/{entity}): {reason}")
    for file_name, error in rejected:
        print(f"Rejected file {file_name}: {error}")
    for source_id, entity, notes in drift:
        if notes.get("added"):
            print(f"Schema drift noted: {source_id}/{entity} added {', '.join(notes['added'])}")
        for name, finding in notes.get("retyped_in_some_records", {}).items():
            print(
                f"Wrong type in {finding['records']} record(s) of {source_id}/{entity}:"
                f" {name} (the contract says {finding['expected']}; quarantined unless repaired)"
            )
    print(
        "Warehouse (published marts, rows): "
        + ", ".join(
            f"{table.split('.')[1]} {count if count is not None else 'not built'}"
            for table, count in marts.items()
        )
    )
    for answer in answers:
        print(answer)

    failed_runs = [r for r in reports if r["state"] != "success"]
    print(f"\nDAG runs: {len(reports) - len(failed_runs)} succeeded, {len(failed_runs)} failed")
    for report in failed_runs:
        print(
            f"  {report['dag_id']}: {report['state']} (tasks {', '.join(report['failed_tasks'])})"
        )
    print(f"Time taken: {seconds:.0f} s. Airflow log of the runs: {log_file}")
    print("Next:")
    print("  make airflow-ui      Airflow UI on http://localhost:8080 with these DAGs and runs")
    print("  make psql            SQL shell on the warehouse; try:")
    print("      select source_id, entity, state, records_passed, records_warned,")
    print("             records_quarantined, blocked_reason")
    print("        from ops.load_batch order by batch_id desc limit 20;")
    print("  make quarantine      what waits in quarantine, per source and reason, oldest first")
    print("                       (SOURCE=<id> for one source; make replay after a rule fix)")
    print(f"  quality reports      {reports_dir() / 'index.html'}")
    expected = len(reports) > 0 and not failed_runs
    return expected and all(row[9] == 0 for row in per_source)
