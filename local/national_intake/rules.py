"""The record rules of the stand-in national intake (the contract's `x-reason-codes`).

Generic over a record's `data`, at any depth, by field name (see the contract's description):

- `province_code`, `province_code_current`: one of today's 34 provinces (the seed
  admin_provinces.csv, rows with no `valid_to`) → UNKNOWN_PROVINCE;
- `field_code`, `*_field_code` (and plurals): a QĐ 12/2008 research field of any level (the seed
  research_fields_qd12_2008.csv) → UNKNOWN_RESEARCH_FIELD;
- `organisation_key`, `mst`, `*_organisation_key`, `*_mst` (and plurals): a valid MST (stdnum)
  → INVALID_ORGANISATION_KEY;
- any other string containing a citizen ID, a Vietnamese phone number or an e-mail address, and
  any non-null field named like one (`citizen_id`, `phone`, `email`, ...) → PERSONAL_DATA.

Made to be cheap: a field name's rule is looked up once and cached, and the strings of a record
are searched for personal data with one regular expression over all of them joined.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from stdnum.vn import mst as stdnum_mst

REPO_ROOT = Path(__file__).resolve().parents[2]
SEEDS = REPO_ROOT / "dbt_project" / "seeds"

MISSING_FIELD = "MISSING_FIELD"
UNKNOWN_PROVINCE = "UNKNOWN_PROVINCE"
UNKNOWN_RESEARCH_FIELD = "UNKNOWN_RESEARCH_FIELD"
INVALID_ORGANISATION_KEY = "INVALID_ORGANISATION_KEY"
PERSONAL_DATA = "PERSONAL_DATA"
REJECTED_ON_DEMAND = "REJECTED_ON_DEMAND"

MAX_RECORD_KEY = 256
MAX_DIGEST = 128
MST_CACHE = 200_000  # MSTs remembered as valid or not

# Personal data in a text, found with two regular expressions made to be cheap on clean text:
# a number starts at "0" or "+" (not after a letter, digit or "+"), so the scan skips ahead to
# those characters; e-mail addresses are only searched for in a text with an "@".
# - a citizen ID (CCCD): 12 digits starting with 0 (the birth province's 3-digit code), alone;
# - a phone number: 0, +84 or 0084, then a mobile (3|5|7|8|9 + 8 digits) or a landline
#   (2 + 9 digits), with single spaces, dots or dashes allowed between the digits.
_SUBSCRIBER = r"(?:[35789](?:[ .-]?\d){8}|2(?:[ .-]?\d){9})"
NUMBER_PATTERN = re.compile(
    rf"[0+](?<![\w+][0+])"  # a 0 or + not after a letter, digit or +
    rf"(?:(?<=0)(?:\d{{11}}|084[ .-]?{_SUBSCRIBER}|[ .-]?{_SUBSCRIBER})"
    rf"|(?<=\+)84[ .-]?{_SUBSCRIBER})"
    r"(?!\w)",
    re.ASCII,
)
EMAIL_PATTERN = re.compile(
    r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}", re.ASCII
)
PERSONAL_FIELD_NAMES = frozenset(
    {"citizen_id", "cccd", "cmnd", "phone", "phone_number", "email", "e_mail"}
)

# Field kinds
_TEXT, _PROVINCE, _FIELD, _MST, _PERSONAL = range(5)


def today_provinces(seeds: Path = SEEDS) -> frozenset[str]:
    """The codes of today's provinces: admin_provinces.csv rows without a `valid_to`."""
    with (seeds / "admin_provinces.csv").open(encoding="utf-8", newline="") as handle:
        return frozenset(row["code"] for row in csv.DictReader(handle) if not row["valid_to"])


def research_fields(seeds: Path = SEEDS) -> frozenset[str]:
    """Every QĐ 12/2008 research field code, of any level."""
    with (seeds / "research_fields_qd12_2008.csv").open(encoding="utf-8", newline="") as handle:
        return frozenset(row["field_code"] for row in csv.DictReader(handle))


def _kind_of(name: str) -> int:
    if name in ("province_code", "province_code_current"):
        return _PROVINCE
    singular = name[:-1] if name.endswith("s") else name
    if singular == "field_code" or singular.endswith("_field_code"):
        return _FIELD
    if singular in ("organisation_key", "mst") or singular.endswith(("_organisation_key", "_mst")):
        return _MST
    if name in PERSONAL_FIELD_NAMES:
        return _PERSONAL
    return _TEXT


def is_valid_mst(value: str) -> bool:
    """10 digits with the mod-11 check digit, or 13 (with or without the dash) with a branch."""
    if len(value) == 10 and value.isascii() and value.isdigit():  # the common case, fast
        return value[2:9] != "0000000" and value[9] == stdnum_mst.calc_check_digit(value)
    return stdnum_mst.is_valid(value)


class RecordRules:
    """Checks one record's `data`; :meth:`check` answers (reason code, reason) or None."""

    def __init__(self, provinces: Iterable[str], fields: Iterable[str]) -> None:
        self.provinces = frozenset(provinces)
        self.fields = frozenset(fields)
        self._kinds: dict[str, int] = {}
        self._msts: dict[str, bool] = {}

    def check(self, data: dict[str, Any]) -> tuple[str, str] | None:
        strings: list[str] = []
        problem = self._walk(data, strings)
        if problem is not None:
            return problem
        if strings:
            text = "\n".join(strings)
            if NUMBER_PATTERN.search(text) or ("@" in text and EMAIL_PATTERN.search(text)):
                return PERSONAL_DATA, self._personal_reason(data)
        return None

    def _is_valid_mst(self, value: str) -> bool:
        """is_valid_mst, remembered: organisations recur across a feed's records."""
        valid = self._msts.get(value)
        if valid is None:
            if len(self._msts) >= MST_CACHE:
                self._msts.clear()
            valid = self._msts[value] = is_valid_mst(value)
        return valid

    def _kind(self, name: str) -> int:
        kind = self._kinds.get(name)
        if kind is None:
            kind = self._kinds[name] = _kind_of(name)
        return kind

    def _walk(self, obj: dict[str, Any], strings: list[str]) -> tuple[str, str] | None:
        kinds = self._kinds
        for name, value in obj.items():
            if value is None:
                continue
            kind = kinds.get(name)
            if kind is None:
                kind = kinds[name] = _kind_of(name)
            if kind == _TEXT:
                kind_of_value = type(value)
                if kind_of_value is str:
                    strings.append(value)
                elif kind_of_value is dict:
                    problem = self._walk(value, strings)
                    if problem is not None:
                        return problem
                elif kind_of_value is list:
                    problem = self._walk_list(name, value, strings)
                    if problem is not None:
                        return problem
                continue
            problem = self._check_field(name, kind, value, strings)
            if problem is not None:
                return problem
        return None

    def _walk_list(
        self, name: str, values: list[Any], strings: list[str]
    ) -> tuple[str, str] | None:
        for value in values:
            if type(value) is str:
                strings.append(value)
            elif type(value) is dict:
                problem = self._walk(value, strings)
                if problem is not None:
                    return problem
            elif type(value) is list:
                problem = self._walk_list(name, value, strings)
                if problem is not None:
                    return problem
        return None

    def _check_field(
        self, name: str, kind: int, value: Any, strings: list[str]
    ) -> tuple[str, str] | None:
        if type(value) is list:
            for item in value:
                if item is not None:
                    problem = self._check_field(name, kind, item, strings)
                    if problem is not None:
                        return problem
            return None
        if kind == _PERSONAL:
            return PERSONAL_DATA, f"{name} is personal data: people are sent by pseudonymous key"
        if kind == _PROVINCE:
            if type(value) is not str or value not in self.provinces:
                shown = _shown(value)
                return UNKNOWN_PROVINCE, f"{name} {shown} is not one of today's 34 provinces"
            return None
        if kind == _FIELD:
            if type(value) is not str or value not in self.fields:
                return UNKNOWN_RESEARCH_FIELD, (
                    f"{name} {_shown(value)} is not a QĐ 12/2008 research field"
                )
            return None
        # _MST: a valid enterprise code; not searched for phone numbers
        if type(value) is not str or not self._is_valid_mst(value):
            return INVALID_ORGANISATION_KEY, f"{name} {_shown(value)} is not a valid MST"
        return None

    def _personal_reason(self, data: dict[str, Any]) -> str:
        """Which field holds what kind of personal data, never the value (the slow path)."""
        for path, text in _strings_with_paths(data, "data", self._kind):
            if EMAIL_PATTERN.search(text):
                return f"{path} contains an e-mail address"
            number = NUMBER_PATTERN.search(text)
            if number is not None:
                what = "a citizen ID" if len(number[0]) == 12 and number[0].isdigit() else None
                return f"{path} contains {what or 'a phone number'}"
        return "the record contains personal data"


def _strings_with_paths(obj: Any, path: str, kind_of: Any) -> Iterable[tuple[str, str]]:
    if isinstance(obj, str):
        yield path, obj
    elif isinstance(obj, dict):
        for name, value in obj.items():
            if kind_of(name) == _TEXT:
                yield from _strings_with_paths(value, f"{path}.{name}", kind_of)
    elif isinstance(obj, list):
        for index, value in enumerate(obj):
            yield from _strings_with_paths(value, f"{path}[{index}]", kind_of)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
