"""Operator DAGs: manual runs with Params (schedule None), so operations on the pipeline are
triggered from Airflow's UI or REST API and show in its run history and audit log.

- ops__quarantine_replay: re-check open quarantine with the current rules (`make replay`).
- ops__quarantine_release: publish a batch a batch-level rule blocked (`make release`).
- ops__backfill: land, gate and publish a date window of a registry or exchange entity
  without moving its live cursor (`python -m local backfill`).

Tasks stay thin: each calls one plain-Python step (expectations/operations.py,
connectors/backfill.py, connectors/jobs.py, expectations/gate.py). What a run publishes is
announced on the entity's asset `sti://published/<entity>` (through an asset alias, as the
entity is a Param), which starts a warehouse build as a sync run's publish does.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import DAG, AssetAlias, BaseHook, Param, task

from connectors.backfill import BACKFILL_DAG_ID, BACKFILL_SYSTEMS
from connectors.catalogue import load_catalogue
from dags.sync_dag_factory import TIMEZONE, WAREHOUSE_DAG_ID, published_asset, warehouse_url

log = logging.getLogger(__name__)

REPLAY_DAG_ID = "ops__quarantine_replay"
RELEASE_DAG_ID = "ops__quarantine_release"
OWNER = "sti-data-engineering"
# What operator runs publish goes to sti://published/<entity> through this alias.
PUBLISHED_BY_OPERATORS = AssetAlias("published.by_operators")

_SOURCES = load_catalogue()
_SOURCE_IDS = [source.id for source in _SOURCES]
_ENTITIES = sorted({entity for source in _SOURCES for entity in source.entities})
_API_SOURCES = [source for source in _SOURCES if source.system in BACKFILL_SYSTEMS]
_API_ENTITIES = sorted({entity for source in _API_SOURCES for entity in source.entities})


def _operator_dag(dag_id: str, description: str, doc_md: str, params: dict[str, Param]) -> DAG:
    return DAG(
        dag_id=dag_id,
        description=description,
        doc_md=doc_md,
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz=TIMEZONE),
        catchup=False,
        max_active_runs=1,
        tags=["operations"],
        params=params,
        default_args={"owner": OWNER, "retries": 1, "retry_delay": timedelta(minutes=1)},
    )


def _refused(error: Exception) -> Exception:
    """What fails a task at once, without retries, with the error's message."""
    from airflow.sdk.exceptions import AirflowFailException

    return AirflowFailException(str(error))


@task(outlets=[PUBLISHED_BY_OPERATORS])
def announce(outcome: dict[str, Any], **context: Any) -> None:
    """Tells the warehouse what the run published: one event on `sti://published/<entity>`
    per source and entity; a run that published no row is skipped (no warehouse build)."""
    from airflow.sdk.exceptions import AirflowSkipException

    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for batch in outcome["published"]:
        if batch["rows"]:
            grouped.setdefault((batch["source_id"], batch["entity"]), []).append(batch)
    if not grouped:
        raise AirflowSkipException("nothing new was published")
    events = context["outlet_events"][PUBLISHED_BY_OPERATORS]
    for (source_id, entity), batches in grouped.items():
        extra = {
            "source_id": source_id,
            "batch_ids": [batch["batch_id"] for batch in batches],
            "rows": sum(batch["rows"] for batch in batches),
            "operation": context["dag"].dag_id,
        }
        events.add(published_asset(entity), extra=extra)


@task(retries=0, trigger_rule="none_failed")
def nothing_left_out(outcome: dict[str, Any]) -> None:
    """Fails the run, after what passed was published and announced, if a batch was held."""
    if outcome["problems"]:
        raise RuntimeError("not published: " + "; ".join(outcome["problems"]))


def _outcome(outcome: Any) -> dict[str, Any]:
    from expectations.operations import outcome_line

    for line in outcome.lines():
        log.info("%s", line)
    return {
        "published": [asdict(batch) for batch in outcome.published],
        "problems": [outcome_line(result) for result in outcome.still_blocked],
    }


with _operator_dag(
    REPLAY_DAG_ID,
    "Re-check open quarantine with the current rules; publish what passes now",
    (
        "Re-checks the batches holding open quarantine (`ops.open_quarantine`) with the current"
        " GX suites and code lists, after a rule, mapping or code-list fix: rows that pass now"
        " are resolved (`replayed: passes the current rules`) and their batches published;"
        " rows that still fail stay quarantined. Nothing is deleted. The same as `make replay`"
        " (`expectations/operations.py`).\n\n"
        "**Params** (all optional, together they narrow the replay): `source_id`, `entity`,"
        " `batch_id`. Leave them empty to replay all open quarantine.\n\n"
        "Batches that published rows are announced on `sti://published/<entity>`, which"
        f" starts `{WAREHOUSE_DAG_ID}`. The run fails, naming them, if a batch is still"
        " blocked by a batch-level rule (see `ops__quarantine_release`)."
    ),
    {
        "source_id": Param(
            None,
            type=["null", "string"],
            enum=[None, *_SOURCE_IDS],
            title="Source",
            description="Only this source's quarantine (empty: every source).",
        ),
        "entity": Param(
            None,
            type=["null", "string"],
            enum=[None, *_ENTITIES],
            title="Entity",
            description="Only this entity's quarantine (empty: every entity).",
        ),
        "batch_id": Param(
            None,
            type=["null", "integer"],
            minimum=1,
            title="Load batch",
            description="Only this batch (ops.load_batch.batch_id; empty: every batch).",
        ),
    },
):

    @task
    def replay(**context: Any) -> dict[str, Any]:
        from expectations.operations import replay as replay_quarantine

        params = context["params"]
        outcome = replay_quarantine(
            warehouse_url(), params["source_id"], params["batch_id"], params["entity"]
        )
        return _outcome(outcome)

    replayed = replay()
    announce(replayed) >> nothing_left_out(replayed)


with _operator_dag(
    RELEASE_DAG_ID,
    "Publish a batch a batch-level rule blocked, once someone confirmed it is genuine",
    (
        "Publishes a load batch that the gate blocked with a batch-level rule (too many rows"
        " quarantined, or a volume drop), once someone confirmed it is genuine, e.g. the"
        " registry really archived most of its records. The batch is gated again without the"
        " batch-level rules: its rows still have to pass their expectations, and those that"
        " fail stay quarantined. The same as `make release` (`expectations/operations.py`).\n\n"
        "**Params** (both required): `batch_id` (`ops.load_batch.batch_id`, state `failed`"
        " with a `blocked_reason`) and `note`, why the batch is genuine; it is recorded in"
        " `ops.load_batch.release_note` with `released_at`.\n\n"
        f"The published batch is announced on `sti://published/<entity>`, which starts"
        f" `{WAREHOUSE_DAG_ID}`. A batch that is not blocked by a batch-level rule is refused."
    ),
    {
        "batch_id": Param(
            type="integer",
            minimum=1,
            title="Load batch",
            description="The blocked batch (ops.load_batch.batch_id).",
        ),
        "note": Param(
            type="string",
            minLength=1,
            pattern=r"\S",
            title="Why it is genuine",
            description="Recorded in the ledger (ops.load_batch.release_note).",
        ),
    },
):

    @task
    def release(**context: Any) -> dict[str, Any]:
        from expectations.operations import release as release_batch

        params = context["params"]
        try:
            outcome = release_batch(warehouse_url(), params["batch_id"], params["note"])
        except ValueError as error:  # not blocked by a batch-level rule, or no note
            raise _refused(error) from None
        return _outcome(outcome)

    announce(release())


with _operator_dag(
    BACKFILL_DAG_ID,
    "Land, gate and publish a date window of a registry or exchange entity",
    (
        "Re-extracts the records of one registry or exchange entity updated in a range of days"
        " (Vietnam time, both days included) and lands, gates and publishes them like the"
        " entity's sync DAG, as one batch with extraction `backfill` and the window in"
        " `ops.load_batch` (`updated_since`, `updated_until`). The live cursor"
        " (`ops.source_cursor`) is neither read nor moved: the sync runs go on as before, and"
        " skip as already landed what the backfill landed. The batch is gated with the"
        " source's rules, except the volume rule (a window is as large as it is).\n\n"
        "**Params** (all required): `source_id` (a registry or exchange source of the"
        " catalogue), `entity` (one of its entities), `date_from` and `date_to` (YYYY-MM-DD,"
        " `date_from` ≤ `date_to`). Spreadsheet drops have no date range: each file lands once,"
        " as it arrives. `check` fails the run at once, saying why, on a bad request.\n\n"
        "The load takes the source entity's landing lock, as the sync run does: if the sync"
        " is landing, `extract_and_land` fails and is retried a minute later (and a sync that"
        " starts while the backfill lands waits for its retry the same way). One backfill runs"
        " at a time, outside the source's host pool. Also triggered by"
        " `python -m local backfill SOURCE ENTITY FROM TO` (REST API)."
    ),
    {
        "source_id": Param(
            type="string",
            examples=[source.id for source in _API_SOURCES],
            title="Source",
            description="A registry or exchange source of the catalogue (dags/sources.yml).",
        ),
        "entity": Param(
            type="string",
            examples=_API_ENTITIES,
            title="Entity",
            description="One of the source's entities.",
        ),
        "date_from": Param(
            type="string",
            format="date",
            title="From (day, Vietnam time)",
            description="First day of the window, YYYY-MM-DD.",
        ),
        "date_to": Param(
            type="string",
            format="date",
            title="To (day, Vietnam time)",
            description="Last day of the window (included), YYYY-MM-DD.",
        ),
    },
):

    def _request(params: dict[str, Any]) -> Any:
        from connectors.backfill import BackfillRequestError, backfill_request

        try:
            return backfill_request(
                load_catalogue(),
                params["source_id"],
                params["entity"],
                params["date_from"],
                params["date_to"],
            )
        except BackfillRequestError as error:
            raise _refused(error) from None

    @task(retries=0)
    def check(**context: Any) -> dict[str, str]:
        request = _request(context["params"])
        window = request.window
        log.info(
            "backfill of %s/%s: records updated in [%s, %s)",
            request.source.id,
            request.entity,
            window.start.isoformat(),
            window.end.isoformat(),
        )
        return request.params()

    @task(retries=3)
    def extract_and_land(checked: dict[str, str]) -> dict[str, Any]:
        from connectors.jobs import SourceConnection
        from connectors.jobs import extract_and_land as run

        request = _request(checked)
        conn = BaseHook.get_connection(request.source.connection_id)
        connection = SourceConnection(
            host=conn.host or "", login=conn.login, password=conn.password, extra=conn.extra_dejson
        )
        landing = run(warehouse_url(), request.source, request.entity, connection, request.window)
        (batch,) = landing.batches
        return {
            **checked,
            "batch_id": batch.batch_id,
            "records_extracted": batch.records_extracted,
            "records_landed": batch.records_landed,
        }

    @task
    def gate(landed: dict[str, Any]) -> dict[str, Any]:
        from expectations.gate import BatchRules, GateFailedError, run_gate

        request = _request(landed)
        rules = BatchRules.from_mapping(dict(request.source.quality))
        try:
            result = run_gate(warehouse_url(), landed["batch_id"], rules)
        except GateFailedError as error:
            raise _refused(error) from None
        return {**landed, "rows": result.rows - result.quarantined}

    @task
    def publish(gated: dict[str, Any]) -> dict[str, Any]:
        from expectations.gate import publish_batch, recheck_references

        publish_batch(warehouse_url(), gated["batch_id"])
        # Rows of other entities waiting for these records are checked again, as after a sync.
        recheck_references(warehouse_url(), gated["entity"])
        batch = {key: gated[key] for key in ("source_id", "entity", "batch_id", "rows")}
        return {"published": [batch], "problems": []}

    announce(publish(gate(extract_and_land(check()))))
