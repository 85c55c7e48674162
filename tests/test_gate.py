"""The GX gate on a real PostgreSQL: row quarantine with reasons, warnings, batch-level rules,
automatic resolution (fixed re-sends, replays), release of blocked batches, reports."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time

import psycopg
import pytest
from records import pages_of, st_task

import expectations.gate as gate
from connectors.landing import land_extraction
from expectations.gate import (
    BatchRules,
    GateFailedError,
    publish_batch,
    release_batch,
    replay_quarantine,
    run_gate,
)

SOURCE = {"source_id": "ninh_binh_registry", "entity": "st_task", "contract": "registry-api-v1"}
BAD = {
    1: {"id": None},
    2: {"field_code": "10999"},
    3: {"end_date": "2022-12-31"},
    4: {"budget_state_million_vnd": -5},
}


def _land(url: str, records: list[dict]) -> int:
    return land_extraction(url, **SOURCE, extract=lambda _: pages_of(records, 50)).batch_id


def _records(n: int, bad_every: int, start: int = 0) -> list[dict]:
    """n records; every `bad_every`-th one breaks one rule, cycling through BAD."""
    records = []
    for i in range(start, start + n):
        kind = (i // bad_every) % len(BAD) + 1 if i % bad_every == 0 else None
        records.append(st_task(i, **BAD[kind]) if kind else st_task(i))
    return records


def _quarantine(url: str, batch_id: int, open_only: bool = True) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "select reason, count(*) from ops.quarantine where batch_id = %s"
            " and (resolved_at is null or not %s) group by reason",
            (batch_id, open_only),
        ).fetchall()
    return dict(rows)


def _ledger(url: str, batch_id: int) -> tuple:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "select state, records_passed, records_warned, records_quarantined, blocked_reason"
            " from ops.load_batch where batch_id = %s",
            (batch_id,),
        ).fetchone()


def _publishable(url: str, batch_id: int) -> int:
    """Rows the warehouse reads of a batch: published, not waiting in quarantine."""
    with psycopg.connect(url) as conn:
        (rows,) = conn.execute(
            "select count(*) from raw.landed as l join ops.load_batch as b using (batch_id)"
            " where l.batch_id = %s and b.state = 'published' and not exists (select 1"
            " from ops.quarantine as q where q.landed_id = l.landed_id and q.resolved_at is null)",
            (batch_id,),
        ).fetchone()
    return rows


@pytest.fixture
def own_st_task_suite(tmp_path, monkeypatch):
    """A copy of the S&T task suite the test may change (e.g. to add a warning)."""
    shipped = gate.suite_path("registry-api-v1", "st_task")
    for name in ("st_task.json", "st_task.sql"):
        shutil.copy(shipped.with_name(name), tmp_path / name)
    monkeypatch.setattr(gate, "suite_path", lambda contract, entity: tmp_path / f"{entity}.json")

    def change(edit) -> None:
        path = tmp_path / "st_task.json"
        suite = json.loads(path.read_text(encoding="utf-8"))
        edit(suite)
        path.write_text(json.dumps(suite, ensure_ascii=False), encoding="utf-8")

    return change


def test_a_batch_with_5_percent_bad_rows_publishes_95_percent_and_quarantines_5(warehouse_url):
    batch_id = _land(warehouse_url, _records(200, bad_every=20))  # 5% bad
    result = run_gate(warehouse_url, batch_id)

    assert (result.rows, result.passed, result.quarantined, result.success) == (200, 190, 10, True)
    assert _quarantine(warehouse_url, batch_id) == {
        "the record has no id": 3,
        "field_code is not a research field of QĐ 12/2008": 3,
        "end_date is before start_date": 2,
        "state budget is negative": 2,
    }
    assert _ledger(warehouse_url, batch_id) == ("validated", 190, 0, 10, None)
    publish_batch(warehouse_url, batch_id)
    assert _publishable(warehouse_url, batch_id) == 190
    with psycopg.connect(warehouse_url) as conn:
        reason_vi, payload, expectation = conn.execute(
            "select reason_vi, payload, expectation from ops.quarantine"
            " where reason = 'state budget is negative' order by landed_id limit 1"
        ).fetchone()
    assert reason_vi == "kinh phí ngân sách nhà nước âm"
    assert payload["budget_state_million_vnd"] == -5  # the original payload, as sent
    assert expectation == "column_values_to_be_between(budget_state_million_vnd)"


def test_more_quarantined_rows_than_the_threshold_block_the_batch(warehouse_url):
    records = [st_task(i, field_code="10999") if i % 4 == 0 else st_task(i) for i in range(100)]
    batch_id = _land(warehouse_url, records)  # 25% unknown field codes > the 10% default

    with pytest.raises(GateFailedError, match=r"25 of 100 rows \(25.0%\) quarantined"):
        run_gate(warehouse_url, batch_id)
    state, _, _, quarantined, blocked = _ledger(warehouse_url, batch_id)
    assert (state, quarantined) == ("failed", 25) and "more than the 10%" in blocked
    assert _quarantine(warehouse_url, batch_id) == {
        "field_code is not a research field of QĐ 12/2008": 25
    }
    with pytest.raises(ValueError, match="not validated"):
        publish_batch(warehouse_url, batch_id)

    # The same batch under a source's looser threshold (catalogue `quality:`) passes.
    result = run_gate(warehouse_url, batch_id, BatchRules(max_quarantined_share=0.3))
    assert (result.success, result.passed, result.quarantined) == (True, 75, 25)


def _land_file(url: str, records: list[dict]) -> int:
    """A batch as a spreadsheet drop lands it: one file, judged against the source's files."""
    return land_extraction(
        url, **SOURCE, extract=lambda _: pages_of(records, 50), extraction="file"
    ).batch_id


def test_a_file_far_smaller_than_the_recent_ones_is_blocked_until_released(warehouse_url):
    start = 0
    for _ in range(3):  # files of 200 rows
        run_gate(warehouse_url, _land_file(warehouse_url, _records(200, 1000, start=start)))
        start += 200
    normal = _land_file(warehouse_url, _records(150, bad_every=1000, start=start))
    assert run_gate(warehouse_url, normal).success  # 25% fewer: within the rule
    start += 150
    shrunk = _land_file(warehouse_url, _records(10, bad_every=1000, start=start))  # 95% fewer

    with pytest.raises(GateFailedError, match=r"volume dropped: 10 rows against a median of 200"):
        run_gate(warehouse_url, shrunk)
    state, passed, _, quarantined, blocked = _ledger(warehouse_url, shrunk)
    assert (state, passed, quarantined) == ("failed", 10, 0) and "release" in blocked

    with pytest.raises(ValueError, match="say why"):
        release_batch(warehouse_url, shrunk, " ")
    result = release_batch(warehouse_url, shrunk, "registry archived its 2019 tasks (ticket 42)")
    assert result.success and _ledger(warehouse_url, shrunk)[0] == "published"
    assert _publishable(warehouse_url, shrunk) == 10
    with pytest.raises(ValueError, match="not blocked by a batch-level rule"):
        release_batch(warehouse_url, normal, "nothing to release")


def test_a_full_extraction_far_smaller_than_the_last_full_ones_is_blocked(warehouse_url):
    def full(records: list[dict]) -> int:
        with psycopg.connect(warehouse_url, autocommit=True) as conn:
            conn.execute("delete from ops.source_cursor")  # a full re-extraction
        return _land(warehouse_url, records)

    for start in (0, 300):
        run_gate(warehouse_url, full(_records(300, bad_every=1000, start=start)))
    with pytest.raises(GateFailedError, match=r"volume dropped: 12 rows against a median of 300"):
        run_gate(warehouse_url, full(_records(12, bad_every=1000, start=600)))


def test_quiet_incremental_runs_after_a_busy_one_are_published(warehouse_url):
    run_gate(warehouse_url, _land(warehouse_url, _records(50, bad_every=1000)))  # full load
    start = 50
    outcomes = []
    for changes in (1000, 20, 0, 50, 30, 30):  # what the probe saw after a busy run
        batch = _land(warehouse_url, _records(changes, bad_every=1000, start=start))
        start += changes
        result = run_gate(warehouse_url, batch)
        publish_batch(warehouse_url, batch)
        outcomes.append((result.rows, result.success, _ledger(warehouse_url, batch)[0]))

    assert outcomes == [
        (1000, True, "published"),
        (20, True, "published"),
        (0, True, "published"),  # nothing new: a success with nothing to publish
        (50, True, "published"),
        (30, True, "published"),
        (30, True, "published"),
    ]


def test_a_batch_whose_gate_was_killed_is_gated_by_the_next_run(warehouse_url):
    """kill -9 of the gate while GX validates: the batch stays `landed` with its batch table
    left behind; the next run of the entity gates it and drops the table."""
    stranded = _land(warehouse_url, _records(400, bad_every=20))
    gate_run = subprocess.Popen(
        [sys.executable, "-c", f"from expectations.gate import run_gate;"
         f" run_gate({warehouse_url!r}, {stranded})"],
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not _table_exists(warehouse_url, f"gate_batch_{stranded}"):
            assert gate_run.poll() is None, "the gate ended before it could be killed"
            assert time.monotonic() < deadline, "the gate never materialised its batch"
            time.sleep(0.05)
        gate_run.send_signal(signal.SIGKILL)
    finally:
        gate_run.wait(30)
    assert _ledger(warehouse_url, stranded)[0] == "landed"

    later = _land(warehouse_url, _records(10, bad_every=1000, start=400))
    done = gate.gate_landed(warehouse_url, SOURCE["source_id"], SOURCE["entity"])

    assert [r.batch_id for r in done.validated] == [stranded, later]
    assert (done.blocked, done.not_gated) == ([], [])
    assert _ledger(warehouse_url, stranded)[:4] == ("validated", 380, 0, 20)
    assert not _table_exists(warehouse_url, f"gate_batch_{stranded}")
    with psycopg.connect(warehouse_url) as conn:
        (attempts,) = conn.execute(
            "select gate_attempts from ops.load_batch where batch_id = %s", (stranded,)
        ).fetchone()
    assert attempts == 2


def test_a_batch_that_cannot_be_gated_stays_visible_with_its_error(warehouse_url, monkeypatch):
    batch_id = _land(warehouse_url, _records(30, bad_every=1000))
    monkeypatch.setattr(gate, "_validate", _broken_validation)
    done = gate.gate_landed(warehouse_url, SOURCE["source_id"], SOURCE["entity"])

    assert done.validated == [] and len(done.not_gated) == 1
    assert done.not_gated[0].startswith(f"batch {batch_id} not gated: RuntimeError")
    with psycopg.connect(warehouse_url) as conn:
        state, error, attempts = conn.execute(
            "select state, error, gate_attempts from ops.load_batch where batch_id = %s",
            (batch_id,),
        ).fetchone()
    assert (state, attempts) == ("landed", 1)
    assert error == "gate did not finish: RuntimeError: the validation service is down"
    monkeypatch.undo()
    assert gate.landed_batches(warehouse_url, SOURCE["source_id"], SOURCE["entity"]) == [batch_id]
    assert run_gate(warehouse_url, batch_id).success


def _broken_validation(*_args, **_kwargs):
    raise RuntimeError("the validation service is down")


def _table_exists(url: str, table: str) -> bool:
    with psycopg.connect(url) as conn:
        (found,) = conn.execute("select to_regclass(%s) is not null", (f"ops.{table}",)).fetchone()
    return found


def test_warning_rows_are_published_and_counted(warehouse_url, own_st_task_suite):
    def warn_on_long_titles(suite: dict) -> None:
        suite["expectations"].append(
            {
                "type": "expect_column_value_lengths_to_be_between",
                "kwargs": {"column": "title", "max_value": 200},
                "meta": {"severity": "warning", "reason": "title unusually long"},
            }
        )

    own_st_task_suite(warn_on_long_titles)
    records = _records(100, bad_every=50)  # 2 bad
    for i in (10, 11, 12):
        records[i]["title"] = "Nghiên cứu " * 30
    batch_id = _land(warehouse_url, records)
    result = run_gate(warehouse_url, batch_id)

    assert (result.passed, result.warned, result.quarantined) == (95, 3, 2)
    assert _ledger(warehouse_url, batch_id)[:4] == ("validated", 95, 3, 2)
    with psycopg.connect(warehouse_url) as conn:
        warned = conn.execute(
            "select record_id, reason from ops.quality_warning order by record_id"
        ).fetchall()
    assert warned == [(f"NB-2024-DT-{i:04d}", "title unusually long") for i in (10, 11, 12)]
    publish_batch(warehouse_url, batch_id)
    assert _publishable(warehouse_url, batch_id) == 98  # warned rows are published


def test_suites_must_give_severity_and_leave_tolerance_to_the_batch_rules(own_st_task_suite):
    own_st_task_suite(lambda suite: suite["expectations"][0]["meta"].pop("severity"))
    with pytest.raises(ValueError, match=r"needs meta\.severity"):
        gate.load_suite("registry-api-v1", "st_task")
    own_st_task_suite(
        lambda suite: suite["expectations"][0].update(
            meta={"severity": "blocking", "reason": "x"}, kwargs={"column": "title", "mostly": 0.9}
        )
    )
    with pytest.raises(ValueError, match="sets `mostly`"):
        gate.load_suite("registry-api-v1", "st_task")


def test_a_fixed_resend_resolves_the_quarantined_version(warehouse_url):
    batch_id = _land(warehouse_url, _records(40, bad_every=20))  # ids 0 (no id) and 20 bad
    run_gate(warehouse_url, batch_id)
    assert _quarantine(warehouse_url, batch_id) == {
        "the record has no id": 1,
        "field_code is not a research field of QĐ 12/2008": 1,
    }
    still_bad = st_task(41, version=1, field_code="10999")
    fixed = st_task(20, version=2, updated_at="2024-06-01T00:00:00Z")
    resend = _land(warehouse_url, [fixed, still_bad])
    result = run_gate(warehouse_url, resend)

    assert (result.passed, result.quarantined, result.resolved) == (1, 1, 1)
    assert _quarantine(warehouse_url, batch_id) == {"the record has no id": 1}
    with psycopg.connect(warehouse_url) as conn:
        (resolution,) = conn.execute(
            "select resolution from ops.quarantine where record_id = 'NB-2024-DT-0020'"
        ).fetchone()
        (count,) = conn.execute("select count(*) from ops.quarantine").fetchone()
    assert resolution.startswith("fixed: version 2 re-sent")
    assert count == 3  # nothing is deleted from quarantine


def test_replay_after_a_code_list_fix_releases_rows_that_pass_now(warehouse_url, monkeypatch):
    batch_id = _land(warehouse_url, _records(80, bad_every=20))  # 4 bad, one of each kind
    run_gate(warehouse_url, batch_id)
    publish_batch(warehouse_url, batch_id)
    assert _publishable(warehouse_url, batch_id) == 76
    assert replay_quarantine(warehouse_url, source_id="another_source") == []

    # The research-field code list gains 10999: the row quarantined for it passes now.
    codes = gate.SUITE_PARAMETERS["research_field_codes"]()
    monkeypatch.setitem(gate.SUITE_PARAMETERS, "research_field_codes", lambda: [*codes, "10999"])
    (result,) = replay_quarantine(warehouse_url, source_id="ninh_binh_registry")

    assert (result.success, result.resolved, result.quarantined) == (True, 1, 3)
    assert _publishable(warehouse_url, batch_id) == 77
    assert _ledger(warehouse_url, batch_id)[:4] == ("published", 77, 0, 3)
    with psycopg.connect(warehouse_url) as conn:
        resolved = conn.execute(
            "select reason, resolution from ops.quarantine where resolved_at is not null"
        ).fetchall()
    assert resolved == [
        (
            "field_code is not a research field of QĐ 12/2008",
            "replayed: passes the current rules",
        )
    ]


def test_personal_data_in_clear_is_quarantined_without_it(warehouse_url):
    records = [st_task(i) for i in range(30)]
    records[3]["title"] = "Đề tài, liên hệ chủ nhiệm 0912 345 678 hoặc an.nguyen@example.vn"
    records[4]["principal_investigator"] = "TS. Nguyễn Văn An, CCCD 037190000123"
    records[5]["host_organisation_code"] = "0100109106"  # an enterprise code, not a phone
    batch_id = _land(warehouse_url, records)
    result = run_gate(warehouse_url, batch_id)

    assert (result.passed, result.quarantined) == (28, 2)
    with psycopg.connect(warehouse_url) as conn:
        rows = conn.execute(
            "select record_id, reason, payload from ops.quarantine order by record_id"
        ).fetchall()
    assert [(r, reason) for r, reason, _ in rows] == [
        (
            "NB-2024-DT-0003",
            "personal data in clear outside the fields declared personal: title (e-mail)",
        ),
        (
            "NB-2024-DT-0004",
            "personal data in clear outside the fields declared personal:"
            " principal_investigator (citizen ID)",
        ),
    ]
    for _, _, payload in rows:
        assert "0371900001" not in json.dumps(payload) and "@" not in json.dumps(payload)
        assert "[personal data removed]" in payload.values()


def test_each_run_writes_an_html_report(warehouse_url, tmp_path):
    batch_id = _land(warehouse_url, _records(40, bad_every=20))
    result = run_gate(warehouse_url, batch_id, report_dir=tmp_path)

    page = result.report.read_text(encoding="utf-8")
    assert result.report == tmp_path / "ninh_binh_registry" / "st_task" / f"batch_{batch_id}.html"
    assert "field_code is not a research field of QĐ 12/2008" in page
    assert "<td>40</td><td>38</td><td>0</td><td>2</td>" in page
    index = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert f"batch {batch_id}</a>: 40 rows, 38 passed, 0 warned, 2 quarantined" in index


def test_values_of_the_wrong_type_are_caught(warehouse_url):
    records = [st_task(i) for i in range(40)]
    records[0] = st_task(0, budget_state_million_vnd="850,5")
    records[1] = st_task(1, start_date="31/12/2023")
    records[2] = st_task(2, status="done")
    batch_id = _land(warehouse_url, records)
    run_gate(warehouse_url, batch_id)
    reasons = _quarantine(warehouse_url, batch_id)
    assert reasons == {
        "required fields are missing or of the wrong type: budget_state_million_vnd": 1,
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
            "gender": "female",
            "birth_year": 1980,
            "degree": "doctor",
            "academic_title": None,
            "field_code": "40102",
            "specialisation": "Công nghệ sinh học",
            "organisation_name": "Trường Đại học Hoa Lư",
            "citizen_id": f"0371900{i:05d}",
            "phone": f"09120{i:05d}",
            "email": f"hoa{i}@example.vn",
            "province_code": "37",
            "registered_date": "2024-03-01",
            "origin_registry": "ninh_binh",
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
    assert {reason for _, _, reason, _, _, _ in open_quarantine(warehouse_url)} == {
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
    assert [(s, e, r, n) for s, e, r, n, _, _ in rows] == [
        (s, e, r, n) for s, e, r, n, _, _ in sorted(rows, key=lambda row: (row[4], row[2]))
    ]
    assert all(reason_vi for *_, reason_vi in rows)  # and in Vietnamese
    reasons = {reason: count for _, _, reason, count, _, _ in rows}
    assert "state budget is negative" not in reasons  # resolved rows are not open
    assert reasons and all(count > 0 for count in reasons.values())
    assert open_quarantine(warehouse_url, "another_source") == []
    listed = format_rows(rows)
    assert "ninh_binh_registry / st_task" in listed
    assert rows[0][5] in listed


def test_a_pair_check_quarantines_only_rows_with_both_values(warehouse_url):
    # Rows a pair expectation ignores (a value missing) are not failures: the gate must not
    # quarantine them, whatever GX's failing-rows query returns.
    records = [st_task(i) for i in range(30)]
    for i in (3, 4, 5):  # not accepted yet: no acceptance date to compare with end_date
        records[i].update(status="in_progress", acceptance_date=None, acceptance_rating=None)
    records[9]["acceptance_date"] = "2024-06-01"  # before end_date 2024-06-30
    batch_id = _land(warehouse_url, records)
    result = run_gate(warehouse_url, batch_id)

    assert (result.passed, result.quarantined) == (29, 1)
    with psycopg.connect(warehouse_url) as conn:
        rows = conn.execute("select record_id, reason from ops.quarantine").fetchall()
    assert rows == [("NB-2024-DT-0009", "acceptance_date is before end_date")]
