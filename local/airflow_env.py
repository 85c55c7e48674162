"""The Airflow environment of the local stack: home, settings and connections, all from env vars.

Connections are declared as AIRFLOW_CONN_* variables (JSON form), so no UI step is needed and
no secret is written to disk by the project.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    from local.registry.process import RunningRegistry

REPO_ROOT = Path(__file__).resolve().parents[1]
DAGS_FOLDER = REPO_ROOT / "dags"
AIRFLOW_BIN = Path(sys.executable).with_name("airflow")


def airflow_settings(home: Path) -> dict[str, str]:
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "GX_ANALYTICS_ENABLED": "false",
        "SCARF_ANALYTICS": "false",
        "DO_NOT_TRACK": "1",
    }


def warehouse_connection(warehouse_url: str) -> str:
    parts = urlsplit(warehouse_url)
    return json.dumps(
        {
            "conn_type": "postgres",
            "host": parts.hostname,
            "port": parts.port or 5432,
            "login": unquote(parts.username or ""),
            "password": unquote(parts.password or ""),
            "schema": parts.path.lstrip("/"),
        }
    )


def api_connection(base_url: str, login: str, password: str) -> dict[str, Any]:
    return {"conn_type": "http", "host": base_url, "login": login, "password": password}


def drop_connection(folder: Path) -> dict[str, Any]:
    return {"conn_type": "fs", "extra": {"location": folder.resolve().as_uri()}}


def connection_env(
    warehouse_url: str, connections: Mapping[str, RunningRegistry | dict[str, Any]]
) -> dict[str, str]:
    """AIRFLOW_CONN_* variables for the warehouse and each source connection id.

    A connection is given as Airflow's JSON form (a dict), or as a running stand-in registry.
    """
    env = {"AIRFLOW_CONN_STI_WAREHOUSE": warehouse_connection(warehouse_url)}
    for conn_id, connection in connections.items():
        if not isinstance(connection, dict):
            connection = api_connection(
                connection.base_url, connection.client_id, connection.client_secret
            )
        env[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(connection)
    return env


def migrate_metadata_db(settings: dict[str, str]) -> None:
    """`airflow db migrate` (idempotent) on the metadata DB the settings point to."""
    result = subprocess.run(
        [str(AIRFLOW_BIN), "db", "migrate"],
        env={**os.environ, **settings},
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed:\n{result.stderr[-3000:]}")
