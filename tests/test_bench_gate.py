"""The gate benchmark still runs and compares like with like: its hand-written SQL pass must find
exactly the rows the gate quarantines, check by check (its speed targets are not judged here)."""

from __future__ import annotations

import psycopg
import pytest

from bench import gate as gate_bench
from expectations.gate import _expectation_name, load_suite, run_gate


def test_a_small_run_finds_the_same_rows_as_the_gate_for_every_check(pg_admin_url, monkeypatch):
    monkeypatch.setenv("WAREHOUSE_URL", pg_admin_url)
    bench_databases = "select count(*) from pg_database where datname like 'bench_gate_%'"
    with psycopg.connect(pg_admin_url) as conn:  # another benchmark may be running beside
        before = conn.execute(bench_databases).fetchone()
    runs, machine = gate_bench.run_benchmark(rows=2_000, repeat=1)

    (run,) = runs
    assert run.rows == 2_000
    assert 0 < run.gate_seconds < 300 and 0 < run.hand_seconds < 300
    assert {"materialise", "gx", "gx validate", "total"} <= set(run.steps)
    assert run.gx_queries > 0 and "CPUs" in machine
    # Every expectation of the suite was computed by both, with the same failing rows.
    suite, _ = load_suite(gate_bench.CONTRACT, gate_bench.ENTITY)
    assert set(run.checks) == {_expectation_name(e) for e in suite["expectations"]}
    assert all(check.agree for check in run.checks.values()), run.checks
    # One record in 20 is spoiled; each spoiled one is flagged, blocking or warning.
    assert run.quarantined + run.warned >= 2_000 // gate_bench.BAD_EVERY
    assert sum(check.held for check in run.checks.values()) >= 2_000 // gate_bench.BAD_EVERY
    with psycopg.connect(pg_admin_url) as conn:
        assert conn.execute(bench_databases).fetchone() == before  # its database was dropped


def test_the_comparison_catches_rows_flagged_by_one_side_only(warehouse_url, tmp_path):
    gate_bench.prepare(warehouse_url)
    batch_id = gate_bench.land(warehouse_url, gate_bench.SOURCE_ID, 400)
    result = run_gate(warehouse_url, batch_id, gate_bench.RULES, tmp_path)
    hand = gate_bench.time_hand(warehouse_url, batch_id, tmp_path)["hand_counts"]
    gx = {outcome.name: outcome.unexpected for outcome in result.outcomes}

    checks = gate_bench.compare(warehouse_url, batch_id, gx, hand)
    assert all(check.agree for check in checks.values())
    gate_bench.check_agreement(checks)

    with psycopg.connect(warehouse_url) as conn:
        (name,) = conn.execute(
            "delete from bench.hand_failing where ctid = (select min(ctid) from"
            " bench.hand_failing) returning expectation"
        ).fetchone()
    checks = gate_bench.compare(warehouse_url, batch_id, gx, hand)
    assert [n for n, check in checks.items() if not check.agree] == [name]
    assert checks[name].differ == 1
    with pytest.raises(RuntimeError, match="disagree"):
        gate_bench.check_agreement(checks)


def test_an_expectation_the_hand_written_pass_cannot_compute_is_refused():
    with pytest.raises(ValueError, match="no SQL for expect_column_values_to_be_unique"):
        gate_bench.check_sql(
            {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "record_id"}}
        )
    with pytest.raises(ValueError, match="does not handle"):
        gate_bench.check_sql(
            {
                "type": "expect_column_values_to_not_be_null",
                "kwargs": {"column": "title", "row_condition": "deleted = false"},
            }
        )
