"""The warehouse benchmark still runs and measures what it says: a full build, then an
incremental build that appends exactly the changed records' new versions (timings are not
judged here)."""

from __future__ import annotations

import argparse

import psycopg

from bench import warehouse as bench


def test_a_small_run_builds_in_full_then_appends_only_the_change(warehouse_url):
    bench.land_profile(
        warehouse_url, "demo", registries=1, exchanges={"national_exchange": (300, 120)}
    )
    with psycopg.connect(warehouse_url) as conn:
        states = dict(conn.execute("select state, count(*) from ops.load_batch group by 1"))
    assert states.get("published", 0) >= 10 and set(states) <= {"published", "failed"}
    args = argparse.Namespace(profile="demo", registries=1, change=0.05, delete=0.01)

    result = bench.run_benchmark(warehouse_url, args, machine="test")

    assert result.changed > 50 and 0 < result.deleted < result.changed
    # Every changed record is one more version; nothing else was appended.
    assert result.version_rows - result.version_rows_full == result.changed
    assert result.full.seconds > 0 and result.incremental.seconds > 0
    assert result.full.by_kind["version tables"] > 0 and result.full.by_kind["tests"] > 0
    assert 0 < result.snapshot_rows_incremental <= 2 * result.changed
    text = bench.report(args, result, bench.datetime.now(bench.UTC))
    assert "ratio" in text and "Snapshots" in text
