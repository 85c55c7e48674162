"""The warehouse DAG: dbt (Cosmos) over the published batches, write–audit–publish.

Run when any entity was published (assets `sti://published/<entity>`, from the sync DAGs of
dags/sync_dag_factory.py) and nightly: begin_publish → dbt builds into the build schemas →
publish (connectors/warehouse_publish.py); record_outcome fails the run naming the failed tests
when anything failed. Apart from the sync DAGs' module so that their tasks never import Cosmos.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from airflow.sdk import DAG, AssetAny, TaskGroup, task
from airflow.timetables.assets import AssetOrTimeSchedule
from airflow.timetables.trigger import CronTriggerTimetable
from cosmos import ProfileConfig
from cosmos.constants import InvocationMode
from cosmos.operators.local import DbtBuildLocalOperator
from cosmos.profiles.postgres.user_pass import PostgresUserPasswordProfileMapping

from dags.notifiers import failure_notifier
from dags.sync_dag_factory import (
    MARTS_ASSET,
    REPO_ROOT,
    TIMEZONE,
    WAREHOUSE_CONN_ID,
    WAREHOUSE_DAG_ID,
    published_asset,
    warehouse_url,
)

DBT_PROJECT = REPO_ROOT / "dbt_project"
WAREHOUSE_SCHEDULE = "30 2 * * *"  # nightly safety net; publishes trigger it in between


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
        catchup=False,  # no start date either: a build runs on publishes, nightly after that
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

        # A publish that failed was rolled back; the next run builds again. Its outlet tells
        # whatever reads the marts next (the national feed) that a new version is live.
        @task(retries=0, outlets=[MARTS_ASSET])
        def publish(begun: dict[str, Any], **context: Any) -> dict[str, Any]:
            from connectors.warehouse_publish import publish as swap_in

            relations = swap_in(warehouse_url(), begun["publish_id"])
            context["outlet_events"][MARTS_ASSET].extra = {
                "publish_id": begun["publish_id"],
                "cutoff": begun["cutoff"],
            }
            return {**begun, "relations": relations}

        # One notification per failed build: this task's error names every failure.
        @task(trigger_rule="all_done", retries=0, on_failure_callback=failure_notifier())
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
