"""Apply a declarative field spec to records: repair Vietnamese text, type numbers and dates.

A field spec (``connectors/contracts/<contract>.fields.yml``, format in
``connectors/contracts/FIELDS.md``) says, per entity, which fields hold text, numbers, dates,
amounts, enterprise codes (MST) or IP application numbers. :class:`Standardiser` applies it to
one record at a time and returns what changed, what was repaired and what could not be:

- ``record``: a new dict with the repaired values, or None when nothing changed (the common
  case, kept cheap: a clean record costs a few dictionary lookups and type checks per field);
- ``repairs``: one entry per changed field, with the value before and after;
- ``issues``: one readable reason per value that could not be repaired (that field keeps its
  value as sent; the caller quarantines the record with the reason).

The input record is never modified: it is the original that goes to the raw payload.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from connectors.vietnamese import (
    AMOUNT_UNITS,
    EARLIEST_DATE,
    RepairError,
    check_date_range,
    check_ip_type,
    parse_amount,
    parse_ip_application_number,
    parse_vn_date,
    parse_vn_number,
    repair_text,
    validate_mst,
)

__all__ = ["KINDS", "FieldSpec", "Standardised", "Standardiser", "load_field_specs"]

#: Field kinds and the options each accepts (``unit`` is required for amounts).
KINDS: dict[str, frozenset[str]] = {
    "text": frozenset(),
    "number": frozenset(),
    "date": frozenset({"earliest", "latest"}),
    "amount": frozenset({"unit"}),
    "mst": frozenset(),
    "ip_application_number": frozenset({"type_field"}),
    # Personal data (Decree 13/2023/NĐ-CP): kept as sent in the landing zone, never repaired,
    # and left out of every copy made outside it (see personal_fields).
    "personal": frozenset(),
}
_REQUIRED_OPTIONS = {"amount": ("unit",)}
_TOP_LEVEL_KEYS = frozenset({"entities"})


@dataclass(frozen=True, slots=True)
class Standardised:
    """The outcome for one record; all three are None for a clean record."""

    record: dict[str, Any] | None
    repairs: list[dict[str, Any]] | None
    issues: list[str] | None


_CLEAN = Standardised(None, None, None)


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field of an entity: its kind and options (see KINDS)."""

    kind: str
    unit: str | None = None  # amount
    type_field: str | None = None  # ip_application_number
    earliest: date | None = None  # date
    latest: date | None = None  # date


# A check takes the value (never None) and the whole record. It returns None when the value is
# clean, a str (the issue, without the field name) when it cannot be repaired, or a tuple
# (repair kind, new value, extra keys for the repair entry or None).
_Outcome = tuple[str, Any, dict[str, Any] | None] | str | None
_Check = Callable[[Any, Mapping[str, Any]], _Outcome]


class Standardiser:
    """Applies one entity's field spec to records of that entity."""

    def __init__(self, entity: str, fields: Mapping[str, FieldSpec]) -> None:
        self.entity = entity
        self.fields = dict(fields)
        self._checks: tuple[tuple[str, _Check], ...] = tuple(
            (name, _check_for(spec))
            for name, spec in self.fields.items()
            if spec.kind != "personal"
        )
        self.personal_fields = tuple(
            name for name, spec in self.fields.items() if spec.kind == "personal"
        )

    def __repr__(self) -> str:
        return f"Standardiser({self.entity!r}, {len(self.fields)} fields)"

    def apply(self, record: Mapping[str, Any]) -> Standardised:
        """Standardise one record (not modified); absent and null fields are skipped."""
        out: dict[str, Any] | None = None
        repairs: list[dict[str, Any]] | None = None
        issues: list[str] | None = None
        get = record.get
        for name, check in self._checks:
            value = get(name)
            if value is None:
                continue
            outcome = check(value, record)
            if outcome is None:
                continue
            if outcome.__class__ is str:
                if issues is None:
                    issues = []
                issues.append(f"{name}: {outcome}")
                continue
            repair, new_value, extra = outcome
            if out is None:
                out = dict(record)
                repairs = []
            out[name] = new_value
            entry = {"field": name, "repair": repair, "from": value, "to": new_value}
            if extra:
                entry.update(extra)
            repairs.append(entry)
        if out is None and issues is None:
            return _CLEAN
        return Standardised(out, repairs, issues)


# --------------------------------------------------------------------------------------------
# Checks, one per kind; each has a fast path for the value that is already clean.


def _check_for(spec: FieldSpec) -> _Check:
    if spec.kind == "text":
        return _check_text
    if spec.kind == "number":
        return _check_number
    if spec.kind == "date":
        return _date_check(spec.earliest or EARLIEST_DATE, spec.latest)
    if spec.kind == "amount":
        return _amount_check(spec.unit or "")
    if spec.kind == "mst":
        return _check_mst
    if spec.kind == "ip_application_number":
        return _ip_check(spec.type_field)
    raise ValueError(f"unknown field kind {spec.kind!r}")


def _check_text(value: Any, record: Mapping[str, Any]) -> _Outcome:
    if value.__class__ is str:
        if value.isascii():
            return None
        repaired, kind = (
            _repair_short_text(value) if len(value) <= _SHORT_TEXT else repair_text(value)
        )
        return None if kind is None else (kind, repaired, None)
    if value.__class__ is int:  # a spreadsheet cell typed as a number, e.g. a code: 20312
        return "number_as_text", str(value), None
    return f"{value!r} is not text"


# Names, places and addresses recur from record to record; long titles mostly do not.
_SHORT_TEXT = 120
_repair_short_text = lru_cache(maxsize=65536)(repair_text)


def _check_number(value: Any, record: Mapping[str, Any]) -> _Outcome:
    cls = value.__class__
    if cls is int or cls is float:
        return None
    if cls is str:
        try:
            return "number", _json_number(parse_vn_number(value)), None
        except RepairError as exc:
            return str(exc)
    return f"{value!r} is not a number"


def _date_check(earliest: date, latest: date | None) -> _Check:
    def check(value: Any, record: Mapping[str, Any]) -> _Outcome:
        if value.__class__ is not str:
            return f"{value!r} is not a date"
        return check_text(value)

    @lru_cache(maxsize=16384)  # a few thousand distinct days recur across a batch
    def check_text(value: str) -> _Outcome:
        try:
            if _ISO_DATE.fullmatch(value):  # already as wanted: check it exists and is in range
                day = date.fromisoformat(value)
                if day < earliest or (latest is not None and day > latest):
                    check_date_range(day, value, earliest=earliest, latest=latest)  # raises
                return None
            parsed = parse_vn_date(value, earliest=earliest, latest=latest)
        except RepairError as exc:
            return str(exc)
        except ValueError as exc:  # fromisoformat: 2024-02-31
            return f"{value!r} is not a valid date: {exc}"
        return "date", parsed.isoformat(), None

    return check


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)


# Words exchanges write instead of a price: the price is negotiable, there is none to type.
NEGOTIABLE = frozenset({"thỏa thuận", "thoả thuận", "liên hệ", "thương lượng"})


def _amount_check(unit: str) -> _Check:
    def check(value: Any, record: Mapping[str, Any]) -> _Outcome:
        cls = value.__class__
        if cls is int or cls is float:
            return None
        if cls is not str:
            return f"{value!r} is not an amount"
        if unicodedata.normalize("NFC", value).strip().lower() in NEGOTIABLE:
            return "negotiable", None, {"unit": unit}
        try:
            amount, conversion = parse_amount(value, unit=unit)
        except RepairError as exc:
            return str(exc)
        return "amount", _json_number(amount), {"unit": unit, "conversion": conversion}

    return check


def _check_mst(value: Any, record: Mapping[str, Any]) -> _Outcome:
    if value.__class__ is int and len(str(value)) in (10, 13):
        # A spreadsheet cell typed as a number, with all its digits: still the same code.
        canonical, problem = _mst(str(value))
        return problem if problem is not None else ("mst", canonical, None)
    if value.__class__ is not str:
        return f"{value!r} is not text (an MST is a string of digits; a number loses its zeros)"
    canonical, problem = _mst(value)
    if problem is not None:
        return problem
    return None if canonical == value else ("mst", canonical, None)


@lru_cache(maxsize=65536)
def _mst(value: str) -> tuple[str | None, str | None]:
    """(canonical, None) or (None, problem); cached, as the same codes recur across records."""
    try:
        return validate_mst(value), None
    except RepairError as exc:
        return None, str(exc)


def _ip_check(type_field: str | None) -> _Check:
    def check(value: Any, record: Mapping[str, Any]) -> _Outcome:
        if value.__class__ is not str:
            return f"{value!r} is not an IP application number"
        try:
            parsed = parse_ip_application_number(value)
            if type_field is not None and (ip_type := record.get(type_field)) is not None:
                if not isinstance(ip_type, str):
                    return f"{type_field} {ip_type!r} is not an IP type"
                check_ip_type(parsed, ip_type)
        except RepairError as exc:
            return str(exc)
        if parsed.canonical == value:
            return None
        return "ip_application_number", parsed.canonical, None

    return check


def _json_number(value: Decimal) -> int | float:
    """int when integral, else float: what orjson serialises as a JSON number."""
    integral = value.to_integral_value()
    return int(integral) if value == integral else float(value)


# --------------------------------------------------------------------------------------------
# Loading specs


def load_field_specs(path: Path) -> dict[str, Standardiser]:
    """Read a ``*.fields.yml`` file: entity -> Standardiser. ValueError names file and field."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from None
    return parse_field_specs(data, source=str(path))


def parse_field_specs(data: Any, *, source: str) -> dict[str, Standardiser]:
    """Validate an already-parsed field spec document (``source`` names it in errors)."""
    if not isinstance(data, dict):
        raise ValueError(f"{source}: expected a mapping with the key 'entities'")
    unknown = set(data) - _TOP_LEVEL_KEYS
    if unknown:
        raise ValueError(f"{source}: unknown top-level key(s) {sorted(map(str, unknown))}")
    entities = data.get("entities")
    if not isinstance(entities, dict) or not entities:
        raise ValueError(f"{source}: 'entities' must map entity names to their fields")
    standardisers = {}
    for entity, fields in entities.items():
        where = f"{source}: entities.{entity}"
        if not isinstance(fields, dict) or not fields:
            raise ValueError(f"{where}: expected a mapping of field names to kinds")
        specs = {}
        for field, raw in fields.items():
            if not isinstance(field, str):
                raise ValueError(f"{where}: field name {field!r} is not a string")
            specs[field] = _parse_field(raw, f"{where}.{field}")
        for field, spec in specs.items():
            if spec.type_field is not None and spec.type_field == field:
                raise ValueError(f"{where}.{field}: type_field cannot be the field itself")
        standardisers[str(entity)] = Standardiser(str(entity), specs)
    return standardisers


def _parse_field(raw: Any, where: str) -> FieldSpec:
    if isinstance(raw, str):
        raw = {"kind": raw}
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: expected a kind or a mapping with 'kind', got {raw!r}")
    kind = raw.get("kind")
    if kind not in KINDS:
        raise ValueError(f"{where}: unknown kind {kind!r} (expected one of {sorted(KINDS)})")
    options = {k: v for k, v in raw.items() if k != "kind"}
    unknown = set(options) - KINDS[kind]
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {sorted(map(str, unknown))} for kind {kind!r}")
    for required in _REQUIRED_OPTIONS.get(kind, ()):
        if required not in options:
            raise ValueError(f"{where}: kind {kind!r} needs {required!r}")
    unit = options.get("unit")
    if unit is not None and unit not in AMOUNT_UNITS:
        raise ValueError(f"{where}: unit {unit!r} is not one of {sorted(AMOUNT_UNITS)}")
    type_field = options.get("type_field")
    if type_field is not None and not isinstance(type_field, str):
        raise ValueError(f"{where}: type_field must be a field name")
    return FieldSpec(
        kind=kind,
        unit=unit,
        type_field=type_field,
        earliest=_option_date(options.get("earliest"), f"{where}.earliest"),
        latest=_option_date(options.get("latest"), f"{where}.latest"),
    )


def _option_date(value: Any, where: str) -> date | None:
    if value is None or (isinstance(value, date) and not hasattr(value, "hour")):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError(f"{where}: expected a date as YYYY-MM-DD, got {value!r}")
