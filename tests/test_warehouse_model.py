"""The warehouse model on what the demo lands: every catalogue source synced against the local
stand-ins through the real gate (tests/pipeline.py), then the real dbt build — seeds, staging,
version tables, snapshots, dimensions, facts, KPI scorecard, every data and unit test — through
write–audit–publish. The analysts' questions of the README are answered here with the README's
own SQL and checked against the landed records; history, idempotence and personal data are
checked on the same database (the session's `synced` warehouse, tests/conftest.py, which
tests/test_feed_models.py shares)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from records import pages_of

from connectors.landing import land_extraction
from local.dbt import build_and_publish, generate_docs

pytestmark = pytest.mark.e2e

README = Path(__file__).resolve().parents[1] / "README.md"


def _readme_query(title: str) -> str:
    """The SQL block of the README that follows the line naming `title`."""
    text = README.read_text(encoding="utf-8")
    match = re.search(re.escape(title) + r".*?```sql\n(.*?)```", text, re.S)
    assert match, f"README has no SQL for {title!r}"
    return match.group(1)


def _rows(url: str, query: str, *params) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(query, params).fetchall()


def _counts(url: str, schema: str) -> dict[str, int]:
    """Rows of every table in `schema`."""
    with psycopg.connect(url) as conn:
        names = [
            name
            for (name,) in conn.execute(
                "select tablename from pg_tables where schemaname = %s", (schema,)
            )
        ]
        return {
            name: conn.execute(
                sql.SQL("select count(*) from {}").format(sql.Identifier(schema, name))
            ).fetchone()[0]
            for name in names
        }


def test_tasks_todays_ninh_binh_accepted_in_2024_include_old_ha_nam_and_nam_dinh(synced):
    rows = _rows(synced, _readme_query("accept in 2024"))
    by_code = {code: tasks for code, _name, tasks in rows}
    # Independently, from the records the gate accepted: the latest version of each task.
    expected = dict(
        _rows(
            synced,
            "select record ->> 'province_code', count(*) from ops.accepted_record"
            " where source_id = 'ninh_binh_registry' and entity = 'st_task' and not deleted"
            " and extract(year from (record ->> 'acceptance_date')::date) = 2024"
            " group by 1",
        )
    )
    assert by_code == expected
    assert by_code["35"] > 0 and by_code["36"] > 0 and by_code["37"] > 0
    names = {code: name for code, name, _tasks in rows}
    assert names["35"] == "Tỉnh Hà Nam" and names["36"] == "Tỉnh Nam Định"


def test_off_track_kpis_per_document_with_the_disagreeing_targets(synced):
    rows = _rows(synced, _readme_query("off track for 2025"))
    assert rows, "the demo's Ninh Bình is off track on some targets"
    documents = {row[0] for row in rows}
    assert all(doc.startswith(("000", "001", "002")) for doc in documents)
    # Both plans' targets for innovating enterprises are kept, each naming the other.
    scorecard = dict(
        _rows(
            synced,
            "select target_id, disagreement from marts.kpi_scorecard"
            " where province_code = '37' and year = 2025 and target_id in ('NB-M1.a', 'NB-P6.a')",
        )
    )
    assert "NB-P6" in scorecard["NB-M1.a"] and "NB-M1" in scorecard["NB-P6.a"]
    # What the warehouse cannot compute says why, and nothing is left without a status.
    gaps = _rows(
        synced,
        "select target_id, status_reason from marts.kpi_scorecard"
        " where province_code = '37' and year = 2025 and status = 'not_computable'",
    )
    assert gaps and all(reason for _target, reason in gaps)
    assert any("population" in reason for _target, reason in gaps)


def test_provincial_tasks_per_year_match_the_landed_records(synced):
    (actual,) = _rows(
        synced,
        "select actual_value from marts.kpi_scorecard where target_id = 'NB-P1.a' and year = 2025",
    )[0]
    (expected,) = _rows(
        synced,
        "select count(*) from ops.accepted_record where source_id = 'ninh_binh_registry'"
        " and entity = 'st_task' and not deleted and record ->> 'task_level' = 'provincial'"
        " and record ->> 'status' not in ('proposed', 'cancelled')"
        " and extract(year from (record ->> 'start_date')::date) = 2025",
    )[0]
    assert actual == expected


def test_a_second_build_adds_nothing(synced):
    before = _counts(synced, "history")
    facts_before = _rows(synced, "select count(*) from marts.fct_st_task")
    build_and_publish(synced, run_id="test_model__again")
    assert _counts(synced, "history") == before
    assert _rows(synced, "select count(*) from marts.fct_st_task") == facts_before
    assert before["int_st_tasks_versioned"] > 1000 and before["snap_st_task"] > 1000


def test_a_change_and_a_deletion_end_versions_and_stay_in_history(synced):
    (changed, deleted) = _rows(
        synced,
        "select task_code from marts.fct_st_task where source_id = 'ninh_binh_registry'"
        " order by task_code limit 2",
    )
    records = []
    for (record_id,), edit in ((changed, {"title": "Đề tài đã đổi tên"}), (deleted, None)):
        (record, version) = _rows(
            synced,
            "select record, version from ops.accepted_record"
            " where source_id = 'ninh_binh_registry' and entity = 'st_task' and record_id = %s",
            record_id,
        )[0]
        record = {**record, "id": record_id, "version": version + 1}
        record["updated_at"] = "2026-11-20T08:00:00Z"
        if edit:
            record.update(edit)
        else:
            record["deleted"] = True
        records.append(record)
    batch = land_extraction(
        synced,
        source_id="ninh_binh_registry",
        entity="st_task",
        contract="registry-api-v1",
        extract=lambda _: pages_of(records, 10),
    ).batch_id
    with psycopg.connect(synced) as conn:
        conn.execute(
            "update ops.load_batch set state = 'published', published_at = now()"
            " where batch_id = %s",
            (batch,),
        )
    build_and_publish(synced, run_id="test_model__change")

    current = dict(
        _rows(
            synced,
            "select task_code, title from marts.fct_st_task where source_id = 'ninh_binh_registry'"
            " and task_code in (%s, %s)",
            changed[0],
            deleted[0],
        )
    )
    assert current == {changed[0]: "Đề tài đã đổi tên"}
    # SCD2: the changed task has a closed and a current row; the deleted one no current row.
    history = _rows(
        synced,
        "select record_id, is_deleted, dbt_valid_to is null from history.snap_st_task"
        " where source_id = 'ninh_binh_registry' and record_id in (%s, %s)"
        " order by record_id, dbt_valid_from",
        changed[0],
        deleted[0],
    )
    by_record: dict[str, list[tuple]] = {}
    for record_id, is_deleted, is_current in history:
        by_record.setdefault(record_id, []).append((is_deleted, is_current))
    assert by_record[changed[0]][-2:] == [(False, False), (False, True)]
    assert by_record[deleted[0]][-2:] == [(False, False), (True, False)]
    superseded = _rows(
        synced,
        "select count(*) filter (where superseded_at is null), count(*)"
        " from history.int_st_tasks_versioned where record_id = %s",
        changed[0],
    )[0]
    assert superseded[0] == 1 and superseded[1] >= 2


def test_no_personal_data_of_experts_in_any_published_relation(synced):
    with psycopg.connect(synced) as conn:
        conn.execute(
            "create temporary table personal as select distinct lower(value) as value"
            " from raw.landed_record, lateral (values (payload ->> 'citizen_id'),"
            " (payload ->> 'phone'), (payload ->> 'email')) as v (value)"
            " where entity = 'expert' and value is not null"
        )
        assert conn.execute("select count(*) from personal").fetchone()[0] > 100
        relations = [
            name
            for (name,) in conn.execute(
                "select table_name from information_schema.tables where table_schema = 'marts'"
            )
        ]
        assert "dim_expert" in relations and "fct_expert_registration" in relations
        for name in relations:
            found = conn.execute(
                sql.SQL(
                    "select count(*) from (select regexp_split_to_table(lower(t::text),"
                    " '[^0-9a-z@._%%+-]+') as token from {} as t) as tokens"
                    " join personal on personal.value = tokens.token"
                ).format(sql.Identifier("marts", name))
            ).fetchone()[0]
            assert found == 0, f"marts.{name} holds {found} personal values of experts"


def test_every_model_and_column_is_documented_and_docs_generate(synced):
    docs = generate_docs(synced)
    assert (docs / "index.html").exists()
    manifest = json.loads((docs / "manifest.json").read_text())
    catalog = json.loads((docs / "catalog.json").read_text())
    undocumented = []
    for unique_id, node in manifest["nodes"].items():
        if node["resource_type"] not in ("model", "snapshot", "seed"):
            continue
        if not node["description"].strip():
            undocumented.append(unique_id)
        documented = {name for name, col in node["columns"].items() if col["description"]}
        built = catalog["nodes"].get(unique_id, {}).get("columns", {})
        undocumented += [f"{unique_id}.{col}" for col in built if col not in documented]
    assert undocumented == []
    assert len([n for n in catalog["nodes"] if n.startswith("model.")]) > 60
    assert {"provincial_kpi_scorecard", "national_sti_feed"} <= {
        exposure["name"] for exposure in manifest["exposures"].values()
    }
