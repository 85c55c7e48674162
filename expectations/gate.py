"""The quality gate: validate one landed batch with its GX suite, in the database.

Every batch is checked by the landing suite (`landing.json`: the envelope, what landing could
not repair, personal data in clear) plus its entity's suite (`<contract>/<entity>.json`) when
there is one. An entity suite comes with a typed projection (`<entity>.sql`) of `raw.landed`.

How a batch is gated:
1. The projection of the batch's rows is materialised once into an unlogged table
   `ops.gate_batch_<id>` (GX then scans narrow typed rows, not jsonb, once per expectation).
2. Great Expectations 1.x validates that table with SQL pushdown.
3. Row level: rows failing a `blocking` expectation go to `ops.quarantine` with the reason and
   the payload (without personal data), using GX's own unexpected-rows query, so no row travels
   to Python; rows failing only `warning` expectations go to `ops.quality_warning` and are
   published all the same.
4. Batch level (`BatchRules`): the batch is blocked when the share of quarantined rows is above
   a threshold, or when a full extraction or a file is far smaller than the source's recent
   ones of the same kind (an incremental batch is never judged by its size).
5. Quarantine that this run resolves is marked, never deleted: rows of the batch that now pass
   (a replay after a rule or mapping fix), and older versions of records re-sent fixed.
6. The ledger (`ops.load_batch`) gets passed / warned / quarantined counts and the state
   (validated, or failed with what blocked it); an HTML report is written for the run.

Every landed batch reaches a verdict: a gate run that died (the database restarted, the worker
was killed) leaves its batch `landed`, and the next run of the entity gates every batch still
`landed` (`landed_batches`), dropping the tables such runs left behind (`drop_leftover_tables`).
"""

from __future__ import annotations

import csv
import json
import logging
import os
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

SUITES_DIR = Path(__file__).resolve().parent
LANDING_SUITE = SUITES_DIR / "landing.json"
_SEEDS_DIR = SUITES_DIR.parent / "dbt_project" / "seeds"
SEVERITIES = ("blocking", "warning")
# Columns every projection carries before its own (the gate and the quarantine need them).
LANDING_COLUMNS = (
    "batch_id", "landed_id", "source_id", "record_id", "version", "updated_at", "deleted",
    "landing_issue", "record",
)  # fmt: skip


@cache
def _seed(name: str) -> tuple[dict[str, str], ...]:
    with (_SEEDS_DIR / f"{name}.csv").open(encoding="utf-8") as seed:
        return tuple(csv.DictReader(seed))


def _codes(seed: str, column: str, **where: str | Callable[[str], bool]) -> list[str]:
    def keep(row: dict[str, str]) -> bool:
        return all(test(row[k]) if callable(test) else row[k] == test for k, test in where.items())

    return sorted({row[column] for row in _seed(seed) if keep(row)})


def _commune_pairs(period: Callable[[str], bool]) -> list[str]:
    rows = _seed("admin_communes")
    return sorted({f"{r['province_code']}:{r['code']}" for r in rows if period(r["valid_to"])})


def _current(valid_to: str) -> bool:
    return valid_to == ""


def _before_2025(valid_to: str) -> bool:
    return valid_to != ""


# Values suites refer to as {"$PARAMETER": name}, taken from the project's seeds so the gate and
# the warehouse agree on the code lists.
SUITE_PARAMETERS: dict[str, Callable[[], list[str]]] = {
    "research_field_codes": lambda: _codes(
        "research_fields_qd12_2008", "field_code", field_level="3"
    ),
    "province_codes_2025": lambda: _codes("admin_provinces", "code", valid_to=_current),
    "province_codes_before_2025": lambda: _codes("admin_provinces", "code", valid_to=_before_2025),
    "commune_codes_2025": lambda: _codes("admin_communes", "code", valid_to=_current),
    "commune_codes_before_2025": lambda: _codes("admin_communes", "code", valid_to=_before_2025),
    # "province:commune" of every commune and the province it lies in, per period.
    "commune_in_province_2025": lambda: _commune_pairs(_current),
    "commune_in_province_before_2025": lambda: _commune_pairs(_before_2025),
    "vsic_2018_divisions": lambda: _codes("vsic_divisions", "division_code", vsic_version="2018"),
    "vsic_2025_divisions": lambda: _codes("vsic_divisions", "division_code", vsic_version="2025"),
}


class GateFailedError(RuntimeError):
    """The batch broke a batch-level rule; nothing of it is published."""


class GateBusyError(RuntimeError):
    """Another process is gating the batch right now."""


@dataclass(frozen=True, slots=True)
class BatchRules:
    """When a whole batch is blocked rather than published without its bad rows.

    - `max_quarantined_share`: more quarantined rows than this share means something upstream
      is broken (a mapping, a code list), not a few bad records. Only for batches of at least
      `share_min_rows` rows: in a batch of two records one bad record says nothing of the source.
    - `max_volume_drop`: a full extraction or a file with fewer rows than (1 - this) × the
      median of the source's last `volume_window` batches of the same entity and kind is
      blocked, e.g. a registry that suddenly sends 90% fewer records. Only once the median
      reaches `volume_min_baseline` rows. Incremental batches are never judged by their size:
      they hold what changed since the cursor, and in an event-driven pipeline most are small
      (a run with nothing new is a success with nothing to publish); nor are backfills, which
      hold the window an operator asked for.
    """

    max_quarantined_share: float = 0.10
    share_min_rows: int = 20
    max_volume_drop: float = 0.90
    volume_window: int = 5
    volume_min_baseline: int = 100

    @classmethod
    def from_mapping(cls, settings: dict[str, Any] | None) -> BatchRules:
        return cls(**(settings or {}))


@dataclass(frozen=True, slots=True)
class ExpectationOutcome:
    name: str  # e.g. not_null(record_id)
    severity: str
    unexpected: int
    reason: str


@dataclass(frozen=True, slots=True)
class GateResult:
    batch_id: int
    rows: int
    passed: int  # rows with no issue
    warned: int  # rows published with a warning
    quarantined: int  # rows held back
    success: bool
    blocked_reason: str | None = None
    outcomes: list[ExpectationOutcome] = field(default_factory=list)
    resolved: int = 0  # quarantine rows this run resolved
    report: Path | None = None


def suite_path(contract: str, entity: str) -> Path:
    return SUITES_DIR / contract.replace("-", "_") / f"{entity}.json"


def load_suite(contract: str, entity: str) -> tuple[dict[str, Any], str]:
    """The suite a batch of `entity` is validated with, and the SQL of its projection."""
    landing = json.loads(LANDING_SUITE.read_text(encoding="utf-8"))
    entity_file = suite_path(contract, entity)
    if not entity_file.exists():
        suite, where = {**landing, "name": f"{contract}.{entity}"}, LANDING_SUITE
    else:
        own = json.loads(entity_file.read_text(encoding="utf-8"))
        suite = {**own, "expectations": landing["expectations"] + own["expectations"]}
        where = entity_file
    _check_suite(suite, where)
    projection = where.with_name(suite["meta"]["projection"])
    return suite, projection.read_text(encoding="utf-8")


def _check_suite(suite: dict[str, Any], where: Path) -> None:
    names = [_expectation_name(e) for e in suite["expectations"]]
    if len(set(names)) != len(names):
        raise ValueError(
            f"{where}: two expectations of the same type on the same column"
            " (the landing checks of landing.json apply to every entity already)"
        )
    for name, expectation in zip(names, suite["expectations"], strict=True):
        meta = expectation.get("meta", {})
        if meta.get("severity") not in SEVERITIES:
            raise ValueError(f"{where}: {name} needs meta.severity, one of {SEVERITIES}")
        if not meta.get("reason"):
            raise ValueError(f"{where}: {name} needs meta.reason")
        if meta.get("waits_for") and meta["waits_for"] not in suite.get("meta", {}).get(
            "references", ()
        ):
            raise ValueError(
                f"{where}: {name} waits_for {meta['waits_for']!r}, which is not in the"
                " suite's meta.references (nothing would check its rows again)"
            )
        if "mostly" in expectation["kwargs"]:
            raise ValueError(
                f"{where}: {name} sets `mostly`; how many bad rows a batch may have is a"
                " batch rule (BatchRules), row-level expectations quarantine every failing row"
            )


def suites_referring_to(entity: str) -> list[tuple[str, str]]:
    """(contract, entity) of every suite whose reference checks read `entity`."""
    found = []
    for path in sorted(SUITES_DIR.glob("*/*.json")):
        meta = json.loads(path.read_text(encoding="utf-8")).get("meta", {})
        if entity in meta.get("references", ()):
            found.append((path.parent.name.replace("_", "-"), path.stem))
    return found


def run_gate(
    warehouse_url: str,
    batch_id: int,
    rules: BatchRules | None = None,
    report_dir: Path | None = None,
) -> GateResult:
    """Validate landed batch `batch_id`; quarantine failing rows; raise if the batch is blocked.

    Running it again on a batch re-checks it with the current suite (a replay): rows that now
    pass leave quarantine, rows that now fail enter it.
    """
    rules = rules or BatchRules()
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        batch = conn.execute(
            "select source_id, entity, contract, state, released_at is not null"
            " from ops.load_batch where batch_id = %s",
            (batch_id,),
        ).fetchone()
        if batch is None:
            raise ValueError(f"no load batch {batch_id}")
        source_id, entity, contract, state, released = batch
        if state == "extracting":
            raise ValueError(f"batch {batch_id} is still extracting; it cannot be validated yet")
        if not _try_gate_lock(conn, batch_id):
            raise GateBusyError(f"batch {batch_id} is being gated by another run")
        # Counted before the work: a run killed half-way leaves the attempt in the ledger.
        conn.execute(
            "update ops.load_batch set gate_attempts = gate_attempts + 1 where batch_id = %s",
            (batch_id,),
        )
        suite, projection = load_suite(contract, entity)
        table = f"gate_batch_{batch_id}"
        personal, skip = _pii_fields(contract, entity)
        try:
            gx_suite, code_checks = _code_list_checks_in_sql(conn, suite)
            rows = _materialise(conn, table, projection, batch_id, skip, code_checks)
            try:
                results = _validate(warehouse_url, table, gx_suite) if rows else []
                result = _record_outcome(
                    conn, batch_id, state, rows, suite, results, personal, rules, released
                )
            finally:
                conn.execute(
                    sql.SQL("drop table if exists {}").format(sql.Identifier("ops", table))
                )
        except Exception as exc:
            _note_gate_error(warehouse_url, batch_id, exc)
            raise

    from expectations.report import write_report

    result = write_report(result, source_id, entity, suite, report_dir)
    log.info(
        "batch %s (%s/%s): %s rows, %s passed, %s warned, %s quarantined, %s resolved; gate %s;"
        " report file://%s",
        batch_id,
        source_id,
        entity,
        result.rows,
        result.passed,
        result.warned,
        result.quarantined,
        result.resolved,
        "passed" if result.success else f"BLOCKED ({result.blocked_reason})",
        result.report,
    )
    if not result.success:
        raise GateFailedError(
            f"batch {batch_id} blocked by its quality gate: {result.blocked_reason}"
        )
    return result


def _try_gate_lock(conn: psycopg.Connection, batch_id: int) -> bool:
    """The batch's gate lock, held by this session until it ends (a killed run's is freed)."""
    (locked,) = conn.execute(
        "select pg_try_advisory_lock(hashtextextended(%s, 0))", (f"gate:{batch_id}",)
    ).fetchone()
    return bool(locked)


def _note_gate_error(warehouse_url: str, batch_id: int, exc: Exception) -> None:
    """A gate run that ended without a verdict: its error in the ledger, the batch left as it
    was (the next run gates it again). The database may be what failed: then the log has it."""
    try:
        with psycopg.connect(warehouse_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(
                "update ops.load_batch set error = %s where batch_id = %s",
                (f"gate did not finish: {type(exc).__name__}: {exc}"[:2000], batch_id),
            )
    except psycopg.Error:
        log.exception("batch %s: could not record the gate's error in the ledger", batch_id)


def landed_batches(warehouse_url: str, source_id: str, entity: str) -> list[int]:
    """Batches of a source entity waiting for their gate: this run's, and any an earlier run
    left `landed` when it died after landing (oldest first)."""
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        return [
            batch_id
            for (batch_id,) in conn.execute(
                "select batch_id from ops.load_batch"
                " where source_id = %s and entity = %s and state = 'landed' order by batch_id",
                (source_id, entity),
            )
        ]


@dataclass(slots=True)
class GateRound:
    """What gating a source entity's waiting batches did."""

    validated: list[GateResult] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)  # batch-level rules broken
    not_gated: list[str] = field(default_factory=list)  # runs that ended without a verdict


def gate_landed(
    warehouse_url: str, source_id: str, entity: str, rules: BatchRules | None = None
) -> GateRound:
    """Gate every batch of a source entity still `landed`, each on its own (one blocked or
    failing batch does not hold back the others), after dropping dead runs' tables."""
    drop_leftover_tables(warehouse_url)
    outcome = GateRound()
    for batch_id in landed_batches(warehouse_url, source_id, entity):
        try:
            outcome.validated.append(run_gate(warehouse_url, batch_id, rules))
        except GateFailedError as error:
            outcome.blocked.append(str(error))
        except GateBusyError as error:
            log.info("%s", error)
        except Exception as error:
            log.exception("batch %s could not be gated", batch_id)
            outcome.not_gated.append(f"batch {batch_id} not gated: {type(error).__name__}: {error}")
    return outcome


def drop_leftover_tables(warehouse_url: str) -> list[str]:
    """Drop the batch tables of gate runs that died (no session holds their gate lock)."""
    dropped = []
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        tables = conn.execute(
            "select tablename from pg_tables where schemaname = 'ops'"
            " and tablename ~ '^gate_batch_[0-9]+$'"
        ).fetchall()
        for (table,) in tables:
            batch_id = int(table.removeprefix("gate_batch_"))
            if not _try_gate_lock(conn, batch_id):
                continue  # a gate is running on it
            try:
                conn.execute(
                    sql.SQL("drop table if exists {}").format(sql.Identifier("ops", table))
                )
                dropped.append(table)
            finally:
                conn.execute(
                    "select pg_advisory_unlock(hashtextextended(%s, 0))", (f"gate:{batch_id}",)
                )
    if dropped:
        log.warning("dropped tables left by gate runs that died: %s", ", ".join(dropped))
    return dropped


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


def replay_quarantine(
    warehouse_url: str,
    source_id: str | None = None,
    batch_id: int | None = None,
    entity: str | None = None,
    rules: BatchRules | None = None,
) -> list[GateResult]:
    """Re-check the batches holding open quarantine (of a source, entity or batch) with the
    current suites and code lists, e.g. after a rule or mapping fix; publish those that pass.

    Rows that pass now are resolved ("replayed"); rows that still fail stay open. Batches that
    are still blocked are reported in the results (success False), not raised.
    """
    with psycopg.connect(warehouse_url) as conn:
        batch_ids = [
            row[0]
            for row in conn.execute(
                "select distinct q.batch_id from ops.quarantine as q"
                " where q.resolved_at is null"
                " and (%(source)s::text is null or q.source_id = %(source)s)"
                " and (%(entity)s::text is null or q.entity = %(entity)s)"
                " and (%(batch)s::bigint is null or q.batch_id = %(batch)s)"
                " order by 1",
                {"source": source_id, "entity": entity, "batch": batch_id},
            )
        ]
    return _regate(warehouse_url, batch_ids, rules)


def recheck_references(warehouse_url: str, entity: str) -> list[GateResult]:
    """After a batch of `entity` was published: re-check the rows of other entities that wait
    for its records (e.g. reports that arrived before their task)."""
    results = []
    for _contract, referring in suites_referring_to(entity):
        results += recheck_waiting(warehouse_url, referring, waits_for=entity)
    return results


def recheck_waiting(
    warehouse_url: str,
    entity: str,
    source_id: str | None = None,
    waits_for: str | None = None,
) -> list[GateResult]:
    """Re-gate the batches of `entity` (of one source, when given) holding rows that wait for
    records of another entity (`meta.waits_for`, or only `waits_for`), and publish them.

    Called by both sides: by the referred entity's run after it publishes, and by the waiting
    entity's own run after it publishes. Entities run in parallel, so a batch may be gated
    while the records it waits for are being published; whichever side comes second sees both.
    """

    def waiting(meta: dict[str, Any]) -> bool:
        return bool(meta.get("waits_for")) and waits_for in (None, meta["waits_for"])

    names = [
        _expectation_name(expectation)
        for path in SUITES_DIR.glob(f"*/{entity}.json")
        for expectation in json.loads(path.read_text(encoding="utf-8"))["expectations"]
        if waiting(expectation.get("meta", {}))
    ]
    if not names:
        return []
    with psycopg.connect(warehouse_url) as conn:
        batch_ids = [
            batch_id
            for (batch_id,) in conn.execute(
                "select distinct batch_id from ops.quarantine"
                " where resolved_at is null and entity = %s and expectation = any(%s)"
                " and (%s::text is null or source_id = %s) order by 1",
                (entity, names, source_id, source_id),
            )
        ]
    return _regate(warehouse_url, batch_ids, None)


def release_batch(warehouse_url: str, batch_id: int, note: str) -> GateResult:
    """An operator confirms that a batch blocked by a batch-level rule is genuine (e.g. the
    registry really archived most of its records): re-gate it without the batch-level rules
    (rows still need to pass their expectations) and publish it."""
    if not note.strip():
        raise ValueError("say why the batch is released (it is recorded in the ledger)")
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        updated = conn.execute(
            "update ops.load_batch set released_at = now(), release_note = %s"
            " where batch_id = %s and state = 'failed' and blocked_reason is not null"
            " returning batch_id",
            (note, batch_id),
        ).fetchone()
    if updated is None:
        raise ValueError(f"batch {batch_id} is not blocked by a batch-level rule")
    (result,) = _regate(warehouse_url, [batch_id], None)
    return result


def _regate(
    warehouse_url: str, batch_ids: Iterable[int], rules: BatchRules | None
) -> list[GateResult]:
    results = []
    for batch_id in batch_ids:
        try:
            result = run_gate(warehouse_url, batch_id, rules)
        except GateBusyError:
            # Its own run is gating it right now and re-checks its waiting rows when it has
            # published (recheck_waiting): nothing is left behind by skipping it here.
            log.info("batch %s is being gated by its own run: not re-checked here", batch_id)
            continue
        except GateFailedError as error:
            log.warning("%s", error)
            with psycopg.connect(warehouse_url) as conn:
                rows, quarantined, reason = conn.execute(
                    "select records_landed, records_quarantined, blocked_reason"
                    " from ops.load_batch where batch_id = %s",
                    (batch_id,),
                ).fetchone()
            results.append(GateResult(batch_id, rows, 0, 0, quarantined, False, reason))
            continue
        publish_batch(warehouse_url, batch_id)
        results.append(result)
    return results


@dataclass(frozen=True, slots=True)
class CodeListCheck:
    column: sql.Composable  # the value when it is not in the list, else null
    join: sql.Composable  # the list, joined to the batch's rows


def _code_list_checks_in_sql(
    conn: psycopg.Connection, suite: dict[str, Any]
) -> tuple[dict[str, Any], list[CodeListCheck]]:
    """In-set checks against a code list ({"$PARAMETER": name}) run as SQL joins to
    `ops.code_list`: GX inlines a value set into every query it compiles and copies it through
    its configuration objects, which takes seconds per expectation for the 10,047 communes.

    Returns the suite GX runs (each such check becomes a not-null check of a column holding the
    value when it is not in the list) and the columns to add to the batch table.
    """
    expectations, columns, lists = [], [], set()
    for expectation in suite["expectations"]:
        value_set = expectation["kwargs"].get("value_set")
        if expectation["type"] != "expect_column_values_to_be_in_set" or not (
            isinstance(value_set, dict) and "$PARAMETER" in value_set
        ):
            expectations.append(expectation)
            continue
        column, list_name = expectation["kwargs"]["column"], value_set["$PARAMETER"]
        lists.add(list_name)
        unknown = f"unknown_{column}"
        # A left join per list (a hash join over the batch), not a look-up per row.
        alias = sql.Identifier(f"code_list_{len(columns)}")
        columns.append(
            CodeListCheck(
                sql.SQL(
                    "case when typed.{column} is not null and {alias}.code is null"
                    " then typed.{column}::text end as {unknown}"
                ).format(
                    column=sql.Identifier(column), alias=alias, unknown=sql.Identifier(unknown)
                ),
                sql.SQL(
                    "left join (select code from ops.code_list where list_name = {list}) as {alias}"
                    " on {alias}.code = typed.{column}::text"
                ).format(list=sql.Literal(list_name), alias=alias, column=sql.Identifier(column)),
            )
        )
        rewritten = {
            "type": "expect_column_values_to_be_null",
            "kwargs": {"column": unknown},
            # the suite's own name travels with it, for outcomes and quarantine
            "meta": {**expectation.get("meta", {}), "suite_name": _expectation_name(expectation)},
        }
        expectations.append(rewritten)
    _sync_code_lists(conn, sorted(lists))
    return {**suite, "expectations": expectations}, columns


def _sync_code_lists(conn: psycopg.Connection, names: list[str]) -> None:
    """Load the code lists into ops.code_list where the table's copy differs from the seeds."""
    for name in names:
        codes = sorted(SUITE_PARAMETERS[name]())
        with conn.transaction():
            conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (name,))
            stored = conn.execute(
                "select coalesce(array_agg(code order by code), '{}') from ops.code_list"
                " where list_name = %s",
                (name,),
            ).fetchone()[0]
            if stored == codes:
                continue
            conn.execute("delete from ops.code_list where list_name = %s", (name,))
            with conn.cursor().copy("copy ops.code_list (list_name, code) from stdin") as copy:
                for code in codes:
                    copy.write_row((name, code))


def _materialise(
    conn: psycopg.Connection,
    table: str,
    projection: str,
    batch_id: int,
    skip: tuple[str, ...],
    code_checks: list[CodeListCheck],
) -> int:
    """The batch's typed rows, with what the personal-data scan and the code-list checks
    found, as a narrow table."""
    projection_sql = sql.SQL(projection.strip().rstrip(";"))
    described = conn.execute(
        sql.SQL("select * from ({}) as typed limit 0").format(projection_sql)
    ).description
    columns = [column.name for column in described or ()]
    missing = [c for c in LANDING_COLUMNS if c not in columns]
    if missing:
        raise ValueError(f"the projection of batch {batch_id} lacks the landing columns {missing}")
    target = sql.Identifier("ops", table)
    conn.execute(sql.SQL("drop table if exists {}").format(target))
    conn.execute(
        sql.SQL(
            "create unlogged table {target} as"
            " select {columns},"
            # the cheap pre-filter inline: most records have nothing to look at more closely
            " case when (typed.record - {skip}::text[])::text ~ ops.personal_data_pattern('any')"
            " then ops.personal_data_in(typed.record, {skip}) end as personal_data_in_clear"
            " from ({projection}) as typed {joins} where typed.batch_id = {batch_id}"
        ).format(
            target=target,
            columns=sql.SQL(", ").join(
                [sql.Identifier("typed", c) for c in columns if c != "record"]
                + [check.column for check in code_checks]
            ),
            joins=sql.SQL(" ").join(check.join for check in code_checks),
            skip=sql.Literal(list(skip)),
            projection=projection_sql,
            batch_id=sql.Literal(batch_id),
        )
    )
    conn.execute(sql.SQL("create index on {} (landed_id)").format(target))
    conn.execute(sql.SQL("analyze {}").format(target))
    (rows,) = conn.execute(sql.SQL("select count(*) from {}").format(target)).fetchone()
    return int(rows)


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
    state: str,
    rows: int,
    suite: dict[str, Any],
    results: list[Any],
    personal: tuple[str, ...],
    rules: BatchRules,
    released: bool,
) -> GateResult:
    outcomes: list[ExpectationOutcome] = []
    by_name = {_suite_name(r.expectation_config.to_json_dict()): r for r in results}
    with conn.transaction():
        # What fails in this run, to tell what a re-run resolved.
        conn.execute(
            "create temporary table if not exists gate_failing"
            " (landed_id bigint, expectation text) on commit drop"
        )
        for expectation in suite["expectations"] if results else []:
            name = _expectation_name(expectation)
            result = by_name.get(name)
            if result is None:
                raise RuntimeError(f"GX returned no result for {name}; got {sorted(by_name)}")
            if result.exception_info and result.exception_info.get("raised_exception"):
                raise RuntimeError(
                    f"expectation {name} could not run: "
                    f"{result.exception_info.get('exception_message')}"
                )
            meta = expectation["meta"]
            unexpected = int(result.result.get("unexpected_count") or 0)
            outcomes.append(ExpectationOutcome(name, meta["severity"], unexpected, meta["reason"]))
            query = result.result.get("unexpected_index_query")
            if unexpected and not query:
                raise RuntimeError(f"GX gave no query for the {unexpected} rows failing {name}")
            if unexpected:
                _hold_rows(conn, batch_id, name, expectation["kwargs"], meta, query, personal)
        conn.execute("analyze gate_failing")  # a temporary table has no statistics otherwise
        resolved = _resolve(conn, batch_id)
        quarantined, warned = conn.execute(
            "select"
            " (select count(distinct landed_id) from ops.quarantine"
            "  where batch_id = %(b)s and resolved_at is null),"
            " (select count(distinct w.landed_id) from ops.quality_warning as w"
            "  where w.batch_id = %(b)s and not exists (select 1 from ops.quarantine as q"
            "  where q.landed_id = w.landed_id and q.resolved_at is null))",
            {"b": batch_id},
        ).fetchone()
        blocked = (
            None
            if released
            else _batch_rule_broken(conn, batch_id, rows, _waiting_expectations(suite), rules)
        )
        passed = rows - quarantined - warned
        if blocked is None:
            new_state = "published" if state == "published" else "validated"
            conn.execute(
                "update ops.load_batch set state = %s, validated_at = now(),"
                " records_passed = %s, records_warned = %s, records_quarantined = %s,"
                " blocked_reason = null, error = null where batch_id = %s",
                (new_state, passed, warned, quarantined, batch_id),
            )
        else:
            conn.execute(
                "update ops.load_batch set state = 'failed', failed_at = now(),"
                " records_passed = %s, records_warned = %s, records_quarantined = %s,"
                " blocked_reason = %s, error = %s where batch_id = %s and state <> 'published'",
                (passed, warned, quarantined, blocked, f"quality gate: {blocked}", batch_id),
            )
    return GateResult(
        batch_id, rows, passed, warned, quarantined, blocked is None, blocked, outcomes, resolved
    )


def _hold_rows(
    conn: psycopg.Connection,
    batch_id: int,
    expectation: str,
    kwargs: dict[str, Any],
    meta: dict[str, Any],
    unexpected_rows_query: str,
    personal: tuple[str, ...],
) -> None:
    """Quarantine (blocking) or flag (warning) the rows GX's query returns."""
    reason = sql.Literal(meta["reason"])
    reason_vi = sql.Literal(meta.get("reason_vi"))
    if "reason_column" in meta:  # the row says what is wrong with it, e.g. landing_issue
        detail = sql.SQL("failing.") + sql.Identifier(meta["reason_column"])
        reason = sql.SQL("{} || ': ' || {}").format(reason, detail)
        reason_vi = sql.SQL("{} || ': ' || {}").format(reason_vi, detail)
    # GX's query selects the failing rows of the batch table; it is SQL GX compiled from our own
    # suite, so it is embedded as-is.
    failing = sql.SQL(
        "(select gate.* from ops.{table} as gate where gate.landed_id in"
        " (select unexpected.landed_id from ({query}) as unexpected) and {ignored}) as failing"
    ).format(
        table=sql.Identifier(f"gate_batch_{batch_id}"),
        query=sql.SQL(unexpected_rows_query.strip().rstrip(";")),
        ignored=_not_ignored(kwargs),
    )
    values = {"expectation": sql.Literal(expectation), "reason": reason, "reason_vi": reason_vi}
    if meta["severity"] == "warning":
        conn.execute(
            sql.SQL(
                "insert into ops.quality_warning (batch_id, landed_id, source_id, entity,"
                " record_id, expectation, reason, reason_vi)"
                " select r.batch_id, r.landed_id, r.source_id, r.entity, r.record_id,"
                " {expectation}, {reason}, {reason_vi}"
                " from {failing} join raw.landed_record as r using (landed_id)"
                " on conflict (landed_id, expectation) do update"
                " set reason = excluded.reason, reason_vi = excluded.reason_vi"
            ).format(failing=failing, **values)
        )
        return
    conn.execute(
        "insert into gate_failing select landed_id, %s from " + failing.as_string(conn),
        (expectation,),
    )
    # A row that failed before, was resolved and fails again is open again: it must not be
    # published while it fails.
    conn.execute(
        sql.SQL(
            "insert into ops.quarantine (batch_id, landed_id, source_id, entity, record_id,"
            " version, expectation, reason, reason_vi, payload)"
            " select r.batch_id, r.landed_id, r.source_id, r.entity, r.record_id, r.version,"
            " {expectation}, {reason}, {reason_vi},"
            " ops.without_personal_data(r.payload, {personal})"
            " from {failing} join raw.landed_record as r using (landed_id)"
            " on conflict (landed_id, expectation) do update"
            " set resolved_at = null, resolution = null, reason = excluded.reason,"
            " reason_vi = excluded.reason_vi"
            " where ops.quarantine.resolved_at is not null"
            " or ops.quarantine.reason <> excluded.reason"
        ).format(failing=failing, personal=sql.Literal(list(personal)), **values)
    )


def _not_ignored(kwargs: dict[str, Any]) -> sql.Composable:
    """The rows a column-pair expectation ignores, left out of its failing rows: GX 1.x counts
    them right, but for some pair expectations (e.g. equality) its unexpected-rows query returns
    rows with a missing value all the same."""
    pair = [sql.Identifier("gate", kwargs[k]) for k in ("column_A", "column_B") if k in kwargs]
    ignore = kwargs.get("ignore_row_if")
    if len(pair) != 2 or ignore in (None, "neither"):
        return sql.SQL("true")
    a, b = pair
    if ignore == "both_values_are_missing":
        return sql.SQL("({} is not null or {} is not null)").format(a, b)
    if ignore == "either_value_is_missing":
        return sql.SQL("({} is not null and {} is not null)").format(a, b)
    raise ValueError(f"ignore_row_if {ignore!r} is not supported by the gate")


def _resolve(conn: psycopg.Connection, batch_id: int) -> int:
    """Resolve what this run shows fixed; returns how many quarantine rows it resolved."""
    # Rows of this batch that no longer fail an expectation they failed before (replay).
    replayed = conn.execute(
        "update ops.quarantine as q set resolved_at = now(),"
        " resolution = 'replayed: passes the current rules'"
        " where q.batch_id = %s and q.resolved_at is null and not exists"
        " (select 1 from gate_failing as f"
        "  where f.landed_id = q.landed_id and f.expectation = q.expectation)",
        (batch_id,),
    ).rowcount
    # Older versions of records this batch re-sent: fixed when the new version passed.
    superseded = conn.execute(
        "update ops.quarantine as q set resolved_at = now(), resolution = case"
        " when failing.landed_id is null"
        "  then format('fixed: version %%s re-sent (landed_id %%s, batch %%s) passed the gate',"
        "   newer.version, newer.landed_id, newer.batch_id)"
        " else format('superseded: version %%s re-sent (landed_id %%s), itself quarantined',"
        "   newer.version, newer.landed_id) end"
        " from raw.landed_record as newer"
        " left join (select distinct landed_id from gate_failing) as failing"
        "  on failing.landed_id = newer.landed_id"
        " where newer.batch_id = %s and q.resolved_at is null"
        " and q.source_id = newer.source_id and q.entity = newer.entity"
        " and q.record_id = newer.record_id and q.batch_id <> newer.batch_id"
        " and q.version <= newer.version",
        (batch_id,),
    ).rowcount
    return replayed + superseded


def _waiting_expectations(suite: dict[str, Any]) -> list[str]:
    """Expectations whose rows wait for a record of another entity (`meta.waits_for`)."""
    return [
        _expectation_name(e) for e in suite["expectations"] if e.get("meta", {}).get("waits_for")
    ]


def _batch_rule_broken(
    conn: psycopg.Connection, batch_id: int, rows: int, waiting: list[str], rules: BatchRules
) -> str | None:
    # Rows held only because what they refer to has not been published yet do not count: in a
    # pipeline that runs entities in parallel, deals often arrive before their listings, and
    # they flow on by themselves when the listings are published (recheck_references).
    (quarantined,) = conn.execute(
        "select count(distinct landed_id) from ops.quarantine"
        " where batch_id = %s and resolved_at is null and expectation <> all(%s)",
        (batch_id, waiting),
    ).fetchone()
    if rows >= rules.share_min_rows and quarantined / rows > rules.max_quarantined_share:
        return (
            f"{quarantined} of {rows} rows ({quarantined / rows:.1%}) quarantined, more than"
            f" the {rules.max_quarantined_share:.0%} a batch may have"
        )
    recent = [
        count
        for (count,) in conn.execute(
            "select b.records_landed from ops.load_batch as b, ops.load_batch as this"
            " where this.batch_id = %s and this.extraction in ('full', 'file')"
            " and b.source_id = this.source_id and b.entity = this.entity"
            " and b.extraction = this.extraction and b.batch_id < this.batch_id"
            " and b.state in ('validated', 'published')"
            " order by b.batch_id desc limit %s",
            (batch_id, rules.volume_window),
        )
    ]
    if not recent:
        return None
    median = statistics.median(recent)
    if median >= rules.volume_min_baseline and rows < (1 - rules.max_volume_drop) * median:
        return (
            f"volume dropped: {rows} rows against a median of {median:g} over the last"
            f" {len(recent)} comparable batches ({1 - rows / median:.0%} fewer, at most"
            f" {rules.max_volume_drop:.0%} allowed); if it is genuine, release the batch"
        )
    return None


def _pii_fields(contract: str, entity: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The fields declared personal data, and the fields the personal-data scan skips (those
    and enterprise codes, whose 10 digits read like a phone number)."""
    from connectors.contract_rules import standardiser

    spec = standardiser(contract, entity)
    if spec is None:
        return (), ()
    codes = tuple(name for name, f in spec.fields.items() if f.kind == "mst")
    return spec.personal_fields, spec.personal_fields + codes


def _expectation_name(expectation: dict[str, Any]) -> str:
    kwargs = expectation["kwargs"]
    columns = kwargs.get("column") or ",".join(
        str(kwargs[k]) for k in ("column_A", "column_B") if k in kwargs
    )
    short = expectation["type"].removeprefix("expect_")
    return f"{short}({columns})" if columns else short


def _suite_name(expectation: dict[str, Any]) -> str:
    """The suite's name of an expectation GX ran, also when the gate rewrote it."""
    return (expectation.get("meta") or {}).get("suite_name") or _expectation_name(expectation)


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
