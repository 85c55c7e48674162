"""Local stack commands: `python -m local demo | airflow-ui | psql | quarantine | warehouse | docs
| stop`.

demo        run the main job on the embedded default and print a summary
airflow-ui  Airflow's UI with the generated DAGs, on the local stack (Ctrl-C to stop)
psql        a SQL shell on the warehouse (starts the embedded server if needed)
quarantine  what waits in quarantine per source and reason, oldest first [SOURCE_ID];
            `quarantine replay|release ...` re-checks or releases (local/quarantine.py)
sources     per source entity: change events pending (LATE past the catalogue's limit), lag,
            last publish, last batch and error [SOURCE_ID] (local/source_status.py)
warehouse   build the dbt project and publish it if every model and blocking test passed
            (write–audit–publish outside Airflow; the warehouse DAG does the same)
docs        dbt's documentation site of the warehouse (models, columns, tests, lineage,
            exposures) into dbt_project/target/docs; open its index.html
pause       pause (`resume`: resume) every DAG of a source in Airflow: SOURCE_ID;
            `backfill SOURCE_ID ENTITY FROM TO` triggers ops__backfill (REST API,
            AIRFLOW_CONN_STI_AIRFLOW_API; local/operations.py)
feed        the national feed: `feed [status]`, `feed deliver|reconcile`,
            `feed pause|resume|resend --province P [--entity E] [--reason R]` (local/feed.py)
stop        stop the embedded PostgreSQL if it is running
"""

from __future__ import annotations

import subprocess
import sys


def main(argv: list[str]) -> int:
    command = argv[0] if argv else ""
    if command == "demo":
        from local.demo import main as demo

        return demo()
    if command == "airflow-ui":
        from local.ui import main as ui

        return ui()
    if command == "psql":
        from local.warehouse import psql_command

        return subprocess.call(psql_command())
    if command == "quarantine":
        from local.quarantine import main as quarantine

        return quarantine(argv[1:])
    if command == "sources":
        from local.source_status import main as sources

        return sources(argv[1:])
    if command == "warehouse":
        from connectors.warehouse_publish import PublishError
        from local.dbt import WarehouseBuildError, build_and_publish
        from local.warehouse import resolve_warehouse_url

        try:
            publish_id = build_and_publish(resolve_warehouse_url())
        except (WarehouseBuildError, PublishError) as error:
            print(error, file=sys.stderr)
            return 1
        print(f"published: publish {publish_id} (ops.warehouse_publish)")
        return 0
    if command == "docs":
        from local.dbt import generate_docs
        from local.warehouse import resolve_warehouse_url

        print(f"dbt docs: {generate_docs(resolve_warehouse_url()) / 'index.html'}")
        return 0
    if command in ("pause", "resume", "backfill"):
        from local.operations import main as operation

        return operation(command, argv[1:])
    if command == "feed":
        from local.feed import main as feed

        return feed(argv[1:])
    if command == "stop":
        from local.warehouse import local_server

        local_server().stop()
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
