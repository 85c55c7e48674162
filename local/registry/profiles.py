"""Registry profiles: which registries the stand-in serves and how much (``profiles.yml``).

    profiles = load_profiles()
    demo = profiles.profile("demo")
    demo.records_for(profiles.registries["ninh_binh"])   # {"st_task": 500, ...}

The file is validated on load: an unknown key, entity or dirt kind, a province code missing from
the reference, or merged_from shares that do not add up to 1 raise ValueError naming the file and
the place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from local.registry.entities import BAD_KINDS, DIRT_KINDS, ENTITY_PATHS
from local.registry.reference import provinces

PROFILES_YML = Path(__file__).resolve().with_name("profiles.yml")
_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_PREFIX = re.compile(r"^[A-Z]{1,6}$")


@dataclass(frozen=True)
class Origin:
    """A pre-merger registry whose records a registry carries."""

    name: str  # e.g. "ha_nam"; what records carry in origin_registry
    province_code: str  # old province code, e.g. "35"
    id_prefix: str
    share: float  # of the records dated before 2025-07-01


@dataclass(frozen=True)
class RegistryConfig:
    registry_id: str
    province_code: str
    id_prefix: str
    ordinal: int  # position in the file: a stable small number per registry
    scale: float = 1.0
    merged_from: tuple[Origin, ...] = ()


@dataclass(frozen=True)
class Profile:
    name: str
    seed: int
    bad_share: float
    dirt: dict[str, float] = field(hash=False)
    registries: tuple[str, ...]
    records: dict[str, int] = field(hash=False)

    def records_for(self, registry: RegistryConfig) -> dict[str, int]:
        """Records per entity this profile serves for ``registry`` (scaled)."""
        return {entity: round(n * registry.scale) for entity, n in self.records.items()}


@dataclass(frozen=True)
class Profiles:
    registries: dict[str, RegistryConfig]
    profiles: dict[str, Profile]

    def profile(self, name: str) -> Profile:
        try:
            return self.profiles[name]
        except KeyError:
            known = ", ".join(self.profiles)
            raise ValueError(f"unknown profile {name!r}; known: {known}") from None

    def registry(self, registry_id: str) -> RegistryConfig:
        try:
            return self.registries[registry_id]
        except KeyError:
            raise ValueError(f"unknown registry {registry_id!r}") from None


@cache
def load_profiles(path: Path = PROFILES_YML) -> Profiles:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: not valid YAML: {error}") from None
    where = _Where(path)
    top = where.mapping(document, "the file", {"defaults", "profiles", "registries"})
    defaults = where.mapping(top.get("defaults", {}), "defaults", {"seed", "bad_share", "dirt"})
    registries = {
        registry_id: _registry(where.at(f"registries.{registry_id}"), registry_id, body, n)
        for n, (registry_id, body) in enumerate(
            where.mapping(top.get("registries"), "registries").items()
        )
    }
    profiles = {
        name: _profile(where.at(f"profiles.{name}"), name, body, defaults, registries)
        for name, body in where.mapping(top.get("profiles"), "profiles").items()
    }
    return Profiles(registries, profiles)


class _Where:
    def __init__(self, path: Path, place: str = "") -> None:
        self.path, self.place = path, place

    def at(self, place: str) -> _Where:
        return _Where(self.path, place)

    def fail(self, message: str) -> ValueError:
        place = f" ({self.place})" if self.place else ""
        return ValueError(f"{self.path}{place}: {message}")

    def mapping(self, value: Any, what: str, allowed: set[str] | None = None) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(f"{what} must be a mapping")
        unknown = set(value) - allowed if allowed is not None else set()
        if unknown:
            raise self.fail(f"unknown key(s) in {what}: {', '.join(sorted(map(str, unknown)))}")
        return value

    def share(self, value: Any, what: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise self.fail(f"{what} must be a number within 0..1")
        return float(value)


def _registry(where: _Where, registry_id: str, body: Any, ordinal: int) -> RegistryConfig:
    keys = {"province_code", "id_prefix", "scale", "merged_from"}
    body = where.mapping(body, "the registry", keys)
    if not _ID.match(registry_id):
        raise where.fail("a registry id is lower case letters, digits and _")
    code = str(body.get("province_code", ""))
    if ("new", code) not in provinces():
        raise where.fail(f"province_code {code!r} is not one of the 34 provinces")
    prefix = str(body.get("id_prefix", ""))
    if not _PREFIX.match(prefix):
        raise where.fail("id_prefix must be 1 to 6 capital letters")
    scale = body.get("scale", 1.0)
    if isinstance(scale, bool) or not isinstance(scale, int | float) or scale <= 0:
        raise where.fail("scale must be a positive number")
    origins = []
    for n, entry in enumerate(body.get("merged_from") or []):
        entry_where = where.at(f"{where.place}.merged_from[{n}]")
        entry = entry_where.mapping(
            entry, "merged_from entry", {"origin", "province_code", "id_prefix", "share"}
        )
        old_code = str(entry.get("province_code", ""))
        old = provinces().get(("old", old_code))
        if old is None or old.merged_into != code:
            raise entry_where.fail(f"{old_code!r} is not an old province merged into {code}")
        name, old_prefix = str(entry.get("origin", "")), str(entry.get("id_prefix", ""))
        if not _ID.match(name) or not _PREFIX.match(old_prefix):
            raise entry_where.fail("origin (lower case id) and id_prefix (capitals) are required")
        origins.append(
            Origin(name, old_code, old_prefix, entry_where.share(entry.get("share"), "share"))
        )
    if origins and abs(sum(o.share for o in origins) - 1) > 1e-9:
        raise where.fail("merged_from shares must add up to 1")
    return RegistryConfig(registry_id, code, prefix, ordinal, float(scale), tuple(origins))


def _profile(
    where: _Where,
    name: str,
    body: Any,
    defaults: dict[str, Any],
    registries: dict[str, RegistryConfig],
) -> Profile:
    body = where.mapping(
        body, "the profile", {"registries", "records", "seed", "bad_share", "dirt"}
    )
    listed = body.get("registries")
    if listed == "all":
        ids = tuple(registries)
    elif isinstance(listed, list) and listed:
        ids = tuple(str(registry_id) for registry_id in listed)
        for registry_id in ids:
            if registry_id not in registries:
                raise where.fail(f"unknown registry {registry_id!r}")
    else:
        raise where.fail('registries must be a list of registry ids or "all"')
    records = where.mapping(body.get("records"), "records", set(ENTITY_PATHS))
    for entity, count in records.items():
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise where.fail(f"records.{entity} must be an integer >= 0")
    dirt = where.mapping(body.get("dirt", defaults.get("dirt", {})), "dirt", set(DIRT_KINDS))
    dirt = {kind: where.share(share, f"dirt.{kind}") for kind, share in dirt.items()}
    seed = body.get("seed", defaults.get("seed", 42))
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise where.fail("seed must be an integer")
    bad_share = where.share(body.get("bad_share", defaults.get("bad_share", 0.0)), "bad_share")
    return Profile(name, seed, bad_share, dirt, ids, {e: records.get(e, 0) for e in ENTITY_PATHS})


__all__ = ["BAD_KINDS", "Origin", "Profile", "Profiles", "RegistryConfig", "load_profiles"]
