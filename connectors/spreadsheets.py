"""Read national statistical forms (04/KHCN-NV, 06/KHCN-CG, 08/KHCN-SHTT …) dropped as .xlsx/.csv.

A form is described by a YAML contract in ``connectors/contracts/forms/`` (format: the README
there): the sheets it may be on, the labels of the heading the reporting unit writes above the
table, the header row(s) of the table and the field each column lands as.

:func:`read_drop_file` turns one file into pages of records: the table's cells *as typed*
(strings stay strings, including "1.234,5" and "05/03/2024"; numbers typed as numbers stay
numbers; real dates become ISO strings), plus the report's context from the heading and where
the row came from. Standardising values is the standardiser's job, not this module's.

Every problem with the file's shape raises :class:`SpreadsheetError` naming the file, the
sheet and the cell, so whoever maintains the drop can fix it without opening this code.
"""

from __future__ import annotations

import codecs
import csv
import io
import logging
import re
import unicodedata
import zipfile
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache, lru_cache
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import ParseError

import yaml
from openpyxl import load_workbook
from openpyxl.utils import get_column_letter

from connectors.errors import ConnectorError

log = logging.getLogger(__name__)

FORMS_DIR = Path(__file__).resolve().parent / "contracts" / "forms"
FIELDS_CONTRACT = Path(__file__).resolve().parent / "contracts" / "spreadsheet_forms_v1.fields.yml"

HEADER_SEARCH_ROWS = 20  # the table's header row must start within this many rows
KINDS = ("text", "number", "date", "amount", "mst", "ip_application_number")
AMOUNT_UNITS = ("vnd", "million_vnd")
# Heading roles the reader understands; the record field each one lands as is its name.
HEADING_ROLES = ("form_code", "reporting_unit", "province", "report_year", "report_revision")
CONTEXT_FIELDS = ("reporting_unit", "province", "report_year", "report_revision")
# Where a record came from. `_form` lets drop_envelope find the form's key columns.
SOURCE_FIELDS = ("_form", "_file", "_sheet", "_row", "_file_sha256", "_file_modified_at")
# version = revision * REVISION_WEIGHT + the file's modification time in epoch seconds (< 10^10
# until the year 2286), so a higher revision always wins and, within one, the newer file.
REVISION_WEIGHT = 10_000_000_000

_SHEET_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")
_FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_YEAR = re.compile(r"(?<!\d)(19[5-9]\d|20\d\d|2100)(?!\d)")
_INTEGER = re.compile(r"(?<!\d)(\d{1,6})(?!\d)")
_SPACE_RUN = re.compile(r"\s+")
_SPACE_AROUND_PUNCT = re.compile(r" ?([()/:,]) ?")
# Folding for comparisons: dashes to "-", the look-alike Icelandic eth (Ð, ð) to đ.
_FOLD_CHARS = str.maketrans({"–": "-", "—": "-", "‑": "-", "ð": "đ"})
# A row right under the header that only numbers the columns: "(1)", "1", "A", "(B)" …
_COLUMN_NUMBER = re.compile(r"^\(?[0-9A-Za-z]{1,3}\)?$")
# Rows skipped as not being data (see the forms README).
_TOTAL_LABELS = frozenset({"tổng cộng", "tổng", "cộng", "tổng số", "total"})
_TOTAL_INITIALS = frozenset("tcTC")
_FOOTER = re.compile(
    r"^(người lập biểu|người kiểm tra|kiểm tra biểu|thủ trưởng|\(ký"
    r"|([^,]{1,40},)?ngày\b.*\btháng\b.*\bnăm\b)"
)
_FOOTER_MAX_CELLS = 3  # a signature footer row holds at most this many cells
_DATE_TYPES = frozenset({datetime, date, time, timedelta})
_CSV_SNIFF_BYTES = 1 << 20
# Zip bombs: an .xlsx is a zip, and openpyxl holds much of what it inflates (shared strings, the
# sheet XML it parses) at ~3.4x its size: a 611 KB file inflating to 608 MB peaked at 2.06 GB,
# and a worker killed for memory records nothing, so the file came back every run. The zip's
# central directory says what each member inflates to (Python's zipfile stops at that size), so
# it is checked before anything is inflated. Real forms inflate to a few MB at 6-13:1; these
# limits keep a task under ~500 MB and are far above any provincial report.
MAX_XLSX_INFLATED_BYTES = 100 << 20  # all members together
MAX_XLSX_RATIO = 100  # per member inflating to more than _RATIO_FROM_BYTES
_RATIO_FROM_BYTES = 1 << 20  # a small member cannot hurt, whatever its ratio
_CSV_DELIMITERS = (",", ";", "\t")
# Tried in order when a .csv is not UTF-8: Vietnamese Windows' ANSI code page, then Western.
_LEGACY_ENCODINGS = ("cp1258", "cp1252")


class SpreadsheetError(ConnectorError):
    """A dropped file that does not have the shape of its form.

    `file`, `sheet` (None for .csv) and `cell` (A1 style, or None) say where; the message says
    what was found and what the form expects.
    """

    def __init__(
        self, message: str, *, file: str, sheet: str | None = None, cell: str | None = None
    ) -> None:
        super().__init__(message)
        self.file = file
        self.sheet = sheet
        self.cell = cell

    def __reduce__(self) -> Any:
        return (_rebuild_error, (self.args[0], self.file, self.sheet, self.cell))


def _rebuild_error(message: str, file: str, sheet: str | None, cell: str | None) -> Any:
    return SpreadsheetError(message, file=file, sheet=sheet, cell=cell)


# --- Forms ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Column:
    field: str
    header: tuple[str, ...]  # one title, or (group title, sub-title) under a two-row header
    aliases: tuple[tuple[str, ...], ...]
    kind: str
    unit: str | None = None  # amounts: vnd | million_vnd
    type_field: str | None = None  # ip_application_number: the field holding the object type

    @property
    def title(self) -> str:
        return " / ".join(self.header)


@dataclass(frozen=True, slots=True, eq=False)  # forms compare (and hash) by identity
class Form:
    code: str  # "04/KHCN-NV"
    entity: str  # "stat_form_04"
    title_vi: str
    title_en: str
    source: Path  # the YAML it was loaded from
    file_name_pattern: re.Pattern[str]
    sheets: tuple[str, ...]
    heading: Mapping[str, tuple[str, ...]]  # role -> labels
    header_rows: int
    columns: tuple[Column, ...]
    key: tuple[str, ...]

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(column.field for column in self.columns)


_FORM_KEYS = {
    "code",
    "entity",
    "title",
    "legal_basis",
    "file_name_pattern",
    "sheets",
    "heading",
    "header_rows",
    "columns",
    "key",
}
_COLUMN_KEYS = {"field", "header", "aliases", "kind", "unit", "type_field"}


def load_forms(folder: Path = FORMS_DIR) -> dict[str, Form]:
    """Every form contract (``*.yml``) in `folder`, by entity; ValueError names a bad file."""
    forms: dict[str, Form] = {}
    codes: dict[str, Path] = {}
    for path in sorted(folder.glob("*.yml")):
        form = _load_form(path)
        if form.entity in forms:
            raise ValueError(
                f"{path}: entity {form.entity!r} is also in {forms[form.entity].source}"
            )
        if form.code in codes:
            raise ValueError(f"{path}: form {form.code!r} is also in {codes[form.code]}")
        forms[form.entity] = form
        codes[form.code] = path
    if not forms:
        raise ValueError(f"{folder}: no form contracts (*.yml)")
    return forms


def _load_form(path: Path) -> Form:
    def fail(problem: str) -> ValueError:
        return ValueError(f"{path}: {problem}")

    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise fail(f"not valid YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise fail("expected a mapping at the top level")
    unknown = set(doc) - _FORM_KEYS
    if unknown:
        raise fail(f"unknown key(s) {sorted(unknown)}")
    missing = _FORM_KEYS - {"legal_basis"} - set(doc)
    if missing:
        raise fail(f"missing key(s) {sorted(missing)}")

    code, entity = _text(doc["code"], "code", fail), _text(doc["entity"], "entity", fail)
    if not _FIELD_NAME.match(entity):
        raise fail(f"entity {entity!r} must be lower_snake_case")
    title = doc["title"]
    if not isinstance(title, dict) or set(title) != {"vi", "en"}:
        raise fail("title must have exactly 'vi' and 'en'")
    try:
        pattern = re.compile(_text(doc["file_name_pattern"], "file_name_pattern", fail))
    except re.error as exc:
        raise fail(f"file_name_pattern is not a regular expression: {exc}") from None

    sheets = _texts(doc["sheets"], "sheets", fail)
    for sheet in sheets:
        if len(sheet) > 31 or _SHEET_FORBIDDEN.search(sheet):
            raise fail(f"sheet name {sheet!r} is not one Excel allows (<= 31 chars, no []:*?/\\)")

    heading = doc["heading"]
    if not isinstance(heading, dict):
        raise fail("heading must map roles to lists of labels")
    if set(heading) - set(HEADING_ROLES):
        raise fail(f"heading: unknown role(s) {sorted(set(heading) - set(HEADING_ROLES))}")
    for role in ("report_year", "reporting_unit"):
        if role not in heading:
            raise fail(f"heading: role {role!r} is required")
    labels = {role: _texts(heading[role], f"heading.{role}", fail) for role in heading}

    header_rows = doc["header_rows"]
    if header_rows not in (1, 2):
        raise fail("header_rows must be 1 or 2")
    if not isinstance(doc["columns"], list) or not doc["columns"]:
        raise fail("columns must be a non-empty list")
    columns = tuple(
        _load_column(item, i, header_rows, fail) for i, item in enumerate(doc["columns"], 1)
    )
    fields = [column.field for column in columns]
    duplicates = sorted({f for f in fields if fields.count(f) > 1})
    if duplicates:
        raise fail(f"duplicate field(s) {duplicates}")
    clashes = sorted(set(fields) & set(CONTEXT_FIELDS))
    if clashes:
        raise fail(f"field(s) {clashes} clash with the heading's context fields")
    if len(columns[0].header) != 1:
        raise fail("the first column (the row number, STT) must have a one-level header")
    for column in columns:
        if column.type_field is not None and column.type_field not in fields:
            raise fail(f"column {column.field!r}: type_field {column.type_field!r} is no field")
    key = _texts(doc["key"], "key", fail)
    if not set(key) <= set(fields):
        raise fail(f"key field(s) {sorted(set(key) - set(fields))} are not columns")

    return Form(
        code=code,
        entity=entity,
        title_vi=_text(title["vi"], "title.vi", fail),
        title_en=_text(title["en"], "title.en", fail),
        source=path,
        file_name_pattern=pattern,
        sheets=sheets,
        heading=labels,
        header_rows=header_rows,
        columns=columns,
        key=key,
    )


def _load_column(item: object, number: int, header_rows: int, fail: Any) -> Column:
    where = f"columns[{number}]"
    if not isinstance(item, dict):
        raise fail(f"{where} must be a mapping")
    unknown = set(item) - _COLUMN_KEYS
    if unknown:
        raise fail(f"{where}: unknown key(s) {sorted(unknown)}")
    for required in ("field", "header", "kind"):
        if required not in item:
            raise fail(f"{where}: missing {required!r}")
    field = _text(item["field"], f"{where}.field", fail)
    if not _FIELD_NAME.match(field):
        raise fail(f"{where}: field {field!r} must be lower_snake_case")
    where = f"column {field!r}"

    def header(value: object, what: str) -> tuple[str, ...]:
        levels = (value,) if isinstance(value, str) else _texts(value, what, fail)
        if not 1 <= len(levels) <= header_rows:
            raise fail(f"{what}: {len(levels)} header levels, the form has {header_rows} row(s)")
        return tuple(_text(level, what, fail) for level in levels)

    aliases = item.get("aliases", [])
    if not isinstance(aliases, list):
        raise fail(f"{where}: aliases must be a list")
    kind = item["kind"]
    if kind not in KINDS:
        raise fail(f"{where}: kind {kind!r} is not one of {list(KINDS)}")
    unit, type_field = item.get("unit"), item.get("type_field")
    if (kind == "amount") != (unit is not None):
        raise fail(f"{where}: 'unit' goes with kind amount, and only with it")
    if unit is not None and unit not in AMOUNT_UNITS:
        raise fail(f"{where}: unit {unit!r} is not one of {list(AMOUNT_UNITS)}")
    if type_field is not None and kind != "ip_application_number":
        raise fail(f"{where}: 'type_field' goes with kind ip_application_number only")
    return Column(
        field=field,
        header=header(item["header"], f"{where}.header"),
        aliases=tuple(header(alias, f"{where}.aliases") for alias in aliases),
        kind=kind,
        unit=unit,
        type_field=type_field,
    )


def _text(value: object, what: str, fail: Any) -> str:
    if not isinstance(value, str | int) or isinstance(value, bool) or not str(value).strip():
        raise fail(f"{what} must be a non-empty string")
    return str(value)


def _texts(value: object, what: str, fail: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise fail(f"{what} must be a non-empty list")
    return tuple(_text(item, what, fail) for item in value)


def fields_contract(forms: Mapping[str, Form]) -> dict[str, Any]:
    """The field table the standardiser reads (spreadsheet_forms_v1.fields.yml), from the forms."""
    entities: dict[str, Any] = {}
    for entity in sorted(forms):
        form = forms[entity]
        table: dict[str, Any] = {
            "reporting_unit": "text",
            "province": "text",
            "report_year": "number",
            "report_revision": "number",
        }
        for column in form.columns:
            spec: dict[str, Any] = {"kind": column.kind}
            if column.unit is not None:
                spec["unit"] = column.unit
            if column.type_field is not None:
                spec["type_field"] = column.type_field
            table[column.field] = column.kind if len(spec) == 1 else spec
        entities[entity] = table
    return {"entities": entities}


# --- Text folding -----------------------------------------------------------------------------


def fold(text: str) -> str:
    """The form of a title used to compare it: NFC, case-folded, spaces collapsed.

    Spaces next to ( ) / : , are dropped, dashes are "-", and the look-alike Ð is Đ; diacritics
    are kept ('Kinh phi' is not 'Kinh phí').
    """
    text = unicodedata.normalize("NFC", text).casefold().translate(_FOLD_CHARS)
    text = _SPACE_RUN.sub(" ", text).strip()
    return _SPACE_AROUND_PUNCT.sub(r"\1", text)


def _ascii_fold(text: str) -> str:
    """Lower case without diacritics (đ -> d), for file names."""
    decomposed = unicodedata.normalize("NFD", text.casefold().replace("đ", "d"))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _code_token(text: str) -> str:
    """'Biểu 04/KHCN–NV' -> '4khcnnv': what is left of a form code to compare."""
    token = re.sub(r"[^0-9a-z]", "", _ascii_fold(text))
    return re.sub(r"(?<![0-9])0+(?=[0-9])", "", token)


def _is_form_code(token: str) -> bool:
    """Whether a heading value is a statistical form code at all ("04/KHCN-NV", not "mẫu")."""
    return "khcn" in token and any(ch.isdigit() for ch in token)


def _display(value: object) -> str:
    return "" if value is None else str(value).strip()


# --- Detecting the form of a file -------------------------------------------------------------


def detect_form(path: Path, forms: Mapping[str, Form], *, name: str | None = None) -> Form:
    """The form a dropped file is in. `name` is the dropped name when `path` is a local copy.

    The rule, strongest evidence first:
    1. the form code the reporting unit wrote in the heading ("Biểu số: 04/KHCN-NV") of the
       form's sheet (xlsx: the one sheet named like a form, else the first) or of the csv;
    2. (xlsx) the sheet names: exactly one form has a sheet in the workbook;
    3. the file name, matched by each form's `file_name_pattern` (e.g. "04_ninh_binh_2024.xlsx").
    A workbook with sheets of several forms, a heading naming a form not in `forms`, or a file
    no rule decides raises SpreadsheetError.
    """
    name = name or path.name
    known = list(forms.values())
    source = _open_source(path, name)
    try:
        by_sheet: list[Form] = []
        sheet: str | None = None
        if isinstance(source, _XlsxSource):
            matches = [(f, s) for f in known for s in source.sheet_names if _sheet_matches(f, s)]
            by_sheet = list(dict.fromkeys(f for f, _ in matches))
            if len(by_sheet) > 1:
                raise SpreadsheetError(
                    f"{name}: the workbook holds sheets of several forms"
                    f" ({', '.join(f.code for f in by_sheet)}); drop one form per file",
                    file=name,
                )
            sheet = matches[0][1] if matches else source.sheet_names[0]
        rows = source.rows(sheet, None)
        try:
            declared = _declared_form(rows, known, name, sheet)
        finally:
            _close(rows)
    finally:
        source.close()
    if declared is not None:
        return declared
    if by_sheet:
        return by_sheet[0]
    stem = _ascii_fold(Path(name).stem)
    by_name = [form for form in known if form.file_name_pattern.search(stem)]
    if len(by_name) == 1:
        return by_name[0]
    codes = ", ".join(f.code for f in known)
    found = f" (the name fits {', '.join(f.code for f in by_name)})" if by_name else ""
    raise SpreadsheetError(
        f"{name}: cannot tell which form this is{found}: write the form code in the heading"
        f" ('Biểu số: 04/KHCN-NV') or name the file after it ('04_<province>_<year>.xlsx');"
        f" forms read: {codes}",
        file=name,
    )


def _declared_form(
    rows: Iterator[Sequence[Any]], forms: list[Form], name: str, sheet: str | None
) -> Form | None:
    labels = sorted(
        {
            (fold(label), "form_code")
            for form in forms
            for label in form.heading.get("form_code", ())
        },
        key=lambda pair: -len(pair[0]),
    )
    tokens = {_code_token(form.code): form for form in forms}
    for row_number, row in enumerate(rows, 1):
        if row_number > HEADER_SEARCH_ROWS:
            break
        for found in _labelled_values(row, labels):
            _, value, column = found
            token = _code_token(_display(value))
            for code_token, form in tokens.items():
                if code_token in token:
                    return form
            if _is_form_code(token):
                ref = f"{get_column_letter(column + 1)}{row_number}"
                raise SpreadsheetError(
                    f"{_where(name, sheet)}: cell {ref} declares form {_display(value)!r},"
                    f" which is not one read here ({', '.join(f.code for f in forms)})",
                    file=name,
                    sheet=sheet,
                    cell=ref,
                )
    return None


def _sheet_matches(form: Form, sheet_name: str) -> bool:
    return fold(sheet_name) in {fold(s) for s in form.sheets}


# --- Sources: the rows of an .xlsx sheet or a .csv --------------------------------------------


class _XlsxSource:
    def __init__(self, path: Path, name: str) -> None:
        self.name = name
        _check_inflation(path, name)
        try:
            self.workbook = load_workbook(path, read_only=True, data_only=True)
        except Exception as exc:  # whatever openpyxl trips on, the operator needs the file name
            raise SpreadsheetError(
                f"{name}: not a readable .xlsx workbook ({type(exc).__name__}: {exc});"
                " password-protected and legacy .xls files must be saved as plain .xlsx",
                file=name,
            ) from None
        self.sheet_names: list[str] = list(self.workbook.sheetnames)

    def sheet_for(self, form: Form) -> str:
        matches = [s for s in self.sheet_names if _sheet_matches(form, s)]
        if len(matches) == 1:
            return matches[0]
        sheets = ", ".join(repr(s) for s in self.sheet_names)
        if not matches:
            raise SpreadsheetError(
                f"{self.name}: no sheet named {form.sheets[0]!r}"
                f" (or {', '.join(repr(s) for s in form.sheets[1:])}) (sheets: {sheets})",
                file=self.name,
            )
        raise SpreadsheetError(
            f"{self.name}: several sheets are form {form.code} ({', '.join(map(repr, matches))});"
            " keep one",
            file=self.name,
        )

    def rows(self, sheet: str | None, form: Form | None) -> Iterator[Sequence[Any]]:
        sheet = sheet or self.sheet_names[0]
        worksheet = self.workbook[sheet]
        # Some writers store a wrong <dimension>; without this, read-only mode would stop there.
        worksheet.reset_dimensions()
        try:
            yield from worksheet.iter_rows(values_only=True)
        except (ParseError, zipfile.BadZipFile, zlib.error, EOFError, ValueError) as exc:
            raise SpreadsheetError(
                f"{_where(self.name, sheet)}: the sheet is damaged ({type(exc).__name__}: {exc})",
                file=self.name,
                sheet=sheet,
            ) from None

    def close(self) -> None:
        self.workbook.close()


def _check_inflation(path: Path, name: str) -> None:
    """Refuse a workbook whose central directory says it inflates past the limits."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError):
        return  # not a zip at all: openpyxl's error says so, naming the file
    refused = f"{name}: refused as a possible zip bomb"
    total = sum(member.file_size for member in members)
    if total > MAX_XLSX_INFLATED_BYTES:
        raise SpreadsheetError(
            f"{refused}: it would inflate to {total / (1 << 20):,.1f} MiB (limit"
            f" {MAX_XLSX_INFLATED_BYTES >> 20} MiB); no form is that large, re-save it in Excel",
            file=name,
        )
    for member in members:
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size > _RATIO_FROM_BYTES and ratio > MAX_XLSX_RATIO:
            raise SpreadsheetError(
                f"{refused}: {member.filename} inflates {ratio:,.0f} times its compressed size"
                f" (limit {MAX_XLSX_RATIO}; spreadsheets inflate 5-20 times); re-save it in Excel",
                file=name,
            )


class _CsvSource:
    def __init__(self, path: Path, name: str) -> None:
        self.path = path
        self.name = name
        self.encoding: str | None = None
        self.delimiter: str | None = None

    def rows(self, sheet: str | None, form: Form | None) -> Iterator[Sequence[Any]]:
        """The csv's records; `form` helps tell a legacy code page and the delimiter apart."""
        with self.path.open("rb") as handle:
            head = handle.read(_CSV_SNIFF_BYTES)
        first_titles = _first_titles(form)
        self.encoding, self.delimiter = _csv_dialect(head, self.name, form, first_titles)
        return self._records()

    def _records(self) -> Iterator[list[str]]:
        assert self.encoding is not None and self.delimiter is not None
        with self.path.open(encoding=self.encoding, newline="") as text:
            reader = csv.reader(text, delimiter=self.delimiter)
            try:
                yield from reader
            except UnicodeDecodeError as exc:
                raise SpreadsheetError(
                    f"{self.name}: near line {reader.line_num + 1}: not valid {self.encoding}"
                    f" ({exc.reason}); save the file as 'CSV UTF-8'",
                    file=self.name,
                ) from None
            except csv.Error as exc:
                raise SpreadsheetError(
                    f"{self.name}: line {reader.line_num}: unreadable csv ({exc})", file=self.name
                ) from None

    def close(self) -> None:
        pass


def _open_source(path: Path, name: str) -> _XlsxSource | _CsvSource:
    suffix = Path(name).suffix.lower()
    if suffix not in (".xlsx", ".csv"):
        hint = {
            ".xls": "legacy .xls: save it as .xlsx",
            ".xlsm": "macro workbook: save it as .xlsx",
            ".ods": "OpenDocument: save it as .xlsx",
        }.get(suffix, "drop .xlsx or .csv files")
        raise SpreadsheetError(
            f"{name}: unknown extension {suffix or '(none)'!r} ({hint})", file=name
        )
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise SpreadsheetError(f"{name}: cannot read the file ({exc})", file=name) from None
    if size == 0:
        raise SpreadsheetError(f"{name}: the file is empty", file=name)
    return _XlsxSource(path, name) if suffix == ".xlsx" else _CsvSource(path, name)


def _close(rows: Iterator[Any]) -> None:
    close = getattr(rows, "close", None)
    if close is not None:
        close()


def _first_titles(form: Form | None) -> frozenset[str]:
    if form is None:
        return frozenset({"stt", "tt", "số tt", "số thứ tự"})
    first = form.columns[0]
    return frozenset(fold(t[0]) for t in (first.header, *first.aliases))


def _csv_dialect(
    head: bytes, name: str, form: Form | None, first_titles: frozenset[str]
) -> tuple[str, str]:
    """(encoding, delimiter) of a csv from its first MiB.

    UTF-8 (with or without BOM) is taken as it is. Anything else is a legacy file: each legacy
    code page is tried and the first under which the form's header row matches wins (without a
    form, the first that decodes); when none does, the error says how to save the file.
    """
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig", _delimiter(head.decode("utf-8-sig", "replace"), first_titles)
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(
            head, final=len(head) < _CSV_SNIFF_BYTES
        )
    except UnicodeDecodeError:
        pass
    else:
        return "utf-8", _delimiter(text, first_titles)
    failures: list[str] = []
    for encoding in _LEGACY_ENCODINGS:
        try:
            text = head.decode(encoding)
        except UnicodeDecodeError as exc:
            failures.append(f"{encoding}: byte {exc.start} undefined")
            continue
        delimiter = _delimiter(text, first_titles)
        if form is None:
            return encoding, delimiter
        rows = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        try:
            _locate_table(rows, form, name, None)
        except SpreadsheetError as exc:
            failures.append(f"{encoding}: {exc.args[0].removeprefix(name + ': ')}")
            continue
        log.warning("%s is not UTF-8; read it as %s", name, encoding)
        return encoding, delimiter
    raise SpreadsheetError(
        f"{name}: not UTF-8, and no legacy code page gives the form's header"
        f" ({'; '.join(failures)}); if it was typed with a TCVN3 (ABC) or VNI font, convert it"
        " to Unicode, then save it as 'CSV UTF-8'",
        file=name,
    )


def _delimiter(text: str, first_titles: frozenset[str]) -> str:
    """The delimiter under which the header row (the one starting with STT) has most cells."""
    lines = text.splitlines()[:HEADER_SEARCH_ROWS]
    best, best_cells = ",", 0
    for delimiter in _CSV_DELIMITERS:
        for row in csv.reader(lines, delimiter=delimiter):
            if any(fold(cell) in first_titles for cell in row if cell):
                if len(row) > best_cells:
                    best, best_cells = delimiter, len(row)
                break
    return best


# --- Heading and header -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Table:
    """Where the table starts and the context of the report (from the heading)."""

    start: int  # 0-based column of the first field
    context: dict[str, Any]


def _where(name: str, sheet: str | None) -> str:
    return name if sheet is None else f"{name}, sheet {sheet!r}"


def _labelled_values(
    row: Sequence[Any], labels: list[tuple[str, str]]
) -> Iterator[tuple[str, Any, int]]:
    """(role, value, column) of each heading cell in `row` that starts with a label.

    "Năm báo cáo: 2024" gives "2024"; a cell holding only the label takes the next non-empty
    cell to its right. `labels` are (folded label, role), longest first.
    """
    for column, value in enumerate(row):
        if value.__class__ is not str or not value.strip():
            continue
        folded = fold(value)
        for label, role in labels:
            if not folded.startswith(label):
                continue
            rest = folded[len(label) :]
            if rest and rest[0] not in ": ":
                continue
            if ":" in value and fold(value.split(":", 1)[0]) == label:
                found: Any = value.split(":", 1)[1].strip()
            else:
                found = " ".join(value.split()[len(label.split()) :]).lstrip(": ")
            if not found:  # only the label: the value is the next non-empty cell to its right
                found = next((v for v in row[column + 1 :] if _display(v)), None)
            if found is not None:
                yield role, _cell_value(found), column
            break


def _locate_table(
    rows: Iterator[Sequence[Any]], form: Form, name: str, sheet: str | None
) -> tuple[_Table, Iterator[tuple[int, Sequence[Any]]]]:
    """Find the header row, check it against the form and read the heading above it.

    Returns the table and the remaining rows as (row number, cells), the first of them being
    the first data row (or a column-numbering row, which the caller skips).
    """
    where = _where(name, sheet)
    numbered = enumerate(rows, 1)
    first_titles = _first_titles(form)
    heading: list[Sequence[Any]] = []
    header: Sequence[Any] | None = None
    start = 0
    for row_number, row in numbered:
        for column, value in enumerate(row):
            if value.__class__ is str and fold(value) in first_titles:
                header, start = row, column
                break
        if header is not None:
            break
        heading.append(row)
        if row_number >= HEADER_SEARCH_ROWS:
            break
    if header is None:
        raise SpreadsheetError(
            f"{where}: header row not found in the first {HEADER_SEARCH_ROWS} rows: no cell reads"
            f" {form.columns[0].header[0]!r}, the form's first column",
            file=name,
            sheet=sheet,
        )
    header_row = len(heading) + 1
    sub_header: Sequence[Any] = ()
    if form.header_rows == 2:
        sub_header = next(numbered, (0, ()))[1]
    _check_header(form, header, sub_header, start, header_row, name, sheet)
    context = _read_heading(form, heading, name, sheet)
    return _Table(start=start, context=context), numbered


def _check_header(
    form: Form,
    top: Sequence[Any],
    sub: Sequence[Any],
    start: int,
    header_row: int,
    name: str,
    sheet: str | None,
) -> None:
    width = len(form.columns)
    two_rows = form.header_rows == 2
    top_cells = [_display(v) for v in top[start:]]
    sub_cells = [_display(v) for v in sub[start:]]
    top_cells += [""] * (width - len(top_cells))
    sub_cells += [""] * (width - len(sub_cells))

    def ref(column: int, row: int) -> str:
        return f"{get_column_letter(start + column + 1)}{row}"

    def error(message: str, cell: str) -> SpreadsheetError:
        return SpreadsheetError(
            f"{_where(name, sheet)}: cell {cell} {message}", file=name, sheet=sheet, cell=cell
        )

    group, group_column = "", 0
    for i, column in enumerate(form.columns):
        sub_text = sub_cells[i] if two_rows else ""
        # A group title spans the sub-titled columns to its right (merged cells hold it once).
        if top_cells[i] or not sub_text or i == 0 or not sub_cells[i - 1]:
            group, group_column = top_cells[i], i
        actual = (fold(group), fold(sub_text))
        accepted = {tuple(fold(t) for t in (*h, "")[:2]) for h in (column.header, *column.aliases)}
        if actual in accepted:
            continue
        shown = " / ".join(t for t in (group, sub_text) if t)
        groups_ok = actual[0] in {g for g, _ in accepted}
        cell = ref(i, header_row + 1) if groups_ok and two_rows else ref(group_column, header_row)
        if not shown:
            raise error(
                f"is empty but form {form.code} expects {column.title!r}", ref(i, header_row)
            )
        raise error(f"has header {shown!r} but form {form.code} expects {column.title!r}", cell)
    for i in range(width, max(len(top_cells), len(sub_cells))):
        extra = top_cells[i] if i < len(top_cells) else ""
        row = header_row
        if not extra and two_rows and i < len(sub_cells):
            extra, row = sub_cells[i], header_row + 1
        if extra:
            raise error(
                f"has header {extra!r}, which form {form.code} does not have (its last column"
                f" is {form.columns[-1].title!r})",
                ref(i, row),
            )


def _read_heading(
    form: Form, heading: list[Sequence[Any]], name: str, sheet: str | None
) -> dict[str, Any]:
    where = _where(name, sheet)
    labels = sorted(
        ((fold(label), role) for role, labels in form.heading.items() for label in labels),
        key=lambda pair: -len(pair[0]),
    )
    found: dict[str, tuple[Any, str]] = {}
    for row_number, row in enumerate(heading, 1):
        for role, value, column in _labelled_values(row, labels):
            found.setdefault(role, (value, f"{get_column_letter(column + 1)}{row_number}"))

    def error(message: str, cell: str | None = None) -> SpreadsheetError:
        at = f"cell {cell} " if cell else ""
        return SpreadsheetError(f"{where}: {at}{message}", file=name, sheet=sheet, cell=cell)

    rows = f"rows 1-{len(heading)}" if heading else "no rows above the header"
    if "form_code" in found:
        value, cell = found["form_code"]
        token = _code_token(_display(value))
        if _is_form_code(token) and _code_token(form.code) not in token:
            raise error(
                f"declares form {_display(value)!r} but the file is read as {form.code}", cell
            )
    if "report_year" not in found:
        raise error(f"no report year in the heading ({rows}): write e.g. 'Năm báo cáo: 2024'")
    year, cell = found["report_year"]
    if report_year(year) is None:
        raise error(f"gives the report year as {_display(year)!r}, which is not a year", cell)
    if "reporting_unit" not in found and "province" not in found:
        raise error(
            f"the heading ({rows}) names neither the reporting unit ('Đơn vị báo cáo: …')"
            " nor the province ('Tỉnh/thành phố: …')"
        )
    if "report_revision" in found:
        revision, cell = found["report_revision"]
        if report_revision(revision) is None:
            raise error(f"gives the revision as {_display(revision)!r}, which is no number", cell)
    context = {field: found[field][0] if field in found else None for field in CONTEXT_FIELDS}
    # The reader found these two in free heading text, so it records what it understood.
    context["report_year"] = report_year(year)
    context["report_revision"] = report_revision(context["report_revision"])
    return context


def report_year(value: Any) -> int | None:
    """The report year in a heading value as typed ("2024", 2024, "Năm 2024"), or None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if 1950 <= value <= 2100 else None
    if isinstance(value, float) and value.is_integer():
        return report_year(int(value))
    match = _YEAR.search(value) if isinstance(value, str) else None
    return int(match.group(1)) if match else None


def report_revision(value: Any) -> int | None:
    """The revision number in a heading value as typed ("2", 2, "lần 2"), or None (absent)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if value >= 1 else None
    if isinstance(value, float) and value.is_integer():
        return report_revision(int(value))
    match = _INTEGER.search(value) if isinstance(value, str) else None
    return report_revision(int(match.group(1))) if match else None


# --- Records ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, repr=False)
class Page:
    """One page of records read from a dropped file."""

    records: list[dict[str, Any]]
    number: int  # 1-based

    def __repr__(self) -> str:
        return f"Page(number={self.number}, records={len(self.records)})"


def read_drop_file(
    path: Path,
    form: Form,
    *,
    file_sha256: str,
    page_size: int = 5000,
    name: str | None = None,
    modified_at: datetime | None = None,
) -> Iterator[Page]:
    """The records of a dropped file in `form`, `page_size` at a time.

    `name` and `modified_at` are the dropped file's (default: `path`'s), for when `path` is a
    local copy of a file in object storage. Each record holds the form's fields (cells as
    typed), the context fields of the heading (reporting_unit, province, report_year,
    report_revision) and where it came from (_form, _file, _sheet, _row, _file_sha256,
    _file_modified_at). Blank rows, a totals row ("Tổng cộng") and the signature footer are
    skipped; see the forms README.
    """
    if page_size < 1:
        raise ValueError("page_size must be >= 1")
    name = name or path.name
    source = _open_source(path, name)
    if modified_at is None:
        modified_at = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    try:
        sheet = source.sheet_for(form) if isinstance(source, _XlsxSource) else None
        rows = source.rows(sheet, form)
        try:
            table, numbered = _locate_table(rows, form, name, sheet)
            base = {
                **table.context,
                "_form": form.code,
                "_file": name,
                "_sheet": sheet,
                "_file_sha256": file_sha256,
                "_file_modified_at": _rfc3339(modified_at),
            }
            yield from _pages(
                numbered, form, table, base, page_size, isinstance(source, _CsvSource)
            )
        finally:
            _close(rows)
    finally:
        source.close()


def _pages(
    numbered: Iterator[tuple[int, Sequence[Any]]],
    form: Form,
    table: _Table,
    base: dict[str, Any],
    page_size: int,
    from_csv: bool,
) -> Iterator[Page]:
    fields = form.fields
    width = len(fields)
    rest = width - 1
    start, end = table.start, table.start + width
    pad = (None,) * width
    page: list[dict[str, Any]] = []
    number = 0
    first = True
    for row_number, row in numbered:
        cells = row[start:end]
        if len(cells) < width:
            cells = (*cells, *pad[len(cells) :])
        if from_csv:
            cells = [v or None for v in cells]  # an empty csv field is no value
        elif not _DATE_TYPES.isdisjoint(map(type, cells)):
            cells = [_iso(v) if v.__class__ in _DATE_TYPES else v for v in cells]
        if first:
            first = False
            if _is_column_numbering(cells):
                continue
        # Blank: nothing but perhaps its row number (templates come pre-numbered).
        tail = cells[1:]
        empty = tail.count(None)
        if empty == rest:
            continue
        if from_csv:  # all strings: one C-level join tells whether any is more than spaces
            if "".join(filter(None, tail)).isspace():
                continue
        elif not any(v.strip() if v.__class__ is str else v is not None for v in tail):
            continue
        if _is_total(cells[0]) or _is_total(cells[1]):
            continue
        if empty >= rest - _FOOTER_MAX_CELLS and _is_footer(cells):
            continue
        record = base.copy()
        record.update(zip(fields, cells, strict=False))  # same length by construction
        record["_row"] = row_number
        page.append(record)
        if len(page) >= page_size:
            number += 1
            yield Page(page, number)
            page = []
    if page or number == 0:
        yield Page(page, number + 1)


def _is_column_numbering(cells: Sequence[Any]) -> bool:
    values = [v for v in cells if v is not None]
    if len(values) * 2 < len(cells):
        return False
    return all(
        (v.__class__ is int and 0 <= v < 100)
        or (v.__class__ is str and _COLUMN_NUMBER.match(v.strip()))
        for v in values
    )


def _is_total(value: Any) -> bool:
    if value.__class__ is not str or len(value) > 24:
        return False
    stripped = value.lstrip()
    return stripped[:1] in _TOTAL_INITIALS and fold(stripped).rstrip(" :.") in _TOTAL_LABELS


def _is_footer(cells: Sequence[Any]) -> bool:
    values = [v for v in cells if v is not None]
    return all(v.__class__ is str and _FOOTER.match(fold(v)) for v in values)


def _iso(value: Any) -> Any:
    """A date/time cell as an ISO string: a date at midnight as YYYY-MM-DD."""
    if isinstance(value, datetime):
        if value.time() == time(0):
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return str(value)
    return value


def _cell_value(value: Any) -> Any:
    return _iso(value) if value.__class__ in _DATE_TYPES else value


def _rfc3339(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("modified_at must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- Envelope ---------------------------------------------------------------------------------


@cache
def _keys_by_code(folder: Path = FORMS_DIR) -> dict[str, tuple[str, ...]]:
    return {form.code: form.key for form in load_forms(folder).values()}


def drop_envelope(
    record: dict[str, Any],
) -> tuple[str | None, int | None, datetime | None, bool | None]:
    """(record_id, version, updated_at, deleted) of a record read by :func:`read_drop_file`.

    - record_id: "<form>/<reporting unit, else province>/<year>/<key>", the key being the
      form's key columns joined by "|" (texts NFC with spaces collapsed); None when a key
      column is empty, so the gate quarantines the row.
    - version: revision × 10^10 + the file's modification time (epoch seconds). The revision is
      "Lần báo cáo: N" in the heading, 1 when absent: a corrected re-submission supersedes the
      earlier rows when it says a higher revision, or, saying none, when it is a newer file.
    - updated_at: the file's modification time (UTC); deleted: False (a report has no deletes).
    Forms are looked up by `_form` among the contracts in connectors/contracts/forms/.
    """
    prefix, key, version, updated_at = _report_envelope(
        record.get("_form"),
        record.get("reporting_unit"),
        record.get("province"),
        record.get("report_year"),
        record.get("report_revision"),
        record.get("_file_modified_at"),
    )
    if prefix is None:
        return None, version, updated_at, False
    parts = []
    for field in key:
        part = _key_text(record.get(field))
        if not part:
            return None, version, updated_at, False
        parts.append(part)
    return f"{prefix}/{'|'.join(parts)}", version, updated_at, False


@lru_cache(maxsize=1024)
def _report_envelope(
    form_code: Any, unit: Any, province: Any, year: Any, revision: Any, modified_at: Any
) -> tuple[str | None, tuple[str, ...], int | None, datetime | None]:
    """The part of the envelope that is the same for every row of one file."""
    updated_at = None
    if isinstance(modified_at, str):
        try:
            updated_at = datetime.fromisoformat(modified_at).astimezone(UTC)
        except ValueError:
            updated_at = None
    version = None
    if updated_at is not None:
        version = (report_revision(revision) or 1) * REVISION_WEIGHT + int(updated_at.timestamp())
    key = _keys_by_code().get(form_code) if isinstance(form_code, str) else None
    reporter = _key_text(unit) or _key_text(province)
    year_number = report_year(year)
    if key is None or not reporter or year_number is None:
        return None, key or (), version, updated_at
    return f"{form_code}/{reporter}/{year_number}", key, version, updated_at


def _key_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str):
        return " ".join(unicodedata.normalize("NFC", value).split())
    return str(value)
