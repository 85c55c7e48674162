"""Builds the DAGs from the source catalogue.

- One sync DAG per source and entity: extract → land → gate → publish → announce. Runs on the
  source's change events (asset `sti://<source>/<entity>`) with its cron as the safety net;
  a run that published rows updates the asset `sti://published/<entity>` (a run with nothing
  new does not, so it triggers no warehouse build).
- One warehouse DAG: the dbt project (Cosmos, one task per step with its tests), run when any
  entity was published, and nightly; write–audit–publish: begin_publish → dbt builds into the
  build schemas → publish (connectors/warehouse_publish.py), record_outcome fails the run
  naming the failed tests when anything failed.

Tasks stay thin: each calls one plain-Python step (connectors/, expectations/) with the
settings of its Airflow connections.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

import pendulum
from airflow.sdk import DAG, Asset, AssetAny, BaseHook, TaskGroup, task
from airflow.timetables.assets import AssetOrTimeSchedule
from airflow.timetables.trigger import CronTriggerTimetable
from cosmos import ProfileConfig
from cosmos.constants import InvocationMode
from cosmos.operators.local import DbtBuildLocalOperator
from cosmos.profiles.postgres.user_pass import PostgresUserPasswordProfileMapping

from connectors.catalogue import Source

REPO_ROOT = Path(__file__).resolve().parents[1]
DBT_PROJECT = REPO_ROOT / "dbt_project"
WAREHOUSE_CONN_ID = "sti_warehouse"
TIMEZONE = "Asia/Ho_Chi_Minh"


WAREHOUSE_DAG_ID = "warehouse__dbt_build"
WAREHOUSE_SCHEDULE = "30 2 * * *"  # nightly safety net; publishes trigger it in between
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


class _PostgresProfileMapping(PostgresUserPasswordProfileMapping):
    # A warehouse with trust or certificate authentication has no password.
    required_fields: ClassVar[list[str]] = ["host", "user", "dbname"]

    @property
    def profile(self) -> dict[str, Any | None]:
        profile = super().profile
        if not self.conn.password:
            profile["password"] = ""  # dbt-postgres requires the key; trust auth ignores it
        return profile

    @property
    def env_vars(self) -> dict[str, str]:
        return super().env_vars if self.conn.password else {}


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
        start_date=pendulum.datetime(2026, 1, 1, tz=TIMEZONE),
        catchup=False,
        max_active_runs=1,
        tags=[
            source.system,
            source.contract,
            f"province:{source.province_code or 'national'}",
            entity,
        ],
        default_args={"owner": source.owner, "retries": 2, "retry_delay": 60},
    )
    with dag:

        @task
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
            from expectations.gate import publish_batch, recheck_references

            for batch in gated["validated"]:
                publish_batch(warehouse_url(), batch["batch_id"])
            if gated["validated"]:
                # Rows of other entities waiting for these records (e.g. reports for a task
                # that had not arrived yet) are checked again and released if they pass now.
                recheck_references(warehouse_url(), entity)
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


def build_warehouse_dag(entities: list[str]) -> DAG:
    """dbt over the published batches, whenever any entity is published (and nightly), published
    to analysts only when the whole build passed (write–audit–publish)."""
    dag = DAG(
        dag_id=WAREHOUSE_DAG_ID,
        description="dbt: published landing batches → staging → intermediate → marts, then publish",
        doc_md=(
            "Builds the dbt project (`dbt_project/`) with Cosmos, one `dbt build` task per step"
            " (seeds; staging, version tables and snapshots; then resolution, dimensions, facts"
            " and KPI) with its tests. Triggered when any sync DAG publishes a batch (assets"
            f" `sti://published/<entity>`), and nightly at `{WAREHOUSE_SCHEDULE}` ({TIMEZONE})."
            "\n\nWrite–audit–publish (`connectors/warehouse_publish.py`): `begin_publish` opens"
            " a row in `ops.warehouse_publish` with the build's cutoff; dbt builds `marts` and"
            " `reference` into `marts__build` and `reference__build`, reading only the batches"
            " published up to the cutoff; `publish` then swaps the build in atomically (the"
            " views analysts read in `marts` and `reference` point at the new version) and"
            " records which batches it included (`ops.load_batch.publish_id`). If any model or"
            " blocking test fails, nothing is published and `record_outcome` fails the run"
            " naming them."
        ),
        schedule=AssetOrTimeSchedule(
            timetable=CronTriggerTimetable(WAREHOUSE_SCHEDULE, timezone=TIMEZONE),
            assets=AssetAny(*(published_asset(entity) for entity in entities)),
        ),
        start_date=pendulum.datetime(2026, 1, 1, tz=TIMEZONE),
        catchup=False,
        max_active_runs=1,
        tags=["warehouse", "dbt"],
        default_args={"owner": "sti-data-engineering", "retries": 1, "retry_delay": 60},
    )
    with dag:

        @task
        def begin_publish(**context: Any) -> dict[str, Any]:
            from connectors.warehouse_publish import begin_publish as begin

            begun = begin(warehouse_url(), run_id=context["run_id"])
            return {"publish_id": begun.publish_id, "cutoff": begun.cutoff.isoformat()}

        # dbt in three steps, each one `dbt build` (models, snapshots and their tests) in one
        # dbt invocation: a task per model would start dbt ~100 times per run. A failed task
        # names its failed nodes and tests (XCom, record_outcome). Tests spanning two steps
        # run with the later one (indirect selection "buildable").
        with TaskGroup(group_id="dbt") as dbt:
            previous = None
            for layer, (select, exclude) in DBT_LAYERS.items():
                step = DbtBuildLocalOperator(
                    task_id=layer,
                    project_dir=DBT_PROJECT,
                    profile_config=ProfileConfig(
                        profile_name="sti_warehouse",
                        target_name="airflow",
                        profile_mapping=_PostgresProfileMapping(
                            conn_id=WAREHOUSE_CONN_ID, profile_args={"schema": "analytics"}
                        ),
                    ),
                    # dbt shares the Airflow environment: it runs in-process.
                    invocation_mode=InvocationMode.DBT_RUNNER,
                    select=select,
                    exclude=exclude,
                    indirect_selection="buildable",
                    install_deps=False,
                    emit_datasets=False,
                    # Templated per run: every layer builds for the same publish and cutoff.
                    vars=WAP_DBT_VARS,
                    callback=_push_dbt_failures,
                )
                if previous is not None:
                    previous >> step
                previous = step

        @task(retries=0)  # a publish that failed was rolled back; the next run builds again
        def publish(begun: dict[str, Any]) -> dict[str, Any]:
            from connectors.warehouse_publish import publish as swap_in

            return {**begun, "relations": swap_in(warehouse_url(), begun["publish_id"])}

        @task(trigger_rule="all_done", retries=0)
        def record_outcome(**context: Any) -> None:
            """Fails the run, naming the failed tasks, dbt nodes and tests, unless all published."""
            from connectors.warehouse_publish import fail_publish

            ti = context["ti"]
            states = ti.get_task_states(dag_id=ti.dag_id, run_ids=[ti.run_id]).get(ti.run_id, {})
            failed = sorted(t for t, state in states.items() if state == "failed")
            not_run = sorted(t for t, state in states.items() if state == "upstream_failed")
            if not failed and not not_run:
                return
            problems = []
            for task_id in failed:
                nodes = ti.xcom_pull(task_ids=task_id, key=DBT_FAILURES_XCOM)
                problems.append(f"{task_id}: {'; '.join(nodes)}" if nodes else f"{task_id} failed")
            summary = "; ".join(problems) or f"tasks not run: {', '.join(not_run)}"
            begun = ti.xcom_pull(task_ids="begin_publish")
            if begun:
                summary = fail_publish(warehouse_url(), begun["publish_id"], summary)
                raise RuntimeError(
                    f"publish {begun['publish_id']} failed, nothing published: {summary}"
                )
            raise RuntimeError(f"nothing built or published: {summary}")

        begun = begin_publish()
        published = publish(begun)
        begun >> dbt >> published
        outcome = record_outcome()
        for upstream in dag.tasks:  # after everything, whatever its state
            if upstream.task_id != outcome.operator.task_id:
                upstream >> outcome
    return dag


# dbt vars of every dbt task of a warehouse run: build into the build schemas, read the batches
# published up to this publish's cutoff (rendered by Airflow from begin_publish's XCom).
_BEGUN = "ti.xcom_pull(task_ids='begin_publish')"
WAP_DBT_VARS = {
    "wap": True,
    "published_before": "{{ " + _BEGUN + "['cutoff'] }}",
    "publish_id": "{{ " + _BEGUN + "['publish_id'] }}",
}
DBT_FAILURES_XCOM = "dbt_failures"
# The dbt steps of the warehouse DAG, in order: task id → (select, exclude), dbt syntax. The
# last builds what reads the history (resolution, dimensions, facts, KPI) in dependency order.
_HISTORY = "path:models/staging path:models/intermediate/versioned path:snapshots"
DBT_LAYERS = {
    "seeds": ("resource_type:seed", None),
    "history": (_HISTORY, None),
    "marts": (None, f"resource_type:seed {_HISTORY}"),
}


def _push_dbt_failures(project_dir: str, context: Any = None, **_: Any) -> None:
    """Cosmos callback after each dbt invocation, failed or not: its failed nodes to XCom."""
    from connectors.warehouse_publish import failed_nodes_in

    failures = failed_nodes_in(Path(project_dir) / "target")
    if failures and context is not None:
        context["ti"].xcom_push(key=DBT_FAILURES_XCOM, value=failures)
