"""What every generator of one registry shares: its province, origins, addresses, enterprises.

A record dated before 2025-07-01 comes from one of the registry's pre-merger origins (drawn by
share) and is addressed with that old province's code and old commune codes; a record dated on or
after it comes from the registry itself, with today's codes. A record's date is the one its
contract reads its unit codes on (the filing, decision, start date: each gate suite's
description names it; :func:`local.registry.entities.unit_date`), not its last update: a
record filed in June 2025 and updated in August keeps the codes of June. Enterprises are drawn
from the origin's block of the shared pool (:mod:`local.registry.enterprises`), a few from
anywhere in the country, and each registry writes their names in its own habitual way.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from local.registry.enterprises import (
    PROMINENT_PER_PROVINCE,
    name_variant,
    prominent,
    province_range,
)
from local.registry.enterprises import enterprise as pool_enterprise
from local.registry.profiles import RegistryConfig
from local.registry.reference import Province, communes, lower_unit_word, province
from local.registry.synth import MERGER_DAY, MERGER_EPOCH, seed_key

_STREETS = (
    "Trần Hưng Đạo", "Lê Lợi", "Nguyễn Huệ", "Lý Thái Tổ", "Quang Trung", "Hùng Vương",
    "Lê Hồng Phong", "Nguyễn Trãi", "Hai Bà Trưng", "Phan Đình Phùng", "Điện Biên Phủ",
    "Tôn Đức Thắng", "Nguyễn Văn Cừ", "Lê Duẩn", "Trường Chinh", "Võ Nguyên Giáp",
)  # fmt: skip
NATIONAL_SHARE = 100  # per mille of enterprise picks: a prominent enterprise of anywhere
PROMINENT_SHARE = 300  # per mille: a prominent enterprise of the record's own province
# Ways of writing names registries use (name_variant's k). NFD is left to the nfd_text dirt,
# which /_standin/stats counts.
REGISTRY_HABITS = (0, 1, 2, 3, 4, 6, 7)


@dataclass(frozen=True)
class OriginInfo:
    """Where a record comes from: a registry (or pre-merger registry) and its unit codes."""

    name: str  # origin_registry
    province_code: str
    id_prefix: str
    province: Province
    commune_codes: tuple[str, ...]
    commune_names: tuple[str, ...]  # as written in an address: "phường Phủ Lý"
    enterprises: range  # pool indices of the enterprises registered there

    def address(self, h: int) -> tuple[str, str]:
        """(commune code, address text) drawn with hash bits ``h``."""
        n = h % len(self.commune_codes)
        street = _STREETS[(h >> 12) % len(_STREETS)]
        number = 1 + (h >> 20) % 299
        text = f"Số {number} đường {street}, {self.commune_names[n]}, {self.province.in_address}"
        return self.commune_codes[n], text

    def commune(self, h: int) -> tuple[str, str]:
        """(commune code, its name as written in an address) drawn with hash bits ``h``."""
        n = h % len(self.commune_codes)
        return self.commune_codes[n], self.commune_names[n]

    def enterprise_index(self, h: int) -> int:
        return self.enterprises[h % len(self.enterprises)]


class RegistryContext:
    """One registry of a profile, as the generators see it."""

    def __init__(self, config: RegistryConfig, seed: int) -> None:
        self.config = config
        self.registry_id = config.registry_id
        self.seed = seed
        self.key = seed_key(seed, config.registry_id)
        self.province = province("new", config.province_code)
        # The registry's own way of writing enterprise names (k of name_variant).
        self.name_habit = REGISTRY_HABITS[config.ordinal % len(REGISTRY_HABITS)]

    @cached_property
    def current(self) -> OriginInfo:
        code = self.config.province_code
        return _origin(self.registry_id, code, self.config.id_prefix, "new", province_range(code))

    @cached_property
    def pre_merger(self) -> tuple[tuple[int, OriginInfo], ...]:
        """(cumulative per mille, origin) of the origins of records before 2025-07-01."""
        origins = self.config.merged_from
        if not origins:  # the province kept its code: its own old communes
            code = self.config.province_code
            own = _origin(
                self.registry_id, code, self.config.id_prefix, "old", province_range(code, old=True)
            )
            return ((1000, own),)
        table, cumulative = [], 0
        for n, origin in enumerate(origins):
            cumulative = 1000 if n == len(origins) - 1 else cumulative + round(origin.share * 1000)
            info = _origin(
                origin.name,
                origin.province_code,
                origin.id_prefix,
                "old",
                province_range(origin.province_code, old=True),
            )
            table.append((cumulative, info))
        return tuple(table)

    def origin_at(self, epoch_seconds: int, h: int) -> OriginInfo:
        """The origin of a record dated ``epoch_seconds``, drawn with hash bits ``h``."""
        if epoch_seconds >= MERGER_EPOCH:
            return self.current
        return self._pre_merger_origin(h)

    def origin_on(self, day: int, h: int) -> OriginInfo:
        """The origin of a record whose own date (the one its unit codes are read on) is day
        number ``day`` (:mod:`local.registry.synth`), drawn with hash bits ``h``."""
        if day >= MERGER_DAY:
            return self.current
        return self._pre_merger_origin(h)

    def _pre_merger_origin(self, h: int) -> OriginInfo:
        draw = h % 1000
        for cumulative, info in self.pre_merger:
            if draw < cumulative:
                return info
        return self.pre_merger[-1][1]

    def enterprise(self, origin: OriginInfo, h: int) -> tuple[int, str, str]:
        """(pool index, MST, name as this registry writes it) of an enterprise for a record.

        Mostly one registered where the record comes from, often one of its prominent ones;
        NATIONAL_SHARE per mille a prominent one from anywhere in the country.
        """
        draw = (h >> 40) % 1000
        if draw < NATIONAL_SHARE:
            index = prominent(h >> 8)
        elif draw < NATIONAL_SHARE + PROMINENT_SHARE:
            block = origin.enterprises
            index = block.start + (h >> 8) % min(PROMINENT_PER_PROVINCE, len(block))
        else:
            index = origin.enterprise_index(h >> 8)
        mst, name, _ = pool_enterprise(index)
        return index, mst, self.written_name(name, h)

    def written_name(self, name: str, h: int) -> str:
        # Seven in ten records follow the registry's habit; the rest vary.
        k = self.name_habit if (h >> 50) % 10 < 7 else REGISTRY_HABITS[(h >> 54) % 7]
        return name_variant(name, k)


def _origin(name: str, code: str, prefix: str, period: str, pool: range) -> OriginInfo:
    units = communes(period, code)
    return OriginInfo(
        name=name,
        province_code=code,
        id_prefix=prefix,
        province=province(period, code),
        commune_codes=tuple(c.code for c in units),
        commune_names=tuple(lower_unit_word(c.name) for c in units),
        enterprises=pool,
    )
