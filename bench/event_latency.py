"""Event → mart latency: single-record changes at a stand-in registry until the marts show them.

The whole event-driven chain runs, as `make demo` runs it (local.pipeline_stack): a stand-in
registry that posts a signed CloudEvent per change, the event intake, the dispatcher and a real
Airflow (LocalExecutor, metadata DB in PostgreSQL). After the first load (the sync DAG, then one
warehouse build), N records are changed one at a time, `--spacing` seconds apart, and each is
timed from its change until `marts.fct_st_task` shows its version. Target (issue 14): p95 of
change → visible <= 60 s on the embedded set-up.

    .venv/bin/python -m bench.event_latency                          # 50 changes, 4 s apart
    .venv/bin/python -m bench.event_latency --events 3 --spacing 1 --no-write   # smoke

The clock: the stand-in's events carry `time` from its synthetic clock (the record's
`updated_at`, not wall time), so every figure is measured from when the change's
`POST /_standin/changes` returned, on the machine's clock, which the intake (`received_at`),
Airflow (`dispatched_at`), the ledger and the publish log share.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pendulum
import psycopg
import requests
import yaml

from bench.event_intake import machine_description
from bench.results_log import append_section
from connectors.catalogue import DEFAULT_PATH, PATH_ENV, load_catalogue
from connectors.warehouse import ensure_schema
from dags.sync_dag_factory import WAREHOUSE_DAG_ID
from local.change_demo import ENTITY, SOURCE_ID
from local.dag_runs import FINISHED, DagRuns, RunReport
from local.dbt import build_manifest
from local.demo import PARALLELISM, run_initial_load
from local.pipeline_stack import running_pipeline
from local.postgres import drop_database, ensure_database
from local.progress import Progress
from local.warehouse import local_server

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS = REPO_ROOT / "bench" / "results" / "event_latency.md"
TARGET_P95 = 60.0  # seconds, change → visible in the marts
POLL = 0.5  # seconds between looks at the marts
SETTLE = 240.0  # at most this long after the last change is visible for the runs to finish

# Milestones of a change, in order: (key, label). Each is a time on the machine's clock.
MILESTONES = (
    ("received", "in the inbox (ops.event_inbox.received_at)"),
    ("dispatched", "sent to Airflow (dispatched_at, Airflow's asset event time)"),
    ("extraction", "its sync batch started extracting (ops.load_batch.started_at)"),
    ("batch_published", "its batch published by the gate (load_batch.published_at)"),
    ("build_started", "the warehouse build including it began (warehouse_publish.started_at)"),
    ("build_published", "that build published (warehouse_publish.finished_at)"),
    ("visible", "marts.fct_st_task shows its version (seen by the poller)"),
)
# The stages between consecutive milestones (from the change for the first).
STAGES = (
    ("change → inbox", "the registry's event thread and the intake"),
    ("inbox → dispatched", "the dispatcher's 1 s cycle and Airflow's asset event"),
    ("dispatched → extraction", "scheduler: asset event → sync run → task started"),
    ("extraction → batch published", "sync run: extract, land, gate, publish"),
    ("batch published → build began", "waiting for the warehouse build (one at a time)"),
    ("build began → build published", "the warehouse build (dbt, write–audit–publish)"),
    ("build published → seen", "the poller's next look (every 0.5 s)"),
)

# The version the event announced (the inbox's) and the version the marts show, per record.
_VISIBLE_SQL = """
with announced as (
    select record_id, max(version) as version from ops.event_inbox
    where source_id = %(s)s and entity = %(e)s and record_id = any(%(ids)s)
    group by record_id
),
shown as (
    select r.record_id, max(f.version) as version
    from marts.fct_st_task as f
    join raw.landed_record as r on r.landed_id = f.landed_id
    where r.source_id = %(s)s and r.entity = %(e)s and r.record_id = any(%(ids)s)
    group by r.record_id
)
select a.record_id from announced as a join shown as s using (record_id)
where s.version >= a.version
"""
# Each change's path through the pipeline: its inbox row, the batch that landed its version
# and the warehouse publish that included that batch.
_STAGES_SQL = """
with inbox as (
    select record_id, max(version) as version, min(received_at) as received_at,
        min(dispatched_at) as dispatched_at, min(asset_event_id) as asset_event_id,
        count(*) as events
    from ops.event_inbox
    where source_id = %(s)s and entity = %(e)s and record_id = any(%(ids)s)
    group by record_id
)
select i.record_id, i.version, i.received_at, i.dispatched_at, i.asset_event_id, i.events,
    b.batch_id, b.started_at, b.published_at, w.publish_id, w.started_at, w.finished_at
from inbox as i
left join raw.landed_record as r
    on r.source_id = %(s)s and r.entity = %(e)s and r.record_id = i.record_id
    and r.version = i.version
left join ops.load_batch as b on b.batch_id = r.batch_id
left join ops.warehouse_publish as w on w.publish_id = b.publish_id
"""


@dataclass
class Change:
    number: int
    record_id: str
    posted_at: datetime  # the POST's return: what every figure is measured from
    post_seconds: float  # how long the POST took
    at: dict[str, datetime | None] = field(default_factory=dict)  # milestone → when
    version: int | None = None
    events: int = 0  # inbox rows for the record (1 unless the registry re-sent)
    asset_event_id: int | None = None
    batch_id: int | None = None
    publish_id: int | None = None

    def after(self, milestone: str) -> float | None:
        """Seconds from the change to `milestone` (None if not reached)."""
        moment = self.at.get(milestone)
        return None if moment is None else (moment - self.posted_at).total_seconds()

    def stage(self, index: int) -> float | None:
        """Seconds of stage `index` (STAGES): between milestone index-1 (or the change) and
        milestone index."""
        end = self.after(MILESTONES[index][0])
        start = 0.0 if index == 0 else self.after(MILESTONES[index - 1][0])
        return None if end is None or start is None else end - start

    @property
    def visible_after(self) -> float | None:
        return self.after("visible")


@dataclass
class Result:
    events: int
    spacing: float
    entities: tuple[str, ...]
    changes: list[Change]
    initial_reports: list[RunReport]  # the first load: sync runs, then the warehouse build
    reports: list[RunReport]  # every run queued from the first change on, finished
    unfinished: list[str]  # runs still queued or running when the benchmark stopped
    build_tasks: dict[str, list[float]]  # warehouse task → its seconds in the changes' builds
    wall_seconds: float  # from the first change until the last was visible (or gave up)
    machine: str
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]

    @property
    def latencies(self) -> list[float]:
        return [c.visible_after for c in self.changes if c.visible_after is not None]

    @property
    def all_visible(self) -> bool:
        return len(self.changes) == self.events and len(self.latencies) == self.events

    @property
    def p95(self) -> float | None:
        return percentile(self.latencies, 95) if self.latencies else None

    @property
    def passed(self) -> bool:
        return self.all_visible and self.p95 is not None and self.p95 <= TARGET_P95

    def runs_of(self, dag_id: str) -> list[RunReport]:
        return [r for r in self.reports if r.dag_id == dag_id]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.event_latency",
        description="Single-record change events at a stand-in registry → visible in the marts.",
    )
    parser.add_argument("--events", type=int, default=50, help="changes (default %(default)s)")
    parser.add_argument(
        "--spacing", type=float, default=4.0, help="seconds between changes (default 4.0)"
    )
    parser.add_argument(
        "--database",
        default="bench_latency",
        help="warehouse database, created fresh (Airflow's: <name>_airflow); default %(default)s",
    )
    parser.add_argument(
        "--entities",
        default=ENTITY,
        help=f"comma-separated entities of {SOURCE_ID} in the catalogue (must include {ENTITY})",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=900.0,
        help="seconds after the last change for all to be visible (default %(default)s)",
    )
    parser.add_argument("--keep", action="store_true", help="keep both databases afterwards")
    parser.add_argument("--note", default="", help="a remark for the results section")
    parser.add_argument("--no-write", action="store_true", help="do not append to the results")
    args = parser.parse_args(argv)
    args.entities = tuple(e.strip() for e in args.entities.split(",") if e.strip())
    if args.events < 1 or args.spacing < 0 or args.timeout <= 0:
        parser.error("--events must be at least 1, --spacing >= 0, --timeout > 0")
    if ENTITY not in args.entities:
        parser.error(f"--entities must include {ENTITY} (the changes are {ENTITY} records)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started_at = datetime.now(UTC)
    result = run_benchmark(
        args.events,
        args.spacing,
        database=args.database,
        entities=args.entities,
        timeout=args.timeout,
        keep=args.keep,
    )
    command = command_line(argv if argv is not None else sys.argv[1:])
    text = report(result, command, started_at, args.note)
    print(text)
    if not args.no_write:
        header = (
            "# Event → mart latency benchmark results\n\nAppended by `python -m"
            " bench.event_latency`; see `bench/README.md`.\n"
        )
        append_section(RESULTS, header, "\n## " + text + "\n")
        _say(f"results appended to {RESULTS.relative_to(REPO_ROOT)}")
    return 0 if result.passed else 1


def command_line(given: list[str]) -> str:
    """The command as run, for the report: the note left out (it is printed apart) and the
    server named when WAREHOUSE_URL chose it (without a password)."""
    shown, skip = [], False
    for arg in given:
        if skip:
            skip = False
        elif arg == "--note":
            skip = True
        elif not arg.startswith("--note="):
            shown.append(arg)
    prefix = ""
    if os.environ.get("WAREHOUSE_URL"):
        parts = urlsplit(os.environ["WAREHOUSE_URL"])
        netloc = parts.netloc.rsplit("@", 1)[-1]
        user = f"{parts.username}@" if parts.username else ""
        prefix = f"WAREHOUSE_URL={parts._replace(netloc=user + netloc).geturl()} "
    return prefix + shlex.join([".venv/bin/python", "-m", "bench.event_latency", *shown])


# --- The run ----------------------------------------------------------------------------------


def run_benchmark(
    events: int,
    spacing: float,
    *,
    database: str = "bench_latency",
    entities: tuple[str, ...] = (ENTITY,),
    timeout: float = 900.0,
    keep: bool = False,
) -> Result:
    """The pipeline on fresh databases, the first load, then `events` changes `spacing`
    seconds apart, each followed until the marts show it."""
    with (
        bench_server() as (admin_url, server),
        fresh_databases(admin_url, database, keep) as (
            warehouse_url,
            metadata_url,
        ),
    ):
        with psycopg.connect(warehouse_url) as conn:
            pg_version = conn.execute("show server_version").fetchone()[0]
        ensure_schema(warehouse_url)
        _say("dbt parse (the manifest the warehouse DAG's builds start from)")
        build_manifest()
        folder = Path(tempfile.mkdtemp(prefix="sti-bench-latency-"))
        ok = False
        try:
            catalogue = write_catalogue(folder / "sources.yml", entities)
            sources = load_catalogue(catalogue)
            sync_dag_ids = [f"{s.id}__{entity}" for s in sources for entity in s.entities]
            _say(
                f"starting the stand-in registry, the intake, the dispatcher and Airflow"
                f" (logs in {folder / 'airflow' / 'logs'})"
            )
            with running_pipeline(
                sources,
                warehouse_url,
                metadata_url,
                folder / "airflow",
                folder / "drops",
                extra_env={PATH_ENV: str(catalogue)},
                parallelism=PARALLELISM,
            ) as pipeline:
                _say(f"first load: {', '.join(sync_dag_ids)}, then {WAREHOUSE_DAG_ID}")
                initial = run_initial_load(
                    pipeline.runs,
                    sync_dag_ids,
                    Progress(len(sync_dag_ids) + 1),
                    national_feed=False,
                )
                _say("first load done")
                failed = [r.dag_id for r in initial if r.state != "success"]
                if failed:
                    raise RuntimeError(f"the first load failed: {failed}")
                registry = pipeline.connections[sources[0].connection_id]["host"]
                load_before = os.getloadavg()
                since = pendulum.now("UTC")
                started = time.monotonic()
                changes = make_changes(warehouse_url, registry, events, spacing, timeout)
                wall = time.monotonic() - started
                _say("waiting for the runs the changes caused to finish")
                reports, unfinished = settle(
                    pipeline.runs, warehouse_url, [*sync_dag_ids, WAREHOUSE_DAG_ID], since
                )
                load_after = os.getloadavg()
                build_tasks = task_seconds(
                    pipeline.runs, [r for r in reports if r.dag_id == WAREHOUSE_DAG_ID]
                )
            trace(warehouse_url, changes)
            ok = True
        finally:
            if ok:
                shutil.rmtree(folder, ignore_errors=True)
            else:
                _say(f"Airflow's logs kept in {folder / 'airflow' / 'logs'}")
    return Result(
        events=events,
        spacing=spacing,
        entities=tuple(entities),
        changes=changes,
        initial_reports=initial,
        reports=reports,
        unfinished=unfinished,
        build_tasks=build_tasks,
        wall_seconds=wall,
        machine=machine_description(server, pg_version),
        load_before=load_before,
        load_after=load_after,
    )


def make_changes(
    warehouse_url: str, registry_url: str, events: int, spacing: float, timeout: float
) -> list[Change]:
    """POST `events` single-record updates, one every `spacing` seconds, while a thread looks
    at the marts every POLL seconds; returns when all are visible or `timeout` seconds after
    the last change."""
    changes: list[Change] = []
    lock = threading.Lock()
    posting_done = threading.Event()
    stop = threading.Event()
    errors: list[BaseException] = []

    def poll() -> None:
        try:
            with psycopg.connect(warehouse_url, autocommit=True) as conn:
                while not stop.is_set():
                    with lock:
                        waiting = {c.record_id: c for c in changes if "visible" not in c.at}
                        everything_posted = posting_done.is_set()
                    if not waiting and everything_posted:
                        return
                    if waiting:
                        looked = datetime.now(UTC)  # the query's snapshot is at least as new
                        shown = conn.execute(
                            _VISIBLE_SQL, {"s": SOURCE_ID, "e": ENTITY, "ids": list(waiting)}
                        ).fetchall()
                        for (record_id,) in shown:
                            change = waiting[record_id]
                            change.at["visible"] = looked
                            _say(
                                f"change {change.number}/{events} {record_id} visible after"
                                f" {change.visible_after:.1f} s"
                            )
                    stop.wait(POLL)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    poller = threading.Thread(target=poll, name="marts-poller", daemon=True)
    poller.start()
    start = time.monotonic()
    try:
        with requests.Session() as session:
            session.trust_env = False
            for number in range(1, events + 1):
                delay = start + (number - 1) * spacing - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                if errors:
                    break
                sent = time.monotonic()
                reply = session.post(
                    f"{registry_url}/_standin/changes",
                    json={"update": 1, "entity": ENTITY},
                    timeout=30,
                )
                posted_at = datetime.now(UTC)
                reply.raise_for_status()
                (record_id,) = reply.json()["updated"]
                with lock:
                    changes.append(Change(number, record_id, posted_at, time.monotonic() - sent))
        posting_done.set()
        _say(f"{events} changes posted; waiting (up to {timeout:.0f} s) for the marts")
        poller.join(timeout)
    finally:
        posting_done.set()
        stop.set()
        poller.join(10)
    if errors:
        raise RuntimeError(f"looking at the marts failed: {errors[0]!r}") from errors[0]
    return changes


def settle(
    runs: DagRuns, warehouse_url: str, dag_ids: list[str], since: datetime
) -> tuple[list[RunReport], list[str]]:
    """Wait (up to SETTLE s) until no run of `dag_ids` queued since `since` is unfinished and
    no inbox event waits for dispatch, twice in a row (the scheduler may still be making a run
    from a queued asset event); the finished runs, and the unfinished ones left."""
    deadline = time.monotonic() + SETTLE
    quiet = 0
    while True:
        found = runs.runs(dag_ids, since=since)
        open_runs = [f"{r['dag_id']} ({r['state']})" for r in found if r["state"] not in FINISHED]
        with psycopg.connect(warehouse_url) as conn:
            pending = conn.execute(
                "select count(*) from ops.event_inbox where dispatch_state = 'pending'"
            ).fetchone()[0]
        quiet = quiet + 1 if not open_runs and not pending else 0
        if quiet >= 2 or time.monotonic() > deadline:
            break
        time.sleep(3)
    reports = [runs.report(r) for r in found if r["state"] in FINISHED]
    return sorted(reports, key=lambda r: r.started or since), open_runs


def task_seconds(runs: DagRuns, reports: list[RunReport]) -> dict[str, list[float]]:
    """Each task's duration (Airflow's, start → end) in the given runs, by task id, in the
    DAG's order of first start."""
    seconds: dict[str, list[tuple[str, float]]] = {}
    for report in reports:
        instances = runs.api.call(
            "GET", f"/api/v2/dags/{report.dag_id}/dagRuns/{report.run_id}/taskInstances"
        ).json()["task_instances"]
        for ti in instances:
            if ti.get("duration") is not None:
                seconds.setdefault(ti["task_id"], []).append((ti["start_date"], ti["duration"]))
    order = sorted(seconds, key=lambda task: min(start for start, _ in seconds[task]))
    return {task: [duration for _, duration in seconds[task]] for task in order}


def trace(warehouse_url: str, changes: list[Change]) -> None:
    """Fill each change's milestones from the inbox, the ledger and the publish log."""
    by_id = {c.record_id: c for c in changes}
    with psycopg.connect(warehouse_url) as conn:
        rows = conn.execute(
            _STAGES_SQL, {"s": SOURCE_ID, "e": ENTITY, "ids": list(by_id)}
        ).fetchall()
    for (
        record_id, version, received, dispatched, asset_event_id, events,
        batch_id, extraction, batch_published, publish_id, build_started, build_published,
    ) in rows:  # fmt: skip
        change = by_id[record_id]
        change.version, change.events = version, events
        change.asset_event_id, change.batch_id, change.publish_id = (
            asset_event_id,
            batch_id,
            publish_id,
        )
        change.at.update(
            received=received,
            dispatched=dispatched,
            extraction=extraction,
            batch_published=batch_published,
            build_started=build_started,
            build_published=build_published,
        )


# --- The server and the databases -------------------------------------------------------------


@contextmanager
def bench_server() -> Iterator[tuple[str, str]]:
    """(admin URL, a note for the report): WAREHOUSE_URL's server, else the embedded one
    (started if needed, and stopped afterwards only if this started it)."""
    configured = os.environ.get("WAREHOUSE_URL")
    if configured:
        yield urlsplit(configured)._replace(path="/postgres").geturl(), "WAREHOUSE_URL"
        return
    server = local_server()
    was_running = server.is_running()
    admin_url = server.start()
    try:
        yield admin_url, "embedded (.local/postgres)"
    finally:
        if not was_running:
            server.stop()


@contextmanager
def fresh_databases(admin_url: str, name: str, keep: bool) -> Iterator[tuple[str, str]]:
    """Databases `name` (the warehouse) and `name`_airflow (Airflow's metadata), made empty;
    dropped at the end unless `keep`. Yields their URLs (Airflow's with its driver)."""
    names = (name, f"{name}_airflow")
    for dbname in names:
        drop_database(admin_url, dbname)
        ensure_database(admin_url, dbname)
    parts = urlsplit(admin_url)
    try:
        yield (
            parts._replace(path=f"/{names[0]}").geturl(),
            parts._replace(scheme="postgresql+psycopg2", path=f"/{names[1]}").geturl(),
        )
    finally:
        if not keep:
            for dbname in names:
                drop_database(admin_url, dbname)


def write_catalogue(path: Path, entities: tuple[str, ...]) -> Path:
    """A catalogue of SOURCE_ID alone (as dags/sources.yml has it), with `entities` only."""
    data = yaml.safe_load(DEFAULT_PATH.read_text(encoding="utf-8"))
    entry = next(s for s in data["sources"] if s["id"] == SOURCE_ID)
    unknown = sorted(set(entities) - set(entry["entities"]))
    if unknown:
        raise ValueError(f"{SOURCE_ID} has no entities {unknown}")
    entry = {**entry, "entities": list(entities)}
    path.write_text(yaml.safe_dump({"sources": [entry]}, allow_unicode=True), encoding="utf-8")
    return path


# --- Reporting --------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile, linear between the closest ranks (statistics' "inclusive")."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(p) - 1]


def _figures(values: list[float]) -> str:
    if not values:
        return "| – | – | – | – |"
    return (
        f"| {percentile(values, 50):.1f} | {percentile(values, 95):.1f} | {max(values):.1f}"
        f" | {len(values)} |"
    )


def _seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def report(result: Result, command: str, started_at: datetime, note: str = "") -> str:
    changes = result.changes
    latencies = result.latencies
    sync_dag = f"{SOURCE_ID}__{ENTITY}"
    sync_runs = result.runs_of(sync_dag)
    builds = result.runs_of(WAREHOUSE_DAG_ID)
    build_seconds = [r.seconds for r in builds if r.state == "success"]
    initial_build = next(
        (r.seconds for r in result.initial_reports if r.dag_id == WAREHOUSE_DAG_ID), None
    )
    batches = {c.batch_id for c in changes if c.batch_id is not None}
    publishes = {c.publish_id for c in changes if c.publish_id is not None}
    asset_events = {c.asset_event_id for c in changes if c.asset_event_id is not None}
    p50 = percentile(latencies, 50) if latencies else None
    p95 = result.p95
    lines = [
        f"{started_at:%Y-%m-%d %H:%M} UTC -- {result.events} changes, {result.spacing:g} s apart",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {result.machine}; shared with other sessions, 1/5/15-minute load average"
        f" {'/'.join(f'{x:.1f}' for x in result.load_before)} at the first change,"
        f" {'/'.join(f'{x:.1f}' for x in result.load_after)} at the end.",
        "",
        f"Set-up: catalogue of `{SOURCE_ID}` with {', '.join(result.entities)}; stand-in"
        " registry (demo profile) posting signed CloudEvents → intake → dispatcher (1 s cycle)"
        f" → Airflow (LocalExecutor, parallelism {PARALLELISM}, metadata DB in PostgreSQL) →"
        f" sync DAG `{sync_dag}` → warehouse DAG (full dbt project, write–audit–publish)."
        " Times are from the moment each change's `POST /_standin/changes` returned (wall"
        " clock): the stand-in's event `time` comes from its synthetic clock, not wall time, so"
        " it is not used.",
        *(["", f"Note: {note}"] if note else []),
        "",
        "| change → | p50 s | p95 s | max s | changes |",
        "|:--|--:|--:|--:|--:|",
    ]
    for key, label in MILESTONES:
        values = [v for c in changes if (v := c.after(key)) is not None]
        bold = "**" if key == "visible" else ""
        lines.append(f"| {bold}{label}{bold} {_figures(values)}")
    lines += [
        "",
        "Where the time goes (each stage between consecutive milestones; p50/p95 of each stage"
        " do not add up to the total's):",
        "",
        "| stage | what | p50 s | p95 s | max s | changes |",
        "|:--|:--|--:|--:|--:|--:|",
    ]
    stage_medians = {}
    for index, (name, what) in enumerate(STAGES):
        values = [v for c in changes if (v := c.stage(index)) is not None]
        if values:
            stage_medians[name] = percentile(values, 50)
        lines.append(f"| {name} | {what} {_figures(values)}")
    floor = statistics.median(build_seconds) if build_seconds else None
    sync_seconds = [r.seconds for r in sync_runs if r.state == "success"]
    lines += [
        "",
        f"Runs caused by the {result.events} changes (queued from the first change on):"
        f" **{_n(len(sync_runs), 'sync run')}** of `{sync_dag}`"
        f" ({_states(sync_runs)}; {_types(sync_runs)}), **{_n(len(builds), 'warehouse run')}**"
        f" ({_states(builds)}; {_types(builds)})"
        + (f", still open at the end: {', '.join(result.unfinished)}" if result.unfinished else "")
        + f". The changes went to Airflow in {_n(len(asset_events), 'asset event')}, landed in"
        f" {_n(len(batches), 'batch', 'batches')} and reached the marts in"
        f" {_n(len(publishes), 'warehouse publish', 'warehouse publishes')}"
        f" (coalescing: {result.events / max(len(publishes), 1):.1f} changes per build).",
        "",
        "The floor under the latency, same run: the warehouse DAG's own run (start → end in"
        " Airflow) took "
        + (
            f"median {floor:.1f} s, min {min(build_seconds):.1f} s, max"
            f" {max(build_seconds):.1f} s over the {_n(len(build_seconds), 'build')} the changes"
            " caused"
            if floor is not None
            else "– (no build finished)"
        )
        + f" (the first, full build {_seconds(initial_build)} s); a sync run"
        + (
            f" median {statistics.median(sync_seconds):.1f} s (max {max(sync_seconds):.1f} s)"
            if sync_seconds
            else " –"
        )
        + "."
        + (
            f" Latency p50 / build median = {p50 / floor:.1f}x."
            if p50 is not None and floor
            else ""
        ),
    ]
    if result.build_tasks:
        in_tasks = sum(statistics.median(v) for v in result.build_tasks.values())
        lines.append("")
        lines.append(
            "Inside those warehouse runs (median s per task): "
            + ", ".join(
                f"{task} {statistics.median(values):.1f}"
                for task, values in result.build_tasks.items()
            )
            + f"; {in_tasks:.1f} s in tasks, the rest of the run is the scheduler starting them."
        )
    lines.append("")
    if result.passed:
        verdict = f"**PASS**: p95 {p95:.1f} s <= {TARGET_P95:.0f} s, every change visible."
    else:
        missing = result.events - len(latencies)
        why = (
            f"p95 {p95:.1f} s > {TARGET_P95:.0f} s" if p95 is not None else "nothing visible"
        ) + (f", {missing} change(s) never visible" if missing else "")
        verdict = f"**NOT met** ({why})."
    total = sum(stage_medians.values())
    if stage_medians and total > 0:
        ranked = sorted(stage_medians.items(), key=lambda kv: -kv[1])[:3]
        verdict += " Where the time goes (stage medians): " + ", ".join(
            f"{name} {seconds:.1f} s ({seconds / total:.0%})" for name, seconds in ranked
        )
        verdict += "."
    lines.append(
        verdict + f" Target: p95 of change → visible <= {TARGET_P95:.0f} s; p50"
        f" {_seconds(p50)} s, p95 {_seconds(p95)} s, max"
        f" {_seconds(max(latencies) if latencies else None)} s."
    )
    lines += [
        "",
        "<details><summary>Per change (seconds after the change)</summary>",
        "",
        "| # | record | version | inbox | dispatched | extraction | batch published"
        " | build began | build published | visible | batch | publish |",
        "|--:|:--|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for c in changes:
        cells = " | ".join(_seconds(c.after(key)) for key, _ in MILESTONES)
        lines.append(
            f"| {c.number} | {c.record_id} | {c.version or '–'} | {cells}"
            f" | {c.batch_id or '–'} | {c.publish_id or '–'} |"
        )
    lines += ["", "</details>"]
    return "\n".join(lines)


def _n(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else many or one + 's'}"


def _states(reports: list[RunReport]) -> str:
    counts: dict[str, int] = {}
    for r in reports:
        counts[r.state] = counts.get(r.state, 0) + 1
    return ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "none"


def _types(reports: list[RunReport]) -> str:
    counts: dict[str, int] = {}
    for r in reports:
        counts[r.run_type] = counts.get(r.run_type, 0) + 1
    return ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items())) or "none"


_STARTED = time.monotonic()


def _say(message: str) -> None:
    elapsed = time.monotonic() - _STARTED
    print(f"[bench {elapsed:5.0f} s] {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
