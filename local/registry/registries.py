"""All the entities one stand-in registry serves, generated lazily, and their stats.

    data = RegistryData.for_profile(load_profiles().profile("demo"), "thanh_hoa")
    data.store("ip_right").page(after_seq=None, updated_since=None, limit=100)

Nothing is generated before an entity is first asked for, so a registry (or 34 of them) starts
at once; an entity's generator then costs its profile pools (a fraction of a second for S&T
tasks, far less for the rest) and nothing per record.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from local.registry.context import RegistryContext
from local.registry.data import TaskGenerator, TaskRegistry
from local.registry.enterprise_data import (
    CapabilityAssessmentGenerator,
    InnovationProjectGenerator,
    InnovationSurveyGenerator,
    TechnologyDemandGenerator,
)
from local.registry.entities import BAD_KINDS, ENTITY_DIRT, ENTITY_PATHS
from local.registry.generator import EntityGenerator
from local.registry.ip import IpRightGenerator, TechnologyGenerator
from local.registry.orgs import ExpertGenerator, OrganisationGenerator
from local.registry.profiles import Profile, load_profiles
from local.registry.results import ResultApplicationGenerator
from local.registry.store import RecordStore
from local.registry.synth import TEXT_DIRT, KindSchedule, available_text_dirt
from local.registry.tasks import StTaskGenerator

LEGACY_REGISTRY = "ninh_binh"
LEGACY_PROFILE = "demo"  # sizes of the other entities next to the single-registry S&T tasks

_SIMPLE: dict[str, type[EntityGenerator]] = {
    "st_task": StTaskGenerator,
    "ip_right": IpRightGenerator,
    "organisation": OrganisationGenerator,
    "expert": ExpertGenerator,
    "technology_demand": TechnologyDemandGenerator,
    "innovation_project": InnovationProjectGenerator,
    "innovation_survey": InnovationSurveyGenerator,
    "capability_assessment": CapabilityAssessmentGenerator,
}


def entity_schedule(entity: str, dirt: dict[str, float], bad_share: float) -> KindSchedule:
    """The dirt schedule of an entity in profile mode (S&T tasks also carry the bad kinds)."""
    available = available_text_dirt()
    shares = {kind: bad_share / len(BAD_KINDS) for kind in BAD_KINDS} if entity == "st_task" else {}
    for kind in ENTITY_DIRT[entity]:
        if kind in TEXT_DIRT and kind not in available:
            continue  # TCVN3/VNI need connectors.vietnamese; without it they are left out
        shares[kind] = dirt.get(kind, 0.0)
    return KindSchedule(shares)


class RegistryData:
    """The entities of one registry: a lazily built generator and store per entity."""

    def __init__(
        self,
        ctx: RegistryContext,
        records: dict[str, int],
        dirt: dict[str, float],
        bad_share: float,
        *,
        legacy_tasks: TaskGenerator | None = None,
    ) -> None:
        self.ctx = ctx
        self.registry_id = ctx.registry_id
        self._records = records
        self._dirt = dirt
        self._bad_share = bad_share
        self._legacy_tasks = legacy_tasks
        self._generators: dict[str, Any] = {}
        self._stores: dict[str, RecordStore] = {}

    @classmethod
    def for_profile(cls, profile: Profile, registry_id: str) -> RegistryData:
        profiles = load_profiles()
        config = profiles.registry(registry_id)
        ctx = RegistryContext(config, profile.seed)
        return cls(ctx, profile.records_for(config), profile.dirt, profile.bad_share)

    @classmethod
    def single(cls, records: int, seed: int, bad_share: float) -> RegistryData:
        """The single-registry mode: Ninh Bình's S&T tasks exactly as ever (``records``, ``seed``,
        ``bad_share``), and the other entities at the demo profile's sizes."""
        profiles = load_profiles()
        demo = profiles.profile(LEGACY_PROFILE)
        config = profiles.registry(LEGACY_REGISTRY)
        counts = demo.records_for(config) | {"st_task": records}
        tasks = TaskGenerator(records, seed, bad_share)
        return cls(RegistryContext(config, seed), counts, demo.dirt, bad_share, legacy_tasks=tasks)

    def generator(self, entity: str) -> Any:
        if entity not in ENTITY_PATHS:
            raise KeyError(f"unknown entity {entity!r}")
        generator = self._generators.get(entity)
        if generator is None:
            generator = self._generators[entity] = self._build(entity)
        return generator

    def store(self, entity: str) -> RecordStore:
        store = self._stores.get(entity)
        if store is None:
            generator = self.generator(entity)
            kind: Callable[[Any], RecordStore] = (
                TaskRegistry if isinstance(generator, TaskGenerator) else RecordStore
            )
            store = self._stores[entity] = kind(generator)
        return store

    def _build(self, entity: str) -> Any:
        if entity == "st_task" and self._legacy_tasks is not None:
            return self._legacy_tasks
        schedule = entity_schedule(entity, self._dirt, self._bad_share)
        count = self._records.get(entity, 0)
        if entity == "result_application":
            tasks = self.generator("st_task")
            return ResultApplicationGenerator(self.ctx, count, schedule, tasks)
        if entity == "technology":
            return TechnologyGenerator(self.ctx, count, schedule, self.generator("ip_right"))
        return _SIMPLE[entity](self.ctx, count, schedule)

    def stats(self) -> dict[str, Any]:
        """Per entity: records a full extraction returns, bad and dirty ones by kind, changes.

        The top-level ``records`` / ``bad`` / ``changes`` are the S&T tasks' (as they always were).
        """
        entities = {}
        for entity, path in ENTITY_PATHS.items():
            stats = self.store(entity).stats()
            kinds = stats["kinds"]
            entities[entity] = {
                "path": path,
                "records": stats["records"],
                "bad": {kind: kinds.get(kind, 0) for kind in BAD_KINDS}
                if entity == "st_task"
                else {},
                "dirt": {kind: n for kind, n in kinds.items() if kind not in BAD_KINDS},
                "changes": stats["changes"],
            }
        tasks = entities["st_task"]
        return {
            "registry": self.registry_id,
            "province_code": self.ctx.config.province_code,
            "records": tasks["records"],
            "bad": tasks["bad"],
            "changes": tasks["changes"],
            "entities": entities,
        }
