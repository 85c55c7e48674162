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
from urllib.parse import unquote, urlsplit

import psycopg
import requests

from connectors.http import body_excerpt, build_session, redact_url
from connectors.warehouse import ensure_schema

log = logging.getLogger(__name__)

API_CONNECTION = "sti_airflow_api"  # host: Airflow's base URL; login and password of an Op user
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


class AirflowApiError(Exception):
    """Airflow did not take the asset event (after the session's retries)."""


class AirflowApi:
    """The three calls of Airflow's REST API the dispatcher needs, with a JWT it renews.

    The session retries connection errors, timeouts, 429 and 5xx with exponential backoff
    (connectors/http.py), POST included: a repeated asset event is harmless.
    """

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        *,
        timeout: float = 10.0,
        attempts: int = 4,
        backoff: float = 0.5,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._credentials = {"username": username, "password": password}
        self._timeout = timeout
        self._session = build_session(
            max_attempts=attempts,
            backoff_base=backoff,
            backoff_max=8.0,
            retry_after_max=30,
            user_agent="sti-event-dispatch/0.1",
        )
        self._token: str | None = None
        self._asset_ids: dict[str, int] = {}

    def asset_id(self, uri: str) -> int:
        if uri not in self._asset_ids:
            # uri_pattern is a substring match: keep the asset whose uri is exactly this one.
            found = self._call("GET", "/api/v2/assets", params={"uri_pattern": uri, "limit": 100})
            ids = [a["id"] for a in found.json()["assets"] if a["uri"] == uri]
            if not ids:
                raise AirflowApiError(f"Airflow has no asset {uri} (is its DAG parsed?)")
            self._asset_ids[uri] = ids[0]
        return self._asset_ids[uri]

    def post_asset_event(self, uri: str, extra: dict) -> tuple[int, datetime]:
        """Create an asset event on `uri`: Airflow's id and timestamp for it."""
        body = {"asset_id": self.asset_id(uri), "extra": extra}
        try:
            reply = self._call("POST", "/api/v2/assets/events", json=body)
        except AirflowApiError:
            self._asset_ids.pop(uri, None)  # the asset may have been re-created: look it up anew
            raise
        event = reply.json()
        return event["id"], datetime.fromisoformat(event["timestamp"])

    def _call(self, method: str, path: str, **kwargs) -> requests.Response:
        for fresh_token in (False, True):
            if self._token is None or fresh_token:
                self._token = self._new_token()
            headers = {"Authorization": f"Bearer {self._token}"}
            reply = self._send(method, path, headers=headers, **kwargs)
            if reply.status_code != 401:  # 401: the token expired; one new one, then give up
                break
        if not reply.ok:
            raise AirflowApiError(self._describe(method, path, reply))
        return reply

    def _new_token(self) -> str:
        reply = self._send("POST", "/auth/token", json=self._credentials)
        if not reply.ok:
            raise AirflowApiError(self._describe("POST", "/auth/token", reply))
        return reply.json()["access_token"]

    def _send(self, method: str, path: str, **kwargs) -> requests.Response:
        try:
            return self._session.request(
                method, self.base_url + path, timeout=self._timeout, **kwargs
            )
        except requests.RequestException as exc:  # retries exhausted, or no connection at all
            raise AirflowApiError(f"{method} {redact_url(self.base_url)}{path}: {exc}") from None

    def _describe(self, method: str, path: str, reply: requests.Response) -> str:
        excerpt = body_excerpt(reply.content, [self._credentials["password"], self._token or ""])
        return f"{method} {path}: {reply.status_code} {excerpt}"


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


def api_from_environment(environ: dict[str, str] | None = None) -> AirflowApi:
    """The API client from connection `sti_airflow_api` (AIRFLOW_CONN_STI_AIRFLOW_API), in
    Airflow's JSON form (host = base URL, login, password) or as a URL with user info."""
    environ = os.environ if environ is None else environ
    value = environ.get(f"AIRFLOW_CONN_{API_CONNECTION.upper()}", "").strip()
    if value.startswith("{"):
        conn = json.loads(value)
        base, login, password = conn.get("host", ""), conn.get("login"), conn.get("password")
        if conn.get("port") and base.count(":") < 2:
            base = f"{base}:{conn['port']}"
    else:
        parts = urlsplit(value)
        base = f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        login, password = unquote(parts.username or ""), unquote(parts.password or "")
    if not (value and base and login and password):
        raise SystemExit(
            f"set AIRFLOW_CONN_{API_CONNECTION.upper()}: Airflow's base URL (host), and the"
            " login and password of a user allowed to create asset events (role Op)"
        )
    return AirflowApi(base, login, password)


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
