"""`python -m local quarantine [SOURCE_ID]`: what waits in quarantine, oldest first.

Reads the view ops.open_quarantine of the warehouse (WAREHOUSE_URL, else the embedded one):
per source, entity and reason, the open rows and when the oldest and newest arrived.
"""

from __future__ import annotations

import psycopg

from local.warehouse import resolve_warehouse_url

_SQL = (
    "select source_id, entity, reason, open_rows, oldest from ops.open_quarantine"
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
    for source_id, entity, reason, count, oldest in rows:
        where = f"{source_id} / {entity}"
        lines.append(f"{oldest:%Y-%m-%d %H:%M} {count:>6}  {where:<40} {reason}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    print(format_rows(open_quarantine(resolve_warehouse_url(), argv[0] if argv else None)))
    return 0
