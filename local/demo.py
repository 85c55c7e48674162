"""The main job on the embedded default: local warehouse + stand-in registry + Airflow.

Starts the project's PostgreSQL (unless WAREHOUSE_URL is set) and the stand-in Ninh Bình
registry, migrates Airflow's metadata DB, runs the sync DAG through Airflow
(`airflow dags test`), prints what happened, and stops what it started.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pendulum
import psycopg

from connectors.warehouse import ensure_schema
from local.airflow_env import AIRFLOW_BIN, airflow_settings, connection_env, migrate_metadata_db
from local.dbt import build_manifest
from local.registry.process import run_registry
from local.warehouse import LOCAL_STATE, local_server, resolve_warehouse_url

SOURCE_ID = "ninh_binh_registry"
ENTITY = "st_task"
DAG_ID = f"{SOURCE_ID}__{ENTITY}"
AIRFLOW_HOME = LOCAL_STATE / "airflow"
LOG_DIR = LOCAL_STATE / "logs"


def main() -> int:
    started = time.monotonic()
    records = int(os.environ.get("DEMO_RECORDS", "1000"))
    embedded = not os.environ.get("WAREHOUSE_URL")
    step("warehouse", "embedded PostgreSQL under .local/postgres" if embedded else "WAREHOUSE_URL")
    warehouse_url = resolve_warehouse_url()
    try:
        ensure_schema(warehouse_url)
        step("dbt", "parsing the project (manifest for the DAG's dbt tasks)")
        build_manifest()
        settings = airflow_settings(AIRFLOW_HOME)
        step("airflow", f"migrating the metadata DB in {AIRFLOW_HOME.relative_to(Path.cwd())}")
        migrate_metadata_db(settings)
        step("registry", f"starting the stand-in Ninh Bình registry ({records} S&T tasks)")
        with run_registry(records=records) as registry:
            connections = connection_env(warehouse_url, {SOURCE_ID: registry})
            step("run", f"airflow dags test {DAG_ID}")
            log_file = run_dag({**settings, **connections})
        ok = print_summary(warehouse_url, log_file, time.monotonic() - started)
    finally:
        if embedded:
            local_server().stop()
    return 0 if ok else 1


def step(name: str, message: str) -> None:
    print(f"[{name:>9}] {message}", flush=True)


def run_dag(env: dict[str, str]) -> Path:
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log_file = LOG_DIR / f"{DAG_ID}-{pendulum.now('UTC').format('YYYYMMDDTHHmmss')}.log"
    with log_file.open("w") as log:
        subprocess.run(
            [str(AIRFLOW_BIN), "dags", "test", DAG_ID],
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,  # the ledger below tells what happened; the log has the details
        )
    return log_file


def print_summary(warehouse_url: str, log_file: Path, seconds: float) -> bool:
    with psycopg.connect(warehouse_url) as conn:
        batch = conn.execute(
            "select batch_id, state, records_extracted, records_landed, records_skipped,"
            " records_passed, records_quarantined, error from ops.load_batch"
            " where source_id = %s and entity = %s order by batch_id desc limit 1",
            (SOURCE_ID, ENTITY),
        ).fetchone()
        if batch is None:
            print(f"\nThe DAG did not start a load batch. See the log: {log_file}")
            return False
        batch_id, state, extracted, landed, skipped, passed, quarantined, error = batch
        reasons = conn.execute(
            "select reason, count(*) from ops.quarantine where batch_id = %s"
            " group by reason order by count(*) desc",
            (batch_id,),
        ).fetchall()
        marts = {}
        for table in ("marts.fct_st_task", "marts.dim_research_field"):
            exists = conn.execute("select to_regclass(%s)", (table,)).fetchone()[0]
            marts[table] = (
                conn.execute(f"select count(*) from {table}").fetchone()[0] if exists else None
            )
        (open_quarantine,) = conn.execute(
            "select count(*) from ops.quarantine where resolved_at is null"
        ).fetchone()

    print(f"\nNinh Bình registry → warehouse, batch {batch_id}: {state}")
    print(f"  records extracted     {extracted:>8}")
    print(f"  landed (new)          {landed:>8}   ({skipped} already landed, skipped)")
    print(f"  passed the gate       {passed if passed is not None else '-':>8}")
    print(f"  quarantined           {quarantined if quarantined is not None else '-':>8}")
    for reason, count in reasons:
        print(f"      {count:>5}  {reason}")
    for table, count in marts.items():
        print(f"  rows in {table:<22}{count if count is not None else 'not built':>6}")
    print(f"  open quarantine (all batches) {open_quarantine}")
    print(f"  time taken            {seconds:>7.1f} s")
    if error:
        print(f"  error: {error}")
    print(f"\nAirflow log of this run: {log_file}")
    print("Next:")
    print("  make airflow-ui      Airflow UI on http://localhost:8080 with this DAG and its runs")
    print("  make psql            SQL shell on the warehouse; try:")
    print("      select task_code, title, field_code, budget_total_million_vnd, status")
    print("        from marts.fct_st_task order by task_code limit 10;")
    print("      select reason, count(*) from ops.quarantine where resolved_at is null group by 1;")
    return state == "published"


if __name__ == "__main__":
    sys.exit(main())
