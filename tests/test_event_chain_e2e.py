"""Issue 14, with the running Airflow and not only `dag.test`: the whole event chain, live.

    registry change → signed CloudEvent → intake (ops.event_inbox) → dispatcher → Airflow
    asset event → the sync DAG runs by itself → landed, gated, published → inbox rows `done`

One pipeline for the module, as local.pipeline_stack.running_pipeline starts it: the stand-in
Ninh Bình registry (demo profile, st_task only) sending signed events, Airflow's api-server,
scheduler, dag-processor and triggerer (LocalExecutor, metadata DB in a PostgreSQL database of
its own), and the event intake and dispatcher. The intake and the dispatcher are started here
with the same command lines as local.pipeline_stack.event_services, as processes the tests can
stop, kill and restart. The first load is triggered once; every test then starts from a quiet
pipeline (no open inbox row, no active run, no queued asset event) and asserts on the warehouse
and on Airflow's runs through the REST API:

- a change at the registry runs the sync DAG by itself (asset_triggered), consuming the asset
  event that names its inbox row, which ends `done`, the new version published and current;
- a duplicate (the same bytes and headers, a retry signed anew, the registry's own id again)
  is answered 200 and stored once; two events waiting together make one asset event, one run;
- a deletion lands as a tombstone; late events announcing lower versions trigger a run that
  lands nothing, and the highest version stays current (landing reads the source, not events);
- a wrong key, a tampered body or no signature: 401, nothing stored, nothing sent to Airflow;
- events stored just before the intake is killed (SIGKILL, dispatcher stopped), and one its
  sender retried while it was down, are dispatched once, in one asset event, one run;
- the scheduler killed (SIGKILL to its group) while the landing waits on the registry: a new
  scheduler resets the task, it runs again, the run succeeds, nothing is landed twice;
- the demo's progress (DagRuns.follow): one line per run, once, as each finishes;
- the change reaches marts.fct_st_task (local.change_demo, as the demo times it) and the warehouse
  run announces sti://warehouse/marts.

The scheduler is told to find a dead scheduler's task instances in seconds (defaults: 30 s to
call it dead, a look every 300 s); nothing else differs from the demo's stack.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pendulum
import psutil
import psycopg
import pytest
import requests
from airflow_standalone import ASSET_URI, CATALOGUE, DAG_ID
from standardwebhooks import Webhook

from connectors.catalogue import host_pools, load_catalogue
from connectors.warehouse import ensure_schema
from dags.sync_dag_factory import WAREHOUSE_DAG_ID
from local import change_demo
from local.airflow_env import REPO_ROOT, connection_env
from local.airflow_stack import AirflowStack, _start, airflow_stack
from local.dag_runs import FINISHED, DagRuns, RunReport
from local.pipeline_stack import Pipeline
from local.postgres import drop_database, ensure_database
from local.progress import Progress
from local.standin_process import free_loopback_port, signal_group, stop
from local.standins import (
    EventTarget,
    StandIns,
    new_signing_secret,
    run_standins,
    signing_connections,
)

pytestmark = pytest.mark.e2e

T = TypeVar("T")

SOURCE_ID = "ninh_binh_registry"
SUBSCRIPTION = "ninh-binh-registry"
ENTITY = "st_task"
MARTS_URI = "sti://warehouse/marts"
STANDINS = StandIns(profile="demo", sources={SOURCE_ID: {"registry": "ninh_binh"}})
FIRST_LOAD = 500  # S&T tasks of Ninh Bình in the demo profile (local/registry/profiles.yml)
MEDIA_TYPE = "application/cloudevents+json"
SCHEDULER_SETTINGS = {
    "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_THRESHOLD": "10",
    "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "5",
}
RUN_TIMEOUT = 180.0  # seconds for a sync run to be created and finish
# The change through the warehouse DAG to the marts: its first build is the whole dbt project
# (2 to 7 minutes on the shared 2-CPU machine, by load).
MARTS_TIMEOUT = 900.0


# --- The running pipeline ---------------------------------------------------------------------


@dataclass
class Service:
    """`python <arguments>` from the repository root in a process group of its own, logging to
    `log`; started, stopped, killed and started again by the tests."""

    name: str
    arguments: list[str]
    env: dict[str, str] = field(repr=False)
    log: Path
    health_url: str | None = None
    process: subprocess.Popen | None = None

    def start(self, timeout: float = 60.0) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, *self.arguments],
                cwd=REPO_ROOT,
                env={**os.environ, **self.env, "PYTHONPATH": str(REPO_ROOT)},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if self.health_url is not None:
            wait_for(f"the {self.name} to answer", self._healthy, timeout)

    def _healthy(self) -> bool:
        self.check_running()
        try:
            return requests.get(self.health_url, timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def stop(self) -> None:
        """SIGTERM to its group (the dispatcher finishes the group it is sending), SIGKILL
        after 5 s."""
        if self.process is not None:
            stop(self.process)
            self.process = None

    def kill(self) -> None:
        """SIGKILL to its whole process group: no clean-up of any kind."""
        assert self.process is not None and self.process.poll() is None
        signal_group(self.process, signal.SIGKILL)
        self.process.wait()
        self.process = None

    def check_running(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            tail = self.log.read_text(errors="replace")[-3000:]
            raise AssertionError(f"the {self.name} exited ({self.process.returncode}):\n{tail}")


@dataclass
class Chain:
    pipeline: Pipeline
    warehouse_url: str
    metadata_url: str
    registry_url: str
    intake: Service
    dispatcher: Service
    first_load: RunReport | None = None
    # Processes of ours a kill left running, to make sure of at the end (psutil checks that
    # a pid still is the same process before signalling it).
    left_behind: list[psutil.Process] = field(default_factory=list)

    @property
    def airflow(self) -> AirflowStack:
        return self.pipeline.airflow

    @property
    def runs(self) -> DagRuns:
        return self.pipeline.runs

    def check_running(self) -> None:
        self.airflow.check_running()
        self.intake.check_running()
        self.dispatcher.check_running()


def _database_url(admin_url: str, dbname: str, scheme: str | None = None) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(admin_url)
    return parts._replace(scheme=scheme or parts.scheme, path=f"/{dbname}").geturl()


@pytest.fixture(scope="module")
def chain(pg_admin_url: str) -> Iterator[Chain]:
    token = uuid.uuid4().hex[:12]
    warehouse_db, metadata_db = f"sti_test_{token}", f"sti_test_airflow_{token}"
    ensure_database(pg_admin_url, warehouse_db)
    ensure_database(pg_admin_url, metadata_db)
    warehouse_url = _database_url(pg_admin_url, warehouse_db)
    metadata_url = _database_url(pg_admin_url, metadata_db, "postgresql+psycopg2")
    try:
        ensure_schema(warehouse_url)
        with tempfile.TemporaryDirectory(prefix="sti-event-chain-") as folder:
            yield from _running_chain(Path(folder), warehouse_url, metadata_url)
    finally:
        drop_database(pg_admin_url, warehouse_db)
        drop_database(pg_admin_url, metadata_db)


def _running_chain(folder: Path, warehouse_url: str, metadata_url: str) -> Iterator[Chain]:
    """local.pipeline_stack.running_pipeline, with the event services as Service objects."""
    catalogue = folder / "sources.yml"
    catalogue.write_text(CATALOGUE, encoding="utf-8")
    sources = load_catalogue(catalogue)
    intake_url = f"http://127.0.0.1:{free_loopback_port()}"
    secrets = {s.id: new_signing_secret() for s in sources if s.events}
    events = EventTarget(intake_url, secrets)
    with run_standins(sources, folder / "drops", STANDINS, events=events) as connections:
        env = {
            **connection_env(
                warehouse_url, {**connections, **signing_connections(sources, secrets)}
            ),
            "WAREHOUSE_URL": warehouse_url,
            "STI_SOURCE_CATALOGUE": str(catalogue),
        }
        home = folder / "airflow"
        with airflow_stack(
            home, metadata_url, env, host_pools(sources), settings=SCHEDULER_SETTINGS
        ) as airflow:
            logs = home / "logs"
            port = intake_url.rsplit(":", 1)[1]
            intake = Service(
                "event intake",
                ["-m", "connectors.event_intake", "--port", port],
                env,
                logs / "event-intake.log",
                f"{intake_url}/healthz",
            )
            dispatcher = Service(
                "event dispatcher",
                ["-m", "connectors.event_dispatch", "--interval", "1"],
                {**env, **airflow.api_connection()},
                logs / "event-dispatcher.log",
            )
            pipeline = Pipeline(
                airflow, DagRuns(airflow.api), connections, intake_url, secrets, env
            )
            chain = Chain(
                pipeline,
                warehouse_url,
                metadata_url,
                connections[sources[0].connection_id]["host"],
                intake,
                dispatcher,
            )
            try:
                intake.start()
                dispatcher.start()
                chain.first_load = _first_load(chain)
                yield chain
            finally:
                dispatcher.stop()
                intake.stop()
                _kill_left_behind(chain.left_behind)


def _first_load(chain: Chain) -> RunReport:
    """As the demo: the warehouse DAG stays paused, the sync DAG is unpaused and triggered."""
    runs = chain.runs
    runs.wait_for_dags([DAG_ID, WAREHOUSE_DAG_ID])
    runs.set_paused([WAREHOUSE_DAG_ID], paused=True)
    runs.set_paused([DAG_ID], paused=False)
    since = pendulum.now("UTC")
    runs.trigger(DAG_ID, "first_load")
    [report] = runs.follow(
        since, lambda finished, _: bool(finished), lambda _: None, timeout=RUN_TIMEOUT
    )
    assert (report.run_id, report.state) == ("first_load", "success"), report
    return report


def _kill_left_behind(processes: list[psutil.Process]) -> None:
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()


# --- Helpers ----------------------------------------------------------------------------------


def wait_for(what: str, check: Callable[[], T], timeout: float, interval: float = 0.5) -> T:
    """`check()`'s first truthy result, polled; AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def holds(what: str, check: Callable[[], bool], seconds: float, interval: float = 0.5) -> None:
    """`check()` stays true for `seconds` (an absence observed for a while, not a wait)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert check(), what
        time.sleep(interval)


def query(chain: Chain, sql: str, params: Any = None) -> list[tuple]:
    with psycopg.connect(chain.warehouse_url, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


@dataclass(frozen=True)
class InboxRow:
    inbox_id: int
    event_id: str
    record_id: str
    version: int
    change_kind: str
    dispatch_state: str
    dispatch_attempts: int
    asset_event_id: int | None


def inbox(chain: Chain, since: datetime, record_ids: list[str] | None = None) -> list[InboxRow]:
    """Inbox rows received since `since` (of `record_ids`), oldest first."""
    rows = query(
        chain,
        "select inbox_id, event_id, record_id, version, change_kind, dispatch_state,"
        " dispatch_attempts, asset_event_id from ops.event_inbox"
        " where received_at >= %s and (%s::text[] is null or record_id = any(%s))"
        " order by inbox_id",
        (since, record_ids, record_ids),
    )
    return [InboxRow(*row) for row in rows]


def registry_change(chain: Chain, update: int = 0, delete: int = 0) -> dict[str, list[str]]:
    reply = requests.post(
        f"{chain.registry_url}/_standin/changes",
        json={"update": update, "delete": delete, "entity": ENTITY},
        timeout=10,
    )
    reply.raise_for_status()
    return reply.json()


def registry_events(chain: Chain) -> dict[str, Any]:
    reply = requests.get(f"{chain.registry_url}/_standin/stats", timeout=10)
    reply.raise_for_status()
    return reply.json()["events"]


def sync_runs(chain: Chain, since: datetime) -> list[dict]:
    return chain.runs.runs([DAG_ID], since=since)


def open_events(chain: Chain) -> int:
    """Inbox rows not yet covered by a published run."""
    return query(chain, "select count(*) from ops.event_inbox where dispatch_state <> 'done'")[0][0]


def quiet(chain: Chain, timeout: float = RUN_TIMEOUT) -> datetime:
    """Waits until nothing is under way (every inbox row done, no sync run queued or running,
    no asset event queued for it); the time from which a test counts runs and rows."""

    def settled() -> bool:
        chain.check_running()
        active = [r for r in chain.runs.runs([DAG_ID]) if r["state"] not in FINISHED]
        return (
            not active and open_events(chain) == 0 and chain.runs.queued_asset_events(DAG_ID) == 0
        )

    wait_for("a quiet pipeline", settled, timeout)
    return pendulum.now("UTC")


def finished_runs(chain: Chain, since: datetime, count: int = 1) -> list[dict]:
    """The sync runs queued since `since`, once `count` of them finished and none is active."""

    def done() -> list[dict] | None:
        chain.check_running()
        runs = sync_runs(chain, since)
        finished = [r for r in runs if r["state"] in FINISHED]
        return runs if len(finished) >= count and len(finished) == len(runs) else None

    return wait_for(f"{count} finished run(s) of {DAG_ID}", done, RUN_TIMEOUT)


def covered(chain: Chain, rows: list[InboxRow], since: datetime) -> list[dict]:
    """The runs since `since`, once every one of `rows` is done and no run is active."""

    def done() -> list[dict] | None:
        chain.check_running()
        runs = sync_runs(chain, since)
        if any(r["state"] not in FINISHED for r in runs):
            return None
        states = query(
            chain,
            "select dispatch_state from ops.event_inbox where inbox_id = any(%s)",
            ([r.inbox_id for r in rows],),
        )
        return runs if runs and all(s == "done" for (s,) in states) else None

    return wait_for("the runs covering the events", done, RUN_TIMEOUT)


def api_get(chain: Chain, path: str, **params: Any) -> dict:
    return chain.runs.api.call("GET", path, params=params).json()


def asset_id(chain: Chain, uri: str) -> int:
    assets = api_get(chain, "/api/v2/assets", uri_pattern=uri)["assets"]
    [found] = [a["id"] for a in assets if a["uri"] == uri]
    return found


def asset_events(chain: Chain, uri: str, since: datetime) -> list[dict]:
    return api_get(
        chain,
        "/api/v2/assets/events",
        asset_id=asset_id(chain, uri),
        timestamp_gte=since.isoformat(),
        order_by="timestamp",
        limit=100,
    )["asset_events"]


def upstream_events(chain: Chain, run: dict) -> list[dict]:
    path = f"/api/v2/dags/{run['dag_id']}/dagRuns/{run['dag_run_id']}/upstreamAssetEvents"
    return api_get(chain, path)["asset_events"]


def task_instances(chain: Chain, run: dict) -> dict[str, dict]:
    path = f"/api/v2/dags/{run['dag_id']}/dagRuns/{run['dag_run_id']}/taskInstances"
    return {t["task_id"]: t for t in api_get(chain, path)["task_instances"]}


def landed_versions(chain: Chain, record_id: str) -> list[tuple[int, bool, str]]:
    """(version, deleted, batch state) of every landed row of a record, by version."""
    return query(
        chain,
        "select r.version, r.deleted, b.state from raw.landed_record as r"
        " join ops.load_batch as b using (batch_id)"
        " where r.source_id = %s and r.entity = %s and r.record_id = %s"
        " order by r.version, r.landed_id",
        (SOURCE_ID, ENTITY, record_id),
    )


def current(chain: Chain, record_id: str) -> tuple[int, bool] | None:
    """The version (and deletion) the gate holds as current: ops.accepted_record."""
    rows = query(
        chain,
        "select version, deleted from ops.accepted_record"
        " where source_id = %s and entity = %s and record_id = %s",
        (SOURCE_ID, ENTITY, record_id),
    )
    return rows[0] if rows else None


def landed_twice(chain: Chain) -> list[tuple]:
    """(record, version) landed more than once: never, whatever happened."""
    return query(
        chain,
        "select record_id, version, count(*) from raw.landed_record"
        " where record_id is not null group by 1, 2 having count(*) > 1",
    )


def batches_since(chain: Chain, since: datetime) -> list[tuple]:
    return query(
        chain,
        "select batch_id, state, records_extracted, records_landed, records_skipped"
        " from ops.load_batch where started_at >= %s order by batch_id",
        (since,),
    )


def cloud_event(
    record_id: str, version: int, *, deleted: bool = False, event_id: str | None = None
) -> bytes:
    """A change event as a registry sends it (local/registry/events.py), as bytes."""
    return json.dumps(
        {
            "specversion": "1.0",
            "id": event_id or str(uuid.uuid4()),
            "source": SUBSCRIPTION,
            "type": f"vn.gov.sti.record.{'deleted' if deleted else 'upserted'}",
            "time": datetime.now(UTC).isoformat(),
            "datacontenttype": "application/json",
            "data": {"entity": ENTITY, "record_id": record_id, "version": version},
        }
    ).encode()


def signed(body: bytes, secret: str, at: datetime | None = None) -> dict[str, str]:
    event_id = json.loads(body)["id"]
    at = at or datetime.now(UTC)
    return {
        "content-type": MEDIA_TYPE,
        "webhook-id": event_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(event_id, at, body),
    }


def post_event(chain: Chain, body: bytes, headers: dict[str, str]) -> requests.Response:
    return requests.post(
        f"{chain.pipeline.intake_url}/v1/sources/{SUBSCRIPTION}/events",
        data=body,
        headers=headers,
        timeout=10,
    )


def secret(chain: Chain) -> str:
    return chain.pipeline.secrets[SOURCE_ID]


# --- The scenarios ----------------------------------------------------------------------------


def test_the_first_load_published_the_registry(chain):
    assert chain.first_load is not None and chain.first_load.run_type == "manual"
    [(state, extracted, landed)] = query(
        chain, "select state, records_extracted, records_landed from ops.load_batch"
    )
    assert (state, extracted) == ("published", FIRST_LOAD)
    assert landed == FIRST_LOAD
    assert landed_twice(chain) == []


def test_a_change_at_the_registry_runs_the_sync_dag_by_itself(chain):
    since = quiet(chain)
    [record] = registry_change(chain, update=1)["updated"]
    [before] = [v for v, _, _ in landed_versions(chain, record)]

    [event] = wait_for("the registry's event in the inbox", lambda: inbox(chain, since), 30)
    assert (event.record_id, event.version, event.change_kind) == (record, before + 1, "upsert")
    [run] = covered(chain, [event], since)
    assert (run["run_type"], run["state"]) == ("asset_triggered", "success"), run

    # The asset event the dispatcher posted, naming the inbox row, is the one the run consumed.
    [row] = inbox(chain, since)
    assert (row.dispatch_state, row.dispatch_attempts) == ("done", 1)
    [consumed] = upstream_events(chain, run)
    assert consumed["id"] == row.asset_event_id
    assert consumed["uri"] == ASSET_URI
    assert consumed["extra"]["inbox_ids"] == [row.inbox_id]
    assert consumed["extra"]["events"] == 1
    # The new version is landed once, published, and current.
    assert landed_versions(chain, record) == [
        (before, False, "published"),
        (before + 1, False, "published"),
    ]
    assert current(chain, record) == (before + 1, False)
    [(_, state, _, landed, _)] = batches_since(chain, since)
    assert (state, landed) == ("published", 1)


def test_a_duplicate_event_is_stored_once_and_runs_once(chain):
    since = quiet(chain)
    chain.dispatcher.stop()  # the events wait in the inbox: one asset event carries them all
    try:
        [record] = registry_change(chain, update=1)["updated"]
        [sent] = wait_for("the registry's event", lambda: inbox(chain, since), 30)
        body = cloud_event(record, sent.version)
        headers = signed(body, secret(chain))

        first = post_event(chain, body, headers)
        again = post_event(chain, body, headers)  # the exact same bytes and headers
        # A sender's retry: the same event signed anew, a minute apart (within the window).
        resigned = signed(body, secret(chain), datetime.now(UTC) - timedelta(seconds=60))
        later = post_event(chain, body, resigned)
        # The registry's own event sent again (its id, another body): a duplicate too.
        replay = cloud_event(record, sent.version, event_id=sent.event_id)
        replayed = post_event(chain, replay, signed(replay, secret(chain)))
    finally:
        chain.dispatcher.start()

    assert first.status_code == 202, first.text
    assert resigned["webhook-signature"] != headers["webhook-signature"]
    for reply in (again, later, replayed):
        assert reply.status_code == 200, reply.text
        assert reply.json()["status"] == "duplicate"
    ours = json.loads(body)["id"]
    rows = inbox(chain, since)
    assert sorted(r.event_id for r in rows) == sorted([sent.event_id, ours])

    runs = covered(chain, rows, since)
    [run] = runs  # the two events coalesced into one asset event, one run
    assert (run["run_type"], run["state"]) == ("asset_triggered", "success"), run
    rows = inbox(chain, since)
    assert {(r.dispatch_state, r.dispatch_attempts, r.asset_event_id) for r in rows} == {
        ("done", 1, rows[0].asset_event_id)
    }
    [event] = asset_events(chain, ASSET_URI, since)
    assert sorted(event["extra"]["inbox_ids"]) == sorted(r.inbox_id for r in rows)
    assert chain.runs.queued_asset_events(DAG_ID) == 0
    assert [v for v, _, _ in landed_versions(chain, record)] == [sent.version - 1, sent.version]
    assert landed_twice(chain) == []


def test_a_deletion_ends_as_a_tombstone_and_late_lower_versions_change_nothing(chain):
    since = quiet(chain)
    changed = registry_change(chain, update=1, delete=1)
    [updated], [deleted] = changed["updated"], changed["deleted"]
    events = wait_for(
        "both events", lambda: len(inbox(chain, since)) == 2 and inbox(chain, since), 30
    )
    kinds = {e.record_id: (e.change_kind, e.version) for e in events}
    covered(chain, events, since)

    new = kinds[updated][1]
    tombstone = kinds[deleted][1]
    assert kinds == {updated: ("upsert", new), deleted: ("delete", tombstone)}
    assert landed_versions(chain, updated)[-1] == (new, False, "published")
    assert landed_versions(chain, deleted) == [
        (tombstone - 1, False, "published"),
        (tombstone, True, "published"),  # the record's last version: a tombstone
    ]
    assert current(chain, updated) == (new, False)
    assert current(chain, deleted) == (tombstone, True)

    # Late events announcing LOWER versions (as if sent before the ones above, delivered
    # after): stored as sent, dispatched, and the run they trigger reads the registry, which
    # serves the highest versions, so it lands nothing and nothing older becomes current.
    late_since = quiet(chain)
    late = [cloud_event(updated, new - 1), cloud_event(deleted, tombstone - 1)]
    for body in late:
        reply = post_event(chain, body, signed(body, secret(chain)))
        assert reply.status_code == 202, reply.text
    late_rows = inbox(chain, late_since)
    assert {(r.record_id, r.version, r.change_kind) for r in late_rows} == {
        (updated, new - 1, "upsert"),
        (deleted, tombstone - 1, "upsert"),
    }
    runs = covered(chain, late_rows, late_since)
    assert all(r["state"] == "success" for r in runs), runs
    assert all(r["run_type"] == "asset_triggered" for r in runs), runs
    batches = batches_since(chain, late_since)
    assert batches and all(b[1] == "published" and b[3] == 0 for b in batches), batches
    assert current(chain, updated) == (new, False)
    assert current(chain, deleted) == (tombstone, True)
    assert [v for v, _, _ in landed_versions(chain, updated)] == [new - 1, new]
    assert [v for v, _, _ in landed_versions(chain, deleted)] == [tombstone - 1, tombstone]
    assert landed_twice(chain) == []


def test_a_forged_signature_is_refused_and_stores_and_runs_nothing(chain):
    since = quiet(chain)
    before = query(chain, "select count(*) from ops.event_inbox")[0][0]
    [record] = [
        r
        for (r,) in query(
            chain, "select record_id from raw.landed_record where record_id is not null limit 1"
        )
    ]

    body = cloud_event(record, 99)
    wrong_key = post_event(chain, body, signed(body, new_signing_secret()))
    tampered_headers = signed(body, secret(chain))
    tampered = post_event(chain, body.replace(b'"version": 99', b'"version": 98'), tampered_headers)
    unsigned = post_event(chain, body, {"content-type": MEDIA_TYPE})

    for reply in (wrong_key, tampered, unsigned):
        assert reply.status_code == 401, reply.text
        assert reply.headers["content-type"] == "application/problem+json"
    assert query(chain, "select count(*) from ops.event_inbox")[0][0] == before
    assert inbox(chain, since) == []
    # Nothing to dispatch, so nothing reaches Airflow: watched over a few dispatcher cycles.
    holds(
        "no run, no queued asset event",
        lambda: not sync_runs(chain, since) and chain.runs.queued_asset_events(DAG_ID) == 0,
        seconds=4,
    )
    assert asset_events(chain, ASSET_URI, since) == []


def test_events_stored_before_the_intake_died_are_dispatched_once(chain):
    since = quiet(chain)
    chain.dispatcher.stop()  # the intake dies between storing events and their dispatch
    delivered = registry_events(chain)["delivered"]
    stored = registry_change(chain, update=2)["updated"]
    wait_for(
        "the 202s",
        lambda: (
            registry_events(chain)["delivered"] == delivered + 2 and len(inbox(chain, since)) == 2
        ),
        30,
    )
    chain.intake.kill()  # SIGKILL, right after its answers

    # Meanwhile the registry changes another record: its sender retries until the intake is back.
    retries = registry_events(chain)["retries"]
    [while_down] = registry_change(chain, update=1)["updated"]
    wait_for("the sender to retry", lambda: registry_events(chain)["retries"] > retries, 30)
    assert inbox(chain, since, [while_down]) == []

    chain.intake.start()
    wait_for(
        "the retried event",
        lambda: registry_events(chain)["pending"] == 0 and len(inbox(chain, since)) == 3,
        60,
    )
    rows = inbox(chain, since)
    assert sorted(r.record_id for r in rows) == sorted([*stored, while_down])
    assert {(r.dispatch_state, r.dispatch_attempts) for r in rows} == {("pending", 0)}
    assert not sync_runs(chain, since)

    chain.dispatcher.start()
    [run] = covered(chain, rows, since)
    assert (run["run_type"], run["state"]) == ("asset_triggered", "success"), run
    rows = inbox(chain, since)
    assert {(r.dispatch_state, r.dispatch_attempts) for r in rows} == {("done", 1)}
    [event] = asset_events(chain, ASSET_URI, since)
    assert sorted(event["extra"]["inbox_ids"]) == [r.inbox_id for r in rows]
    assert [e["id"] for e in upstream_events(chain, run)] == [event["id"]]
    for record in (*stored, while_down):
        assert landed_versions(chain, record)[-1][2] == "published"
    assert landed_twice(chain) == []


def test_a_scheduler_killed_mid_landing_is_replaced_and_the_run_completes(chain):
    since = quiet(chain)
    # The registry answers the extraction's first page 503 with Retry-After: the landing waits
    # there with its batch `extracting`, long enough to be caught in the middle.
    requests.post(
        f"{chain.registry_url}/_standin/faults",
        json={"status": 503, "count": 1, "retry_after": 5},
        timeout=10,
    ).raise_for_status()
    [record] = registry_change(chain, update=1)["updated"]

    def landing() -> list[tuple]:
        return query(
            chain,
            "select batch_id from ops.load_batch where started_at >= %s and state = 'extracting'",
            (since,),
        )

    [(interrupted,)] = wait_for("a landing under way", landing, RUN_TIMEOUT, interval=0.2)
    [run] = sync_runs(chain, since)
    assert task_instances(chain, run)["extract_and_land"]["state"] == "running"
    scheduler = chain.airflow.processes["scheduler"]
    environment = _environment(scheduler.pid)
    tree = psutil.Process(scheduler.pid).children(recursive=True)
    signal_group(scheduler, signal.SIGKILL)
    scheduler.wait()
    killed_at = datetime.now(UTC)
    # Task processes run in process groups of their own (Airflow's supervisor puts them
    # there), so the landing outlives the scheduler, without its supervisor.
    chain.left_behind += [p for p in tree if _alive(p)]

    chain.airflow.processes["scheduler"] = _start(
        "scheduler", chain.airflow.log("scheduler"), environment
    )
    wait_for("the new scheduler's heartbeat", lambda: _heartbeat(chain) > killed_at, 180)
    [run] = finished_runs(chain, since)
    instances = task_instances(chain, run)
    assert (run["run_type"], run["state"]) == ("asset_triggered", "success"), (run, instances)
    # The new scheduler reset the task the old one left running, and it ran again.
    assert instances["extract_and_land"]["try_number"] >= 2, instances
    [row] = inbox(chain, since)
    wait_for("the event done", lambda: inbox(chain, since)[0].dispatch_state == "done", 60)
    # Every batch reached a verdict, the interrupted one included; the change landed once.
    batches = batches_since(chain, since)
    assert interrupted in [b[0] for b in batches]
    assert all(b[1] in ("published", "failed") for b in batches), batches
    assert [v for v, _, _ in landed_versions(chain, record)] == [row.version - 1, row.version]
    assert landed_versions(chain, record)[-1] == (row.version, False, "published")
    assert landed_twice(chain) == []


def _heartbeat(chain: Chain) -> datetime:
    """The latest heartbeat of a healthy scheduler (the epoch while there is none)."""
    try:
        health = requests.get(f"{chain.airflow.base}/api/v2/monitor/health", timeout=10).json()
    except (requests.RequestException, ValueError):
        return datetime.fromtimestamp(0, UTC)
    scheduler = health.get("scheduler") or {}
    beat = scheduler.get("latest_scheduler_heartbeat")
    if scheduler.get("status") != "healthy" or not beat:
        return datetime.fromtimestamp(0, UTC)
    return datetime.fromisoformat(beat)


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _environment(pid: int) -> dict[str, str]:
    """The environment a process of ours was started with (Linux)."""
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {key.decode(): value.decode() for key, value in pairs}


def test_the_demo_prints_each_run_once_as_it_finishes(chain):
    since = quiet(chain)
    for run_id in ("follow_a", "follow_b"):  # max_active_runs=1: b starts when a has ended
        chain.runs.trigger(DAG_ID, run_id)
    chain.runs.trigger(DAG_ID, "follow_a")  # a retried trigger: no second run
    calls: list[tuple[RunReport, datetime]] = []
    out = io.StringIO()
    progress = Progress(2, out=out)

    def on_finished(report: RunReport) -> None:  # as local.demo.run_initial_load reports
        calls.append((report, datetime.now(UTC)))
        progress.finished(report.dag_id, report.state, report.seconds)

    reports = chain.runs.follow(
        since, lambda finished, _: len(finished) >= 2, on_finished, timeout=RUN_TIMEOUT, poll=0.5
    )

    assert [r.run_id for r, _ in calls] == ["follow_a", "follow_b"]
    assert reports == [r for r, _ in calls]
    a, b = (report for report, _ in calls)
    assert a.state == b.state == "success" and a.run_type == b.run_type == "manual"
    assert a.ended <= b.started  # in finish order
    for report, at in calls:
        assert report.ended <= at  # reported after it finished…
    assert calls[0][1] < b.ended  # …and as it finished, not once all had
    assert Counter(r["dag_run_id"] for r in sync_runs(chain, since)) == {
        "follow_a": 1,
        "follow_b": 1,
    }
    lines = out.getvalue().splitlines()
    assert [re.sub(r"\(\d+\.\d s\)$", "(… s)", line) for line in lines] == [
        f"[1/2] {DAG_ID} success (… s)",
        f"[2/2] {DAG_ID} success (… s)",
    ], lines


def test_a_change_reaches_the_marts_and_airflow_announces_them(chain, monkeypatch):
    monkeypatch.setattr(change_demo, "TIMEOUT", MARTS_TIMEOUT)
    since = quiet(chain)
    chain.runs.set_paused([WAREHOUSE_DAG_ID], paused=False)
    try:
        change = change_demo.show_a_change(
            chain.runs, chain.warehouse_url, chain.registry_url, Progress(out=sys.stderr)
        )
        assert change.visible_after is not None, change.summary()

        def built() -> list[dict] | None:
            runs = chain.runs.runs([WAREHOUSE_DAG_ID], since=since)
            return runs if runs and all(r["state"] in FINISHED for r in runs) else None

        [warehouse] = wait_for("the warehouse run", built, MARTS_TIMEOUT)
    finally:
        chain.runs.set_paused([WAREHOUSE_DAG_ID], paused=True)
    assert (warehouse["run_type"], warehouse["state"]) == ("asset_triggered", "success")
    assert list(change.stages) == ["in inbox", "sent to Airflow", "published", "in the marts"]
    [(version,)] = query(
        chain,
        "select f.version from marts.fct_st_task as f join raw.landed_record as r"
        " using (landed_id) where r.record_id = %s",
        (change.record_id,),
    )
    [(announced,)] = query(
        chain,
        "select max(version) from ops.event_inbox where record_id = %s and received_at >= %s",
        (change.record_id, since),
    )
    assert version == announced
    [marts] = [
        e
        for e in asset_events(chain, MARTS_URI, since)
        if e["source_run_id"] == warehouse["dag_run_id"]
    ]
    assert marts["source_dag_id"] == WAREHOUSE_DAG_ID
    assert marts["source_task_id"] == "publish"
    assert marts["extra"]["publish_id"]
