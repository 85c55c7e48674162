"""The spreadsheet reader on small hand-made .xlsx/.csv files in the shape of the national forms."""

from __future__ import annotations

import csv
import os
import pickle
import unicodedata
import zipfile
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from openpyxl import Workbook

from connectors.drop_location import file_sha256
from connectors.spreadsheets import (
    FIELDS_CONTRACT,
    FORMS_DIR,
    SpreadsheetError,
    detect_form,
    drop_envelope,
    fields_contract,
    load_forms,
    read_drop_file,
)

FORMS = load_forms()
SAVED_AT = datetime(2025, 3, 15, 2, 30, tzinfo=UTC)
UNIT = "Sở KH&CN tỉnh Ninh Bình"
LEGACY = "Tr\xadêng §¹i häc Hoa L\xad"  # "Trường Đại học Hoa Lư" typed in a TCVN3 font
NFD_TITLE = unicodedata.normalize("NFD", "Ứng dụng trí tuệ nhân tạo trong y tế")

HEADING = [
    ["Biểu số: 04/KHCN-NV", None, None, "NHIỆM VỤ KHOA HỌC VÀ CÔNG NGHỆ", None, None, None, None,
     None, f"Đơn vị báo cáo: {UNIT}"],
    ["Ban hành theo Thông tư số 15/2018/TT-BKHCN", None, None, "Năm báo cáo: 2024"],
    [None, None, None, None, None, None, None, None, None, "Tỉnh/thành phố: Ninh Bình"],
    [],
]  # fmt: skip
HEADER_04 = [
    ["STT", "Tên nhiệm vụ", "Mã số", "Cấp quản lý", "Lĩnh vực (mã)", "Tổ chức chủ trì",
     "Kinh phí (triệu đồng)", None, "Thời gian thực hiện", None, "Tình trạng", "Ghi chú"],
    [None, None, None, None, None, None, "NSNN", "Khác", "Bắt đầu", "Kết thúc", None, None],
]  # fmt: skip
NUMBERING_04 = [f"({i})" for i in range(1, 13)]
FOOTER = [
    [None, "Tổng cộng", None, None, None, None, 1247, 200],
    [],
    [None] * 9 + ["Ninh Bình, ngày 15 tháng 3 năm 2025"],
    [None, "Người lập biểu"] + [None] * 7 + ["Thủ trưởng đơn vị"],
]

ROWS_04_XLSX = [
    [1, "Nghiên cứu giống lúa chịu mặn", "NB.2024.ĐT.01", "Cấp tỉnh", 40106,
     "Trường Đại học Hoa Lư", "1.234,5", 200, date(2024, 3, 5), "31/12/2025", "Đang thực hiện"],
    [2],  # a pre-numbered template row: blank
    [],
    [3, NFD_TITLE, None, "Cấp cơ sở", "30201", LEGACY, 12.5, None, "05/03/2024",
     datetime(2025, 6, 30, 0, 0), "Mới phê duyệt", "Gia hạn 6 tháng"],
    ["   ", "  "],  # only spaces: blank
]  # fmt: skip
ROWS_04_CSV = [
    ["1", "Nghiên cứu giống lúa chịu mặn", "NB.2024.ĐT.01", "Cấp tỉnh", "40106",
     "Trường Đại học Hoa Lư", "1.234,5", "200", "05/03/2024", "31/12/2025", "Đang thực hiện", ""],
    ["2"],
    [],
    ["3", NFD_TITLE, "", "Cấp cơ sở", "30201", LEGACY, "12,5", "", "05/03/2024", "30/06/2025",
     "Mới phê duyệt", "Gia hạn 6 tháng"],
]  # fmt: skip
FIELDS_04 = FORMS["stat_form_04"].fields
EXPECTED_04_XLSX = [
    (8, [1, "Nghiên cứu giống lúa chịu mặn", "NB.2024.ĐT.01", "Cấp tỉnh", 40106,
         "Trường Đại học Hoa Lư", "1.234,5", 200, "2024-03-05", "31/12/2025", "Đang thực hiện",
         None]),
    (11, [3, NFD_TITLE, None, "Cấp cơ sở", "30201", LEGACY, 12.5, None, "05/03/2024",
          "2025-06-30", "Mới phê duyệt", "Gia hạn 6 tháng"]),
]  # fmt: skip
EXPECTED_04_CSV = [
    (8, ["1", "Nghiên cứu giống lúa chịu mặn", "NB.2024.ĐT.01", "Cấp tỉnh", "40106",
         "Trường Đại học Hoa Lư", "1.234,5", "200", "05/03/2024", "31/12/2025", "Đang thực hiện",
         None]),
    (11, ["3", NFD_TITLE, None, "Cấp cơ sở", "30201", LEGACY, "12,5", None, "05/03/2024",
          "30/06/2025", "Mới phê duyệt", "Gia hạn 6 tháng"]),
]  # fmt: skip


def write_xlsx(path: Path, rows: list[list[Any]], sheet: str = "Biểu 04") -> Path:
    workbook = Workbook()
    worksheet = workbook.active
    worksheet.title = sheet
    for row in rows:
        worksheet.append(row)
    workbook.save(path)
    os.utime(path, (SAVED_AT.timestamp(), SAVED_AT.timestamp()))
    return path


def write_csv(
    path: Path, rows: list[list[Any]], *, delimiter: str = ";", encoding: str = "utf-8-sig"
) -> Path:
    with path.open("w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        for row in rows:
            writer.writerow(["" if v is None else v for v in row])
    os.utime(path, (SAVED_AT.timestamp(), SAVED_AT.timestamp()))
    return path


def read_all(path: Path, entity: str, **options: Any) -> list[dict[str, Any]]:
    pages = read_drop_file(path, FORMS[entity], file_sha256=file_sha256(path), **options)
    return [record for page in pages for record in page.records]


def expected(
    path: Path,
    fields: tuple[str, ...],
    rows: list[tuple[int, list[Any]]],
    *,
    sheet: str | None,
    form: str,
    context: dict[str, Any],
) -> list[dict[str, Any]]:
    source = {
        "_form": form,
        "_file": path.name,
        "_sheet": sheet,
        "_file_sha256": file_sha256(path),
        "_file_modified_at": "2025-03-15T02:30:00Z",
    }
    return [
        {**context, **source, **dict(zip(fields, values, strict=True)), "_row": row}
        for row, values in rows
    ]


CONTEXT_04 = {
    "reporting_unit": UNIT,
    "province": "Ninh Bình",
    "report_year": 2024,
    "report_revision": None,
}


# --- The contracts -----------------------------------------------------------------------------


def test_the_three_forms_load_and_the_fields_contract_is_generated_from_them() -> None:
    assert {entity: form.code for entity, form in FORMS.items()} == {
        "stat_form_04": "04/KHCN-NV",
        "stat_form_06": "06/KHCN-CG",
        "stat_form_08": "08/KHCN-SHTT",
    }
    committed = yaml.safe_load(FIELDS_CONTRACT.read_text(encoding="utf-8"))
    assert committed == fields_contract(FORMS), "regenerate spreadsheet_forms_v1.fields.yml"
    assert committed["entities"]["stat_form_04"]["kinh_phi_nsnn"] == {
        "kind": "amount",
        "unit": "million_vnd",
    }
    assert committed["entities"]["stat_form_08"]["so_don"] == {
        "kind": "ip_application_number",
        "type_field": "loai",
    }


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda d: d.update(colour="red"), "unknown key(s) ['colour']"),
        (lambda d: d.update(key=["nope"]), "key field(s) ['nope'] are not columns"),
        (lambda d: d["columns"][2].update(kind="money"), "kind 'money' is not one of"),
        (lambda d: d.update(sheets=["Biểu 04/KHCN-NV"]), "is not one Excel allows"),
        (lambda d: d["columns"][6].pop("unit"), "'unit' goes with kind amount"),
        (lambda d: d["heading"].pop("report_year"), "role 'report_year' is required"),
    ],
)
def test_a_broken_form_contract_is_rejected_naming_the_file(
    tmp_path: Path, change: Any, problem: str
) -> None:
    doc = yaml.safe_load((FORMS_DIR / "04_khcn_nv.yml").read_text(encoding="utf-8"))
    change(doc)
    bad = tmp_path / "04_broken.yml"
    bad.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ValueError, match=r"04_broken\.yml") as caught:
        load_forms(tmp_path)
    assert problem in str(caught.value)


# --- Each form, from both formats --------------------------------------------------------------


def test_form_04_from_xlsx_exact_records(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "04_ninh_binh_2024.xlsx",
        HEADING + HEADER_04 + [NUMBERING_04] + ROWS_04_XLSX + FOOTER,
    )
    assert detect_form(path, FORMS) is FORMS["stat_form_04"]
    records = read_all(path, "stat_form_04")
    assert records == expected(
        path, FIELDS_04, EXPECTED_04_XLSX, sheet="Biểu 04", form="04/KHCN-NV", context=CONTEXT_04
    )


def test_form_04_from_csv_exact_records(tmp_path: Path) -> None:
    # Excel's "CSV UTF-8" on a Vietnamese Windows: BOM, ";" between fields.
    path = write_csv(
        tmp_path / "04_ninh_binh_2024.csv",
        HEADING + HEADER_04 + [NUMBERING_04] + ROWS_04_CSV + FOOTER,
    )
    records = read_all(path, "stat_form_04")
    assert records == expected(
        path, FIELDS_04, EXPECTED_04_CSV, sheet=None, form="04/KHCN-NV", context=CONTEXT_04
    )


HEADING_06 = [
    ["Biểu số: 06/KHCN-CG", None, None, "CHUYỂN GIAO CÔNG NGHỆ"],
    ["Đơn vị báo cáo:", UNIT, None, "NĂM 2024"],  # label alone: the value is the next cell
    [],
]
HEADER_06 = [
    "STT",
    "Số hợp đồng",
    "Bên giao",
    "Bên nhận công nghệ",
    "MST bên nhận",
    "Tên công nghệ",
    "Hình thức chuyển giao",
    "Giá trị hợp đồng\n(triệu  đồng)",
    "Ngày ký",
    "Ghi chú",
]  # fmt: skip  (aliases, a line break and a double space in titles)
ROW_06 = [
    "01/2024/HĐ-CGCN", "Viện Công nghệ sinh học", "Công ty TNHH Nông nghiệp Yên Mô",
    "2700123456", "Công nghệ sấy lạnh nông sản", "Chuyển giao công nghệ độc lập",
]  # fmt: skip


@pytest.mark.parametrize("kind", ["xlsx", "csv"])
def test_form_06_one_header_row_label_cells_and_aliases(tmp_path: Path, kind: str) -> None:
    if kind == "xlsx":
        rows = [[1, *ROW_06, 2500, date(2024, 7, 1), None], [2, "Tổng", None]]
        path = write_xlsx(
            tmp_path / "06_ninh_binh_2024.xlsx", [*HEADING_06, HEADER_06, *rows], "06"
        )
        values = [1, *ROW_06, 2500, "2024-07-01", None]
    else:
        rows = [["1", *ROW_06, "2.500", "01/07/2024", ""], ["", "Cộng:", ""]]
        path = write_csv(
            tmp_path / "cg.csv", [*HEADING_06, HEADER_06, *rows], delimiter=",", encoding="utf-8"
        )
        values = ["1", *ROW_06, "2.500", "01/07/2024", None]
    assert detect_form(path, FORMS) is FORMS["stat_form_06"]  # the heading says so
    context = {
        "reporting_unit": UNIT,
        "province": None,
        "report_year": 2024,
        "report_revision": None,
    }
    assert read_all(path, "stat_form_06") == expected(
        path,
        FORMS["stat_form_06"].fields,
        [(5, values)],
        sheet="06" if kind == "xlsx" else None,
        form="06/KHCN-CG",
        context=context,
    )


HEADING_08 = [
    [None, "Biểu số", "08/KHCN-SHTT"],
    [None, "Tỉnh, thành phố:", "Ninh Bình", None, "Năm báo cáo:", 2024, None, "Lần báo cáo: 2"],
    [],
]
HEADER_08 = [
    [None, "STT", "Số đơn", "Loại đối tượng", "Tên đối tượng", "Chủ đơn", "Địa chỉ chủ đơn (tỉnh)",
     "Ngày nộp đơn", "Văn bằng bảo hộ", None, "Ghi chú"],
    [None, None, None, None, None, None, None, None, "Số văn bằng", "Ngày cấp", None],
    [None, "A", "B", 1, 2, 3, 4, 5, 6, 7, 8],  # column numbers, typed as numbers and letters
]  # fmt: skip
ROW_08 = ["1-2024-00012", "sáng chế", "Thiết bị lọc nước", "Nguyễn Văn Hùng", "Ninh Bình"]


@pytest.mark.parametrize("kind", ["xlsx", "csv"])
def test_form_08_table_not_in_column_a_revision_and_tab_csv(tmp_path: Path, kind: str) -> None:
    if kind == "xlsx":
        row = [None, 1, *ROW_08, date(2024, 2, 1), "1-0045678", date(2024, 11, 20), None]
        path = write_xlsx(
            tmp_path / "shtt.xlsx", HEADING_08 + HEADER_08 + [row], "Biểu 08-KHCN-SHTT"
        )
        values = [1, *ROW_08, "2024-02-01", "1-0045678", "2024-11-20", None]
    else:
        row = [None, "1", *ROW_08, "01/02/2024", "1-0045678", "20/11/2024", ""]
        path = write_csv(tmp_path / "08.csv", HEADING_08 + HEADER_08 + [row], delimiter="\t")
        values = ["1", *ROW_08, "01/02/2024", "1-0045678", "20/11/2024", None]
    assert detect_form(path, FORMS) is FORMS["stat_form_08"]
    context = {
        "reporting_unit": None,
        "province": "Ninh Bình",
        "report_year": 2024,
        "report_revision": 2,
    }
    records = read_all(path, "stat_form_08")
    assert records == expected(
        path,
        FORMS["stat_form_08"].fields,
        [(7, values)],
        sheet="Biểu 08-KHCN-SHTT" if kind == "xlsx" else None,
        form="08/KHCN-SHTT",
        context=context,
    )
    record_id, version, updated_at, deleted = drop_envelope(records[0])
    assert record_id == "08/KHCN-SHTT/Ninh Bình/2024/1-2024-00012"  # no unit: the province
    assert version == 2 * 10**10 + int(SAVED_AT.timestamp())
    assert (updated_at, deleted) == (SAVED_AT, False)


def test_a_legacy_windows_1258_csv_is_read_as_such(tmp_path: Path) -> None:
    """Old Excel saves "CSV (Comma delimited)" in the ANSI code page: Windows-1258 in Vietnam,
    which spells tone marks as combining characters."""

    def cp1258(text: str) -> bytes:
        out = []
        for ch in unicodedata.normalize("NFC", text):
            try:
                out.append(ch.encode("cp1258"))
            except UnicodeEncodeError:  # base letter (with its shape mark) + tone mark
                parts = unicodedata.normalize("NFD", ch)
                tones = [c for c in parts if c in "\u0300\u0301\u0303\u0309\u0323"]
                base = unicodedata.normalize("NFC", "".join(c for c in parts if c not in tones))
                out.append((base + "".join(tones)).encode("cp1258"))
        return b"".join(out)

    utf8 = write_csv(tmp_path / "04_a.csv", HEADING + HEADER_04 + ROWS_04_CSV[:1], encoding="utf-8")
    legacy = tmp_path / "04_b.csv"
    legacy.write_bytes(cp1258(utf8.read_text(encoding="utf-8")))
    with pytest.raises(UnicodeDecodeError):
        legacy.read_bytes().decode("utf-8")

    def nfc(record: dict[str, Any]) -> dict[str, Any]:
        skip = {"_file", "_file_sha256", "_file_modified_at"}
        return {
            k: unicodedata.normalize("NFC", v) if isinstance(v, str) else v
            for k, v in record.items()
            if k not in skip
        }

    assert [nfc(r) for r in read_all(legacy, "stat_form_04")] == [
        nfc(r) for r in read_all(utf8, "stat_form_04")
    ]


def test_a_csv_typed_in_a_tcvn3_font_is_rejected_with_what_to_do(tmp_path: Path) -> None:
    from connectors.vietnamese import encode_tcvn3

    text = write_csv(tmp_path / "x.csv", HEADING + HEADER_04, encoding="utf-8").read_text("utf-8")
    path = tmp_path / "04_tcvn3.csv"
    path.write_bytes(encode_tcvn3(text, toned_capitals="lower"))
    with pytest.raises(SpreadsheetError) as caught:
        read_all(path, "stat_form_04")
    message = str(caught.value)
    assert message.startswith("04_tcvn3.csv: not UTF-8")
    assert "TCVN3" in message and "CSV UTF-8" in message


def test_pages_split_by_page_size(tmp_path: Path) -> None:
    rows = [[i, f"Nhiệm vụ {i}", f"NB-{i}"] for i in range(1, 6)]
    path = write_xlsx(tmp_path / "04_x.xlsx", HEADING + HEADER_04 + rows)
    pages = list(read_drop_file(path, FORMS["stat_form_04"], file_sha256="s", page_size=2))
    assert [len(p.records) for p in pages] == [2, 2, 1]
    assert [p.number for p in pages] == [1, 2, 3]
    assert [r["ma_so"] for p in pages for r in p.records] == [f"NB-{i}" for i in range(1, 6)]


def test_a_wrong_dimension_in_the_xlsx_does_not_cut_the_sheet(tmp_path: Path) -> None:
    """Some writers store <dimension ref="A1"/>; read-only openpyxl would stop reading there."""
    rows = [[i, f"Nhiệm vụ {i}", f"NB-{i}"] for i in range(1, 4)]
    good = write_xlsx(tmp_path / "good.xlsx", HEADING + HEADER_04 + rows)
    bad = tmp_path / "04_bad_dimension.xlsx"
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(bad, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                assert b'<dimension ref="A1:L9"' in data
                data = data.replace(b'<dimension ref="A1:L9"', b'<dimension ref="A1"')
            target.writestr(info, data)
    assert [r["ma_so"] for r in read_all(bad, "stat_form_04")] == ["NB-1", "NB-2", "NB-3"]


# --- Errors name the file, the sheet and the cell ----------------------------------------------


def error_of(path: Path, entity: str = "stat_form_04") -> SpreadsheetError:
    with pytest.raises(SpreadsheetError) as caught:
        read_all(path, entity)
    return caught.value


def test_unexpected_sheet(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "04_ninh_binh_2024.xlsx", HEADING + HEADER_04, sheet="Sheet1")
    error = error_of(path)
    assert str(error).startswith("04_ninh_binh_2024.xlsx: no sheet named 'Biểu 04-KHCN-NV'")
    assert str(error).endswith("(sheets: 'Sheet1')")
    assert (error.file, error.sheet, error.cell) == ("04_ninh_binh_2024.xlsx", None, None)


def test_renamed_header_names_file_sheet_and_cell(tmp_path: Path) -> None:
    header = [list(HEADER_04[0]), HEADER_04[1]]
    header[0][6] = "Kinh phi"  # G5, without its diacritics
    error = error_of(write_xlsx(tmp_path / "04_ninh_binh_2024.xlsx", HEADING + header))
    assert str(error) == (
        "04_ninh_binh_2024.xlsx, sheet 'Biểu 04': cell G5 has header 'Kinh phi / NSNN' but form"
        " 04/KHCN-NV expects 'Kinh phí (triệu đồng) / NSNN'"
    )
    assert (error.sheet, error.cell) == ("Biểu 04", "G5")


def test_wrong_sub_header_names_the_cell_of_the_second_header_row(tmp_path: Path) -> None:
    header = [HEADER_04[0], list(HEADER_04[1])]
    header[1][7] = "Vốn vay"
    error = error_of(write_xlsx(tmp_path / "04_x.xlsx", HEADING + header))
    assert error.cell == "H6"
    assert "has header 'Kinh phí (triệu đồng) / Vốn vay' but form 04/KHCN-NV expects" in str(error)


def test_shifted_header_an_inserted_column(tmp_path: Path) -> None:
    header = [
        [*HEADER_04[0][:2], "Chủ nhiệm", *HEADER_04[0][2:]],
        [*HEADER_04[1][:2], None, *HEADER_04[1][2:]],
    ]
    error = error_of(write_xlsx(tmp_path / "04_x.xlsx", HEADING + header))
    assert str(error) == (
        "04_x.xlsx, sheet 'Biểu 04': cell C5 has header 'Chủ nhiệm' but form 04/KHCN-NV expects"
        " 'Mã số'"
    )


def test_header_moved_down_is_found_but_an_extra_titled_column_is_not_accepted(
    tmp_path: Path,
) -> None:
    header = [[*HEADER_04[0], "Chủ nhiệm"], HEADER_04[1]]
    path = write_csv(tmp_path / "04_x.csv", [*HEADING, [], [], *header])
    error = error_of(path)
    assert str(error) == (
        "04_x.csv: cell M7 has header 'Chủ nhiệm', which form 04/KHCN-NV does not have (its last"
        " column is 'Ghi chú')"
    )
    assert (error.sheet, error.cell) == (None, "M7")


def test_missing_header_cell(tmp_path: Path) -> None:
    header = [HEADER_04[0][:11], HEADER_04[1]]
    error = error_of(write_xlsx(tmp_path / "04_x.xlsx", HEADING + header))
    assert error.cell == "L5"
    assert "cell L5 is empty but form 04/KHCN-NV expects 'Ghi chú'" in str(error)


def test_header_row_not_found(tmp_path: Path) -> None:
    rows = HEADING + [[None]] * 20 + HEADER_04
    error = error_of(write_xlsx(tmp_path / "04_x.xlsx", rows))
    assert str(error) == (
        "04_x.xlsx, sheet 'Biểu 04': header row not found in the first 20 rows: no cell reads"
        " 'STT', the form's first column"
    )


def test_heading_without_a_year(tmp_path: Path) -> None:
    heading = [HEADING[0], [], [], []]
    error = error_of(write_xlsx(tmp_path / "04_x.xlsx", heading + HEADER_04))
    assert "no report year in the heading (rows 1-4)" in str(error)
    assert error.file == "04_x.xlsx"


def test_heading_year_that_is_not_a_year(tmp_path: Path) -> None:
    heading = [HEADING[0], [None, None, None, "Năm báo cáo: hai nghìn"], HEADING[2], []]
    error = error_of(write_xlsx(tmp_path / "04_x.xlsx", heading + HEADER_04))
    assert error.cell == "D2"
    assert "cell D2 gives the report year as 'hai nghìn', which is not a year" in str(error)


def test_heading_declaring_another_form(tmp_path: Path) -> None:
    heading = [["Biểu số: 06/KHCN-CG"], *HEADING[1:]]
    error = error_of(write_xlsx(tmp_path / "04_x.xlsx", heading + HEADER_04))
    assert error.cell == "A1"
    assert "declares form '06/KHCN-CG' but the file is read as 04/KHCN-NV" in str(error)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("04_x.xls", b"\xd0\xcf\x11\xe0", "04_x.xls: unknown extension '.xls' (legacy .xls:"),
        ("04_x.txt", b"STT", "04_x.txt: unknown extension '.txt'"),
        ("04_x.xlsx", b"", "04_x.xlsx: the file is empty"),
        ("04_x.csv", b"", "04_x.csv: the file is empty"),
        ("04_x.xlsx", b"PK\x03\x04 truncated", "04_x.xlsx: not a readable .xlsx workbook"),
    ],
)
def test_unreadable_files(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    error = error_of(path)
    assert str(error).startswith(message)
    assert error.file == name


def test_a_damaged_sheet_names_the_file_and_sheet(tmp_path: Path) -> None:
    rows = [[i, f"Nhiệm vụ {i}", f"NB-{i}"] for i in range(1, 200)]
    good = write_xlsx(tmp_path / "good.xlsx", HEADING + HEADER_04 + rows)
    bad = tmp_path / "04_damaged.xlsx"
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(bad, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                data = data[: len(data) // 2]  # cut mid-sheet
            target.writestr(info, data)
    error = error_of(bad)
    assert str(error).startswith("04_damaged.xlsx, sheet 'Biểu 04': the sheet is damaged")
    assert error.sheet == "Biểu 04"


def test_an_invalid_byte_deep_in_a_utf8_csv(tmp_path: Path) -> None:
    rows = [[i, "Nhiệm vụ " + "x" * 200, f"NB-{i}"] for i in range(1, 6000)]  # > 1 MiB
    path = write_csv(tmp_path / "04_x.csv", HEADING + HEADER_04 + rows, encoding="utf-8")
    path.write_bytes(path.read_bytes() + b"6000;Nhi\xe1\xbb m;NB-6000\r\n")
    error = error_of(path)
    assert str(error).startswith("04_x.csv: near line")
    assert "not valid utf-8" in str(error) and "'CSV UTF-8'" in str(error)


def test_errors_survive_pickling_with_their_location(tmp_path: Path) -> None:
    """Airflow may carry an exception across processes."""
    error = error_of(
        write_xlsx(tmp_path / "04_x.xlsx", [*HEADING, HEADER_04[0][:11], HEADER_04[1]])
    )
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 -- our own bytes
    assert (str(copy), copy.file, copy.sheet, copy.cell) == (
        str(error),
        "04_x.xlsx",
        "Biểu 04",
        "L5",
    )


# --- Which form a file is ----------------------------------------------------------------------


def test_detect_form_by_sheet_name_when_the_heading_has_no_code(tmp_path: Path) -> None:
    heading = [["Biểu mẫu ban hành kèm theo Thông tư"], *HEADING[1:]]  # "Biểu", but no code
    path = write_xlsx(tmp_path / "report.xlsx", heading + HEADER_04, sheet="bieu 04")
    assert detect_form(path, FORMS) is FORMS["stat_form_04"]
    assert len(read_all(path, "stat_form_04")) == 0


def test_a_form_code_without_its_leading_zero_is_the_same_form(tmp_path: Path) -> None:
    heading = [["BIỂU SỐ 4/KHCN–NV"], *HEADING[1:]]  # an en dash, too
    path = write_xlsx(tmp_path / "report.xlsx", [*heading, *HEADER_04, [1, "A", "B"]])
    assert detect_form(path, FORMS) is FORMS["stat_form_04"]
    assert [r["ma_so"] for r in read_all(path, "stat_form_04")] == ["B"]


@pytest.mark.parametrize(
    ("name", "entity"),
    [
        ("04_ninh_binh_2024.csv", "stat_form_04"),
        ("Bieu 06-KHCN-CG Ninh Binh.csv", "stat_form_06"),
        ("Biểu_08_2024.csv", "stat_form_08"),
        ("ninh_binh_2024_08-khcn-shtt.csv", "stat_form_08"),
    ],
)
def test_detect_form_by_file_name(tmp_path: Path, name: str, entity: str) -> None:
    path = write_csv(tmp_path / name, HEADING[1:] + HEADER_04)
    assert detect_form(path, FORMS) is FORMS[entity]


def test_detect_form_uses_the_dropped_name_for_a_local_copy(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "tmp8f3a.csv", HEADING[1:] + HEADER_04)
    assert detect_form(path, FORMS, name="06_ninh_binh_2024.csv") is FORMS["stat_form_06"]


def test_the_heading_outranks_the_file_name(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "06_misnamed.xlsx", HEADING + HEADER_04, sheet="Sheet1")
    assert detect_form(path, FORMS) is FORMS["stat_form_04"]


def test_detect_form_errors(tmp_path: Path) -> None:
    unknown = write_xlsx(tmp_path / "x.xlsx", [["Biểu số: 05/KHCN-HTQT"]], sheet="Sheet1")
    with pytest.raises(SpreadsheetError, match=r"cell A1 declares form '05/KHCN-HTQT', which is"):
        detect_form(unknown, FORMS)
    nameless = write_csv(tmp_path / "bao_cao_2024.csv", HEADING[1:] + HEADER_04)
    with pytest.raises(SpreadsheetError, match=r"^bao_cao_2024.csv: cannot tell which form"):
        detect_form(nameless, FORMS)
    workbook = Workbook()
    workbook.active.title = "Biểu 04"
    workbook.create_sheet("Biểu 06")
    workbook.save(tmp_path / "all.xlsx")
    with pytest.raises(SpreadsheetError, match=r"sheets of several forms \(04/KHCN-NV, 06"):
        detect_form(tmp_path / "all.xlsx", FORMS)


# --- Envelope ----------------------------------------------------------------------------------


def record(**changes: Any) -> dict[str, Any]:
    base = {
        "_form": "06/KHCN-CG",
        "reporting_unit": "Sở KH&CN  tỉnh Ninh Bình",
        "province": "Ninh Bình",
        "report_year": 2024,
        "report_revision": None,
        "_file_modified_at": "2025-03-15T02:30:00Z",
        "so_hop_dong": "01/2024/HĐ-CGCN",
        "ben_giao": unicodedata.normalize("NFD", "Viện Công nghệ sinh học "),
    }
    return base | changes


def test_envelope_record_id_from_the_form_key() -> None:
    record_id, version, updated_at, deleted = drop_envelope(record())
    assert (
        record_id
        == "06/KHCN-CG/Sở KH&CN tỉnh Ninh Bình/2024/01/2024/HĐ-CGCN|Viện Công nghệ sinh học"
    )
    assert version == 10**10 + int(SAVED_AT.timestamp())
    assert updated_at == SAVED_AT
    assert deleted is False
    assert drop_envelope(record(ben_giao="  "))[0] is None  # part of the key empty: quarantined
    assert drop_envelope(record(reporting_unit=None))[0].startswith("06/KHCN-CG/Ninh Bình/2024/")
    assert drop_envelope(record(_form="99/KHCN-XX"))[0] is None


def test_a_corrected_resubmission_supersedes_the_earlier_rows() -> None:
    first = drop_envelope(record())
    newer_file = drop_envelope(record(_file_modified_at="2025-04-01T00:00:00Z"))
    revision_2 = drop_envelope(record(report_revision=2, _file_modified_at="2025-03-01T00:00:00Z"))
    revision_1_later = drop_envelope(
        record(report_revision=1, _file_modified_at="2025-05-01T00:00:00Z")
    )
    assert first[0] == newer_file[0] == revision_2[0] == revision_1_later[0]  # the same row
    assert first[1] < newer_file[1]  # no revision written: the newer file wins
    assert revision_2[1] > revision_1_later[1] > newer_file[1]  # a higher revision always wins
