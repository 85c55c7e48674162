"""Machinery shared by every entity generator: hashing, calendar, timelines, dirt.

Records are pure functions of (settings, index): nothing is stored per record. Each generator
hashes its index once with :func:`mix` and picks pre-drawn profiles and values from the bits.

Dirt ("kinds") is spread with :class:`KindSchedule`: record ``i`` carries at most one kind, the
kinds have exact, known shares, and their counts over ``0..n-1`` are computed without a scan,
so ``/_standin/stats`` can report them for millions of records.
"""

from __future__ import annotations

import codecs
import datetime as dt
import hashlib
import math
import unicodedata
from collections.abc import Callable
from functools import lru_cache, reduce

MASK64 = (1 << 64) - 1
GOLDEN64 = 0x9E3779B97F4A7C15
PPM = 1_000_000


def mix(x: int) -> int:
    """splitmix64 finaliser: a fast, well-spread 64-bit hash of a 64-bit integer."""
    x = (x + GOLDEN64) & MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


def seed_key(*parts: int | str) -> int:
    """A 64-bit key from a seed and labels (registry id, entity name), stable across runs."""
    text = "\x1f".join(str(part) for part in parts)
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def index_hash(key: int, i: int) -> int:
    return mix(key ^ (i * GOLDEN64 & MASK64))


# --- Calendar -------------------------------------------------------------------------------
# Dates are day numbers counted from DAY_ZERO; their strings are precomputed.

DAY_ZERO = dt.date(2018, 1, 1)
LAST_DAY = (dt.date(2026, 12, 31) - DAY_ZERO).days
# Room before DAY_ZERO is not needed (dates are clamped); after it, the change clock runs on.
DAY_STRINGS = [(DAY_ZERO + dt.timedelta(days=n)).isoformat() for n in range(LAST_DAY + 2000)]
TIME_STRINGS = [f"T{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}Z" for s in range(86400)]
EPOCH_DAY_ZERO = int(dt.datetime(2018, 1, 1, tzinfo=dt.UTC).timestamp())

# Base records' updated_at is spread over this interval, ascending with the index.
UPDATED_AT_FIRST = int(dt.datetime(2019, 1, 1, tzinfo=dt.UTC).timestamp())
UPDATED_AT_LAST = int(dt.datetime(2026, 6, 30, 23, 59, 59, tzinfo=dt.UTC).timestamp())
# The 2025 reorganisation (QĐ 19/2025/QĐ-TTg): records before it keep the old unit codes.
MERGER_EPOCH = int(dt.datetime(2025, 7, 1, tzinfo=dt.UTC).timestamp())
MERGER_DAY = (dt.date(2025, 7, 1) - DAY_ZERO).days
VSIC_2025_DAY = (dt.date(2025, 11, 15) - DAY_ZERO).days  # QĐ 36/2025 in force


def format_timestamp(epoch_seconds: int) -> str:
    """RFC 3339 UTC with whole seconds and a Z, e.g. ``2024-03-05T08:15:00Z``."""
    days, seconds = divmod(epoch_seconds - EPOCH_DAY_ZERO, 86400)
    if 0 <= days < len(DAY_STRINGS):
        return DAY_STRINGS[days] + TIME_STRINGS[seconds]
    return dt.datetime.fromtimestamp(epoch_seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def day_of(epoch_seconds: int) -> int:
    return (epoch_seconds - EPOCH_DAY_ZERO) // 86400


def day_string(day: int) -> str:
    """The ISO date of a day number (days before 2018 are rare and computed)."""
    if 0 <= day < len(DAY_STRINGS):
        return DAY_STRINGS[day]
    return (DAY_ZERO + dt.timedelta(days=day)).isoformat()


class Timeline:
    """``updated_at`` of base record ``i``: spread evenly over 2019-01-01 .. 2026-06-30."""

    __slots__ = ("_denominator", "_span", "records")

    def __init__(self, records: int) -> None:
        self.records = records
        self._span = UPDATED_AT_LAST - UPDATED_AT_FIRST
        self._denominator = max(records, 1)

    def updated_at(self, i: int) -> int:
        return UPDATED_AT_FIRST + i * self._span // self._denominator

    def first_index_updated_since(self, epoch_seconds: int) -> int:
        """The smallest index whose ``updated_at`` is >= ``epoch_seconds`` (may be ``records``)."""
        if epoch_seconds <= UPDATED_AT_FIRST:
            return 0
        # Invert the floor division, then settle the rounding with a step or two.
        guess = (epoch_seconds - UPDATED_AT_FIRST) * self._denominator // self._span
        guess = min(max(guess, 0), self.records)
        while guess > 0 and self.updated_at(guess - 1) >= epoch_seconds:
            guess -= 1
        while guess < self.records and self.updated_at(guess) < epoch_seconds:
            guess += 1
        return guess


# --- Dirt schedules -------------------------------------------------------------------------


def share_ppm(share: float, what: str = "share") -> int:
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"{what} must be within 0..1, got {share}")
    return round(share * PPM)


class KindSchedule:
    """Which kind of dirt (or defect) record ``i`` carries, at exact shares.

    Record ``i`` is dirty when ``floor((i + 1) * total) > floor(i * total)`` (total in parts per
    million), so dirty records are spread evenly; the n-th dirty record takes the n-th entry of
    a cycle in which each kind appears in proportion to its share, interleaved smoothly (no
    runs of one kind). Kinds with equal shares cycle in the order given.
    """

    def __init__(self, shares: dict[str, float]) -> None:
        weights = {kind: share_ppm(share, kind) for kind, share in shares.items()}
        weights = {kind: ppm for kind, ppm in weights.items() if ppm > 0}
        self.total_ppm = sum(weights.values())
        if self.total_ppm > PPM:
            raise ValueError(f"dirt shares add up to more than 1: {shares}")
        self.kinds = tuple(weights)
        divisor = reduce(math.gcd, weights.values(), 0) or 1
        units = {kind: ppm // divisor for kind, ppm in weights.items()}
        if sum(units.values()) > 100_000:
            raise ValueError(f"dirt shares are too fine-grained: {shares}")
        self.cycle = _smooth_cycle(units)
        # prefix[k][j]: how many times kind k occurs in cycle[:j]
        self._prefix = {kind: [0] for kind in self.kinds}
        for entry in self.cycle:
            for kind, counts in self._prefix.items():
                counts.append(counts[-1] + (kind == entry))

    def kind(self, i: int) -> str | None:
        ppm = self.total_ppm
        ordinal = (i + 1) * ppm // PPM
        if ordinal == i * ppm // PPM:
            return None
        return self.cycle[(ordinal - 1) % len(self.cycle)]

    def counts(self, records: int) -> dict[str, int]:
        """How many of records ``0..records-1`` carry each kind (exact, without a scan)."""
        dirty = records * self.total_ppm // PPM
        if not self.cycle:
            return {}
        rounds, rest = divmod(dirty, len(self.cycle))
        return {kind: rounds * prefix[-1] + prefix[rest] for kind, prefix in self._prefix.items()}

    def dirty_indices(self, records: int) -> list[int]:
        """Indices of the dirty records among ``0..records-1``, ascending."""
        ppm = self.total_ppm
        if ppm == 0:
            return []
        # The n-th dirty index is the smallest i with (i + 1) * ppm // PPM >= n.
        return [(-(-n * PPM // ppm)) - 1 for n in range(1, records * ppm // PPM + 1)]


def _smooth_cycle(units: dict[str, int]) -> list[str]:
    """Smooth weighted round robin: each kind as often as its units, spread out."""
    total = sum(units.values())
    current = dict.fromkeys(units, 0)
    cycle = []
    for _ in range(total):
        for kind, weight in units.items():
            current[kind] += weight
        best = max(current, key=current.__getitem__)  # first of equals: the given order
        current[best] -= total
        cycle.append(best)
    return cycle


# --- Dirt applied to values -----------------------------------------------------------------

TEXT_DIRT = ("nfd_text", "tcvn3_text", "vni_text")


def _c1_passthrough(error: UnicodeDecodeError) -> tuple[str, int]:
    # The five bytes cp1252 leaves undefined come through as the C1 controls of the same value,
    # as Windows' own conversion (and a latin-1 reader) hands them over.
    return chr(error.object[error.start]), error.start + 1


codecs.register_error("standin-c1", _c1_passthrough)


def _legacy_encoders() -> dict[str, Callable[[str], bytes]]:
    try:  # provided by connectors/vietnamese.py (another module's job)
        from connectors.vietnamese import encode_tcvn3, encode_vni
    except ImportError:
        return {}

    def tcvn3(text: str) -> bytes:
        # TCVN3 has no toned capitals; ABC typists used the small letter's code.
        return encode_tcvn3(text, toned_capitals="lower")

    return {"tcvn3_text": tcvn3, "vni_text": encode_vni}


LEGACY_ENCODERS = _legacy_encoders()


def available_text_dirt() -> tuple[str, ...]:
    """Text dirt kinds this installation can produce (mojibake needs connectors.vietnamese)."""
    return tuple(kind for kind in TEXT_DIRT if kind == "nfd_text" or kind in LEGACY_ENCODERS)


@lru_cache(maxsize=1 << 14)
def dirty_text(text: str, kind: str) -> str:
    """``text`` as a source with that defect sends it: NFD, or TCVN3 / VNI bytes read as cp1252."""
    if kind == "nfd_text":
        return unicodedata.normalize("NFD", text)
    encode = LEGACY_ENCODERS[kind]
    try:
        raw = encode(text)
    except (ValueError, KeyError, UnicodeError):
        # Legacy fonts lack some capitals with tone marks; typists used the small letter.
        raw = b"".join(_encode_char(encode, char) for char in text)
    return raw.decode("cp1252", errors="standin-c1")


def _encode_char(encode: Callable[[str], bytes], char: str) -> bytes:
    try:
        return encode(char)
    except (ValueError, KeyError, UnicodeError):
        return encode(char.lower())


def apply_text_dirt(record: dict, fields: tuple[str, ...], kind: str) -> None:
    """Spoil the first of ``fields`` that the defect visibly changes (an address always is)."""
    for name in fields:
        value = record.get(name)
        if isinstance(value, str):
            spoiled = dirty_text(value, kind)
            if spoiled != value:
                record[name] = spoiled
                return
    raise AssertionError(f"no text field of {fields} can carry {kind}")  # generator bug


def mst_check_digit(body: str) -> int:
    """Mod-11 check digit of the first nine digits of an MST; 10 means "no valid MST"."""
    d = body.encode()  # unrolled: this runs for every enterprise the pool hands out
    total = (31 * d[0] + 29 * d[1] + 23 * d[2] + 19 * d[3] + 17 * d[4] + 13 * d[5] + 7 * d[6]
             + 5 * d[7] + 3 * d[8] - 147 * 48)  # fmt: skip
    return 10 - total % 11


def wrong_check_digit(code: str, h: int) -> str:
    """The same MST (or branch code) with a check digit that fails validation."""
    right = mst_check_digit(code[:9]) % 10  # 10 (never issued) also fails with any digit
    wrong = (right + 1 + h % 9) % 10
    return code[:9] + str(wrong) + code[10:]


def out_of_range_date(date: str, h: int) -> str:
    """A date typed with the wrong century: 1900 or 2099, same day of the year."""
    month_day = date[4:] if date[4:] != "-02-29" else "-02-28"
    return ("1900" if h & 1 else "2099") + month_day


def in_vnd(million_vnd: float) -> int:
    """A million-VND amount written in VND, as a source with the wrong unit sends it."""
    return round(million_vnd * 1_000_000)
