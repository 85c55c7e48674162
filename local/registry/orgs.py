"""Organisations (S&T organisations, S&T enterprises, innovative startups, intermediaries) and
experts of a registry."""

from __future__ import annotations

from typing import Any

from local.registry.enterprises import branch_code, registered_in, vsic_class
from local.registry.generator import EntityGenerator
from local.registry.reference import province
from local.registry.synth import VSIC_2025_DAY, day_of, day_string, format_timestamp, mix
from local.registry.vocab import (
    APPLICATIONS,
    FIELD_CODES,
    INSTITUTES,
    INTERMEDIARIES,
    ascii_slug,
    capitalised,
    institute_name,
    intermediary_name,
    nfc,
    person_name,
)

ORG_TYPES = (
    ("st_enterprise",) * 3
    + ("innovative_startup",) * 3
    + ("st_organisation",) * 3
    + ("intermediary",)
)
_PUBLIC_VSIC = ("7210", "7220", "7490", "8542")


def vsic_version(day: int, h: int) -> str:
    """VSIC 2025 exists from 2025-11-15; registries switch gradually, so both coexist."""
    return "2025" if day >= VSIC_2025_DAY and h % 3 else "2018"


class OrganisationGenerator(EntityGenerator):
    entity = "organisation"
    text_fields = ("name", "address")
    mst_field = "enterprise_code"
    date_field = "established_date"

    def build(self, i: int, h: int, kind: str | None) -> dict[str, Any]:
        updated_at = self.updated_at(i)
        day = day_of(updated_at)
        h2 = mix(h ^ 0x0A)
        org_type = ORG_TYPES[(h >> 10) % len(ORG_TYPES)]
        registered = org_type in ("st_organisation", "st_enterprise")
        registration_day = day - h2 % 150
        established = day - 200 - (h >> 20) % 7000
        # The codes of the S&T registration date, or of the establishment date without one.
        origin = self.ctx.origin_on(registration_day if registered else established, h)
        intermediary_kind = None
        registration = None
        if org_type == "intermediary":
            n = (h2 >> 3) % len(INTERMEDIARIES)
            intermediary_kind = INTERMEDIARIES[n][0]
            name = intermediary_name(n, origin.province.in_address)
        if (
            org_type in ("st_enterprise", "innovative_startup")
            or (org_type == "intermediary" and h2 & 1)
            or kind == "mst_check_digit"
        ):
            index, code, name = self.ctx.enterprise(origin, h2)  # a company runs it
            if province("old", registered_in(index)).merged_into != self.ctx.province.code:
                code = branch_code(code, 1 + (h2 >> 20) % 20)  # registered elsewhere: a branch
            ownership = "foreign_invested" if (h2 >> 30) % 10 == 0 else "private"
            vsic = vsic_class(index)
        else:
            code = None
            if org_type != "intermediary":
                name = institute_name((h2 >> 3) % len(INSTITUTES), origin.province.in_address)
            ownership = "public"
            vsic = _PUBLIC_VSIC[(h2 >> 12) % len(_PUBLIC_VSIC)]
        if registered:
            registration = f"{i + 1}/{'ĐK-KHCN' if org_type == 'st_organisation' else 'DNKHCN'}"
        commune, address = origin.address(mix(h ^ 0x0B))
        return {
            "id": f"{origin.id_prefix}-TC-{i + 1:06d}",
            "version": 1,
            "updated_at": format_timestamp(updated_at),
            "deleted": False,
            "name": name,
            "org_type": org_type,
            "intermediary_kind": intermediary_kind,
            "ownership": ownership,
            "enterprise_code": code,
            "st_registration_number": registration,
            "st_registration_date": None if registration is None else day_string(registration_day),
            "vsic_code": vsic,
            "vsic_version": vsic_version(day, h2 >> 40),
            "established_date": day_string(established),
            "staff_count": 5 + (h2 >> 44) % 400,
            "address": address,
            "province_code": origin.province_code,
            "commune_code": commune,
            "origin_registry": origin.name,
        }


# --- Experts --------------------------------------------------------------------------------

DEGREES = ("doctor",) * 8 + ("master",) * 7 + ("engineer", "bachelor", "doctor_of_science")
_PHONE_PREFIXES = ("090", "091", "093", "094", "096", "097", "098", "086", "032", "035", "088")
_MAIL_DOMAINS = ("gmail.com", "yahoo.com", "outlook.com")


class ExpertGenerator(EntityGenerator):
    """Experts with their personal data (CCCD, phone, e-mail), as a registry holds them."""

    entity = "expert"
    text_fields = ("full_name", "organisation_name", "specialisation")
    date_field = "registered_date"

    def build(self, i: int, h: int, kind: str | None) -> dict[str, Any]:
        day = day_of(self.updated_at(i))
        h2 = mix(h ^ 0x0E)
        registered = day - (h2 >> 56) % 200
        origin = self.ctx.origin_on(registered, h)  # the province code of the registration date
        name, female = person_name(h2)
        degree = DEGREES[(h >> 12) % len(DEGREES)]
        title = None
        if degree in ("doctor", "doctor_of_science"):
            draw = (h >> 18) % 100
            title = "professor" if draw < 4 else "associate_professor" if draw < 20 else None
        birth_year = 1955 + (h2 >> 10) % 45
        activity, technology, codes = APPLICATIONS[(h2 >> 20) % len(APPLICATIONS)]
        institute = INSTITUTES[(h >> 24) % len(INSTITUTES)]
        if (h >> 28) % 4 == 0:  # works for an enterprise
            organisation = self.ctx.enterprise(origin, mix(h ^ 0x0F))[2]
        else:
            organisation = nfc(institute.format(province=origin.province.in_address))
        # CCCD: place-of-birth code (3 digits), century-and-sex digit, year (2 digits), 6 digits.
        century_sex = (0 if birth_year < 2000 else 2) + female
        serial = (h2 >> 30) % 1_000_000
        citizen_id = f"0{origin.province_code}{century_sex}{birth_year % 100:02d}{serial:06d}"
        phone = _PHONE_PREFIXES[(h >> 34) % len(_PHONE_PREFIXES)] + f"{(h >> 38) % 10**7:07d}"
        email = f"{ascii_slug(name)}{birth_year % 100:02d}@{_MAIL_DOMAINS[(h >> 60) % 3]}"
        record = self.envelope(f"{origin.id_prefix}-CG-{i + 1:06d}", i)
        record.update(
            full_name=name,
            gender="female" if female else "male",
            birth_year=birth_year,
            degree=degree,
            academic_title=title,
            field_code=codes[(h2 >> 50) % len(codes)] if codes else FIELD_CODES[0],
            specialisation=nfc(f"{capitalised(technology)} trong {activity}"),
            organisation_name=organisation,
            citizen_id=citizen_id,
            phone=phone,
            email=email,
            province_code=origin.province_code,
            registered_date=day_string(registered),
            origin_registry=origin.name,
        )
        return record
