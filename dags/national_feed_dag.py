"""The national feed DAG: after each published warehouse build, deliver the published changes of
every national entity to the national STI intake (connectors/national_feed.py), then reconcile.

The entities come from the seed that declares them (dbt_project/seeds/national_feed_entities.csv),
so a new national entity is a seed row and a feed model."""

from __future__ import annotations

import csv
from datetime import timedelta

from airflow.sdk import DAG, BaseHook, task
from airflow.timetables.assets import AssetOrTimeSchedule
from airflow.timetables.trigger import CronTriggerTimetable

from dags.notifiers import failure_notifier
from dags.sync_dag_factory import MARTS_ASSET, REPO_ROOT, TIMEZONE, warehouse_url

NATIONAL_FEED_DAG_ID = "national_feed"
INTAKE_CONN_ID = "national_intake"
FEED_SCHEDULE = "0 4 * * *"  # daily safety net, after the nightly warehouse build
ENTITIES_SEED = REPO_ROOT / "dbt_project" / "seeds" / "national_feed_entities.csv"

with ENTITIES_SEED.open(encoding="utf-8") as seed:
    FEED_ENTITIES = [row["entity"] for row in csv.DictReader(seed)]


def _intake_clients():  # -> connectors.national_feed.IntakeClients
    # imported here: the DAG file stays light to parse
    from airflow.exceptions import AirflowNotFoundException

    from connectors.national_feed import IntakeClients
    from connectors.national_intake import IntakeConnection

    def connection_for(province: str) -> IntakeConnection | None:
        try:
            conn = BaseHook.get_connection(f"{INTAKE_CONN_ID}_{province}")
        except AirflowNotFoundException:
            return None
        return IntakeConnection.from_fields(conn.host, conn.login, conn.password, conn.extra_dejson)

    return IntakeClients(connection_for)


with DAG(
    dag_id=NATIONAL_FEED_DAG_ID,
    description="Deliver published changes to the national STI intake, exactly once; reconcile",
    doc_md=(
        "Runs when a warehouse build is published (`sti://warehouse/marts`) and daily at"
        f" {FEED_SCHEDULE} as a safety net. One `deliver` task per national entity (the seed"
        " `national_feed_entities`), two at a time: each settles the batches an earlier run left"
        " open, then sends what changed in `marts.feed_<entity>` since the national side last"
        " acknowledged it, in signed chunks recorded in the feed ledger (`ops.feed_batch`)"
        " before they are sent, each province with its own credentials and key (connection"
        f" `{INTAKE_CONN_ID}_<province code>`: host, login = client id, password = client"
        " secret, extra `key_id` and `signing_key`; a province without one is skipped and"
        " reported). The intake answers per record; rejections go to `ops.feed_rejection`"
        " (listed by `make quarantine`). A failed task leaves its open batch in the ledger and is"
        " retried with backoff; the next run settles it under the same idempotency key.\n\n"
        "`reconcile` compares, per province and entity, the published records, the ledger and"
        " what the intake holds (counts and checksums) and fails, so operators are notified,"
        " when the national side holds something else than it acknowledged (the fix:"
        " `make feed-resend`). Pause a province's feed with `make feed-pause`."
    ),
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable(FEED_SCHEDULE, timezone=TIMEZONE), assets=MARTS_ASSET
    ),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=4),
    tags=["national", "feed"],
    default_args={
        "owner": "sti-data-engineering",
        "on_failure_callback": failure_notifier(),
    },
) as dag:

    @task(
        retries=4,
        retry_delay=timedelta(minutes=1),
        retry_exponential_backoff=True,
        max_retry_delay=timedelta(minutes=30),
        max_active_tis_per_dagrun=2,
        execution_timeout=timedelta(hours=2),
    )
    def deliver(entity: str) -> dict[str, object]:
        """Deliver one national entity's published changes; the run's figures (XCom)."""
        from dataclasses import asdict

        from connectors.national_feed import deliver as deliver_entity

        with _intake_clients() as clients:
            report = deliver_entity(warehouse_url(), clients, entity)
        print(report.summary())
        return asdict(report)

    @task(trigger_rule="all_done", retries=0, execution_timeout=timedelta(minutes=30))
    def reconcile() -> dict[str, int]:
        """Balances per province and entity in the log; fails when the national side differs
        from what it acknowledged."""
        from connectors.national_reconcile import format_balances
        from connectors.national_reconcile import reconcile as reconcile_feed

        with _intake_clients() as clients:
            balances, differences = reconcile_feed(warehouse_url(), clients)
        print(format_balances(balances, differences))
        national = sum(
            count
            for balance in balances
            for kind, count in balance.kinds.items()
            if kind.startswith("national_")
        )
        if national:
            raise RuntimeError(
                f"the national intake holds {national} records other than it acknowledged:"
                " see the log, then `make feed-resend`"
            )
        return {
            "differences": sum(b.differences for b in balances),
            "rejected_open": sum(b.kinds.get("rejected", 0) for b in balances),
        }

    deliver.expand(entity=FEED_ENTITIES) >> reconcile()
