"""Profile-mode S&T tasks: the single-registry tasks of :mod:`local.registry.data`, localised.

Each record is :class:`~local.registry.data.TaskGenerator`'s clean record, then:

- its origin (pre-merger registry) decides the id prefix, ``province_code`` and
  ``origin_registry``; titles and public bodies name the origin's province;
- company hosts are enterprises of the shared pool, registered where the task comes from, with
  their MST and the name as this registry writes it;
- the profile's bad kinds (the four the S&T task gate quarantines) and dirt are applied.

The fields and bad kinds are those of the single-registry mode, plus ``origin_registry``.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from typing import Any

from local.registry.context import RegistryContext
from local.registry.data import _UNKNOWN_FIELD_CODES, TaskGenerator, localised_names
from local.registry.enterprises import enterprise as pool_enterprise
from local.registry.generator import EntityGenerator
from local.registry.synth import DAY_ZERO, KindSchedule, day_of, index_hash, mix


class StTaskGenerator(EntityGenerator):
    entity = "st_task"
    text_fields = ("title", "host_organisation_name", "principal_investigator")
    amount_field = "budget_state_million_vnd"

    def __init__(self, ctx: RegistryContext, records: int, schedule: KindSchedule) -> None:
        super().__init__(ctx, records, schedule)
        self.tasks = TaskGenerator(records, ctx.seed, 0.0, record_key=self.key)

    def updated_at(self, i: int) -> int:
        return self.tasks.updated_at(i)

    def build(self, i: int, h: int, kind: str | None) -> dict[str, Any]:
        record = self.tasks.record(i)
        # The task's date: its start, or its last update when that is earlier (a proposed task
        # is recorded before it starts), as the S&T task suite reads its province code.
        origin = self.ctx.origin_on(
            min(_day_number(record["start_date"]), day_of(self.tasks.updated_at(i))), mix(h ^ 0x51)
        )
        names = localised_names(origin.province.in_address, origin.province.short_name)
        if origin.id_prefix != "NB":
            record["id"] = origin.id_prefix + record["id"][2:]
        record["title"] = names.get(record["title"], record["title"])
        if record["host_organisation_code"] is not None:  # a company: one of the pool's
            company = index_hash(self.key ^ 0xC0, hash_text(record["host_organisation_name"]))
            index = origin.enterprise_index(company)
            mst, name, _ = pool_enterprise(index)
            record["host_organisation_name"] = self.ctx.written_name(name, mix(h ^ 0x52))
            record["host_organisation_code"] = mst
        else:
            host = record["host_organisation_name"]
            record["host_organisation_name"] = names.get(host, host)
        record["province_code"] = origin.province_code
        record["origin_registry"] = origin.name
        return record

    def spoil_other(self, record: dict[str, Any], kind: str, h: int) -> None:
        if kind == "missing_id":
            record["id"] = None
        elif kind == "unknown_field_code":
            record["field_code"] = _UNKNOWN_FIELD_CODES[(h >> 40) % len(_UNKNOWN_FIELD_CODES)]
        elif kind == "end_before_start":
            record["start_date"], record["end_date"] = record["end_date"], record["start_date"]
        elif kind == "negative_budget":
            record["budget_state_million_vnd"] = -record["budget_state_million_vnd"]
        else:
            super().spoil_other(record, kind, h)


def _day_number(iso_date: str) -> int:
    return (dt.date.fromisoformat(iso_date) - DAY_ZERO).days


@lru_cache(maxsize=4096)
def hash_text(text: str) -> int:
    """A stable 64-bit number for a short text (Python's hash() changes between runs)."""
    value = 0
    for byte in text.encode():
        value = (value * 1_099_511_628_211 ^ byte) & 0xFFFFFFFFFFFFFFFF
    return value
