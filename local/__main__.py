"""Local stack commands: `python -m local demo | airflow-ui | psql | quarantine | stop`.

demo        run the main job on the embedded default and print a summary
airflow-ui  Airflow's UI with the generated DAGs, on the local stack (Ctrl-C to stop)
psql        a SQL shell on the warehouse (starts the embedded server if needed)
quarantine  what waits in quarantine per source and reason, oldest first [SOURCE_ID]
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
    if command == "stop":
        from local.warehouse import local_server

        local_server().stop()
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
