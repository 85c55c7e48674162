"""connectors.vietnamese: legacy text from real byte sequences, and the value parsers.

The legacy strings are built from bytes written out by hand from the code tables (TCVN 5712:1993
and VNI-Windows), then decoded the way a misconfigured reader does (cp1252 or latin-1), so the
tests check the tables rather than the encoder against itself. Where glibc's iconv knows
TCVN5712-1 it is used as an independent oracle for the TCVN3 table.
"""

from __future__ import annotations

import shutil
import subprocess
import unicodedata
from datetime import date
from decimal import Decimal

import pytest

from connectors.vietnamese import (
    IP_TYPES,
    VIETNAMESE_LETTERS,
    IpApplicationNumber,
    RepairError,
    check_ip_type,
    decode_tcvn3,
    decode_vni,
    encode_tcvn3,
    encode_vni,
    ip_type_key,
    is_vietnamese_syllable,
    parse_amount,
    parse_ip_application_number,
    parse_vn_date,
    parse_vn_number,
    repair_text,
    validate_mst,
)

COMPANY = "Công ty Cổ phần Công nghệ Hà Nam"
# TCVN3: ô=AB ổ=E6 ầ=C7 ệ=D6 à=B5
COMPANY_TCVN3 = b"C\xabng ty C\xe6 ph\xc7n C\xabng ngh\xd6 H\xb5 Nam"
# VNI: o+â = ô, o+å = ổ, a+à = ầ, e+ä = ệ, a+ø = à
COMPANY_VNI = b"Co\xe2ng ty Co\xe5 pha\xe0n Co\xe2ng nghe\xe4 Ha\xf8 Nam"

UNIVERSITY = "Trường Đại học Bách khoa Hà Nội"
# TCVN3: ư=AD (a soft hyphen in cp1252) ờ=EA Đ=A7 ạ=B9 ọ=E4 á=B8 à=B5 ộ=E9
UNIVERSITY_TCVN3 = b"Tr\xad\xeang \xa7\xb9i h\xe4c B\xb8ch khoa H\xb5 N\xe9i"
# VNI: ư=ö, ơ+ø = ờ, Đ=Ñ, a+ï = ạ, o+ï = ọ, a+ù = á, a+ø = à, o+ä = ộ
UNIVERSITY_VNI = b"Tr\xf6\xf4\xf8ng \xd1a\xefi ho\xefc Ba\xf9ch khoa Ha\xf8 No\xe4i"

UPPER = [c for c in VIETNAMESE_LETTERS if c.isupper()]
LOWER = [c for c in VIETNAMESE_LETTERS if c.islower()]
TONED_CAPITALS = [c for c in UPPER if c not in "ĂÂÊÔƠƯĐ"]


# --------------------------------------------------------------------------------------------
# The alphabet and the code tables


def test_the_alphabet_has_134_letters_67_in_each_case() -> None:
    assert len(VIETNAMESE_LETTERS) == 134
    assert len(UPPER) == len(LOWER) == 67
    assert {c.upper() for c in LOWER} == set(UPPER)
    assert all(unicodedata.is_normalized("NFC", c) and not c.isascii() for c in VIETNAMESE_LETTERS)


@pytest.mark.parametrize("codec", ["cp1252", "latin-1"])
@pytest.mark.parametrize(
    ("raw", "expected", "kind"),
    [
        (COMPANY_TCVN3, COMPANY, "tcvn3"),
        (UNIVERSITY_TCVN3, UNIVERSITY, "tcvn3"),
        (COMPANY_VNI, COMPANY, "vni"),
        (UNIVERSITY_VNI, UNIVERSITY, "vni"),
        # VNI capitals have their own diacritic bytes: ĐẠI HỌC = Ñ A+Ï I  H O+Ï C
        (b"\xd1A\xcfI HO\xcfC QUO\xc1C GIA", "ĐẠI HỌC QUỐC GIA", "vni"),
        # TCVN3 acronyms next to words: Quyết định số 1158/QĐ-TTg
        (b"Quy\xd5t \xae\xdenh s\xe8 1158/Q\xa7-TTg", "Quyết định số 1158/QĐ-TTg", "tcvn3"),
    ],
)
def test_legacy_text_read_with_the_wrong_codec_is_converted(
    raw: bytes, expected: str, kind: str, codec: str
) -> None:
    assert repair_text(raw.decode(codec)) == (expected, kind)


def test_the_encoders_write_the_published_bytes() -> None:
    assert encode_tcvn3(COMPANY) == COMPANY_TCVN3
    assert encode_tcvn3(UNIVERSITY) == UNIVERSITY_TCVN3
    assert encode_vni(COMPANY) == COMPANY_VNI
    assert encode_vni(UNIVERSITY) == UNIVERSITY_VNI
    assert decode_tcvn3(COMPANY_TCVN3) == COMPANY
    assert decode_vni(UNIVERSITY_VNI) == UNIVERSITY


def test_tcvn3_capitals_typed_in_an_all_capital_font_come_back_as_capitals() -> None:
    # .VnTimeH: ASCII capitals and the lower-case codes (ô=AB, ổ=E6, ầ=C7), all shown as caps.
    heading = b"C\xabNG TY C\xe6 PH\xc7N".decode("cp1252")
    assert repair_text(heading) == ("CÔNG TY CỔ PHẦN", "tcvn3")
    # Capitals TCVN3 does have (Ô=A4, Đ=A7) are taken as they are.
    assert repair_text(b"C\xa4NG NGH\xd6 \xa7\xb9I".decode("cp1252")) == ("CÔNG NGHỆ ĐẠI", "tcvn3")


def test_windows_punctuation_in_legacy_text_stays_punctuation() -> None:
    quoted = b"\x93C\xabng ngh\xd6 sinh h\xe4c\x94 \x96 2024".decode("cp1252")
    assert repair_text(quoted) == ("“Công nghệ sinh học” – 2024", "tcvn3")
    # latin-1 readers show the same bytes as C1 controls: they become the punctuation too.
    assert repair_text(quoted.encode("cp1252").decode("latin-1")) == (
        "“Công nghệ sinh học” – 2024",
        "tcvn3",
    )


def test_vni_round_trips_all_134_letters() -> None:
    for letter in sorted(VIETNAMESE_LETTERS):
        assert decode_vni(encode_vni(letter)) == letter, letter
    assert len({encode_vni(c) for c in VIETNAMESE_LETTERS}) == 134  # no two letters share a code


def test_tcvn3_round_trips_its_74_letters_and_refuses_toned_capitals() -> None:
    own = [c for c in VIETNAMESE_LETTERS if c not in TONED_CAPITALS]
    assert len(own) == 74 and len(TONED_CAPITALS) == 60
    for letter in own:
        code = encode_tcvn3(letter)
        assert len(code) == 1 and code[0] >= 0xA1, letter
        assert decode_tcvn3(code) == letter
    assert len({encode_tcvn3(c) for c in own}) == 74
    for capital in TONED_CAPITALS:
        with pytest.raises(ValueError, match="no TCVN3 code"):
            encode_tcvn3(capital)
        # ABC keyboards wrote the lower-case code.
        assert decode_tcvn3(encode_tcvn3(capital, toned_capitals="lower")) == capital.lower()


def test_the_encoders_refuse_characters_without_a_code() -> None:
    for encode in (encode_tcvn3, encode_vni):
        with pytest.raises(ValueError, match="U\\+4E2D"):
            encode("中")
        assert encode("a – b") == b"a \x96 b"  # Windows punctuation keeps its cp1252 byte


@pytest.mark.skipif(shutil.which("iconv") is None, reason="no iconv")
def test_tcvn3_table_agrees_with_glibc_iconv() -> None:
    codes = bytes(b for b in range(0xA1, 0x100) if b not in range(0xB0, 0xB5))  # not the marks
    result = subprocess.run(
        ["iconv", "-f", "TCVN5712-1", "-t", "UTF-8"], input=codes, capture_output=True, check=False
    )
    if result.returncode != 0:
        pytest.skip("this iconv has no TCVN5712-1")
    assert decode_tcvn3(codes) == result.stdout.decode("utf-8")


# --------------------------------------------------------------------------------------------
# repair_text: what is left alone


def test_nfd_text_is_normalised() -> None:
    assert repair_text(unicodedata.normalize("NFD", COMPANY)) == (COMPANY, "nfc")
    assert repair_text(unicodedata.normalize("NFD", "Hà Nam")) == ("Hà Nam", "nfc")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Research on IoT in rice farming",
        COMPANY,
        UNIVERSITY,
        "Nghiên cứu ứng dụng công nghệ IoT trong sản xuất lúa tại Ninh Bình",
        "Hà Nam",  # only latin-1 letters, yet Unicode: TCVN3 would read "Hổ Nam"
        "Công ty Cà phê Hòa Bình",
        "François Müller",
        "Noël Coward",
        "Zoë Saldaña",
        "Jürgen Habermas, Zürich",
        "naïve café, déjà vu, crème brûlée",
        "Søren Kierkegaard; Ångström",
        "Œuvres complètes",
        "25°C ± 2",
        "3 × 4 m²",
        "© 2024 Công ty",
        "«Hà Nội»",
        "“Hà Nội” – 2024",
        "Số: /KH-UBND",  # TCVN3 "Sè" would be "Số", but "Sè" is Vietnamese as it stands
        "中文名称",
    ],
)
def test_text_that_is_not_legacy_is_left_alone(text: str) -> None:
    assert repair_text(text) == (text, None)


def test_unicode_mixed_with_a_pasted_legacy_word_is_left_alone() -> None:
    # "Công" would become "Cụng" if the whole string were read as TCVN3: a tie, not converted.
    assert repair_text("Công ty C«ng") == ("Công ty C«ng", None)


@pytest.mark.parametrize(
    "word", ["Nguyễn", "giếng", "quốc", "gì", "hoá", "hóa", "thuý", "khuỷu", "Đắk", "xoong"]
)
def test_vietnamese_syllables_are_recognised(word: str) -> None:
    assert is_vietnamese_syllable(word)


@pytest.mark.parametrize(
    "word", ["Müller", "François", "cöng", "hóá", "kan", "ghong", "kưa", "ngheọ", "học"[::-1]]
)
def test_non_syllables_are_rejected(word: str) -> None:
    assert not is_vietnamese_syllable(word)


# --------------------------------------------------------------------------------------------
# Numbers


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.234.567,5", Decimal("1234567.5")),
        ("1.234", Decimal(1234)),
        ("12,5", Decimal("12.5")),
        ("1234567", Decimal(1234567)),
        ("  -1.250,75 ", Decimal("-1250.75")),
        ("0,5", Decimal("0.5")),
        ("0", Decimal(0)),
        ("\u22121.000", Decimal(-1000)),
        # A dot that cannot group thousands is an English decimal point (English-locale files).
        ("914.9", Decimal("914.9")),
        ("1234.56", Decimal("1234.56")),
        ("0.123", Decimal("0.123")),
    ],
)
def test_vietnamese_numbers_parse(text: str, expected: Decimal) -> None:
    assert parse_vn_number(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("1,2,3", "more than one decimal comma"),
        ("1.23.4", "exactly three digits"),
        ("1234.567", "exactly three digits"),  # neither a thousands group nor Vietnamese
        ("1.234.5", "exactly three digits"),
        ("12a", "characters other than digits"),
        ("", "empty"),
        ("   ", "empty"),
        ("1,234.5", "thousands dot after the decimal comma"),
        (",5", "starts or ends with a separator"),
        ("1.234,", "starts or ends with a separator"),
    ],
)
def test_ambiguous_or_malformed_numbers_raise(text: str, reason: str) -> None:
    with pytest.raises(RepairError, match=reason) as caught:
        parse_vn_number(text)
    assert repr(text) in str(caught.value)


# --------------------------------------------------------------------------------------------
# Dates


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("05/03/2024", date(2024, 3, 5)),  # day first: 5 March
        ("5/3/2024", date(2024, 3, 5)),
        ("05-03-2024", date(2024, 3, 5)),
        ("05.03.2024", date(2024, 3, 5)),
        ("2024-03-05", date(2024, 3, 5)),
        (" 29/02/2024 ", date(2024, 2, 29)),
        ("02/09/1945", date(1945, 9, 2)),
    ],
)
def test_dates_parse_day_first(text: str, expected: date) -> None:
    assert parse_vn_date(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("31/02/2024", "not a valid date: day is out of range"),
        ("29/02/2023", "not a valid date"),
        ("05/13/2024", "not a valid date: month must be in 1..12"),  # never read as 13 May
        ("01/09/1945", "before 1945-09-02"),
        ("05/03/24", "not a date"),
        ("2024/03/05", "not a date"),
        ("05/03-2024", "not a date"),
        ("5 March 2024", "not a date"),
        ("", "not a date"),
    ],
)
def test_bad_dates_raise_with_the_reason(text: str, reason: str) -> None:
    with pytest.raises(RepairError, match=reason) as caught:
        parse_vn_date(text)
    assert repr(text) in str(caught.value)


def test_date_bounds_are_the_callers() -> None:
    assert parse_vn_date("01/01/2000", earliest=date(2000, 1, 1)) == date(2000, 1, 1)
    with pytest.raises(RepairError, match="after 2030-12-31"):
        parse_vn_date("01/01/2031", latest=date(2030, 12, 31))


# --------------------------------------------------------------------------------------------
# Amounts


@pytest.mark.parametrize(
    ("given", "unit", "expected", "conversion"),
    [
        ("1,5 tỷ", "million_vnd", Decimal(1500), "tỷ đồng → million VND"),
        ("1,5 tỉ đồng", "million_vnd", Decimal(1500), "tỷ đồng → million VND"),
        ("250 triệu đồng", "million_vnd", Decimal(250), "triệu đồng → million VND"),
        ("120 trđ", "million_vnd", Decimal(120), "triệu đồng → million VND"),
        ("120 Tr.đ", "million_vnd", Decimal(120), "triệu đồng → million VND"),
        ("1.250.000.000 đ", "million_vnd", Decimal(1250), "đồng → million VND"),
        ("1.250.000.000 VNĐ", "million_vnd", Decimal(1250), "đồng → million VND"),
        ("1.250.000.000đ", "vnd", Decimal(1250000000), "đồng → VND"),
        ("350.500.000 VND", "million_vnd", Decimal("350.5"), "đồng → million VND"),
        ("500 nghìn đồng", "vnd", Decimal(500000), "nghìn đồng → VND"),
        ("2,5 triệu", "vnd", Decimal(2500000), "triệu đồng → VND"),
        ("1.500", "million_vnd", Decimal(1500), None),  # no unit: already in million VND
        (1500, "million_vnd", Decimal(1500), None),
        (12.5, "million_vnd", Decimal("12.5"), None),
        (Decimal("7.25"), "vnd", Decimal("7.25"), None),
    ],
)
def test_amounts_are_expressed_in_the_unit_asked_for(
    given: str | float, unit: str, expected: Decimal, conversion: str | None
) -> None:
    amount, applied = parse_amount(given, unit=unit)
    assert (amount, applied) == (expected, conversion)
    assert str(amount) == str(expected)  # no exponent notation or stray ".0"


def test_amount_with_an_nfd_unit_is_understood() -> None:
    assert parse_amount(unicodedata.normalize("NFD", "2 tỷ đồng"), unit="million_vnd") == (
        Decimal(2000),
        "tỷ đồng → million VND",
    )


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ("1,5 USD", "unknown unit 'USD'"),
        ("250 triệu yên", "unknown unit"),
        ("khoảng 1 tỷ", "no number found"),
        ("1.23.4 tỷ", "exactly three digits"),
        ("", "no number found"),
        (True, "boolean"),
    ],
)
def test_unknown_units_and_bad_numbers_raise(given: str | bool, reason: str) -> None:
    with pytest.raises(RepairError, match=reason):
        parse_amount(given, unit="million_vnd")


def test_an_unknown_target_unit_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown amount unit 'usd'"):
        parse_amount("1", unit="usd")


# --------------------------------------------------------------------------------------------
# Enterprise codes


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("0100233488", "0100233488"),
        (" 01.00.233.488 ", "0100233488"),
        ("0101234565", "0101234565"),
        ("0314409058-002", "0314409058-002"),
        ("0314409058002", "0314409058-002"),
        ("0314409058 - 002", "0314409058-002"),
    ],
)
def test_valid_enterprise_codes_come_back_canonical(text: str, canonical: str) -> None:
    assert validate_mst(text) == canonical


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("0101234568", "fails the MST check digit"),
        ("0100233480", "fails the MST check digit"),
        ("12345", "wrong length for an MST \\(5 characters"),
        ("101234565", "wrong length"),  # leading zero lost in a spreadsheet
        ("01012345AB", "characters other than digits"),
        ("0100000000", "sequence number 0000000"),
        ("0314409058-000", "branch number 000"),
    ],
)
def test_invalid_enterprise_codes_raise_naming_the_failure(text: str, reason: str) -> None:
    with pytest.raises(RepairError, match=reason) as caught:
        validate_mst(text)
    assert repr(text) in str(caught.value)


# --------------------------------------------------------------------------------------------
# IP application numbers


@pytest.mark.parametrize(
    "text", ["1-2023-01234", "1 2023 01234", "1.2023.01234", "1–2023–01234", " 1202301234 "]
)
def test_application_number_variants_parse_to_one_canonical_form(text: str) -> None:
    assert parse_ip_application_number(text) == IpApplicationNumber(1, 2023, 1234, "1-2023-01234")


def test_application_number_knows_its_type() -> None:
    assert parse_ip_application_number("4-2024-00001").ip_type == "trademark"
    assert IP_TYPES == {
        "invention": 1,
        "utility_solution": 2,
        "industrial_design": 3,
        "trademark": 4,
    }


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("5-2023-01234", "type digit 5"),
        ("1-2023-1234", "not an IP application number"),  # serial must have 5 digits
        ("1-23-01234", "not an IP application number"),
        ("VN1-2023-01234", "not an IP application number"),
        ("1-1970-01234", "impossible filing year 1970"),
        (f"1-{date.today().year + 1}-01234", "impossible filing year"),
        ("1-2023-00000", "serial number 00000"),
    ],
)
def test_bad_application_numbers_raise(text: str, reason: str) -> None:
    with pytest.raises(RepairError, match=reason):
        parse_ip_application_number(text)


def test_the_type_digit_must_match_the_rights_type() -> None:
    assert check_ip_type("4-2023-00012", "trademark").canonical == "4-2023-00012"
    with pytest.raises(RepairError) as caught:
        check_ip_type("1-2023-00012", "trademark")
    assert str(caught.value) == (
        "'1-2023-00012' is an invention application number (type 1), not a trademark (type 4)"
    )
    with pytest.raises(RepairError, match="not an industrial design \\(type 3\\)"):
        check_ip_type("2-2023-00012", "industrial_design")


@pytest.mark.parametrize(
    ("label", "key"),
    [
        ("invention", "invention"),
        ("Sáng chế", "invention"),
        ("GIẢI PHÁP HỮU ÍCH", "utility_solution"),
        ("kiểu dáng  công nghiệp", "industrial_design"),
        (unicodedata.normalize("NFD", "Nhãn hiệu"), "trademark"),
        (encode_tcvn3("nhãn hiệu").decode("cp1252"), "trademark"),
    ],
)
def test_ip_types_are_known_by_their_vietnamese_names(label: str, key: str) -> None:
    assert ip_type_key(label) == key
    check_ip_type(f"{IP_TYPES[key]}-2023-00012", label)


def test_an_unknown_ip_type_raises() -> None:
    with pytest.raises(RepairError, match="unknown IP type 'patent'"):
        check_ip_type("1-2023-00012", "patent")


def test_mst_validation_agrees_with_python_stdnum_on_every_kind_of_code() -> None:
    import random

    from stdnum.vn import mst as stdnum_mst

    rng = random.Random(7)
    codes = [f"{rng.randrange(10**10):010d}" for _ in range(3000)]
    codes += [c[:9] + stdnum_mst.calc_check_digit(c) for c in codes[:1000]]  # valid ones
    codes += ["0100000005", "0300000000"]
    for code in codes:
        try:
            ours = validate_mst(code)
        except RepairError:
            ours = None
        expected = stdnum_mst.format(code) if stdnum_mst.is_valid(code) else None
        assert ours == expected, code
