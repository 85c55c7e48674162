"""Operator commands on the quality gate's quarantine (WAREHOUSE_URL, else the embedded warehouse).

    python -m local quarantine [SOURCE_ID]                  what waits, per source and reason
    python -m local quarantine replay [--source S] [--entity E] [--batch N]
                                                            re-check with the current rules
    python -m local quarantine release BATCH --note "why"   publish a batch a batch-level rule
                                                            blocked, once it is known genuine

`replay` is for after a rule, mapping or code-list fix: rows that pass now are resolved (and
flow on at the next warehouse build), rows that still fail stay. Nothing is deleted.
"""

from __future__ import annotations

import argparse
import sys

import psycopg

from local.warehouse import resolve_warehouse_url

_SQL = (
    "select source_id, entity, reason, open_rows, oldest, reason_vi from ops.open_quarantine"
    " where %(source)s::text is null or source_id = %(source)s"
)


def open_quarantine(warehouse_url: str, source_id: str | None = None) -> list[tuple]:
    """Rows of ops.open_quarantine (optionally of one source), oldest first."""
    with psycopg.connect(warehouse_url) as conn:
        return conn.execute(_SQL, {"source": source_id}).fetchall()


def format_rows(rows: list[tuple]) -> str:
    if not rows:
        return "Nothing waits in quarantine."
    lines = [f"{'oldest (UTC)':<17} {'rows':>6}  {'source / entity':<40} reason"]
    for source_id, entity, reason, count, oldest, reason_vi in rows:
        where = f"{source_id} / {entity}"
        lines.append(f"{oldest:%Y-%m-%d %H:%M} {count:>6}  {where:<40} {reason}")
        if reason_vi:
            lines.append(f"{'':<66} {reason_vi}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("replay", "release"):
        print(format_rows(open_quarantine(resolve_warehouse_url(), argv[0] if argv else None)))
        return 0
    from expectations.operations import release, replay

    parser = argparse.ArgumentParser(prog=f"python -m local quarantine {argv[0]}")
    if argv[0] == "replay":
        parser.add_argument("--source")
        parser.add_argument("--entity")
        parser.add_argument("--batch", type=int)
        args = parser.parse_args(argv[1:])
        outcome = replay(resolve_warehouse_url(), args.source, args.batch, args.entity)
    else:
        parser.add_argument("batch", type=int)
        parser.add_argument("--note", required=True, help="why the batch is genuine (recorded)")
        args = parser.parse_args(argv[1:])
        try:
            outcome = release(resolve_warehouse_url(), args.batch, args.note)
        except ValueError as error:  # not blocked by a batch rule, or no note
            print(error, file=sys.stderr)
            return 1
    for line in outcome.lines():
        print(line)
    return 1 if outcome.still_blocked else 0
