"""Schema drift at landing, on a real PostgreSQL, against the contracts' record schemas:
an added field is landed and reported; a removed or retyped field fails the batch before
anything is committed, with a message saying what changed."""

from __future__ import annotations

import psycopg
import pytest
from records import pages_of, st_task

from connectors.contract_rules import api_rules
from connectors.drift import DriftMonitor, SchemaDriftError, record_shape
from connectors.landing import RecordRules, land_extraction

SOURCE = {"source_id": "ninh_binh_registry", "entity": "st_task", "contract": "registry-api-v1"}
RULES = RecordRules(shape=lambda: DriftMonitor(record_shape("registry-api-v1", "st_task")))


def _land(url: str, records: list[dict]):
    return land_extraction(url, **SOURCE, extract=lambda _: pages_of(records, 4), rules=RULES)


def _rows(url: str, query: str, *params):
    with psycopg.connect(url) as conn:
        return conn.execute(query, params).fetchall()


def test_records_as_the_contract_says_land_without_a_drift_note(warehouse_url):
    result = _land(warehouse_url, [st_task(i) for i in range(10)])
    assert result.records_landed == 10
    assert _rows(warehouse_url, "select state, schema_drift from ops.load_batch") == [
        ("landed", None)
    ]


def test_an_added_field_is_landed_in_the_payload_and_reported(warehouse_url):
    records = [st_task(i) for i in range(10)]
    for record in records[3:]:
        record["funding_programme"] = "Chương trình ĐMST tỉnh"
    result = _land(warehouse_url, records)

    assert result.records_landed == 10
    [(state, drift)] = _rows(warehouse_url, "select state, schema_drift from ops.load_batch")
    assert state == "landed"
    assert drift == {
        "added": {
            "funding_programme": {
                "records": 7,
                "examples": ["NB-2024-DT-0003", "NB-2024-DT-0004", "NB-2024-DT-0005"],
            }
        }
    }
    assert _rows(
        warehouse_url,
        "select count(*) from raw.landed_record where payload ? 'funding_programme'",
    ) == [(7,)]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda records: [r.pop("field_code") for r in records],
            r"required field\(s\) field_code missing from all 10 records",
        ),
        (
            lambda records: [r.update(budget_state_million_vnd="850,5") for r in records[:6]],
            r"field 'budget_state_million_vnd' is string in 6 records \(e.g. id NB-2024-DT-0000,"
            r" NB-2024-DT-0001, NB-2024-DT-0002\) but the contract says integer/number",
        ),
        (
            lambda records: [r.update(task_level=3) for r in records],
            r"field 'task_level' is integer in 10 records",
        ),
    ],
)
def test_a_removed_or_retyped_field_fails_the_batch_and_lands_nothing(
    warehouse_url, change, message
):
    first = _land(warehouse_url, [st_task(i) for i in range(10)])
    records = [st_task(i, version=2) for i in range(10)]
    change(records)

    with pytest.raises(SchemaDriftError, match=message):
        _land(warehouse_url, records)

    batches = _rows(
        warehouse_url, "select batch_id, state, error from ops.load_batch order by batch_id"
    )
    assert [state for _, state, _ in batches] == ["landed", "failed"]
    assert "does not match registry-api-v1 StTask" in batches[1][2]
    # Nothing of the failed batch is stored, and the cursor stays where the good batch left it.
    assert _rows(warehouse_url, "select count(*), max(version) from raw.landed_record") == [(10, 1)]
    assert _rows(warehouse_url, "select batch_id from ops.source_cursor") == [(first.batch_id,)]


def test_a_field_retyped_in_a_few_records_is_their_problem_not_drift(warehouse_url):
    records = [st_task(i) for i in range(10)]
    records[2]["budget_state_million_vnd"] = "850,5"  # Vietnamese decimal: repaired at landing
    records[6]["task_level"] = 3  # a wrong type nothing can repair
    batch = land_extraction(
        warehouse_url,
        **SOURCE,
        extract=lambda _: pages_of(records, 4),
        rules=api_rules("registry-api-v1", "st_task"),  # as the DAG lands: with repairs
    )

    issues = _rows(
        warehouse_url,
        "select record_id, landing_issue, standardised->'budget_state_million_vnd'"
        " from raw.landed_record where landing_issue is not null or standardised is not null",
    )
    assert issues == [
        ("NB-2024-DT-0002", None, 850.5),
        ("NB-2024-DT-0006", "task_level is number; the contract says string", None),
    ]
    (note,) = _rows(warehouse_url, "select schema_drift from ops.load_batch")[0]
    assert note["retyped_in_some_records"]["task_level"]["records"] == 1
    assert batch.records_landed == 10


def test_a_missing_field_in_one_record_is_a_row_problem_not_drift():
    monitor = DriftMonitor(record_shape("registry-api-v1", "st_task"))
    records = [st_task(i) for i in range(3)]
    del records[1]["title"]
    for record in records:
        monitor.observe(record)
    assert monitor.finish() is None


@pytest.mark.parametrize(
    ("drift", "outcome"),
    [
        ({"action": "add", "field": "hashtag", "value": "#ĐMST"}, "landed"),
        ({"action": "remove", "field": "tieu_de"}, r"required field\(s\) tieu_de missing"),
        ({"action": "retype", "field": "phien_ban", "to": "string"}, r"field 'phien_ban' is str"),
    ],
)
def test_drift_at_a_real_exchange_is_noted_or_fails_the_batch(warehouse_url, drift, outcome):
    import requests

    from connectors.jobs import extract_and_land_exchange
    from local.exchange.process import run_exchange

    with run_exchange("thanh_hoa_exchange", listings=120, transactions=10) as exchange:
        requests.post(
            f"{exchange.base_url}/_standin/drift", json={"entity": "listing", **drift}, timeout=10
        ).raise_for_status()
        land = lambda: extract_and_land_exchange(  # noqa: E731
            warehouse_url,
            source_id="thanh_hoa_exchange",
            entity="listing",
            base_url=exchange.base_url,
            api_key=exchange.api_key,
        )
        if outcome == "landed":
            assert land().records_landed == 120
            [(drift_note,)] = _rows(warehouse_url, "select schema_drift from ops.load_batch")
            assert drift_note["added"]["hashtag"]["records"] == 120
        else:
            with pytest.raises(SchemaDriftError, match=outcome):
                land()
            assert _rows(warehouse_url, "select count(*) from raw.landed_record") == [(0,)]
            assert _rows(warehouse_url, "select state from ops.load_batch") == [("failed",)]
