"""The GX gate on a real PostgreSQL: quarantine with reasons, batch-level blocking, publish."""

from __future__ import annotations

import psycopg
import pytest
from records import pages_of, st_task

from connectors.landing import land_extraction
from expectations.gate import GateFailedError, publish_batch, run_gate

SOURCE = {"source_id": "ninh_binh_registry", "entity": "st_task", "contract": "registry-api-v1"}
BAD = {
    1: {"id": None},
    2: {"field_code": "10999"},
    3: {"end_date": "2022-12-31"},
    4: {"budget_state_million_vnd": -5},
}


def _land(url: str, records: list[dict]) -> int:
    return land_extraction(url, **SOURCE, extract=lambda _: pages_of(records, 50)).batch_id


def _records(n: int, bad_every: int) -> list[dict]:
    """n records; every `bad_every`-th one breaks one rule, cycling through BAD."""
    records = []
    for i in range(n):
        kind = (i // bad_every) % len(BAD) + 1 if i % bad_every == 0 else None
        records.append(st_task(i, **BAD[kind]) if kind else st_task(i))
    return records


def _quarantine(url: str, batch_id: int) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "select reason, count(*) from ops.quarantine where batch_id = %s group by reason",
            (batch_id,),
        ).fetchall()
    return dict(rows)


def test_bad_rows_are_quarantined_with_reasons_and_the_batch_passes(warehouse_url):
    batch_id = _land(warehouse_url, _records(200, bad_every=20))  # 5% bad
    result = run_gate(warehouse_url, batch_id)

    assert (result.rows, result.passed, result.quarantined, result.success) == (200, 190, 10, True)
    assert _quarantine(warehouse_url, batch_id) == {
        "the record has no id": 3,
        "field_code is not a research field of QĐ 12/2008": 3,
        "end_date is before start_date": 2,
        "state budget is negative": 2,
    }
    with psycopg.connect(warehouse_url) as conn:
        state, passed, quarantined = conn.execute(
            "select state, records_passed, records_quarantined from ops.load_batch"
        ).fetchone()
        reason_vi, payload = conn.execute(
            "select reason_vi, payload from ops.quarantine"
            " where reason = 'state budget is negative' order by landed_id limit 1"
        ).fetchone()
    assert (state, passed, quarantined) == ("validated", 190, 10)
    assert reason_vi == "kinh phí ngân sách nhà nước âm"
    assert payload["budget_state_million_vnd"] == -5


def test_too_many_bad_rows_block_the_batch_and_nothing_is_published(warehouse_url):
    records = [st_task(i, field_code="10999") if i % 4 == 0 else st_task(i) for i in range(100)]
    batch_id = _land(warehouse_url, records)  # 25% unknown field codes > the 10% tolerance

    with pytest.raises(GateFailedError, match=r"in_set\(field_code\): 25 rows"):
        run_gate(warehouse_url, batch_id)
    with psycopg.connect(warehouse_url) as conn:
        state, error = conn.execute("select state, error from ops.load_batch").fetchone()
    assert state == "failed" and "field_code" in error
    assert _quarantine(warehouse_url, batch_id) == {
        "field_code is not a research field of QĐ 12/2008": 25
    }
    with pytest.raises(ValueError, match="not validated"):
        publish_batch(warehouse_url, batch_id)


def test_values_of_the_wrong_type_are_caught(warehouse_url):
    records = [st_task(i) for i in range(40)]
    records[0] = st_task(0, budget_state_million_vnd="850,5")
    records[1] = st_task(1, start_date="31/12/2023")
    records[2] = st_task(2, status="done")
    batch_id = _land(warehouse_url, records)
    run_gate(warehouse_url, batch_id)
    reasons = _quarantine(warehouse_url, batch_id)
    assert reasons == {
        "start_date is missing or not a valid date": 1,
        "unknown task status": 1,
    }
    # a budget sent as a string is not a number: it is not silently read as 850.5
    with psycopg.connect(warehouse_url) as conn:
        (typed,) = conn.execute(
            "select count(*) from raw.landed_record where payload->>'budget_state_million_vnd'"
            " = '850,5'"
        ).fetchone()
    assert typed == 1


def test_a_record_landed_repaired_is_quarantined(warehouse_url):
    records = [st_task(i) for i in range(20)]
    records[7]["title"] = "Đề tài\x00"
    batch_id = _land(warehouse_url, records)
    result = run_gate(warehouse_url, batch_id)
    assert (result.passed, result.quarantined, result.success) == (19, 1, True)
    ((reason, count),) = _quarantine(warehouse_url, batch_id).items()
    assert "NUL characters" in reason and count == 1


def test_rerunning_the_gate_does_not_duplicate_quarantine(warehouse_url):
    batch_id = _land(warehouse_url, _records(100, bad_every=25))
    first = run_gate(warehouse_url, batch_id)
    second = run_gate(warehouse_url, batch_id)
    assert first.quarantined == second.quarantined == 4
    assert sum(_quarantine(warehouse_url, batch_id).values()) == 4


def test_publish_moves_a_validated_batch_to_published(warehouse_url):
    batch_id = _land(warehouse_url, _records(20, bad_every=100))
    with pytest.raises(ValueError, match="not validated"):
        publish_batch(warehouse_url, batch_id)
    run_gate(warehouse_url, batch_id)
    publish_batch(warehouse_url, batch_id)
    with psycopg.connect(warehouse_url) as conn:
        assert conn.execute("select state from ops.load_batch").fetchone() == ("published",)


def test_personal_data_stays_in_the_landing_zone_when_a_row_is_quarantined(warehouse_url):
    def expert(i: int, **overrides) -> dict:
        record = {
            "id": f"NB-CG-{i:05d}",
            "version": 1,
            "updated_at": f"2024-05-01T08:00:{i:02d}Z",
            "deleted": False,
            "full_name": "Nguyễn Thị Hoa",
            "citizen_id": f"0371900{i:05d}",
            "phone": f"09120{i:05d}",
            "email": f"hoa{i}@example.vn",
        }
        record.update(overrides)
        return record

    records = [expert(i) for i in range(20)] + [expert(20, id=None)]
    batch_id = land_extraction(
        warehouse_url,
        source_id="ninh_binh_registry",
        entity="expert",
        contract="registry-api-v1",
        extract=lambda _: pages_of(records, 50),
    ).batch_id
    run_gate(warehouse_url, batch_id)

    with psycopg.connect(warehouse_url) as conn:
        [(payload,)] = conn.execute("select payload from ops.quarantine").fetchall()
        (landed,) = conn.execute(
            "select payload from raw.landed_record where record_id is null"
        ).fetchone()
    assert payload == {k: v for k, v in landed.items() if k not in ("citizen_id", "phone", "email")}
    assert payload["full_name"] == "Nguyễn Thị Hoa" and landed["citizen_id"] == "037190000020"


def test_open_quarantine_lists_problems_per_source_and_reason_oldest_first(warehouse_url):
    from local.quarantine import format_rows, open_quarantine

    run_gate(warehouse_url, _land(warehouse_url, _records(80, bad_every=20)))
    assert {reason for _, _, reason, _, _ in open_quarantine(warehouse_url)} == {
        "the record has no id",
        "field_code is not a research field of QĐ 12/2008",
        "end_date is before start_date",
        "state budget is negative",
    }
    with psycopg.connect(warehouse_url) as conn:
        conn.execute(
            "update ops.quarantine set resolved_at = now(), resolution = 'test'"
            " where reason = 'state budget is negative'"
        )
    rows = open_quarantine(warehouse_url)
    assert [(s, e, r, n) for s, e, r, n, _ in rows] == [
        (s, e, r, n) for s, e, r, n, _ in sorted(rows, key=lambda row: (row[4], row[2]))
    ]
    reasons = {reason: count for _, _, reason, count, _ in rows}
    assert "state budget is negative" not in reasons  # resolved rows are not open
    assert reasons and all(count > 0 for count in reasons.values())
    assert open_quarantine(warehouse_url, "another_source") == []
    assert "ninh_binh_registry / st_task" in format_rows(rows)
