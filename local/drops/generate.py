"""Stand-in spreadsheet drops: a province's annual statistical reports as real files would be.

One file per form (04/KHCN-NV tasks, 06/KHCN-CG technology transfer, 08/KHCN-SHTT IP), laid out
like the national forms (heading, two-row headers, column numbers, a totals row, the signature
footer) and as dirty as provincial files are: numbers typed "1.234,5", dates typed "dd/mm/yyyy"
next to real Excel dates, amounts in million VND, a few cells typed with a TCVN3 or VNI font
(what such a file shows once opened: the legacy bytes read as Windows-1252), NFD text, MSTs
with a wrong check digit, IP application numbers whose type digit contradicts the object type,
a missing key here and there, blank rows.

Even report years get 04 and 08 as .xlsx and 06 as .csv; odd years the other way round. The
content, the bytes (xlsx zip timestamps included) and the files' modification times are a pure
function of (province, year, rows, seed), so regenerating a drop does not make it a new file.
"""

from __future__ import annotations

import csv
import os
import random
import re
import unicodedata
import zipfile
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from openpyxl.utils import get_column_letter

from connectors.spreadsheets import Form, load_forms
from connectors.vietnamese import encode_tcvn3, encode_vni
from local.registry.data import enterprise_code_for, load_level3_field_codes

DEFAULT_ROWS = {"stat_form_04": 60, "stat_form_06": 30, "stat_form_08": 50}
DEFAULT_SEED = 42

# The 34 provinces since 1 July 2025 (QĐ 19/2025/QĐ-TTg; code list 915/CTK-CSCL).
PROVINCES = {
    "01": "Thành phố Hà Nội",
    "04": "Cao Bằng",
    "08": "Tuyên Quang",
    "11": "Điện Biên",
    "12": "Lai Châu",
    "14": "Sơn La",
    "15": "Lào Cai",
    "19": "Thái Nguyên",
    "20": "Lạng Sơn",
    "22": "Quảng Ninh",
    "24": "Bắc Ninh",
    "25": "Phú Thọ",
    "31": "Thành phố Hải Phòng",
    "33": "Hưng Yên",
    "37": "Ninh Bình",
    "38": "Thanh Hóa",
    "40": "Nghệ An",
    "42": "Hà Tĩnh",
    "44": "Quảng Trị",
    "46": "Thành phố Huế",
    "48": "Thành phố Đà Nẵng",
    "51": "Quảng Ngãi",
    "52": "Gia Lai",
    "56": "Khánh Hòa",
    "66": "Đắk Lắk",
    "68": "Lâm Đồng",
    "75": "Đồng Nai",
    "79": "Thành phố Hồ Chí Minh",
    "80": "Tây Ninh",
    "82": "Đồng Tháp",
    "86": "Vĩnh Long",
    "91": "An Giang",
    "92": "Thành phố Cần Thơ",
    "96": "Cà Mau",
}
_CITY = "Thành phố "

# Shares of dirty cells (per row, drawn independently).
NFD_SHARE = 0.05
LEGACY_SHARE = 0.03
TEXT_NUMBER_SHARE = 0.4  # xlsx: amounts typed as text ("1.234,5") instead of numbers
TEXT_DATE_SHARE = 0.5  # xlsx: dates typed as text ("05/03/2024") instead of real dates
BAD_MST_SHARE = 0.03
BAD_IP_TYPE_SHARE = 0.03
MISSING_KEY_SHARE = 0.02
BLANK_ROWS = 3

_FIELD_CODES = load_level3_field_codes()

_TOPICS = (
    ("Nghiên cứu ứng dụng", "công nghệ sinh học trong sản xuất giống lúa chất lượng cao"),
    ("Nghiên cứu xây dựng", "mô hình nuôi trồng thủy sản tuần hoàn tiết kiệm nước"),
    ("Ứng dụng", "chuyển đổi số trong quản lý di sản văn hóa"),
    ("Nghiên cứu", "giải pháp xử lý chất thải chăn nuôi bằng chế phẩm vi sinh"),
    ("Xây dựng", "cơ sở dữ liệu chuyên ngành khoa học và công nghệ"),
    ("Nghiên cứu chế tạo", "thiết bị sấy nông sản sử dụng năng lượng mặt trời"),
    ("Đánh giá", "hiện trạng và đề xuất giải pháp phát triển du lịch cộng đồng"),
    ("Nghiên cứu phát triển", "sản phẩm dược liệu từ cây trồng bản địa"),
    ("Ứng dụng", "trí tuệ nhân tạo trong chẩn đoán hình ảnh y tế"),
    ("Nghiên cứu", "vật liệu xây dựng không nung từ phế thải công nghiệp"),
)
_PLACES = ("tại {locality}", "trên địa bàn {locality}", "ở vùng ven biển {locality}", "")
_LEVELS = (("Cấp tỉnh", 80), ("Cấp cơ sở", 10), ("Cấp quốc gia", 5), ("Cấp bộ", 5))
_STATES = ("Đang thực hiện", "Đã nghiệm thu", "Mới phê duyệt", "Chuyển tiếp", "Đã ứng dụng")
_NOTES = ("Gia hạn 6 tháng", "Điều chỉnh kinh phí", "Đã thanh lý hợp đồng")
_HOSTS = (
    "Trường Đại học {p}",
    "Trung tâm Ứng dụng tiến bộ khoa học và công nghệ {locality}",
    "Trung tâm Khuyến nông {locality}",
    "Bệnh viện Đa khoa {locality}",
    "Viện Nghiên cứu Phát triển Kinh tế - Xã hội {locality}",
    "Sở Nông nghiệp và Môi trường {locality}",
    "Công ty Cổ phần Công nghệ xanh {p}",
)
_TRANSFERORS = (
    "Viện Công nghệ sinh học",
    "Viện Cơ điện nông nghiệp và Công nghệ sau thu hoạch",
    "Trường Đại học Bách khoa Hà Nội",
    "Viện Khoa học vật liệu",
    "Trung tâm Ứng dụng tiến bộ khoa học và công nghệ {locality}",
    "Công ty TNHH Giải pháp số {p}",
)
_RECIPIENT_KINDS = ("Công ty Cổ phần", "Công ty TNHH", "Hợp tác xã")
_RECIPIENT_NAMES = (
    "Nông nghiệp hữu cơ {p}",
    "Thực phẩm sạch Tam Điệp",
    "Cơ khí chính xác Gia Viễn",
    "Dược liệu Cúc Phương",
    "Gốm sứ Bồ Bát",
    "Thủy sản Bình Minh",
    "Dệt may Thành Nam",
    "Vật liệu xây dựng Xanh",
)
_TECHNOLOGIES = (
    "Công nghệ sản xuất phân bón hữu cơ vi sinh",
    "Quy trình nhân giống cây dược liệu bằng nuôi cấy mô",
    "Công nghệ sấy lạnh nông sản",
    "Dây chuyền sản xuất gạch không nung",
    "Phần mềm quản lý truy xuất nguồn gốc sản phẩm",
    "Công nghệ xử lý nước thải chế biến thủy sản",
)
_TRANSFER_FORMS = (
    "Chuyển giao công nghệ độc lập",
    "Chuyển giao trong dự án đầu tư",
    "Góp vốn bằng công nghệ",
    "Nhượng quyền thương mại",
    "Mua bán máy móc, thiết bị kèm công nghệ",
)
# Object type -> (share, type digit T of the application number T-YYYY-NNNNN).
_IP_TYPES = (
    ("nhãn hiệu", 60, 4),
    ("kiểu dáng công nghiệp", 15, 3),
    ("sáng chế", 15, 1),
    ("giải pháp hữu ích", 10, 2),
)
_IP_NAMES = {
    "nhãn hiệu": ("{P} XANH", "Gạo thơm {p}", "Mắm cáy {p}", "Cói mỹ nghệ {p}"),
    "kiểu dáng công nghiệp": ("Chai đựng nước mắm", "Hộp đựng trà", "Đèn trang trí bằng cói"),
    "sáng chế": ("Quy trình sản xuất chế phẩm sinh học", "Thiết bị lọc nước bằng vật liệu nano"),
    "giải pháp hữu ích": ("Máy bóc vỏ lạc cải tiến", "Bếp đun tiết kiệm củi"),
}
_APPLICANTS = (
    "Công ty TNHH Thương mại {p}",
    "Hợp tác xã Nông nghiệp {p}",
    "Trường Đại học {p}",
    "Nguyễn Văn Hùng",
    "Trần Thị Lan",
)


def generate_drops(
    folder: Path, *, province: str, year: int, rows: dict[str, int], seed: int
) -> list[Path]:
    """Write a province's report files for `year` into `folder`; return their paths.

    `rows` gives the data rows per entity (stat_form_04, stat_form_06, stat_form_08); entities
    left out get no file.
    """
    if province not in PROVINCES:
        raise ValueError(f"unknown province code {province!r} (known: {', '.join(PROVINCES)})")
    forms = load_forms()
    unknown = set(rows) - set(forms)
    if unknown:
        raise ValueError(f"unknown entities {sorted(unknown)} (known: {sorted(forms)})")
    if any(n < 0 for n in rows.values()):
        raise ValueError("row counts must be >= 0")
    folder.mkdir(parents=True, exist_ok=True)
    report = _Report(province, year)
    paths = []
    for entity in sorted(rows):
        form = forms[entity]
        as_xlsx = (entity == "stat_form_06") == (year % 2 == 1)
        rng = random.Random(f"{seed}/{province}/{year}/{entity}")
        values = _ROW_MAKERS[entity](rng, report, rows[entity], as_xlsx)
        typed = _as_typed(form, values, rng, as_xlsx)
        grid = _layout(form, report, typed, _totals(form, values, as_xlsx), rng)
        path = folder / f"{form.code[:2]}_{report.slug}_{year}.{'xlsx' if as_xlsx else 'csv'}"
        if as_xlsx:
            _write_xlsx(path, form.sheets[0], grid, report.submitted_at)
        else:
            _write_csv(path, grid)
        stamp = report.submitted_at.timestamp()
        os.utime(path, (stamp, stamp))
        paths.append(path)
    return paths


class _Report:
    """What the heading of every form of one province and year says."""

    def __init__(self, province: str, year: int) -> None:
        self.province = PROVINCES[province]
        self.short = self.province.removeprefix(_CITY)
        is_city = self.province.startswith(_CITY)
        self.locality = f"{'thành phố' if is_city else 'tỉnh'} {self.short}"
        self.unit = f"Sở Khoa học và Công nghệ {self.locality}"
        self.year = year
        self.slug = "_".join(_ascii(self.short).lower().split())
        self.abbreviation = "".join(word[0] for word in _ascii(self.short).upper().split())
        # Reports are due in the first quarter of the next year; the files are "saved" then.
        self.submitted_at = datetime(year + 1, 3, 15, 2, 30, tzinfo=UTC)
        self.circular = "15/2018/TT-BKHCN" if year <= 2025 else "45/2025/TT-BKHCN"


def _ascii(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text.replace("Đ", "D").replace("đ", "d"))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


# --- Dirt ---------------------------------------------------------------------------------------


def _legacy(text: str, rng: random.Random) -> str:
    """`text` as a cell typed with a TCVN3 or VNI font shows: the font's bytes read as cp1252."""
    tcvn3 = rng.random() < 0.5
    data = encode_tcvn3(text, toned_capitals="lower") if tcvn3 else encode_vni(text)
    # cp1252 leaves five bytes undefined; for those a legacy file shows the latin-1 character.
    return "".join(
        bytes([b]).decode("cp1252") if b not in (0x81, 0x8D, 0x8F, 0x90, 0x9D) else chr(b)
        for b in data
    )


def _text(text: str, rng: random.Random, *, legacy: bool = True) -> str:
    draw = rng.random()
    if draw < NFD_SHARE:
        return unicodedata.normalize("NFD", text)
    if legacy and draw < NFD_SHARE + LEGACY_SHARE:
        return _legacy(text, rng)
    return text


def _vn_number(value: float, rng: random.Random) -> str:
    """An amount as Vietnamese files type it: "1.234,5", sometimes "1234,5" or "1234.5"."""
    whole, tenths = divmod(round(value * 10), 10)
    draw = rng.random()
    if draw < 0.7:
        text = f"{whole:,}".replace(",", ".")
        return text if tenths == 0 else f"{text},{tenths}"
    separator = "," if draw < 0.9 else "."
    return str(whole) if tenths == 0 else f"{whole}{separator}{tenths}"


def _amount(value: float, rng: random.Random, as_xlsx: bool) -> Any:
    if as_xlsx and rng.random() >= TEXT_NUMBER_SHARE:
        return int(value) if float(value).is_integer() else value
    return _vn_number(value, rng)


def _date(day: date, rng: random.Random, as_xlsx: bool) -> Any:
    if as_xlsx and rng.random() >= TEXT_DATE_SHARE:
        return day
    return day.strftime("%d/%m/%Y")


def _day_in(year: int, rng: random.Random) -> date:
    return date(year, 1, 1) + timedelta(days=rng.randrange(365))


def _weighted(pairs: tuple[tuple[Any, ...], ...], rng: random.Random) -> tuple[Any, ...]:
    return rng.choices(pairs, weights=[p[1] for p in pairs])[0]


# --- Rows of each form --------------------------------------------------------------------------
# Each maker returns the data rows in the form's column order: text as typed (with its dirt),
# amounts as floats and dates as dates, which _as_typed then types as the file holds them.

RowMaker = Callable[[random.Random, _Report, int, bool], list[list[Any]]]


def _rows_04(rng: random.Random, report: _Report, count: int, as_xlsx: bool) -> list[list[Any]]:
    rows = []
    for i in range(count):
        verb, topic = rng.choice(_TOPICS)
        place = rng.choice(_PLACES).format(p=report.short, locality=report.locality)
        title = " ".join(part for part in (verb, topic, place) if part)
        start = _day_in(report.year - rng.choice((0, 0, 1, 2)), rng)
        end = start + timedelta(days=rng.randrange(360, 1100))
        kind = rng.choice(("ĐT", "DA", "DASX"))
        code = f"{report.abbreviation}.{start.year}.{kind}.{i + 1:04d}"
        if rng.random() < MISSING_KEY_SHARE:
            code = None
        field = rng.choice(_FIELD_CODES)
        state_budget = rng.randrange(1500, 30000) / 10
        other_budget = rng.choice((0, 0, rng.randrange(100, 15000) / 10))
        rows.append(
            [
                i + 1,
                _text(title, rng),
                code,
                _weighted(_LEVELS, rng)[0],
                int(field) if as_xlsx else field,  # typed into a General cell: a number
                _text(rng.choice(_HOSTS).format(p=report.short, locality=report.locality), rng),
                state_budget,
                other_budget,
                start,
                end,
                rng.choice(_STATES),
                rng.choice(_NOTES) if rng.random() < 0.1 else None,
            ]
        )
    return rows


def _rows_06(rng: random.Random, report: _Report, count: int, as_xlsx: bool) -> list[list[Any]]:
    rows = []
    for i in range(count):
        recipient = f"{rng.choice(_RECIPIENT_KINDS)} {rng.choice(_RECIPIENT_NAMES)}"
        recipient = recipient.format(p=report.short, locality=report.locality)
        mst: Any = enterprise_code_for(recipient)  # a valid MST of the 27 (Ninh Bình) range
        if rng.random() < BAD_MST_SHARE:  # a wrong check digit (any other digit is wrong)
            mst = mst[:9] + str((int(mst[9]) + 1 + rng.randrange(9)) % 10)
        elif rng.random() < 0.1:
            mst = f"{mst}-00{rng.randrange(1, 4)}"  # a branch
        elif as_xlsx and rng.random() < 0.3:
            mst = int(mst)  # typed into a General cell
        number = f"{i + 1:02d}/{report.year}/HĐ-CGCN" if rng.random() >= MISSING_KEY_SHARE else None
        rows.append(
            [
                i + 1,
                number,
                # Part of the row's key: a legacy font here would change its record id.
                _text(
                    rng.choice(_TRANSFERORS).format(p=report.short, locality=report.locality),
                    rng,
                    legacy=False,
                ),
                _text(recipient, rng),
                mst,
                _text(rng.choice(_TECHNOLOGIES), rng),
                rng.choice(_TRANSFER_FORMS),
                rng.randrange(500, 50000) / 10,
                _day_in(report.year, rng),
                None,
            ]
        )
    return rows


def _rows_08(rng: random.Random, report: _Report, count: int, as_xlsx: bool) -> list[list[Any]]:
    rows = []
    serials = rng.sample(range(1, 100_000), count)
    for i in range(count):
        kind, _, type_digit = _weighted(_IP_TYPES, rng)
        granted = rng.random() < 0.3
        filed = _day_in(report.year - (rng.choice((1, 2)) if granted else 0), rng)
        digit = type_digit
        if rng.random() < BAD_IP_TYPE_SHARE:
            digit = rng.choice([d for d in (1, 2, 3, 4) if d != type_digit])
        number = f"{digit}-{filed.year}-{serials[i]:05d}"
        if rng.random() < MISSING_KEY_SHARE:
            number = None
        name = rng.choice(_IP_NAMES[kind]).format(p=report.short, P=report.short.upper())
        address = report.short if rng.random() < 0.85 else PROVINCES[rng.choice(list(PROVINCES))]
        title_number = f"{type_digit}-{rng.randrange(1, 500_000):07d}" if granted else None
        granted_on = _day_in(report.year, rng) if granted else None
        rows.append(
            [
                i + 1,
                number,
                kind if rng.random() < 0.7 else kind.capitalize(),
                _text(name, rng),
                _text(
                    rng.choice(_APPLICANTS).format(p=report.short, locality=report.locality), rng
                ),
                address,
                filed,
                title_number,
                granted_on,
                None,
            ]
        )
    return rows


_ROW_MAKERS: dict[str, RowMaker] = {
    "stat_form_04": _rows_04,
    "stat_form_06": _rows_06,
    "stat_form_08": _rows_08,
}


# --- Layout and writing -------------------------------------------------------------------------


def _as_typed(
    form: Form, rows: list[list[Any]], rng: random.Random, as_xlsx: bool
) -> list[list[Any]]:
    """Amounts, dates and row numbers as the file holds them: csv text, xlsx a mix."""
    kinds = [column.kind for column in form.columns]
    typed = []
    for values in rows:
        cells = []
        for kind, value in zip(kinds, values, strict=True):
            if value is None or isinstance(value, str):
                cells.append(value)
            elif kind == "amount":
                cells.append(_amount(value, rng, as_xlsx))
            elif kind == "date":
                cells.append(_date(value, rng, as_xlsx))
            else:
                cells.append(value if as_xlsx else str(value))
        typed.append(cells)
    return typed


def _layout(
    form: Form, report: _Report, data: list[list[Any]], totals: list[Any], rng: random.Random
) -> list[list[Any]]:
    """The whole sheet: heading, header row(s), column numbers, data, totals row, footer."""
    width = len(form.columns)
    right = width - 3

    def row(*cells: tuple[int, Any]) -> list[Any]:
        out: list[Any] = [None] * width
        for column, value in cells:
            out[column] = value
        return out

    grid = [
        row(
            (0, f"Biểu số: {form.code}"),
            (3, form.title_vi.upper()),
            (right, f"Đơn vị báo cáo: {report.unit}"),
        ),
        row(
            (0, f"Ban hành theo Thông tư số {report.circular}"),
            (3, f"Năm báo cáo: {report.year}"),
            (right, "Đơn vị nhận báo cáo: Bộ Khoa học và Công nghệ"),
        ),
        row((0, "Ngày nhận báo cáo: 15/3 năm sau"), (right, f"Tỉnh/thành phố: {report.province}")),
        row(),
    ]
    top, sub = row(), row()
    for i, column in enumerate(form.columns):
        group = column.header[0]
        first_of_group = i == 0 or form.columns[i - 1].header[0] != group
        top[i] = group if len(column.header) == 1 or first_of_group else None
        sub[i] = column.header[1] if len(column.header) == 2 else None
    grid.append(top)
    if form.header_rows == 2:
        grid.append(sub)
    grid.append([f"({i})" for i in range(1, width + 1)])

    body = [list(cells) for cells in data]
    for _ in range(min(BLANK_ROWS, len(body))):
        body.insert(rng.randrange(len(body) + 1), row())
    grid.extend(body)
    grid.append(totals)
    grid.append(row())
    grid.append(row((right, f"{report.short}, ngày 15 tháng 3 năm {report.year + 1}")))
    grid.append(row((1, "Người lập biểu"), (right, "Thủ trưởng đơn vị")))
    grid.append(row((1, "(Ký, họ tên)"), (right, "(Ký, đóng dấu, họ tên)")))
    return grid


def _totals(form: Form, data: list[list[Any]], as_xlsx: bool) -> list[Any]:
    """'Tổng cộng' with the sums of the amount columns."""
    totals: list[Any] = [None] * len(form.columns)
    totals[1] = "Tổng cộng"
    for i, column in enumerate(form.columns):
        if column.kind == "amount":
            total = round(sum(cells[i] for cells in data if cells[i] is not None), 1)
            totals[i] = total if as_xlsx else f"{total:.1f}".replace(".", ",")
    return totals


def _write_xlsx(path: Path, sheet_name: str, grid: list[list[Any]], saved_at: datetime) -> None:
    """Write a one-sheet workbook laid out as Excel writes one: a shared string table, the
    sheet's <dimension>, real dates as serial numbers in the built-in date format 14.

    (openpyxl writes inline strings and, in write-only mode, no <dimension>: files no Excel
    user sends, and much slower to read.) Fixed timestamps: equal content, equal bytes.
    """
    strings: dict[str, int] = {}
    width = max(len(cells) for cells in grid)
    letters = [get_column_letter(i + 1) for i in range(width)]
    rows = []
    for r, cells in enumerate(grid, 1):
        out = [f'<row r="{r}">']
        for letter, value in zip(letters, cells, strict=False):
            if value is None:
                continue
            ref = f"{letter}{r}"
            if isinstance(value, str):
                index = strings.setdefault(value, len(strings))
                out.append(f'<c r="{ref}" t="s"><v>{index}</v></c>')
            elif isinstance(value, bool):
                out.append(f'<c r="{ref}" t="b"><v>{int(value)}</v></c>')
            elif isinstance(value, date):
                serial = (value - _EXCEL_EPOCH).days
                out.append(f'<c r="{ref}" s="1"><v>{serial}</v></c>')
            else:
                out.append(f'<c r="{ref}"><v>{value!r}</v></c>')
        out.append("</row>")
        rows.append("".join(out))
    sheet = (
        f'{_XML_DECLARATION}<worksheet xmlns="{_MAIN_NS}">'
        f'<dimension ref="A1:{letters[-1]}{len(grid)}"/><sheetData>'
        + "".join(rows)
        + "</sheetData></worksheet>"
    )
    shared = (
        f'{_XML_DECLARATION}<sst xmlns="{_MAIN_NS}" uniqueCount="{len(strings)}">'
        + "".join(f'<si><t xml:space="preserve">{_xml_text(s)}</t></si>' for s in strings)
        + "</sst>"
    )
    stamp = saved_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    parts = {
        "[Content_Types].xml": _CONTENT_TYPES,
        "_rels/.rels": _PACKAGE_RELS,
        "docProps/core.xml": _CORE.format(stamp=stamp),
        "xl/workbook.xml": _WORKBOOK.format(sheet=escape(sheet_name, {'"': "&quot;"})),
        "xl/_rels/workbook.xml.rels": _WORKBOOK_RELS,
        "xl/styles.xml": _STYLES,
        "xl/sharedStrings.xml": shared,
        "xl/worksheets/sheet1.xml": sheet,
    }
    date_time = saved_at.timetuple()[:6]
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in parts.items():
            entry = zipfile.ZipInfo(name, date_time=date_time)
            archive.writestr(entry, text.encode("utf-8"), compress_type=zipfile.ZIP_DEFLATED)


def _xml_text(text: str) -> str:
    # Characters XML 1.0 cannot hold are written the way Excel does: _xHHHH_.
    text = escape(text)
    return _XML_FORBIDDEN.sub(lambda m: f"_x{ord(m.group()):04X}_", text)


_EXCEL_EPOCH = date(1899, 12, 30)
_XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_CT = "application/vnd.openxmlformats-officedocument.spreadsheetml"
_CONTENT_TYPES = (
    f"{_XML_DECLARATION}"
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
    'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
    f'<Override PartName="/xl/workbook.xml" ContentType="{_CT}.sheet.main+xml"/>'
    f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{_CT}.worksheet+xml"/>'
    f'<Override PartName="/xl/styles.xml" ContentType="{_CT}.styles+xml"/>'
    f'<Override PartName="/xl/sharedStrings.xml" ContentType="{_CT}.sharedStrings+xml"/>'
    '<Override PartName="/docProps/core.xml" ContentType="application/vnd.openxmlformats-'
    'package.core-properties+xml"/></Types>'
)
_PACKAGE_RELS = (
    f'{_XML_DECLARATION}<Relationships xmlns="{_PKG_REL_NS}">'
    f'<Relationship Id="rId1" Type="{_REL_NS}/officeDocument" Target="xl/workbook.xml"/>'
    '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/'
    'relationships/metadata/core-properties" Target="docProps/core.xml"/></Relationships>'
)
_CORE = (
    f"{_XML_DECLARATION}"
    '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/'
    'core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms='
    '"http://purl.org/dc/terms/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
    "<dc:creator>local.drops stand-in</dc:creator>"
    '<dcterms:created xsi:type="dcterms:W3CDTF">{stamp}</dcterms:created>'
    '<dcterms:modified xsi:type="dcterms:W3CDTF">{stamp}</dcterms:modified>'
    "</cp:coreProperties>"
)
_WORKBOOK = (
    f'{_XML_DECLARATION}<workbook xmlns="{_MAIN_NS}" xmlns:r="{_REL_NS}">'
    '<sheets><sheet name="{sheet}" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
_WORKBOOK_RELS = (
    f'{_XML_DECLARATION}<Relationships xmlns="{_PKG_REL_NS}">'
    f'<Relationship Id="rId1" Type="{_REL_NS}/worksheet" Target="worksheets/sheet1.xml"/>'
    f'<Relationship Id="rId2" Type="{_REL_NS}/styles" Target="styles.xml"/>'
    f'<Relationship Id="rId3" Type="{_REL_NS}/sharedStrings" Target="sharedStrings.xml"/>'
    "</Relationships>"
)
# Style 1 is the built-in date format 14, which Excel shows as the system's short date
# (dd/mm/yyyy on a Vietnamese Windows).
_STYLES = (
    f'{_XML_DECLARATION}<styleSheet xmlns="{_MAIN_NS}">'
    '<fonts count="1"><font><sz val="11"/><name val="Times New Roman"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="14" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '</cellXfs><cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/>'
    "</cellStyles></styleSheet>"
)


def _write_csv(path: Path, grid: list[list[Any]]) -> None:
    """UTF-8 with BOM and ";" between fields, as Excel's "CSV UTF-8" writes it on a Vietnamese
    Windows (whose list separator is ";" because "," is the decimal separator)."""
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle, delimiter=";", lineterminator="\r\n")
        for cells in grid:
            writer.writerow(["" if v is None else v for v in cells])
