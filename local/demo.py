"""The main job on the embedded default: local warehouse + stand-in sources + a running Airflow.

Starts the project's PostgreSQL (unless WAREHOUSE_URL is set), the stand-ins of every source in
the catalogue (three provincial registries sending signed change events, three technology
exchanges, statistical report drops), the event intake and dispatcher, and Airflow's own
components (local.pipeline_stack). The scheduler runs every sync DAG (triggered once: the
first load) and then the warehouse DAG, a line per run as it finishes; then one record changes
at a registry and the demo times it until it shows in the marts, all by itself (change events).
Each published build goes on to the stand-in national intake (the national_feed DAG); the demo
ends by reconciling what the warehouse published with what the intake holds. Prints
per-source counts and stops what it started.
"""

from __future__ import annotations

import os
import signal
import time
from functools import partial
from pathlib import Path

import pendulum
import psycopg

from connectors.catalogue import load_catalogue
from connectors.national_feed import IntakeClients
from connectors.national_reconcile import FeedBalance, reconcile
from connectors.warehouse import ensure_schema
from dags.national_feed_dag import NATIONAL_FEED_DAG_ID
from dags.sync_dag_factory import WAREHOUSE_DAG_ID
from expectations.report import reports_dir
from local.airflow_stack import executor_from_environment
from local.change_demo import SOURCE_ID as CHANGED_SOURCE
from local.change_demo import Change, show_a_change
from local.dag_runs import DagRuns, RunReport
from local.dbt import build_manifest
from local.feed import connection_env as feed_connections
from local.feed import intake_connection, local_intake
from local.pipeline_stack import running_pipeline
from local.progress import Progress
from local.warehouse import (
    LOCAL_STATE,
    local_server,
    resolve_airflow_metadata_url,
    resolve_warehouse_url,
)

AIRFLOW_HOME = LOCAL_STATE / "airflow"
DROPS_ROOT = LOCAL_STATE / "drops"
# Task processes at a time. Sync tasks are short and mostly wait on PostgreSQL and HTTP.
PARALLELISM = 8


def main() -> int:
    signal.signal(signal.SIGTERM, _interrupt)
    started = time.monotonic()
    embedded = not os.environ.get("WAREHOUSE_URL")
    step("warehouse", "embedded PostgreSQL under .local/postgres" if embedded else "WAREHOUSE_URL")
    warehouse_url = resolve_warehouse_url()
    sources = load_catalogue()
    sync_dag_ids = [f"{s.id}__{entity}" for s in sources for entity in s.entities]
    try:
        ensure_schema(warehouse_url)
        step("dbt", "parsing the project (a broken project stops here; later builds parse less)")
        build_manifest()
        metadata_url = resolve_airflow_metadata_url(warehouse_url)
        kinds = sorted({s.system for s in sources})
        executor = executor_from_environment()  # STI_AIRFLOW_EXECUTOR: README, Scaling out
        step(
            "start",
            f"stand-ins of {len(sources)} sources ({', '.join(kinds)}) sending signed change"
            " events; the event intake and dispatcher; Airflow's api-server, scheduler,"
            f" dag-processor and triggerer ({executor.get('executor', 'LocalExecutor')}, metadata"
            " DB in PostgreSQL; logs in"
            f" {_relative(AIRFLOW_HOME / 'logs')}); the stand-in national intake (database"
            " national_intake)",
        )
        with (
            local_intake(warehouse_url) as intake,
            running_pipeline(
                sources,
                warehouse_url,
                metadata_url,
                AIRFLOW_HOME,
                DROPS_ROOT,
                extra_env=feed_connections(intake),
                parallelism=PARALLELISM,
                **executor,
            ) as pipeline,
        ):
            progress = Progress(len(sync_dag_ids) + 2)
            reports = run_initial_load(pipeline.runs, sync_dag_ids, progress)
            registry = pipeline.connections[CHANGED_SOURCE]["host"]
            change = show_a_change(
                pipeline.runs, warehouse_url, registry, progress, national_feed=True
            )
            reports += change.reports
            with IntakeClients(partial(intake_connection, intake)) as clients:
                balances, _ = reconcile(warehouse_url, clients)
        seconds = time.monotonic() - started
        ok = print_summary(warehouse_url, reports, AIRFLOW_HOME / "logs", seconds, change, balances)
    finally:
        if embedded:
            local_server().stop()
    delivered = change.delivered_after is not None or change.national_unchanged
    return 0 if ok and delivered else 1


def _interrupt(signum: int, frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: a second one must not cut the clean-up
    raise KeyboardInterrupt  # `kill` stops what the demo started, like Ctrl-C


def step(name: str, message: str) -> None:
    print(f"[{name:>9}] {message}", flush=True)


def _relative(path: Path) -> Path:
    return path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path


def run_initial_load(
    runs: DagRuns, sync_dag_ids: list[str], progress: Progress, *, national_feed: bool = True
) -> list:
    """Every sync DAG triggered once, then one warehouse build on all they published, then the
    national feed of that build.

    The warehouse DAG stays paused meanwhile: unpaused, it would build on the first publish
    and again and again while the others publish (a paused DAG queues no asset events). It is
    unpaused with its triggered run, so every change event from then on ends in a build by
    itself. The national feed runs on every published build (sti://warehouse/marts); without
    `national_feed` it stays paused (the latency benchmark measures up to the marts)."""
    feed = [NATIONAL_FEED_DAG_ID] if national_feed else []
    runs.wait_for_dags([*sync_dag_ids, WAREHOUSE_DAG_ID, *feed])
    runs.set_paused([WAREHOUSE_DAG_ID], paused=True)
    runs.set_paused([*sync_dag_ids, *feed], paused=False)
    since = pendulum.now("UTC")
    run_id = f"demo__{since.format('YYYYMMDDTHHmmss')}"
    step(
        "run",
        f"{len(sync_dag_ids)} sync DAGs triggered, then {WAREHOUSE_DAG_ID}, then"
        f" {NATIONAL_FEED_DAG_ID}",
    )
    for dag_id in sync_dag_ids:
        runs.trigger(dag_id, run_id)

    def report(run: RunReport) -> None:
        progress.finished(run.dag_id, run.state, run.seconds)

    def all_synced(finished: list[RunReport], _runs: list[dict]) -> bool:
        # The demo's runs; a safety-net cron may add runs of its own meanwhile.
        return {r.dag_id for r in finished if r.run_id == run_id} >= set(sync_dag_ids)

    reports = runs.follow(since, all_synced, report, timeout=900)
    runs.trigger(WAREHOUSE_DAG_ID, run_id)
    runs.set_paused([WAREHOUSE_DAG_ID], paused=False)  # a paused DAG's runs stay queued

    def built(finished: list[RunReport], _runs: list[dict]) -> bool:
        build = [r for r in finished if r.dag_id == WAREHOUSE_DAG_ID and r.run_id == run_id]
        # A published build triggers the national feed (nothing else does in the demo).
        return bool(build) and (
            not national_feed
            or build[0].state != "success"
            or any(r.dag_id == NATIONAL_FEED_DAG_ID for r in finished)
        )

    # follow() reports every run since `since` once: skip those already reported above.
    seen = {(r.dag_id, r.run_id) for r in reports}
    reports += [
        r
        for r in runs.follow(since, built, report, timeout=900, already=seen)
        if (r.dag_id, r.run_id) not in seen
    ]
    return reports


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


def print_summary(
    warehouse_url: str,
    reports: list[RunReport],
    log_dir: Path,
    seconds: float,
    change: Change,
    balances: list[FeedBalance],
) -> bool:
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

    failed_runs = [r for r in reports if r.state != "success"]
    print(f"\nDAG runs: {len(reports) - len(failed_runs)} succeeded, {len(failed_runs)} failed")
    for report in failed_runs:
        print(f"  {report.dag_id}: {report.state} (tasks {', '.join(report.failed_tasks)})")
    print(change.summary())
    differences = feed_summary(balances)
    print(f"Time taken: {seconds:.0f} s. Airflow's logs: {_relative(log_dir)}")
    print("Next:")
    print("  make airflow-ui      Airflow UI on http://localhost:8080 with these DAGs and runs")
    print("  make psql            SQL shell on the warehouse; try:")
    print("      select source_id, entity, state, records_passed, records_warned,")
    print("             records_quarantined, blocked_reason")
    print("        from ops.load_batch order by batch_id desc limit 20;")
    print("  make quarantine      what waits in quarantine, per source and reason, oldest first")
    print("                       (SOURCE=<id> for one source; make replay after a rule fix)")
    print(f"  quality reports      {reports_dir() / 'index.html'}")
    print("  make feed            the national feed's ledger (make feed-reconcile: reconcile)")
    expected = len(reports) > 0 and not failed_runs and differences == 0
    return expected and all(row[9] == 0 for row in per_source)


def feed_summary(balances: list[FeedBalance]) -> int:
    """One paragraph on the national feed; the number of differences."""
    published = sum(b.published for b in balances)
    held = sum(b.national or 0 for b in balances)
    differences = sum(b.differences for b in balances)
    rejected = sum(b.kinds.get("rejected", 0) for b in balances)
    provinces = len({b.province_code for b in balances})
    print(
        f"National feed: {published} published records of {len({b.entity for b in balances})}"
        f" national entities in {provinces} provinces; the national intake holds {held}"
        f" (acknowledged {sum(b.acknowledged for b in balances)}); {rejected} rejected by it"
        " wait for a fix at the source (make quarantine)."
    )
    agree = all(
        b.national_checksum == b.acknowledged_checksum
        and (b.kinds.get("rejected") or b.published_checksum == b.acknowledged_checksum)
        for b in balances
    )
    print(
        f"Reconciliation: {differences} differences; checksums"
        f" {'agree' if agree else 'DIFFER'} (make feed-reconcile lists them)"
    )
    return differences
