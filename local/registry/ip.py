"""IP rights (tài sản trí tuệ) and technologies of a registry.

Application numbers are ``T-YYYY-NNNNN``: T the type (1 invention, 2 utility solution,
3 industrial design, 4 trademark), YYYY the filing year, NNNNN a serial. Types follow a fixed
cycle of 20 records (2 inventions, 1 utility solution, 2 designs, 15 trademarks), so the serial
can count records of one type without a scan: unique per type within a registry, and offset per
registry so that registries rarely share a number.
"""

from __future__ import annotations

import random
from functools import cache
from typing import Any

from local.registry.context import RegistryContext
from local.registry.generator import EntityGenerator
from local.registry.synth import (
    KindSchedule,
    day_of,
    day_string,
    format_timestamp,
    index_hash,
    mix,
)
from local.registry.vocab import (
    APPLICATIONS,
    BRAND_WORDS,
    DESIGNS,
    FIELD_CODES,
    INSTITUTES,
    INVENTION_TEMPLATES,
    IPC_CLASSES,
    LOCARNO_CLASSES,
    TECHNOLOGY_TEMPLATES,
    capitalised,
    institute_name,
    nfc,
    person_name,
)

IP_TYPES = {"invention": 1, "utility_solution": 2, "industrial_design": 3, "trademark": 4}
_CYCLE = tuple(
    {0: "invention", 10: "invention", 5: "utility_solution", 3: "industrial_design",
     13: "industrial_design"}.get(n, "trademark")
    for n in range(20)
)  # fmt: skip
_RANK = tuple(_CYCLE[:n].count(_CYCLE[n]) for n in range(20))  # rank within its type
_PER_CYCLE = {ip_type: _CYCLE.count(ip_type) for ip_type in IP_TYPES}
PATENT_POSITIONS = tuple(n for n, t in enumerate(_CYCLE) if t in ("invention", "utility_solution"))
_REGISTRY_SERIAL_BLOCK = 2941  # 34 registries × 2,941 < 100,000

# Status as of the record's last update: (status, weight, days from filing to that update).
_STATUSES = (
    ("filed", 15, (0, 120)), ("published", 20, (60, 700)), ("granted", 45, (300, 1500)),
    ("refused", 10, (200, 1200)), ("withdrawn", 5, (30, 900)), ("expired", 5, (1200, 2400)),
)  # fmt: skip
_STATUS_TABLE = tuple(entry for entry in _STATUSES for _ in range(entry[1]))
_COMMERCIALISATION = ("none",) * 12 + ("own_use",) * 4 + ("licensed",) * 3 + ("assigned",)
_BRAND_SYLLABLES = ("An", "Phát", "Minh", "Việt", "Hoa", "Sen", "Lúa", "Ngọc", "Tràng", "Sông")


def ip_type_of(i: int) -> str:
    return _CYCLE[i % 20]


Subject = tuple[str, str, list[str] | None, list[int] | None, list[str] | None]


@cache
def _subjects(ip_type: str, size: int = 1024) -> tuple[Subject, ...]:
    """(title, field code, IPC, Nice, Locarno classes) an IP right of the type can have.

    Drawn once per type; records share the lists (they are never modified).
    """
    rng = random.Random(f"ip-subjects-{ip_type}")
    subjects = []
    for _ in range(size):
        activity, technology, codes = rng.choice(APPLICATIONS)
        field_code = rng.choice(codes) if codes else FIELD_CODES[0]
        ipc = nice = locarno = None
        if ip_type in ("invention", "utility_solution"):
            template = rng.choice(INVENTION_TEMPLATES)
            title = nfc(template.format(activity=activity, technology=technology))
            ipc = sorted(set(rng.choices(IPC_CLASSES, k=rng.randint(1, 2))))
        elif ip_type == "industrial_design":
            title = rng.choice(DESIGNS)
            locarno = [rng.choice(LOCARNO_CLASSES)]
        else:
            title = nfc(f"{rng.choice(_BRAND_SYLLABLES)} {rng.choice(BRAND_WORDS)}")
            nice = sorted(set(rng.choices(range(1, 46), k=rng.randint(1, 3))))
        subjects.append((title, field_code, ipc, nice, locarno))
    return tuple(subjects)


class IpRightGenerator(EntityGenerator):
    entity = "ip_right"
    text_fields = ("title", "applicant_name", "applicant_address")
    mst_field = "applicant_enterprise_code"
    date_field = "filing_date"

    def application_number(self, i: int, h: int | None = None) -> str:
        """The application number record ``i`` has when it is clean."""
        filing = self._filing_day(i, index_hash(self.key, i) if h is None else h)
        return self._number(i, filing)

    def _number(self, i: int, filing: int) -> str:
        position = i % 20
        ip_type = _CYCLE[position]
        serial = (i // 20) * _PER_CYCLE[ip_type] + _RANK[position]
        serial = (self.ctx.config.ordinal * _REGISTRY_SERIAL_BLOCK + serial) % 100_000
        return f"{IP_TYPES[ip_type]}-{day_string(filing)[:4]}-{serial:05d}"

    def _filing_day(self, i: int, h: int) -> int:
        _, _, (low, high) = _STATUS_TABLE[(h >> 8) % len(_STATUS_TABLE)]
        day = day_of(self.updated_at(i))
        return day - low - (h >> 16) % (high - low + 1)

    def build(self, i: int, h: int, kind: str | None) -> dict[str, Any]:
        updated_at = self.updated_at(i)
        day = day_of(updated_at)
        h2 = mix(h ^ 0x1B)
        ip_type = _CYCLE[i % 20]
        status, _, (low, high) = _STATUS_TABLE[(h >> 8) % len(_STATUS_TABLE)]
        filing = day - low - (h >> 16) % (high - low + 1)
        origin = self.ctx.origin_on(filing, h)  # the applicant's codes on the filing date
        number = self._number(i, filing)
        elapsed = day - filing
        publication = grant = None
        if status != "filed":
            delay = 570 if ip_type in ("invention", "utility_solution") else 60
            publication = day_string(filing + min(delay, elapsed * 2 // 3))
        if status in ("granted", "expired"):
            grant = day_string(filing + elapsed * (80 + (h2 >> 8) % 15) // 100)
        subjects = _subjects(ip_type)
        title, field_code, ipc, nice, locarno = subjects[(h2 >> 16) % len(subjects)]
        draw = (h >> 40) % 10
        if draw < 7 or kind == "mst_check_digit":
            applicant_type = "enterprise"
            _, code, applicant = self.ctx.enterprise(origin, mix(h ^ 0x1C))
        elif draw < 9:
            applicant_type, code = "organisation", None
            applicant = institute_name((h2 >> 52) % len(INSTITUTES), origin.province.in_address)
        else:
            applicant_type, code = "individual", None
            applicant = person_name(h2 >> 20)[0]
        commune, address = origin.address(mix(h ^ 0x1D))
        return {
            "id": f"{origin.id_prefix}-SHTT-{i + 1:06d}",
            "version": 1,
            "updated_at": format_timestamp(updated_at),
            "deleted": False,
            "ip_type": ip_type,
            "application_number": number,
            "title": title,
            "filing_date": day_string(filing),
            "publication_date": publication,
            "grant_date": grant,
            "certificate_number": (
                None if grant is None else f"{number[0]}-{number[4:6]}{number[7:]}"
            ),
            "status": status,
            "applicant_type": applicant_type,
            "applicant_name": applicant,
            "applicant_enterprise_code": code,
            "applicant_address": address,
            "applicant_province_code": origin.province_code,
            "applicant_commune_code": commune,
            "field_code": field_code,
            "ipc_classes": ipc,
            "nice_classes": nice,
            "locarno_classes": locarno,
            "commercialisation": (
                _COMMERCIALISATION[(h2 >> 4) % len(_COMMERCIALISATION)]
                if status == "granted"
                else "none"
            ),
            "origin_registry": origin.name,
        }

    def spoil_other(self, record: dict[str, Any], kind: str, h: int) -> None:
        if kind != "ip_type_digit":
            super().spoil_other(record, kind, h)
            return
        right = IP_TYPES[record["ip_type"]]
        wrong = 1 + (right + (h >> 7) % 3) % 4  # one of the three other type digits
        record["application_number"] = f"{wrong}{record['application_number'][1:]}"


# --- Technologies ---------------------------------------------------------------------------

_TRL = (1, 2, 3, 3, 4, 4, 4, 5, 5, 5, 6, 6, 6, 7, 7, 7, 8, 8, 9)


class TechnologyGenerator(EntityGenerator):
    entity = "technology"
    text_fields = ("name", "description", "owner_name")
    mst_field = "owner_enterprise_code"
    date_field = "registered_date"

    def __init__(
        self,
        ctx: RegistryContext,
        records: int,
        schedule: KindSchedule,
        ip_rights: IpRightGenerator | None = None,
    ) -> None:
        super().__init__(ctx, records, schedule)
        self.ip_rights = ip_rights

    def build(self, i: int, h: int, kind: str | None) -> dict[str, Any]:
        day = day_of(self.updated_at(i))
        h2 = mix(h ^ 0x2B)
        registered = day - (h2 >> 24) % 90
        origin = self.ctx.origin_on(registered, h)  # the codes of the registration date
        activity, technology, codes = APPLICATIONS[(h >> 10) % len(APPLICATIONS)]
        template = TECHNOLOGY_TEMPLATES[(h >> 20) % len(TECHNOLOGY_TEMPLATES)]
        name = nfc(
            template.format(
                activity=activity, technology=technology, Technology=capitalised(technology)
            )
        )
        sites = 1 + (h2 >> 8) % 12
        description = nfc(
            f"{name}. Đã ứng dụng tại {sites} cơ sở sản xuất trên địa bàn "
            f"{origin.province.in_address}."
        )
        draw = (h >> 24) % 10
        if draw < 5 or kind == "mst_check_digit":
            owner_type = "enterprise"
            _, code, owner = self.ctx.enterprise(origin, mix(h ^ 0x2C))
        elif draw < 9:
            owner_type, code = "organisation", None
            owner = institute_name((h2 >> 12) % len(INSTITUTES), origin.province.in_address)
        else:
            owner_type, code = "individual", None
            owner = person_name(h2 >> 16)[0]
        commune, address = origin.address(mix(h ^ 0x2D))
        record = self.envelope(f"{origin.id_prefix}-CN-{day_string(registered)[:4]}-{i + 1:05d}", i)
        record.update(
            name=name,
            description=description,
            field_code=codes[(h2 >> 32) % len(codes)] if codes else FIELD_CODES[0],
            trl=_TRL[(h2 >> 40) % len(_TRL)],
            owner_type=owner_type,
            owner_name=owner,
            owner_enterprise_code=code,
            ip_application_numbers=self._linked_ip(i, h2),
            registered_date=day_string(registered),
            address=address,
            province_code=origin.province_code,
            commune_code=commune,
            origin_registry=origin.name,
        )
        return record

    def _linked_ip(self, i: int, h: int) -> list[str]:
        """0–2 clean patent or utility-solution applications of this registry filed before it."""
        ip = self.ip_rights
        if ip is None or ip.records < 20:
            return []
        # IP records up to the same moment: the share of the timeline this record is at.
        cycles = max(1, ip.records * i // max(self.records, 1) // 20)
        numbers = set()
        for n in range((h >> 48) % 3):
            cycle = (h >> (8 + 16 * n)) % cycles
            position = PATENT_POSITIONS[(h >> (4 + 16 * n)) % len(PATENT_POSITIONS)]
            k = cycle * 20 + position
            while k < ip.records and ip.kind(k) is not None:  # served as sent: dirt-free only
                k += 20
            if k < ip.records:
                numbers.add(ip.application_number(k))
        return sorted(numbers)
