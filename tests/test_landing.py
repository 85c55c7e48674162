"""Landing on a real PostgreSQL: one all-or-nothing batch, ledger states, cursor advance."""

from __future__ import annotations

import hashlib
import itertools
import threading
from datetime import UTC, datetime

import orjson
import psycopg
import psycopg.sql
import pytest
from records import Page, pages_of, st_task

from connectors.landing import LoadInProgressError, _prefetched, land_extraction

SOURCE = {"source_id": "ninh_binh_registry", "entity": "st_task", "contract": "registry-api-v1"}


def _land(url: str, records: list[dict], page_size: int = 7, seen: list | None = None):
    def extract(updated_since):
        if seen is not None:
            seen.append(updated_since)
        return pages_of(records, page_size)

    return land_extraction(url, **SOURCE, extract=extract)


def _one(url: str, query: str, *params):
    with psycopg.connect(url) as conn:
        return conn.execute(query, params).fetchone()


def test_lands_every_record_with_lineage_and_advances_the_cursor(warehouse_url):
    records = [st_task(i) for i in range(30)]
    result = _land(warehouse_url, records)

    assert (result.records_extracted, result.records_landed, result.pages) == (30, 30, 5)
    assert result.high_watermark == datetime(2024, 5, 1, 8, 0, 29, tzinfo=UTC)
    state, landed, pages = _one(
        warehouse_url,
        "select state, records_landed, pages from ops.load_batch where batch_id = %s",
        result.batch_id,
    )
    assert (state, landed, pages) == ("landed", 30, 5)
    record_id, version, checksum, payload = _one(
        warehouse_url,
        "select record_id, version, checksum, payload from raw.landed_record"
        " where record_id = 'NB-2024-DT-0003'",
    )
    assert (record_id, version, payload) == ("NB-2024-DT-0003", 1, records[3])
    canonical = orjson.dumps(records[3], option=orjson.OPT_SORT_KEYS)
    assert bytes(checksum) == hashlib.sha256(canonical).digest()
    (cursor,) = _one(warehouse_url, "select high_watermark from ops.source_cursor")
    assert cursor == result.high_watermark


def test_crash_mid_load_leaves_no_rows_and_no_cursor_advance(warehouse_url):
    first = _land(warehouse_url, [st_task(i) for i in range(5)])

    def failing_extract(updated_since):
        yield from pages_of(
            [st_task(i, version=2, updated_at="2025-01-01T00:00:00Z") for i in range(10)], 4
        )
        raise ConnectionError("registry went away")

    with pytest.raises(ConnectionError):
        land_extraction(warehouse_url, **SOURCE, extract=failing_extract)

    assert _one(warehouse_url, "select count(*) from raw.landed_record") == (5,)
    state, error = _one(
        warehouse_url, "select state, error from ops.load_batch order by batch_id desc limit 1"
    )
    assert state == "failed" and "registry went away" in error
    assert _one(warehouse_url, "select high_watermark, batch_id from ops.source_cursor") == (
        first.high_watermark,
        first.batch_id,
    )


def test_rerun_extracts_from_the_cursor_and_lands_nothing_already_landed(warehouse_url):
    records = [st_task(i) for i in range(10)]
    first = _land(warehouse_url, records)
    seen: list = []
    # The source treats updated_since as inclusive: it sends the last record again.
    second = _land(warehouse_url, records[-1:], seen=seen)

    assert seen == [first.high_watermark]
    assert (second.records_extracted, second.records_landed, second.records_skipped) == (1, 0, 1)
    assert _one(warehouse_url, "select count(*) from raw.landed_record") == (10,)
    assert _one(
        warehouse_url, "select state from ops.load_batch where batch_id = %s", second.batch_id
    ) == ("landed",)


def test_a_new_version_at_the_cursor_instant_is_landed(warehouse_url):
    records = [st_task(i) for i in range(3)]
    _land(warehouse_url, records)
    changed = st_task(2, version=2, title="Tên mới")  # same updated_at as the cursor
    result = _land(warehouse_url, [records[2], changed])
    assert (result.records_landed, result.records_skipped) == (1, 1)


def test_malformed_keys_are_landed_as_nulls_for_the_gate_to_judge(warehouse_url):
    records = [
        st_task(1, id=None),
        st_task(2, version="two"),
        st_task(3, updated_at="01/05/2024"),
        st_task(4, deleted="no"),
    ]
    _land(warehouse_url, records)
    with psycopg.connect(warehouse_url) as conn:
        rows = conn.execute(
            "select record_id, version, updated_at, deleted from raw.landed_record"
            " order by landed_id"
        ).fetchall()
    assert rows[0][0] is None
    assert rows[1][1] is None
    assert rows[2][2] is None
    assert rows[3][3] is None


def test_a_second_concurrent_load_of_the_same_source_is_refused(warehouse_url):
    with psycopg.connect(warehouse_url, autocommit=True) as other:
        other.execute(
            "select pg_advisory_lock(hashtextextended(%s, 0))", ("land:ninh_binh_registry:st_task",)
        )
        with pytest.raises(LoadInProgressError):
            _land(warehouse_url, [st_task(1)])
    assert _one(warehouse_url, "select count(*) from ops.load_batch") == (0,)


def test_a_batch_abandoned_by_a_killed_process_is_marked_failed(warehouse_url):
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        conn.execute(
            "insert into ops.load_batch (source_id, entity, contract) values (%s, %s, %s)",
            ("ninh_binh_registry", "st_task", "registry-api-v1"),
        )
    _land(warehouse_url, [st_task(1)])
    with psycopg.connect(warehouse_url) as conn:
        states = conn.execute(
            "select state, error from ops.load_batch order by batch_id"
        ).fetchall()
    assert states[0][0] == "failed" and states[0][1].startswith("abandoned")
    assert states[1] == ("landed", None)


def test_a_version_beyond_bigint_is_landed_as_null_not_a_failed_batch(warehouse_url):
    result = _land(warehouse_url, [st_task(1, version=2**64 - 1), st_task(2)])
    assert result.records_landed == 2
    assert _one(
        warehouse_url, "select version from raw.landed_record where record_id = 'NB-2024-DT-0001'"
    ) == (None,)


def test_a_record_with_nul_characters_is_landed_repaired_and_flagged(warehouse_url):
    sent = st_task(2, title="Đề tài\x00lỗi", **{"ghi_chú\x00": ["a\x00"]})
    result = _land(warehouse_url, [st_task(1), sent])
    assert result.records_landed == 2
    title, note, issue, checksum = _one(
        warehouse_url,
        "select payload ->> 'title', payload -> 'ghi_chú\ufffd' ->> 0, landing_issue, checksum"
        " from raw.landed_record where record_id = 'NB-2024-DT-0002'",
    )
    assert (title, note) == ("Đề tài\ufffdlỗi", "a\ufffd")
    assert issue.startswith("NUL characters")
    canonical = orjson.dumps(sent, option=orjson.OPT_SORT_KEYS)
    assert bytes(checksum) == hashlib.sha256(canonical).digest()  # of the record as sent
    assert _land(warehouse_url, [sent]).records_skipped == 1  # and so recognised when re-sent


def test_the_text_backslash_u0000_is_not_mistaken_for_a_nul(warehouse_url):
    _land(warehouse_url, [st_task(1, title="mã \\u0000 trong văn bản")])
    title, issue = _one(
        warehouse_url, "select payload ->> 'title', landing_issue from raw.landed_record"
    )
    assert (title, issue) == ("mã \\u0000 trong văn bản", None)


def test_extraction_stops_and_is_closed_when_the_load_fails_mid_way():
    fetched: list[int] = []
    closed = threading.Event()

    def endless_pages():
        try:
            for n in itertools.count():
                fetched.append(n)
                yield Page([st_task(n)])
        finally:
            closed.set()

    with (
        pytest.raises(RuntimeError, match="COPY failed"),
        _prefetched(endless_pages(), depth=1) as pages,
    ):
        for n, _ in enumerate(pages):
            if n == 3:
                raise RuntimeError("COPY failed")

    assert closed.wait(5), "the extraction was left running"
    # Four pages consumed; read-ahead is bounded: at most one queued and one being fetched.
    assert 4 <= len(fetched) <= 4 + 2


def _allow_connections(url: str, allowed: bool) -> None:
    """Let (or stop) new sessions connect to the test database, from the server's `postgres`."""
    server, dbname = url.rsplit("/", 1)
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(
            psycopg.sql.SQL("alter database {} with allow_connections {}").format(
                psycopg.sql.Identifier(dbname), psycopg.sql.SQL("true" if allowed else "false")
            )
        )


def _database_dies_after(url: str, pages: list, after: int, *, lock_out: bool = False):
    """An extraction that kills every other session of the database after `after` pages (as a
    server restart does); with `lock_out`, new sessions are refused until allowed again."""

    def extract(updated_since):
        for n, page in enumerate(pages):
            if n == after:
                if lock_out:
                    _allow_connections(url, False)
                with psycopg.connect(f"{url.rsplit('/', 1)[0]}/postgres", autocommit=True) as pg:
                    pg.execute(
                        "select pg_terminate_backend(pid) from pg_stat_activity where datname = %s",
                        (url.rsplit("/", 1)[1],),
                    )
            yield page

    return extract


def test_when_the_database_dies_mid_load_the_ledger_keeps_the_real_error(warehouse_url):
    pages = pages_of([st_task(i) for i in range(40)], 10)
    dying = _database_dies_after(warehouse_url, pages, 2)
    with pytest.raises(psycopg.OperationalError):
        land_extraction(warehouse_url, **SOURCE, extract=dying)

    state, error = _one(warehouse_url, "select state, error from ops.load_batch")
    assert state == "failed"
    assert "terminating connection due to administrator command" in error, error
    assert _one(warehouse_url, "select count(*) from raw.landed_record") == (0,)


def test_an_error_the_ledger_could_not_take_is_recorded_by_the_next_load(
    warehouse_url, tmp_path, monkeypatch
):
    import connectors.landing as landing

    monkeypatch.setenv("STI_LEDGER_SPOOL", str(tmp_path))
    monkeypatch.setattr(landing, "_RECORD_ERROR_SECONDS", 1.0)
    pages = pages_of([st_task(i) for i in range(40)], 10)
    dying = _database_dies_after(warehouse_url, pages, 2, lock_out=True)
    try:
        with pytest.raises(psycopg.OperationalError):
            land_extraction(warehouse_url, **SOURCE, extract=dying)
    finally:
        _allow_connections(warehouse_url, True)
    assert [p.name for p in tmp_path.iterdir()] == ["batch-1.txt"]

    _land(warehouse_url, [st_task(1)])  # the next load of the entity records it
    failed, error = _one(
        warehouse_url, "select state, error from ops.load_batch where batch_id = 1"
    )
    assert failed == "failed"
    assert error.startswith("abandoned: ") and "administrator command" in error, error
    assert list(tmp_path.iterdir()) == []


def test_a_repeated_record_in_a_batch_is_landed_once_and_counted_as_skipped(warehouse_url):
    records = [st_task(i) for i in range(3000)]
    pages = pages_of(records, 500)
    pages[3].records.append(records[1499])  # a page repeats the last record of the one before

    result = land_extraction(warehouse_url, **SOURCE, extract=lambda _: pages)

    assert (result.records_extracted, result.records_landed, result.records_skipped) == (
        3001,
        3000,
        1,
    )
    assert _one(warehouse_url, "select count(*) from raw.landed_record") == (3000,)
    assert _one(warehouse_url, "select records_landed, records_skipped from ops.load_batch") == (
        3000,
        1,
    )


def test_a_version_sent_again_with_other_content_is_flagged_and_the_first_stands(warehouse_url):
    first = st_task(7, title="Tên thứ nhất")
    conflicting = st_task(7, title="Tên đã bị thay đổi")  # same id and version
    result = _land(warehouse_url, [st_task(6), first, conflicting, first])  # and a repeat
    assert (result.records_landed, result.records_skipped) == (3, 1)
    issues = dict(
        psycopg.connect(warehouse_url)
        .execute(
            "select payload ->> 'title', landing_issue from raw.landed_record"
            " where record_id = 'NB-2024-DT-0007'"
        )
        .fetchall()
    )
    assert issues["Tên thứ nhất"] is None
    assert issues["Tên đã bị thay đổi"].startswith(
        "version 1 of this record was already received with other content"
    )

    # In a later batch too: the same version with other content is flagged, not accepted.
    later = _land(warehouse_url, [st_task(6, title="Đổi tên mà không tăng phiên bản")])
    (issue,) = _one(
        warehouse_url,
        "select landing_issue from raw.landed_record where batch_id = %s",
        later.batch_id,
    )
    assert "a version cannot change, the first content stands" in issue
