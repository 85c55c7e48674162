"""Run dbt on the project with the warehouse's connection settings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from local.warehouse import dbt_env

DBT_PROJECT = Path(__file__).resolve().parents[1] / "dbt_project"
DBT_BIN = Path(sys.executable).with_name("dbt")
MANIFEST = DBT_PROJECT / "target" / "manifest.json"


def run_dbt(*args: str, warehouse_url: str) -> subprocess.CompletedProcess[str]:
    """`dbt <args>` against the warehouse; raises with dbt's output if it fails."""
    env = {**os.environ, **dbt_env(warehouse_url), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    result = subprocess.run(
        [
            str(DBT_BIN),
            *args,
            "--project-dir",
            str(DBT_PROJECT),
            "--profiles-dir",
            str(DBT_PROJECT),
        ],
        env=env,
        capture_output=True,
        text=True,
        cwd=DBT_PROJECT,
    )
    if result.returncode != 0:
        raise RuntimeError(f"dbt {' '.join(args)} failed:\n{result.stdout[-4000:]}")
    return result


def build_manifest() -> Path:
    """`dbt parse`: the manifest Cosmos renders the DAG's dbt tasks from. Needs no database."""
    run_dbt("parse", warehouse_url="postgresql://unused@127.0.0.1:5432/unused")
    return MANIFEST
