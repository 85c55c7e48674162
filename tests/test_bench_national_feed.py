"""The national feed benchmark still runs end to end (the stand-in intake in its own process,
the same bodies posted plainly and delivered by the publisher, a full reconciliation): every
record acknowledged once, nothing applied twice, no difference. No timing."""

from __future__ import annotations

import os

import psycopg

from bench import national_feed as bench


def test_a_small_run_delivers_every_record_once(pg_admin_url, monkeypatch):
    monkeypatch.setenv("WAREHOUSE_URL", pg_admin_url)
    runs, machine = bench.run_benchmark(records=2_500, chunk=400, repeat=1)

    (run,) = runs
    assert (run.records, run.acknowledged) == (2_500, 2_500)
    assert (run.differences, run.duplicates) == (0, 0)
    assert run.plain_seconds > 0 and run.feed_seconds > 0 and "CPUs" in machine
    with psycopg.connect(pg_admin_url) as conn:
        left = conn.execute(
            "select count(*) from pg_database where datname in (%s, %s)",
            (f"bench_national_feed_{os.getpid()}", f"bench_national_intake_{os.getpid()}"),
        ).fetchone()[0]
    assert left == 0  # its databases were dropped
