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


def main(reference: Path) -> None:
    rows = research_field_rows(reference)
    target = SEEDS / "research_fields_qd12_2008.csv"
    with target.open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {len(rows)} research fields to {target}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/reference"))
