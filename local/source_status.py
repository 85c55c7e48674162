"""Operator command: each source entity's change events, batches and lag (WAREHOUSE_URL, else
the embedded warehouse).

    python -m local sources [SOURCE_ID]

One line per source and entity with a batch or a change event (the view `ops.source_status`):
events pending (received, not yet published), how long the oldest has waited (LATE past the
source's `events.max_pending_minutes` in the catalogue, default 15), the lag behind the source,
the last event and publish, the latest batch and its error. The `ops__event_lag` DAG notifies
the late ones every 5 minutes (connectors/source_status.py).
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from connectors.catalogue import DEFAULT_MAX_PENDING_MINUTES, CatalogueError, load_catalogue
from connectors.source_status import SourceStatus, format_duration, max_pending_minutes

_HEADERS = (
    "source",
    "entity",
    "pending",
    "oldest pending",
    "lag",
    "last event (UTC)",
    "last publish (UTC)",
    "last batch",
    "error",
)
_RIGHT = {"pending", "lag"}
_ERROR_WIDTH = 100


def format_table(
    statuses: list[SourceStatus], limits: dict[str, int], source_id: str | None = None
) -> str:
    """The statuses as an aligned table; late entities marked, with a line saying why."""
    if not statuses:
        if source_id:
            unknown = "" if source_id in limits or not limits else " (not in the catalogue)"
            return f"Nothing recorded for {source_id}{unknown}: no batch and no change event."
        return "No source has landed a batch or received a change event yet."
    rows = []
    late = 0
    for status in statuses:
        limit = limits.get(status.source_id, DEFAULT_MAX_PENDING_MINUTES)
        waited = format_duration(status.oldest_pending_age)
        if status.late(limit):
            late += 1
            waited += f" LATE (>{limit}m)"
        error = " ".join((status.last_error or "-").split())
        if len(error) > _ERROR_WIDTH:
            error = error[: _ERROR_WIDTH - 1] + "…"
        batch = f"{status.last_batch_id} {status.last_batch_state}" if status.last_batch_id else "-"
        rows.append(
            (
                status.source_id,
                status.entity,
                str(status.pending_events),
                waited,
                format_duration(status.lag) if status.pending_events else "-",
                _minute(status.last_event_at),
                _minute(status.last_success_at),
                batch,
                error,
            )
        )
    widths = [max(len(row[i]) for row in [_HEADERS, *rows]) for i in range(len(_HEADERS))]
    lines = [_line(_HEADERS, widths)] + [_line(row, widths) for row in rows]
    lines.append("")
    lines.append(
        "pending: change events received, not yet published; lag: now − the source's time of"
        " the oldest pending event."
    )
    if late:
        lines.append(
            f"LATE ({late}): the oldest pending event has waited longer than the source's"
            " events.max_pending_minutes (dags/sources.yml; default"
            f" {DEFAULT_MAX_PENDING_MINUTES})."
        )
    return "\n".join(lines)


def _line(cells: tuple[str, ...], widths: list[int]) -> str:
    padded = [
        cell.rjust(width) if header in _RIGHT else cell.ljust(width)
        for cell, width, header in zip(cells[:-1], widths, _HEADERS, strict=False)
    ]
    return "  ".join([*padded, cells[-1]]).rstrip()


def _minute(value: datetime | None) -> str:
    return "-" if value is None else f"{value.astimezone(UTC):%Y-%m-%d %H:%M}"


def main(argv: list[str]) -> int:
    from connectors.source_status import read_status
    from local.warehouse import resolve_warehouse_url

    parser = argparse.ArgumentParser(prog="python -m local sources", description=__doc__)
    parser.add_argument("source_id", nargs="?", help="one source of the catalogue")
    args = parser.parse_args(argv)
    try:
        limits = max_pending_minutes(load_catalogue())
    except CatalogueError as error:  # the figures still matter: judge with the default
        print(f"{error}\n(limit: {DEFAULT_MAX_PENDING_MINUTES} minutes)", file=sys.stderr)
        limits = {}
    statuses = read_status(resolve_warehouse_url(), args.source_id)
    print(format_table(statuses, limits, args.source_id))
    return 0
