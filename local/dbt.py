"""Run dbt on the project with the warehouse's connection settings.

dbt runs in a child process (`python -m local.dbt <dbt args>`: dbt's programmatic API, with a
callback on its events), which reports each node as it finishes (local.progress) through a pipe;
run_dbt prints those lines as they come and keeps dbt's own output for when it fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from local.progress import DbtProgress, Progress
from local.warehouse import dbt_env

DBT_PROJECT = Path(__file__).resolve().parents[1] / "dbt_project"
# The pipe the child writes its progress lines to (a file descriptor it inherits).
PROGRESS_FD = "STI_DBT_PROGRESS_FD"
MANIFEST = DBT_PROJECT / "target" / "manifest.json"
# Builds keep their artifacts apart from the parse's manifest, which the DAG is rendered from.
BUILD_TARGET = Path("target") / "build"


class WarehouseBuildError(RuntimeError):
    """A warehouse build failed; nothing of it was published."""


def run_dbt(
    *args: str,
    warehouse_url: str,
    project_dir: Path = DBT_PROJECT,
    check: bool = True,
    progress: bool = True,
) -> subprocess.CompletedProcess[str]:
    """`dbt <args>` against the warehouse; raises with dbt's output if it fails (`check`).
    With `progress`, prints a line per node as dbt finishes it: `[37/212] model … success`."""
    env = {**os.environ, **dbt_env(warehouse_url), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    command = [
        sys.executable,
        "-m",
        "local.dbt",
        *args,
        "--project-dir",
        str(project_dir),
        "--profiles-dir",
        str(project_dir),
    ]
    if not progress:
        result = subprocess.run(command, env=env, capture_output=True, text=True, cwd=project_dir)
    else:
        read_end, write_end = os.pipe()
        forwarding = threading.Thread(target=_forward, args=(read_end, sys.stdout), daemon=True)
        forwarding.start()
        try:
            result = subprocess.run(
                command,
                env={**env, PROGRESS_FD: str(write_end)},
                pass_fds=(write_end,),
                capture_output=True,
                text=True,
                cwd=project_dir,
            )
        finally:
            os.close(write_end)  # the child's copy closed when it exited: the reader ends
            forwarding.join()
    if check and result.returncode != 0:
        raise RuntimeError(f"dbt {' '.join(args)} failed:\n{result.stdout[-4000:]}")
    return result


def _forward(read_end: int, out: TextIO) -> None:
    with open(read_end, encoding="utf-8") as lines:
        for line in lines:
            out.write(line)
            out.flush()


def build_manifest() -> Path:
    """`dbt parse`: the manifest Cosmos renders the DAG's dbt tasks from. Needs no database."""
    run_dbt("parse", warehouse_url="postgresql://unused@127.0.0.1:5432/unused")
    return MANIFEST


def build_and_publish(
    warehouse_url: str,
    *,
    project_dir: Path = DBT_PROJECT,
    run_id: str | None = None,
    target_path: Path = BUILD_TARGET,
) -> int:
    """Write–audit–publish outside Airflow: `dbt build` into the build schemas, publish if
    every model and blocking test passed. Returns the publish id; raises WarehouseBuildError
    naming the failed nodes and tests otherwise (the published views stay as they were)."""
    from connectors.warehouse_publish import (
        begin_publish,
        fail_publish,
        failed_nodes_in,
        publish,
    )

    run_id = run_id or f"local__{datetime.now(UTC):%Y%m%dT%H%M%S}"
    # A failed build names its failures from run_results.json: never from an earlier build's.
    (project_dir / target_path / "run_results.json").unlink(missing_ok=True)
    begun = begin_publish(warehouse_url, run_id=run_id)
    dbt_vars = {
        "wap": True,
        "published_before": begun.cutoff.isoformat(),
        "publish_id": begun.publish_id,
    }
    result = run_dbt(
        "build",
        "--vars",
        json.dumps(dbt_vars),
        "--target-path",
        str(target_path),
        warehouse_url=warehouse_url,
        project_dir=project_dir,
        check=False,
    )
    if result.returncode != 0:
        failed = failed_nodes_in(project_dir / target_path) or [
            "dbt build failed: " + result.stdout[-2000:]
        ]
        recorded = fail_publish(warehouse_url, begun.publish_id, "; ".join(failed))
        raise WarehouseBuildError(
            f"warehouse build {begun.publish_id} failed, nothing published: {recorded}"
        )
    publish(warehouse_url, begun.publish_id)
    return begun.publish_id


def generate_docs(warehouse_url: str, *, project_dir: Path = DBT_PROJECT) -> Path:
    """`dbt docs generate` on the published schemas (the catalogue of what analysts read);
    returns the folder of the static site."""
    target = Path("target") / "docs"
    run_dbt(
        "docs",
        "generate",
        "--vars",
        json.dumps({"wap": False}),
        "--target-path",
        str(target),
        warehouse_url=warehouse_url,
        project_dir=project_dir,
    )
    return project_dir / target


def _dbt_main(args: list[str]) -> int:
    """The child of run_dbt: dbt in this process, its node events to the progress pipe."""
    from dbt.cli.main import dbtRunner

    callbacks = []
    if PROGRESS_FD in os.environ:
        pipe = open(int(os.environ[PROGRESS_FD]), "w", encoding="utf-8", buffering=1)  # noqa: SIM115
        callbacks.append(DbtProgress(Progress(out=pipe)))
    result = dbtRunner(callbacks=callbacks).invoke(args)
    if result.success:
        return 0
    if result.exception is None:
        return 1  # as dbt's command line: nodes failed (dbt's output names them)
    print(f"dbt: {result.exception}", file=sys.stderr)  # e.g. a usage error, which dbt omits
    return 2


if __name__ == "__main__":
    sys.exit(_dbt_main(sys.argv[1:]))
