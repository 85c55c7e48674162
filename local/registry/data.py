"""Synthetic S&T tasks (nhiệm vụ KH&CN) of Ninh Bình: the single-registry mode's data.

Record ``i`` is a pure function of the settings (seed, number of records, bad share) and ``i``:
nothing is stored per record, so a million-record registry costs no memory. The seed draws two
pools of 32,768 profiles each (once per process and seed): *projects* (title, field, host,
investigator, level) and *plans* (status, type, duration, budgets, …). Record ``i`` takes one
of each, picked by a splitmix64 hash of (seed, i), and derives its dates from its
``updated_at``. That keeps the serving hot path to one hash, two lookups and some arithmetic;
constructing ``random.Random`` per record would be far too slow for the serving rate the
benchmarks need.

Base record ``i`` has an ``updated_at`` that never decreases with ``i`` (spread from 2019-01-01
to 2026-06-30); :class:`TaskRegistry` (a :class:`~local.registry.store.RecordStore`) pages them
and overlays changes. Bad records (for testing the pipeline's quarantine) are spread evenly by
index and cycle through :data:`BAD_KINDS`; see :func:`bad_kind`. The profile mode
(:mod:`local.registry.tasks`) serves these same records, localised to each registry, with the
profile's dirt on top.
"""

from __future__ import annotations

import csv
import hashlib
import random
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

from stdnum.vn import mst

from local.registry.entities import BAD_KINDS
from local.registry.store import Change, Page, RecordStore
from local.registry.synth import DAY_STRINGS as _DAY_STRINGS
from local.registry.synth import (
    DAY_ZERO,
    LAST_DAY,
    UPDATED_AT_FIRST,
    UPDATED_AT_LAST,
    format_timestamp,
)
from local.registry.synth import EPOCH_DAY_ZERO as _EPOCH_DAY_ZERO
from local.registry.synth import MASK64 as _MASK64
from local.registry.synth import PPM as _PPM
from local.registry.synth import TIME_STRINGS as _TIME_STRINGS
from local.registry.synth import mix as _mix

REPO_ROOT = Path(__file__).resolve().parents[2]
FIELD_CODES_CSV = REPO_ROOT / "dbt_project/seeds/research_fields_qd12_2008.csv"

PROVINCE_CODE = "37"  # Ninh Bình
DEFAULT_RECORDS = 500
DEFAULT_SEED = 42
DEFAULT_BAD_SHARE = 0.05

__all__ = [
    "BAD_KINDS", "DAY_ZERO", "LAST_DAY", "UPDATED_AT_FIRST", "UPDATED_AT_LAST", "Change", "Page",
    "TaskGenerator", "TaskRegistry", "bad_counts", "bad_kind", "bad_share_ppm", "format_timestamp",
]  # fmt: skip


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


# --- Research fields (QĐ 12/2008/QĐ-BKHCN) ----------------------------------------------------


def load_level3_field_codes(path: Path = FIELD_CODES_CSV) -> list[str]:
    """The 5-digit level-3 research field codes from the dbt seed, in file order."""
    with path.open(encoding="utf-8", newline="") as handle:
        return [row["field_code"] for row in csv.DictReader(handle) if row["field_level"] == "3"]


_FIELD_CODES = load_level3_field_codes()
_UNKNOWN_FIELD_CODES = [
    code
    for code in ("10999", "20998", "30999", "40999", "50999", "60999")
    if code not in set(_FIELD_CODES)
]


def _field_codes_under(prefixes: tuple[str, ...]) -> tuple[str, ...]:
    codes = tuple(code for code in _FIELD_CODES if code.startswith(prefixes))
    return codes or tuple(_FIELD_CODES)


# --- Host organisations (tổ chức chủ trì) ------------------------------------------------------
# Public bodies have no enterprise code (null); the (fictitious) companies get a valid MST.

_PUBLIC_BODIES = {
    "hoa_lu_university": "Trường Đại học Hoa Lư",
    "nursing_university": "Trường Đại học Điều dưỡng Nam Định",
    "technical_university": "Trường Đại học Sư phạm Kỹ thuật Nam Định",
    "mechanics_college": "Trường Cao đẳng Cơ giới Ninh Bình",
    "general_hospital": "Bệnh viện Đa khoa tỉnh Ninh Bình",
    "obstetrics_hospital": "Bệnh viện Sản Nhi Ninh Bình",
    "disease_control": "Trung tâm Kiểm soát bệnh tật tỉnh Ninh Bình",
    "extension_centre": "Trung tâm Khuyến nông tỉnh Ninh Bình",
    "st_application_centre": "Trung tâm Ứng dụng tiến bộ khoa học và công nghệ tỉnh Ninh Bình",
    "st_information_centre": "Trung tâm Thông tin và Thống kê khoa học và công nghệ tỉnh Ninh Bình",
    "trang_an_board": "Ban Quản lý Quần thể danh thắng Tràng An",
    "cuc_phuong_park": "Vườn quốc gia Cúc Phương",
    "fisheries_office": "Chi cục Thủy sản tỉnh Ninh Bình",
    "agriculture_department": "Sở Nông nghiệp và Môi trường tỉnh Ninh Bình",
    "culture_department": "Sở Văn hóa, Thể thao và Du lịch tỉnh Ninh Bình",
    "socioeconomic_institute": "Viện Nghiên cứu Phát triển Kinh tế - Xã hội tỉnh Ninh Bình",
}
_COMPANIES = {
    "seed_company": "Công ty Cổ phần Giống cây trồng Hoa Lư",
    "goat_company": "Công ty TNHH Chăn nuôi dê núi Nho Quan",
    "sedge_company": "Công ty Cổ phần Cói mỹ nghệ Kim Sơn",
    "building_materials_company": "Công ty Cổ phần Vật liệu xây dựng Tam Điệp Xanh",
    "engineering_company": "Công ty TNHH Cơ khí chính xác Gia Viễn",
    "tourism_company": "Công ty TNHH Du lịch cộng đồng Vân Long",
    "seafood_company": "Công ty Cổ phần Thủy sản Bình Minh Kim Sơn",
    "software_company": "Công ty TNHH Giải pháp số Hoa Lư",
    "herbal_company": "Công ty Cổ phần Dược liệu Cúc Phương Xanh",
    "organic_farm_company": "Công ty TNHH Nông nghiệp hữu cơ Yên Mô",
    "textile_company": "Công ty Cổ phần Dệt may Thành Nam",
    "pottery_company": "Công ty TNHH Gốm Bồ Bát",
}


def enterprise_code_for(name: str) -> str:
    """A stable, valid 10-digit MST for a fictitious company (Ninh Bình tax prefix 27).

    The first nine digits come from a hash of the name; the tenth is the mod-11 check digit.
    Bodies whose check digit would be 10 (no valid MST has one) are skipped.
    """
    number = int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big")
    while True:
        body = "27" + f"{number % 10_000_000:07d}"
        check = mst.calc_check_digit(body)
        if len(check) == 1:
            return body + check
        number += 1


_ORGANISATIONS: dict[str, tuple[str, str | None]] = {
    key: (_nfc(name), None) for key, name in _PUBLIC_BODIES.items()
} | {key: (_nfc(name), enterprise_code_for(_nfc(name))) for key, name in _COMPANIES.items()}

# Any topic can also be hosted by the provincial university or the S&T application centre.
_GENERAL_HOSTS = ("hoa_lu_university", "st_application_centre")

# --- Titles: templates × topics relevant to Ninh Bình ------------------------------------------


@dataclass(frozen=True)
class Topic:
    activity: str  # what the task improves, e.g. "sản xuất giống lúa chất lượng cao"
    technologies: tuple[str, ...]  # what it applies
    place: str  # e.g. "tại tỉnh Ninh Bình"
    field_prefixes: tuple[str, ...]  # level-2 QĐ 12/2008 codes; field codes are drawn below them
    hosts: tuple[str, ...]  # keys of the organisations likely to host it


_TOPICS = (
    Topic("sản xuất giống lúa chất lượng cao", ("công nghệ sinh học", "chỉ thị phân tử"),
          "tại tỉnh Ninh Bình", ("401", "406"),
          ("extension_centre", "seed_company", "agriculture_department")),
    Topic("phát triển du lịch sinh thái bền vững",
          ("công nghệ số", "hệ thống thông tin địa lý (GIS)"),
          "tại Quần thể danh thắng Tràng An, tỉnh Ninh Bình", ("502", "507"),
          ("trang_an_board", "culture_department", "tourism_company")),
    Topic("chăn nuôi dê núi theo chuỗi giá trị",
          ("công nghệ thụ tinh nhân tạo", "công nghệ sinh học"),
          "tại vùng bán sơn địa tỉnh Ninh Bình", ("402", "403"),
          ("goat_company", "extension_centre")),
    Topic("sản xuất và xuất khẩu sản phẩm cói mỹ nghệ",
          ("công nghệ xử lý chống mốc", "thiết kế số"),
          "tại Kim Sơn, tỉnh Ninh Bình", ("299", "502", "604"), ("sedge_company",)),
    Topic("sản xuất xi măng tiết kiệm năng lượng",
          ("công nghệ đồng xử lý chất thải", "tự động hóa"),
          "trên địa bàn tỉnh Ninh Bình", ("204", "205", "207"),
          ("building_materials_company", "technical_university")),
    Topic("chế tạo máy nông nghiệp phục vụ cơ giới hóa đồng ruộng",
          ("công nghệ CAD/CAM", "tự động hóa"), "tại tỉnh Ninh Bình", ("203",),
          ("engineering_company", "mechanics_college", "technical_university")),
    Topic("chẩn đoán và điều trị đột quỵ não", ("trí tuệ nhân tạo", "kỹ thuật can thiệp nội mạch"),
          "tại Bệnh viện Đa khoa tỉnh Ninh Bình", ("302", "303"), ("general_hospital",)),
    Topic("chăm sóc sức khỏe bà mẹ và trẻ sơ sinh", ("y tế từ xa", "kỹ thuật sàng lọc sơ sinh"),
          "tại tỉnh Ninh Bình", ("302", "303"), ("obstetrics_hospital", "nursing_university")),
    Topic("cải cách hành chính và cung cấp dịch vụ công trực tuyến",
          ("công nghệ số", "dữ liệu lớn"),
          "tại tỉnh Ninh Bình", ("102", "202", "502"),
          ("st_information_centre", "software_company")),
    Topic("nuôi trồng thủy sản nước lợ", ("công nghệ tuần hoàn nước (RAS)", "công nghệ vi sinh"),
          "tại vùng ven biển Kim Sơn, tỉnh Ninh Bình", ("405",),
          ("seafood_company", "fisheries_office", "extension_centre")),
    Topic("bảo tồn và phát huy giá trị di sản văn hóa", ("công nghệ số hóa 3D", "thực tế ảo"),
          "tại Khu di tích lịch sử Cố đô Hoa Lư", ("601", "604"),
          ("culture_department", "trang_an_board")),
    Topic("xử lý chất thải chăn nuôi quy mô nông hộ",
          ("chế phẩm vi sinh", "công nghệ khí sinh học"),
          "trên địa bàn tỉnh Ninh Bình", ("207", "208", "402"), ("agriculture_department",)),
    Topic("sản xuất rau an toàn theo tiêu chuẩn VietGAP", ("công nghệ nhà màng", "tưới nhỏ giọt"),
          "tại tỉnh Ninh Bình", ("401",), ("extension_centre", "organic_farm_company")),
    Topic("phát triển vùng trồng cây dược liệu",
          ("công nghệ nhân giống in vitro", "công nghệ sinh học"),
          "tại Nho Quan, tỉnh Ninh Bình", ("304", "401"), ("herbal_company", "cuc_phuong_park")),
    Topic("quản lý tài nguyên nước thích ứng với biến đổi khí hậu", ("viễn thám", "mô hình số"),
          "tại tỉnh Ninh Bình", ("105", "207"),
          ("agriculture_department", "socioeconomic_institute")),
    Topic("giám sát và điều hành giao thông đô thị", ("trí tuệ nhân tạo", "Internet vạn vật (IoT)"),
          "tại tỉnh Ninh Bình", ("102", "202"), ("software_company", "st_information_centre")),
    Topic("chế biến và bảo quản nông sản sau thu hoạch", ("công nghệ sấy lạnh", "công nghệ enzyme"),
          "tại tỉnh Ninh Bình", ("211",), ("seed_company", "organic_farm_company")),
    Topic("phòng, chống bệnh truyền nhiễm trong cộng đồng",
          ("kỹ thuật sinh học phân tử", "dữ liệu lớn"), "tại tỉnh Ninh Bình", ("301", "303"),
          ("disease_control", "nursing_university")),
    Topic("chăm sóc sức khỏe người cao tuổi", ("y tế từ xa", "công nghệ số"),
          "tại tỉnh Ninh Bình", ("302", "303"), ("general_hospital", "nursing_university")),
    Topic("đào tạo nhân lực chất lượng cao cho ngành cơ khí", ("thực tế ảo", "mô phỏng số"),
          "tại tỉnh Ninh Bình", ("503", "203"), ("mechanics_college", "technical_university")),
    Topic("phát triển nông nghiệp hữu cơ", ("chế phẩm sinh học", "truy xuất nguồn gốc điện tử"),
          "tại Yên Mô, tỉnh Ninh Bình", ("401", "499"),
          ("organic_farm_company", "extension_centre")),
    Topic("bảo tồn đa dạng sinh học", ("công nghệ giải mã gen", "hệ thống thông tin địa lý (GIS)"),
          "tại Vườn quốc gia Cúc Phương", ("106", "404"), ("cuc_phuong_park",)),
    Topic("nâng cao chất lượng sản phẩm OCOP", ("công nghệ bao gói", "truy xuất nguồn gốc điện tử"),
          "tại tỉnh Ninh Bình", ("502", "211"), ("pottery_company", "sedge_company")),
    Topic("chế biến thịt dê và sản phẩm từ dê núi", ("công nghệ bảo quản lạnh", "công nghệ enzyme"),
          "tại tỉnh Ninh Bình", ("211", "402"), ("goat_company",)),
    Topic("khai thác đá vôi và giảm thiểu ô nhiễm bụi",
          ("công nghệ phun sương", "quan trắc tự động"),
          "tại Tam Điệp, tỉnh Ninh Bình", ("207", "105"),
          ("building_materials_company", "agriculture_department")),
    Topic("sản xuất vật liệu xây dựng không nung", ("công nghệ tái chế phế thải", "phụ gia khoáng"),
          "trên địa bàn tỉnh Ninh Bình", ("201", "205"), ("building_materials_company",)),
    Topic("bảo tồn nghề chạm khắc đá truyền thống", ("công nghệ CNC", "số hóa 3D"),
          "tại làng nghề Ninh Vân, tỉnh Ninh Bình", ("604", "601"), ("culture_department",)),
    Topic("phát triển nghề dệt may", ("công nghệ nhuộm sinh thái", "tự động hóa"),
          "tại khu vực Nam Định, tỉnh Ninh Bình", ("299", "209"),
          ("textile_company", "technical_university")),
    Topic("nuôi trồng nấm ăn và nấm dược liệu", ("công nghệ sinh học", "điều khiển vi khí hậu"),
          "tại tỉnh Ninh Bình", ("406", "401"), ("extension_centre", "herbal_company")),
    Topic("quản lý chất lượng nước nuôi tôm thẻ chân trắng", ("cảm biến IoT", "chế phẩm vi sinh"),
          "tại vùng ven biển tỉnh Ninh Bình", ("405",), ("seafood_company", "fisheries_office")),
    Topic("phát triển năng lượng tái tạo", ("điện mặt trời áp mái", "lưu trữ năng lượng"),
          "tại các khu công nghiệp tỉnh Ninh Bình", ("202", "207"),
          ("technical_university", "socioeconomic_institute")),
)  # fmt: skip

_TEMPLATES_WITH_TECHNOLOGY = (
    "Nghiên cứu ứng dụng {technology} trong {activity} {place}",
    "Xây dựng mô hình ứng dụng {technology} trong {activity} {place}",
    "Ứng dụng {technology} nhằm nâng cao hiệu quả {activity} {place}",
)
_TEMPLATES_WITHOUT_TECHNOLOGY = (
    "Nghiên cứu giải pháp {activity} {place}",
    "Đánh giá thực trạng và đề xuất giải pháp {activity} {place}",
    "Hoàn thiện quy trình công nghệ {activity} {place}",
    "Xây dựng cơ sở dữ liệu phục vụ {activity} {place}",
)


@dataclass(frozen=True)
class TitleChoice:
    title: str  # NFC
    field_codes: tuple[str, ...]
    hosts: tuple[tuple[str, str | None], ...]  # (organisation name, enterprise code or None)


def _build_titles(
    place_of: Callable[[Topic], str] = lambda topic: topic.place,
) -> list[TitleChoice]:
    """Every title the generator can use, with the field codes and hosts that fit it."""
    choices = []
    for topic in _TOPICS:
        codes = _field_codes_under(topic.field_prefixes)
        # The topic's own hosts are three times as likely as the general ones.
        hosts = tuple(_ORGANISATIONS[key] for key in topic.hosts * 3 + _GENERAL_HOSTS)
        place = place_of(topic)
        words = {"activity": topic.activity, "place": place}
        texts = [template.format(**words) for template in _TEMPLATES_WITHOUT_TECHNOLOGY]
        texts += [
            template.format(technology=technology, **words)
            for template in _TEMPLATES_WITH_TECHNOLOGY
            for technology in topic.technologies
        ]
        choices += [TitleChoice(_nfc(text), codes, hosts) for text in texts]
    return choices


_TITLES = _build_titles()
HOME = "tỉnh Ninh Bình"  # the province the titles and public bodies above are written for

# Public bodies named after a place in Ninh Bình: what stands in for them elsewhere.
_ELSEWHERE = {
    "hoa_lu_university": "Trường Đại học {short}",
    "nursing_university": "Trường Cao đẳng Y tế {short}",
    "technical_university": "Trường Cao đẳng Kỹ thuật {short}",
    "trang_an_board": "Ban Quản lý các khu du lịch {province}",
    "cuc_phuong_park": "Ban Quản lý rừng đặc dụng {province}",
}


@cache
def localised_names(province: str, short: str) -> dict[str, str]:
    """Titles and public-body names of Ninh Bình -> the same for another province.

    ``province`` as written in a sentence ("tỉnh Hà Nam"), ``short`` without the unit word.
    Places particular to Ninh Bình become the province as a whole. Empty for Ninh Bình.
    """
    if province == HOME:
        return {}

    def place_of(topic: Topic) -> str:
        if topic.place.endswith(HOME) and "," not in topic.place:
            return topic.place.replace(HOME, province)
        return f"tại {province}"

    names = {
        old.title: new.title for old, new in zip(_TITLES, _build_titles(place_of), strict=True)
    }
    for key, name in _PUBLIC_BODIES.items():
        template = _ELSEWHERE.get(key)
        if template is not None:
            names[_nfc(name)] = _nfc(template.format(short=short, province=province))
        else:
            names[_nfc(name)] = _nfc(name.replace(HOME, province).replace("Ninh Bình", short))
    return names


# --- Principal investigators -----------------------------------------------------------------

_FAMILY_NAMES = (
    "Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đinh", "Bùi",
    "Đỗ", "Ngô", "Dương", "Mai", "Tạ", "Lương", "Phan", "Trịnh",
)  # fmt: skip
_MALE_NAMES = [
    f"{middle} {given}"
    for middle in ("Văn", "Đức", "Minh", "Quang", "Hữu", "Xuân", "Thanh", "Mạnh")
    for given in ("An", "Bình", "Cường", "Dũng", "Hải", "Hùng", "Long", "Nam", "Quân", "Sơn",
                  "Thắng", "Tuấn", "Việt", "Khánh", "Hoàng")
]  # fmt: skip
_FEMALE_NAMES = [
    f"{middle} {given}"
    for middle in ("Thị", "Thu", "Ngọc", "Thanh", "Hồng", "Minh")
    for given in ("Anh", "Hà", "Hạnh", "Hương", "Lan", "Linh", "Mai", "Ngọc", "Phương", "Thảo",
                  "Trang", "Yến", "Huyền", "Hằng", "Nga")
]  # fmt: skip
_PERSON_NAMES = [
    _nfc(f"{family} {rest}") for family in _FAMILY_NAMES for rest in _MALE_NAMES + _FEMALE_NAMES
]
# --- Profiles ---------------------------------------------------------------------------------
# A record combines a *project* (who does what) and a *plan* (how it runs and is funded), each
# drawn from a pool of pre-generated profiles built once per seed. Serving a record then costs
# one hash, two lookups and a little date arithmetic, instead of a dozen weighted draws.

PROFILE_POOL_BITS = 15  # 32,768 projects × 32,768 plans

_ACADEMIC_TITLES = {"TS.": 36, "ThS.": 34, "PGS.TS.": 18, "GS.TS.": 4, "KS.": 5, "BSCKII.": 3}
_TASK_LEVELS = {"provincial": 72, "institutional": 14, "ministerial": 8, "national": 6}
_TASK_TYPES = {"research_project": 64, "st_project": 16, "scheme": 12,
               "pilot_production_project": 8}  # fmt: skip
_TYPE_CODES = {"research_project": "DT", "scheme": "DA", "pilot_production_project": "SX",
               "st_project": "DAKH"}  # fmt: skip
_STATUSES = {"accepted": 28, "applied": 16, "in_progress": 26, "approved": 11, "proposed": 11,
             "cancelled": 8}  # fmt: skip
_RATINGS = {
    "accepted": {"excellent": 18, "passed": 74, "failed": 8},
    "applied": {"excellent": 25, "passed": 75},  # a failed task is not applied
}


class Project(NamedTuple):
    title: str
    task_level: str
    field_code: str
    host_name: str
    host_code: str | None
    investigator: str


class Plan(NamedTuple):
    status: str
    task_type: str
    type_code: str  # the task type's part of the task code, e.g. "DT" (đề tài)
    duration: int  # planned days from start to end (6 to 36 months)
    wobble: int  # 0..1023, spreads start and acceptance dates around the last update
    settle: int  # days from end to acceptance, beyond the first 15
    rating: str | None
    budget_state: float  # million VND, one decimal
    budget_other: float


def _weighted_choices(rng: random.Random, weights: dict[str, int], k: int) -> list[str]:
    return rng.choices(list(weights), weights=list(weights.values()), k=k)


def draw_projects(rng: random.Random, k: int) -> list[Project]:
    titles = rng.choices(_TITLES, k=k)
    levels = _weighted_choices(rng, _TASK_LEVELS, k)
    academic_titles = _weighted_choices(rng, _ACADEMIC_TITLES, k)
    names = rng.choices(_PERSON_NAMES, k=k)
    projects = []
    for title, level, academic_title, name in zip(
        titles, levels, academic_titles, names, strict=True
    ):
        host_name, host_code = rng.choice(title.hosts)
        field_code = rng.choice(title.field_codes)
        investigator = f"{academic_title} {name}"
        projects.append(Project(title.title, level, field_code, host_name, host_code, investigator))
    return projects


def draw_plans(rng: random.Random, k: int) -> list[Plan]:
    statuses = _weighted_choices(rng, _STATUSES, k)
    task_types = _weighted_choices(rng, _TASK_TYPES, k)
    plans = []
    for status, task_type in zip(statuses, task_types, strict=True):
        ratings = _RATINGS.get(status)
        rating = _weighted_choices(rng, ratings, 1)[0] if ratings else None
        state_tenths = rng.randint(2000, 50000)  # 200.0 .. 5,000.0 million VND
        # Other sources are often nil, except for pilot production, which needs counterpart
        # funds; when present they are 10–150 % of the state budget.
        if task_type != "pilot_production_project" and rng.random() < 0.55:
            other_tenths = 0
        else:
            other_tenths = state_tenths * rng.randint(10, 150) // 100
        plans.append(
            Plan(
                status=status,
                task_type=task_type,
                type_code=_TYPE_CODES[task_type],
                duration=rng.randint(180, 1095),
                wobble=rng.randrange(1024),
                settle=rng.randrange(120),
                rating=rating,
                budget_state=state_tenths / 10,
                budget_other=other_tenths / 10,
            )
        )
    return plans


# --- Bad records ----------------------------------------------------------------------------


def bad_share_ppm(bad_share: float) -> int:
    """The bad share as integer parts per million (0..1,000,000)."""
    if not 0.0 <= bad_share <= 1.0:
        raise ValueError(f"bad_share must be within 0..1, got {bad_share}")
    return round(bad_share * _PPM)


def bad_kind(i: int, bad_share: float = DEFAULT_BAD_SHARE) -> str | None:
    """The defect of record ``i`` (one of :data:`BAD_KINDS`), or None for a good record.

    Bad records are spread evenly: record ``i`` is bad when ``floor((i + 1) * share)`` steps up
    at ``i``, and the n-th bad record has kind ``BAD_KINDS[n % 4]``. It does not depend on the
    seed or the number of records.
    """
    return _bad_kind_ppm(i, bad_share_ppm(bad_share))


def _bad_kind_ppm(i: int, ppm: int) -> str | None:
    ordinal = (i + 1) * ppm // _PPM
    if ordinal == i * ppm // _PPM:
        return None
    return BAD_KINDS[(ordinal - 1) % len(BAD_KINDS)]


def bad_counts(records: int, bad_share: float = DEFAULT_BAD_SHARE) -> dict[str, int]:
    """How many of records 0..records-1 have each bad kind (exact, without a scan)."""
    total = records * bad_share_ppm(bad_share) // _PPM
    n = len(BAD_KINDS)
    return {kind: (total - k + n - 1) // n for k, kind in enumerate(BAD_KINDS)}


# --- The generator --------------------------------------------------------------------------


class TaskGenerator:
    """Deterministic synthetic S&T task records ``0 .. records-1`` (never stored).

    ``record_key`` (profile mode) keys the per-record hash separately from the pools, so several
    registries share one pair of pools (drawn once per seed) but serve different records.
    """

    def __init__(
        self,
        records: int = DEFAULT_RECORDS,
        seed: int = DEFAULT_SEED,
        bad_share: float = DEFAULT_BAD_SHARE,
        *,
        record_key: int | None = None,
    ) -> None:
        if records < 0:
            raise ValueError("records must be >= 0")
        self.records = records
        self.seed = seed
        self.bad_share = bad_share
        self._ppm = bad_share_ppm(bad_share)
        self._seed_key = _mix(seed & _MASK64) if record_key is None else record_key
        self._span = UPDATED_AT_LAST - UPDATED_AT_FIRST
        self._denominator = max(records, 1)
        self._projects, self._plans = _profile_pools(seed)

    def bad_kind(self, i: int) -> str | None:
        return _bad_kind_ppm(i, self._ppm)

    kind = bad_kind

    def kind_counts(self) -> dict[str, int]:
        return bad_counts(self.records, self.bad_share)

    def changeable(self, i: int) -> bool:
        return _bad_kind_ppm(i, self._ppm) is None

    def changeable_count(self) -> int:
        return self.records - sum(self.kind_counts().values())

    def updated_at(self, i: int) -> int:
        """Base ``updated_at`` of record ``i`` in epoch seconds; never decreases with ``i``."""
        return UPDATED_AT_FIRST + i * self._span // self._denominator

    def first_index_updated_since(self, epoch_seconds: int) -> int:
        """The smallest index whose base ``updated_at`` is >= ``epoch_seconds``."""
        lo, hi = 0, self.records
        while lo < hi:
            mid = (lo + hi) // 2
            if self.updated_at(mid) < epoch_seconds:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def record(self, i: int) -> dict[str, Any]:
        """Record ``i`` as the registry serves it before any change (so version 1).

        This is the serving hot path, so ``updated_at()`` and ``bad_kind()`` are inlined.
        """
        h = _mix(self._seed_key ^ (i * 0x9E3779B97F4A7C15 & _MASK64))
        mask = (1 << PROFILE_POOL_BITS) - 1
        title, task_level, field_code, host_name, host_code, investigator = self._projects[h & mask]
        plan = self._plans[(h >> PROFILE_POOL_BITS) & mask]
        status = plan.status

        # Dates follow the status as seen on the day of the last update (as_of).
        updated_at = UPDATED_AT_FIRST + i * self._span // self._denominator
        as_of, second_of_day = divmod(updated_at - _EPOCH_DAY_ZERO, 86400)
        duration, wobble = plan.duration, plan.wobble
        acceptance = None
        if status == "proposed":
            start = as_of + 30 + wobble % 150
        elif status == "approved":
            start = as_of + 1 + wobble % 90
        elif status in ("in_progress", "cancelled"):
            start = as_of - 1 - wobble % (duration - 1)
        else:  # accepted / applied: ended, then accepted (nghiệm thu) before the last update
            if status == "accepted":
                acceptance = as_of - wobble % 60
            else:
                acceptance = as_of - min(180 + wobble % 520, as_of - 240)
            end = acceptance - 15 - plan.settle  # >= day 105
            start = end - duration
        if start < 0:  # would begin before 2018: spread over early 2018 rather than pile up
            start = wobble % 90
        start = min(start, LAST_DAY - 90)
        if acceptance is None:
            end = start + duration
            if status == "in_progress":  # still running on the day of the last update
                end = max(end, as_of + 30)
            end = min(end, LAST_DAY)
        start_date = _DAY_STRINGS[start]
        end_date = _DAY_STRINGS[end]

        task_id: str | None = f"NB-{start_date[:4]}-{plan.type_code}-{i + 1:04d}"
        budget_state = plan.budget_state
        ppm = self._ppm
        if (i + 1) * ppm // _PPM != i * ppm // _PPM:  # cheap test first; most records are good
            kind = _bad_kind_ppm(i, ppm)
            if kind == "missing_id":
                task_id = None
            elif kind == "unknown_field_code":
                field_code = _UNKNOWN_FIELD_CODES[(h >> 40) % len(_UNKNOWN_FIELD_CODES)]
            elif kind == "end_before_start":
                start_date, end_date = end_date, start_date
            else:  # negative_budget
                budget_state = -budget_state

        return {
            "id": task_id,
            "version": 1,  # base records are unchanged since the registry was loaded
            "updated_at": _DAY_STRINGS[as_of] + _TIME_STRINGS[second_of_day],
            "deleted": False,
            "title": title,
            "task_level": task_level,
            "task_type": plan.task_type,
            "field_code": field_code,
            "host_organisation_name": host_name,
            "host_organisation_code": host_code,
            "principal_investigator": investigator,
            "province_code": PROVINCE_CODE,
            "budget_state_million_vnd": budget_state,
            "budget_other_million_vnd": plan.budget_other,
            "start_date": start_date,
            "end_date": end_date,
            "status": status,
            "acceptance_date": None if acceptance is None else _DAY_STRINGS[acceptance],
            "acceptance_rating": plan.rating,
        }


# --- The registry: generated base records plus the change overlay ---------------------------


class TaskRegistry(RecordStore):
    """The single-registry S&T tasks: a :class:`RecordStore` whose stats name the bad kinds."""

    generator: TaskGenerator

    def stats(self) -> dict[str, Any]:
        """What a full extraction returns now: record count, bad records by kind, changes."""
        stats = super().stats()
        return {**stats, "bad": stats["kinds"]}


@cache
def _profile_pools(seed: int) -> tuple[list[Project], list[Plan]]:
    """The project and plan pools of a seed, drawn once per process."""
    rng = random.Random(seed)  # one generator for the pools; records use only the hash
    return draw_projects(rng, 1 << PROFILE_POOL_BITS), draw_plans(rng, 1 << PROFILE_POOL_BITS)
