"""The extract+land benchmark still runs and compares like with like (its figures are not judged
here: speed targets live in bench/, never in the test suite)."""

from __future__ import annotations

import psycopg
import pytest

from bench import extract_land
from connectors.warehouse import ensure_schema


def test_a_small_run_lands_the_same_rows_as_its_baseline(pg_admin_url, monkeypatch, capsys):
    monkeypatch.setenv("WAREHOUSE_URL", pg_admin_url)
    extract_land.main(["--records", "3000", "--page-size", "1000", "--no-write"])

    report = capsys.readouterr().out
    # One row of figures for 3,000 records landed; check_same_rows would have raised otherwise.
    assert "| 1 | 3,000 |" in report
    with psycopg.connect(pg_admin_url) as conn:
        leftovers = conn.execute(
            "select count(*) from pg_database where datname like 'bench_extract_land_%'"
        ).fetchone()
    assert leftovers == (0,)


def test_the_baseline_refuses_tables_that_differ(warehouse_url):
    ensure_schema(warehouse_url)
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        conn.execute("create schema bench")
        conn.execute("create table bench.plain_copy (like raw.landed_record including all)")
        conn.execute(
            "insert into bench.plain_copy (batch_id, source_id, entity, extracted_at, checksum,"
            " payload) values (1, 's', 'e', now(), '\\x00', '{}')"
        )
    with pytest.raises(RuntimeError, match="different rows"):
        extract_land.check_same_rows(warehouse_url)
