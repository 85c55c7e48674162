"""The operators' monitoring DAG: change events waiting too long (connectors/source_status.py)."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, task
from airflow.timetables.trigger import CronTriggerTimetable

from dags.notifiers import failure_notifier
from dags.sync_dag_factory import TIMEZONE, WAREHOUSE_CONN_ID, warehouse_url

EVENT_LAG_DAG_ID = "ops__event_lag"

with DAG(
    dag_id=EVENT_LAG_DAG_ID,
    description="Notify when a source entity's change events wait longer than its catalogue allows",
    doc_md=(
        "Every 5 minutes, reads `ops.source_status` (connection"
        f" `{WAREHOUSE_CONN_ID}`) and, for each source entity whose oldest pending change event"
        " (received in `ops.event_inbox`, its batch not yet published) has waited longer than"
        " the source's `events.max_pending_minutes` in `dags/sources.yml` (default 15), sends"
        " one notification (severity warning) through `connectors/notify.py`: the log, and the"
        " connections `sti_notify_webhook` and `sti_notify_smtp` when configured. A late entity"
        " is notified again every run until its events are published.\n\n"
        "Events wait when the dispatcher is down or Airflow refuses its asset events"
        " (`ops.event_inbox.last_error`), or when the entity's sync run fails or its batch is"
        " blocked. `python -m local sources` (`make sources`) shows the same figures. The"
        " task returns the late entities (XCom); it fails, and notifies, only when it cannot"
        " read the warehouse."
    ),
    schedule=CronTriggerTimetable("*/5 * * * *", timezone=TIMEZONE),
    start_date=pendulum.datetime(2026, 1, 1, tz=TIMEZONE),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=10),
    tags=["operations", "events"],
    default_args={
        "owner": "sti-data-engineering",
        "retries": 0,  # the next run is 5 minutes away
        "execution_timeout": timedelta(minutes=4),
        "on_failure_callback": failure_notifier(),
    },
) as dag:

    @task
    def notify_late_events() -> list[dict[str, object]]:
        """One notification per source entity whose events wait too long; the late ones."""
        from connectors.catalogue import load_catalogue
        from connectors.source_status import notify_late_entities
        from dags.notifiers import send

        late = notify_late_entities(warehouse_url(), load_catalogue(), notify=send)
        return [
            {
                "source_id": status.source_id,
                "entity": status.entity,
                "pending_events": status.pending_events,
                "waited_minutes": int(status.oldest_pending_age.total_seconds() // 60),
                "max_pending_minutes": limit,
            }
            for status, limit in late
        ]

    notify_late_events()
