"""The national feed's publisher (connectors/national_feed.py) against the stand-in national
intake (a real server process on its own database) and a real PostgreSQL warehouse.

The warehouse side is a published feed model as the publisher reads it: `marts.feed_st_task`
with the documented columns (tests/test_feed_models.py checks that dbt builds exactly that).
Every test ends by reconciling: the published records, the ledger and what the intake holds
agree, and the intake's log of applied changes holds no change twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import requests

from connectors.national_feed import FeedDeliveryError, IntakeClients, deliver
from connectors.national_feed_control import set_paused, start_resend
from connectors.national_intake import IntakeConnection
from connectors.national_reconcile import reconcile
from local.national_intake.process import RunningIntake, run_national_intake
from local.postgres import drop_database, ensure_database
from local.quarantine import format_rows, open_quarantine

PROVINCES = ("37", "38")
PERSONAL = ("012345678901", "0912345678", "someone@example.vn")


# ----------------------------------------------------------------------------- fixtures, helpers


@pytest.fixture
def intake_db(pg_admin_url: str) -> Iterator[str]:
    name = f"sti_test_intake_{uuid.uuid4().hex[:10]}"
    ensure_database(pg_admin_url, name)
    try:
        yield pg_admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        drop_database(pg_admin_url, name)


@pytest.fixture
def intake(intake_db: str) -> Iterator[RunningIntake]:
    with run_national_intake(intake_db, PROVINCES) as running:
        yield running


@pytest.fixture
def feed_url(warehouse_url: str) -> str:
    """The warehouse with a published feed model and the seed declaring it."""
    with psycopg.connect(warehouse_url) as conn:
        conn.execute(
            "create schema reference; create schema marts;"
            " create table reference.national_feed_entities (entity text, model text);"
            " insert into reference.national_feed_entities values ('st_task', 'feed_st_task');"
            " create table marts.feed_st_task (province_code text not null, entity text not null,"
            " record_key text not null unique, payload jsonb not null,"
            " content_digest text not null, source_id text, record_id text, landed_id bigint)"
        )
    return warehouse_url


def connections(intake: RunningIntake, base_url: str | None = None):
    def connection_for(province: str) -> IntakeConnection | None:
        credential = intake.credentials.get(province)
        return credential.connection(base_url or intake.base_url) if credential else None

    return connection_for


def task(province: str, number: int, **changes: object) -> dict[str, object]:
    return {
        "task_code": f"T-{number:05d}",
        "title": f"Đề tài số {number}",
        "province_code": province,
        "field_code": "10101",
        "status": "approved",
        **changes,
    }


def publish(url: str, records: list[dict[str, object]]) -> None:
    """Replace the published feed model with `records` (a warehouse publish, in effect)."""
    with psycopg.connect(url) as conn:
        conn.execute("truncate marts.feed_st_task")
        with conn.cursor().copy(
            "copy marts.feed_st_task (province_code, entity, record_key, payload, content_digest,"
            " source_id, record_id) from stdin"
        ) as copy:
            for record in records:
                payload = psycopg.types.json.Jsonb(record)
                key = f"{record['province_code']}:{record['task_code']}"
                copy.write_row((record["province_code"], "st_task", key, payload, "-", "reg", key))
        conn.execute(
            "update marts.feed_st_task"
            " set content_digest = encode(sha256(convert_to(payload::text, 'UTF8')), 'hex')"
        )


def records(count: int) -> list[dict[str, object]]:
    return [task(PROVINCES[i % 2], i) for i in range(count)]


def run_feed(url: str, intake: RunningIntake, chunk_records: int = 5_000, **client_options):
    with IntakeClients(connections(intake), **client_options) as clients:
        return deliver(url, clients, "st_task", chunk_records=chunk_records)


def fault(intake: RunningIntake, **settings: object) -> None:
    reply = requests.post(
        intake.base_url + "/admin/faults",
        json=settings,
        headers={"Authorization": f"Bearer {intake.admin_token}"},
        timeout=10,
    )
    assert reply.status_code == 200, reply.text


def clear_faults(intake: RunningIntake) -> None:
    requests.delete(
        intake.base_url + "/admin/faults",
        headers={"Authorization": f"Bearer {intake.admin_token}"},
        timeout=10,
    ).raise_for_status()


def query(url: str, sql: str, *params: object) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def assert_reconciled(url: str, intake: RunningIntake, intake_db: str, rejected: int = 0) -> None:
    """Published = acknowledged = held by the intake, and no change applied twice."""
    with IntakeClients(connections(intake)) as clients:
        balances, differences = reconcile(url, clients)
    assert differences == [] or all(d.kind == "rejected" for d in differences), differences
    assert sum(b.differences for b in balances) == 0
    assert sum(b.kinds.get("rejected", 0) for b in balances) == rejected
    for b in balances:
        assert b.national == b.acknowledged == b.published - b.kinds.get("rejected", 0)
        assert b.national_checksum == b.acknowledged_checksum
        if not rejected:
            assert b.published_checksum == b.acknowledged_checksum
    twice = query(
        intake_db,
        "select entity, record_key, content_digest, op, count(*) from intake.applied"
        " group by 1, 2, 3, 4 having count(*) > 1",
    )
    assert twice == []


# ----------------------------------------------------------------------------------------- tests


def test_every_record_delivered_once_in_chunks_then_only_changes(feed_url, intake, intake_db):
    published = records(2_300)
    publish(feed_url, published)

    report = run_feed(feed_url, intake, chunk_records=500)

    assert (report.upserts, report.tombstones, report.accepted) == (2_300, 0, 2_300)
    assert report.batches == 6  # 1,150 per province in chunks of 500
    assert query(feed_url, "select distinct state from ops.feed_batch") == [("acknowledged",)]
    assert query(feed_url, "select count(*) from ops.feed_batch where body is not null") == [(0,)]
    assert query(feed_url, "select count(*) from ops.feed_batch_record") == [(2_300,)]
    assert_reconciled(feed_url, intake, intake_db)

    # Nothing changed: nothing is sent.
    assert run_feed(feed_url, intake).batches == 0

    # Two changed, one new, three deleted at the source: six changes, nothing else.
    published[0] = task("37", 0, status="in_progress")
    published[1] = task("38", 1, title="Đề tài đã sửa")
    published = [*published[:-3], task("37", 9_000)]
    publish(feed_url, published)
    report = run_feed(feed_url, intake)
    assert (report.upserts, report.tombstones, report.accepted) == (3, 3, 6)
    assert_reconciled(feed_url, intake, intake_db)
    held = query(
        intake_db, "select data->>'status' from intake.holdings where record_key = '37:T-00000'"
    )
    assert held == [("in_progress",)]


def test_publisher_killed_mid_send_then_restarted(feed_url, intake, intake_db):
    publish(feed_url, records(3_000))
    fault(intake, mode="slow", delay_seconds=0.6)
    tests = Path(__file__).resolve().parent
    script = (
        f"import sys; sys.path[:0] = [{str(tests.parent)!r}, {str(tests)!r}];"
        " import test_national_feed; test_national_feed._run_from_environment()"
    )
    env = {
        **os.environ,
        "FEED_TEST_URL": feed_url,
        "FEED_TEST_INTAKE": intake.base_url,
        "FEED_TEST_CREDENTIALS": _credentials_json(intake),
    }
    child = subprocess.Popen([sys.executable, "-c", script], env=env)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            done = query(
                feed_url, "select count(*) from ops.feed_batch where state = 'acknowledged'"
            )[0][0]
            if done >= 2:
                break
            assert child.poll() is None, "the publisher ended before it could be killed"
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    acknowledged = query(
        feed_url, "select count(*) from ops.feed_batch where state = 'acknowledged'"
    )[0][0]
    assert 2 <= acknowledged < 6  # killed mid-way: 3,000 records are six batches of 500
    clear_faults(intake)

    report = run_feed(feed_url, intake, chunk_records=500)

    # Open at the kill: the batch in flight and the next one, already planned.
    assert report.settled <= 2
    assert_reconciled(feed_url, intake, intake_db)


def _credentials_json(intake: RunningIntake) -> str:
    import json

    return json.dumps(
        {p: [c.client_id, c.client_secret, c.key_id, c.private_key_pem]
         for p, c in intake.credentials.items()}
    )  # fmt: skip


def _run_from_environment() -> None:
    """The killed publisher of test_publisher_killed_mid_send_then_restarted (a child process)."""
    import json

    credentials = json.loads(os.environ["FEED_TEST_CREDENTIALS"])
    base_url = os.environ["FEED_TEST_INTAKE"]

    def connection_for(province: str) -> IntakeConnection | None:
        if province not in credentials:
            return None
        return IntakeConnection(base_url, *credentials[province])

    with IntakeClients(connection_for) as clients:
        deliver(os.environ["FEED_TEST_URL"], clients, "st_task", chunk_records=500)


def test_intake_down_then_backlog_delivered(feed_url, intake, intake_db):
    publish(feed_url, records(400))
    # Down: nothing listens where the intake should be.
    closed = f"http://127.0.0.1:{_closed_port()}"
    quick = {"backoff_base": 0.05, "backoff_max": 0.2}  # retried with backoff, quickly
    with (
        IntakeClients(connections(intake, closed), **quick) as clients,
        pytest.raises(FeedDeliveryError, match="not delivered"),
    ):
        deliver(feed_url, clients, "st_task", chunk_records=100)
    # Answering 503 to every batch.
    fault(intake, mode="error_5xx", count=1_000)
    with pytest.raises(FeedDeliveryError, match="kept for the next run"):
        run_feed(feed_url, intake, chunk_records=100, **quick)
    # The batch refused and, planned while it was in flight, the next one: open in the ledger.
    [(open_batches, error)] = query(
        feed_url, "select count(*), max(last_error) from ops.feed_batch where state = 'planned'"
    )
    assert open_batches in (1, 2) and "503" in error
    assert query(intake_db, "select count(*) from intake.holdings") == [(0,)]
    clear_faults(intake)

    report = run_feed(feed_url, intake, chunk_records=100)

    assert report.settled == open_batches and report.accepted == 400
    assert_reconciled(feed_url, intake, intake_db)


def _closed_port() -> int:
    from local.standin_process import free_loopback_port

    return free_loopback_port()


def test_ambiguous_timeouts_store_nothing_twice(feed_url, intake, intake_db):
    """The intake stores a batch, then answers too late for the client: the publisher asks
    for the batch's status (first case) or sends it again under its key (second case)."""
    publish(feed_url, records(300))
    fault(intake, mode="timeout_after_store", count=1, delay_seconds=3)
    impatient = {"timeout": (2.0, 1.0), "backoff_base": 0.1}

    with IntakeClients(connections(intake), max_attempts=1, **impatient) as clients:
        report = deliver(feed_url, clients, "st_task", chunk_records=100)

    assert report.accepted == 300 and report.replayed == 1  # the status query's answer
    assert query(intake_db, "select count(*) from intake.batches") == [(4,)]
    assert_reconciled(feed_url, intake, intake_db)

    publish(feed_url, records(500))
    fault(intake, mode="timeout_after_store", count=1, delay_seconds=3)
    with IntakeClients(connections(intake), max_attempts=3, **impatient) as clients:
        report = deliver(feed_url, clients, "st_task", chunk_records=100)

    assert report.accepted == 200 and report.replayed == 1  # the retried POST's replay
    assert query(intake_db, "select count(*) from intake.batches") == [(6,)]
    assert_reconciled(feed_url, intake, intake_db)


def test_partial_rejections_go_to_quarantine_then_fixed_records_are_sent(
    feed_url, intake, intake_db
):
    published = records(200)
    published[3] = task("38", 3, field_code="99999")  # no such research field
    published[5] = task("38", 5, title="Liên hệ 0912345678")  # a phone number
    publish(feed_url, published)

    report = run_feed(feed_url, intake)

    assert (report.accepted, report.rejected) == (198, 2)
    rejected = dict(
        query(feed_url, "select record_key, reason_code from ops.feed_rejection order by 1")
    )
    assert rejected == {"38:T-00003": "UNKNOWN_RESEARCH_FIELD", "38:T-00005": "PERSONAL_DATA"}
    listed = query(
        feed_url,
        "select source_id, entity, reason from ops.open_quarantine where reason like 'national%%'",
    )
    assert len(listed) == 2 and all(source == "reg" for source, _, _ in listed)
    listed = format_rows(open_quarantine(feed_url))  # what `make quarantine` prints
    assert "national intake rejected (PERSONAL_DATA)" in listed
    assert "cơ sở dữ liệu quốc gia từ chối (UNKNOWN_RESEARCH_FIELD)" in listed
    assert query(intake_db, "select count(*) from intake.holdings")[0][0] == 198
    assert_reconciled(feed_url, intake, intake_db, rejected=2)
    # Not sent again while unchanged.
    assert run_feed(feed_url, intake).batches == 0

    published[3] = task("38", 3, field_code="10101")
    published[5] = task("38", 5)
    publish(feed_url, published)
    report = run_feed(feed_url, intake)

    assert (report.accepted, report.rejected) == (2, 0)
    assert query(feed_url, "select count(*) from ops.feed_rejection where resolved_at is null")[
        0
    ] == (0,)
    assert_reconciled(feed_url, intake, intake_db)


def test_rejections_on_demand_and_personal_data_never_stored(feed_url, intake, intake_db):
    published = records(100)
    published[7] = task("37", 7, contact=PERSONAL[2])
    publish(feed_url, published)
    fault(intake, mode="reject", reject_every=10)

    report = run_feed(feed_url, intake)

    assert report.rejected >= 10
    codes = dict(query(feed_url, "select record_key, reason_code from ops.feed_rejection"))
    assert codes.pop("37:T-00007") == "PERSONAL_DATA"
    assert set(codes.values()) == {"REJECTED_ON_DEMAND"}
    held = query(intake_db, "select data::text from intake.holdings")
    assert not any(value in text for (text,) in held for value in PERSONAL)
    assert_reconciled(feed_url, intake, intake_db, rejected=report.rejected)


def test_pause_a_province_and_resend_after_the_national_side_lost_data(feed_url, intake, intake_db):
    publish(feed_url, records(200))
    set_paused(feed_url, "38", None, True, "national side asked to wait")

    report = run_feed(feed_url, intake)

    assert report.accepted == 100 and report.paused_provinces == ["38"]
    assert query(intake_db, "select distinct province_code from intake.holdings") == [("37",)]
    set_paused(feed_url, "38", "st_task", False)
    assert run_feed(feed_url, intake).accepted == 100
    assert_reconciled(feed_url, intake, intake_db)

    # The national side loses everything: reconciliation says what and how to resolve it.
    requests.post(
        intake.base_url + "/admin/reset",
        headers={"Authorization": f"Bearer {intake.admin_token}"},
        timeout=10,
    ).raise_for_status()
    with IntakeClients(connections(intake)) as clients:
        balances, differences = reconcile(feed_url, clients)
    assert {b.kinds.get("national_missing") for b in balances} == {100}
    assert all("feed-resend" in d.how_to_resolve for d in differences)

    assert start_resend(feed_url, "37", None, "national intake lost data") == 100
    assert start_resend(feed_url, "38", "st_task", "national intake lost data") == 100
    report = run_feed(feed_url, intake)

    assert report.accepted == 200
    keys = query(feed_url, "select idempotency_key from ops.feed_batch order by planned_at")
    assert keys[-1][0].endswith((".e2.1", ".e2.2"))
    assert_reconciled(feed_url, intake, intake_db)


@pytest.mark.e2e
def test_the_national_feed_dag_delivers_and_reconciles(
    feed_url, intake, intake_db, airflow_home, monkeypatch
):
    """The national_feed DAG through Airflow itself (dag.test() on a migrated metadata DB):
    one deliver task per national entity of the seed, then reconcile."""
    import pendulum
    from airflow.dag_processing.dagbag import DagBag

    from local.airflow_env import DAGS_FOLDER, connection_env
    from local.feed import connection_env as intake_env

    seeded = [row[0] for row in csv_rows()]
    with psycopg.connect(feed_url) as conn:
        conn.execute("delete from reference.national_feed_entities")
        for entity in seeded:
            conn.execute(
                "insert into reference.national_feed_entities values (%s, %s)",
                (entity, f"feed_{entity}"),
            )
            if entity != "st_task":
                conn.execute(f"create table marts.feed_{entity} (like marts.feed_st_task)")
    publish(feed_url, records(120))
    for name, value in {**connection_env(feed_url, {}), **intake_env(intake)}.items():
        monkeypatch.setenv(name, value)
    bag = DagBag(dag_folder=str(DAGS_FOLDER / "national_feed_dag.py"))
    assert bag.import_errors == {}
    dag = bag.dags["national_feed"]

    run = dag.test(logical_date=pendulum.now("UTC"))

    states = {(ti.task_id, ti.map_index): ti.state for ti in run.get_task_instances()}
    assert run.state == "success", states
    assert len([key for key in states if key[0] == "deliver"]) == len(seeded)
    assert_reconciled(feed_url, intake, intake_db)
    assert query(intake_db, "select count(*) from intake.holdings") == [(120,)]


def csv_rows() -> list[list[str]]:
    import csv

    seed = Path(__file__).resolve().parents[1] / "dbt_project/seeds/national_feed_entities.csv"
    with seed.open(encoding="utf-8") as file:
        return list(csv.reader(file))[1:]
