"""The quality gate: validate one landed batch with its GX suite, in the database.

Every batch is checked by the landing suite (`landing.json`: the envelope and what landing could
not repair) plus its entity's suite (`<contract>/<entity>.json`) when there is one. An entity
suite comes with a typed projection (`<entity>.sql`) of `raw.landed` that also carries the
landing columns. The gate exposes the batch through a temporary view of that projection,
runs Great Expectations 1.x on it with SQL pushdown, and copies the rows that fail row-level
expectations into `ops.quarantine` with GX's own unexpected-rows query, so no row travels to
Python. The batch is marked `validated` only when every expectation succeeds within its
`mostly` tolerance; otherwise it is marked `failed` and `GateFailedError` names what failed.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

SUITES_DIR = Path(__file__).resolve().parent
_SEEDS_DIR = SUITES_DIR.parent / "dbt_project" / "seeds"


def _research_field_codes() -> list[str]:
    with (_SEEDS_DIR / "research_fields_qd12_2008.csv").open(encoding="utf-8") as seed:
        return [row["field_code"] for row in csv.DictReader(seed) if row["field_level"] == "3"]


# Values that suites refer to as {"$PARAMETER": name}, taken from the project's code lists so
# the gate and the warehouse agree on them.
SUITE_PARAMETERS: dict[str, Callable[[], Any]] = {
    "research_field_codes": _research_field_codes,
}


class GateFailedError(RuntimeError):
    """The batch broke a blocking expectation; nothing of it is published."""


@dataclass(frozen=True, slots=True)
class ExpectationOutcome:
    name: str  # e.g. not_null(record_id)
    success: bool
    unexpected: int
    reason: str


@dataclass(frozen=True, slots=True)
class GateResult:
    batch_id: int
    rows: int
    passed: int
    quarantined: int
    success: bool
    outcomes: list[ExpectationOutcome] = field(default_factory=list)

    def failures(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success]


LANDING_SUITE = SUITES_DIR / "landing.json"


def suite_path(contract: str, entity: str) -> Path:
    return SUITES_DIR / contract.replace("-", "_") / f"{entity}.json"


def load_suite(contract: str, entity: str) -> tuple[dict[str, Any], str]:
    """The suite a batch of `entity` is validated with, and the SQL of its projection."""
    landing = json.loads(LANDING_SUITE.read_text(encoding="utf-8"))
    entity_file = suite_path(contract, entity)
    if not entity_file.exists():
        projection = LANDING_SUITE.with_name(landing["meta"]["projection"])
        suite = {**landing, "name": f"{contract}.{entity}"}
        return suite, projection.read_text(encoding="utf-8")
    own = json.loads(entity_file.read_text(encoding="utf-8"))
    suite = {**own, "expectations": landing["expectations"] + own["expectations"]}
    names = [_expectation_name(e) for e in suite["expectations"]]
    if len(set(names)) != len(names):
        raise ValueError(
            f"{entity_file}: two expectations of the same type on the same column"
            " (the landing checks of landing.json apply to every entity already)"
        )
    projection = entity_file.with_name(own["meta"]["projection"])
    return suite, projection.read_text(encoding="utf-8")


def run_gate(warehouse_url: str, batch_id: int) -> GateResult:
    """Validate landed batch `batch_id`; quarantine failing rows; raise if the batch is blocked."""
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        batch = conn.execute(
            "select entity, contract, state from ops.load_batch where batch_id = %s", (batch_id,)
        ).fetchone()
        if batch is None:
            raise ValueError(f"no load batch {batch_id}")
        entity, contract, state = batch
        if state not in ("landed", "validated"):
            raise ValueError(f"batch {batch_id} is {state}; only landed batches can be validated")
        suite, projection = load_suite(contract, entity)

        view = sql.Identifier("ops", f"gate_batch_{batch_id}")
        conn.execute(
            sql.SQL(
                "create or replace view {} as select * from ({}) as typed where batch_id = {}"
            ).format(view, sql.SQL(projection), sql.Literal(batch_id))
        )
        try:
            (rows,) = conn.execute(sql.SQL("select count(*) from {}").format(view)).fetchone()
            results = _validate(warehouse_url, f"gate_batch_{batch_id}", suite) if rows else []
            personal = _personal_fields(contract, entity)
            result = _record_outcome(conn, batch_id, rows, suite, results, personal)
        finally:
            conn.execute(sql.SQL("drop view if exists {}").format(view))

    log.info(
        "batch %s: %s rows, %s passed, %s quarantined, gate %s",
        batch_id,
        result.rows,
        result.passed,
        result.quarantined,
        "passed" if result.success else "FAILED",
    )
    if not result.success:
        details = "; ".join(
            f"{o.name}: {o.unexpected} rows ({o.reason})" for o in result.failures()
        )
        raise GateFailedError(f"batch {batch_id} blocked by its quality gate: {details}")
    return result


def publish_batch(warehouse_url: str, batch_id: int) -> None:
    """Make a validated batch visible to the warehouse models."""
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        updated = conn.execute(
            "update ops.load_batch set state = 'published', published_at = now()"
            " where batch_id = %s and state in ('validated', 'published') returning batch_id",
            (batch_id,),
        ).fetchone()
        if updated is None:
            raise ValueError(f"batch {batch_id} is not validated; refusing to publish it")


def _validate(warehouse_url: str, table: str, suite: dict[str, Any]) -> list[Any]:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx  # imported here: it takes seconds and only the gate needs it
    from great_expectations.core import ExpectationSuite

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False}
    source = context.data_sources.add_postgres(
        name="warehouse", connection_string=_sqlalchemy_url(warehouse_url)
    )
    asset = source.add_table_asset(name=table, table_name=table, schema_name="ops")
    batch_definition = asset.add_batch_definition_whole_table("batch")
    gx_suite = context.suites.add(
        ExpectationSuite(name=suite["name"], expectations=suite["expectations"])
    )
    validation = context.validation_definitions.add(
        gx.ValidationDefinition(name=table, data=batch_definition, suite=gx_suite)
    )
    parameters = {name: SUITE_PARAMETERS[name]() for name in _parameter_names(suite)}
    outcome = validation.run(
        expectation_parameters=parameters,
        result_format={
            "result_format": "SUMMARY",
            "unexpected_index_column_names": ["landed_id"],
            "return_unexpected_index_query": True,
            "partial_unexpected_count": 0,
            "exclude_unexpected_values": True,
        },
    )
    return list(outcome.results)


def _record_outcome(
    conn: psycopg.Connection,
    batch_id: int,
    rows: int,
    suite: dict[str, Any],
    results: list[Any],
    personal: tuple[str, ...],
) -> GateResult:
    outcomes: list[ExpectationOutcome] = []
    by_name = {_expectation_name(r.expectation_config.to_json_dict()): r for r in results}
    with conn.transaction():
        for expectation in suite["expectations"] if results else []:
            result = by_name.get(_expectation_name(expectation))
            if result is None:
                raise RuntimeError(
                    f"GX returned no result for {_expectation_name(expectation)}; "
                    f"got {sorted(by_name)}"
                )
            if result.exception_info and result.exception_info.get("raised_exception"):
                raise RuntimeError(
                    f"expectation {expectation['type']} could not run: "
                    f"{result.exception_info.get('exception_message')}"
                )
            name = _expectation_name(expectation)
            unexpected = int(result.result.get("unexpected_count") or 0)
            meta = expectation.get("meta", {})
            reason = meta.get("reason", name)
            outcomes.append(ExpectationOutcome(name, bool(result.success), unexpected, reason))
            query = result.result.get("unexpected_index_query")
            if unexpected and query:
                _quarantine(conn, batch_id, name, meta, query, personal)
        (quarantined,) = conn.execute(
            "select count(distinct landed_id) from ops.quarantine where batch_id = %s", (batch_id,)
        ).fetchone()
        success = all(o.success for o in outcomes)
        if success:
            conn.execute(
                "update ops.load_batch set state = 'validated', validated_at = now(),"
                " records_passed = %s, records_quarantined = %s, error = null"
                " where batch_id = %s",
                (rows - quarantined, quarantined, batch_id),
            )
        else:
            failed = ", ".join(o.name for o in outcomes if not o.success)
            conn.execute(
                "update ops.load_batch set state = 'failed', failed_at = now(),"
                " records_passed = %s, records_quarantined = %s, error = %s where batch_id = %s",
                (rows - quarantined, quarantined, f"quality gate failed: {failed}", batch_id),
            )
    return GateResult(batch_id, rows, rows - quarantined, quarantined, success, outcomes)


def _quarantine(
    conn: psycopg.Connection,
    batch_id: int,
    expectation: str,
    meta: dict[str, Any],
    unexpected_rows_query: str,
    personal: tuple[str, ...],
) -> None:
    reason = sql.Literal(meta.get("reason", expectation))
    reason_vi = sql.Literal(meta.get("reason_vi"))
    if "reason_column" in meta:  # the row says what is wrong with it, e.g. landing_issue
        detail = sql.SQL("r.") + sql.Identifier(meta["reason_column"])
        reason = sql.SQL("{} || ': ' || {}").format(reason, detail)
        reason_vi = sql.SQL("{} || ': ' || {}").format(reason_vi, detail)
    # GX's query selects the failing rows of the batch view; it is SQL GX compiled from our own
    # suite, so it is embedded as-is.
    conn.execute(
        sql.SQL(
            "insert into ops.quarantine (batch_id, landed_id, source_id, entity, record_id,"
            " version, expectation, reason, reason_vi, payload)"
            " select r.batch_id, r.landed_id, r.source_id, r.entity, r.record_id, r.version,"
            " {expectation}, {reason}, {reason_vi}, r.payload - {personal}::text[]"
            " from raw.landed_record as r"
            " where r.batch_id = {batch_id} and r.landed_id in"
            " (select failing.landed_id from ({query}) as failing)"
            " on conflict (landed_id, expectation) do nothing"
        ).format(
            expectation=sql.Literal(expectation),
            reason=reason,
            reason_vi=reason_vi,
            batch_id=sql.Literal(batch_id),
            # Personal data stays in the landing zone: the quarantine keeps the rest.
            personal=sql.Literal(list(personal)),
            query=sql.SQL(unexpected_rows_query.strip().rstrip(";")),
        )
    )


def _personal_fields(contract: str, entity: str) -> tuple[str, ...]:
    """Fields the contract's field spec declares personal data (kind `personal`)."""
    from connectors.contract_rules import standardiser

    spec = standardiser(contract, entity)
    return spec.personal_fields if spec is not None else ()


def _expectation_name(expectation: dict[str, Any]) -> str:
    kwargs = expectation["kwargs"]
    columns = kwargs.get("column") or ",".join(
        str(kwargs[k]) for k in ("column_A", "column_B") if k in kwargs
    )
    short = expectation["type"].removeprefix("expect_")
    return f"{short}({columns})" if columns else short


def _parameter_names(suite: dict[str, Any]) -> set[str]:
    names = set()
    for expectation in suite["expectations"]:
        for value in expectation["kwargs"].values():
            if isinstance(value, dict) and "$PARAMETER" in value:
                names.add(value["$PARAMETER"])
    return names


def _sqlalchemy_url(url: str) -> str:
    scheme, rest = url.split("://", 1)
    if scheme in ("postgres", "postgresql"):
        scheme = "postgresql+psycopg"
    return f"{scheme}://{rest}"
