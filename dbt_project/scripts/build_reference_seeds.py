"""Rebuild the code-list seeds from the reference data in ../shared/reference/.

The project ships its own copies (the CSVs under seeds/); run this only when the
reference data or the source contracts change, then review the diff:

    .venv/bin/python dbt_project/scripts/build_reference_seeds.py ../shared/reference

The code lists of the sources (IP right types, task levels, types and statuses, organisation
types, exchange listing types) take their codes from the enums of the OpenAPI contracts in
connectors/contracts/ and their names from the tables below; the script stops when the two
disagree, so a contract change cannot silently leave a code without a name. Output is
deterministic: rows come in the order of the reference files and of the contracts' enums.
"""

from __future__ import annotations

import csv
import json
import sys
import unicodedata
from pathlib import Path

import yaml

SEEDS = Path(__file__).resolve().parents[1] / "seeds"
CONTRACTS = Path(__file__).resolve().parents[2] / "connectors" / "contracts"

# QĐ 12/2008 top-level fields are, by design, OECD Frascati FORD fields 1-6.
FORD_NAMES = {
    "1": "Natural sciences",
    "2": "Engineering and technology",
    "3": "Medical and health sciences",
    "4": "Agricultural sciences",
    "5": "Social sciences",
    "6": "Humanities",
}


def research_field_rows(reference: Path) -> list[dict[str, str]]:
    source = reference / "research_fields" / "qd12_2008_research_fields.json"
    level1 = json.loads(source.read_text(encoding="utf-8"))["vhdata"]["research-fields"]["level1"]
    rows: list[dict[str, str]] = []
    for top in level1.values():
        ford = top["full-code"]
        rows.append(_row(top, level=1, parent="", ford=ford))
        for mid in top.get("level2", {}).values():
            rows.append(_row(mid, level=2, parent=ford, ford=ford))
            for leaf in mid.get("level3", {}).values():
                rows.append(_row(leaf, level=3, parent=mid["full-code"], ford=ford))
    return rows


def _row(node: dict, *, level: int, parent: str, ford: str) -> dict[str, str]:
    return {
        "field_code": node["full-code"],
        "field_level": str(level),
        "parent_field_code": parent,
        "field_name_vi": " ".join(node["name"].split()),
        "ford_code": ford,
        "ford_name_en": FORD_NAMES[ford],
    }


# Administrative units: the 63 provinces and their communes until 2025-06-30, the 34 provinces
# and 3,321 communes since 2025-07-01 (QĐ 19/2025/QĐ-TTg). Old codes are reused with other
# meanings since, so every row carries the period it is valid in.
OLD_UNTIL = "2025-06-30"
NEW_FROM = "2025-07-01"


def admin_unit_rows(reference: Path) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    units = reference / "admin_units_2025"
    merges = json.loads((units / "merges_new_to_old.json").read_text(encoding="utf-8"))["data"]
    splits = json.loads((units / "splits_old_to_new.json").read_text(encoding="utf-8"))["data"]
    merged_into = {old["old_id"]: new["level1_id"] for new in merges for old in new["merges"]}
    provinces = [_unit(p["level1_id"], p["name"], "", NEW_FROM, "") for p in merges]
    provinces += [
        _unit(p["level1_id"], p["name"], "", "", OLD_UNTIL, merged_into[p["level1_id"]])
        for p in splits
    ]
    communes = [
        _unit(c["level2_id"], c["name"], p["level1_id"], NEW_FROM, "")
        for p in merges
        for c in p["level2s"]
    ]
    communes += [
        _unit(c["level3_id"], c["name"], p["level1_id"], "", OLD_UNTIL)
        for p in splits
        for c in p["level3s"]
    ]
    return provinces, communes


def _unit(
    code: str, name: str, province: str, valid_from: str, valid_to: str, merged_into: str = ""
) -> dict[str, str]:
    row = {"code": code, "name": " ".join(name.split())}
    if province:
        row["province_code"] = province
    row |= {"valid_from": valid_from, "valid_to": valid_to}
    if not province:
        row["merged_into_code"] = merged_into
    return row


# The old→new commune crosswalk: for every pre-2025 commune (level 3 of the old three-level
# system) each new commune it went to, with the full/partial flag of merges_new_to_old.json
# ("full": the whole old commune is in the new one). The five island districts without
# communes (level2s of splits_old_to_new.json, e.g. Huyện Côn Đảo → Đặc khu Côn Đảo) are not
# communes of admin_communes, so they are left out here.
def commune_split_rows(reference: Path) -> list[dict[str, str]]:
    units = reference / "admin_units_2025"
    merges = json.loads((units / "merges_new_to_old.json").read_text(encoding="utf-8"))["data"]
    splits = json.loads((units / "splits_old_to_new.json").read_text(encoding="utf-8"))["data"]
    new_province = {c["level2_id"]: p["level1_id"] for p in merges for c in p["level2s"]}
    merge_type = {
        (old["old_id"], c["level2_id"]): old["type"]
        for p in merges
        for c in p["level2s"]
        for old in c["merges"]
    }
    rows = []
    for province in splits:
        for commune in province["level3s"]:
            if not commune["splits"]:
                raise ValueError(f"old commune {commune['level3_id']} has no new commune")
            for target in commune["splits"]:
                pair = (commune["level3_id"], target["new_id"])
                if merge_type.get(pair) not in ("full", "partial"):
                    raise ValueError(f"{pair} is missing from merges_new_to_old.json")
                rows.append(
                    {
                        "old_commune_code": commune["level3_id"],
                        "old_province_code": province["level1_id"],
                        "new_commune_code": target["new_id"],
                        "new_province_code": new_province[target["new_id"]],
                        "merge_type": merge_type[pair],
                        "effective_date": NEW_FROM,
                    }
                )
    return rows


# VSIC 2018 has the 21 sections A–U of ISIC Rev. 4 over the same two-digit divisions. VSIC 2025
# follows ISIC Rev. 5, whose sections are regrouped; they are left out until the published
# VSIC 2025 list is in the reference data.
VSIC_SECTION_ROWS = [
    {
        "vsic_version": "2018",
        "section_code": code,
        "division_from": first,
        "division_to": last,
        "section_name_en": name,
    }
    for code, first, last, name in [
        ("A", "01", "03", "Agriculture, forestry and fishing"),
        ("B", "05", "09", "Mining and quarrying"),
        ("C", "10", "33", "Manufacturing"),
        ("D", "35", "35", "Electricity, gas, steam and air conditioning supply"),
        ("E", "36", "39", "Water supply; sewerage, waste management and remediation activities"),
        ("F", "41", "43", "Construction"),
        ("G", "45", "47", "Wholesale and retail trade; repair of motor vehicles and motorcycles"),
        ("H", "49", "53", "Transportation and storage"),
        ("I", "55", "56", "Accommodation and food service activities"),
        ("J", "58", "63", "Information and communication"),
        ("K", "64", "66", "Financial and insurance activities"),
        ("L", "68", "68", "Real estate activities"),
        ("M", "69", "75", "Professional, scientific and technical activities"),
        ("N", "77", "82", "Administrative and support service activities"),
        ("O", "84", "84", "Public administration and defence; compulsory social security"),
        ("P", "85", "85", "Education"),
        ("Q", "86", "88", "Human health and social work activities"),
        ("R", "90", "93", "Arts, entertainment and recreation"),
        ("S", "94", "96", "Other service activities"),
        (
            "T",
            "97",
            "98",
            "Activities of households as employers; undifferentiated goods- and"
            " services-producing activities of households for own use",
        ),
        ("U", "99", "99", "Activities of extraterritorial organizations and bodies"),
    ]
]


# Names (and further attributes) of the sources' codes; the codes themselves are the contracts'.
# Each entry: seed name → (contract file, JSON path to the enum, {code: attributes}).
_REGISTRY = "registry_api_v1.openapi.yaml"
_EXCHANGE = "exchange_api_v1.openapi.yaml"
CODE_LISTS: dict[str, tuple[str, tuple[str, ...], dict[str, dict[str, str]]]] = {
    "code_ip_right_types": (
        _REGISTRY,
        ("components", "schemas", "IpType"),
        {
            # type_digit: first digit of the application number T-YYYY-NNNNN and of the
            # certificate number; is_patent_or_utility_solution: the "patents / utility
            # solutions" of the plans' KPIs (NB-M6).
            "invention": {
                "type_digit": "1",
                "name_en": "Invention",
                "name_vi": "Sáng chế",
                "protection_title_en": "Invention patent",
                "protection_title_vi": "Bằng độc quyền sáng chế",
                "classification": "IPC",
                "is_patent_or_utility_solution": "true",
            },
            "utility_solution": {
                "type_digit": "2",
                "name_en": "Utility solution",
                "name_vi": "Giải pháp hữu ích",
                "protection_title_en": "Utility solution patent",
                "protection_title_vi": "Bằng độc quyền giải pháp hữu ích",
                "classification": "IPC",
                "is_patent_or_utility_solution": "true",
            },
            "industrial_design": {
                "type_digit": "3",
                "name_en": "Industrial design",
                "name_vi": "Kiểu dáng công nghiệp",
                "protection_title_en": "Industrial design patent",
                "protection_title_vi": "Bằng độc quyền kiểu dáng công nghiệp",
                "classification": "Locarno",
                "is_patent_or_utility_solution": "false",
            },
            "trademark": {
                "type_digit": "4",
                "name_en": "Trademark",
                "name_vi": "Nhãn hiệu",
                "protection_title_en": "Trademark registration certificate",
                "protection_title_vi": "Giấy chứng nhận đăng ký nhãn hiệu",
                "classification": "Nice",
                "is_patent_or_utility_solution": "false",
            },
        },
    ),
    "code_task_levels": (
        _REGISTRY,
        ("components", "schemas", "TaskLevel"),
        {
            # level_rank: 1 = highest management level.
            "national": {"name_en": "National", "name_vi": "Cấp quốc gia", "level_rank": "1"},
            "ministerial": {"name_en": "Ministerial", "name_vi": "Cấp bộ", "level_rank": "2"},
            "provincial": {"name_en": "Provincial", "name_vi": "Cấp tỉnh", "level_rank": "3"},
            "institutional": {
                "name_en": "Institutional",
                "name_vi": "Cấp cơ sở",
                "level_rank": "4",
            },
        },
    ),
    "code_task_types": (
        _REGISTRY,
        ("components", "schemas", "TaskType"),
        {
            "research_project": {
                "name_en": "Research project",
                "name_vi": "Đề tài",
                "is_project": "false",
            },
            "scheme": {"name_en": "Scheme", "name_vi": "Đề án", "is_project": "false"},
            "pilot_production_project": {
                "name_en": "Pilot production project",
                "name_vi": "Dự án sản xuất thử nghiệm",
                "is_project": "true",
            },
            "st_project": {
                "name_en": "S&T project",
                "name_vi": "Dự án khoa học và công nghệ",
                "is_project": "true",
            },
        },
    ),
    "code_task_statuses": (
        _REGISTRY,
        ("components", "schemas", "TaskStatus"),
        {
            # lifecycle_order: position in proposed → approved → in_progress → accepted →
            # applied; empty for cancelled, which can end the life cycle at any stage.
            "proposed": {
                "name_en": "Proposed",
                "name_vi": "Đề xuất",
                "lifecycle_order": "1",
                "is_accepted": "false",
                "is_terminal": "false",
            },
            "approved": {
                "name_en": "Approved",
                "name_vi": "Đã phê duyệt",
                "lifecycle_order": "2",
                "is_accepted": "false",
                "is_terminal": "false",
            },
            "in_progress": {
                "name_en": "In progress",
                "name_vi": "Đang thực hiện",
                "lifecycle_order": "3",
                "is_accepted": "false",
                "is_terminal": "false",
            },
            "accepted": {
                "name_en": "Accepted",
                "name_vi": "Đã nghiệm thu",
                "lifecycle_order": "4",
                "is_accepted": "true",
                "is_terminal": "false",
            },
            "applied": {
                "name_en": "Applied",
                "name_vi": "Đã ứng dụng",
                "lifecycle_order": "5",
                "is_accepted": "true",
                "is_terminal": "true",
            },
            "cancelled": {
                "name_en": "Cancelled",
                "name_vi": "Đã hủy",
                "lifecycle_order": "",
                "is_accepted": "false",
                "is_terminal": "true",
            },
        },
    ),
    "code_org_types": (
        _REGISTRY,
        ("components", "schemas", "OrgType"),
        {
            "st_organisation": {
                "name_en": "S&T organisation",
                "name_vi": "Tổ chức khoa học và công nghệ",
                "is_enterprise": "false",
            },
            "st_enterprise": {
                "name_en": "S&T enterprise",
                "name_vi": "Doanh nghiệp khoa học và công nghệ",
                "is_enterprise": "true",
            },
            "innovative_startup": {
                "name_en": "Innovative startup",
                "name_vi": "Doanh nghiệp khởi nghiệp đổi mới sáng tạo",
                "is_enterprise": "true",
            },
            "intermediary": {
                "name_en": "S&T market intermediary",
                "name_vi": "Tổ chức trung gian của thị trường khoa học và công nghệ",
                "is_enterprise": "false",
            },
        },
    ),
    "code_intermediary_kinds": (
        _REGISTRY,
        (
            "components",
            "schemas",
            "Organisation",
            "allOf",
            1,
            "properties",
            "intermediary_kind",
            "oneOf",
            0,
        ),
        {
            # is_startup_support_facility: counted by NB-P5 (incubators, startup centres,
            # innovation spaces).
            "technology_exchange": {
                "org_type": "intermediary",
                "name_en": "Technology exchange",
                "name_vi": "Sàn giao dịch công nghệ",
                "is_startup_support_facility": "false",
            },
            "incubator": {
                "org_type": "intermediary",
                "name_en": "Incubator",
                "name_vi": "Vườn ươm",
                "is_startup_support_facility": "true",
            },
            "startup_support_centre": {
                "org_type": "intermediary",
                "name_en": "Startup support centre",
                "name_vi": "Trung tâm hỗ trợ khởi nghiệp đổi mới sáng tạo",
                "is_startup_support_facility": "true",
            },
            "innovation_space": {
                "org_type": "intermediary",
                "name_en": "Innovation space",
                "name_vi": "Không gian đổi mới sáng tạo",
                "is_startup_support_facility": "true",
            },
            "technology_transfer_office": {
                "org_type": "intermediary",
                "name_en": "Technology transfer office",
                "name_vi": "Văn phòng chuyển giao công nghệ",
                "is_startup_support_facility": "false",
            },
        },
    ),
    "code_listing_types": (
        _EXCHANGE,
        ("components", "schemas", "Listing", "properties", "loai_tin"),
        {
            "chao_ban": {
                "name_en": "Offer",
                "name_vi": "Chào bán",
                "market_side": "supply",
            },
            "chao_mua": {
                "name_en": "Demand",
                "name_vi": "Chào mua",
                "market_side": "demand",
            },
        },
    ),
    "code_listing_objects": (
        _EXCHANGE,
        ("components", "schemas", "Listing", "properties", "doi_tuong"),
        {
            "cong_nghe": {"name_en": "Technology", "name_vi": "Công nghệ"},
            "thiet_bi": {"name_en": "Equipment", "name_vi": "Thiết bị"},
            "giai_phap": {"name_en": "Technical solution", "name_vi": "Giải pháp kỹ thuật"},
        },
    ),
}


def code_list_rows(contracts: Path) -> dict[str, list[dict[str, str]]]:
    documents: dict[str, dict] = {}
    lists = {}
    for seed, (contract, path, names) in CODE_LISTS.items():
        if contract not in documents:
            documents[contract] = yaml.safe_load((contracts / contract).read_text("utf-8"))
        node = documents[contract]
        for step in path:
            node = node[step]
        codes = node["enum"]
        if sorted(codes) != sorted(names):
            raise ValueError(f"{seed}: contract {contract} has {codes}, names cover {list(names)}")
        lists[seed] = [
            {"code": code} | {k: unicodedata.normalize("NFC", v) for k, v in names[code].items()}
            for code in codes
        ]
    return lists


def _write(name: str, rows: list[dict[str, str]]) -> None:
    target = SEEDS / name
    with target.open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {len(rows)} rows to {target}")


def main(reference: Path) -> None:
    _write("research_fields_qd12_2008.csv", research_field_rows(reference))
    provinces, communes = admin_unit_rows(reference)
    _write("admin_provinces.csv", provinces)
    _write("admin_communes.csv", communes)
    _write("admin_commune_splits.csv", commune_split_rows(reference))
    _write("vsic_sections.csv", VSIC_SECTION_ROWS)
    for name, rows in code_list_rows(CONTRACTS).items():
        _write(f"{name}.csv", rows)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/reference"))
