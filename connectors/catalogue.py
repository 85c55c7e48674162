"""The declarative source catalogue (dags/sources.yml), loaded and validated.

Every source the pipeline extracts from is one entry: what it is (province, system, contract),
what to extract (entities), how to reach it (an Airflow connection id, never a secret), when to
run (change events, with a cron as the safety net) and who answers for it. DAGs are generated
from the entries, so adding a province or a registry is an edit of the YAML file.

A malformed catalogue fails as a whole with an error naming the file and line, so Airflow never
generates half of the DAGs.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from croniter import CroniterBadDateError, CroniterError, croniter

DEFAULT_PATH = Path(__file__).resolve().parents[1] / "dags" / "sources.yml"
# Points the DAG files at another catalogue (a test's, or a deployment's own).
PATH_ENV = "STI_SOURCE_CATALOGUE"

REGISTRY_ENTITIES = (
    "st_task",
    "result_application",
    "ip_right",
    "organisation",
    "expert",
    "technology",
    "technology_demand",
    "innovation_project",
    "innovation_survey",
    "capability_assessment",
)
EXCHANGE_ENTITIES = ("listing", "transaction")
SPREADSHEET_ENTITIES = ("stat_form_04", "stat_form_06", "stat_form_08")


@dataclass(frozen=True, slots=True)
class System:
    contracts: tuple[str, ...]
    entities: tuple[str, ...]


# What each kind of system can serve: the contract it speaks and the entities it may carry.
SYSTEMS = {
    "registry": System(("registry-api-v1",), REGISTRY_ENTITIES),
    "exchange": System(("exchange-api-v1",), EXCHANGE_ENTITIES),
    "spreadsheet_drop": System(("spreadsheet-forms-v1",), SPREADSHEET_ENTITIES),
}

_REQUIRED = ("id", "name", "system", "contract", "connection_id", "entities", "schedule", "owner")
_OPTIONAL = ("province_code", "events", "docs", "quality", "pool")
_EVENT_KEYS = ("subscription", "signing_secret")
_EVENT_OPTIONAL = ("max_pending_minutes",)
DEFAULT_MAX_PENDING_MINUTES = 15  # an event waiting longer than this calls the notifier
_POOL_KEYS = ("name", "slots")
DEFAULT_POOL_SLOTS = 2  # concurrent extraction tasks against one source host
# Batch-level quality rules a source may tune (expectations.gate.BatchRules): share limits are
# fractions in [0, 1], the others whole numbers.
QUALITY_KEYS = {
    "max_quarantined_share": float,
    "share_min_rows": int,
    "max_volume_drop": float,
    "volume_window": int,
    "volume_min_baseline": int,
}
_ID = re.compile(r"[a-z][a-z0-9_]*\Z")
_PROVINCE_CODE = re.compile(r"\d\d\Z")


class CatalogueError(ValueError):
    """The catalogue file is malformed; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class EventSubscription:
    """Where a source's change events come from and how they are authenticated."""

    subscription: str  # the source's id in its change-event stream
    signing_secret: str  # Airflow connection id holding the HMAC key the events are signed with
    max_pending_minutes: int = DEFAULT_MAX_PENDING_MINUTES  # older pending events: notify


@dataclass(frozen=True, slots=True)
class HostPool:
    """The Airflow pool bounding the extraction tasks that call one source host at a time."""

    name: str
    slots: int


@dataclass(frozen=True, slots=True)
class Source:
    id: str
    name: str
    province_code: str | None  # today's 2-digit code (QĐ 19/2025); None for a national system
    system: str
    contract: str
    connection_id: str
    entities: tuple[str, ...]
    schedule: str
    owner: str
    events: EventSubscription | None = None
    docs: str | None = None
    quality: tuple[tuple[str, float | int], ...] = ()  # overrides of the gate's batch rules
    pool: HostPool | None = None  # None: a pool of its own, `<id>` with DEFAULT_POOL_SLOTS

    @property
    def host_pool(self) -> HostPool:
        return self.pool or HostPool(f"source__{self.id}", DEFAULT_POOL_SLOTS)


def catalogue_path() -> Path:
    return Path(os.environ.get(PATH_ENV) or DEFAULT_PATH)


def load_catalogue(path: Path | None = None) -> list[Source]:
    path = path or catalogue_path()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogueError(f"{path}: cannot read the source catalogue: {exc}") from exc
    except UnicodeDecodeError as exc:
        line = exc.object.count(b"\n", 0, exc.start) + 1
        raise CatalogueError(
            f"{path}:{line}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x}"
            f" at offset {exc.start}); save the catalogue as UTF-8"
        ) from None
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        raise CatalogueError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(root, yaml.MappingNode):
        raise CatalogueError(f"{path}:1: expected a mapping with a 'sources' list")
    top = _mapping(path, root)
    unknown = [key for key in top if key != "sources"]
    if unknown:
        raise CatalogueError(
            f"{_at(path, top[unknown[0]][0])}: unknown top-level key {unknown[0]!r}"
        )
    if "sources" not in top or not isinstance(top["sources"][1], yaml.SequenceNode):
        raise CatalogueError(f"{path}: 'sources' must be a list")
    sources: list[Source] = []
    seen: dict[str, int] = {}
    pools: dict[str, tuple[int, int]] = {}  # name → (slots, line first given)
    for node in top["sources"][1].value:
        source = _source(path, node)
        line = node.start_mark.line + 1
        if source.id in seen:
            raise CatalogueError(
                f"{path}:{line}: duplicate source id {source.id!r}"
                f" (first at line {seen[source.id]})"
            )
        seen[source.id] = line
        pool = source.host_pool
        if pools.setdefault(pool.name, (pool.slots, line))[0] != pool.slots:
            raise CatalogueError(
                f"{path}:{line}: pool {pool.name!r} has {pool.slots} slots here and"
                f" {pools[pool.name][0]} at line {pools[pool.name][1]}; one host, one limit"
            )
        sources.append(source)
    return sources


def host_pools(sources: list[Source]) -> dict[str, int]:
    """Airflow pool name → slots, for the extraction tasks of `sources`."""
    return {source.host_pool.name: source.host_pool.slots for source in sources}


def _source(path: Path, node: yaml.Node) -> Source:
    if not isinstance(node, yaml.MappingNode):
        raise CatalogueError(f"{_at(path, node)}: each source must be a mapping")
    where = _at(path, node)
    fields = _mapping(path, node)
    for key, (key_node, _) in fields.items():
        if key not in _REQUIRED and key not in _OPTIONAL:
            expected = ", ".join(_REQUIRED + _OPTIONAL)
            raise CatalogueError(
                f"{_at(path, key_node)}: unknown key {key!r} (expected {expected})"
            )
    missing = [key for key in _REQUIRED if key not in fields]
    if missing:
        raise CatalogueError(f"{where}: source is missing {', '.join(missing)}")
    values = {
        key: _scalar(path, key, *fields[key])
        for key in fields
        if key not in ("events", "quality", "pool")
    }

    for key in _REQUIRED:
        if key == "entities":
            continue
        if not isinstance(values[key], str) or not values[key].strip():
            raise CatalogueError(f"{_at(path, fields[key][1])}: {key} must be a non-empty string")
    if not _ID.match(values["id"]):
        raise CatalogueError(
            f"{_at(path, fields['id'][1])}: id {values['id']!r} must be lower_snake_case"
        )
    province = values.get("province_code")
    if province is not None and not (isinstance(province, str) and _PROVINCE_CODE.match(province)):
        raise CatalogueError(
            f"{_at(path, fields['province_code'][1])}: province_code must be a quoted 2-digit"
            ' code like "37", or null for a national system'
        )
    system = SYSTEMS.get(values["system"])
    if system is None:
        raise CatalogueError(
            f"{_at(path, fields['system'][1])}: unknown system {values['system']!r};"
            f" expected one of {sorted(SYSTEMS)}"
        )
    if values["contract"] not in system.contracts:
        raise CatalogueError(
            f"{_at(path, fields['contract'][1])}: a {values['system']} speaks"
            f" {' or '.join(system.contracts)}, not {values['contract']!r}"
        )
    entities = _entities(path, fields["entities"][1], values["system"], system)
    problem = _cron_problem(values["schedule"])
    if problem:
        raise CatalogueError(
            f"{_at(path, fields['schedule'][1])}: schedule must be a 5-field cron expression:"
            f" {problem}"
        )
    docs = values.get("docs")
    if docs is not None and not isinstance(docs, str):
        raise CatalogueError(f"{_at(path, fields['docs'][1])}: docs must be text")
    return Source(
        id=values["id"],
        name=values["name"],
        province_code=province,
        system=values["system"],
        contract=values["contract"],
        connection_id=values["connection_id"],
        entities=entities,
        schedule=values["schedule"],
        owner=values["owner"],
        events=_events(path, fields["events"]) if "events" in fields else None,
        docs=docs,
        quality=_quality(path, fields["quality"]) if "quality" in fields else (),
        pool=_pool(path, fields["pool"]) if "pool" in fields else None,
    )


def _cron_problem(expression: str) -> str | None:
    """Why the DAG's CronTriggerTimetable would never run `expression`, or None.

    croniter is what Airflow parses the cron with (it comes with Airflow).
    """
    if len(expression.split()) != 5:
        return f"{expression!r} has {len(expression.split())} fields"
    try:
        # Parsing alone accepts "0 0 31 2 *": a next run shows the safety net ever fires.
        croniter(expression, datetime(2000, 1, 1)).get_next(datetime)
    except CroniterBadDateError:
        return f"{expression!r} never fires"
    except CroniterError as exc:
        return str(exc)  # names the expression and what is wrong with it
    return None


def _entities(path: Path, node: yaml.Node, system_name: str, system: System) -> tuple[str, ...]:
    if not isinstance(node, yaml.SequenceNode) or not node.value:
        raise CatalogueError(f"{_at(path, node)}: entities must be a non-empty list")
    entities = []
    for item in node.value:
        if item.value not in system.entities:
            raise CatalogueError(
                f"{_at(path, item)}: unknown entity {item.value!r} for a {system_name};"
                f" expected one of {list(system.entities)}"
            )
        if item.value in entities:
            raise CatalogueError(f"{_at(path, item)}: entity {item.value!r} listed twice")
        entities.append(item.value)
    return tuple(entities)


def _events(path: Path, pair: tuple[yaml.Node, yaml.Node]) -> EventSubscription:
    key_node, node = pair
    if not isinstance(node, yaml.MappingNode):
        raise CatalogueError(
            f"{_at(path, key_node)}: events must be a mapping with {', '.join(_EVENT_KEYS)}"
        )
    fields = _mapping(path, node)
    for key, (inner_key, value) in fields.items():
        if key not in _EVENT_KEYS + _EVENT_OPTIONAL:
            raise CatalogueError(
                f"{_at(path, inner_key)}: unknown key {key!r} in events"
                f" (expected {', '.join(_EVENT_KEYS + _EVENT_OPTIONAL)})"
            )
        if not isinstance(value, yaml.ScalarNode) or not value.value:
            raise CatalogueError(f"{_at(path, value)}: events.{key} must be a non-empty string")
    missing = [key for key in _EVENT_KEYS if key not in fields]
    if missing:
        raise CatalogueError(f"{_at(path, node)}: events is missing {', '.join(missing)}")
    subscription = EventSubscription(**{key: fields[key][1].value for key in _EVENT_KEYS})
    if "max_pending_minutes" in fields:
        value_node = fields["max_pending_minutes"][1]
        minutes = _whole_number(path, "events.max_pending_minutes", value_node)
        subscription = replace(subscription, max_pending_minutes=minutes)
    return subscription


def _pool(path: Path, pair: tuple[yaml.Node, yaml.Node]) -> HostPool:
    key_node, node = pair
    if not isinstance(node, yaml.MappingNode):
        raise CatalogueError(f"{_at(path, key_node)}: pool must be a mapping with name, slots")
    fields = _mapping(path, node)
    for key, (inner_key, _) in fields.items():
        if key not in _POOL_KEYS:
            raise CatalogueError(
                f"{_at(path, inner_key)}: unknown key {key!r} in pool (expected name, slots)"
            )
    name_node = fields.get("name", (None, None))[1]
    if not isinstance(name_node, yaml.ScalarNode) or not _ID.match(name_node.value or ""):
        raise CatalogueError(f"{_at(path, name_node or node)}: pool.name must be lower_snake_case")
    slots_node = fields.get("slots", (None, None))[1]
    if slots_node is None:
        return HostPool(name_node.value, DEFAULT_POOL_SLOTS)
    return HostPool(name_node.value, _whole_number(path, "pool.slots", slots_node))


def _whole_number(path: Path, key: str, node: yaml.Node) -> int:
    value = yaml.safe_load(yaml.serialize(node)) if isinstance(node, yaml.ScalarNode) else None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise CatalogueError(f"{_at(path, node)}: {key} must be a whole number ≥ 1")
    return value


def _quality(path: Path, pair: tuple[yaml.Node, yaml.Node]) -> tuple[tuple[str, Any], ...]:
    key_node, node = pair
    if not isinstance(node, yaml.MappingNode):
        raise CatalogueError(f"{_at(path, key_node)}: quality must be a mapping")
    settings = []
    for key, (inner_key, value_node) in _mapping(path, node).items():
        kind = QUALITY_KEYS.get(key)
        if kind is None:
            raise CatalogueError(
                f"{_at(path, inner_key)}: unknown key {key!r} in quality"
                f" (expected {', '.join(QUALITY_KEYS)})"
            )
        value = yaml.safe_load(yaml.serialize(value_node))
        valid = (
            isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1
            if kind is float
            else isinstance(value, int) and not isinstance(value, bool) and value >= 1
        )
        if not valid:
            expected = "a fraction between 0 and 1" if kind is float else "a whole number ≥ 1"
            raise CatalogueError(f"{_at(path, value_node)}: quality.{key} must be {expected}")
        settings.append((key, kind(value)))
    return tuple(settings)


def _mapping(path: Path, node: yaml.MappingNode) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    """key → (key node, value node), refusing repeated keys (PyYAML keeps the last silently)."""
    pairs: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    for key_node, value_node in node.value:
        if key_node.value in pairs:
            raise CatalogueError(f"{_at(path, key_node)}: key {key_node.value!r} repeated")
        pairs[key_node.value] = (key_node, value_node)
    return pairs


def _scalar(path: Path, key: str, key_node: yaml.Node, node: yaml.Node) -> Any:
    value = yaml.safe_load(yaml.serialize(node))
    if key != "entities" and isinstance(value, list | dict):
        raise CatalogueError(f"{_at(path, key_node)}: {key} must be a single value")
    return value


def _at(path: Path, node: yaml.Node) -> str:
    return f"{path}:{node.start_mark.line + 1}"
