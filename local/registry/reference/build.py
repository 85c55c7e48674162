"""Rebuild the stand-in's copy of the 2025 administrative units from ../shared/reference.

    .venv/bin/python -m local.registry.reference.build [path/to/shared/reference/admin_units_2025]

Writes two CSV files next to this script (the project ships its own copy, as shared/README.md
asks): ``provinces.csv`` (the 34 provinces since 2025-07-01 and the 63 before, each old one with
the code of the province it merged into) and ``communes.csv`` (the 3,321 communes since
2025-07-01 and the 10,047 before, with their province). The stand-in draws addresses from them:
old codes for records dated before 2025-07-01, new codes after.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_SOURCE = HERE.parents[3] / "shared/reference/admin_units_2025"


def build(source: Path, target: Path = HERE) -> tuple[int, int]:
    merges = json.loads((source / "merges_new_to_old.json").read_text(encoding="utf-8"))["data"]
    splits = json.loads((source / "splits_old_to_new.json").read_text(encoding="utf-8"))["data"]
    merged_into = {
        old["old_id"]: province["level1_id"] for province in merges for old in province["merges"]
    }
    provinces = [("new", p["level1_id"], p["name"], "") for p in merges]
    provinces += [("old", p["level1_id"], p["name"], merged_into[p["level1_id"]]) for p in splits]
    communes = [
        ("new", p["level1_id"], c["level2_id"], c["name"]) for p in merges for c in p["level2s"]
    ]
    communes += [
        ("old", p["level1_id"], c["level3_id"], c["name"]) for p in splits for c in p["level3s"]
    ]
    _write(target / "provinces.csv", ("period", "province_code", "name", "merged_into"), provinces)
    _write(target / "communes.csv", ("period", "province_code", "commune_code", "name"), communes)
    return len(provinces), len(communes)


def _write(path: Path, header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(sorted(rows, key=lambda row: (row[0] != "new", row[1], row[2])))


if __name__ == "__main__":
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SOURCE
    provinces, communes = build(source)
    print(f"provinces {provinces}, communes {communes}")
