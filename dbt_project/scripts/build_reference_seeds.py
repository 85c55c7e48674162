"""Rebuild the code-list seeds from the reference data in ../shared/reference/.

The project ships its own copies (the CSVs under seeds/); run this only when the
reference data changes, then review the diff:

    python dbt_project/scripts/build_reference_seeds.py ../shared/reference
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

SEEDS = Path(__file__).resolve().parents[1] / "seeds"

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


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/reference"))
