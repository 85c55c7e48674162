"""One call per pipeline step, composed from the connectors: what Airflow tasks invoke.

`extract_and_land` takes a catalogue source and the settings of its connection, picks the
connector of the source's system, and lands one batch of one entity with the contract's rules:
its envelope, its standardiser (Vietnamese repairs) and its schema-drift check. Given a
`Window` (a backfill), it lands that window of a registry or exchange entity instead of what is
new, leaving the live cursor as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any

from connectors.catalogue import Source
from connectors.contract_rules import api_rules
from connectors.exchange_api import ENVELOPE_FIELDS, ExchangeClient, exchange_envelope
from connectors.landing import LandResult, Window, land_extraction
from connectors.registry_api import ENTITY_PATHS, RegistryClient
from connectors.warehouse import ensure_schema, record_source

# Resource path of each entity in registry API v1 (kept under this name for bench/ and tests).
REGISTRY_API_V1_PATHS = ENTITY_PATHS


@dataclass(frozen=True)
class SourceConnection:
    """What a source's Airflow connection holds (see docs in dags/sources.yml)."""

    host: str  # base URL of an API, or a drop location URL
    login: str | None = None
    password: str | None = field(default=None, repr=False)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Landing:
    """What one extract-and-land step did: its load batches, and files it rejected."""

    batches: list[LandResult]
    rejected: list[str] = field(default_factory=list)  # one clear error per rejected input


def extract_and_land(
    warehouse_url: str,
    source: Source,
    entity: str,
    connection: SourceConnection,
    window: Window | None = None,
) -> Landing:
    """Extract what is new of `entity` at `source` and land it (one batch; one per file).

    With a `window`, extract the records updated in it instead (one "backfill" batch), without
    reading or moving the cursor. Spreadsheet drops have no date range: each file lands once.
    """
    if window is not None and source.system not in ("registry", "exchange"):
        raise ValueError(
            f"{source.id} is a {source.system}: its files carry no date range to backfill"
        )
    ensure_schema(warehouse_url)
    record_source(
        warehouse_url,
        source.id,
        source.name,
        source.system,
        source.contract,
        source.province_code,
    )
    if source.system == "registry":
        result = extract_and_land_registry(
            warehouse_url,
            source_id=source.id,
            entity=entity,
            base_url=connection.host,
            client_id=connection.login or "",
            client_secret=connection.password or "",
            window=window,
        )
        return Landing([result])
    if source.system == "exchange":
        result = extract_and_land_exchange(
            warehouse_url,
            source_id=source.id,
            entity=entity,
            base_url=connection.host,
            api_key=connection.password or "",
            window=window,
        )
        return Landing([result])
    if source.system == "spreadsheet_drop":
        from connectors.drop_jobs import land_dropped_files

        # The drop location URL: the connection's `location` extra, else its host.
        location = connection.extra.get("location") or connection.host
        return land_dropped_files(warehouse_url, source.id, entity, location)
    raise ValueError(f"no connector for system {source.system!r}")


def extract_and_land_registry(
    warehouse_url: str,
    *,
    source_id: str,
    entity: str,
    base_url: str,
    client_id: str,
    client_secret: str,
    page_size: int = 5000,
    window: Window | None = None,
) -> LandResult:
    """Extract `entity` from a registry API v1 source incrementally (or the records updated in
    `window`) and land it as one batch."""
    ensure_schema(warehouse_url)
    path = REGISTRY_API_V1_PATHS[entity]
    before = window.end if window else None
    with RegistryClient(base_url, client_id, client_secret, page_size=page_size) as client:
        return land_extraction(
            warehouse_url,
            source_id=source_id,
            entity=entity,
            contract="registry-api-v1",
            extract=lambda updated_since: client.iter_pages(path, updated_since, before),
            rules=api_rules("registry-api-v1", entity),
            window=window,
        )


def extract_and_land_exchange(
    warehouse_url: str,
    *,
    source_id: str,
    entity: str,
    base_url: str,
    api_key: str,
    page_size: int = 2000,
    window: Window | None = None,
) -> LandResult:
    """Extract `entity` (listing, transaction) from an exchange API v1 source as one batch:
    what changed since the cursor, or the records modified in `window`."""
    ensure_schema(warehouse_url)
    id_field, _ = ENVELOPE_FIELDS[entity]
    rules = api_rules(
        "exchange-api-v1", entity, envelope=partial(exchange_envelope, entity), id_field=id_field
    )
    before = window.end if window else None
    with ExchangeClient(base_url, api_key, page_size=page_size) as client:
        return land_extraction(
            warehouse_url,
            source_id=source_id,
            entity=entity,
            contract="exchange-api-v1",
            extract=lambda modified_since: client.iter_pages(entity, modified_since, before),
            rules=rules,
            window=window,
        )
