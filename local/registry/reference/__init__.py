"""The stand-in's copy of Vietnam's administrative units around 2025-07-01 (see ``build.py``).

``provinces()`` and ``communes(period, province_code)`` are read once, on first use.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Province:
    period: str  # "new" (since 2025-07-01) or "old"
    code: str
    name: str  # e.g. "Tỉnh Ninh Bình", "Thành phố Hà Nội"
    merged_into: str  # for an old province, the code of today's province; "" for new ones

    @cached_property
    def short_name(self) -> str:
        """The name without its unit word: "Ninh Bình", "Hà Nội"."""
        for unit in ("Thành phố ", "Tỉnh "):
            if self.name.startswith(unit):
                return self.name[len(unit) :]
        return self.name

    @cached_property
    def in_address(self) -> str:
        """The name as written inside an address or a sentence: "tỉnh Ninh Bình"."""
        return lower_unit_word(self.name)


@dataclass(frozen=True)
class Commune:
    code: str
    name: str  # e.g. "Phường Phủ Lý", "Xã Gia Viễn"


_UNIT_WORDS = ("Thành phố", "Thị trấn", "Thị xã", "Đặc khu", "Phường", "Tỉnh", "Xã")


def lower_unit_word(name: str) -> str:
    for unit in _UNIT_WORDS:
        if name.startswith(unit + " "):
            return unit.lower() + name[len(unit) :]
    return name


@cache
def provinces() -> dict[tuple[str, str], Province]:
    """(period, code) -> province, for the 34 new and the 63 old provinces."""
    with (HERE / "provinces.csv").open(encoding="utf-8", newline="") as handle:
        rows = [
            Province(r["period"], r["province_code"], r["name"], r["merged_into"])
            for r in csv.DictReader(handle)
        ]
    return {(p.period, p.code): p for p in rows}


@cache
def _communes() -> dict[tuple[str, str], tuple[Commune, ...]]:
    grouped: dict[tuple[str, str], list[Commune]] = {}
    with (HERE / "communes.csv").open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            key = (row["period"], row["province_code"])
            grouped.setdefault(key, []).append(Commune(row["commune_code"], row["name"]))
    return {key: tuple(values) for key, values in grouped.items()}


def communes(period: str, province_code: str) -> tuple[Commune, ...]:
    """Communes of a province in a period, by code; KeyError for an unknown province."""
    return _communes()[(period, province_code)]


def province(period: str, code: str) -> Province:
    try:
        return provinces()[(period, code)]
    except KeyError:
        raise KeyError(f"no {period} province with code {code!r}") from None


def new_province_codes() -> list[str]:
    return sorted(code for period, code in provinces() if period == "new")


def old_provinces_of(new_code: str) -> list[Province]:
    """The old provinces merged into today's province ``new_code``."""
    return [
        p for (period, _), p in provinces().items() if period == "old" and p.merged_into == new_code
    ]
