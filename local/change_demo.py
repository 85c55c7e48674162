"""The demo's last act: one record changes at a stand-in registry and reaches the marts by
itself, through the whole event chain, timed.

    registry change → signed CloudEvent → intake (ops.event_inbox) → dispatcher → asset event
    → sync DAG run → published batch → warehouse DAG run (write–audit–publish) → marts
    → national_feed DAG run → the national intake (acknowledged in ops.feed_record_state)

Nothing here drives the chain: it makes the change, then watches the warehouse and Airflow.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime

import pendulum
import psycopg
import requests

from local.dag_runs import DagRuns, RunReport
from local.progress import Progress

SOURCE_ID = "ninh_binh_registry"  # a catalogue source with change events and a stand-in
ENTITY = "st_task"
TIMEOUT = 300.0  # seconds for the change to reach the marts, and again the national intake

_VISIBLE_SQL = """
select f.version from marts.fct_st_task as f
join raw.landed_record as r on r.landed_id = f.landed_id
where r.source_id = %s and r.entity = %s and r.record_id = %s
"""
# The record's national version: as published (feed model) and as the national intake
# acknowledged it (null before the first build or delivery).
_NATIONAL_SQL = """
select f.content_digest, s.content_digest
from marts.feed_st_task as f
left join ops.feed_record_state as s on s.entity = 'st_task' and s.record_key = f.record_key
where f.source_id = %s and f.record_id = %s
"""
# When the change passed each stage: the event's arrival and dispatch, its batch's publish.
_STAGES_SQL = """
select
    (select min(received_at) from ops.event_inbox
     where source_id = %(s)s and entity = %(e)s and record_id = %(r)s and received_at >= %(t)s),
    (select min(dispatched_at) from ops.event_inbox
     where source_id = %(s)s and entity = %(e)s and record_id = %(r)s and received_at >= %(t)s),
    (select max(version) from ops.event_inbox
     where source_id = %(s)s and entity = %(e)s and record_id = %(r)s and received_at >= %(t)s),
    (select min(b.published_at) from raw.landed_record as l join ops.load_batch as b
     using (batch_id) where l.source_id = %(s)s and l.entity = %(e)s and l.record_id = %(r)s
     and b.published_at >= %(t)s)
"""


@dataclass
class Change:
    record_id: str
    changed_at: datetime
    stages: dict[str, float] = field(default_factory=dict)  # stage → seconds after the change
    visible_after: float | None = None
    national_feed: bool = False  # followed on to the national intake
    delivered_after: float | None = None  # acknowledged by the national intake
    national_unchanged: bool = False  # its national record did not change: nothing to send
    reports: list[RunReport] = field(default_factory=list)

    def summary(self) -> str:
        if self.visible_after is None:
            return (
                f"Change event: {SOURCE_ID}/{ENTITY} {self.record_id} did NOT reach"
                f" marts.fct_st_task within {TIMEOUT:.0f} s (stages reached: {self.stages})"
            )
        stages = ", ".join(f"{name} +{seconds:.1f} s" for name, seconds in self.stages.items())
        delivered = ""
        if self.national_unchanged:
            delivered = (
                "; its national record did not change (the registry changed only its version),"
                " so the national feed sent nothing"
            )
        elif self.delivered_after is not None:
            delivered = f", at the national intake {self.delivered_after:.1f} s later"
        elif self.national_feed:
            delivered = f"; NOT acknowledged by the national intake within {TIMEOUT:.0f} s more"
        return (
            f"Change event: {SOURCE_ID}/{ENTITY} {self.record_id} changed at the registry,"
            f" visible in marts.fct_st_task {self.visible_after:.1f} s later{delivered}"
            f" ({stages})"
        )


def show_a_change(
    runs: DagRuns,
    warehouse_url: str,
    registry_url: str,
    progress: Progress,
    *,
    national_feed: bool = False,
) -> Change:
    """Update one S&T task at the stand-in registry; wait (up to TIMEOUT) until the marts show
    the version its event announced, printing the runs the event caused as they finish."""
    since = pendulum.now("UTC")
    reply = requests.post(
        f"{registry_url}/_standin/changes", json={"update": 1, "entity": ENTITY}, timeout=10
    )
    reply.raise_for_status()
    change = Change(reply.json()["updated"][0], since, national_feed=national_feed)
    print(
        f"[   change] {SOURCE_ID}/{ENTITY} {change.record_id} updated at the registry;"
        " it posts a signed event to the intake",
        flush=True,
    )
    # the sync run the event triggers, the warehouse build (and the national feed run)
    progress.total += 3 if national_feed else 2
    seen: set[tuple[str, str]] = set()
    deadline = time.monotonic() + TIMEOUT
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        acknowledged_before = _national_versions(conn, change.record_id)[1]
        while time.monotonic() < deadline:
            for run in runs.runs(since=since):
                key = (run["dag_id"], run["dag_run_id"])
                if run["state"] in ("success", "failed") and key not in seen:
                    seen.add(key)
                    report = runs.report(run)
                    change.reports.append(report)
                    progress.finished(
                        f"{report.dag_id} ({report.run_type})", report.state, report.seconds
                    )
            received, dispatched, version, published = conn.execute(
                _STAGES_SQL,
                {"s": SOURCE_ID, "e": ENTITY, "r": change.record_id, "t": since},
            ).fetchone()
            for name, at in (
                ("in inbox", received),
                ("sent to Airflow", dispatched),
                ("published", published),
            ):
                if at is not None and name not in change.stages:
                    change.stages[name] = (at - since).total_seconds()
            # Before the first warehouse build publishes, the marts do not exist yet.
            shown = None
            if conn.execute("select to_regclass('marts.fct_st_task')").fetchone()[0]:
                shown = conn.execute(_VISIBLE_SQL, (SOURCE_ID, ENTITY, change.record_id)).fetchone()
            if change.visible_after is None and (
                version is not None and shown is not None and shown[0] >= version
            ):
                change.visible_after = (pendulum.now("UTC") - since).total_seconds()
                change.stages["in the marts"] = change.visible_after
                if not national_feed:
                    return change
                deadline = time.monotonic() + TIMEOUT
            if change.visible_after is not None:
                national, acknowledged = _national_versions(conn, change.record_id)
                if national == acknowledged_before:
                    change.national_unchanged = True
                    return change
                if national is not None and national == acknowledged:
                    change.delivered_after = (pendulum.now("UTC") - since).total_seconds()
                    change.stages["at the national intake"] = change.delivered_after
                    return change
            time.sleep(0.5)
    return change


def _national_versions(conn: psycopg.Connection, record_id: str) -> tuple[str | None, str | None]:
    """(published, acknowledged) digests of the record's national version."""
    if not conn.execute("select to_regclass('marts.feed_st_task')").fetchone()[0]:
        return None, None
    row = conn.execute(_NATIONAL_SQL, (SOURCE_ID, record_id)).fetchone()
    return row if row else (None, None)
