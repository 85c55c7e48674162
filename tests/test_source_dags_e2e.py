"""Every kind of source through Airflow itself (dag.test() on a migrated metadata DB), against
the local stand-ins and a real PostgreSQL: a fourth province added by configuration only, a
technology exchange, and spreadsheet drops (each file landed once; a malformed one rejected with
an error naming the file, sheet and cell while the others are published)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pendulum
import psycopg
import pytest
from openpyxl import load_workbook

from connectors.catalogue import REGISTRY_ENTITIES, load_catalogue
from local.airflow_env import DAGS_FOLDER, connection_env
from local.standins import StandIns, load_standins, run_standins, write_drops

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[1]

FOURTH_PROVINCE = """
  - id: ha_tinh_registry
    name: Hà Tĩnh provincial STI registry
    province_code: "42"
    system: registry
    contract: registry-api-v1
    connection_id: ha_tinh_registry
    entities: *registry_entities
    schedule: "40 */6 * * *"
    owner: so-khcn-ha-tinh
    events: {subscription: ha-tinh-registry, signing_secret: ha_tinh_registry_events}
"""


def _dag_bag(monkeypatch, catalogue: Path):
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("STI_SOURCE_CATALOGUE", str(catalogue))
    bag = DagBag(dag_folder=str(DAGS_FOLDER / "source_dags.py"))
    assert bag.import_errors == {}
    return bag


def _run(bag, dag_id: str, env: dict[str, str], monkeypatch):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    run = bag.dags[dag_id].test(logical_date=pendulum.now("UTC"))
    return run, {ti.task_id: ti.state for ti in run.get_task_instances()}


def _rows(url: str, query: str, *params):
    with psycopg.connect(url) as conn:
        return conn.execute(query, params).fetchall()


def test_a_fourth_province_is_a_configuration_edit(
    airflow_home, dbt_manifest, warehouse_url, tmp_path, monkeypatch
):
    catalogue = tmp_path / "sources.yml"
    shipped = (REPO / "dags" / "sources.yml").read_text(encoding="utf-8")
    # Inserted after the registries so the YAML anchor of the registry entities is in scope.
    catalogue.write_text(
        shipped.replace(
            "\n  - id: ninh_binh_exchange", FOURTH_PROVINCE + "\n  - id: ninh_binh_exchange"
        ),
        encoding="utf-8",
    )
    standins = load_standins()
    standins = StandIns(
        standins.profile, {**standins.sources, "ha_tinh_registry": {"registry": "ha_tinh"}}
    )

    bag = _dag_bag(monkeypatch, catalogue)
    assert {f"ha_tinh_registry__{e}" for e in REGISTRY_ENTITIES} <= set(bag.dag_ids)
    dag = bag.dags["ha_tinh_registry__organisation"]
    assert "province:42" in dag.tags and dag.owner == "so-khcn-ha-tinh"

    [source] = [s for s in load_catalogue(catalogue) if s.id == "ha_tinh_registry"]
    with run_standins([source], tmp_path / "drops", standins) as connections:
        env = connection_env(warehouse_url, connections)
        for entity in ("st_task", "organisation"):
            run, states = _run(bag, f"ha_tinh_registry__{entity}", env, monkeypatch)
            assert run.state == "success", states

    published = _rows(
        warehouse_url,
        "select entity, state, records_landed, records_passed from ops.load_batch"
        " where source_id = 'ha_tinh_registry' order by entity",
    )
    assert [(e, s) for e, s, _, _ in published] == [
        ("organisation", "published"),
        ("st_task", "published"),
    ]
    assert all(landed > 0 and passed > 0 for _, _, landed, passed in published)


def test_an_exchange_lands_its_own_shape_with_repairs(
    airflow_home, dbt_manifest, warehouse_url, tmp_path, monkeypatch
):
    bag = _dag_bag(monkeypatch, REPO / "dags" / "sources.yml")
    [source] = [s for s in load_catalogue() if s.id == "national_exchange"]
    with run_standins([source], tmp_path / "drops") as connections:
        env = connection_env(warehouse_url, connections)
        for entity in ("listing", "transaction"):
            run, states = _run(bag, f"national_exchange__{entity}", env, monkeypatch)
            assert run.state == "success", states

    batches = _rows(
        warehouse_url,
        "select entity, state, records_landed from ops.load_batch order by entity",
    )
    assert [(e, s) for e, s, _ in batches] == [
        ("listing", "published"),
        ("transaction", "published"),
    ]
    # Formatted amounts became numbers in the standardised record; the payload kept the text.
    [(original, typed)] = _rows(
        warehouse_url,
        "select payload ->> 'gia_tri', record -> 'gia_tri' from raw.landed"
        " where entity = 'transaction' and jsonb_typeof(payload -> 'gia_tri') = 'string'"
        " and jsonb_typeof(record -> 'gia_tri') = 'number' limit 1",
    )
    assert isinstance(original, str) and isinstance(typed, int | float)
    # Records with what could not be repaired are quarantined with the reason.
    reasons = _rows(
        warehouse_url,
        "select distinct reason from ops.quarantine where reason like 'landing could not%%'",
    )
    assert reasons


def test_spreadsheet_drops_land_each_file_once_and_reject_a_malformed_one(
    airflow_home, dbt_manifest, warehouse_url, tmp_path, monkeypatch
):
    bag = _dag_bag(monkeypatch, REPO / "dags" / "sources.yml")
    [source] = [s for s in load_catalogue() if s.id == "ninh_binh_stat_reports"]
    drops = tmp_path / "drops"
    with run_standins([source], drops) as connections:
        env = connection_env(warehouse_url, connections)
        folder = drops / source.id
        xlsx = sorted(folder.glob("04_*.xlsx")) or sorted(folder.glob("04_*"))
        first = xlsx[0]
        # The same file dropped again under another name is the same content.
        shutil.copy2(first, folder / f"copy of {first.name}")
        run, states = _run(bag, "ninh_binh_stat_reports__stat_form_04", env, monkeypatch)
        assert run.state == "success", states
        files = _rows(
            warehouse_url,
            "select file_name, state, rows_landed from ops.drop_file"
            " where entity = 'stat_form_04' order by file_name",
        )
        assert len(files) == len(list(folder.glob("04_*")))  # the copy was not landed again
        assert all(state == "landed" and rows > 0 for _, state, rows in files)

        # A new file with a renamed header is rejected with file, sheet and cell; a rerun lands
        # nothing twice.
        bad = folder / "04_ninh_binh_bad.xlsx"
        workbook = load_workbook(first)
        sheet = workbook.worksheets[0]
        header_cell = next(
            cell
            for row in sheet.iter_rows(max_row=15)
            for cell in row
            if isinstance(cell.value, str)
            and cell.value.strip().lower().startswith(("tên nhiệm vụ", "tên đề tài"))
        )
        header_cell.value = "Tên công trình"
        workbook.save(bad)
        settled = first.stat().st_mtime  # files still being written are left for the next run
        os.utime(bad, (settled, settled))
        landed_before = _rows(warehouse_url, "select count(*) from raw.landed_record")
        run, states = _run(bag, "ninh_binh_stat_reports__stat_form_04", env, monkeypatch)
        assert run.state == "failed" and states["nothing_left_out"] == "failed", states
        [(error,)] = _rows(
            warehouse_url,
            "select error from ops.drop_file where state = 'rejected'",
        )
        assert "04_ninh_binh_bad.xlsx" in error and sheet.title in error
        assert header_cell.coordinate in error
        assert _rows(warehouse_url, "select count(*) from raw.landed_record") == landed_before

        # Writing the stand-in's files again (same content) lands nothing new.
        write_drops(folder, load_standins().sources[source.id]["drops"])
        run, states = _run(bag, "ninh_binh_stat_reports__stat_form_04", env, monkeypatch)
        assert run.state == "success", states
        assert _rows(warehouse_url, "select count(*) from raw.landed_record") == landed_before
