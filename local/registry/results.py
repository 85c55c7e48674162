"""Research result application reports: task code + report year 1..5 after acceptance.

Every report refers to an S&T task of the same registry that was accepted with a passing rating
(status ``accepted`` or ``applied``) and is served clean (no defect, never re-sent); report year
``y`` is dated about ``y`` years after the acceptance. Reports are therefore not spread evenly
over time like the other entities: on first use the generator walks the registry's tasks in a
fixed pseudo-random order, collects their (report date, task, year) until it has as many as asked
(fewer if the tasks run out), and orders them by date. That list (a few bytes per report) is the
only thing it keeps.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
from functools import cached_property
from typing import Any, Protocol

from local.registry.context import OriginInfo, RegistryContext
from local.registry.generator import EntityGenerator
from local.registry.synth import (
    DAY_ZERO,
    EPOCH_DAY_ZERO,
    MERGER_EPOCH,
    UPDATED_AT_LAST,
    KindSchedule,
    day_string,
    mix,
    seed_key,
)
from local.registry.vocab import EFFECTS

REPORT_YEARS = 5
ELIGIBLE_STATUSES = ("accepted", "applied")
_NOT_APPLIED = (
    "Chưa ứng dụng: chưa tìm được đơn vị tiếp nhận",
    "Chưa ứng dụng: đang hoàn thiện quy trình trước khi chuyển giao",
    "Chưa ứng dụng: thiếu kinh phí nhân rộng mô hình",
)


class Tasks(Protocol):
    records: int

    def record(self, i: int) -> dict[str, Any]: ...
    def changeable(self, i: int) -> bool: ...


class ResultApplicationGenerator(EntityGenerator):
    entity = "result_application"
    text_fields = ("effect", "application_place", "beneficiary_enterprise_name")
    mst_field = "beneficiary_enterprise_code"
    date_field = "report_date"
    amount_field = "revenue_million_vnd"

    def __init__(
        self, ctx: RegistryContext, records: int, schedule: KindSchedule, tasks: Tasks
    ) -> None:
        self.tasks = tasks
        super().__init__(ctx, records, schedule)

    def _set_records(self, records: int) -> None:
        self._wanted = records  # how many there are is known once the reports are collected

    @cached_property
    def _reports(self) -> tuple[list[int], list[int], list[int]]:
        """(epoch seconds, task index, report year) of every report, ordered by date."""
        found: list[tuple[int, int, int]] = []
        n = self.tasks.records
        key = seed_key(self.seed, self.ctx.registry_id, "report-walk")
        stride = _coprime(n, max(1, int(n * 0.618)))
        for step in range(n):
            if len(found) >= self._wanted:
                break
            t = (step * stride + key) % n
            if not self.tasks.changeable(t):
                continue
            task = self.tasks.record(t)
            if task["status"] not in ELIGIBLE_STATUSES or task["acceptance_rating"] == "failed":
                continue
            accepted = _day_number(task["acceptance_date"])
            h = mix(key ^ t)
            for year in range(1, REPORT_YEARS + 1):
                day = accepted + 365 * year + (h >> (8 * year)) % 90
                moment = EPOCH_DAY_ZERO + day * 86400 + (h >> 40) % 86400
                if moment > UPDATED_AT_LAST or len(found) >= self._wanted:
                    break
                found.append((moment, t, year))
        found.sort()
        return [f[0] for f in found], [f[1] for f in found], [f[2] for f in found]

    @property
    def records(self) -> int:  # type: ignore[override]
        return len(self._reports[0])

    def updated_at(self, i: int) -> int:
        return self._reports[0][i]

    def first_index_updated_since(self, epoch_seconds: int) -> int:
        return bisect.bisect_left(self._reports[0], epoch_seconds)

    def build(self, i: int, h: int, kind: str | None) -> dict[str, Any]:
        moment = self._reports[0][i]
        task = self.tasks.record(self._reports[1][i])
        year = self._reports[2][i]
        origin = self._origin(task["province_code"], moment, h)
        applied = (h >> 8) % 100 < 75 or kind in ("mst_check_digit", "amount_wrong_unit")
        commune, place = origin.commune(mix(h ^ 0x7A))
        beneficiary = code = revenue = None
        if applied and ((h >> 16) % 10 < 6 or kind in ("mst_check_digit", "amount_wrong_unit")):
            _, code, beneficiary = self.ctx.enterprise(origin, mix(h ^ 0x7B))
            revenue = round(20 + (h >> 24) % 5000 + (h >> 58) / 10, 1)
        if applied:
            host = beneficiary or task["host_organisation_name"]
            application_place = f"{host.strip()}, {place}, {origin.province.in_address}"
            effect = EFFECTS[(h >> 36) % len(EFFECTS)].format(n=5 + (h >> 40) % 40)
        else:
            application_place = None
            effect = _NOT_APPLIED[(h >> 36) % len(_NOT_APPLIED)]
        day = (moment - EPOCH_DAY_ZERO) // 86400
        record = self.envelope(f"{task['id']}-BC{year}", i)
        record.update(
            task_code=task["id"],
            report_year=year,
            reporting_year=int(day_string(day)[:4]),
            applied=applied,
            application_place=application_place,
            application_province_code=origin.province_code,
            application_commune_code=commune if applied else None,
            beneficiary_enterprise_name=beneficiary,
            beneficiary_enterprise_code=code,
            revenue_million_vnd=revenue,
            effect=effect,
            report_date=day_string(day),
            origin_registry=origin.name,
        )
        return record

    def _origin(self, task_province: str, moment: int, h: int) -> OriginInfo:
        """Before the merger, the pre-merger registry of the task's province; after, this one."""
        if moment >= MERGER_EPOCH:
            return self.ctx.current
        for _, info in self.ctx.pre_merger:
            if info.province_code == task_province:
                return info
        return self.ctx.origin_at(moment, h)


def _day_number(iso_date: str) -> int:
    year, month, day = (int(part) for part in iso_date.split("-"))
    return (dt.date(year, month, day) - DAY_ZERO).days


def _coprime(n: int, start: int) -> int:
    stride = max(1, start)
    while n > 1 and math.gcd(stride, n) != 1:
        stride += 1
    return stride
