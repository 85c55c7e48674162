"""Operators' controls of the national feed: pause and resume a province's or an entity's feed,
and a full re-send after the national side lost data (`python -m local feed …`).

A re-send starts a new epoch of each feed in scope: its acknowledged state
(`ops.feed_record_state`) is forgotten, so the next delivery sends every published record
again, in new batches whose keys carry the new epoch (`37.st_task.e2.1`); the old batches stay
in the ledger as history, and `ops.feed_control` records when and why. Batches still open are
settled first, under their own keys, as in any run.
"""

from __future__ import annotations

import psycopg

from connectors.national_feed import ENTITIES_SQL


def _scope(conn: psycopg.Connection, entity: str | None) -> list[str]:
    entities = [row[0] for row in conn.execute(ENTITIES_SQL)]
    if entity is None:
        return entities
    if entity not in entities:
        raise ValueError(f"{entity!r} is not a national feed entity ({', '.join(entities)})")
    return [entity]


def set_paused(
    warehouse_url: str, province: str, entity: str | None, paused: bool, reason: str = ""
) -> list[str]:
    """Pause (or resume) the province's feed of one entity or of all; the entities changed."""
    with psycopg.connect(warehouse_url) as conn:
        entities = _scope(conn, entity)
        conn.execute(
            "insert into ops.feed_control as c (province_code, entity, paused_at, paused_reason)"
            " select %(p)s, e, case when %(paused)s then now() end,"
            " case when %(paused)s then %(reason)s end from unnest(%(entities)s::text[]) as e"
            " on conflict (province_code, entity) do update"
            " set paused_at = excluded.paused_at, paused_reason = excluded.paused_reason",
            {"p": province, "entities": entities, "paused": paused, "reason": reason or None},
        )
    return entities


def start_resend(warehouse_url: str, province: str, entity: str | None, reason: str) -> int:
    """Forget what the national side acknowledged for the province (one entity or all) and
    start a new epoch: the next delivery re-sends everything. Returns the records forgotten."""
    if not reason.strip():
        raise ValueError("say why the feed is re-sent (recorded in ops.feed_control)")
    with psycopg.connect(warehouse_url) as conn:
        entities = _scope(conn, entity)
        conn.execute(
            "insert into ops.feed_control as c (province_code, entity, epoch, resend_at,"
            " resend_reason) select %(p)s, e, 2, now(), %(reason)s"
            " from unnest(%(entities)s::text[]) as e"
            " on conflict (province_code, entity) do update set epoch = c.epoch + 1,"
            " resend_at = now(), resend_reason = excluded.resend_reason",
            {"p": province, "entities": entities, "reason": reason},
        )
        return conn.execute(
            "delete from ops.feed_record_state where province_code = %s and entity = any(%s)",
            (province, entities),
        ).rowcount
