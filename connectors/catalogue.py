"""The declarative source catalogue (dags/sources.yml), loaded and validated.

A malformed catalogue fails as a whole with an error naming the file and line, so Airflow
never generates half of the DAGs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

SYSTEMS = {"registry"}
CONTRACTS = {"registry-api-v1"}
ENTITIES = {"st_task"}

_REQUIRED = (
    "id",
    "name",
    "province_code",
    "system",
    "contract",
    "connection_id",
    "entities",
    "schedule",
    "owner",
)


class CatalogueError(ValueError):
    """The catalogue file is malformed; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class Source:
    id: str
    name: str
    province_code: str
    system: str
    contract: str
    connection_id: str
    entities: tuple[str, ...]
    schedule: str
    owner: str


def load_catalogue(path: Path) -> list[Source]:
    text = path.read_text(encoding="utf-8")
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        raise CatalogueError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(root, yaml.MappingNode):
        raise CatalogueError(f"{path}:1: expected a mapping with a 'sources' list")
    top = {key.value: value for key, value in root.value}
    unknown = set(top) - {"sources"}
    if unknown:
        raise CatalogueError(f"{path}: unknown top-level keys {sorted(unknown)}")
    sources_node = top.get("sources")
    if not isinstance(sources_node, yaml.SequenceNode):
        raise CatalogueError(f"{path}: 'sources' must be a list")
    sources: list[Source] = []
    seen: dict[str, int] = {}
    for node in sources_node.value:
        source = _source(path, node)
        line = node.start_mark.line + 1
        if source.id in seen:
            raise CatalogueError(
                f"{path}:{line}: duplicate source id {source.id!r}"
                f" (first at line {seen[source.id]})"
            )
        seen[source.id] = line
        sources.append(source)
    return sources


def _source(path: Path, node: yaml.Node) -> Source:
    line = node.start_mark.line + 1
    if not isinstance(node, yaml.MappingNode):
        raise CatalogueError(f"{path}:{line}: each source must be a mapping")
    fields = yaml.safe_load(yaml.serialize(node))
    where = f"{path}:{line}"
    unknown = set(fields) - set(_REQUIRED)
    if unknown:
        raise CatalogueError(f"{where}: unknown keys {sorted(unknown)}")
    missing = [key for key in _REQUIRED if fields.get(key) in (None, "", [])]
    if missing:
        raise CatalogueError(f"{where}: missing {missing}")
    for key in _REQUIRED:
        if key != "entities" and not isinstance(fields[key], str):
            raise CatalogueError(f'{where}: {key} must be a string (quote codes like "37")')
    _check_choice(where, "system", fields["system"], SYSTEMS)
    _check_choice(where, "contract", fields["contract"], CONTRACTS)
    entities = fields["entities"]
    if not isinstance(entities, list):
        raise CatalogueError(f"{where}: entities must be a list")
    for entity in entities:
        _check_choice(where, "entity", entity, ENTITIES)
    if len(fields["schedule"].split()) != 5:
        raise CatalogueError(f"{where}: schedule must be a 5-field cron expression")
    return Source(**{**fields, "entities": tuple(entities)})


def _check_choice(where: str, key: str, value: object, allowed: set[str]) -> None:
    if value not in allowed:
        raise CatalogueError(f"{where}: unknown {key} {value!r}; expected one of {sorted(allowed)}")
