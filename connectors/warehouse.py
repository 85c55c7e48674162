"""The warehouse's landing zone and ledger schema (`warehouse.sql`), applied idempotently."""

from __future__ import annotations

from pathlib import Path

import psycopg

SCHEMA_SQL = Path(__file__).with_name("warehouse.sql")

# Serialises concurrent first-time schema creation from parallel tasks.
_SCHEMA_LOCK_KEY = 7_324_001


def ensure_schema(warehouse_url: str) -> None:
    """Create the raw and ops schemas, tables and helper functions if they are missing."""
    with psycopg.connect(warehouse_url, autocommit=True) as conn, conn.transaction():
        conn.execute("select pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK_KEY,))
        for name in ("national_feed.sql", "warehouse.sql", "warehouse_publish.sql"):
            conn.execute(SCHEMA_SQL.with_name(name).read_text(encoding="utf-8"))


def record_source(
    warehouse_url: str,
    source_id: str,
    name: str,
    system: str,
    contract: str,
    province_code: str | None,
) -> None:
    """Record (or update) a catalogue source in ops.source, which the warehouse models read."""
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        conn.execute(
            "insert into ops.source (source_id, name, system, contract, province_code)"
            " values (%s, %s, %s, %s, %s) on conflict (source_id) do update"
            " set name = excluded.name, system = excluded.system, contract = excluded.contract,"
            " province_code = excluded.province_code, recorded_at = now()"
            " where (ops.source.name, ops.source.system, ops.source.contract,"
            " ops.source.province_code) is distinct from (excluded.name, excluded.system,"
            " excluded.contract, excluded.province_code)",
            (source_id, name, system, contract, province_code),
        )
