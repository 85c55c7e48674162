"""The dispatcher: open rows of `ops.event_inbox` → one Airflow asset event per source entity.

Each cycle takes the source entities with pending rows and, for each in its own transaction,
claims the rows (`for update skip locked`: dispatchers running side by side never take the same
rows), posts ONE asset event on `sti://<source>/<entity>` through Airflow's REST API whose
extra names the rows, and marks them `dispatched` with Airflow's asset event id and time before
committing. A burst of 1,000 events for one entity is one asset event, and one DAG run consumes
every asset event queued for its DAG, so events never multiply runs.

Crash safety is the claim's lock (the design in connectors/warehouse.sql): it lasts as long as
the transaction, so a dispatcher that dies before Airflow's answer is confirmed leaves the rows
pending once its connection goes, and one that hangs is cut off by the server after the lease
(`idle_in_transaction_session_timeout`); either way the rows are claimed and sent again.
Delivery to Airflow is at-least-once; a duplicate asset event is harmless (the run consumes all
queued events and landing is idempotent). The sync DAG's `publish` marks rows `done`
(:func:`mark_done`); rows dispatched long ago and still not done are sent again.

Plain Python (no Airflow import): `python -m connectors.event_dispatch [--once]`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import psycopg

from connectors.airflow_api import AirflowApi, AirflowApiError, api_from_environment
from connectors.warehouse import ensure_schema

log = logging.getLogger(__name__)

LIMIT = 5000  # rows per asset event: bounds a claim's locks and the asset event's extra
# Longer than one post can take (each HTTP call is retried for at most ~40 s), so a live
# dispatcher is never cut off mid-post; a hung one holds its rows this long at most.
LEASE = 120  # seconds
# A dispatched row no run has covered after this long (the run failed, Airflow lost the event)
# is sent again; the cron of its DAG is the other safety net.
RESEND_AFTER = 3600  # seconds

_OPEN = """(dispatch_state = 'pending' or (dispatch_state = 'dispatched'
    and dispatched_at < now() - make_interval(secs => %(resend_after)s)))"""
_GROUPS = f"select distinct source_id, entity from ops.event_inbox where {_OPEN} order by 1, 2"
_CLAIM = f"""
select inbox_id, event_time from ops.event_inbox
where source_id = %(source_id)s and entity = %(entity)s and {_OPEN}
order by inbox_id
limit %(limit)s
for update skip locked
"""
_CONFIRM = """
update ops.event_inbox
set dispatch_state = 'dispatched', dispatched_at = %s, asset_event_id = %s,
    dispatch_attempts = dispatch_attempts + 1, last_error = null
where inbox_id = any(%s)
"""
_FAILED = """
update ops.event_inbox set dispatch_attempts = dispatch_attempts + 1, last_error = %s
where inbox_id = any(%s)
"""


@dataclass
class Cycle:
    """What one :func:`dispatch_once` did."""

    claimed: int = 0
    full: bool = False  # a group had more rows than the limit: run again at once
    posted: dict[str, int] = field(default_factory=dict)  # asset uri → Airflow's asset event id
    failed: dict[str, str] = field(default_factory=dict)  # asset uri → why


def claim(
    conn: psycopg.Connection, source_id: str, entity: str, *, limit: int, lease: int, resend: int
) -> list[tuple[int, datetime]]:
    """In the open transaction: lock up to `limit` open rows of the entity (inbox id, event
    time), skipping rows another dispatcher holds; the server ends the transaction if it then
    stays idle longer than `lease` seconds."""
    conn.execute(f"set local idle_in_transaction_session_timeout = '{int(lease)}s'")
    params = {"source_id": source_id, "entity": entity, "limit": limit, "resend_after": resend}
    return conn.execute(_CLAIM, params).fetchall()


def dispatch_once(
    warehouse_url: str,
    airflow: AirflowApi,
    *,
    limit: int = LIMIT,
    lease: int = LEASE,
    resend_after: int = RESEND_AFTER,
) -> Cycle:
    """One asset event per source entity with open rows (at most `limit` rows each)."""
    cycle = Cycle()
    with psycopg.connect(
        warehouse_url, autocommit=True, application_name="sti-event-dispatch"
    ) as conn:
        groups = conn.execute(_GROUPS, {"resend_after": resend_after}).fetchall()
        for source_id, entity in groups:
            with conn.transaction():
                rows = claim(conn, source_id, entity, limit=limit, lease=lease, resend=resend_after)
                if rows:
                    _send(conn, airflow, f"sti://{source_id}/{entity}", rows, cycle)
            cycle.claimed += len(rows)
            cycle.full = cycle.full or len(rows) >= limit
    return cycle


def _send(
    conn: psycopg.Connection,
    airflow: AirflowApi,
    uri: str,
    rows: list[tuple[int, datetime]],
    cycle: Cycle,
) -> None:
    source_id, entity = uri.removeprefix("sti://").split("/", 1)
    ids = [inbox_id for inbox_id, _ in rows]
    extra = {
        "source_id": source_id,
        "entity": entity,
        "events": len(ids),
        "inbox_ids": ids,
        "max_event_time": max(event_time for _, event_time in rows).isoformat(),
    }
    try:
        event_id, at = airflow.post_asset_event(uri, extra)
    except AirflowApiError as exc:
        log.warning("event dispatch: %d events of %s not sent: %s", len(ids), uri, exc)
        conn.execute(_FAILED, (str(exc)[:1000], ids))  # committed: the rows stay pending
        cycle.failed[uri] = str(exc)
        return
    conn.execute(_CONFIRM, (at, event_id, ids))
    cycle.posted[uri] = event_id
    log.info("event dispatch: %d events → %s (asset event %d)", len(ids), uri, event_id)


def mark_done(warehouse_url: str, source_id: str, entity: str, up_to: datetime) -> int:
    """Mark done the rows of a source entity dispatched before `up_to`; how many.

    The rule (called by the sync DAG's `publish` with its run's start): an event dispatched
    before the run started is covered by it, because the change it reports happened before the
    event reached the inbox, so before the run's extraction began. `dispatched_at` is Airflow's
    time for the asset event, so both sides of the comparison are Airflow's clock.
    """
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        return conn.execute(
            "update ops.event_inbox set dispatch_state = 'done', done_at = now()"
            " where source_id = %s and entity = %s and dispatch_state = 'dispatched'"
            " and dispatched_at < %s",
            (source_id, entity, up_to),
        ).rowcount


def run_forever(
    warehouse_url: str,
    airflow: AirflowApi,
    interval: float = 2.0,
    stop: threading.Event | None = None,
    **options: int,
) -> None:
    """Dispatch every `interval` seconds until `stop` is set: again at once after a cycle that
    hit the limit, and backing off (up to a minute) while Airflow or the warehouse fail.
    `options` go to :func:`dispatch_once`."""
    stop = stop or threading.Event()
    failures = 0
    while not stop.is_set():
        try:
            cycle = dispatch_once(warehouse_url, airflow, **options)
        except Exception as exc:  # the warehouse or a bug: the loop outlives it, rows wait
            log.warning("event dispatch: cycle failed: %s", exc, exc_info=True)
            cycle = Cycle(failed={"cycle": str(exc)})
        failures = failures + 1 if cycle.failed else 0
        if cycle.full and not cycle.failed:
            continue
        stop.wait(min(interval * 2**failures, 60.0))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m connectors.event_dispatch", description=__doc__
    )
    parser.add_argument("--once", action="store_true", help="one cycle, then exit")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between cycles")
    parser.add_argument("--warehouse-url", default=os.environ.get("WAREHOUSE_URL"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if not args.warehouse_url:
        parser.error("set WAREHOUSE_URL or --warehouse-url")
    airflow = api_from_environment()  # first: a misconfigured dispatcher touches nothing
    ensure_schema(args.warehouse_url)  # the inbox, on a warehouse no run has landed in yet
    if args.once:
        cycle = dispatch_once(args.warehouse_url, airflow)
        print(
            json.dumps({"claimed": cycle.claimed, "posted": cycle.posted, "failed": cycle.failed})
        )
        return 1 if cycle.failed else 0
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):  # finish the group being sent, then stop
        signal.signal(signum, lambda *_: stop.set())
    run_forever(args.warehouse_url, airflow, args.interval, stop)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
