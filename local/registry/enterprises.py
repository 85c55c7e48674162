"""The shared pool of (fictitious) Vietnamese enterprises every stand-in source draws from.

The pool is a pure function of a fixed global seed, not of a registry, profile or province, so
the registries and the technology exchanges (local/exchange/) all see the same enterprises:

    from local.registry.enterprises import enterprise, name_variant, province_range
    mst, name, province_code = enterprise(12_345)
    name_variant(name, 3)   # the same name as another source writes it

Enterprise ``i`` (0 <= i < POOL_SIZE) has a valid 10-digit MST (mã số doanh nghiệp): the
two-digit tax prefix of the old province it registered in, seven digits unique in the pool and
the mod-11 check digit. The pool is laid out in contiguous blocks per old province (sized by
a rough share of the country's enterprises), so the enterprises of a province are a ``range``.
The tax prefixes follow the numbering commonly seen on Vietnamese MSTs; they are illustrative,
as are the names.
"""

from __future__ import annotations

import bisect
import unicodedata
from functools import lru_cache
from typing import NamedTuple

from local.registry.reference import province
from local.registry.synth import index_hash, mst_check_digit, seed_key

POOL_SEED = 20250701
POOL_SIZE = 1_000_000
_POOL_KEY = seed_key(POOL_SEED, "enterprise-pool")

# Old province code (before 2025-07-01) -> (MST tax prefix, relative number of enterprises).
OLD_PROVINCES: dict[str, tuple[str, int]] = {
    "01": ("01", 200), "02": ("51", 2), "04": ("48", 2), "06": ("47", 1), "08": ("50", 2),
    "10": ("53", 3), "11": ("56", 2), "12": ("62", 1), "14": ("55", 3), "15": ("52", 3),
    "17": ("54", 3), "19": ("46", 6), "20": ("49", 3), "22": ("57", 12), "24": ("24", 8),
    "25": ("26", 6), "26": ("25", 8), "27": ("23", 15), "30": ("08", 10), "31": ("02", 25),
    "33": ("09", 8), "34": ("10", 6), "35": ("07", 5), "36": ("06", 7), "37": ("27", 6),
    "38": ("28", 15), "40": ("29", 14), "42": ("30", 6), "44": ("31", 5), "45": ("32", 4),
    "46": ("33", 7), "48": ("04", 25), "49": ("40", 7), "51": ("43", 6), "52": ("41", 8),
    "54": ("44", 4), "56": ("42", 10), "58": ("45", 3), "60": ("34", 6), "62": ("61", 2),
    "64": ("59", 6), "66": ("60", 8), "67": ("64", 2), "68": ("58", 7), "70": ("38", 5),
    "72": ("39", 6), "74": ("37", 60), "75": ("36", 25), "77": ("35", 15), "79": ("03", 250),
    "80": ("11", 12), "82": ("12", 6), "83": ("13", 5), "84": ("21", 3), "86": ("15", 4),
    "87": ("14", 5), "89": ("16", 6), "91": ("17", 8), "92": ("18", 9), "93": ("63", 3),
    "94": ("22", 4), "95": ("19", 3), "96": ("20", 4),
}  # fmt: skip


class Enterprise(NamedTuple):
    mst: str  # 10 digits, valid check digit
    name: str  # canonical legal name, NFC
    province_code: str  # today's province (2-digit code since 2025-07-01)


# --- Pool layout ----------------------------------------------------------------------------


def _layout() -> tuple[list[int], list[str], list[str], dict[str, range]]:
    """Block starts, old code and today's code of each block, and each code's index range."""
    old = sorted(OLD_PROVINCES, key=lambda code: (province("old", code).merged_into, code))
    total = sum(OLD_PROVINCES[code][1] for code in old)
    starts, old_codes, new_codes, ranges = [], [], [], {}
    position = 0
    for n, code in enumerate(old):
        size = (
            POOL_SIZE - position
            if n == len(old) - 1
            else (OLD_PROVINCES[code][1] * POOL_SIZE // total)
        )
        new_code = province("old", code).merged_into
        starts.append(position)
        old_codes.append(code)
        new_codes.append(new_code)
        ranges[f"old:{code}"] = range(position, position + size)
        existing = ranges.get(new_code)
        ranges[new_code] = range(existing.start if existing else position, position + size)
        position += size
    return starts, old_codes, new_codes, ranges


_STARTS, _OLD_CODES, _NEW_CODES, _RANGES = _layout()


def province_range(code: str, *, old: bool = False) -> range:
    """Pool indices of the enterprises of today's province ``code`` (or of an old province)."""
    try:
        return _RANGES[f"old:{code}" if old else code]
    except KeyError:
        raise KeyError(f"no {'old' if old else 'current'} province {code!r} in the pool") from None


# The first enterprises of each old province's block are its prominent ones: the large firms
# that file patents, run projects and trade in several provinces. Sources favour them, which is
# what makes the same enterprise turn up in several registries and exchanges.
PROMINENT_PER_PROVINCE = 200


def prominent(h: int, code: str | None = None, *, old: bool = False) -> int:
    """Pool index of a prominent enterprise drawn with hash bits ``h``: of province ``code``
    (today's, or an old one with ``old=True``), or of any province when ``code`` is None."""
    if code is None:
        start = _STARTS[h % len(_STARTS)]
        return start + (h >> 8) % PROMINENT_PER_PROVINCE
    block = province_range(code, old=old)
    if old:
        return block.start + h % min(PROMINENT_PER_PROVINCE, len(block))
    # Today's province spans the blocks of the old provinces merged into it: pick one of them.
    starts = [s for s, new in zip(_STARTS, _NEW_CODES, strict=True) if new == code]
    start = starts[h % len(starts)]
    return start + (h >> 8) % PROMINENT_PER_PROVINCE


def registered_in(i: int) -> str:
    """The old province (code before 2025-07-01) enterprise ``i`` registered in."""
    return _OLD_CODES[bisect.bisect_right(_STARTS, i) - 1]


# --- Names ----------------------------------------------------------------------------------

_LEGAL_FORMS = (
    ("Công ty TNHH", 44), ("Công ty Cổ phần", 30), ("Công ty TNHH MTV", 12),
    ("Doanh nghiệp tư nhân", 6), ("Hợp tác xã", 5), ("Công ty Hợp danh", 1),
)  # fmt: skip
# Line of business -> VSIC 2018 class (4 digits) it registers under.
SECTORS = (
    ("Công nghệ", "6209"), ("Cơ khí", "2592"), ("Xây dựng", "4290"),
    ("Thương mại và Dịch vụ", "4669"), ("Thực phẩm", "1079"), ("Nông nghiệp công nghệ cao", "0118"),
    ("Dược phẩm", "2100"), ("Thiết bị y tế", "3250"), ("Phần mềm", "6201"),
    ("Giải pháp số", "6202"), ("Môi trường", "3821"), ("Năng lượng xanh", "3511"),
    ("Vật liệu mới", "2399"), ("Điện tử", "2610"), ("Tự động hóa", "2829"),
    ("Chế biến nông sản", "1030"), ("Thủy sản", "0322"), ("Dệt may", "1410"),
    ("Đầu tư và Phát triển", "7020"), ("Sản xuất và Thương mại", "2599"), ("Kỹ thuật", "7110"),
    ("Hóa chất", "2011"), ("Xuất nhập khẩu", "4620"), ("Logistics", "5229"),
    ("Du lịch", "7911"), ("Giống cây trồng", "0130"), ("Chăn nuôi", "0146"),
    ("Bao bì", "1702"), ("Gốm sứ", "2393"), ("Đồ gỗ", "3100"), ("Dược liệu", "0128"),
    ("Thiết bị điện", "2790"), ("Viễn thông", "6190"), ("Tư vấn và Chuyển giao công nghệ", "7490"),
    ("Sinh học", "7210"), ("Cơ điện lạnh", "4322"), ("Vật liệu xây dựng", "2395"),
    ("Vận tải", "4933"), ("Khoáng sản", "0810"), ("Nhựa", "2220"),
)  # fmt: skip
_SYLLABLES = (
    "An", "Bình", "Phát", "Thịnh", "Hưng", "Thành", "Đạt", "Minh", "Long", "Hoàng", "Việt",
    "Nam", "Phúc", "Lộc", "Tài", "Tiến", "Hòa", "Hải", "Sơn", "Trường", "Quang", "Huy", "Khang",
    "Gia", "Kim", "Ngọc", "Bảo", "Tân", "Đức", "Tâm", "Thiên", "Trí", "Vạn", "Hồng", "Mai",
    "Hạnh", "Xuân", "Đông", "Trung", "Hà", "Linh", "Anh", "Dũng", "Cường", "Vinh", "Thắng",
    "Lợi", "Toàn", "Nhật", "Hiếu",
)  # fmt: skip
_FORM_TABLE = [form for form, weight in _LEGAL_FORMS for _ in range(weight)]


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


@lru_cache(maxsize=1 << 17)
def enterprise(i: int) -> Enterprise:
    """Enterprise ``i`` of the pool (0 <= i < POOL_SIZE)."""
    if not 0 <= i < POOL_SIZE:
        raise IndexError(f"enterprise index {i} outside 0..{POOL_SIZE - 1}")
    block = bisect.bisect_right(_STARTS, i) - 1
    old_code = _OLD_CODES[block]
    return Enterprise(
        mst=_mst(OLD_PROVINCES[old_code][0], i - _STARTS[block]),
        name=_name(i),
        province_code=_NEW_CODES[block],
    )


def _mst(prefix: str, local: int) -> str:
    # Five enterprises share a serial; each gets a pair of candidate ninth digits, and at most
    # one digit of 0..9 gives the forbidden check value 10, so one of the pair is always valid.
    serial, slot = divmod(local, 5)
    middle = f"{(serial * 7919 + 1013) % 999_999 + 1:06d}"  # injective, never 000000
    for digit in (2 * slot, 2 * slot + 1):
        body = f"{prefix}{middle}{digit}"
        check = mst_check_digit(body)
        if check < 10:
            return body + str(check)
    raise AssertionError("unreachable: a pair of ninth digits always has a valid one")


def _name(i: int) -> str:
    h = index_hash(_POOL_KEY, i)
    form = _FORM_TABLE[h % len(_FORM_TABLE)]
    sector = SECTORS[(h >> 8) % len(SECTORS)][0]
    first = _SYLLABLES[(h >> 16) % len(_SYLLABLES)]
    second = _SYLLABLES[(h >> 24) % len(_SYLLABLES)]
    if second == first:
        second = _SYLLABLES[((h >> 24) + 1) % len(_SYLLABLES)]
    return _nfc(f"{form} {sector} {first} {second}")


def vsic_class(i: int) -> str:
    """The VSIC 2018 class (4 digits) enterprise ``i`` registered its main business under."""
    h = index_hash(_POOL_KEY, i)
    return SECTORS[(h >> 8) % len(SECTORS)][1]


# --- How sources write names ----------------------------------------------------------------

_ABBREVIATED = {
    "Công ty TNHH MTV": "Cty TNHH MTV",
    "Công ty TNHH": "Cty TNHH",
    "Công ty Cổ phần": "Công ty CP",
    "Doanh nghiệp tư nhân": "DNTN",
    "Hợp tác xã": "HTX",
    "Công ty Hợp danh": "Cty Hợp danh",
}
_SPELLED_OUT = {
    "Công ty TNHH MTV": "Công ty Trách nhiệm hữu hạn Một thành viên",
    "Công ty TNHH": "Công ty Trách nhiệm hữu hạn",
    "Công ty Cổ phần": "CTCP",
    "Doanh nghiệp tư nhân": "Doanh nghiệp Tư nhân",
    "Hợp tác xã": "HTX",
    "Công ty Hợp danh": "CÔNG TY HỢP DANH",
}
NAME_VARIANTS = 8  # variants 0..7; k is taken modulo this


def _swap_form(name: str, table: dict[str, str]) -> str:
    for form, written in table.items():  # longest forms first (dict order above)
        if name.startswith(form + " "):
            return written + name[len(form) :]
    return name


@lru_cache(maxsize=1 << 17)
def name_variant(name: str, k: int) -> str:
    """The enterprise name as source habit ``k`` writes it (0: as registered).

    1 "Cty TNHH …" / "Công ty CP …"; 2 all capitals ("CÔNG TY CỔ PHẦN …"); 3 legal form spelled
    out / "CTCP …"; 4 doubled and trailing spaces; 5 NFD; 6 legal form in lower case;
    7 abbreviated and in capitals.
    """
    k %= NAME_VARIANTS
    if k == 0:
        return name
    if k == 1:
        return _swap_form(name, _ABBREVIATED)
    if k == 2:
        return name.upper()
    if k == 3:
        return _swap_form(name, _SPELLED_OUT)
    if k == 4:
        words = name.split(" ")
        return "  ".join(words[:2]) + " " + " ".join(words[2:]) + " "
    if k == 5:
        return unicodedata.normalize("NFD", name)
    if k == 6:
        for form, _ in _LEGAL_FORMS:
            if name.startswith(form + " "):
                return form.lower() + name[len(form) :]
        return name
    return _swap_form(name, _ABBREVIATED).upper()


def branch_code(mst: str, branch: int) -> str:
    """The code of a dependent unit (chi nhánh): ``NNNNNNNNNN-NNN``, branch 1..999."""
    return f"{mst}-{branch:03d}"
