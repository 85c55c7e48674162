"""The intake benchmark still runs end to end (a real uvicorn child, loopback clients, the
inbox counted): every event answered once 202, every re-send 200, none missing. No timing."""

from __future__ import annotations

import os

import psycopg

from bench import event_intake as bench


def test_a_small_run_stores_every_event_once(pg_admin_url, monkeypatch):
    monkeypatch.setenv("WAREHOUSE_URL", pg_admin_url)
    runs, machine = bench.run_benchmark(events=120, clients=4, repeat=1)

    (run,) = runs
    assert run.statuses == {202: 120, 200: run.resent} and run.resent == 6
    assert (run.rows, run.missing) == (120, 0)
    assert 1 <= run.commits <= 120 + run.resent and "CPUs" in machine
    with psycopg.connect(pg_admin_url) as conn:
        left = conn.execute(
            "select count(*) from pg_database where datname = %s",
            (f"bench_event_intake_{os.getpid()}",),
        ).fetchone()[0]
    assert left == 0  # its database was dropped
