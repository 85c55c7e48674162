"""The stand-in spreadsheet drops: the files the reader must cope with, deterministically dirty."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from stdnum.vn import mst

from connectors.drop_location import LocalFolder, file_sha256
from connectors.spreadsheets import detect_form, drop_envelope, load_forms, read_drop_file
from connectors.vietnamese import repair_text
from local.drops import generate_drops
from local.drops.__main__ import main

FORMS = load_forms()
ROWS = {"stat_form_04": 40, "stat_form_06": 30, "stat_form_08": 40}
IP_TYPE_DIGIT = {
    "sáng chế": "1",
    "giải pháp hữu ích": "2",
    "kiểu dáng công nghiệp": "3",
    "nhãn hiệu": "4",
}
VN_NUMBER = re.compile(r"^\d{1,3}(\.\d{3})+(,\d+)?$|^\d+,\d+$")  # "1.234,5", "1.234", "12,5"
DD_MM_YYYY = re.compile(r"^\d{2}/\d{2}/\d{4}$")
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("drops")
    for year in (2024, 2025):
        generate_drops(folder, province="37", year=year, rows=ROWS, seed=42)
    return folder


@pytest.fixture(scope="module")
def records(folder: Path) -> dict[str, list[dict[str, Any]]]:
    """Every file of the folder read through the location, form detection and the reader."""
    read: dict[str, list[dict[str, Any]]] = {}
    for dropped in LocalFolder(folder, min_age_seconds=0).list_files():
        with dropped.local_path() as path:
            form = detect_form(path, FORMS)
            assert form.code[:2] == dropped.name[:2]
            pages = read_drop_file(path, form, file_sha256=dropped.sha256)
            read[dropped.name] = [r for page in pages for r in page.records]
    return read


def year_of(name: str) -> str:
    return re.search(r"_(\d{4})\.", name).group(1)


def values(records: dict[str, list[dict[str, Any]]], prefix: str, field: str) -> list[Any]:
    return [r[field] for name, rs in records.items() if name.startswith(prefix) for r in rs]


def test_one_file_per_form_xlsx_and_csv_swapping_each_year(folder: Path) -> None:
    assert sorted(p.name for p in folder.iterdir()) == [
        "04_ninh_binh_2024.xlsx",
        "04_ninh_binh_2025.csv",
        "06_ninh_binh_2024.csv",
        "06_ninh_binh_2025.xlsx",
        "08_ninh_binh_2024.xlsx",
        "08_ninh_binh_2025.csv",
    ]
    due = {
        "2024": datetime(2025, 3, 15, 2, 30, tzinfo=UTC),
        "2025": datetime(2026, 3, 15, 2, 30, tzinfo=UTC),
    }
    for dropped in LocalFolder(folder, min_age_seconds=0).list_files():
        assert dropped.modified_at == due[year_of(dropped.name)]


def test_every_row_reads_back_with_its_report_context(
    records: dict[str, list[dict[str, Any]]],
) -> None:
    for name, rows in records.items():
        entity = f"stat_form_{name[:2]}"
        assert len(rows) == ROWS[entity], name  # blank rows, totals and footer skipped
        assert [r["stt"] for r in rows] == [
            str(i) if name.endswith(".csv") else i for i in range(1, ROWS[entity] + 1)
        ]
        year = int(year_of(name))
        assert {
            (r["reporting_unit"], r["province"], r["report_year"], r["_file"]) for r in rows
        } == {("Sở Khoa học và Công nghệ tỉnh Ninh Bình", "Ninh Bình", year, name)}
        ids = [drop_envelope(r)[0] for r in rows]
        kept = [i for i in ids if i is not None]
        assert len(set(kept)) == len(kept), name  # keys are unique within a report
        assert all(i.startswith(f"{FORMS[entity].code}/Sở Khoa học") for i in kept)


def test_the_dirt_of_real_provincial_files(records: dict[str, list[dict[str, Any]]]) -> None:
    every = [v for rows in records.values() for r in rows for v in r.values()]
    texts = [v for v in every if isinstance(v, str)]
    amounts = values(records, "04", "kinh_phi_nsnn") + values(records, "06", "gia_tri_hop_dong")
    dates = values(records, "04", "ngay_bat_dau") + values(records, "08", "ngay_nop")

    assert any(isinstance(a, str) and VN_NUMBER.match(a) for a in amounts)  # "1.234,5"
    assert any(isinstance(a, float) for a in amounts)  # typed as numbers in xlsx
    assert any(DD_MM_YYYY.match(d) for d in dates)  # typed as text
    assert any(ISO_DATE.match(d) for d in dates)  # real Excel dates
    assert any(not unicodedata.is_normalized("NFC", t) for t in texts)  # NFD
    legacy = Counter(repair_text(t)[1] for t in texts if repair_text(t)[1] in ("tcvn3", "vni"))
    assert legacy["tcvn3"] > 0 and legacy["vni"] > 0  # cells typed with legacy fonts

    msts = [m for m in values(records, "06", "ben_nhan_mst") if len(str(m)) == 10]
    invalid = [m for m in msts if not mst.is_valid(str(m))]
    assert 0 < len(invalid) < len(msts) / 2  # a wrong check digit here and there
    pairs = [
        (n, t)
        for n, t in zip(values(records, "08", "so_don"), values(records, "08", "loai"), strict=True)
        if n
    ]
    wrong = [n for n, t in pairs if n[0] != IP_TYPE_DIGIT[t.lower()]]
    assert 0 < len(wrong) < len(pairs) / 4  # T-YYYY-NNNNN whose T contradicts the type

    missing_keys = [r for rows in records.values() for r in rows if drop_envelope(r)[0] is None]
    assert 0 < len(missing_keys) < 10  # landed all the same, for the gate to quarantine


def test_the_raw_files_hold_blank_rows_and_a_totals_row(folder: Path) -> None:
    lines = (folder / "06_ninh_binh_2024.csv").read_text(encoding="utf-8-sig").splitlines()
    assert sum(line.split(";")[1] == "Tổng cộng" for line in lines if ";" in line) == 1
    assert sum(set(line) <= {";"} for line in lines) >= 3  # a blank line above the table too


def test_deterministic_for_a_seed(folder: Path, tmp_path: Path) -> None:
    again = generate_drops(tmp_path / "again", province="37", year=2024, rows=ROWS, seed=42)
    other = generate_drops(tmp_path / "other", province="37", year=2024, rows=ROWS, seed=7)
    for same, different in zip(again, other, strict=True):
        original = folder / same.name
        assert file_sha256(same) == file_sha256(original), same.name  # byte for byte
        assert same.stat().st_mtime_ns == original.stat().st_mtime_ns
        assert file_sha256(different) != file_sha256(original), different.name


def test_cli_writes_the_files_it_is_asked_for(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--folder", str(tmp_path), "--province", "79", "--year", "2026", "--seed", "3"]
    paths = main([*argv, "--rows-04", "5", "--rows-06", "0", "--rows-08", "2"])
    assert [p.name for p in paths] == ["04_ho_chi_minh_2026.xlsx", "08_ho_chi_minh_2026.xlsx"]
    assert capsys.readouterr().out.split() == [str(p) for p in paths]
    (page,) = read_drop_file(paths[0], FORMS["stat_form_04"], file_sha256="s")
    assert len(page.records) == 5
    assert page.records[0]["reporting_unit"] == "Sở Khoa học và Công nghệ thành phố Hồ Chí Minh"


def test_unknown_province_or_entity_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown province code '35'"):  # merged into 37 in 2025
        generate_drops(tmp_path, province="35", year=2024, rows=ROWS, seed=1)
    with pytest.raises(ValueError, match="unknown entities"):
        generate_drops(tmp_path, province="37", year=2024, rows={"stat_form_05": 1}, seed=1)
