"""Quality-gate benchmark: the GX gate on a large batch against one hand-written SQL pass.

    .venv/bin/python -m bench.gate [--rows 1000000] [--repeat 3]
    .venv/bin/python -m bench.gate --rows 20000 --repeat 1 --no-write     # smoke, seconds

On the server of WAREHOUSE_URL (default postgresql://postgres@127.0.0.1:5432/postgres) it
creates a database ``bench_gate_<pid>`` (dropped at the end) and lands one batch of ``--rows``
S&T tasks (entity ``st_task``, contract ``registry-api-v1``, source ``ninh_binh_registry``)
through :func:`connectors.landing.land_extraction` with the contract's landing rules, exactly as
the registry job lands them. The records are the stand-in registry's (:class:`TaskGenerator`),
and one in twenty (5 %) is spoiled with one of :data:`BAD_KINDS`, a defect the suite catches.

Then, ``--repeat`` times, in alternating order and after a CHECKPOINT each:

1. **The gate**: :func:`expectations.gate.run_gate` on the batch, with
   ``BatchRules(max_quarantined_share=1.0)`` (the bad share is not what is measured). Between
   runs the batch's quarantine and warnings are cleared and the batch is set back to
   ``landed``, so every run does the full work. Where its time goes is measured by wrapping
   the gate's steps in this process only (materialise, GX set-up and validation, quarantine
   writes, the rest) and by counting GX's SQL statements.
2. **The hand-written pass**: one SQL statement over ``raw.landed`` for the batch that
   computes every check of the loaded suite (:func:`expectations.gate.load_suite`; its SQL is
   derived from the expectation list, see :func:`check_sql`) on the suite's typed projection,
   the personal-data scan included, writes the failing rows' ``(landed_id, expectation)`` into
   ``bench.hand_failing`` (as the gate writes quarantine) and returns one count per check.

After each pair of runs, the rows each check flagged are compared: the gate's quarantine and
warnings against ``bench.hand_failing``, and GX's unexpected counts against the hand counts.
The run aborts when they differ: the two must compute the same checks.

Targets (issue 4): gate <= 2x the hand-written pass, and <= 15 s, on 1,000,000 rows; the
benchmark passes (exit code 0) when the medians do. Results are printed and appended to
``bench/results/gate.md`` (unless ``--no-write``).
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from connectors.contract_rules import api_rules
from connectors.landing import land_extraction
from connectors.warehouse import ensure_schema
from expectations import gate
from local.postgres import drop_database, ensure_database
from local.registry.data import TaskGenerator

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS = REPO_ROOT / "bench" / "results" / "gate.md"
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"

TARGET_RATIO = 2.0  # gate seconds / hand-written pass seconds, at most
TARGET_SECONDS = 15.0  # gate seconds at most

SOURCE_ID = "ninh_binh_registry"
ENTITY = "st_task"
CONTRACT = "registry-api-v1"
WARMUP_SOURCE_ID = "bench_warmup_registry"  # a tiny batch gated once, untimed
WARMUP_ROWS = 200
BAD_EVERY = 20  # one record in 20 is spoiled: 5 %
PAGE_SIZE = 10_000

RULES = gate.BatchRules(max_quarantined_share=1.0)


def _with(**changes: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda record: {**record, **changes}


def _appended(key: str, text: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda record: {**record, key: f"{record[key] or ''}{text}"}


# Defects the st_task suite (with the landing checks) catches; the n-th spoiled record gets
# kind n % len(BAD_KINDS). Some are caught at landing (landing_issue), the rest by the gate.
# None changes a field's JSON type: landing's drift check would reject the whole batch.
BAD_KINDS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "missing_id": _with(id=None),
    "version_zero": _with(version=0),
    "updated_at_not_a_timestamp": _with(updated_at="2024-05-01 08:00"),
    "nul_in_title": _appended("title", "\x00"),
    "phone_in_title": _appended("title", " (liên hệ 0912345678)"),
    "email_in_investigator": _appended("principal_investigator", " <an.nguyen@example.vn>"),
    "blank_title": _with(title="   "),
    "no_host_organisation": _with(host_organisation_name=None),
    "unknown_field_code": _with(field_code="10999"),
    "no_field_code": _with(field_code=None),
    "unknown_task_level": _with(task_level="district"),
    "unknown_task_type": _with(task_type="study"),
    "unknown_status": _with(status="done"),
    "unknown_rating": _with(acceptance_rating="good"),
    "mst_check_digit": _with(host_organisation_code="0100109107"),
    "unknown_province": _with(province_code="99"),
    "negative_state_budget": lambda r: {
        **r,
        "budget_state_million_vnd": -1 - r["budget_state_million_vnd"],
    },
    "negative_other_budget": _with(budget_other_million_vnd=-50),
    "budget_in_vnd": _with(budget_state_million_vnd=850_500_000),
    "large_budget": _with(budget_state_million_vnd=150_000, budget_other_million_vnd=0),  # warning
    "start_not_a_date": _with(start_date="2023-02-30"),
    "end_before_start": lambda r: {**r, "start_date": r["end_date"], "end_date": r["start_date"]},
    "acceptance_before_end": lambda r: {
        **r,
        "status": "accepted",
        "acceptance_date": r["start_date"],
        "acceptance_rating": "passed",
    },
    "accepted_without_date": _with(status="accepted", acceptance_date=None),
}


@dataclass(frozen=True)
class Page:
    records: list[dict[str, Any]]


@dataclass
class Run:
    rows: int
    gate_seconds: float
    hand_seconds: float
    quarantined: int  # distinct rows the gate quarantined
    warned: int  # distinct rows published with a warning only
    steps: dict[str, float] = field(default_factory=dict)  # the gate's breakdown, seconds
    gx_queries: int = 0  # SQL statements GX ran
    gx_query_seconds: float = 0.0  # their time, as seen by SQLAlchemy
    checks: dict[str, CheckCount] = field(default_factory=dict)  # per expectation
    load: float = 0.0  # 1-minute load average when the run started (others' work included)

    @property
    def ratio(self) -> float:
        return self.gate_seconds / self.hand_seconds

    @property
    def passed(self) -> bool:
        return self.ratio <= TARGET_RATIO and self.gate_seconds <= TARGET_SECONDS


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.gate",
        description="The GX quality gate on one large batch vs one hand-written SQL pass.",
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="default: %(default)s")
    parser.add_argument("--repeat", type=int, default=3, help="pairs of runs (default 3)")
    parser.add_argument(
        "--no-write", action="store_true", help=f"do not append to {RESULTS.relative_to(REPO_ROOT)}"
    )
    parser.add_argument("--note", default="", help="a remark for the results section")
    args = parser.parse_args(argv)
    if args.rows < 1 or args.repeat < 1:
        parser.error("--rows and --repeat must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started_at = datetime.now(UTC)
    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    runs, machine = run_benchmark(args.rows, args.repeat)
    print()
    print(report(args, runs, machine, started_at))
    if not args.no_write:
        append_results(args, runs, machine, started_at)
        _say(f"results appended to {RESULTS.relative_to(REPO_ROOT)}")
    return 0 if verdict(runs) else 1


def run_benchmark(rows: int, repeat: int) -> tuple[list[Run], str]:
    """Land the batch, then time gate and hand-written pass `repeat` times each."""
    with fresh_database() as (url, server):
        pg_version = prepare(url)
        seconds = time.perf_counter()
        batch_id = land(url, SOURCE_ID, rows)
        _say(f"landed {rows:,} rows as batch {batch_id} in {time.perf_counter() - seconds:.1f} s")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("vacuum analyze raw.landed_record")
        seconds = time.perf_counter()
        import great_expectations  # noqa: F401  (a fresh process pays this once; not timed)

        _say(f"great_expectations imported in {time.perf_counter() - seconds:.1f} s (not timed)")
        with tempfile.TemporaryDirectory(prefix="bench-gate-reports-") as reports:
            # Warm-up, untimed: GX's first validation in a process, and the caches.
            gate.run_gate(url, land(url, WARMUP_SOURCE_ID, WARMUP_ROWS), RULES, Path(reports))
            hand_pass(url, batch_id)
            runs = []
            for number in range(1, repeat + 1):
                runs.append(one_run(url, batch_id, Path(reports), gate_first=number % 2 == 1))
                _say(_run_line(number, runs[-1]))
    return runs, machine_description(server, pg_version)


# --- Database -------------------------------------------------------------------------------


@contextmanager
def fresh_database() -> Iterator[tuple[str, str]]:
    """Database bench_gate_<pid> on WAREHOUSE_URL's server (or the default); dropped on exit."""
    configured = os.environ.get("WAREHOUSE_URL")
    admin_url = configured or DEFAULT_URL
    server = "WAREHOUSE_URL" if configured else DEFAULT_URL
    dbname = f"bench_gate_{os.getpid()}"
    drop_database(admin_url, dbname)  # left over by a killed run with the same pid
    ensure_database(admin_url, dbname)
    _say(f"database {dbname} created on the {server} server")
    try:
        yield urlunsplit(urlsplit(admin_url)._replace(path=f"/{dbname}")), server
    finally:
        drop_database(admin_url, dbname)
        _say(f"database {dbname} dropped")


def prepare(url: str) -> str:
    """The warehouse schema and the hand-written pass's scratch table; the server version."""
    ensure_schema(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("create schema if not exists bench")
        # Like ops.quarantine: one row per failing row and expectation.
        conn.execute(
            "create table if not exists bench.hand_failing (landed_id bigint not null,"
            " expectation text not null, primary key (landed_id, expectation))"
        )
        return conn.execute("show server_version").fetchone()[0]


def _checkpoint(conn: psycopg.Connection) -> None:
    with suppress(psycopg.errors.InsufficientPrivilege):
        conn.execute("checkpoint")


# --- The batch ------------------------------------------------------------------------------


def records(rows: int) -> Iterator[dict[str, Any]]:
    """The stand-in registry's S&T tasks 0..rows-1, one in BAD_EVERY spoiled (see BAD_KINDS)."""
    generator = TaskGenerator(records=rows, bad_share=0.0)
    spoil = list(BAD_KINDS.values())
    for i in range(rows):
        record = generator.record(i)
        if i % BAD_EVERY == BAD_EVERY // 2:
            record = spoil[(i // BAD_EVERY) % len(spoil)](record)
        yield record


def land(url: str, source_id: str, rows: int) -> int:
    """Land `rows` records as one batch, as the registry job does; the batch id."""

    def pages(_since: object) -> Iterator[Page]:
        page: list[dict[str, Any]] = []
        for record in records(rows):
            page.append(record)
            if len(page) == PAGE_SIZE:
                yield Page(page)
                page = []
        if page:
            yield Page(page)

    return land_extraction(
        url,
        source_id=source_id,
        entity=ENTITY,
        contract=CONTRACT,
        extract=pages,
        rules=api_rules(CONTRACT, ENTITY),
    ).batch_id


# --- One pair of runs -----------------------------------------------------------------------


def one_run(url: str, batch_id: int, reports: Path, gate_first: bool) -> Run:
    reset(url, batch_id)
    load = os.getloadavg()[0]
    order = (time_gate, time_hand) if gate_first else (time_hand, time_gate)
    outcome: dict[str, Any] = {}
    for step in order:
        with psycopg.connect(url, autocommit=True) as conn:
            _checkpoint(conn)
        outcome.update(step(url, batch_id, reports))
    checks = compare(url, batch_id, outcome["gate_counts"], outcome["hand_counts"])
    check_agreement(checks)
    result = outcome["result"]
    return Run(
        rows=result.rows,
        gate_seconds=outcome["gate_seconds"],
        hand_seconds=outcome["hand_seconds"],
        quarantined=result.quarantined,
        warned=result.warned,
        steps=outcome["steps"],
        gx_queries=outcome["gx_queries"],
        gx_query_seconds=outcome["gx_query_seconds"],
        checks=checks,
        load=load,
    )


def reset(url: str, batch_id: int) -> None:
    """Nothing of a previous run left: the gate does its full work again."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("truncate ops.quarantine, ops.quality_warning, bench.hand_failing")
        conn.execute(
            "update ops.load_batch set state = 'landed', validated_at = null, failed_at = null,"
            " records_passed = null, records_warned = null, records_quarantined = null,"
            " blocked_reason = null, error = null where batch_id = %s",
            (batch_id,),
        )


def time_gate(url: str, batch_id: int, reports: Path) -> dict[str, Any]:
    with gate_breakdown() as steps, gx_statements() as queries:
        started = time.perf_counter()
        result = gate.run_gate(url, batch_id, RULES, reports)
        seconds = time.perf_counter() - started
    return {
        "gate_seconds": seconds,
        "result": result,
        "gate_counts": {o.name: o.unexpected for o in result.outcomes},
        "steps": {**steps, "total": seconds},
        "gx_queries": queries["count"],
        "gx_query_seconds": queries["seconds"],
    }


def time_hand(url: str, batch_id: int, _reports: Path) -> dict[str, Any]:
    statement = hand_pass_sql(url, batch_id)
    with psycopg.connect(url, autocommit=True) as conn:
        started = time.perf_counter()
        counts = dict(conn.execute(statement).fetchall())
        seconds = time.perf_counter() - started
    return {"hand_seconds": seconds, "hand_counts": counts}


def hand_pass(url: str, batch_id: int) -> dict[str, int]:
    """Run the hand-written pass once (untimed); its count per check."""
    with psycopg.connect(url, autocommit=True) as conn:
        counts = dict(conn.execute(hand_pass_sql(url, batch_id)).fetchall())
        conn.execute("truncate bench.hand_failing")
    return counts


@dataclass(frozen=True)
class CheckCount:
    """What the gate and the hand-written pass found for one expectation."""

    gx: int | None  # GX's unexpected count (None: the gate did not run the check)
    held: int  # rows the gate wrote to quarantine or warnings for it
    hand: int  # the hand-written pass's count
    written: int  # rows the hand-written pass wrote to bench.hand_failing for it
    differ: int  # rows flagged by one of the two only

    @property
    def agree(self) -> bool:
        return self.differ == 0 and self.gx == self.held == self.hand == self.written


def compare(
    url: str, batch_id: int, gate_counts: dict[str, int], hand_counts: dict[str, int]
) -> dict[str, CheckCount]:
    """Per expectation: the rows the gate flagged against those the hand-written pass did."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "with gate_rows as ("
            " select landed_id, expectation from ops.quarantine where batch_id = %(b)s"
            " union select landed_id, expectation from ops.quality_warning where batch_id = %(b)s)"
            " select expectation,"
            " count(*) filter (where g.landed_id is not null),"
            " count(*) filter (where h.landed_id is not null),"
            " count(*) filter (where g.landed_id is null or h.landed_id is null)"
            " from gate_rows as g full join bench.hand_failing as h using (landed_id, expectation)"
            " group by expectation",
            {"b": batch_id},
        ).fetchall()
    written = {name: (held, hand, differ) for name, held, hand, differ in rows}
    checks = {}
    for name in sorted(set(gate_counts) | set(hand_counts) | set(written)):
        held, hand_rows, differ = written.get(name, (0, 0, 0))
        checks[name] = CheckCount(
            gate_counts.get(name), held, hand_counts.get(name, 0), hand_rows, differ
        )
    return checks


def check_agreement(checks: dict[str, CheckCount]) -> None:
    """Raise unless the two found exactly the same rows for every check."""
    problems = [
        f"{name}: GX counted {c.gx}, the gate held {c.held} rows; the hand-written pass counted"
        f" {c.hand} and wrote {c.written}; {c.differ} rows flagged by one of them only"
        for name, c in checks.items()
        if not c.agree
    ]
    if problems:
        raise RuntimeError(
            "the gate and the hand-written pass disagree:\n  " + "\n  ".join(problems)
        )


# --- The hand-written pass ------------------------------------------------------------------


def hand_pass_sql(url: str, batch_id: int) -> sql.Composed:
    """One statement: every check of the batch's suite in one scan of its landed rows; the
    failing (landed_id, expectation) pairs go to bench.hand_failing; one count per check."""
    with psycopg.connect(url) as conn:
        contract, entity = conn.execute(
            "select contract, entity from ops.load_batch where batch_id = %s", (batch_id,)
        ).fetchone()
    suite, projection = gate.load_suite(contract, entity)
    _personal, skip = gate._pii_fields(contract, entity)
    failing = sql.SQL(", ").join(
        sql.SQL("case when {} then {} end").format(check_sql(e), sql.Literal(name))
        for name, e in ((gate._expectation_name(e), e) for e in suite["expectations"])
    )
    # `offset 0` keeps the projection a subquery, so each typed column is computed once per
    # row however many checks read it.
    return sql.SQL(
        "with failing as ("
        " insert into bench.hand_failing (landed_id, expectation)"
        " select checked.landed_id, failed.expectation"
        " from (select typed.*, ops.personal_data_in(typed.record, {skip})"
        "  as personal_data_in_clear"
        "  from ({projection}) as typed where typed.batch_id = {batch_id} offset 0) as checked"
        " cross join lateral unnest(array[{failing}]::text[]) as failed (expectation)"
        " where failed.expectation is not null"
        " returning expectation)"
        " select expectation, count(*) from failing group by expectation"
    ).format(
        skip=sql.Literal(list(skip)),
        projection=sql.SQL(projection.strip().rstrip(";")),
        batch_id=sql.Literal(batch_id),
        failing=failing,
    )


_COLUMN_MAP = {  # the condition a non-null value must meet, from the expectation's kwargs
    "expect_column_values_to_be_in_set": lambda c, kw: _in(c, kw["value_set"]),
    "expect_column_values_to_not_be_in_set": lambda c, kw: sql.SQL("not ({})").format(
        _in(c, kw["value_set"])
    ),
    "expect_column_values_to_be_between": lambda c, kw: _between(c, kw),
    "expect_column_values_to_match_regex": lambda c, kw: sql.SQL("{} ~ {}").format(
        c, sql.Literal(kw["regex"])
    ),
    "expect_column_values_to_not_match_regex": lambda c, kw: sql.SQL("not ({} ~ {})").format(
        c, sql.Literal(kw["regex"])
    ),
}
_KNOWN_KWARGS = {
    "column", "column_A", "column_B", "value_set", "min_value", "max_value", "strict_min",
    "strict_max", "regex", "or_equal", "ignore_row_if",
}  # fmt: skip


def check_sql(expectation: dict[str, Any]) -> sql.Composable:
    """The condition under which a row fails `expectation`, as GX 1.x decides it in SQL: a
    column map check ignores null values (except the null checks themselves) and a row fails
    when the expected condition is false (not null); a column pair check first drops the rows
    its `ignore_row_if` says (default: both values missing)."""
    kind = expectation["type"]
    kwargs = {k: _parameter(v) for k, v in expectation["kwargs"].items()}
    unknown = set(kwargs) - _KNOWN_KWARGS
    if unknown:
        raise ValueError(f"{kind}: the hand-written pass does not handle {sorted(unknown)}")
    if "column" in kwargs:
        column = sql.Identifier("checked", kwargs["column"])
        if kind == "expect_column_values_to_not_be_null":
            return sql.SQL("{} is null").format(column)
        if kind == "expect_column_values_to_be_null":
            return sql.SQL("{} is not null").format(column)
        if kind in _COLUMN_MAP:
            return sql.SQL("{c} is not null and ({expected}) is false").format(
                c=column, expected=_COLUMN_MAP[kind](column, kwargs)
            )
    elif "column_A" in kwargs:
        a, b = (sql.Identifier("checked", kwargs[k]) for k in ("column_A", "column_B"))
        if kind == "expect_column_pair_values_a_to_be_greater_than_b":
            expected = (
                sql.SQL("{a} >= {b} or ({a} is null and {b} is null)")
                if kwargs.get("or_equal")
                else sql.SQL("{a} > {b}")
            ).format(a=a, b=b)
        elif kind == "expect_column_pair_values_to_be_equal":
            expected = sql.SQL("{a} = {b} and not ({a} is null or {b} is null)").format(a=a, b=b)
        else:
            expected = None
        if expected is not None:
            ignore = kwargs.get("ignore_row_if", "both_values_are_missing")
            considered = {
                "both_values_are_missing": sql.SQL("not ({a} is null and {b} is null)"),
                "either_value_is_missing": sql.SQL("{a} is not null and {b} is not null"),
                "neither": sql.SQL("true"),
            }[ignore].format(a=a, b=b)
            return sql.SQL("({considered}) and ({expected}) is false").format(
                considered=considered, expected=expected
            )
    raise ValueError(f"the hand-written pass has no SQL for {kind}; add it to bench/gate.py")


def _parameter(value: Any) -> Any:
    if isinstance(value, dict) and "$PARAMETER" in value:
        return gate.SUITE_PARAMETERS[value["$PARAMETER"]]()
    return value


def _in(column: sql.Composable, values: list[Any]) -> sql.Composable:
    if not values:
        return sql.SQL("false")
    return sql.SQL("{} in ({})").format(column, sql.SQL(", ").join(map(sql.Literal, values)))


def _between(column: sql.Composable, kwargs: dict[str, Any]) -> sql.Composable:
    parts = []
    if kwargs.get("min_value") is not None:
        op = ">" if kwargs.get("strict_min") else ">="
        parts.append(
            sql.SQL("{} {} {}").format(column, sql.SQL(op), sql.Literal(kwargs["min_value"]))
        )
    if kwargs.get("max_value") is not None:
        op = "<" if kwargs.get("strict_max") else "<="
        parts.append(
            sql.SQL("{} {} {}").format(column, sql.SQL(op), sql.Literal(kwargs["max_value"]))
        )
    if not parts:
        raise ValueError("expect_column_values_to_be_between without min_value or max_value")
    return sql.SQL(" and ").join(parts)


# --- Where the gate spends its time ---------------------------------------------------------

# The gate's steps, timed by wrapping them in this process only (missing ones are skipped).
_GATE_STEPS = {
    "materialise": (gate, "_materialise"),
    "gx": (gate, "_validate"),  # GX context, data source, suite, validation
    "quarantine writes": (gate, "_hold_rows"),
    "resolve": (gate, "_resolve"),
}


@contextmanager
def gate_breakdown() -> Iterator[dict[str, float]]:
    """Seconds spent in each step of the gate while inside; GX's own validation run
    (``ValidationDefinition.run``) is also timed, as ``gx validate``."""
    from great_expectations.core.validation_definition import ValidationDefinition

    from expectations import report

    spent: dict[str, float] = {}
    targets = [
        *_GATE_STEPS.items(),
        ("gx validate", (ValidationDefinition, "run")),
        ("report", (report, "write_report")),
    ]
    originals = []
    for label, (owner, name) in targets:
        original = getattr(owner, name, None)
        if original is None:
            continue
        originals.append((owner, name, original))
        setattr(owner, name, _timed(original, label, spent))
    try:
        yield spent
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)


def _timed(function: Callable[..., Any], label: str, spent: dict[str, float]) -> Any:
    @functools.wraps(function)
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            spent[label] = spent.get(label, 0.0) + time.perf_counter() - started

    return timed


@contextmanager
def gx_statements() -> Iterator[dict[str, Any]]:
    """How many SQL statements GX (SQLAlchemy) ran while inside, and their seconds."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    seen: dict[str, Any] = {"count": 0, "seconds": 0.0}

    def before(conn: Any, *_: Any) -> None:
        conn.info.setdefault("bench_started", []).append(time.perf_counter())

    def after(conn: Any, *_: Any) -> None:
        seen["count"] += 1
        seen["seconds"] += time.perf_counter() - conn.info["bench_started"].pop()

    event.listen(Engine, "before_cursor_execute", before)
    event.listen(Engine, "after_cursor_execute", after)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", before)
        event.remove(Engine, "after_cursor_execute", after)


# --- Reporting ------------------------------------------------------------------------------


def machine_description(server: str, pg_version: str) -> str:
    cpus = len(os.sched_getaffinity(0))
    with open("/proc/meminfo") as meminfo:
        kib = next((int(line.split()[1]) for line in meminfo if line.startswith("MemTotal:")), 0)
    return (
        f"{cpus} CPUs (nproc), {kib / 1024 / 1024:.1f} GiB RAM, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}, PostgreSQL {pg_version} "
        f"({server}), commit {_git_commit()}"
    )


def _git_commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        head = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--", "expectations", "connectors", "bench")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (
        " + uncommitted changes in expectations/, connectors/ or bench/" if dirty else ""
    )


def verdict(runs: list[Run]) -> bool:
    """PASS when the median gate time and the median ratio meet the targets."""
    return (
        statistics.median(run.ratio for run in runs) <= TARGET_RATIO
        and statistics.median(run.gate_seconds for run in runs) <= TARGET_SECONDS
    )


def _run_line(number: int, run: Run) -> str:
    return (
        f"run {number}: gate {run.gate_seconds:.1f} s, hand-written pass {run.hand_seconds:.1f} s,"
        f" ratio {run.ratio:.1f}x; {run.quarantined:,} quarantined, {run.warned:,} warned;"
        f" gate steps: {_steps(run)}"
    )


def _steps(run: Run) -> str:
    s = run.steps
    gx_setup = s.get("gx", 0.0) - s.get("gx validate", 0.0)
    known = sum(s.get(k, 0.0) for k in ("materialise", "gx", "quarantine writes"))
    return (
        f"materialise {s.get('materialise', 0.0):.1f}, GX set-up {gx_setup:.1f}, GX validate"
        f" {s.get('gx validate', 0.0):.1f} ({run.gx_queries} queries, {run.gx_query_seconds:.1f}"
        f" s in SQL), quarantine writes {s.get('quarantine writes', 0.0):.1f}, rest"
        f" {s['total'] - known:.1f} (resolve {s.get('resolve', 0.0):.1f}, report"
        f" {s.get('report', 0.0):.1f})"
    )


def _table(runs: list[Run]) -> list[str]:
    lines = [
        "| run | rows | quarantined | warned | gate s | hand-written s | ratio | materialise s "
        "| GX set-up s | GX validate s (queries, s in SQL) | quarantine writes s | rest s "
        "| load | result |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:--|",
    ]
    for number, run in enumerate(runs, 1):
        s = run.steps
        known = sum(s.get(k, 0.0) for k in ("materialise", "gx", "quarantine writes"))
        gx_setup = s.get("gx", 0.0) - s.get("gx validate", 0.0)
        lines.append(
            f"| {number} | {run.rows:,} | {run.quarantined:,} | {run.warned:,} "
            f"| {run.gate_seconds:.1f} | {run.hand_seconds:.1f} | {run.ratio:.1f}x "
            f"| {s.get('materialise', 0.0):.1f} | {gx_setup:.1f} | {s.get('gx validate', 0.0):.1f}"
            f" ({run.gx_queries}, {run.gx_query_seconds:.1f}) "
            f"| {s.get('quarantine writes', 0.0):.1f} | {s['total'] - known:.1f} "
            f"| {run.load:.1f} | {'PASS' if run.passed else 'FAIL'} |"
        )
    return lines


def _checks_line(runs: list[Run]) -> str:
    checks = runs[-1].checks
    flagged = ", ".join(f"{name} {c.held:,}" for name, c in checks.items() if c.held)
    silent = sum(1 for c in checks.values() if not c.held)
    return (
        f"Checks: {len(checks)} expectations; rows flagged, the same in the gate and the"
        f" hand-written pass: {flagged}; {silent} flagged none."
    )


def _summary(runs: list[Run]) -> str:
    gate_median = statistics.median(run.gate_seconds for run in runs)
    hand_median = statistics.median(run.hand_seconds for run in runs)
    ratio_median = statistics.median(run.ratio for run in runs)
    met = verdict(runs)
    return (
        f"**{'PASS' if met else 'FAIL'}** (targets: gate <= {TARGET_RATIO:g}x the hand-written"
        f" pass and <= {TARGET_SECONDS:g} s) -- median gate {gate_median:.1f} s"
        f" ({'met' if gate_median <= TARGET_SECONDS else 'NOT met'}), median hand-written pass"
        f" {hand_median:.1f} s, median ratio {ratio_median:.1f}x"
        f" ({'met' if ratio_median <= TARGET_RATIO else 'NOT met'})."
    )


def report(args: argparse.Namespace, runs: list[Run], machine: str, started_at: datetime) -> str:
    return "\n".join(
        [
            f"gate benchmark, {started_at:%Y-%m-%d %H:%M} UTC: {args.rows:,} rows,"
            f" {len(runs)} run(s)",
            machine,
            "",
            *_table(runs),
            "",
            _checks_line(runs),
            "",
            _summary(runs),
        ]
    )


def append_results(
    args: argparse.Namespace, runs: list[Run], machine: str, started_at: datetime
) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    new = not RESULTS.exists()
    with RESULTS.open("a", encoding="utf-8") as out:
        if new:
            out.write(
                "# Quality gate benchmark results\n\n"
                "Appended by `python -m bench.gate`; see `bench/README.md` for what the columns"
                " mean.\n"
            )
        out.write(
            "\n".join(
                [
                    "",
                    f"## {started_at:%Y-%m-%d %H:%M} UTC -- {args.rows:,} rows, {len(runs)} run(s)",
                    "",
                    f"Machine: {machine}.",
                    *(["", f"Note: {args.note}"] if args.note else []),
                    "",
                    *_table(runs),
                    "",
                    _checks_line(runs),
                    "",
                    _summary(runs),
                    "",
                ]
            )
        )


def _say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
