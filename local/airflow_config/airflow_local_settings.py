"""Airflow's local settings hook (on PYTHONPATH of every Airflow component the project starts):
preloads the libraries our tasks use in the processes that fork task processes.

With LocalExecutor the scheduler forks each task's process, and a Celery worker forks its
pool; a forked task inherits what its parent imported. Great Expectations and dbt take
seconds to import (tens of seconds on a busy 2-core machine), once per task without this,
once per scheduler or worker with it. Nothing here touches Airflow's settings: `__all__` is
empty, so Airflow copies no name from this module.
"""

import os
import sys

__all__: list[str] = []

# `airflow scheduler` with the LocalExecutor, and `airflow celery worker`; not the API server,
# the DAG processor, a CLI command, nor a scheduler that leaves tasks to Celery workers.
_forks_tasks = (
    sys.argv[1:2] == ["scheduler"]
    and os.environ.get("AIRFLOW__CORE__EXECUTOR", "LocalExecutor") == "LocalExecutor"
) or sys.argv[1:2] == ["celery"]
if _forks_tasks:
    import dbt.cli.main  # noqa: F401  the warehouse DAG's dbt runs in-process
    import great_expectations  # noqa: F401  every gate task

    import expectations.gate  # noqa: F401
