"""What registries hold about enterprises: technology demands, innovation-support projects,
the enterprise innovation survey and technology-capability assessments (TT 17/2019).

Surveys and assessments are keyed by enterprise and year: within one year of one registry each
enterprise appears once (records of a year take distinct pool indices of their origin's block,
by a stride coprime with the block size), as long as the year has no more records than the
block has enterprises.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
import random
from functools import cache
from typing import Any

from local.registry.context import OriginInfo, RegistryContext
from local.registry.enterprises import enterprise as pool_enterprise
from local.registry.enterprises import vsic_class
from local.registry.generator import EntityGenerator
from local.registry.orgs import vsic_version
from local.registry.synth import DAY_ZERO, KindSchedule, day_of, day_string, mix
from local.registry.vocab import (
    APPLICATIONS,
    DEMAND_TEMPLATES,
    FIELD_CODES,
    PROJECT_TEMPLATES,
    nfc,
)


def _application(h: int) -> tuple[str, str, str]:
    """(activity, technology, field code) drawn with hash bits ``h``."""
    activity, technology, codes = APPLICATIONS[h % len(APPLICATIONS)]
    return activity, technology, codes[(h >> 16) % len(codes)] if codes else FIELD_CODES[0]


# Budgets in million VND: a rough log-uniform spread (50 .. 20,000).
_BUDGETS = tuple(round(50 * 400 ** (n / 255), 1) for n in range(256))


class TechnologyDemandGenerator(EntityGenerator):
    entity = "technology_demand"
    text_fields = ("description", "enterprise_name", "address")
    mst_field = "enterprise_code"
    date_field = "posted_date"
    amount_field = "budget_million_vnd"

    def build(self, i: int, h: int, kind: str | None) -> dict[str, Any]:
        day = day_of(self.updated_at(i))
        posted = day - (h >> 34) % 400
        origin = self.ctx.origin_on(posted, h)  # the codes of the posting date
        _, code, name = self.ctx.enterprise(origin, mix(h ^ 0x3A))
        activity, technology, field_code = _application(h >> 10)
        template = DEMAND_TEMPLATES[(h >> 30) % len(DEMAND_TEMPLATES)]
        age = day - posted
        status = "open" if age < 120 else ("matched", "closed", "open")[(h >> 44) % 3]
        commune, address = origin.address(mix(h ^ 0x3B))
        record = self.envelope(f"{origin.id_prefix}-NCCN-{i + 1:06d}", i)
        record.update(
            enterprise_name=name,
            enterprise_code=code,
            description=nfc(template.format(activity=activity, technology=technology)),
            field_code=field_code,
            budget_million_vnd=_BUDGETS[(h >> 48) % len(_BUDGETS)],
            status=status,
            posted_date=day_string(posted),
            address=address,
            province_code=origin.province_code,
            commune_code=commune,
            origin_registry=origin.name,
        )
        return record


_PROJECT_STATUSES = ("completed",) * 5 + ("in_progress",) * 3 + ("approved",) * 2 + ("cancelled",)


class InnovationProjectGenerator(EntityGenerator):
    """Innovation projects of enterprises supported from the provincial budget."""

    entity = "innovation_project"
    text_fields = ("project_name", "enterprise_name", "address")
    mst_field = "enterprise_code"
    date_field = "decision_date"
    amount_field = "support_amount_million_vnd"

    def build(self, i: int, h: int, kind: str | None) -> dict[str, Any]:
        day = day_of(self.updated_at(i))
        status = _PROJECT_STATUSES[(h >> 34) % len(_PROJECT_STATUSES)]
        decided = day - (h >> 38) % 300 - (200 if status == "completed" else 0)
        origin = self.ctx.origin_on(decided, h)  # the codes of the support decision's date
        _, code, name = self.ctx.enterprise(origin, mix(h ^ 0x4A))
        activity, technology, field_code = _application(h >> 10)
        template = PROJECT_TEMPLATES[(h >> 30) % len(PROJECT_TEMPLATES)]
        support = round(100 + (h >> 46) % 2900 + (h >> 58) / 10, 1)  # 100 .. 3,000
        products = (h >> 20) % 7 if status == "completed" else 0
        commune, address = origin.address(mix(h ^ 0x4B))
        decision_day = decided
        year = int(day_string(decision_day)[:4])
        record = self.envelope(f"{origin.id_prefix}-DMST-{year}-{i + 1:05d}", i)
        record.update(
            enterprise_name=name,
            enterprise_code=code,
            project_name=nfc(template.format(activity=activity, technology=technology)),
            field_code=field_code,
            support_year=year,
            support_amount_million_vnd=support,
            total_amount_million_vnd=round(support * (15 + (h >> 4) % 26) / 10, 1),
            commercialised_products=products,
            status=status,
            decision_number=f"{100 + (h >> 24) % 3800}/QĐ-UBND",
            decision_date=day_string(decision_day),
            address=address,
            province_code=origin.province_code,
            commune_code=commune,
            origin_registry=origin.name,
        )
        return record


# --- Keyed by enterprise and year -----------------------------------------------------------

_YEARS = range(2019, 2028)


@cache
def _stride(size: int) -> int:
    """A stride coprime with ``size`` near its golden section: consecutive picks spread out."""
    stride = max(1, int(size * 0.6180339887))
    while math.gcd(stride, size) != 1:
        stride += 1
    return stride


def _first_day_of(year: int) -> int:
    return (dt.date(year, 1, 1) - DAY_ZERO).days


class _PerYearGenerator(EntityGenerator):
    """Picks one distinct enterprise per record within each calendar year of ``updated_at``."""

    salt = 0

    def __init__(self, ctx: RegistryContext, records: int, schedule: KindSchedule) -> None:
        super().__init__(ctx, records, schedule)
        epochs = [int(dt.datetime(y, 1, 1, tzinfo=dt.UTC).timestamp()) for y in _YEARS]
        self._year_starts = [self.first_index_updated_since(e) for e in epochs]

    def year_of(self, i: int) -> int:
        """The calendar year of record ``i``'s update."""
        return _YEARS[bisect.bisect_right(self._year_starts, i) - 1]

    def year_and_enterprise(self, i: int, origin: OriginInfo) -> tuple[int, int]:
        """(calendar year of the update, pool index of the record's enterprise)."""
        n = bisect.bisect_right(self._year_starts, i) - 1
        year = _YEARS[n]
        block = origin.enterprises
        offset = mix(self.key ^ self.salt ^ year) % len(block)
        position = ((i - self._year_starts[n]) * _stride(len(block)) + offset) % len(block)
        return year, block[position]

    def enterprise_fields(self, index: int, h: int) -> tuple[str, str]:
        mst, name, _ = pool_enterprise(index)
        return mst, self.ctx.written_name(name, h)


INNOVATION_KINDS = ("product", "process", "organisational", "marketing")


class InnovationSurveyGenerator(_PerYearGenerator):
    """The enterprise innovation survey: one answer per enterprise and survey year."""

    entity = "innovation_survey"
    text_fields = ("enterprise_name", "address")
    mst_field = "enterprise_code"
    date_field = "submitted_date"
    amount_field = "rd_expenditure_million_vnd"
    salt = 0x5A

    def build(self, i: int, h: int, kind: str | None) -> dict[str, Any]:
        day = day_of(self.updated_at(i))  # submitted the day of the update
        origin = self.ctx.origin_on(day, h)
        year, index = self.year_and_enterprise(i, origin)
        code, name = self.enterprise_fields(index, mix(h ^ 0x5B))
        active = (h >> 10) % 100 < 48 or kind == "amount_wrong_unit"
        kinds = [k for n, k in enumerate(INNOVATION_KINDS) if (h >> (12 + n)) & 1] if active else []
        if active and not kinds:
            kinds = [INNOVATION_KINDS[(h >> 16) % 4]]
        commune, address = origin.address(mix(h ^ 0x5C))
        record = self.envelope(f"{origin.id_prefix}-DTDN-{year - 1}-{i + 1:06d}", i)
        record.update(
            enterprise_code=code,
            enterprise_name=name,
            survey_year=year - 1,  # answered in the year after the one it describes
            vsic_code=vsic_class(index),
            vsic_version=vsic_version(day, h >> 20),
            employees=5 + (h >> 24) % 1500,
            innovation_activity=active,
            innovation_kinds=kinds,
            rd_expenditure_million_vnd=(
                round(10 + (h >> 36) % 4990 + (h >> 58) / 10, 1) if active else 0
            ),
            submitted_date=day_string(day),
            address=address,
            province_code=origin.province_code,
            commune_code=commune,
            origin_registry=origin.name,
        )
        return record


# TT 17/2019/TT-BKHCN: five groups of criteria with these maxima (total 100) and 26 criteria
# in all. The split of each group's points over its criteria is this stand-in's own.
CRITERIA_MAXIMA = {
    "T": (6, 4, 4, 4, 4, 4, 4),  # technology and equipment, 30
    "E": (4, 4, 3, 3, 3, 3),  # efficiency of using the technology, 20
    "O": (4, 4, 4, 4, 3),  # organisation and management, 19
    "R": (5, 4, 4, 4),  # research and development, 17
    "I": (4, 4, 3, 3),  # innovation, 14
}
TECHNOLOGY_LEVELS = (
    (35, "lagging"),
    (50, "below_average"),
    (65, "average"),
    (80, "above_average"),
    (101, "advanced"),
)


@cache
def _score_pool(size: int = 4096) -> tuple[tuple[dict[str, float], dict[str, float], float, str]]:
    """(criteria, group scores, total, level) profiles; records share these (never mutated)."""
    rng = random.Random(20190101)
    pool = []
    for _ in range(size):
        quality = rng.betavariate(3, 3)  # how advanced the enterprise is overall
        criteria, groups, total = {}, {}, 0
        for group, maxima in CRITERIA_MAXIMA.items():
            group_tenths = 0
            for n, maximum in enumerate(maxima, 1):
                share = min(1.0, max(0.0, quality + rng.gauss(0, 0.15)))
                tenths = round(share * maximum * 10)
                criteria[f"{group}{n}"] = tenths / 10
                group_tenths += tenths
            groups[group] = group_tenths / 10
            total += group_tenths
        level = next(name for limit, name in TECHNOLOGY_LEVELS if total / 10 < limit)
        pool.append((criteria, groups, total / 10, level))
    return tuple(pool)


class CapabilityAssessmentGenerator(_PerYearGenerator):
    """Technology-capability assessments: one per enterprise, sector and year."""

    entity = "capability_assessment"
    text_fields = ("enterprise_name", "address")
    mst_field = "enterprise_code"
    date_field = "assessment_date"
    salt = 0x6A

    def build(self, i: int, h: int, kind: str | None) -> dict[str, Any]:
        day = day_of(self.updated_at(i))
        assessed = max(day - (h >> 26) % 20, _first_day_of(self.year_of(i)))
        origin = self.ctx.origin_on(assessed, h)  # the codes of the assessment date
        year, index = self.year_and_enterprise(i, origin)
        code, name = self.enterprise_fields(index, mix(h ^ 0x6B))
        pool = _score_pool()
        criteria, groups, total, level = pool[(h >> 10) % len(pool)]
        commune, address = origin.address(mix(h ^ 0x6C))
        record = self.envelope(f"{origin.id_prefix}-DGCN-{year}-{i + 1:06d}", i)
        record.update(
            enterprise_code=code,
            enterprise_name=name,
            vsic_code=vsic_class(index),
            vsic_version=vsic_version(day, h >> 22),
            assessment_year=year,
            assessment_date=day_string(assessed),
            group_scores=groups,
            criteria_scores=criteria,
            total_score=total,
            technology_level=level,
            address=address,
            province_code=origin.province_code,
            commune_code=commune,
            origin_registry=origin.name,
        )
        return record
