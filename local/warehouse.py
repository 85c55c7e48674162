"""Which warehouse to use: WAREHOUSE_URL when set, else the project's own local PostgreSQL."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

from local.postgres import LocalPostgres, ensure_database

REPO_ROOT = Path(__file__).resolve().parents[1]
LOCAL_STATE = REPO_ROOT / ".local"
WAREHOUSE_DB = "sti"
AIRFLOW_DB = "airflow"  # Airflow's metadata DB, beside the warehouse on the same server


def local_server() -> LocalPostgres:
    return LocalPostgres(LOCAL_STATE / "postgres")


def resolve_warehouse_url() -> str:
    """The configured warehouse, or the embedded one (started, with its database created)."""
    configured = os.environ.get("WAREHOUSE_URL")
    if configured:
        return configured
    server = local_server()
    admin_url = server.start()
    ensure_database(admin_url, WAREHOUSE_DB)
    return server.url(WAREHOUSE_DB)


def resolve_airflow_metadata_url(warehouse_url: str) -> str:
    """Airflow's metadata DB: AIRFLOW__DATABASE__SQL_ALCHEMY_CONN when set, else a database
    `airflow` of its own on the warehouse's server (created if missing)."""
    configured = os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN")
    if configured:
        return configured
    parts = urlsplit(warehouse_url)
    ensure_database(parts._replace(path="/postgres").geturl(), AIRFLOW_DB)
    return parts._replace(scheme="postgresql+psycopg2", path=f"/{AIRFLOW_DB}").geturl()


def dbt_env(warehouse_url: str) -> dict[str, str]:
    """Environment variables that dbt_project/profiles.yml reads, derived from the URL."""
    parts = urlsplit(warehouse_url)
    return {
        "DBT_PG_HOST": parts.hostname or "127.0.0.1",
        "DBT_PG_PORT": str(parts.port or 5432),
        "DBT_PG_USER": unquote(parts.username or "postgres"),
        "DBT_PG_PASSWORD": unquote(parts.password or ""),
        "DBT_PG_DBNAME": parts.path.lstrip("/") or "postgres",
    }


def psql_command() -> list[str]:
    """psql (bundled with the embedded server) connected to the warehouse."""
    url = resolve_warehouse_url()
    return [str(local_server().bin_dir / "psql"), url]
