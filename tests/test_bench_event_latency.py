"""The latency benchmark still runs end to end at a tiny size: a stand-in registry posting
signed change events, the intake, the dispatcher and a real Airflow; the first load, then three
changes a second apart, each seen in marts.fct_st_task; the report has its figures. No target:
the test checks the measurement, not the speed.

Slow: it starts Airflow, runs the first load (a full warehouse build) and at least one more
warehouse build for the changes, each the whole dbt project through Airflow: 7-9 minutes on the
shared 2-CPU machine (load average 3-5) it was written on; two builds of about 40 s each on a
quiet one put it at 3 minutes at best."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import psycopg
import pytest

from bench import event_latency as bench

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(2400)]


def test_three_changes_reach_the_marts_and_are_reported(pg_admin_url, monkeypatch):
    monkeypatch.setenv("WAREHOUSE_URL", pg_admin_url)
    database = f"bench_latency_test_{os.getpid()}"
    started_at = datetime.now(UTC)

    result = bench.run_benchmark(3, 1.0, database=database, timeout=900)

    assert result.all_visible, [(c.record_id, c.at) for c in result.changes]
    assert [c.number for c in result.changes] == [1, 2, 3]
    assert len({c.record_id for c in result.changes}) == 3  # three different records
    for change in result.changes:
        # Every milestone was reached after the change (to the clock's precision: the intake
        # may commit the event a few ms before the POST's answer arrives), in order, except
        # that a sync run started before the event was dispatched may be the one that takes it.
        at = {key: change.after(key) for key, _ in bench.MILESTONES}
        assert None not in at.values(), change
        assert all(t >= -0.5 for t in at.values()), change
        assert at["received"] <= at["dispatched"], change
        chain = ["extraction", "batch_published", "build_started", "build_published", "visible"]
        assert [at[key] for key in chain] == sorted(at[key] for key in chain), change
        assert change.batch_id and change.publish_id and change.version and change.version >= 2
    sync_runs = result.runs_of(f"{bench.SOURCE_ID}__{bench.ENTITY}")
    builds = result.runs_of(bench.WAREHOUSE_DAG_ID)
    assert sync_runs and all(r.state == "success" for r in sync_runs)
    assert builds and all(r.state == "success" for r in builds)
    assert {"begin_publish", "publish"} <= set(result.build_tasks)
    assert any(task.startswith("dbt.") for task in result.build_tasks)
    assert {r.dag_id for r in result.initial_reports} == {
        f"{bench.SOURCE_ID}__{bench.ENTITY}",
        bench.WAREHOUSE_DAG_ID,
    }

    text = bench.report(result, "python -m bench.event_latency --events 3", started_at)
    for expected in (
        "3 changes, 1 s apart",
        "Command: `python -m bench.event_latency --events 3`",
        "CPUs (nproc)",
        "synthetic clock",
        "| **marts.fct_st_task shows its version (seen by the poller)** |",
        "| build began → build published |",
        "sync run",
        "warehouse run",
        "The floor under the latency",
        "Inside those warehouse runs (median s per task): begin_publish",
        "Target: p95 of change → visible <= 60 s",
        "| 3 | ",  # the per-change table's last row
    ):
        assert expected in text, (expected, text)
    assert ("**PASS**" in text) == result.passed and ("**NOT met**" in text) != result.passed

    with psycopg.connect(pg_admin_url) as conn:
        left = conn.execute(
            "select count(*) from pg_database where datname in (%s, %s)",
            (database, f"{database}_airflow"),
        ).fetchone()[0]
    assert left == 0  # both databases were dropped
