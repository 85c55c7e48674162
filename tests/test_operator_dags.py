"""The operator DAGs (replay, release, backfill) run through Airflow itself (dag.test() on a
migrated metadata DB) on a real PostgreSQL with the stand-in registry; the pause, resume and
backfill commands against a fake of Airflow's REST API that records what they ask."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pendulum
import psycopg
import pytest
import requests
from records import pages_of, st_task

import expectations.gate as gate
from connectors.airflow_api import AirflowApi
from connectors.backfill import BackfillRequestError, backfill_request
from connectors.catalogue import load_catalogue
from connectors.landing import LoadInProgressError, Window, land_extraction, lock_source
from local.airflow_env import DAGS_FOLDER, connection_env
from local.registry.process import run_registry

pytestmark = pytest.mark.e2e

SOURCE = {"source_id": "ninh_binh_registry", "entity": "st_task", "contract": "registry-api-v1"}
SYNC_DAG_ID = "ninh_binh_registry__st_task"
OPERATOR_DAG_IDS = ("ops__quarantine_replay", "ops__quarantine_release", "ops__backfill")
UNKNOWN_FIELD = "field_code is not a research field of QĐ 12/2008"


# ----------------------------------------------------------------------------- fixtures, helpers


@pytest.fixture(scope="module")
def dags(airflow_home):
    from airflow.dag_processing.dagbag import DagBag

    found = {}
    for module in ("operator_dags.py", "source_dags.py"):
        bag = DagBag(dag_folder=str(DAGS_FOLDER / module))
        assert bag.import_errors == {}
        found.update(bag.dags)
    return found


def _run(dag, warehouse_url, monkeypatch, conf=None, registry=None):
    sources = {"ninh_binh_registry": registry} if registry else {}
    for name, value in connection_env(warehouse_url, sources).items():
        monkeypatch.setenv(name, value)
    return dag.test(logical_date=pendulum.now("UTC"), run_conf=conf)


def _check_params(dag, conf: dict[str, Any]) -> None:
    """What Airflow checks of a run's Params before creating it (a trigger from the UI, the
    REST API or dag.test()): the serialized DAG's Params merged with the conf, validated."""
    from airflow.serialization.serialized_objects import DagSerialization

    scheduler_dag = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))
    scheduler_dag.params.deep_merge(conf).validate()


def _states(dag_run) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in dag_run.get_task_instances()}


def _query(url: str, sql: str, *params: Any) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def _land(url: str, records: list[dict]) -> int:
    return land_extraction(url, **SOURCE, extract=lambda _: pages_of(records, 50)).batch_id


def _records(n: int, bad_every: int) -> list[dict]:
    """n records; every `bad_every`-th one has a research field code QĐ 12/2008 lacks."""
    return [st_task(i, field_code="10999") if i % bad_every == 0 else st_task(i) for i in range(n)]


def _published_events(entity: str) -> list[dict]:
    """The extras of the asset events on `sti://published/<entity>`, oldest first."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return [
            event.extra
            for event in session.scalars(
                select(AssetEvent)
                .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
                .where(AssetModel.uri == f"sti://published/{entity}")
                .order_by(AssetEvent.id)
            )
        ]


# ----------------------------------------------------------------------------- the DAGs


def test_operator_dags_are_manual_documented_and_tagged(dags):
    for dag_id in OPERATOR_DAG_IDS:
        dag = dags[dag_id]
        assert not dag.timetable.can_be_scheduled, dag_id  # schedule=None: triggered only
        assert dag.tags == {"operations"} and dag.max_active_runs == 1
        assert "**Params**" in dag.doc_md
    assert set(dags["ops__quarantine_replay"].params) == {"source_id", "entity", "batch_id"}
    assert set(dags["ops__quarantine_release"].params) == {"batch_id", "note"}
    backfill = dags["ops__backfill"]
    assert set(backfill.params) == {"source_id", "entity", "date_from", "date_to"}
    assert [t.task_id for t in backfill.topological_sort()] == [
        "check",
        "extract_and_land",
        "gate",
        "publish",
        "announce",
    ]
    source = (DAGS_FOLDER / "operator_dags.py").read_text(encoding="utf-8")
    assert "from local" not in source and "import local" not in source


def test_replay_dag_releases_the_rows_a_code_list_fix_lets_pass(dags, warehouse_url, monkeypatch):
    batch_id = _land(warehouse_url, _records(80, bad_every=20))  # 4 with an unknown field
    gate.run_gate(warehouse_url, batch_id)
    gate.publish_batch(warehouse_url, batch_id)
    # Another batch, blocked: a quarter of its budgets are negative, which no fix changes.
    negative = [
        st_task(i, budget_state_million_vnd=-5 if i % 4 == 0 else 10) for i in range(100, 200)
    ]
    blocked = _land(warehouse_url, negative)
    with pytest.raises(gate.GateFailedError):
        gate.run_gate(warehouse_url, blocked)
    events_before = len(_published_events("st_task"))

    # The research-field code list gains 10999: the quarantined rows pass now.
    codes = gate.SUITE_PARAMETERS["research_field_codes"]()
    monkeypatch.setitem(gate.SUITE_PARAMETERS, "research_field_codes", lambda: [*codes, "10999"])
    replay = dags["ops__quarantine_replay"]
    run = _run(replay, warehouse_url, monkeypatch, {"source_id": "ninh_binh_registry"})

    # What passes is published and announced; the run fails for the batch still blocked.
    assert run.state == "failed"
    assert _states(run) == {
        "replay": "success",
        "announce": "success",
        "nothing_left_out": "failed",
    }
    assert (
        _query(
            warehouse_url,
            "select batch_id, reason, resolution from ops.quarantine where resolved_at is not null",
        )
        == [(batch_id, UNKNOWN_FIELD, "replayed: passes the current rules")] * 4
    )
    assert _query(
        warehouse_url,
        "select state, records_passed, records_quarantined from ops.load_batch order by batch_id",
    ) == [("published", 80, 0), ("failed", 75, 25)]
    [extra] = _published_events("st_task")[events_before:]
    assert extra == {
        "source_id": "ninh_binh_registry",
        "batch_ids": [batch_id],
        "rows": 80,
        "operation": "ops__quarantine_replay",
    }

    # Nothing left to replay in that batch: a success that publishes nothing, starts no build.
    again = _run(replay, warehouse_url, monkeypatch, {"batch_id": batch_id})
    assert again.state == "success" and _states(again)["announce"] == "skipped"
    assert len(_published_events("st_task")) == events_before + 1


def test_release_dag_publishes_a_blocked_batch_with_its_note(dags, warehouse_url, monkeypatch):
    from airflow.sdk.exceptions import ParamValidationError

    blocked = _land(warehouse_url, _records(100, bad_every=4))  # 25 quarantined: over 10%
    with pytest.raises(gate.GateFailedError):
        gate.run_gate(warehouse_url, blocked)
    release = dags["ops__quarantine_release"]

    # Params are checked when the run is created: nothing runs.
    with pytest.raises(ParamValidationError, match="param note: No value passed"):
        _run(release, warehouse_url, monkeypatch, {"batch_id": blocked})
    for conf, refusal in (
        ({"note": "ok"}, "param batch_id: No value passed"),
        ({"batch_id": str(blocked), "note": "ok"}, "param batch_id: '1' is not of type 'integer'"),
        ({"batch_id": 0, "note": "ok"}, "param batch_id: 0 is less than the minimum of 1"),
        ({"batch_id": blocked, "note": "   "}, "param note: '   ' does not match"),
    ):
        with pytest.raises(ParamValidationError, match=refusal):
            _check_params(release, conf)
    assert _query(warehouse_url, "select state, released_at from ops.load_batch") == [
        ("failed", None)
    ]

    note = "the registry re-coded its 2024 tasks; confirmed with Sở KH&CN Ninh Bình (ticket 42)"
    run = _run(release, warehouse_url, monkeypatch, {"batch_id": blocked, "note": note})
    assert run.state == "success", _states(run)
    assert _query(
        warehouse_url,
        "select state, release_note, released_at is not null, records_passed,"
        " records_quarantined from ops.load_batch",
    ) == [("published", note, True, 75, 25)]
    assert _published_events("st_task")[-1]["operation"] == "ops__quarantine_release"

    # A batch no batch-level rule blocks is refused, saying so, and left as it is.
    run = _run(release, warehouse_url, monkeypatch, {"batch_id": blocked, "note": "again"})
    assert run.state == "failed" and _states(run)["release"] == "failed"
    assert _query(warehouse_url, "select release_note from ops.load_batch") == [(note,)]
    from expectations.operations import release as release_batch

    with pytest.raises(ValueError, match=f"batch {blocked} is not blocked by a batch-level rule"):
        release_batch(warehouse_url, blocked, "again")


def _window_records(registry, window: Window) -> list[dict]:
    """What the stand-in holds updated in `window`, read with a plain full extraction."""
    from connectors.registry_api import RegistryClient

    with RegistryClient(registry.base_url, registry.client_id, registry.client_secret) as client:
        records = [r for page in client.iter_pages("st-tasks") for r in page.records]
    return [
        r for r in records if window.start <= datetime.fromisoformat(r["updated_at"]) < window.end
    ]


def _landed_ids(url: str, batch_id: int | None = None) -> list[str]:
    """The record ids landed (by one batch), sorted."""
    rows = _query(
        url,
        "select record_id from raw.landed_record where %s::bigint is null or batch_id = %s",
        batch_id,
        batch_id,
    )
    return sorted(record_id for (record_id,) in rows)


def _cursor(url: str) -> list[tuple]:
    return _query(url, "select high_watermark, batch_id from ops.source_cursor")


def test_backfill_lands_the_window_and_leaves_the_live_cursor(dags, warehouse_url, monkeypatch):
    backfill, sync = dags["ops__backfill"], dags[SYNC_DAG_ID]
    conf = {
        "source_id": "ninh_binh_registry",
        "entity": "st_task",
        "date_from": "2021-01-01",
        "date_to": "2021-12-31",
    }
    window = backfill_request(load_catalogue(), **conf).window
    assert window.start.isoformat() == "2021-01-01T00:00:00+07:00"
    assert window.end.isoformat() == "2022-01-01T00:00:00+07:00"
    with run_registry(records=120, bad_share=0.0, seed=7) as registry:
        expected = sorted(r["id"] for r in _window_records(registry, window))
        assert 10 <= len(expected) < 30
        events_before = len(_published_events("st_task"))

        run = _run(backfill, warehouse_url, monkeypatch, conf, registry)
        assert run.state == "success", _states(run)
        [(batch, extraction, state, since, until)] = _query(
            warehouse_url,
            "select batch_id, extraction, state, updated_since, updated_until from ops.load_batch",
        )
        assert (extraction, state) == ("backfill", "published")
        assert (since, until) == (window.start, window.end)
        assert _landed_ids(warehouse_url) == expected
        assert _cursor(warehouse_url) == []  # the live cursor was not created, nor read
        [extra] = _published_events("st_task")[events_before:]
        assert extra["batch_ids"] == [batch] and extra["rows"] == len(expected)

        # The next sync extracts everything, as it would have (no cursor yet), and skips
        # what the backfill landed.
        first_sync = _run(sync, warehouse_url, monkeypatch, registry=registry)
        assert first_sync.state == "success", _states(first_sync)
        [(sync_batch, extraction, extracted, landed, skipped)] = _query(
            warehouse_url,
            "select batch_id, extraction, records_extracted, records_landed, records_skipped"
            " from ops.load_batch where batch_id > %s",
            batch,
        )
        assert (extraction, extracted, landed, skipped) == (
            "full",
            120,
            120 - len(expected),
            len(expected),
        )
        cursor = _cursor(warehouse_url)
        assert cursor[0][1] == sync_batch

        # Changes at the source, then the same backfill again: the cursor stays the sync's
        # and the next sync lands exactly the changes from it.
        changed = requests.post(
            f"{registry.base_url}/_standin/changes", json={"update": 3}, timeout=10
        ).json()["updated"]
        again = _run(backfill, warehouse_url, monkeypatch, conf, registry)
        assert again.state == "success" and _states(again)["announce"] == "skipped"
        assert _query(
            warehouse_url,
            "select extraction, records_landed from ops.load_batch order by batch_id desc limit 1",
        ) == [("backfill", 0)]
        assert _cursor(warehouse_url) == cursor
        second_sync = _run(sync, warehouse_url, monkeypatch, registry=registry)
        assert second_sync.state == "success", _states(second_sync)
        [(last, extraction, since, landed)] = _query(
            warehouse_url,
            "select batch_id, extraction, updated_since, records_landed from ops.load_batch"
            " order by batch_id desc limit 1",
        )
        assert (extraction, since, landed) == ("incremental", cursor[0][0], 3)
        assert _landed_ids(warehouse_url, last) == sorted(changed)


def test_backfill_refuses_what_it_cannot_do_and_says_why(dags, warehouse_url, monkeypatch):
    from airflow.sdk.exceptions import ParamValidationError

    catalogue = load_catalogue()
    for args, refusal in (
        (("ha_noi_registry", "st_task", "2024-01-01", "2024-01-31"), "unknown source"),
        (
            ("ninh_binh_stat_reports", "stat_form_04", "2024-01-01", "2024-01-31"),
            "spreadsheet drop .* no date range to backfill",
        ),
        (("ninh_binh_registry", "listing", "2024-01-01", "2024-01-31"), "has no entity 'listing'"),
        (("ninh_binh_registry", "st_task", "2024-02-01", "2024-01-31"), "is after date_to"),
        (("ninh_binh_registry", "st_task", "2024-02-30", "2024-03-01"), "is not a date"),
        (("ninh_binh_exchange", "listing", "2999-01-01", "2999-01-02"), "in the future"),
    ):
        with pytest.raises(BackfillRequestError, match=refusal):
            backfill_request(catalogue, *args)
    request = backfill_request(
        catalogue, "ninh_binh_exchange", "listing", "2024-01-01", "2024-01-01"
    )
    assert (request.window.end - request.window.start) == timedelta(days=1)

    backfill = dags["ops__backfill"]
    conf = {"source_id": "x", "entity": "y", "date_from": "2024-13-01", "date_to": "2024-12-31"}
    with pytest.raises(ParamValidationError, match="param date_from: '2024-13-01' is not a 'date'"):
        _check_params(backfill, conf)
    with pytest.raises(ParamValidationError, match="param date_to: No value passed"):
        _check_params(backfill, {"source_id": "x", "entity": "y", "date_from": "2024-01-01"})
    conf = {
        "source_id": "ninh_binh_stat_reports",
        "entity": "stat_form_04",
        "date_from": "2024-01-01",
        "date_to": "2024-03-31",
    }
    run = _run(backfill, warehouse_url, monkeypatch, conf)
    assert run.state == "failed"
    assert _states(run) == {
        "check": "failed",
        "extract_and_land": "upstream_failed",
        "gate": "upstream_failed",
        "publish": "upstream_failed",
        "announce": "upstream_failed",
    }
    assert _query(warehouse_url, "select count(*) from ops.load_batch") == [(0,)]


def test_a_backfill_waits_for_the_live_run_of_its_entity(warehouse_url):
    """It takes the landing lock the sync run holds while it lands: it fails at once, records
    nothing, and its task is retried."""
    from connectors.jobs import SourceConnection, extract_and_land

    source = {s.id: s for s in load_catalogue()}["ninh_binh_registry"]
    window = backfill_request([source], source.id, "st_task", "2024-01-01", "2024-01-31").window
    unreachable = SourceConnection(host="http://127.0.0.1:9", login="id", password="secret")
    with psycopg.connect(warehouse_url, autocommit=True) as live_run:
        lock_source(live_run, source.id, "st_task")
        with pytest.raises(LoadInProgressError, match="another load of ninh_binh_registry/st_task"):
            extract_and_land(warehouse_url, source, "st_task", unreachable, window)
    assert _query(warehouse_url, "select count(*) from ops.load_batch") == [(0,)]


def test_an_exchange_backfill_reads_the_window_it_was_given(warehouse_url):
    from connectors.exchange_api import ExchangeClient, parse_local_timestamp
    from connectors.jobs import extract_and_land_exchange
    from local.exchange.process import run_exchange

    with run_exchange(listings=150, transactions=0, seed=11) as exchange:
        with ExchangeClient(exchange.base_url, exchange.api_key) as client:
            stamps = {
                r["ma_tin"]: parse_local_timestamp(r["ngay_cap_nhat"])
                for page in client.iter_pages("listing")
                for r in page.records
            }
        ordered = sorted(s for s in stamps.values() if s is not None)
        middle = ordered[len(ordered) // 2].date()
        window = Window(
            datetime.combine(middle - timedelta(days=60), datetime.min.time(), ordered[0].tzinfo),
            datetime.combine(middle + timedelta(days=1), datetime.min.time(), ordered[0].tzinfo),
        )
        expected = sorted(i for i, s in stamps.items() if s and window.start <= s < window.end)
        result = extract_and_land_exchange(
            warehouse_url,
            source_id="ninh_binh_exchange",
            entity="listing",
            base_url=exchange.base_url,
            api_key=exchange.api_key,
            page_size=20,
            window=window,
        )

    assert expected and result.records_landed == len(expected)
    assert _landed_ids(warehouse_url) == expected
    assert _query(warehouse_url, "select extraction from ops.load_batch") == [("backfill",)]
    assert _cursor(warehouse_url) == []


# ----------------------------------------------------------------------------- the commands


class FakeAirflow:
    """Airflow's REST API (v2) as far as the commands use it, recording every call."""

    def __init__(self, dags: dict[str, bool]) -> None:
        self.dags = dict(dags)  # dag_id -> is_paused
        self.calls: list[tuple[str, str, dict[str, list[str]], Any]] = []
        self.runs: dict[str, dict] = {}
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method: str) -> None:
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                query = parse_qs(url.query)
                fake.calls.append((method, url.path, query, body))
                if url.path == "/auth/token":
                    return self._reply(201, {"access_token": "token"})
                if self.headers.get("Authorization") != "Bearer token":
                    return self._reply(401, {"detail": "not authenticated"})
                self._reply(*fake.answer(method, unquote(url.path), query, body))

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def do_PATCH(self) -> None:
                self._handle("PATCH")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_port}"

    def answer(self, method: str, path: str, query: dict, body: Any) -> tuple[int, Any]:
        if method == "GET" and path == "/api/v2/dags":
            # Like Airflow: a prefix match on the term without trailing non-alphanumerics.
            prefix = query["dag_id_prefix_pattern"][0].rstrip("_")
            limit, offset = int(query["limit"][0]), int(query["offset"][0])
            found = sorted(d for d in self.dags if d.startswith(prefix))
            page = [{"dag_id": d, "is_paused": self.dags[d]} for d in found[offset:][:limit]]
            return 200, {"dags": page, "total_entries": len(found)}
        if path.startswith("/api/v2/dags/") and path.count("/") == 4:
            dag_id = path.rsplit("/", 1)[1]
            if dag_id not in self.dags:
                return 404, {"detail": f"Dag with id: {dag_id} was not found"}
            if method == "PATCH":
                assert query == {"update_mask": ["is_paused"]}
                self.dags[dag_id] = body["is_paused"]
            return 200, {"dag_id": dag_id, "is_paused": self.dags[dag_id]}
        if method == "POST" and path == "/api/v2/dags/ops__backfill/dagRuns":
            run = {"dag_run_id": body["dag_run_id"], "state": "queued", "conf": body["conf"]}
            self.runs[body["dag_run_id"]] = run
            return 200, run
        return 404, {"detail": "no such route in the fake"}

    def patches(self) -> list[tuple[str, Any]]:
        return [(path, body) for method, path, _, body in self.calls if method == "PATCH"]

    def __enter__(self) -> FakeAirflow:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


REGISTRY_DAGS = {f"ninh_binh_registry__{e}": False for e in ("st_task", "expert", "ip_right")}


@pytest.fixture
def fake_airflow(monkeypatch) -> Iterator[FakeAirflow]:
    dags = {
        **REGISTRY_DAGS,
        "ninh_binh_registry__organisation": True,  # paused already
        "ninh_binh_registry_archive__st_task": False,  # another source's, matched by prefix
        "ninh_binh_exchange__listing": False,
        "ops__backfill": True,
    }
    with FakeAirflow(dags) as fake:
        connection = {"conn_type": "http", "host": fake.base_url, "login": "op", "password": "pw"}
        monkeypatch.setenv("AIRFLOW_CONN_STI_AIRFLOW_API", json.dumps(connection))
        yield fake


def test_pause_and_resume_patch_exactly_the_sources_dags(fake_airflow, capsys):
    from local.operations import main

    assert main("pause", ["ninh_binh_registry"]) == 0
    assert fake_airflow.patches() == [
        (f"/api/v2/dags/{dag_id}", {"is_paused": True}) for dag_id in sorted(REGISTRY_DAGS)
    ]
    assert capsys.readouterr().out.splitlines() == [
        "paused ninh_binh_registry__expert",
        "paused ninh_binh_registry__ip_right",
        "paused ninh_binh_registry__st_task",
        "already paused: ninh_binh_registry__organisation",
    ]
    assert fake_airflow.dags["ninh_binh_registry_archive__st_task"] is False
    assert fake_airflow.dags["ninh_binh_exchange__listing"] is False

    fake_airflow.calls.clear()
    assert main("pause", ["ninh_binh_registry"]) == 0
    assert fake_airflow.patches() == []
    assert capsys.readouterr().out.startswith(
        "nothing changed: every DAG of ninh_binh_registry was already paused"
    )

    assert main("resume", ["ninh_binh_registry"]) == 0
    assert len(fake_airflow.patches()) == 4
    assert not any(fake_airflow.dags[d] for d in fake_airflow.dags if d.startswith("ninh_binh_r"))
    assert "resumed ninh_binh_registry__organisation" in capsys.readouterr().out


def test_pause_refuses_an_unknown_source_or_a_missing_connection(
    fake_airflow, monkeypatch, capsys, tmp_path
):
    from local.operations import OperationError, main, pause_source

    assert main("pause", ["ha_noi_registry"]) == 1
    assert "unknown source 'ha_noi_registry'; the catalogue has" in capsys.readouterr().err
    assert fake_airflow.calls == []  # refused before asking Airflow anything
    api = AirflowApi(fake_airflow.base_url, "op", "pw")
    with pytest.raises(OperationError, match="Airflow has no DAG of thanh_hoa_registry"):
        pause_source(api, "thanh_hoa_registry")

    monkeypatch.delenv("AIRFLOW_CONN_STI_AIRFLOW_API")
    monkeypatch.setattr("local.demo.AIRFLOW_HOME", tmp_path)  # no local stack has run here
    with pytest.raises(SystemExit, match="set AIRFLOW_CONN_STI_AIRFLOW_API"):
        main("resume", ["ninh_binh_registry"])


def test_without_a_connection_the_commands_use_the_local_stacks_airflow(tmp_path, monkeypatch):
    from local.operations import _api

    monkeypatch.delenv("AIRFLOW_CONN_STI_AIRFLOW_API", raising=False)
    monkeypatch.setattr("local.demo.AIRFLOW_HOME", tmp_path)
    (tmp_path / "passwords.json").write_text('{"admin": "a", "sti_dispatcher": "d"}')
    monkeypatch.setenv("AIRFLOW_UI_PORT", "8181")
    api = _api()
    assert (api.base_url, api._credentials) == (
        "http://127.0.0.1:8181",
        {"username": "sti_dispatcher", "password": "d"},
    )


def test_backfill_command_checks_then_triggers_the_dag(fake_airflow, capsys):
    from local.operations import main

    assert (
        main("backfill", ["ninh_binh_stat_reports", "stat_form_04", "2024-01-01", "2024-01-31"])
        == 1
    )
    assert "no date range to backfill" in capsys.readouterr().err
    assert fake_airflow.calls == []

    assert main("backfill", ["ninh_binh_registry", "st_task", "2024-01-01", "2024-03-31"]) == 0
    [(run_id, run)] = fake_airflow.runs.items()
    assert run_id.startswith("cli__ninh_binh_registry.st_task.2024-01-01.2024-03-31.")
    assert run["conf"] == {
        "source_id": "ninh_binh_registry",
        "entity": "st_task",
        "date_from": "2024-01-01",
        "date_to": "2024-03-31",
    }
    [(_, _, _, body)] = [c for c in fake_airflow.calls if c[0] == "POST" and "dagRuns" in c[1]]
    assert body["logical_date"] is None and body["note"].startswith("python -m local backfill")
    out = capsys.readouterr().out
    assert f"triggered ops__backfill run {run_id} (queued)" in out
    assert "ops__backfill is paused" in out


def test_backfill_windows_are_vietnamese_days():
    request = backfill_request(
        load_catalogue(), "national_exchange", "transaction", date(2025, 6, 30), "2025-07-01"
    )
    assert request.window.start == datetime(2025, 6, 29, 17, tzinfo=UTC)
    assert request.window.end == datetime(2025, 7, 1, 17, tzinfo=UTC)
