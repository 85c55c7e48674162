"""Builds the sync DAGs from the source catalogue, and what the other DAGs share with them.

One sync DAG per source and entity: extract → land → gate → publish → announce. Runs on the
source's change events (asset `sti://<source>/<entity>`) with its cron as the safety net; a run
that published rows updates the asset `sti://published/<entity>` (a run with nothing new does
not, so it triggers no warehouse build: dags/warehouse_dag_factory.py).

Tasks stay thin: each calls one plain-Python step (connectors/, expectations/) with the
settings of its Airflow connections.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from airflow.sdk import DAG, Asset, BaseHook, task
from airflow.timetables.assets import AssetOrTimeSchedule
from airflow.timetables.trigger import CronTriggerTimetable

from connectors.catalogue import Source
from dags.notifiers import failure_notifier

REPO_ROOT = Path(__file__).resolve().parents[1]
WAREHOUSE_CONN_ID = "sti_warehouse"
TIMEZONE = "Asia/Ho_Chi_Minh"


WAREHOUSE_DAG_ID = "warehouse__dbt_build"
SYSTEM_DOCS = {
    "registry": "Extracts incrementally (updated_since + cursor pages) from the registry API.",
    "exchange": "Extracts incrementally (modified window + numbered pages) from the exchange API.",
    "spreadsheet_drop": "Lands each new spreadsheet file of the drop location once (by content).",
}


def change_event_asset(source: Source, entity: str) -> Asset:
    """The asset a source's change events are posted to (POST /api/v2/assets/events)."""
    return Asset(name=f"{source.id}.{entity}.changes", uri=f"sti://{source.id}/{entity}")


def published_asset(entity: str) -> Asset:
    """Updated whenever a validated batch of `entity` is published to the warehouse."""
    return Asset(name=f"published.{entity}", uri=f"sti://published/{entity}")


# Updated when a build is published to analysts (write–audit–publish passed); the national
# feed is scheduled on it.
MARTS_ASSET = Asset(name="warehouse.marts", uri="sti://warehouse/marts")


def warehouse_url() -> str:
    conn = BaseHook.get_connection(WAREHOUSE_CONN_ID)
    auth = quote(conn.login or "", safe="")
    if conn.password:
        auth += ":" + quote(conn.password, safe="")
    return f"postgresql://{auth}@{conn.host}:{conn.port or 5432}/{conn.schema}"


def build_sync_dag(source: Source, entity: str) -> DAG:
    events = (
        f"Change events: subscription `{source.events.subscription}`, signed with the key in"
        f" connection `{source.events.signing_secret}`, posted to asset"
        f" `{change_event_asset(source, entity).uri}`."
        if source.events
        else f"Asset `{change_event_asset(source, entity).uri}` triggers a run when updated."
    )
    province = f"province {source.province_code}" if source.province_code else "national"
    dag = DAG(
        dag_id=f"{source.id}__{entity}",
        description=f"{source.name}: {entity} → raw → gate → published",
        doc_md=(
            f"**{source.name}** ({source.system}, {province}), contract `{source.contract}`,"
            f" entity `{entity}`, connection `{source.connection_id}`.\n\n"
            f"{SYSTEM_DOCS[source.system]} {events} Safety-net schedule `{source.schedule}`"
            f" ({TIMEZONE}).\n\n"
            "Lands one batch in `raw.landed_record` (original payload, Vietnamese repairs in"
            " `standardised`/`repairs`), validates it with its GX suite (rows failing a blocking"
            " expectation go to `ops.quarantine` with the reason, warnings to"
            " `ops.quality_warning`; the batch is blocked when too many rows fail or it is far"
            " smaller than usual), then publishes it, which triggers"
            f" `{WAREHOUSE_DAG_ID}`." + (f"\n\n{source.docs}" if source.docs else "")
        ),
        schedule=AssetOrTimeSchedule(
            timetable=CronTriggerTimetable(source.schedule, timezone=TIMEZONE),
            assets=change_event_asset(source, entity),
        ),
        # No start date: the safety net's first run is its next cron time after the DAG is
        # unpaused, not one fired at once for the last cron time (a first load is triggered).
        catchup=False,
        max_active_runs=1,
        tags=[
            source.system,
            source.contract,
            f"province:{source.province_code or 'national'}",
            entity,
        ],
        default_args={
            "owner": source.owner,
            "retries": 2,
            "retry_delay": 60,
            # A run's later tasks before other runs' first ones: a change published sooner.
            "weight_rule": "upstream",
            # A failed task or a blocked batch: the log, and a webhook or e-mail if configured.
            "on_failure_callback": failure_notifier(),
        },
    )
    with dag:
        # Only extraction calls the source's host: the pool bounds calls per host across DAGs.
        @task(pool=source.host_pool.name)
        def extract_and_land() -> dict[str, Any]:
            from connectors.jobs import SourceConnection
            from connectors.jobs import extract_and_land as run

            conn = BaseHook.get_connection(source.connection_id)
            connection = SourceConnection(
                host=conn.host or "",
                login=conn.login,
                password=conn.password,
                extra=conn.extra_dejson,
            )
            landing = run(warehouse_url(), source, entity, connection)
            return {
                "batch_ids": [batch.batch_id for batch in landing.batches],
                "records_landed": sum(batch.records_landed for batch in landing.batches),
                "rejected": landing.rejected,
            }

        @task
        def gate(landed: dict[str, Any]) -> dict[str, Any]:
            """Gates every batch of the entity still `landed`: this run's and any an earlier run
            left without a verdict when it died. A retry (the database restarted) gates what is
            still left; a blocked batch fails the run without retrying."""
            from airflow.sdk.exceptions import AirflowFailException

            from expectations.gate import BatchRules, gate_landed

            done = gate_landed(
                warehouse_url(), source.id, entity, BatchRules.from_mapping(dict(source.quality))
            )
            if done.not_gated and not done.validated:
                raise RuntimeError("; ".join(done.not_gated))
            if done.blocked and not done.validated:
                raise AirflowFailException("; ".join(done.blocked))
            validated = [
                {"batch_id": r.batch_id, "rows": r.rows - r.quarantined} for r in done.validated
            ]
            return {**landed, "validated": validated, "blocked": done.blocked + done.not_gated}

        @task
        def publish(gated: dict[str, Any], **context: Any) -> dict[str, Any]:
            from connectors.event_dispatch import mark_done
            from expectations.gate import publish_batch, recheck_references, recheck_waiting

            for batch in gated["validated"]:
                publish_batch(warehouse_url(), batch["batch_id"])
            if gated["validated"]:
                # Rows of other entities waiting for these records (e.g. reports for a task
                # that had not arrived yet) are checked again and released if they pass now,
                # and so are this entity's own waiting rows: what they wait for may have been
                # published while this run gated them.
                recheck_references(warehouse_url(), entity)
                recheck_waiting(warehouse_url(), entity, source_id=source.id)
            if source.events and not (gated["blocked"] or gated["rejected"]):
                # Inbox events dispatched before this run started are covered by it: their
                # change preceded the extraction. Not when a batch was held back (blocked).
                mark_done(warehouse_url(), source.id, entity, context["dag_run"].start_date)
            return gated

        @task(outlets=[published_asset(entity)])
        def announce(published: dict[str, Any], **context: Any) -> None:
            """Tells the warehouse (asset `sti://published/<entity>`) what was published; a run
            that published no row is skipped, so it triggers no warehouse build."""
            from airflow.sdk.exceptions import AirflowSkipException

            batches = [batch for batch in published["validated"] if batch["rows"]]
            if not batches:
                raise AirflowSkipException("nothing new was published")
            context["outlet_events"][published_asset(entity)].extra = {
                "source_id": source.id,
                "batch_ids": [batch["batch_id"] for batch in batches],
                "rows": sum(batch["rows"] for batch in batches),
            }

        @task(retries=0, trigger_rule="none_failed")
        def nothing_left_out(published: dict[str, Any]) -> None:
            """Fails the run, after what passed was published, if a batch or file was left out."""
            problems = published["blocked"] + published["rejected"]
            if problems:
                raise RuntimeError("not published: " + "; ".join(problems))

        published = publish(gate(extract_and_land()))
        announce(published) >> nothing_left_out(published)
    return dag
