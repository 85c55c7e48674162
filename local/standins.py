"""Start the local stand-ins of the catalogue's sources and hand out their Airflow connections.

What each catalogue source is served by comes from local/standins.yml: one process serves every
stand-in registry, one every stand-in exchange, and spreadsheet drops are generated as files in
a folder per source. `run_standins` yields `{connection_id: Airflow connection}` for
local.airflow_env.connection_env.
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
) -> Iterator[dict[str, dict[str, Any]]]:
    """Serve every source of `sources` locally; yield its Airflow connection per connection id."""
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
                run_registries(profile or standins.profile, sorted(set(registry_ids.values())))
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


def write_drops(folder: Path, spec: dict[str, Any]) -> list[Path]:
    """The report files of a drop stand-in (deterministic, so rewriting them changes nothing)."""
    from local.drops.generate import generate_drops

    paths = []
    for year in spec["years"]:
        paths += generate_drops(
            folder, province=spec["province"], year=year, rows=spec["rows"], seed=DROP_SEED
        )
    return paths
