"""Operators' actions on the gate's verdicts, shared by `make replay` / `make release`
(local/quarantine.py) and the operator DAGs (dags/operator_dags.py).

- `replay`: re-check the batches holding open quarantine with the current suites and code
  lists (after a rule, mapping or code-list fix); rows that pass now are resolved, batches that
  pass are published.
- `release`: publish a batch a batch-level rule blocked, once someone confirmed it is genuine;
  the note saying why is recorded in the ledger.

Each returns the gate's results and the batches it made visible to the warehouse (for the
asset event that starts a warehouse build).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg

from expectations.gate import GateResult, release_batch, replay_quarantine


@dataclass(frozen=True, slots=True)
class Published:
    """A batch an operator's action published, or published more rows of."""

    source_id: str
    entity: str
    batch_id: int
    rows: int  # rows of the batch now published (passed + warned)


@dataclass(frozen=True, slots=True)
class OperatorOutcome:
    results: list[GateResult] = field(default_factory=list)
    published: list[Published] = field(default_factory=list)

    @property
    def still_blocked(self) -> list[GateResult]:
        return [r for r in self.results if not r.success]

    def lines(self) -> list[str]:
        """One line per batch, as `make replay` prints them."""
        if not self.results:
            return ["Nothing to replay: no open quarantine matches."]
        return [outcome_line(r) for r in self.results]


def outcome_line(result: GateResult) -> str:
    verdict = "published" if result.success else f"still blocked: {result.blocked_reason}"
    return (
        f"batch {result.batch_id}: {result.rows} rows, {result.passed} passed,"
        f" {result.warned} warned, {result.quarantined} still quarantined,"
        f" {result.resolved} resolved; {verdict}"
    )


def replay(
    warehouse_url: str,
    source_id: str | None = None,
    batch_id: int | None = None,
    entity: str | None = None,
) -> OperatorOutcome:
    """Re-check the open quarantine (of a source, entity or batch) with the current rules."""
    before = _ledger(
        warehouse_url,
        "select b.batch_id, b.source_id, b.entity, b.state from ops.load_batch as b"
        " where b.batch_id in (select q.batch_id from ops.quarantine as q"
        " where q.resolved_at is null"
        " and (%(source)s::text is null or q.source_id = %(source)s)"
        " and (%(entity)s::text is null or q.entity = %(entity)s)"
        " and (%(batch)s::bigint is null or q.batch_id = %(batch)s))",
        {"source": source_id, "entity": entity, "batch": batch_id},
    )
    results = replay_quarantine(warehouse_url, source_id, batch_id, entity)
    published = []
    for r in results:
        source, name, state = before.get(r.batch_id, ("", "", "published"))
        # A published batch whose rows were resolved has more rows for the warehouse; one that
        # was blocked or not yet published is new to it.
        if r.success and (r.resolved or state != "published"):
            published.append(Published(source, name, r.batch_id, r.rows - r.quarantined))
    return OperatorOutcome(results, published)


def release(warehouse_url: str, batch_id: int, note: str) -> OperatorOutcome:
    """Publish blocked batch `batch_id`, recording `note`; ValueError if it is not blocked by a
    batch-level rule or the note is empty."""
    result = release_batch(warehouse_url, batch_id, note)
    source, entity, _ = _ledger(
        warehouse_url,
        "select batch_id, source_id, entity, state from ops.load_batch where batch_id = %(batch)s",
        {"batch": batch_id},
    )[batch_id]
    published = [Published(source, entity, batch_id, result.rows - result.quarantined)]
    return OperatorOutcome([result], published if result.success else [])


def _ledger(warehouse_url: str, query: str, params: dict) -> dict[int, tuple[str, str, str]]:
    with psycopg.connect(warehouse_url) as conn:
        return {row[0]: row[1:] for row in conn.execute(query, params)}
