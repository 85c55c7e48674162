"""Shared fixtures: a real PostgreSQL (WAREHOUSE_URL's server, or a throwaway local one), one
fresh database per test, and a migrated Airflow metadata DB."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from local.airflow_env import airflow_settings, migrate_metadata_db
from local.postgres import drop_database, ensure_database, throwaway_server

# Airflow reads its settings when first imported, so its home must be set before any test
# module imports it.
AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="sti-test-airflow-"))
os.environ.update(airflow_settings(AIRFLOW_HOME))


def _with_database(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{dbname}"))


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    """A server to create test databases on: WAREHOUSE_URL's, else a throwaway local one."""
    given = os.environ.get("WAREHOUSE_URL")
    if given:
        yield given
        return
    # Not under pytest's basetemp: another pytest run on the machine may prune old basetemps
    # while this session's server is still using its data directory.
    with (
        tempfile.TemporaryDirectory(prefix="sti-test-pg-") as folder,
        throwaway_server(Path(folder)) as server,
    ):
        yield server.url()


@pytest.fixture
def warehouse_url(pg_admin_url: str) -> Iterator[str]:
    """A fresh, empty database with the landing schema; dropped after the test."""
    from connectors.warehouse import ensure_schema

    dbname = f"sti_test_{uuid.uuid4().hex[:12]}"
    ensure_database(pg_admin_url, dbname)
    url = _with_database(pg_admin_url, dbname)
    ensure_schema(url)
    try:
        yield url
    finally:
        drop_database(pg_admin_url, dbname)


@pytest.fixture(scope="session")
def synced(pg_admin_url: str, tmp_path_factory) -> Iterator[str]:
    """A database with every source landed, gated and published through the real gate
    (tests/pipeline.py), and one published warehouse build: what the demo lands, shared by the
    warehouse model's tests (test_warehouse_model.py, test_feed_models.py), which may build and
    publish again on it."""
    from pipeline import sync_every_source

    from connectors.warehouse import ensure_schema
    from local.dbt import build_and_publish

    dbname = f"test_model_{uuid.uuid4().hex[:10]}"
    ensure_database(pg_admin_url, dbname)
    url = _with_database(pg_admin_url, dbname)
    try:
        ensure_schema(url)
        tmp = tmp_path_factory.mktemp("model")
        counts = sync_every_source(url, tmp / "drops", tmp / "reports")
        assert counts["published"] > 40 and counts["blocked"] == 0, counts
        build_and_publish(url, run_id="test_model__first")
        yield url
    finally:
        drop_database(pg_admin_url, dbname)


@pytest.fixture(scope="session")
def airflow_home() -> Path:
    """A migrated Airflow metadata DB (SQLite in a temporary AIRFLOW_HOME)."""
    migrate_metadata_db(airflow_settings(AIRFLOW_HOME))
    return AIRFLOW_HOME


@pytest.fixture(scope="session")
def dbt_manifest() -> Path:
    """A fresh dbt manifest, which the DAG's Cosmos task group is rendered from."""
    from local.dbt import build_manifest

    return build_manifest()
