"""Synthetic listings and transactions of the technology exchanges, and the change overlay.

Everything is a pure function of the settings (exchange, sizes, seed, special share) and the
record's position: nothing is stored per record. As in the stand-in registry, the seed draws
pools of pre-built *profiles* at start-up (who posts what, at which price, in the exchange's
house style) and position ``i`` picks one by a splitmix64 hash, so serving a record is a hash,
two lookups and a dict.

Ordering. Base position ``i`` of an entity has ``ngay_cap_nhat`` = ``FIRST + i * span // n``,
strictly increasing with ``i`` (one second at least between neighbours), so the contract's order
(modification time, id) is simply the position order. A record changed through
``/_standin/changes`` leaves its base position and is appended to the change log with a time
from the exchange's logical clock, which starts at the end of the base data and ticks one second
per change; the full order is: unchanged base positions, then the change log.

Special positions. A deterministic, evenly spread share of positions is *special*: the n-th
special position has kind ``cycle[n % len(cycle)]`` (see :data:`LISTING_KINDS` and
:data:`TRANSACTION_KINDS`), so the number of each kind is known in closed form. Kinds are the
irregularities real exchanges send: dirt (a wrong MST check digit, TCVN3/VNI mojibake, NFD
text, impossible amounts, a transaction referring to a listing that does not exist),
withdrawn listings / cancelled transactions, and *re-sent revisions*: the position holds an
earlier record again, with ``phien_ban`` + 1 and a later ``ngay_cap_nhat``.

Posters and parties come from the stand-ins' shared enterprise pool
(``local.registry.enterprises``), so the same enterprise, with the same MST, appears on several
exchanges and in the registries; each exchange writes names its own way (as registered, in
capitals, abbreviated "Cty TNHH …") and now and then another way.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import hashlib
import math
import random
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson

from connectors.vietnamese import encode_tcvn3, encode_vni
from local.registry.data import load_level3_field_codes
from local.registry.enterprises import NAME_VARIANTS, name_variant, province_range
from local.registry.enterprises import enterprise as pool_enterprise

_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_PPM = 1_000_000
# Profiles per pool: 2**bits with bits = bit length of the number of records, within 10..14
# (1,024 to 16,384), so a small stand-in starts at once and a large one varies enough.
MIN_POOL_BITS, MAX_POOL_BITS = 10, 14
MAX_SPECIAL_SHARE = 0.5  # above it, special positions would touch and re-sends find no source
DEFAULT_SPECIAL_SHARE = 0.0875
RESEND_WINDOW = 40  # a re-sent revision repeats a record from at most this many positions back


def mix64(x: int) -> int:
    """splitmix64 finaliser: a fast, well-spread 64-bit hash of a 64-bit integer."""
    x = (x + _GOLDEN) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


# --- Time: Vietnam local time (+07:00), whole seconds ------------------------------------------

VN_TZ = dt.timezone(dt.timedelta(hours=7), "ICT")
_DAY_ZERO = dt.date(2018, 1, 1)
_EPOCH_DAY_ZERO = int(dt.datetime(2018, 1, 1, tzinfo=VN_TZ).timestamp())
# Base data is modified between these instants; the change clock runs on from the last one.
FIRST = int(dt.datetime(2019, 1, 1, tzinfo=VN_TZ).timestamp())
LAST = int(dt.datetime(2026, 6, 30, 23, 59, 59, tzinfo=VN_TZ).timestamp())
_DAYS = [(_DAY_ZERO + dt.timedelta(days=n)).strftime("%d/%m/%Y") for n in range(3650 + 2000)]
_TIMES = [f" {s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(86400)]


def format_local(epoch_seconds: int) -> str:
    """Epoch seconds as the exchanges write them: ``dd/mm/yyyy HH:MM:SS`` in +07:00."""
    days, seconds = divmod(epoch_seconds - _EPOCH_DAY_ZERO, 86400)
    if 0 <= days < len(_DAYS):
        return _DAYS[days] + _TIMES[seconds]
    return dt.datetime.fromtimestamp(epoch_seconds, VN_TZ).strftime("%d/%m/%Y %H:%M:%S")


def format_iso(epoch_seconds: int) -> str:
    """Epoch seconds as ISO 8601 in +07:00, e.g. ``2026-06-30T23:59:59+07:00``."""
    return dt.datetime.fromtimestamp(epoch_seconds, VN_TZ).isoformat()


# --- Legacy encodings (mojibake) ---------------------------------------------------------------


def _as_legacy_text(raw: bytes) -> str:
    """What legacy bytes look like once a system decoded them as Windows-1252 (or Latin-1)."""
    try:
        return raw.decode("cp1252")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


@functools.cache
def tcvn3_mojibake(text: str) -> str:
    """``text`` as a TCVN3 (ABC) source sends it. Titles start with an ASCII capital, since
    TCVN3 has no toned capitals."""
    return _as_legacy_text(encode_tcvn3(text))


@functools.cache
def vni_mojibake(text: str) -> str:
    """``text`` as a VNI-Windows source sends it."""
    return _as_legacy_text(encode_vni(text))


# --- Exchanges --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExchangeProfile:
    exchange_id: str
    name: str
    province_code: str | None  # None: a national exchange, with posters from everywhere
    prefix: str  # of record ids, e.g. "NB" → "NB-CB-000123"
    name_habit: int  # how it writes enterprise names: k of name_variant (0 as registered)
    amount_styles: tuple[tuple[str, int], ...]  # (style, weight), see format_amount
    negotiable: str  # the word it writes instead of a price
    certificate_issuer: str  # suffix of technology-transfer certificate numbers


EXCHANGES: dict[str, ExchangeProfile] = {
    profile.exchange_id: profile
    for profile in (
        ExchangeProfile(
            "ninh_binh_exchange", "Sàn giao dịch công nghệ và thiết bị tỉnh Ninh Bình", "37",
            "NB", 0, (("vnd_d", 60), ("ty_dong", 20), ("trieu_dong", 20)),
            "Thỏa thuận", "SKHCN-NB",
        ),
        ExchangeProfile(
            "thanh_hoa_exchange", "Sàn giao dịch công nghệ tỉnh Thanh Hóa", "38",
            "TH", 2, (("ty", 40), ("trieu", 40), ("vnd_vnd", 20)),
            "Thoả thuận", "SKHCN-TH",
        ),
        ExchangeProfile(
            "national_exchange", "Sàn giao dịch công nghệ quốc gia (Techmart)", None,
            "QG", 1,
            (("vnd_vnd", 35), ("trd", 20), ("plain", 10), ("ty_dong", 20), ("vnd_nospace", 15)),
            "Liên hệ", "BKHCN",
        ),
    )
}  # fmt: skip

# --- Amounts ----------------------------------------------------------------------------------


def _dots(value: int) -> str:
    """An integer with Vietnamese thousands separators: 1250000000 → 1.250.000.000."""
    return f"{value:,}".replace(",", ".")


def _decimal_comma(value: int, unit: int, decimals: int) -> str | None:
    """value / unit with a decimal comma and at most ``decimals`` decimals, or None."""
    scaled, rest = divmod(value * 10**decimals, unit)
    if rest:
        return None
    whole, fraction = divmod(abs(scaled), 10**decimals)
    text = _dots(whole)
    fraction_text = f"{fraction:0{decimals}d}".rstrip("0") if decimals else ""
    return ("-" if value < 0 else "") + text + ("," + fraction_text if fraction_text else "")


def format_amount(value: int, style: str) -> str:
    """A VND amount the way an exchange writes it, e.g. "1.250.000.000 đ" or "1,25 tỷ"."""
    if style in ("ty", "ty_dong") and abs(value) >= 1_000_000_000:
        text = _decimal_comma(value, 1_000_000_000, 2)
        if text is not None:
            return text + (" tỷ" if style == "ty" else " tỷ đồng")
    if style in ("ty", "ty_dong", "trieu", "trieu_dong", "trd"):
        text = _decimal_comma(value, 1_000_000, 1)
        if text is not None:
            suffix = {"trd": " trđ", "trieu_dong": " triệu đồng", "ty_dong": " triệu đồng"}
            return text + suffix.get(style, " triệu")
    if style == "plain":
        return str(value)
    sign, digits = ("-" if value < 0 else ""), _dots(abs(value))
    suffix = {"vnd_vnd": " VNĐ", "vnd_nospace": "đ"}.get(style, " đ")
    return sign + digits + suffix


def _draw_amount(rng: random.Random, low: float, high: float) -> int:
    """A round VND amount, log-uniform between low and high."""
    value = math.exp(rng.uniform(math.log(low), math.log(high)))
    step = 10_000_000 if value >= 1e9 else 5_000_000 if value >= 1e8 else 1_000_000
    return max(step, round(value / step) * step)


ABSURD_AMOUNT = 9_999_999 * 1_000_000_000  # ten million billion VND: no deal is that big

# --- Enterprises: the stand-ins' shared pool ---------------------------------------------------
# Posters and parties are enterprises of local/registry/enterprises.py, the pool the stand-in
# registries draw from too, so the warehouse can join exchanges and registries on the MST.
# Exchanges list few of a province's enterprises: each province has an "active" subset (the
# same for every exchange of a seed), so the same firms show up on several exchanges.

# Today's province code → weight of its enterprises among posters of the national exchange.
_PROVINCE_WEIGHTS = {"37": 25, "38": 25, "01": 15, "79": 10, "40": 8, "48": 5, "31": 5,
                     "92": 3, "19": 2, "22": 2}  # fmt: skip
ACTIVE_PER_WEIGHT = 16  # active enterprises of a province per unit of weight (37: 400)
# Public bodies post offers too; they have no enterprise code and are not in the pool.
_INSTITUTES = (
    ("Trường Đại học Hoa Lư", "37"),
    ("Trung tâm Ứng dụng tiến bộ khoa học và công nghệ tỉnh Ninh Bình", "37"),
    ("Trường Đại học Hồng Đức", "38"),
    ("Trung tâm Ứng dụng tiến bộ khoa học và công nghệ tỉnh Thanh Hóa", "38"),
    ("Viện Cơ điện nông nghiệp và Công nghệ sau thu hoạch", "01"),
    ("Viện Công nghệ sinh học", "01"),
    ("Đại học Bách khoa Hà Nội", "01"),
    ("Viện Khoa học Nông nghiệp Việt Nam", "01"),
    ("Trường Đại học Vinh", "40"),
    ("Đại học Bách khoa - Đại học Đà Nẵng", "48"),
    ("Trường Đại học Cần Thơ", "92"),
    ("Viện Nghiên cứu Nuôi trồng thủy sản II", "79"),
)


class Enterprise(NamedTuple):
    name: str  # as registered, NFC
    mst: str | None  # 10-digit enterprise code with a valid check digit; None for institutes
    province_code: str  # today's


@functools.cache
def draw_enterprises(seed: int) -> tuple[Enterprise, ...]:
    """The enterprises active on the exchanges of a stand-in (the same for all of them)."""
    enterprises: Sequence[Enterprise] = []
    for code, weight in _PROVINCE_WEIGHTS.items():
        indices = province_range(code)
        stride = _coprime_stride(len(indices), seed)
        for k in range(weight * ACTIVE_PER_WEIGHT):
            mst_code, name, province_code = pool_enterprise(
                indices.start + (k * stride + seed) % len(indices)
            )
            enterprises.append(Enterprise(name, mst_code, province_code))
    enterprises += [Enterprise(_nfc(name), None, province) for name, province in _INSTITUTES]
    return tuple(enterprises)


def spellings(name: str) -> tuple[str, ...]:
    """Every way a source writes the name (local.registry.enterprises.name_variant)."""
    return tuple(name_variant(name, k) for k in range(NAME_VARIANTS))


def written_name(spelled: tuple[str, ...], habit: int, h: int) -> str:
    """The exchange's habit for 85 records in 100; any other spelling for the rest."""
    return spelled[habit if (h >> 40) % 100 >= 15 else (h >> 54) % NAME_VARIANTS]


def wrong_check_digit(code: str) -> str:
    """The MST with its check digit changed: always invalid, since the digit is unique."""
    return code[:9] + str((int(code[9]) + 1) % 10) + code[10:]


# --- What is offered and sought --------------------------------------------------------------


class Subject(NamedTuple):
    text: str  # NFC; starts with an ASCII capital (TCVN3 has no upper-case toned letters)
    doi_tuong: str  # cong_nghe | thiet_bi | giai_phap
    field_prefixes: tuple[str, ...]  # level-2 QĐ 12/2008 codes
    ip_type: int | None  # type digit of its IP application, None if not patentable


_SUBJECTS = tuple(Subject(_nfc(t), d, f, ip) for t, d, f, ip in (
    ("Công nghệ sản xuất phân bón hữu cơ vi sinh từ phụ phẩm nông nghiệp", "cong_nghe",
     ("401", "208"), 1),
    ("Dây chuyền chế biến cói mỹ nghệ xuất khẩu", "thiet_bi", ("211", "209"), 2),
    ("Hệ thống tưới nhỏ giọt tự động điều khiển qua điện thoại", "thiet_bi", ("202", "401"), 2),
    ("Máy sấy nông sản sử dụng năng lượng mặt trời", "thiet_bi", ("203", "211"), 2),
    ("Quy trình nhân giống lúa chất lượng cao bằng chỉ thị phân tử", "cong_nghe",
     ("401", "406"), 1),
    ("Thiết bị xử lý nước thải chăn nuôi quy mô hộ gia đình", "thiet_bi", ("207",), 2),
    ("Phần mềm truy xuất nguồn gốc nông sản bằng mã QR", "giai_phap", ("102",), None),
    ("Công nghệ nuôi tôm thẻ chân trắng tuần hoàn nước (RAS)", "cong_nghe", ("405",), 1),
    ("Chế phẩm sinh học xử lý rơm rạ thành phân bón", "cong_nghe", ("208", "401"), 1),
    ("Máy gặt đập liên hợp cỡ nhỏ cho ruộng bậc thang", "thiet_bi", ("203",), 2),
    ("Công nghệ sản xuất gạch không nung từ tro xỉ nhiệt điện", "cong_nghe", ("201", "205"), 1),
    ("Dây chuyền sản xuất viên nén mùn cưa làm chất đốt", "thiet_bi", ("202", "207"), 2),
    ("Hệ thống giám sát chất lượng nước nuôi trồng thủy sản bằng cảm biến IoT", "giai_phap",
     ("202", "405"), 2),
    ("Công nghệ chiết xuất tinh dầu sả bằng chưng cất hơi nước", "cong_nghe", ("104", "211"), 1),
    ("Quy trình sản xuất nấm dược liệu đông trùng hạ thảo", "cong_nghe", ("304", "406"), 1),
    ("Thiết bị lọc bụi tĩnh điện cho lò nung vôi", "thiet_bi", ("207",), 2),
    ("Giải pháp điện mặt trời áp mái cho nhà xưởng", "giai_phap", ("202",), 2),
    ("Công nghệ bảo quản trái cây sau thu hoạch bằng màng phủ sinh học", "cong_nghe",
     ("211", "401"), 1),
    ("Máy cấy lúa 6 hàng điều khiển bằng tay", "thiet_bi", ("203",), 3),
    ("Hệ thống quản lý bệnh viện trên nền tảng điện toán đám mây", "giai_phap",
     ("102", "302"), None),
    ("Công nghệ sản xuất vắc-xin phòng bệnh tai xanh cho lợn", "cong_nghe", ("403",), 1),
    ("Lò đốt rác thải sinh hoạt không khói quy mô xã", "thiet_bi", ("207",), 2),
    ("Quy trình chế biến thịt dê hun khói", "cong_nghe", ("211", "402"), 1),
    ("Thiết bị đo độ mặn tự động cho vùng ven biển", "thiet_bi", ("202", "105"), 2),
    ("Công nghệ in 3D chi tiết cơ khí bằng kim loại", "cong_nghe", ("203",), 1),
    ("Dây chuyền đóng gói sản phẩm OCOP tự động", "thiet_bi", ("203", "211"), 3),
    ("Phần mềm số hóa hồ sơ di sản văn hóa phi vật thể", "giai_phap", ("102", "604"), None),
    ("Robot hàn tự động cho xưởng cơ khí vừa và nhỏ", "thiet_bi", ("203",), 2),
    ("Công nghệ xử lý nước cấp sinh hoạt bằng màng lọc nano", "cong_nghe", ("207", "210"), 1),
    ("Bộ kit chẩn đoán nhanh bệnh đạo ôn trên lúa", "cong_nghe", ("401", "106"), 1),
    ("Hệ thống chiếu sáng đèn LED tiết kiệm năng lượng cho đường nông thôn", "thiet_bi",
     ("202",), 3),
    ("Mô hình nhà màng trồng dưa lưới công nghệ cao", "giai_phap", ("401",), None),
))  # fmt: skip
_OFFER_PREFIXES = ("", "Chuyển giao ", "Cung cấp ")
_DEMAND_PREFIXES = ("Cần tìm ", "Tìm đối tác chuyển giao ", "Có nhu cầu mua ")
_FIELD_CODES = load_level3_field_codes()


def _lower_first(text: str) -> str:
    word = text.split(" ", 1)[0]
    return text if word.isupper() else text[0].lower() + text[1:]


@functools.cache
def _field_codes_under(prefixes: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(code for code in _FIELD_CODES if code.startswith(prefixes)) or tuple(_FIELD_CODES)


def listing_title(subject: Subject, loai_tin: str, variant: int) -> str:
    prefixes = _OFFER_PREFIXES if loai_tin == "chao_ban" else _DEMAND_PREFIXES
    prefix = prefixes[variant % len(prefixes)]
    return _nfc(prefix + _lower_first(subject.text)) if prefix else subject.text


# --- Special positions ------------------------------------------------------------------------

# kind → weight within the cycle; the cycle's share of positions is the special share.
LISTING_KINDS = {
    "withdrawn": 12, "resent_revision": 8, "wrong_mst_check_digit": 4, "nfd_text": 4,
    "tcvn3_title": 2, "vni_title": 2, "negative_price": 1, "inverted_price_range": 1,
    "absurd_price": 1,
}  # fmt: skip
TRANSACTION_KINDS = {
    "cancelled": 8, "resent_revision": 8, "wrong_mst_check_digit": 4, "nfd_text": 4,
    "tcvn3_name": 2, "vni_name": 2, "dangling_listing_ref": 2, "negative_value": 1,
    "absurd_value": 1,
}  # fmt: skip


def _spread_cycle(weights: dict[str, int]) -> tuple[str, ...]:
    """Each kind ``weight`` times, interleaved so that every kind is spread evenly."""
    slots = [
        ((k + 0.5) / weight, order, kind)
        for order, (kind, weight) in enumerate(weights.items())
        for k in range(weight)
    ]
    return tuple(kind for _, _, kind in sorted(slots))


class SpecialPositions:
    """Which positions are special, and of which kind, with exact counts (no scan)."""

    def __init__(self, weights: dict[str, int], share: float) -> None:
        if not 0.0 <= share <= MAX_SPECIAL_SHARE:
            raise ValueError(f"special share must be within 0..{MAX_SPECIAL_SHARE}, got {share}")
        self.kinds = tuple(weights)
        self.cycle = _spread_cycle(weights)
        self.ppm = round(share * _PPM)

    def kind(self, i: int) -> str | None:
        ordinal = (i + 1) * self.ppm // _PPM
        if ordinal == i * self.ppm // _PPM:
            return None
        return self.cycle[(ordinal - 1) % len(self.cycle)]

    def counts(self, positions: int) -> dict[str, int]:
        total = positions * self.ppm // _PPM
        full, rest = divmod(total, len(self.cycle))
        counts = dict.fromkeys(self.kinds, 0)
        for kind in self.cycle:
            counts[kind] += full
        for kind in self.cycle[:rest]:
            counts[kind] += 1
        return counts


# --- Generators -------------------------------------------------------------------------------

_LISTING_STATES = {"dang_chao": 55, "dang_dam_phan": 15, "da_giao_dich": 15, "het_han": 15}
_NEXT_STATE = {"dang_chao": "dang_dam_phan", "dang_dam_phan": "da_giao_dich",
               "da_giao_dich": "da_giao_dich", "het_han": "dang_chao"}  # fmt: skip
_IP_STATES = {"chua_dang_ky": 40, "da_nop_don": 25, "da_cap_van_bang": 35}
_VERSIONS = {1: 60, 2: 30, 3: 10}
_FORMS = {
    "cong_nghe": {"chuyen_giao": 60, "li_xang": 30, "gop_von_bang_cong_nghe": 10},
    "thiet_bi": {"mua_ban_thiet_bi": 80, "chuyen_giao": 20},
    "giai_phap": {"chuyen_giao": 50, "li_xang": 50},
}
_CERTIFIED_FORMS = frozenset({"chuyen_giao", "li_xang", "gop_von_bang_cong_nghe"})


def _pick(rng: random.Random, weights: dict[Any, int]) -> Any:
    return rng.choices(list(weights), list(weights.values()))[0]


class ListingProfile(NamedTuple):
    id_prefix: str  # "NB-CB-"
    loai_tin: str
    doi_tuong: str
    subject: str
    title: str
    linh_vuc: str
    poster: int  # enterprise index
    poster_names: tuple[str, ...]  # every spelling, see spellings()
    mst: str | None
    ma_tinh: str
    tinh_trang_shtt: str
    so_don_shtt: str | None
    trang_thai: str
    phien_ban: int
    posted_days_before: int


def _listing_template(p: ListingProfile) -> dict[str, Any]:
    """A listing's fields in the order served; None where each record puts its own value."""
    return {
        "ma_tin": None,
        "loai_tin": p.loai_tin,
        "doi_tuong": p.doi_tuong,
        "tieu_de": p.title,
        "linh_vuc": p.linh_vuc,
        "gia_tu": None,
        "gia_den": None,
        "don_vi_dang_tin": None,
        "ma_so_thue": p.mst,
        "ma_tinh": p.ma_tinh,
        "tinh_trang_shtt": p.tinh_trang_shtt,
        "so_don_shtt": p.so_don_shtt,
        "trang_thai": p.trang_thai,
        "ngay_dang": None,
        "phien_ban": p.phien_ban,
        "ngay_cap_nhat": None,
        "da_go": False,
    }


class Price(NamedTuple):
    gia_tu: str | None
    gia_den: str | None
    low: int  # the numbers behind them, for the dirty variants
    high: int
    style: str


class EntityGenerator:
    """Common position arithmetic of one entity of one exchange."""

    kinds_weights: dict[str, int]
    id_field: str

    def __init__(self, count: int, seed: int, special_share: float, salt: str) -> None:
        if count < 0:
            raise ValueError("the number of records must be >= 0")
        self.count = count
        self.seed = seed
        self.special = SpecialPositions(self.kinds_weights, special_share)
        self._key = int.from_bytes(
            hashlib.blake2b(f"{salt}:{seed}".encode(), digest_size=8).digest(), "big"
        )
        self._span = LAST - FIRST
        self._count_or_one = max(count, 1)
        self._bits = min(MAX_POOL_BITS, max(MIN_POOL_BITS, count.bit_length()))
        self._mask = (1 << self._bits) - 1
        self._ppm = self.special.ppm

    def hash(self, i: int) -> int:
        return mix64(self._key ^ (i * _GOLDEN & _MASK64))

    def time(self, i: int) -> int:
        """Base ``ngay_cap_nhat`` of position ``i`` (epoch s); strictly increasing."""
        return FIRST + i * self._span // self._count_or_one

    def first_at_or_after(self, epoch_seconds: int) -> int:
        """The first position whose base time is >= ``epoch_seconds`` (``count`` if none)."""
        if epoch_seconds <= FIRST:
            return 0
        # FIRST + i*span//n >= t  ⇔  i*span >= (t - FIRST)*n  ⇔  i >= ceil((t - FIRST)*n/span)
        index = -(-(epoch_seconds - FIRST) * self._count_or_one // self._span)
        return min(index, self.count)

    def resend_source(self, k: int) -> int:
        """The position whose record the re-sent revision at ``k`` repeats (a plain one)."""
        j = max(0, k - 1 - self.hash(k) % RESEND_WINDOW)
        while j > 0 and self.special.kind(j) is not None:
            j -= 1
        return j

    def is_resend_source(self, j: int) -> bool:
        kind = self.special.kind
        for k in range(j + 1, min(self.count, j + RESEND_WINDOW + 3)):
            if kind(k) == "resent_revision" and self.resend_source(k) == j:
                return True
        return False

    def record(self, i: int) -> dict[str, Any]:
        """What position ``i`` serves before any change."""
        ppm = self._ppm
        if (i + 1) * ppm // _PPM == i * ppm // _PPM:  # the cheap test first: most are plain
            return self.plain(i)
        kind = self.special.kind(i)
        if kind == "resent_revision":
            source = self.resend_source(i)
            record = self.plain(source)
            self.revise(record, source)
            record["ngay_cap_nhat"] = format_local(self.time(i))
            return record
        return self.dirty(i, kind)

    def plain(self, i: int) -> dict[str, Any]:
        raise NotImplementedError

    def revise(self, record: dict[str, Any], i: int) -> None:
        """Turn ``record``, the plain record of position ``i``, into its next revision."""
        raise NotImplementedError

    def retire(self, record: dict[str, Any]) -> None:
        """Mark ``record`` withdrawn / cancelled (in place)."""
        raise NotImplementedError

    def dirty(self, i: int, kind: str) -> dict[str, Any]:
        raise NotImplementedError


class ListingGenerator(EntityGenerator):
    kinds_weights = LISTING_KINDS
    id_field = "ma_tin"

    def __init__(
        self,
        exchange: ExchangeProfile,
        count: int,
        seed: int,
        special_share: float,
        enterprises: Sequence[Enterprise],
    ) -> None:
        super().__init__(count, seed, special_share, f"listing:{exchange.exchange_id}")
        self.exchange = exchange
        self._habit = exchange.name_habit
        self.enterprises = enterprises
        rng = random.Random(f"listing-profiles:{exchange.exchange_id}:{seed}")
        self._profiles = [self._draw_profile(rng) for _ in range(1 << self._bits)]
        self._prices = [self._draw_price(rng) for _ in range(1 << self._bits)]
        # The hot path copies a template holding the profile's fields in the served order.
        self._templates = [
            (_listing_template(p), p.id_prefix, p.poster_names, p.posted_days_before)
            for p in self._profiles
        ]
        self._with_mst = [e for e, ent in enumerate(enterprises) if ent.mst is not None]

    def draw_poster(self, rng: random.Random, *, needs_mst: bool) -> int:
        """A poster; a provincial exchange's are mostly from its own province."""
        local = self.exchange.province_code
        while True:
            index = rng.randrange(len(self.enterprises))
            enterprise = self.enterprises[index]
            if needs_mst and enterprise.mst is None:
                continue
            if local is None or enterprise.province_code == local or rng.random() < 0.2:
                return index

    def _draw_profile(self, rng: random.Random) -> ListingProfile:
        subject = rng.choice(_SUBJECTS)
        loai_tin = "chao_ban" if rng.random() < 0.7 else "chao_mua"
        poster = self.draw_poster(rng, needs_mst=loai_tin == "chao_mua")
        enterprise = self.enterprises[poster]
        ip_state, ip_number = "khong_ap_dung", None
        if loai_tin == "chao_ban" and subject.ip_type is not None:
            ip_state = _pick(rng, _IP_STATES)
            if ip_state != "chua_dang_ky":
                year, serial = rng.randint(2015, 2025), rng.randrange(1, 20000)
                ip_number = f"{subject.ip_type}-{year}-{serial:05d}"
        code = "CB" if loai_tin == "chao_ban" else "CM"
        return ListingProfile(
            id_prefix=f"{self.exchange.prefix}-{code}-",
            loai_tin=loai_tin,
            doi_tuong=subject.doi_tuong,
            subject=subject.text,
            title=listing_title(subject, loai_tin, rng.randrange(6)),
            linh_vuc=rng.choice(_field_codes_under(subject.field_prefixes)),
            poster=poster,
            poster_names=spellings(enterprise.name),
            mst=enterprise.mst,
            ma_tinh=enterprise.province_code,
            tinh_trang_shtt=ip_state,
            so_don_shtt=ip_number,
            trang_thai=_pick(rng, _LISTING_STATES),
            phien_ban=_pick(rng, _VERSIONS),
            posted_days_before=rng.randrange(400),
        )

    def _draw_price(self, rng: random.Random) -> Price:
        styles = dict(self.exchange.amount_styles)
        style = _pick(rng, styles)
        low = _draw_amount(rng, 20e6, 20e9)
        high = low * rng.randint(12, 30) // 10 // 1_000_000 * 1_000_000
        shape = rng.random()
        if shape < 0.15:  # negotiable: no price, which is not an error
            return Price(self.exchange.negotiable, None, low, high, style)
        if shape < 0.35:  # a single price ("from")
            return Price(format_amount(low, style), None, low, high, style)
        return Price(format_amount(low, style), format_amount(high, style), low, high, style)

    def profile(self, i: int) -> ListingProfile:
        return self._profiles[self.hash(i) & self._mask]

    def listing_id(self, i: int) -> str:
        return self.profile(i).id_prefix + f"{i + 1:06d}"

    def plain(self, i: int) -> dict[str, Any]:
        h = mix64(self._key ^ (i * _GOLDEN & _MASK64))
        template, id_prefix, names, posted_days_before = self._templates[h & self._mask]
        price = self._prices[(h >> self._bits) & self._mask]
        day, second = divmod(FIRST + i * self._span // self._count_or_one - _EPOCH_DAY_ZERO, 86400)
        record = template.copy()
        record["ma_tin"] = id_prefix + f"{i + 1:06d}"
        record["gia_tu"] = price.gia_tu
        record["gia_den"] = price.gia_den
        record["don_vi_dang_tin"] = written_name(names, self._habit, h)
        record["ngay_dang"] = _DAYS[max(day - posted_days_before, 365)]
        record["ngay_cap_nhat"] = _DAYS[day] + _TIMES[second]
        return record

    def revise(self, record: dict[str, Any], i: int) -> None:
        record["phien_ban"] += 1
        record["trang_thai"] = _NEXT_STATE[record["trang_thai"]]

    def retire(self, record: dict[str, Any]) -> None:
        record["phien_ban"] += 1
        record["da_go"] = True

    def dirty(self, i: int, kind: str) -> dict[str, Any]:
        record = self.plain(i)
        h = self.hash(i)
        price = self._prices[(h >> self._bits) & self._mask]
        if kind == "withdrawn":
            self.retire(record)
        elif kind == "wrong_mst_check_digit":
            if record["ma_so_thue"] is None:  # an institute: a company posts this one instead
                enterprise = self.enterprises[self._with_mst[h % len(self._with_mst)]]
                record["don_vi_dang_tin"] = written_name(spellings(enterprise.name), self._habit, h)
                record["ma_so_thue"] = enterprise.mst
                record["ma_tinh"] = enterprise.province_code
            record["ma_so_thue"] = wrong_check_digit(record["ma_so_thue"])
        elif kind == "nfd_text":
            record["tieu_de"] = unicodedata.normalize("NFD", record["tieu_de"])
            record["don_vi_dang_tin"] = unicodedata.normalize("NFD", record["don_vi_dang_tin"])
        elif kind == "tcvn3_title":
            record["tieu_de"] = tcvn3_mojibake(record["tieu_de"])
        elif kind == "vni_title":
            record["tieu_de"] = vni_mojibake(record["tieu_de"])
        elif kind == "negative_price":
            record["gia_tu"] = format_amount(-price.low, price.style)
            record["gia_den"] = format_amount(price.high, price.style)
        elif kind == "inverted_price_range":
            record["gia_tu"] = format_amount(price.high, price.style)
            record["gia_den"] = format_amount(price.low, price.style)
        elif kind == "absurd_price":
            record["gia_tu"] = format_amount(ABSURD_AMOUNT, price.style)
            record["gia_den"] = None
        else:
            raise AssertionError(f"unknown listing kind {kind!r}")
        return record


class TransactionProfile(NamedTuple):
    linked: bool  # refers to a listing of the exchange
    listing_pick: int  # which earlier listing (modulo how many there are)
    subject: Subject
    linh_vuc: str
    seller: int
    buyer: int
    hinh_thuc: str
    certificate: int | None  # serial of the registration certificate, if registered
    signed_days_before: int
    phien_ban: int


class TransactionGenerator(EntityGenerator):
    kinds_weights = TRANSACTION_KINDS
    id_field = "ma_giao_dich"

    def __init__(
        self,
        exchange: ExchangeProfile,
        count: int,
        seed: int,
        special_share: float,
        listings: ListingGenerator,
    ) -> None:
        super().__init__(count, seed, special_share, f"transaction:{exchange.exchange_id}")
        self.exchange = exchange
        self._habit = exchange.name_habit
        self.listings = listings
        self.enterprises = listings.enterprises
        self._names = [spellings(e.name) for e in self.enterprises]
        rng = random.Random(f"transaction-profiles:{exchange.exchange_id}:{seed}")
        self._buyers = [e for e, ent in enumerate(self.enterprises) if ent.mst is not None]
        self._profiles = [self._draw_profile(rng) for _ in range(1 << self._bits)]
        styles = dict(exchange.amount_styles)
        self._amounts = [
            (_draw_amount(rng, 50e6, 30e9), _pick(rng, styles)) for _ in range(1 << self._bits)
        ]

    def _draw_profile(self, rng: random.Random) -> TransactionProfile:
        subject = rng.choice(_SUBJECTS)
        form = _pick(rng, _FORMS[subject.doi_tuong])
        certified = form in _CERTIFIED_FORMS and rng.random() < 0.7
        return TransactionProfile(
            linked=rng.random() < 0.8,
            listing_pick=rng.randrange(1 << 30),
            subject=subject,
            linh_vuc=rng.choice(_field_codes_under(subject.field_prefixes)),
            seller=self.listings.draw_poster(rng, needs_mst=False),
            buyer=rng.choice(self._buyers),
            hinh_thuc=form,
            certificate=rng.randrange(1, 400) if certified else None,
            signed_days_before=rng.randrange(60),
            phien_ban=_pick(rng, _VERSIONS),
        )

    def plain(self, i: int) -> dict[str, Any]:
        h = mix64(self._key ^ (i * _GOLDEN & _MASK64))
        p = self._profiles[h & self._mask]
        amount, style = self._amounts[(h >> self._bits) & self._mask]
        t = FIRST + i * self._span // self._count_or_one
        day, second = divmod(t - _EPOCH_DAY_ZERO, 86400)
        subject, linh_vuc, seller, buyer = p.subject.text, p.linh_vuc, p.seller, p.buyer
        listing_id = None
        form = p.hinh_thuc
        if p.linked:
            # A listing last modified before this deal: its poster is the seller of an offer,
            # the buyer of a demand.
            available = self.listings.first_at_or_after(t + 1)
            if available:
                j = p.listing_pick % available
                if self.listings.special.kind(j) == "resent_revision":
                    j = self.listings.resend_source(j)  # that position repeats another id
                listing = self.listings.profile(j)
                listing_id = listing.id_prefix + f"{j + 1:06d}"
                subject, linh_vuc = listing.subject, listing.linh_vuc
                if listing.loai_tin == "chao_ban":
                    seller = listing.poster
                elif self.enterprises[listing.poster].mst is not None:
                    buyer = listing.poster
                if listing.doi_tuong != p.subject.doi_tuong:
                    form = next(iter(_FORMS[listing.doi_tuong]))
        signed = max(day - p.signed_days_before, 365)
        certificate = None
        if p.certificate is not None and form in _CERTIFIED_FORMS:
            year = _DAYS[signed][6:]
            certificate = f"{p.certificate:03d}/{year}/GCN-{self.exchange.certificate_issuer}"
        seller_names, buyer_names = self._names[seller], self._names[buyer]
        return {
            "ma_giao_dich": f"{self.exchange.prefix}-GD-{i + 1:06d}",
            "ma_tin": listing_id,
            "ten_cong_nghe": subject,
            "linh_vuc": linh_vuc,
            "ben_ban": written_name(seller_names, self._habit, h),
            "ma_so_thue_ben_ban": self.enterprises[seller].mst,
            "ben_mua": written_name(buyer_names, self._habit, h >> 8),
            "ma_so_thue_ben_mua": self.enterprises[buyer].mst,
            "gia_tri": format_amount(amount, style),
            "hinh_thuc": form,
            "ngay_ky": _DAYS[signed],
            "so_giay_chung_nhan": certificate,
            "phien_ban": p.phien_ban,
            "ngay_cap_nhat": _DAYS[day] + _TIMES[second],
            "da_huy": False,
        }

    def _amount(self, i: int) -> tuple[int, str]:
        return self._amounts[(self.hash(i) >> self._bits) & self._mask]

    def revise(self, record: dict[str, Any], i: int) -> None:
        """A later revision: the certificate was issued, or else the value was corrected."""
        record["phien_ban"] += 1
        if record["so_giay_chung_nhan"] is None and record["hinh_thuc"] in _CERTIFIED_FORMS:
            year = record["ngay_ky"][6:]
            issuer = self.exchange.certificate_issuer
            record["so_giay_chung_nhan"] = f"{400 + self.hash(i) % 100:03d}/{year}/GCN-{issuer}"
        else:
            amount, style = self._amount(i)
            record["gia_tri"] = format_amount(amount * 11 // 10, style)

    def retire(self, record: dict[str, Any]) -> None:
        record["phien_ban"] += 1
        record["da_huy"] = True

    def dirty(self, i: int, kind: str) -> dict[str, Any]:
        record = self.plain(i)
        amount, style = self._amount(i)
        if kind == "cancelled":
            self.retire(record)
        elif kind == "wrong_mst_check_digit":
            record["ma_so_thue_ben_mua"] = wrong_check_digit(record["ma_so_thue_ben_mua"])
        elif kind == "nfd_text":
            record["ten_cong_nghe"] = unicodedata.normalize("NFD", record["ten_cong_nghe"])
            record["ben_ban"] = unicodedata.normalize("NFD", record["ben_ban"])
        elif kind == "tcvn3_name":
            record["ten_cong_nghe"] = tcvn3_mojibake(record["ten_cong_nghe"])
        elif kind == "vni_name":
            record["ten_cong_nghe"] = vni_mojibake(record["ten_cong_nghe"])
        elif kind == "dangling_listing_ref":
            missing = self.listings.count + 1 + self.hash(i) % 1000
            record["ma_tin"] = f"{self.exchange.prefix}-CB-{missing:06d}"
        elif kind == "negative_value":
            record["gia_tri"] = format_amount(-amount, style)
        elif kind == "absurd_value":
            record["gia_tri"] = format_amount(ABSURD_AMOUNT, style)
        else:
            raise AssertionError(f"unknown transaction kind {kind!r}")
        return record


# --- State: base records plus the change overlay ----------------------------------------------


class Clock:
    """The exchange's logical clock: changes tick it one second each, from the end of the base
    data, so a change is always later than everything served before it."""

    def __init__(self) -> None:
        self.now = LAST

    def tick(self) -> int:
        self.now += 1
        return self.now


@dataclass(frozen=True)
class Change:
    index: int  # base position
    time: int  # new ngay_cap_nhat, epoch s
    withdrawn: bool  # withdrawn listing / cancelled transaction; else an update


@dataclass(frozen=True)
class Window:
    """The positions whose modification time is within [since, until]."""

    base_lo: int
    base_hi: int
    base_count: int  # base positions in [base_lo, base_hi) that have not changed
    log_lo: int  # change log entries [log_lo, log_hi)
    log_hi: int

    @property
    def total(self) -> int:
        return self.base_count + self.log_hi - self.log_lo


class EntityStore:
    """One entity's current state. Not thread-safe: the app calls it from the event loop."""

    def __init__(self, generator: EntityGenerator, clock: Clock) -> None:
        self.generator = generator
        self.clock = clock
        self._log: list[Change] = []
        self._log_times: list[int] = []  # strictly ascending
        self._changed: dict[int, Change] = {}
        self._changed_sorted: list[int] = []
        self._walk_step = 0
        self._walk_stride = _coprime_stride(generator.count, generator.seed)

    def window(self, since: int | None, until: int) -> Window:
        g = self.generator
        lo = 0 if since is None else g.first_at_or_after(since)
        hi = max(lo, g.first_at_or_after(until + 1))
        changed = self._changed_sorted
        removed = bisect.bisect_left(changed, hi) - bisect.bisect_left(changed, lo)
        log_lo = 0 if since is None else bisect.bisect_left(self._log_times, since)
        log_hi = max(log_lo, bisect.bisect_right(self._log_times, until))
        return Window(lo, hi, hi - lo - removed, log_lo, log_hi)

    def page(self, window: Window, offset: int, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` records of ``window`` from its ``offset``-th on."""
        records: list[dict[str, Any]] = []
        if offset < window.base_count:
            record, changed = self.generator.record, self._changed_sorted
            position = self._nth_unchanged(window.base_lo, window.base_hi, offset)
            while position < window.base_hi and len(records) < limit:
                # A run of unchanged positions up to the next changed one, then skip that one.
                k = bisect.bisect_left(changed, position)
                stop = min(
                    changed[k] if k < len(changed) else window.base_hi,
                    window.base_hi,
                    position + limit - len(records),
                )
                records += [record(p) for p in range(position, stop)]
                position = stop + 1 if stop < window.base_hi and stop in self._changed else stop
            offset = window.base_count
        start = window.log_lo + offset - window.base_count
        end = min(window.log_hi, start + limit - len(records))
        records += [self._changed_record(change) for change in self._log[start:end]]
        return records

    def _nth_unchanged(self, lo: int, hi: int, n: int) -> int:
        """The ``n``-th (0-based) position in [lo, hi) that has not changed."""
        changed = self._changed_sorted
        before_lo = bisect.bisect_left(changed, lo)
        a, b = lo + n, hi
        while a < b:
            mid = (a + b) // 2
            unchanged_up_to_mid = mid + 1 - lo - (bisect.bisect_right(changed, mid) - before_lo)
            if unchanged_up_to_mid > n:
                b = mid
            else:
                a = mid + 1
        return a

    def _changed_record(self, change: Change) -> dict[str, Any]:
        record = self.generator.record(change.index)
        if change.withdrawn:
            self.generator.retire(record)
        else:
            self.generator.revise(record, change.index)
        record["ngay_cap_nhat"] = format_local(change.time)
        return record

    def apply_changes(self, update: int, withdraw: int) -> tuple[list[str], list[str]]:
        """Revise ``update`` and withdraw ``withdraw`` plain, never-changed records.

        Raises ValueError, changing nothing, when not enough of them remain.
        """
        if update < 0 or withdraw < 0:
            raise ValueError("update and withdraw must be >= 0")
        picked = self._pick(update + withdraw)
        if picked is None:
            raise ValueError(f"fewer than {update + withdraw} unchanged plain records remain")
        ids = ([], [])
        for n, index in enumerate(picked):
            withdrawn = n >= update
            change = Change(index, self.clock.tick(), withdrawn)
            self._log.append(change)
            self._log_times.append(change.time)
            self._changed[index] = change
            bisect.insort(self._changed_sorted, index)
            ids[withdrawn].append(self.generator.record(index)[self.generator.id_field])
        return ids

    def _pick(self, wanted: int) -> list[int] | None:
        """Positions to change, walking all of them in a fixed pseudo-random order."""
        g = self.generator
        picked: list[int] = []
        step = self._walk_step
        while len(picked) < wanted and step < g.count:
            index = (step * self._walk_stride + g.seed) % g.count
            step += 1
            if (
                index not in self._changed
                and g.special.kind(index) is None
                and not g.is_resend_source(index)
            ):
                picked.append(index)
        if len(picked) < wanted:
            return None
        self._walk_step = step
        return picked

    def stats(self) -> dict[str, Any]:
        g = self.generator
        kinds = g.special.counts(g.count)
        retired = "withdrawn" if "withdrawn" in kinds else "cancelled"
        updated = sum(not c.withdrawn for c in self._log)
        return {
            "items": g.count,  # what a full extraction returns: changes move records only
            "records": g.count - kinds["resent_revision"],  # distinct ids
            "kinds": kinds,
            retired: kinds[retired] + len(self._log) - updated,
            "changes": {"updated": updated, retired: len(self._log) - updated},
        }


def _coprime_stride(n: int, seed: int) -> int:
    """A stride near n × 0.618 that is coprime with n, so ``k * stride mod n`` visits all."""
    if n <= 1:
        return 1
    stride = max(1, int(n * 0.6180339887) + seed % 7)
    while math.gcd(stride, n) != 1:
        stride += 1
    return stride


class ExchangeData:
    """Listings and transactions of one exchange, sharing its logical clock."""

    def __init__(
        self,
        exchange: ExchangeProfile,
        *,
        listings: int,
        transactions: int,
        seed: int,
        special_share: float = DEFAULT_SPECIAL_SHARE,
        enterprises: Sequence[Enterprise] | None = None,
    ) -> None:
        self.exchange = exchange
        self.clock = Clock()
        enterprises = enterprises if enterprises is not None else draw_enterprises(seed)
        listing_generator = ListingGenerator(exchange, listings, seed, special_share, enterprises)
        transaction_generator = TransactionGenerator(
            exchange, transactions, seed, special_share, listing_generator
        )
        self.stores: dict[str, EntityStore] = {
            "listing": EntityStore(listing_generator, self.clock),
            "transaction": EntityStore(transaction_generator, self.clock),
        }

    def stats(self) -> dict[str, Any]:
        return {
            "exchange_id": self.exchange.exchange_id,
            "province_code": self.exchange.province_code,
            "clock": format_iso(self.clock.now),
            **{entity: store.stats() for entity, store in self.stores.items()},
        }


# --- Schema drift, for the landing layer's tests ----------------------------------------------

RETYPE_TARGETS = ("string", "number", "array", "object")


def _retype(value: Any, target: str) -> Any:
    if value is None:
        return None
    if target == "string":
        return value if isinstance(value, str) else orjson.dumps(value).decode()
    if target == "number":
        digits = "".join(c for c in str(value) if c.isdigit())
        return int(digits) if digits else 0
    if target == "array":
        return [value]
    return {"value": value}


@dataclass(frozen=True)
class Drift:
    """One change of the served record shape: add, remove or retype a field."""

    action: str  # add | remove | retype
    field: str
    value: Any = None  # for add
    to: str | None = None  # for retype

    def apply(self, record: dict[str, Any]) -> None:
        if self.action == "add":
            record[self.field] = self.value
        elif self.action == "remove":
            record.pop(self.field, None)
        elif self.field in record:
            record[self.field] = _retype(record[self.field], self.to or "string")


def apply_drifts(records: list[dict[str, Any]], drifts: list[Drift]) -> None:
    apply: list[Callable[[dict[str, Any]], None]] = [d.apply for d in drifts]
    for record in records:
        for change in apply:
            change(record)
