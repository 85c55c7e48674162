"""The sync DAG and the warehouse DAG run through Airflow itself (dag.test() on a migrated
metadata DB) against the stand-in registry and a real PostgreSQL, with real GX and real dbt."""

from __future__ import annotations

import pendulum
import psycopg
import pytest
import requests

from local.airflow_env import DAGS_FOLDER, connection_env
from local.registry.process import run_registry

pytestmark = pytest.mark.e2e

DAG_ID = "ninh_binh_registry__st_task"
WAREHOUSE_DAG_ID = "warehouse__dbt_build"
REASON_OF_BAD_KIND = {
    "missing_id": "the record has no id",
    "unknown_field_code": "field_code is not a research field of QĐ 12/2008",
    "end_before_start": "end_date is before start_date",
    "negative_budget": "state budget is negative",
}


@pytest.fixture(scope="module")
def dag_bag(airflow_home, dbt_manifest):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    assert bag.import_errors == {}
    return bag


@pytest.fixture(scope="module")
def sync_dag(dag_bag):
    return dag_bag.dags[DAG_ID]


@pytest.fixture(scope="module")
def warehouse_dag(dag_bag):
    return dag_bag.dags[WAREHOUSE_DAG_ID]


def test_the_dag_is_generated_from_the_catalogue_with_events_and_a_safety_net(
    sync_dag, warehouse_dag
):
    from airflow.timetables.assets import AssetOrTimeSchedule

    timetable = sync_dag.timetable
    assert isinstance(timetable, AssetOrTimeSchedule)
    assert "sti://ninh_binh_registry/st_task" in str(timetable.asset_condition)
    assert timetable.timetable.summary == "0 */6 * * *"
    assert sync_dag.max_active_runs == 1
    assert {"registry", "registry-api-v1", "province:37", "st_task"} <= set(sync_dag.tags)
    assert sync_dag.owner == "so-khcn-ninh-binh"
    assert "Ninh Bình provincial STI registry" in sync_dag.doc_md
    assert sync_dag.get_task("gate").upstream_task_ids == {"extract_and_land"}
    assert sync_dag.get_task("publish").upstream_task_ids == {"gate"}
    assert sync_dag.get_task("announce").upstream_task_ids == {"publish"}
    assert [a.uri for a in sync_dag.get_task("announce").outlets] == ["sti://published/st_task"]
    assert sync_dag.get_task("publish").outlets == []
    # Any publish triggers the warehouse build; a nightly cron is its safety net.
    assert isinstance(warehouse_dag.timetable, AssetOrTimeSchedule)
    condition = str(warehouse_dag.timetable.asset_condition)
    assert "sti://published/st_task" in condition and "sti://published/listing" in condition
    assert warehouse_dag.get_task("dbt.marts").upstream_task_ids == {"dbt.history"}


def _run(dag, warehouse_url, registry, monkeypatch):
    for name, value in connection_env(warehouse_url, {"ninh_binh_registry": registry}).items():
        monkeypatch.setenv(name, value)
    return dag.test(logical_date=pendulum.now("UTC"))


def _sync_and_build(sync_dag, warehouse_dag, warehouse_url, registry, monkeypatch):
    run = _run(sync_dag, warehouse_url, registry, monkeypatch)
    assert run.state == "success", _task_states(run)
    build = _run(warehouse_dag, warehouse_url, registry, monkeypatch)
    assert build.state == "success", _task_states(build)
    return run


def _query(url, sql, *params):
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def _task_states(dag_run) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in dag_run.get_task_instances()}


def test_sync_lands_gates_and_builds_the_marts_then_reruns_idempotently(
    sync_dag, warehouse_dag, warehouse_url, monkeypatch
):
    with run_registry(records=300, bad_share=0.05, seed=7) as registry:
        stats = requests.get(f"{registry.base_url}/_standin/stats", timeout=10).json()
        bad = sum(stats["bad"].values())
        assert bad > 0
        events_before = len(_published_events())

        first = _sync_and_build(sync_dag, warehouse_dag, warehouse_url, registry, monkeypatch)
        assert _task_states(first) == {
            "extract_and_land": "success",
            "gate": "success",
            "publish": "success",
            "announce": "success",
            "nothing_left_out": "success",
        }
        [(extra,)] = _published_events()[events_before:]
        assert extra["batch_ids"] == [1] and extra["rows"] == 300 - bad
        [(state, extracted, landed, passed, quarantined)] = _query(
            warehouse_url,
            "select state, records_extracted, records_landed, records_passed,"
            " records_quarantined from ops.load_batch",
        )
        assert (state, extracted, landed) == ("published", 300, 300)
        assert (passed, quarantined) == (300 - bad, bad)
        reasons = dict(
            _query(
                warehouse_url,
                "select reason, count(distinct landed_id) from ops.quarantine group by reason",
            )
        )
        expected = {REASON_OF_BAD_KIND[k]: n for k, n in stats["bad"].items() if n}
        assert reasons == expected
        assert _query(warehouse_url, "select count(*) from marts.fct_st_task") == [(300 - bad,)]
        assert _query(warehouse_url, "select count(*) from marts.dim_research_field") == [(374,)]
        assert _query(
            warehouse_url,
            "select count(*) from marts.fct_st_task f"
            " left join marts.dim_research_field d using (field_code) where d.field_code is null",
        ) == [(0,)]

        # No change at the source: the rerun lands nothing, succeeds, tells the warehouse
        # nothing (no asset event, so no build is triggered) and the marts stay as they were.
        quiet = _sync_and_build(sync_dag, warehouse_dag, warehouse_url, registry, monkeypatch)
        assert _task_states(quiet)["announce"] == "skipped"
        assert len(_published_events()) == events_before + 1
        assert _query(
            warehouse_url,
            "select state, records_landed from ops.load_batch order by batch_id desc limit 1",
        ) == [("published", 0)]
        assert _query(warehouse_url, "select count(*) from raw.landed_record") == [(300,)]
        assert _query(warehouse_url, "select count(*) from marts.fct_st_task") == [(300 - bad,)]

        # Updates and deletes at the source flow through as new versions.
        changes = requests.post(
            f"{registry.base_url}/_standin/changes", json={"update": 4, "delete": 2}, timeout=10
        ).json()
        _sync_and_build(sync_dag, warehouse_dag, warehouse_url, registry, monkeypatch)
        assert _query(
            warehouse_url,
            "select records_landed from ops.load_batch order by batch_id desc limit 1",
        ) == [(6,)]
        assert _query(warehouse_url, "select count(*) from marts.fct_st_task") == [(300 - bad - 2,)]
        versions = _query(
            warehouse_url,
            "select version from marts.fct_st_task where task_code = any(%s)",
            changes["updated"],
        )
        assert sorted(v for (v,) in versions) == [2, 2, 2, 2]
        assert _query(
            warehouse_url,
            "select count(*) from marts.fct_st_task where task_code = any(%s)",
            changes["deleted"],
        ) == [(0,)]


def test_a_failed_gate_fails_the_run_and_publishes_nothing(sync_dag, warehouse_url, monkeypatch):
    with run_registry(records=100, bad_share=0.6, seed=3) as registry:
        run = _run(sync_dag, warehouse_url, registry, monkeypatch)

    states = _task_states(run)
    assert run.state == "failed"
    assert states["extract_and_land"] == "success"
    assert states["gate"] == "failed"
    assert states["publish"] == "upstream_failed"
    assert states["announce"] == "upstream_failed"
    assert states["nothing_left_out"] == "upstream_failed"
    assert _query(warehouse_url, "select state from ops.load_batch") == [("failed",)]
    assert _query(
        warehouse_url, "select count(*) from information_schema.tables where table_schema = 'marts'"
    ) == [(0,)]


def test_a_batch_a_dead_run_left_landed_is_gated_and_published_by_the_next_run(
    sync_dag, warehouse_url, monkeypatch
):
    """The worker died between the landing commit and the gate (and a gate run died after
    materialising its table): the next run gates and publishes that batch too."""
    from connectors.jobs import extract_and_land_registry

    with run_registry(records=200, bad_share=0.0, seed=5) as registry:
        stranded = extract_and_land_registry(
            warehouse_url,
            source_id="ninh_binh_registry",
            entity="st_task",
            base_url=registry.base_url,
            client_id=registry.client_id,
            client_secret=registry.client_secret,
        ).batch_id
        with psycopg.connect(warehouse_url, autocommit=True) as conn:  # a dead gate's table
            conn.execute(f"create unlogged table ops.gate_batch_{stranded} (landed_id bigint)")

        events_before = len(_published_events())
        run = _run(sync_dag, warehouse_url, registry, monkeypatch)

    assert run.state == "success", _task_states(run)
    assert _query(
        warehouse_url, "select batch_id, state, records_landed from ops.load_batch order by 1"
    ) == [(stranded, "published", 200), (stranded + 1, "published", 0)]
    assert _query(
        warehouse_url, "select count(*) from pg_tables where tablename ~ '^gate_batch_'"
    ) == [(0,)]
    [(extra,)] = _published_events()[events_before:]
    assert extra["batch_ids"] == [stranded] and extra["rows"] == 200


def _published_events() -> list[tuple[dict]]:
    """The extras of the asset events `sti://published/st_task` in Airflow's metadata DB."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return [
            (event.extra,)
            for event in session.scalars(
                select(AssetEvent)
                .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
                .where(AssetModel.uri == "sti://published/st_task")
                .order_by(AssetEvent.id)
            )
        ]
