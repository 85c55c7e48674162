"""The operators' view of each source entity (ops.source_status), the `python -m local sources`
command, and the ops__event_lag DAG (run through Airflow itself, dag.test) notifying late
change events through a real local webhook: on a real PostgreSQL, with rows inserted here."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pendulum
import psycopg
import pytest

from connectors.catalogue import load_catalogue
from connectors.source_status import (
    late_entities,
    max_pending_minutes,
    notify_late_entities,
    read_status,
)
from tests.airflow_standalone import CATALOGUE
from tests.test_notify import WebhookSink

REPO = Path(__file__).resolve().parents[1]
# Two sources with events: Ninh Bình with the default limit (15 min), Thanh Hóa with 60.
THANH_HOA = """\
  - id: thanh_hoa_registry
    name: Thanh Hóa provincial STI registry
    province_code: "38"
    system: registry
    contract: registry-api-v1
    connection_id: thanh_hoa_registry
    entities: [st_task, expert]
    schedule: "0 3 29 2 *"
    owner: so-khcn-thanh-hoa
    events:
      subscription: thanh-hoa-registry
      signing_secret: thanh_hoa_registry_events
      max_pending_minutes: 60
"""
NB, TH = "ninh_binh_registry", "thanh_hoa_registry"


@pytest.fixture
def catalogue(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "sources.yml"
    path.write_text(
        CATALOGUE.replace("entities: [st_task]", "entities: [st_task, expert]") + THANH_HOA,
        encoding="utf-8",
    )
    monkeypatch.setenv("STI_SOURCE_CATALOGUE", str(path))
    return path


def _batch(conn, source_id, entity, state, *, published_ago=None, error=None) -> int:
    (batch_id,) = conn.execute(
        "insert into ops.load_batch (source_id, entity, contract, state, published_at, error)"
        " values (%s, %s, 'registry-api-v1', %s, now() - %s::interval, %s) returning batch_id",
        (source_id, entity, state, published_ago, error),
    ).fetchone()
    return batch_id


_inbox_ids = iter(range(1, 1_000_000))


def _event(conn, source_id, entity, *, received_ago, event_ago, state="pending", error=None):
    """An inbox row received `received_ago`, changed at the source `event_ago` (intervals)."""
    conn.execute(
        "insert into ops.event_inbox (source_id, event_id, entity, record_id, version,"
        " change_kind, event_time, received_at, dispatch_state, dispatched_at, done_at,"
        " last_error)"
        " values (%(s)s, %(id)s, %(e)s, 'R-1', 1, 'upsert', now() - %(ev)s::interval,"
        " now() - %(rc)s::interval, %(state)s,"
        " case when %(state)s <> 'pending' then now() - %(rc)s::interval / 2 end,"
        " case when %(state)s = 'done' then now() end, %(error)s)",
        {
            "s": source_id,
            "id": f"evt-{next(_inbox_ids)}",
            "e": entity,
            "ev": event_ago,
            "rc": received_ago,
            "state": state,
            "error": error,
        },
    )


def _status(conn) -> dict[tuple[str, str], dict]:
    cursor = conn.execute("select * from ops.source_status")
    names = [column.name for column in cursor.description]
    return {(row[0], row[1]): dict(zip(names, row, strict=True)) for row in cursor.fetchall()}


def test_the_view_reports_events_batches_lag_and_errors_per_source_entity(warehouse_url):
    with psycopg.connect(warehouse_url) as conn, conn.transaction():
        # The view's now() is the transaction's: every age below is exact.
        (now,) = conn.execute("select now()").fetchone()
        # Ninh Bình st_task: published twice, then a batch the gate blocked; an event done,
        # one dispatched and two pending (one Airflow refused).
        _batch(conn, NB, "st_task", "published", published_ago="2 hours")
        _batch(conn, NB, "st_task", "published", published_ago="1 hour")
        blocked = _batch(conn, NB, "st_task", "failed", error="quality gate: 40% quarantined")
        _event(conn, NB, "st_task", received_ago="3 hours", event_ago="3 hours", state="done")
        _event(
            conn,
            NB,
            "st_task",
            received_ago="20 minutes",
            event_ago="25 minutes",
            state="dispatched",
        )
        _event(conn, NB, "st_task", received_ago="5 minutes", event_ago="6 minutes")
        _event(
            conn,
            NB,
            "st_task",
            received_ago="1 minute",
            event_ago="2 minutes",
            error="POST /api/v2/assets/events: 403 forbidden",
        )
        # Ninh Bình expert: events only, all done (no batch is possible without a run, but the
        # view does not rely on it).
        _event(conn, NB, "expert", received_ago="2 hours", event_ago="2 hours", state="done")
        # Thanh Hóa st_task: batches only, the latest published.
        _batch(conn, TH, "st_task", "failed", error="abandoned")
        latest = _batch(conn, TH, "st_task", "published", published_ago="10 minutes")
        # Thanh Hóa expert: a pending event dated ahead of our clock, refused by Airflow.
        _event(
            conn,
            TH,
            "expert",
            received_ago="30 seconds",
            event_ago="-2 minutes",
            error="Airflow has no asset sti://thanh_hoa_registry/expert",
        )
        status = _status(conn)

    assert sorted(status) == [(NB, "expert"), (NB, "st_task"), (TH, "expert"), (TH, "st_task")]
    nb = status[NB, "st_task"]
    assert nb["last_event_at"] == now - timedelta(minutes=2)
    assert nb["last_success_at"] == now - timedelta(hours=1)
    assert nb["pending_events"] == 3  # dispatched and pending: not published yet
    assert nb["oldest_pending_at"] == now - timedelta(minutes=20)
    assert nb["oldest_pending_age"] == timedelta(minutes=20)
    assert nb["lag"] == timedelta(minutes=25)  # by the source's clock
    assert (nb["last_batch_id"], nb["last_batch_state"]) == (blocked, "failed")
    assert nb["last_error"] == "quality gate: 40% quarantined"  # the batch's comes first

    done = status[NB, "expert"]
    assert done["last_event_at"] == now - timedelta(hours=2)
    assert (done["pending_events"], done["oldest_pending_at"], done["oldest_pending_age"]) == (
        0,
        None,
        None,
    )
    assert done["lag"] == timedelta(0)  # nothing pends: caught up
    assert (done["last_success_at"], done["last_batch_id"], done["last_error"]) == (None,) * 3

    batches_only = status[TH, "st_task"]
    assert batches_only["last_event_at"] is None and batches_only["pending_events"] == 0
    assert batches_only["last_success_at"] == now - timedelta(minutes=10)
    assert (batches_only["last_batch_id"], batches_only["last_batch_state"]) == (
        latest,
        "published",
    )
    assert batches_only["last_error"] is None  # the earlier failure is over

    ahead = status[TH, "expert"]
    assert ahead["pending_events"] == 1 and ahead["oldest_pending_age"] == timedelta(seconds=30)
    assert ahead["lag"] == timedelta(0)  # never negative
    assert ahead["last_error"] == (
        "event dispatch: Airflow has no asset sti://thanh_hoa_registry/expert"
    )

    with psycopg.connect(warehouse_url) as conn:
        (comment,) = conn.execute(
            "select col_description('ops.source_status'::regclass, attnum)"
            " from pg_attribute where attrelid = 'ops.source_status'::regclass"
            " and attname = 'lag'"
        ).fetchone()
    assert comment.startswith("now() - the event_time of the oldest pending event")


def _late_and_timely(url: str) -> None:
    """Late: NB st_task (20 min > 15, two events), TH expert (90 min > 60). Timely: NB expert
    (5 min), TH st_task (30 min < 60)."""
    with psycopg.connect(url) as conn:
        _event(conn, NB, "st_task", received_ago="20 minutes", event_ago="21 minutes")
        _event(conn, NB, "st_task", received_ago="17 minutes", event_ago="18 minutes")
        _event(conn, TH, "expert", received_ago="90 minutes", event_ago="95 minutes")
        _event(conn, NB, "expert", received_ago="5 minutes", event_ago="5 minutes")
        _event(conn, TH, "st_task", received_ago="30 minutes", event_ago="31 minutes")
        _batch(conn, TH, "st_task", "published", published_ago="2 hours")


def test_late_entities_are_judged_by_each_sources_limit(warehouse_url, catalogue):
    _late_and_timely(warehouse_url)
    limits = max_pending_minutes(load_catalogue())
    assert limits == {NB: 15, TH: 60}
    late = late_entities(read_status(warehouse_url), limits)
    assert [(s.source_id, s.entity, limit) for s, limit in late] == [
        (NB, "st_task", 15),
        (TH, "expert", 60),
    ]
    assert [s.entity for s in read_status(warehouse_url, TH)] == ["expert", "st_task"]

    sent = []
    notify_late_entities(
        warehouse_url, load_catalogue(), notify=lambda *a, **kw: sent.append((a, kw)) or []
    )
    assert [(subject.split(" pending")[0], kw) for (subject, _), kw in sent] == [
        (f"change events of {NB}/st_task", {"severity": "warning"}),
        (f"change events of {TH}/expert", {"severity": "warning"}),
    ]
    body = sent[0][0][1].splitlines()
    assert "Pending events: 2, the oldest received" in body[2] and "= 15)" in body[2]
    assert f"Look at the DAG {NB}__st_task" in "\n".join(body)


def test_a_warehouse_without_the_view_gets_it(warehouse_url):
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        conn.execute("drop view ops.source_status")
    assert read_status(warehouse_url) == []


def _sources_command(url: str, *args: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-m", "local", "sources", *args],
        cwd=REPO,
        env={**os.environ, "WAREHOUSE_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_the_sources_command_prints_an_aligned_table_marking_late_entities(
    warehouse_url, catalogue
):
    assert _sources_command(warehouse_url) == [
        "No source has landed a batch or received a change event yet."
    ]
    _late_and_timely(warehouse_url)
    lines = _sources_command(warehouse_url)
    header, *rows = lines[: lines.index("")]
    assert header.split() == [
        "source",
        "entity",
        "pending",
        "oldest",
        "pending",
        "lag",
        "last",
        "event",
        "(UTC)",
        "last",
        "publish",
        "(UTC)",
        "last",
        "batch",
        "error",
    ]
    by_entity = {tuple(row.split()[:2]): row for row in rows}
    assert list(by_entity) == [(NB, "expert"), (NB, "st_task"), (TH, "expert"), (TH, "st_task")]
    assert "20m LATE (>15m)" in by_entity[NB, "st_task"]
    assert "1h 30m LATE (>60m)" in by_entity[TH, "expert"]
    assert "LATE" not in by_entity[NB, "expert"] and "LATE" not in by_entity[TH, "st_task"]
    assert "30m" in by_entity[TH, "st_task"] and " published" in by_entity[TH, "st_task"]
    # Aligned: each column starts where its header does.
    for column in ("entity", "oldest pending", "last publish (UTC)"):
        start = header.index(column)
        assert all(row[start - 2 : start] == "  " and row[start] != " " for row in rows), column
    pending_end = header.index("pending") + len("pending")
    assert [row[pending_end - 1] for row in rows] == ["1", "2", "1", "1"]  # right-aligned
    assert lines[-1].startswith("LATE (2): the oldest pending event has waited longer")

    filtered = _sources_command(warehouse_url, TH)
    assert [row.split() for row in filtered[1 : filtered.index("")]] == [
        by_entity[TH, "expert"].split(),
        by_entity[TH, "st_task"].split(),
    ]
    assert _sources_command(warehouse_url, "ha_tinh_registry") == [
        "Nothing recorded for ha_tinh_registry (not in the catalogue): no batch and no change"
        " event."
    ]


@pytest.fixture(scope="module")
def event_lag_dag(airflow_home):
    from airflow.dag_processing.dagbag import DagBag

    from local.airflow_env import DAGS_FOLDER

    bag = DagBag(dag_folder=str(DAGS_FOLDER / "operations_dag.py"))
    assert bag.import_errors == {}
    return bag.dags["ops__event_lag"]


def test_the_event_lag_dag_is_scheduled_every_five_minutes(event_lag_dag):
    assert event_lag_dag.dag_id == "ops__event_lag"
    assert event_lag_dag.timetable.summary == "*/5 * * * *"
    assert event_lag_dag.catchup is False and event_lag_dag.max_active_runs == 1
    assert "events.max_pending_minutes" in event_lag_dag.doc_md
    [check] = event_lag_dag.tasks
    assert check.on_failure_callback  # a failed check notifies too


@pytest.mark.e2e
def test_the_event_lag_dag_notifies_each_late_source_entity_once(
    event_lag_dag, warehouse_url, catalogue, monkeypatch
):
    from local.airflow_env import connection_env

    _late_and_timely(warehouse_url)
    for name, value in connection_env(warehouse_url, {}).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AIRFLOW_CONN_STI_NOTIFY_SMTP", raising=False)
    with WebhookSink() as sink:
        monkeypatch.setenv("AIRFLOW_CONN_STI_NOTIFY_WEBHOOK", sink.connection())
        run = event_lag_dag.test(logical_date=pendulum.now("UTC"))

    assert run.state == "success"
    notices = [request["json"] for request in sink.requests]
    assert [n["subject"].split(" pending")[0] for n in notices] == [
        f"change events of {NB}/st_task",
        f"change events of {TH}/expert",
    ]
    assert {n["severity"] for n in notices} == {"warning"}
    assert "(limit 60 min)" in notices[1]["subject"]
    [ti] = run.get_task_instances()
    assert ti.state == "success"
