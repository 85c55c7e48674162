"""Builds one sync DAG per catalogue source and entity: extract → land → gate → publish → dbt.

Tasks stay thin: each calls one plain-Python step (connectors/, expectations/) with the
settings of its Airflow connections.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

import pendulum
from airflow.sdk import DAG, Asset, BaseHook, task
from airflow.timetables.assets import AssetOrTimeSchedule
from airflow.timetables.trigger import CronTriggerTimetable
from cosmos import (
    DbtTaskGroup,
    ExecutionConfig,
    ProfileConfig,
    ProjectConfig,
    RenderConfig,
)
from cosmos.constants import InvocationMode, LoadMode, TestBehavior
from cosmos.profiles.postgres.user_pass import PostgresUserPasswordProfileMapping

from connectors.catalogue import Source

REPO_ROOT = Path(__file__).resolve().parents[1]
DBT_PROJECT = REPO_ROOT / "dbt_project"
WAREHOUSE_CONN_ID = "sti_warehouse"
TIMEZONE = "Asia/Ho_Chi_Minh"


def change_event_asset(source: Source, entity: str) -> Asset:
    """The asset a source's change events are posted to (POST /api/v2/assets/events)."""
    return Asset(name=f"{source.id}.{entity}.changes", uri=f"sti://{source.id}/{entity}")


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
    dag = DAG(
        dag_id=f"{source.id}__{entity}",
        description=f"{source.name}: {entity} → raw → gate → warehouse",
        doc_md=(
            f"**{source.name}** ({source.contract}), entity `{entity}`.\n\n"
            f"Runs on change events posted to asset `{change_event_asset(source, entity).uri}`, "
            f"and on the safety-net schedule `{source.schedule}` ({TIMEZONE}). "
            "Extracts incrementally, lands one batch in `raw.landed_record`, validates it with "
            "its GX suite (failing rows go to `ops.quarantine`), publishes it, then builds "
            "the dbt models."
        ),
        schedule=AssetOrTimeSchedule(
            timetable=CronTriggerTimetable(source.schedule, timezone=TIMEZONE),
            assets=change_event_asset(source, entity),
        ),
        start_date=pendulum.datetime(2026, 1, 1, tz=TIMEZONE),
        catchup=False,
        max_active_runs=1,
        tags=[source.system, source.contract, f"province:{source.province_code}", entity],
        default_args={"owner": source.owner, "retries": 2, "retry_delay": 60},
    )
    with dag:

        @task
        def extract_and_land() -> dict[str, Any]:
            from connectors.jobs import extract_and_land_registry

            registry = BaseHook.get_connection(source.connection_id)
            result = extract_and_land_registry(
                warehouse_url(),
                source_id=source.id,
                entity=entity,
                base_url=registry.host,
                client_id=registry.login,
                client_secret=registry.password,
            )
            return {
                "batch_id": result.batch_id,
                "records_extracted": result.records_extracted,
                "records_landed": result.records_landed,
            }

        @task(retries=0)
        def gate(landed: dict[str, Any]) -> dict[str, Any]:
            from expectations.gate import run_gate

            result = run_gate(warehouse_url(), landed["batch_id"])
            return {
                "batch_id": result.batch_id,
                "passed": result.passed,
                "quarantined": result.quarantined,
            }

        @task
        def publish(validated: dict[str, Any]) -> None:
            from expectations.gate import publish_batch

            publish_batch(warehouse_url(), validated["batch_id"])

        dbt = DbtTaskGroup(
            group_id="dbt",
            project_config=ProjectConfig(
                dbt_project_path=DBT_PROJECT,
                manifest_path=DBT_PROJECT / "target" / "manifest.json",
            ),
            profile_config=ProfileConfig(
                profile_name="sti_warehouse",
                target_name="airflow",
                profile_mapping=_PostgresProfileMapping(
                    conn_id=WAREHOUSE_CONN_ID, profile_args={"schema": "analytics"}
                ),
            ),
            # dbt shares the Airflow environment, so it runs in-process: no interpreter start-up
            # per model.
            execution_config=ExecutionConfig(invocation_mode=InvocationMode.DBT_RUNNER),
            # One `dbt build` task per model or seed: the node and its tests together. Tests
            # spanning two models (relationships) get their own task after both are built.
            render_config=RenderConfig(
                load_method=LoadMode.DBT_MANIFEST,
                test_behavior=TestBehavior.BUILD,
                should_detach_multiple_parents_tests=True,
            ),
            operator_args={"install_deps": False, "emit_datasets": False},
        )

        publish(gate(extract_and_land())) >> dbt
    return dag
