"""Test support: every catalogue source synced once against the local stand-ins, without
Airflow — the same calls the sync DAG's tasks make (extract_and_land → run_gate →
publish_batch → recheck_references), so the warehouse models can be tested on what the demo
lands in a fraction of its time."""

from __future__ import annotations

from pathlib import Path

from connectors.catalogue import load_catalogue
from connectors.jobs import SourceConnection, extract_and_land
from expectations.gate import (
    BatchRules,
    GateFailedError,
    publish_batch,
    recheck_references,
    run_gate,
)
from local.standins import run_standins


def sync_every_source(warehouse_url: str, drops_root: Path, report_dir: Path) -> dict[str, int]:
    """Land, gate and publish every entity of every catalogue source; returns batches per
    state ("published", "blocked")."""
    sources = load_catalogue()
    counts = {"published": 0, "blocked": 0}
    with run_standins(sources, drops_root) as connections:
        for source in sources:
            spec = connections[source.connection_id]
            connection = SourceConnection(
                host=spec.get("host", ""),
                login=spec.get("login"),
                password=spec.get("password"),
                extra=spec.get("extra", {}),
            )
            rules = BatchRules.from_mapping(dict(source.quality))
            for entity in source.entities:
                landing = extract_and_land(warehouse_url, source, entity, connection)
                published = False
                for batch in landing.batches:
                    try:
                        run_gate(warehouse_url, batch.batch_id, rules, report_dir=report_dir)
                    except GateFailedError:
                        counts["blocked"] += 1
                        continue
                    publish_batch(warehouse_url, batch.batch_id)
                    counts["published"] += 1
                    published = True
                if published:
                    recheck_references(warehouse_url, entity)
    return counts
