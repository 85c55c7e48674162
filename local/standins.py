"""Start the local stand-ins of the catalogue's sources and hand out their Airflow connections.

What each catalogue source is served by comes from local/standins.yml: one process serves every
stand-in registry, one every stand-in exchange, and spreadsheet drops are generated as files in
a folder per source. `run_standins` yields `{connection_id: Airflow connection}` for
local.airflow_env.connection_env.

Change events: give `run_standins` an `EventTarget(intake_url, {source id: secret})` and the
stand-in registries send a signed event to the intake for every record changed through their
`POST /_standin/changes` (local/registry/events.py). The intake finds the same secrets in the
connections `signing_connections` returns:

    secrets = {s.id: new_signing_secret() for s in sources if s.events}
    with run_standins(sources, drops, events=EventTarget(intake_url, secrets)) as connections:
        signing = signing_connections(sources, secrets)
        env = connection_env(warehouse_url, {**connections, **signing})
        # python -m connectors.event_intake --port <intake port>, with env in its environment
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from connectors.catalogue import Source
from local.airflow_env import api_connection, drop_connection
from local.registry.events import EventTarget, new_signing_secret  # noqa: F401 (for callers)

STANDINS_YML = Path(__file__).with_name("standins.yml")
DROP_SEED = 42


@dataclass(frozen=True)
class StandIns:
    profile: str
    sources: dict[str, dict[str, Any]]  # catalogue source id → its stand-in


def load_standins(path: Path = STANDINS_YML) -> StandIns:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    sources = data.get("sources") or {}
    for source_id, spec in sources.items():
        if (
            not isinstance(spec, dict)
            or len(spec) != 1
            or next(iter(spec))
            not in (
                "registry",
                "exchange",
                "drops",
            )
        ):
            raise ValueError(
                f"{path}: {source_id} must be one of {{registry: id}}, {{exchange: {{…}}}},"
                " {drops: {…}}"
            )
    return StandIns(profile=data.get("profile", "demo"), sources=sources)


@contextmanager
def run_standins(
    sources: list[Source],
    drops_root: Path,
    standins: StandIns | None = None,
    profile: str | None = None,
    events: EventTarget | None = None,
) -> Iterator[dict[str, dict[str, Any]]]:
    """Serve every source of `sources` locally; yield its Airflow connection per connection id.

    With `events` (secrets by catalogue source id), the stand-in registry of each of those
    sources sends signed change events to `events.intake_url`, as the source's
    `events.subscription` (or `events.subscriptions[source id]`). Secrets of sources that are
    not stand-in registries are ignored: the exchange stand-ins send no events.
    """
    from local.exchange.app import ExchangeSpec
    from local.exchange.process import run_exchanges
    from local.registry.process import run_registries

    standins = standins or load_standins()
    missing = [s.id for s in sources if s.id not in standins.sources]
    if missing:
        raise ValueError(f"no local stand-in for {missing}: add them to {STANDINS_YML}")
    by_kind: dict[str, list[Source]] = {"registry": [], "exchange": [], "drops": []}
    for source in sources:
        by_kind[next(iter(standins.sources[source.id]))].append(source)

    connections: dict[str, dict[str, Any]] = {}
    with ExitStack() as stack:
        if by_kind["registry"]:
            registry_ids = {s.id: standins.sources[s.id]["registry"] for s in by_kind["registry"]}
            running = stack.enter_context(
                run_registries(
                    profile or standins.profile,
                    sorted(set(registry_ids.values())),
                    events=_registry_events(by_kind["registry"], registry_ids, events),
                )
            )
            for source in by_kind["registry"]:
                registry = running[registry_ids[source.id]]
                connections[source.connection_id] = api_connection(
                    registry.base_url, registry.client_id, registry.client_secret
                )
        if by_kind["exchange"]:
            specs = [
                ExchangeSpec(s.id, **standins.sources[s.id]["exchange"])
                for s in by_kind["exchange"]
            ]
            exchanges = stack.enter_context(run_exchanges(specs))
            for source in by_kind["exchange"]:
                exchange = exchanges[source.id]
                connections[source.connection_id] = api_connection(
                    exchange.base_url, source.id, exchange.api_key
                )
        for source in by_kind["drops"]:
            folder = drops_root / source.id
            write_drops(folder, standins.sources[source.id]["drops"])
            connections[source.connection_id] = drop_connection(folder)
        yield connections


def signing_connections(
    sources: list[Source], secrets: dict[str, str]
) -> dict[str, dict[str, Any]]:
    """The Airflow connections holding the sources' event signing secrets, by connection id
    (`events.signing_secret`), for local.airflow_env.connection_env: the intake reads them from
    AIRFLOW_CONN_<ID> (connectors.event_intake.secrets_from_environment)."""
    return {
        source.events.signing_secret: {"conn_type": "generic", "password": secrets[source.id]}
        for source in sources
        if source.events is not None and source.id in secrets
    }


def _registry_events(
    sources: list[Source], registry_ids: dict[str, str], events: EventTarget | None
) -> EventTarget | None:
    """The target of `run_standins` (by source id) as `run_registries` takes it (by registry)."""
    if events is None:
        return None
    secrets, subscriptions = {}, {}
    for source in sources:
        if source.id not in events.secrets:
            continue
        if source.events is None:
            raise ValueError(f"{source.id} has no events subscription in the catalogue")
        registry_id = registry_ids[source.id]
        if registry_id in secrets:
            raise ValueError(f"registry {registry_id} serves two sources; it sends for one only")
        secrets[registry_id] = events.secrets[source.id]
        subscriptions[registry_id] = events.subscriptions.get(source.id, source.events.subscription)
    return EventTarget(events.intake_url, secrets, subscriptions)


def write_drops(folder: Path, spec: dict[str, Any]) -> list[Path]:
    """The report files of a drop stand-in (deterministic, so rewriting them changes nothing)."""
    from local.drops.generate import generate_drops

    paths = []
    for year in spec["years"]:
        paths += generate_drops(
            folder, province=spec["province"], year=year, rows=spec["rows"], seed=DROP_SEED
        )
    return paths
