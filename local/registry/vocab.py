"""Words the profile-mode generators build text from, and small pickers over them.

Reuses the S&T task vocabulary of :mod:`local.registry.data` (topics, technologies, research
fields, people) so the entities of one registry speak about the same things.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

from local.registry.data import (
    _FAMILY_NAMES,
    _FEMALE_NAMES,
    _FIELD_CODES,
    _MALE_NAMES,
    _TOPICS,
    _field_codes_under,
)


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


FIELD_CODES = tuple(_FIELD_CODES)

# (activity, technology, field codes that fit) for every topic × technology.
APPLICATIONS = tuple(
    (topic.activity, technology, _field_codes_under(topic.field_prefixes))
    for topic in _TOPICS
    for technology in topic.technologies
)

FAMILY_NAMES = tuple(_FAMILY_NAMES)
MALE_NAMES = tuple(_MALE_NAMES)
FEMALE_NAMES = tuple(_FEMALE_NAMES)


def person_name(h: int) -> tuple[str, bool]:
    """(full name, is female) drawn with hash bits ``h``."""
    female = h & 1 == 1
    given = FEMALE_NAMES if female else MALE_NAMES
    family = FAMILY_NAMES[(h >> 1) % len(FAMILY_NAMES)]
    return nfc(f"{family} {given[(h >> 5) % len(given)]}"), female


def capitalised(phrase: str) -> str:
    """A technology as a name: "công nghệ sinh học" -> "Công nghệ sinh học", "viễn thám" ->
    "Công nghệ viễn thám"."""
    if phrase.startswith(("công nghệ", "kỹ thuật", "hệ thống")):
        return phrase[:1].upper() + phrase[1:]
    return f"Công nghệ {phrase}"


@lru_cache(maxsize=1 << 12)
def ascii_slug(text: str, separator: str = ".") -> str:
    """Lower-case ASCII of a Vietnamese name, for e-mail addresses: "Đỗ Thu Hà" -> "do.thu.ha"."""
    plain = unicodedata.normalize("NFD", text.replace("Đ", "D").replace("đ", "d"))
    plain = "".join(c for c in plain if not unicodedata.combining(c))
    return separator.join(plain.lower().split())


# Public S&T organisations: {province} is the province as written in a sentence.
INSTITUTES = (
    "Viện Nghiên cứu Ứng dụng Khoa học và Công nghệ {province}",
    "Trung tâm Ứng dụng tiến bộ khoa học và công nghệ {province}",
    "Trung tâm Thông tin và Thống kê khoa học và công nghệ {province}",
    "Trung tâm Kỹ thuật Tiêu chuẩn Đo lường Chất lượng {province}",
    "Trung tâm Khuyến nông {province}",
    "Viện Nghiên cứu Phát triển Kinh tế - Xã hội {province}",
    "Trung tâm Nghiên cứu Giống cây trồng {province}",
    "Trung tâm Nghiên cứu và Phát triển Dược liệu {province}",
    "Trường Cao đẳng Kỹ thuật Công nghiệp {province}",
    "Bệnh viện Đa khoa {province}",
    "Trung tâm Kiểm soát bệnh tật {province}",
    "Trung tâm Quan trắc Tài nguyên và Môi trường {province}",
)


@lru_cache(maxsize=1024)
def institute_name(n: int, province: str) -> str:
    """Public S&T organisation ``n`` of a province (as written in a sentence)."""
    return nfc(INSTITUTES[n].format(province=province))


# Intermediaries of the S&T market: (kind, name template).
INTERMEDIARIES = (
    ("technology_exchange", "Sàn Giao dịch Công nghệ {province}"),
    ("incubator", "Vườn ươm Doanh nghiệp Công nghệ cao {province}"),
    ("startup_support_centre", "Trung tâm Hỗ trợ Khởi nghiệp Đổi mới sáng tạo {province}"),
    ("innovation_space", "Không gian Đổi mới sáng tạo {province}"),
    ("technology_transfer_office", "Văn phòng Chuyển giao Công nghệ {province}"),
)


@lru_cache(maxsize=1024)
def intermediary_name(n: int, province: str) -> str:
    return nfc(INTERMEDIARIES[n][1].format(province=province))


# Short phrases for free text.
EFFECTS = (
    "Tăng năng suất {n}% so với quy trình cũ",
    "Giảm chi phí sản xuất khoảng {n}%",
    "Tạo việc làm cho {n} lao động địa phương",
    "Giảm {n}% lượng chất thải phát sinh",
    "Nâng cao chất lượng sản phẩm, doanh thu tăng {n}%",
    "Rút ngắn {n}% thời gian xử lý hồ sơ",
)
DEMAND_TEMPLATES = (
    "Cần chuyển giao {technology} phục vụ {activity}",
    "Tìm đối tác cung cấp giải pháp {technology} cho {activity}",
    "Đặt hàng nghiên cứu ứng dụng {technology} trong {activity}",
    "Cần tư vấn đổi mới công nghệ {activity}, ưu tiên {technology}",
)
PROJECT_TEMPLATES = (
    "Đổi mới công nghệ {activity} bằng {technology}",
    "Ứng dụng {technology} nâng cao năng lực {activity}",
    "Hoàn thiện và thương mại hóa sản phẩm {activity} ứng dụng {technology}",
)
TECHNOLOGY_TEMPLATES = (
    "{Technology} trong {activity}",
    "Quy trình {activity} ứng dụng {technology}",
    "Hệ thống {technology} phục vụ {activity}",
)
INVENTION_TEMPLATES = (
    "Quy trình {activity} ứng dụng {technology}",
    "Thiết bị hỗ trợ {activity}",
    "Phương pháp {activity} sử dụng {technology}",
    "Hệ thống {technology} dùng trong {activity}",
)
DESIGNS = (
    "Chai đựng nước mắm", "Hộp đựng trà", "Bao bì sản phẩm cói", "Bình gốm", "Lọ đựng mật ong",
    "Túi đựng gạo", "Ghế gỗ", "Đèn trang trí", "Vỏ hộp sữa", "Khay đựng bánh",
)  # fmt: skip
BRAND_WORDS = (
    "Xanh", "Việt", "Food", "Organic", "Tech", "Farm", "Green", "Gold", "Premium", "Quê Hương",
)  # fmt: skip
IPC_CLASSES = (
    "A01G 9/14", "A01G 22/00", "A01K 61/00", "A01N 63/00", "A23B 7/02", "A23L 3/40",
    "A23L 19/00", "A61K 36/00", "B09B 3/00", "B65D 81/00", "C02F 3/28", "C04B 28/04",
    "C05F 11/08", "C12N 1/20", "E04B 1/00", "F24S 20/00", "F26B 9/06", "G01N 33/18",
    "G06F 16/00", "G06Q 50/02", "H02J 7/35", "H04L 67/12",
)  # fmt: skip
LOCARNO_CLASSES = ("09-01", "09-03", "09-05", "06-01", "26-05", "07-01", "11-02", "19-08")
