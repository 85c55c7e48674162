"""Lint as part of the suite: ruff for Python, sqlfluff (dbt templater) for the dbt SQL.

sqlfluff's dbt templater compiles the project, which needs a live database, so it runs here
on the test server rather than as a separate step.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from local.warehouse import dbt_env

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
    result = subprocess.run(
        args, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True
    )
    assert result.returncode == 0, f"{' '.join(args[:3])} found problems:\n{result.stdout}"


def test_python_passes_ruff():
    _run([str(BIN / "ruff"), "check", "."], REPO)
    _run([str(BIN / "ruff"), "format", "--check", "."], REPO)


def test_dbt_sql_passes_sqlfluff(warehouse_url):
    _run(
        [str(BIN / "sqlfluff"), "lint", "models", "snapshots", "tests", "--disable-progress-bar"],
        REPO / "dbt_project",
        dbt_env(warehouse_url),
    )
