"""Run DAGs through Airflow itself, one after the other, in one process: `dag.test()` each.

`airflow dags test` pays Airflow's and GX's import time (seconds) per DAG; the demo runs some
fifty DAGs, so it runs them here instead. Needs a migrated metadata DB and the AIRFLOW_* /
AIRFLOW_CONN_* environment (local.airflow_env).

    python -m local.run_dags REPORT_FILE DAG_ID [DAG_ID ...]

Appends one JSON line per DAG run to REPORT_FILE: {"dag_id", "state", "seconds",
"failed_tasks"}; exits 1 if any DAG run did not succeed.
"""

from __future__ import annotations

import json
import sys
import time

import pendulum


def main(report_file: str, dag_ids: list[str]) -> int:
    from airflow.dag_processing.dagbag import DagBag

    from local.airflow_env import DAGS_FOLDER

    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    if bag.import_errors:
        for path, error in bag.import_errors.items():
            print(f"import error in {path}:\n{error}", file=sys.stderr)
        return 1
    ok = True
    for dag_id in dag_ids:
        started = time.monotonic()
        run = bag.dags[dag_id].test(logical_date=pendulum.now("UTC"))
        failed = sorted(ti.task_id for ti in run.get_task_instances() if ti.state != "success")
        report = {
            "dag_id": dag_id,
            "state": str(run.state),
            "seconds": round(time.monotonic() - started, 1),
            "failed_tasks": failed,
        }
        with open(report_file, "a", encoding="utf-8") as reports:
            reports.write(json.dumps(report) + "\n")
        ok = ok and run.state == "success"
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
