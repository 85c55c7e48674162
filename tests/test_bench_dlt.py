"""The dlt baseline runs and loads everything the stand-in serves (its speed is not judged here).

The first run creates dlt's own environment from bench/dlt/uv.lock (PyPI must be reachable, as
for `make test` itself).
"""

from __future__ import annotations

import psycopg
import pytest
import requests

from bench.dlt_baseline import (
    DEFAULT_DATASET,
    TUNED_LOADER_FILE_FORMAT,
    check_dlt_table,
    run_dlt,
    tuned_dlt_config,
)
from connectors.jobs import REGISTRY_API_V1_PATHS
from local.registry.process import RunningRegistry, run_registry

RECORDS = 2_000
ENTITY_PATH = REGISTRY_API_V1_PATHS["st_task"]


def _standin_stats(registry: RunningRegistry) -> dict:
    """What a full extraction of the stand-in returns (its stand-in-only stats endpoint)."""
    with requests.Session() as session:
        session.trust_env = False  # loopback
        return session.get(registry.base_url + "/_standin/stats", timeout=10).json()


def test_dlt_loads_every_record_of_the_stand_in(warehouse_url):
    with run_registry(records=RECORDS) as registry:
        stats = _standin_stats(registry)
        run = run_dlt(
            registry.base_url,
            registry.client_id,
            registry.client_secret,
            ENTITY_PATH,
            warehouse_url,
            records=RECORDS,
            # As the benchmark runs it, on a small scale: several pages (the paginator must
            # follow next_cursor to the end), several files shared by two normalize processes.
            page_size=500,
            loader_file_format=TUNED_LOADER_FILE_FORMAT,
            dlt_config=tuned_dlt_config(normalize_workers=2, file_max_items=500),
        )

    assert stats["records"] == RECORDS
    assert run.records == RECORDS
    assert run.seconds > 0
    assert run.peak_rss_mb > 0
    with psycopg.connect(warehouse_url) as conn:
        rows, distinct_ids, latest = conn.execute(
            f"select count(*), count(distinct id), max(updated_at) from {DEFAULT_DATASET}.st_tasks"
        ).fetchone()
    assert rows == RECORDS
    # Each record once: ids are unique, and the bad records without one are there too.
    assert distinct_ids == RECORDS - stats["bad"]["missing_id"]
    assert latest is not None  # updated_at typed by dlt, the incremental's cursor
    # The fairness check that run_dlt applies refuses a table short of what was served.
    with pytest.raises(RuntimeError, match=f"not the {RECORDS + 1:,} records"):
        check_dlt_table(warehouse_url, DEFAULT_DATASET, ENTITY_PATH, RECORDS + 1)
