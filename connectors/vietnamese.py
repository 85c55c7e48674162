"""Vietnamese data repair at the edge: text, numbers, dates, amounts, MST and IP numbers.

Pure functions, no I/O. Each parser either returns a typed value or raises :class:`RepairError`
with a message that quotes the input and says what is wrong, so a caller can quarantine the
value with a readable reason. Nothing is guessed: an ambiguous input raises.

Legacy text. Old provincial spreadsheets hold Vietnamese in 8-bit font encodings, and reach us
as ``str`` decoded with the wrong codec (Windows-1252 or latin-1; for the bytes these encodings
use for letters, both codecs give the same characters):

- TCVN3 ("ABC", .VnTime fonts) is VN3 of TCVN 5712:1993: one byte per letter, the 67
  lower-case letters and the 7 capitals without tone mark (Ă Â Ê Ô Ơ Ư Đ). Capitals with a
  tone mark have no code: typists switched to an all-capital font (.VnTimeH) and typed the
  lower-case codes. Decoding also accepts the 16 further capitals VN2 places between 0xA0 and
  0xFF (VN1's capitals in the C0/C1 control ranges are not accepted: 0x80-0x9F is Windows
  punctuation in real files).
- VNI (VNI-Windows fonts): a base letter followed by a diacritic byte (``a`` + ``ù`` = á,
  ``o`` + ``â`` = ô, ``o`` + ``á`` = ố), with one-byte codes for ơ ư đ, the toned i and ỵ;
  capitals use their own diacritic bytes.

:func:`repair_text` converts such text only when the string could be legacy at all (every
character is latin-1 or Windows punctuation: most Vietnamese Unicode holds ạ, ư, đ or another
letter outside latin-1 and is never looked at twice) and the conversion reads as Vietnamese:
every converted word must be a well-formed Vietnamese syllable (initial, rhyme, tone placement,
spelling rules) in a sane case, or an acronym such as QĐ; and more words must turn from
gibberish into Vietnamese than were already plausible Vietnamese and would change. English,
French or German names, symbols, and Vietnamese that happens to use only latin-1 letters are
left alone; so is a string that reads as Vietnamese in both encodings.
"""

from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache
from typing import Literal

from stdnum import exceptions as stdnum_errors
from stdnum.vn import mst as stdnum_mst

__all__ = [
    "AMOUNT_UNITS",
    "EARLIEST_DATE",
    "IP_TYPES",
    "VIETNAMESE_LETTERS",
    "IpApplicationNumber",
    "RepairError",
    "check_date_range",
    "check_ip_type",
    "decode_tcvn3",
    "decode_vni",
    "encode_tcvn3",
    "encode_vni",
    "ip_type_key",
    "is_vietnamese_syllable",
    "parse_amount",
    "parse_ip_application_number",
    "parse_vn_date",
    "parse_vn_number",
    "repair_text",
    "validate_mst",
]


class RepairError(ValueError):
    """A value that cannot be repaired without guessing; the message quotes it and says why."""


# --------------------------------------------------------------------------------------------
# The alphabet

# Tone marks in the order Vietnamese grammars list them: huyền, hỏi, ngã, sắc, nặng.
_GRAVE, _HOOK, _TILDE, _ACUTE, _DOT = "\u0300", "\u0309", "\u0303", "\u0301", "\u0323"
_TONE_MARKS = (_GRAVE, _HOOK, _TILDE, _ACUTE, _DOT)
_VOWELS = "aăâeêioôơuưy"


def _letter(base: str, tone: str) -> str:
    return unicodedata.normalize("NFC", base + tone)


# The 67 lower-case letters outside ASCII (12 vowels x 6 tones + đ, minus a e i o u y).
_LOWER = (
    *(c for c in (_letter(v, t) for v in _VOWELS for t in ("", *_TONE_MARKS)) if not c.isascii()),
    "đ",
)
#: The 134 Vietnamese letters outside ASCII (TCVN 6909 precomposed, both cases).
VIETNAMESE_LETTERS: frozenset[str] = frozenset(_LOWER + tuple(c.upper() for c in _LOWER))
_UPPER_VOWELS = frozenset(c.upper() for c in _LOWER if c != "đ")


def _tone_of(letter: str) -> str:
    """The tone mark of a Vietnamese letter, or "" (ngang)."""
    decomposed = unicodedata.normalize("NFD", letter)
    return next((mark for mark in _TONE_MARKS if mark in decomposed), "")


# letter (either case) -> its tone mark; letter -> the lower-case letter without its tone.
_TONE_OF = {c: t for c in VIETNAMESE_LETTERS if (t := _tone_of(c))}
_STRIP_TONE_TABLE = str.maketrans(
    {
        c: unicodedata.normalize("NFC", unicodedata.normalize("NFD", c.lower()).replace(t, ""))
        for c, t in _TONE_OF.items()
    }
    | {c: c.lower() for c in VIETNAMESE_LETTERS if c not in _TONE_OF}
)

# What Windows-1252 decodes bytes 0x80-0x9F to: punctuation in real legacy files, passed
# through unchanged by both legacy decoders (as is the no-break space).
_CP1252_HIGH = "".join(bytes([b]).decode("cp1252", "ignore") for b in range(0x80, 0xA0))
_NEUTRAL = "\u00a0" + _CP1252_HIGH + "".join(chr(b) for b in range(0x80, 0xA0))
# A character no legacy string read through cp1252 or latin-1 can hold.
_NOT_LEGACY = re.compile("[^\x00-\xff" + re.escape(_CP1252_HIGH) + "]")

# --------------------------------------------------------------------------------------------
# Syllables: used to judge whether a conversion produced Vietnamese

# One family per line reads better than a list literal.
_INITIALS = "ngh ng nh ch gh gi kh ph qu th tr b c d đ g h k l m n p r s t v x".split()  # noqa: SIM905
_RHYMES = """
a ai ao au ay ac ach am an ang anh ap at
ăc ăm ăn ăng ăp ăt
âc âm ân âng âp ât âu ây
e ec em en eng eo ep et
ê êch êm ên êng ênh êp êt êu
i ia ich im in inh ip it iu iêc iêm iên iêng iêp iêt iêu
o oa oac oach oai oam oan oang oanh oao oap oat oay oăc oăm oăn oăng oăt
oc oe oen oeo oet oi om on ong ooc oong op ot
ô ôc ôi ôm ôn ông ôp ôt
ơ ơi ơm ơn ơp ơt
u ua uân uâng uât uây uc uê uêch uênh ui um un ung uôc uôi uôm uôn uông uôt up ut
uy uya uych uyên uyêt uynh uyp uyt uyu uơ
ư ưa ưc ưi ưm ưn ưng ươc ươi ươm ươn ương ươp ươt ươu ưt ưu
y yêm yên yêt yêu
ak ăk ek ok ôk ơk uk
""".split()  # noqa: SIM905
_SYLLABLE = re.compile(
    "(" + "|".join(_INITIALS) + ")?(" + "|".join(sorted(_RHYMES, key=len, reverse=True)) + ")"
)
_STOP_FINALS = ("c", "ch", "k", "p", "t")  # k: Tây Nguyên names (Đắk Lắk)
_QUALITY_VOWELS = "ăâêôơư"


def _tone_positions(rhyme: str) -> frozenset[int]:
    """Where a rhyme may carry its tone mark (index into the rhyme), old and new styles."""
    vowels = [i for i, c in enumerate(rhyme) if c in _VOWELS]
    quality = [i for i in vowels if rhyme[i] in _QUALITY_VOWELS]
    if quality:  # the vowel with a diacritic: ấ, ướ, uổ, iế
        return frozenset(quality[-1:])
    if rhyme[-1] not in _VOWELS or len(vowels) == 1:  # closed rhyme: the last vowel (oán)
        return frozenset(vowels[-1:])
    if rhyme in ("oa", "oe", "uy"):  # hóa / hoá, thúy / thuý
        return frozenset((0, 1))
    return frozenset((vowels[-2],))  # before the final glide: ái, múa, hoài, khuỷu


_TONE_POSITIONS = {rhyme: _tone_positions(rhyme) for rhyme in _RHYMES}
# Spelling: k, gh, ngh before i e ê (k also y); c, ng before the other vowels; g not before e ê.
_FRONT_ONLY = {"k": "ieêy", "gh": "ieê", "ngh": "ieê"}
_NOT_FRONT = {"c": "ieêy", "ng": "ieêy", "g": "eê"}


@lru_cache(maxsize=8192)
def is_vietnamese_syllable(word: str) -> bool:
    """True if ``word`` (one word, any case, NFC) is a well-formed Vietnamese syllable.

    Checks the initial consonant, the rhyme (vần), at most one tone mark, sitting on the
    rhyme's main vowel (old or new style: hóa and hoá), and that a syllable ending in p, t, c
    or ch carries sắc or nặng. Loanwords outside these rules are rejected, which only makes
    legacy detection more conservative.
    """
    w = word.lower()
    toned = [(i, t) for i, ch in enumerate(w) if (t := _TONE_OF.get(ch))]
    if len(toned) > 1:
        return False
    bare = w.translate(_STRIP_TONE_TABLE)
    m = _SYLLABLE.fullmatch(bare)
    if m is None:
        return False
    initial, rhyme = m[1], m[2]
    if initial in _FRONT_ONLY and rhyme[0] not in _FRONT_ONLY[initial]:
        return False
    if initial in _NOT_FRONT and rhyme[0] in _NOT_FRONT[initial]:
        return False
    if not toned:
        return True
    position, tone = toned[0]
    if position - m.start(2) not in _TONE_POSITIONS[rhyme]:
        return False
    return tone in (_ACUTE, _DOT) or not rhyme.endswith(_STOP_FINALS)


def _sane_case(word: str) -> bool:
    return word == word.lower() or word == word.upper() or word == word.capitalize()


@lru_cache(maxsize=16384)
def _plausible_unicode_word(word: str) -> bool:
    """Could ``word`` be Vietnamese Unicode as it stands (sane case, letters, a syllable)?"""
    return (
        _sane_case(word)  # "vÒ", "cÊp": a capital after a small letter is a legacy code
        and all(c.isascii() or c in VIETNAMESE_LETTERS for c in word)
        and is_vietnamese_syllable(word)
    )


def _is_acronym(word: str) -> bool:
    """Capitals without a vowel, like QĐ, HĐND, ĐMST: not syllables, yet ordinary text."""
    return word.isupper() and not any(c in "AEIOUY" or c in _UPPER_VOWELS for c in word)


def _word_verdict(original: str, converted: str) -> int | None:
    """How a converted word counts towards reading the string as legacy text.

    None: not Vietnamese (a word that is neither a syllable in a sane case nor an acronym such
    as QĐ), which rules the conversion out. +1: gibberish that became Vietnamese (at least two
    letters, so a stray symbol does not count). -1: a word that already read as Vietnamese
    Unicode and would become another one (TCVN3 "cã" for "có"). 0: unchanged, or an acronym.
    A conversion needs a positive total: a tie is left alone, since "Công ty C«ng" may be
    Unicode with a pasted TCVN3 word, and converting it would garble "Công".
    """
    if converted == original or _is_acronym(converted):
        return 0
    if not (_sane_case(converted) and is_vietnamese_syllable(converted)):
        return None
    if _plausible_unicode_word(original):
        return -1
    return 1 if len(converted) >= 2 else 0


# --------------------------------------------------------------------------------------------
# TCVN3 (TCVN 5712:1993 VN3, with VN2's extra capitals when decoding)

# (first byte, letters at consecutive bytes), as laid out in the standard's code table.
_TCVN3_RUNS = (
    (0xA1, "ĂÂÊÔƠƯĐăâêôơưđ"),
    (0xB5, "àảãáạ"),
    (0xBB, "ằẳẵắ"),
    (0xC6, "ặầẩẫấậè"),
    (0xCE, "ẻẽéẹềểễếệìỉ"),
    (0xDC, "ĩíịò"),
    (0xE1, "ỏõóọồổỗốộờởỡớợù"),
    (0xF1, "ủũúụừửữứựỳỷỹýỵ"),
)
_TCVN2_CAPITAL_RUNS = (
    (0xAF, "Ằ"),
    (0xBA, "Ẳ"),
    (0xBF, "ẴẮẦẨẪẤỀ"),
    (0xCD, "Ể"),
    (0xD9, "ỄẾỒ"),
    (0xE0, "Ổ"),
    (0xF0, "Ỗ"),
    (0xFF, "Ố"),
)


def _runs(runs: tuple[tuple[int, str], ...]) -> dict[int, str]:
    return {first + i: ch for first, letters in runs for i, ch in enumerate(letters)}


_TCVN3_BYTE_TO_LETTER = _runs(_TCVN3_RUNS)
_TCVN3_LETTER_TO_BYTE = {ch: b for b, ch in _TCVN3_BYTE_TO_LETTER.items()}
# Every byte >= 0xA1 decodes to the same character in cp1252 and latin-1.
_TCVN3_DECODE = _TCVN3_BYTE_TO_LETTER | _runs(_TCVN2_CAPITAL_RUNS)
_TCVN3_CODES = "".join(chr(b) for b in _TCVN3_DECODE)
_TCVN3_TABLE = str.maketrans({chr(b): ch for b, ch in _TCVN3_DECODE.items()})
_NOT_TCVN3 = re.compile("[^\x00-\x7f" + re.escape(_TCVN3_CODES + _NEUTRAL) + "]")
_TCVN3_WORD = re.compile("[A-Za-z" + re.escape(_TCVN3_CODES) + "]+")


def encode_tcvn3(text: str, *, toned_capitals: Literal["error", "lower"] = "error") -> bytes:
    """The TCVN3 (ABC) bytes of ``text``, as an old .VnTime spreadsheet would hold them.

    TCVN3 has no code for capitals with a tone mark (Ấ, Ở, ...): by default they raise
    ValueError; with ``toned_capitals="lower"`` they are written with the lower-case code, as
    ABC keyboards did. Windows punctuation (curly quotes, dashes) keeps its cp1252 byte; any
    other character without a code raises ValueError.
    """
    out = bytearray()
    for ch in unicodedata.normalize("NFC", text):
        if ch < "\x80":
            out.append(ord(ch))
        elif (code := _TCVN3_LETTER_TO_BYTE.get(ch)) is not None:
            out.append(code)
        elif ch in VIETNAMESE_LETTERS and toned_capitals == "lower":
            out.append(_TCVN3_LETTER_TO_BYTE[ch.lower()])
        else:
            out += _windows_punctuation(ch, "TCVN3")
    return bytes(out)


def decode_tcvn3(data: bytes) -> str:
    """Decode bytes known to be TCVN3 (VN3, plus VN2's capitals); 0x80-0x9F as cp1252."""
    return data.decode("latin-1").translate(_TCVN3_TABLE).translate(_CP1252_C1_TABLE)


# --------------------------------------------------------------------------------------------
# VNI (VNI-Windows)

# Diacritic bytes (as cp1252 characters), lower case then capital.
_VNI_TONE = {  # tone on a vowel without circumflex or breve
    _ACUTE: "ùÙ",
    _GRAVE: "øØ",
    _HOOK: "ûÛ",
    _TILDE: "õÕ",
    _DOT: "ïÏ",
}
_VNI_CIRCUMFLEX = {"": "âÂ", _ACUTE: "áÁ", _GRAVE: "àÀ", _HOOK: "åÅ", _TILDE: "ãÃ", _DOT: "äÄ"}
_VNI_BREVE = {"": "êÊ", _ACUTE: "éÉ", _GRAVE: "èÈ", _HOOK: "úÚ", _TILDE: "üÜ", _DOT: "ëË"}
_VNI_I = {_ACUTE: "íÍ", _GRAVE: "ìÌ", _HOOK: "æÆ", _TILDE: "óÓ", _DOT: "òÒ"}  # one byte each


def _vni_table() -> dict[str, str]:
    """letter -> its VNI sequence (as cp1252 characters), for all 134 letters."""
    table: dict[str, str] = {}
    for case in (0, 1):

        def up(s: str, case: int = case) -> str:
            return s.upper() if case else s

        for tone in ("", *_TONE_MARKS):
            for base in "aeouy":
                if tone:
                    table[up(_letter(base, tone))] = up(base) + _VNI_TONE[tone][case]
            for base, quality in (("a", "\u0302"), ("e", "\u0302"), ("o", "\u0302")):
                table[up(_letter(base + quality, tone))] = up(base) + _VNI_CIRCUMFLEX[tone][case]
            table[up(_letter("a\u0306", tone))] = up("a") + _VNI_BREVE[tone][case]
            for letter, code in (("ơ", "ôÔ"), ("ư", "öÖ")):
                table[up(_letter(letter, tone))] = code[case] + (
                    _VNI_TONE[tone][case] if tone else ""
                )
            if tone:
                table[up(_letter("i", tone))] = _VNI_I[tone][case]
        table[up("ỵ")] = "îÎ"[case]  # one byte, not y + nặng
        table[up("đ")] = "ñÑ"[case]
    return table


_VNI_ENCODE = _vni_table()
_VNI_DECODE = {seq: letter for letter, seq in _VNI_ENCODE.items()}
_VNI_CODES = "".join(sorted({c for seq in _VNI_DECODE for c in seq if not c.isascii()}))
_NOT_VNI = re.compile("[^\x00-\x7f" + re.escape(_VNI_CODES + _NEUTRAL) + "]")
# A VNI sequence: a base and a diacritic byte, or one byte; unknown pairs fail the lookup.
_VNI_MARKS = "".join(sorted({seq[1] for seq in _VNI_DECODE if len(seq) == 2}))
_VNI_SINGLES = "".join(sorted({seq for seq in _VNI_DECODE if len(seq) == 1}))
_VNI_SEQUENCE = re.compile(f"[aeouyAEOUYôöÔÖ][{_VNI_MARKS}]|[{_VNI_SINGLES}{_VNI_MARKS}]")
_VNI_WORD = re.compile("[A-Za-z" + re.escape(_VNI_CODES) + "]+")  # all VNI codes are letters
_NOT_VNI_MARK = "\x00"  # stands for a stray diacritic byte in a converted word


def _vni_to_unicode(match: re.Match[str]) -> str:
    return _VNI_DECODE.get(match.group(), _NOT_VNI_MARK)


def encode_vni(text: str) -> bytes:
    """The VNI-Windows bytes of ``text`` (all 134 letters have a code).

    Windows punctuation (curly quotes, dashes) keeps its cp1252 byte; any other character
    without a code raises ValueError.
    """
    out = bytearray()
    for ch in unicodedata.normalize("NFC", text):
        if ch < "\x80":
            out.append(ord(ch))
        elif (seq := _VNI_ENCODE.get(ch)) is not None:
            out += seq.encode("cp1252")
        else:
            out += _windows_punctuation(ch, "VNI")
    return bytes(out)


def decode_vni(data: bytes) -> str:
    """Decode bytes known to be VNI-Windows; raises ValueError on a diacritic byte with no base."""
    text = data.decode("latin-1").translate(_CP1252_C1_TABLE)
    converted = _VNI_SEQUENCE.sub(_vni_to_unicode, text)
    if _NOT_VNI_MARK in converted:
        raise ValueError(f"{data!r} is not VNI: a diacritic byte follows no base letter")
    return converted


def _windows_punctuation(ch: str, encoding: str) -> bytes:
    try:
        code = ch.encode("cp1252")
    except UnicodeEncodeError:
        code = b""
    if len(code) != 1 or code[0] >= 0xA0:
        raise ValueError(f"{ch!r} (U+{ord(ch):04X}) has no {encoding} code")
    return code


# latin-1 decodes 0x80-0x9F to C1 controls; show them as the cp1252 punctuation they are.
_C1 = re.compile("[\x80-\x9f]")
_CP1252_C1_TABLE = str.maketrans(
    {
        chr(b): bytes([b]).decode("cp1252")
        for b in range(0x80, 0xA0)
        if bytes([b]).decode("cp1252", "ignore")
    }
)

# --------------------------------------------------------------------------------------------
# repair_text


def repair_text(value: str) -> tuple[str, str | None]:
    """Return ``(repaired, kind)``: kind is None (unchanged), "nfc", "tcvn3" or "vni".

    ASCII returns at once. So does NFC text holding a character that no legacy string read
    through cp1252/latin-1 can hold (most Vietnamese has one: ạ, ư, đ, ...); such text not in
    NFC (e.g. NFD from macOS or web forms) is normalised. Text made only of latin-1 and Windows
    punctuation is tried as TCVN3 and as VNI, and converted only when exactly one of the two
    reads as Vietnamese (see the module docstring); otherwise it is returned unchanged.
    """
    if value.isascii():
        return value, None
    if _NOT_LEGACY.search(value) is not None:
        if unicodedata.is_normalized("NFC", value):
            return value, None
        return unicodedata.normalize("NFC", value), "nfc"
    if not _may_gain(value):
        return value, None
    tcvn3 = _from_tcvn3(value)
    vni = _from_vni(value)
    if tcvn3 is not None and vni is None:
        return tcvn3, "tcvn3"
    if vni is not None and tcvn3 is None:
        return vni, "vni"
    return value, None


def _may_gain(value: str) -> bool:
    """False when every word already reads as Vietnamese Unicode: no conversion could win."""
    return not all(w.isascii() or _plausible_unicode_word(w) for w in _TCVN3_WORD.findall(value))


def _from_tcvn3(value: str) -> str | None:
    if _NOT_TCVN3.search(value):
        return None
    # An all-capital font (.VnTimeH) showed lower-case codes as capitals: "HO¹CH" is HOẠCH.
    if _typed_in_capitals(value):
        return _convert_words(value, _TCVN3_WORD, _tcvn3_capitals_word)
    return _convert_words(value, _TCVN3_WORD, _tcvn3_word)


@lru_cache(maxsize=16384)
def _tcvn3_word(word: str) -> tuple[str, int | None]:
    converted = word.translate(_TCVN3_TABLE)
    if _typed_in_capitals(word):
        converted = converted.upper()
    return converted, _word_verdict(word, converted)


@lru_cache(maxsize=16384)
def _tcvn3_capitals_word(word: str) -> tuple[str, int | None]:
    converted = word.translate(_TCVN3_TABLE).upper()
    return converted, _word_verdict(word, converted)


_ASCII_LOWER = re.compile("[a-z]")
_ASCII_UPPER = re.compile("[A-Z]")


def _typed_in_capitals(text: str) -> bool:
    """At least two ASCII letters, all capitals."""
    return _ASCII_LOWER.search(text) is None and len(_ASCII_UPPER.findall(text, 0)) >= 2


def _from_vni(value: str) -> str | None:
    if _NOT_VNI.search(value):
        return None
    return _convert_words(value, _VNI_WORD, _vni_word)


@lru_cache(maxsize=16384)
def _vni_word(word: str) -> tuple[str, int | None]:
    converted = _VNI_SEQUENCE.sub(_vni_to_unicode, word)  # a stray diacritic: no syllable
    return converted, _word_verdict(word, converted)


def _convert_words(
    value: str,
    word_pattern: re.Pattern[str],
    convert: Callable[[str], tuple[str, int | None]],
) -> str | None:
    """Convert each non-ASCII word of ``value``; the result if it reads as Vietnamese."""
    parts: list[str] = []
    score = end = 0
    for m in word_pattern.finditer(value):
        original = m.group()
        if original.isascii():
            continue
        converted, verdict = convert(original)
        if verdict is None:
            return None
        score += verdict
        parts.append(value[end : m.start()])
        parts.append(converted)
        end = m.end()
    if score <= 0:
        return None
    parts.append(value[end:])
    converted = "".join(parts)
    return converted.translate(_CP1252_C1_TABLE) if _C1.search(converted) else converted


# --------------------------------------------------------------------------------------------
# Numbers, dates, amounts

_MINUS = ("-", "\u2212")
_DIGITS = re.compile(r"\d+", re.ASCII)
_GROUPED = re.compile(r"[1-9]\d{0,2}(?:\.\d{3})+(?:,\d+)?", re.ASCII)
_DECIMAL_COMMA = re.compile(r"\d+,\d+", re.ASCII)
# A dot that cannot group thousands: not followed by exactly three digits, or after a lone 0.
_DECIMAL_POINT = re.compile(r"\d+\.(?:\d{1,2}|\d{4,})|0\.\d{3}", re.ASCII)


def parse_vn_number(text: str) -> Decimal:
    """Parse a number written the Vietnamese way: ``.`` groups thousands, ``,`` is decimal.

    Accepted: ``1234567``, ``1.234.567``, ``1.234.567,5``, ``12,5``, an optional leading minus,
    surrounding spaces. A single dot that cannot be a thousands dot (not followed by exactly
    three digits, or after a leading 0: ``914.9``, ``1234.56``, ``0.125``) is read as an
    English decimal point, as spreadsheets exported in an English locale write it; ``1.234`` is
    always one thousand two hundred and thirty-four. Anything else raises.
    """
    s = text.strip()
    negative = s.startswith(_MINUS)
    body = s[1:] if negative else s
    if _DIGITS.fullmatch(body) or _DECIMAL_COMMA.fullmatch(body):
        plain = body.replace(",", ".")
    elif _GROUPED.fullmatch(body):
        plain = body.replace(".", "").replace(",", ".")
    elif _DECIMAL_POINT.fullmatch(body):
        plain = body
    else:
        raise RepairError(f"{text!r} is not a Vietnamese number: {_number_problem(body)}")
    number = Decimal(plain)
    return -number if negative else number


def _number_problem(body: str) -> str:
    if not body:
        return "it is empty"
    if any(not (c.isascii() and c.isdigit()) and c not in ".," for c in body):
        return "it has characters other than digits, '.' and ','"
    if body.count(",") > 1:
        return "more than one decimal comma"
    if "." in body.partition(",")[2]:
        return "a thousands dot after the decimal comma"
    if body[0] in ".," or body[-1] in ".,":
        return "it starts or ends with a separator"
    return (
        "'.' separates thousands and must be followed by exactly three digits"
        " (a decimal is written with ',')"
    )


_DMY = re.compile(r"(\d{1,2})([/.-])(\d{1,2})\2(\d{4})", re.ASCII)
_ISO_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})", re.ASCII)
#: Independence Day: no Vietnamese record is dated before it.
EARLIEST_DATE = date(1945, 9, 2)


def parse_vn_date(text: str, *, earliest: date = EARLIEST_DATE, latest: date | None = None) -> date:
    """Parse ``dd/mm/yyyy`` (``d/m/yyyy``, ``dd-mm-yyyy``, ``dd.mm.yyyy``) or ISO ``yyyy-mm-dd``.

    Day first always (Vietnamese usage): ``05/03/2024`` is 5 March. Raises RepairError for other
    shapes, impossible dates (``31/02/2024``) and dates before ``earliest`` or after ``latest``.
    """
    s = text.strip()
    if m := _ISO_DATE.fullmatch(s):
        year, month, day = int(m[1]), int(m[2]), int(m[3])
    elif m := _DMY.fullmatch(s):
        day, month, year = int(m[1]), int(m[3]), int(m[4])
    else:
        raise RepairError(f"{text!r} is not a date (expected dd/mm/yyyy or yyyy-mm-dd)")
    try:
        parsed = date(year, month, day)
    except ValueError as exc:
        raise RepairError(f"{text!r} is not a valid date: {exc}") from None
    return check_date_range(parsed, text, earliest=earliest, latest=latest)


def check_date_range(
    value: date, text: str, *, earliest: date = EARLIEST_DATE, latest: date | None = None
) -> date:
    """Return ``value`` if it lies in [earliest, latest]; else RepairError quoting ``text``."""
    if value < earliest:
        raise RepairError(f"{text!r} is before {earliest.isoformat()}")
    if latest is not None and value > latest:
        raise RepairError(f"{text!r} is after {latest.isoformat()}")
    return value


#: The units an amount can be expressed in, and their size in VND.
AMOUNT_UNITS = {"vnd": 1, "million_vnd": 1_000_000}
_UNIT_LABELS = {"vnd": "VND", "million_vnd": "million VND"}

# Stated unit (case-folded, spaces collapsed, a trailing "." dropped) -> (canonical label, VND).
_UNIT_SPELLINGS = {  # canonical label, size in VND: spellings ("_" stands for a space)
    ("đồng", 1): "đ ₫ đồng dong vnd vnđ",
    ("nghìn đồng", 1_000): "nghìn ngàn nghìn_đồng ngàn_đồng nghìn_đ ngàn_đ nghìn_vnd ngàn_vnd"
    " nghìn_vnđ ngàn_vnđ",
    ("triệu đồng", 1_000_000): "triệu tr trđ tr.đ triệu_đồng triệu_đ triệu_vnd triệu_vnđ"
    " tr_đồng tr_đ million million_vnd",
    ("tỷ đồng", 1_000_000_000): "tỷ tỉ tỷ_đồng tỉ_đồng tỷ_đ tỉ_đ tỷ_vnd tỉ_vnd tỷ_vnđ tỉ_vnđ"
    " billion billion_vnd",
}
_STATED_UNITS = {
    unicodedata.normalize("NFC", spelling.replace("_", " ")): unit
    for unit, spellings in _UNIT_SPELLINGS.items()
    for spelling in spellings.split()
}
_AMOUNT = re.compile(r"([-\u2212]?[\d.,]+)\s*(.*)", re.ASCII | re.DOTALL)


def parse_amount(
    text_or_number: str | int | float | Decimal, *, unit: str
) -> tuple[Decimal, str | None]:
    """Return the amount expressed in ``unit`` ("vnd" or "million_vnd") and the conversion made.

    A number (or text without a unit) is taken as already in ``unit``: (amount, None). Text with
    a unit is converted: ``"1,5 tỷ"`` -> (1500, "tỷ đồng → million VND") for million_vnd.
    Known units: đ/₫/đồng/VND/VNĐ, nghìn/ngàn, triệu/tr/trđ, tỷ/tỉ (each optionally followed by
    đồng/đ/VND). Unknown units and unparseable numbers raise RepairError; a bad ``unit``
    argument is a programming error (ValueError).
    """
    target = AMOUNT_UNITS.get(unit)
    if target is None:
        raise ValueError(f"unknown amount unit {unit!r} (expected one of {sorted(AMOUNT_UNITS)})")
    if isinstance(text_or_number, bool):
        raise RepairError(f"{text_or_number!r} is a boolean, not an amount")
    if isinstance(text_or_number, int | Decimal):
        return Decimal(text_or_number), None
    if isinstance(text_or_number, float):
        return Decimal(repr(text_or_number)), None
    text = text_or_number
    m = _AMOUNT.fullmatch(unicodedata.normalize("NFC", text.strip()))
    if m is None:
        raise RepairError(f"{text!r} is not an amount: no number found")
    try:
        number = parse_vn_number(m[1])
    except RepairError as exc:
        raise RepairError(f"{text!r} is not an amount: {str(exc).partition(': ')[2]}") from None
    stated = " ".join(m[2].casefold().split()).rstrip(".")
    if not stated:
        return number, None
    known = _STATED_UNITS.get(stated)
    if known is None:
        raise RepairError(f"{text!r} has an unknown unit {m[2].strip()!r}")
    label, factor = known
    amount = number * factor / target
    return _tidy(amount), f"{label} → {_UNIT_LABELS[unit]}"


def _tidy(value: Decimal) -> Decimal:
    """Drop trailing zeros without switching to exponent notation (1500.0 -> 1500)."""
    if value == value.to_integral_value():
        return value.quantize(Decimal(1))
    return value.normalize()


# --------------------------------------------------------------------------------------------
# Enterprise code (MST)


def validate_mst(text: str) -> str:
    """Validate an enterprise code (mã số doanh nghiệp / MST) and return its canonical form.

    Spaces, dots and the branch dash are ignored on input. 10 digits with the mod-11 check
    digit (weights 31 29 23 19 17 13 7 5 3), or those plus a 3-digit branch number (13 digits,
    with or without dash). Canonical: ``0101234567`` or ``0101234567-001``.
    """
    # The common case, already compact and valid: only the checks stdnum's validate() makes.
    if (
        len(text) == 10
        and text.isascii()
        and text.isdigit()
        and text[2:9] != "0000000"
        and text[9] == stdnum_mst.calc_check_digit(text)
    ):
        return text
    try:
        compact = stdnum_mst.validate(text)
    except stdnum_errors.InvalidLength:
        digits = len(stdnum_mst.compact(text))
        raise RepairError(
            f"{text!r} has the wrong length for an MST ({digits} characters; expected 10, "
            "or 13 with a branch number)"
        ) from None
    except stdnum_errors.InvalidFormat:
        raise RepairError(f"{text!r} is not an MST: it has characters other than digits") from None
    except stdnum_errors.InvalidChecksum:
        raise RepairError(f"{text!r} fails the MST check digit") from None
    except stdnum_errors.InvalidComponent:
        raise RepairError(
            f"{text!r} is not an MST: sequence number 0000000 or branch number 000"
        ) from None
    return stdnum_mst.format(compact)


# --------------------------------------------------------------------------------------------
# IP application numbers (số đơn): T-YYYY-NNNNN

#: The right's type -> the type digit its application numbers start with.
IP_TYPES = {"invention": 1, "utility_solution": 2, "industrial_design": 3, "trademark": 4}
_IP_TYPE_NAMES = {digit: name.replace("_", " ") for name, digit in IP_TYPES.items()}
# How registries and statistical forms name the types: the keys above, and the Vietnamese
# names (Law on Intellectual Property), compared case-folded with spaces collapsed.
_IP_TYPE_LABELS = {
    label: key
    for key, labels in {
        "invention": ("invention", "sáng chế"),
        "utility_solution": ("utility_solution", "utility solution", "giải pháp hữu ích"),
        "industrial_design": ("industrial_design", "industrial design", "kiểu dáng công nghiệp"),
        "trademark": ("trademark", "nhãn hiệu", "nhãn hiệu hàng hóa", "nhãn hiệu hàng hoá"),
    }.items()
    for label in labels
}
_IP_SEPARATOR = r"(?:\s*[-.\s\u2010\u2011\u2013]\s*)?"  # -, ., space, hyphen, en dash
_IP_NUMBER = re.compile(rf"(\d){_IP_SEPARATOR}(\d{{4}}){_IP_SEPARATOR}(\d{{5}})", re.ASCII)
_IP_FIRST_YEAR = 1976


def _this_year() -> int:
    return time.localtime().tm_year  # cheaper than date.today() on the per-record path


@dataclass(frozen=True, slots=True)
class IpApplicationNumber:
    """A parsed application number; ``canonical`` is ``T-YYYY-NNNNN``."""

    type_digit: int
    year: int
    serial: int
    canonical: str

    @property
    def ip_type(self) -> str:
        """The right's type, a key of IP_TYPES (e.g. "trademark")."""
        return next(name for name, digit in IP_TYPES.items() if digit == self.type_digit)


def parse_ip_application_number(text: str) -> IpApplicationNumber:
    """Parse an application number of the IP Office of Viet Nam: ``T-YYYY-NNNNN``.

    The parts may be separated by ``-``, ``.`` or spaces, or not at all (``1202301234``: ten
    digits are unambiguous). T is 1-4; the year from 1976 to this year; the serial 5 digits, not
    00000. Anything else raises RepairError.
    """
    m = _IP_NUMBER.fullmatch(text.strip())
    if m is None:
        raise RepairError(f"{text!r} is not an IP application number (expected T-YYYY-NNNNN)")
    type_digit, year, serial = int(m[1]), int(m[2]), int(m[3])
    if type_digit not in _IP_TYPE_NAMES:
        raise RepairError(
            f"{text!r} has type digit {type_digit}; an application number starts with 1 "
            "(invention), 2 (utility solution), 3 (industrial design) or 4 (trademark)"
        )
    if not _IP_FIRST_YEAR <= year <= _this_year():
        raise RepairError(f"{text!r} has an impossible filing year {year}")
    if serial == 0:
        raise RepairError(f"{text!r} has serial number 00000")
    return IpApplicationNumber(type_digit, year, serial, f"{type_digit}-{year}-{serial:05d}")


@lru_cache(maxsize=1024)  # a handful of labels, written the same way in record after record
def ip_type_key(label: str) -> str:
    """The IP_TYPES key for a type as sources name it ("trademark", "Nhãn hiệu", "SÁNG CHẾ").

    The label may be NFD or TCVN3/VNI mojibake (it is repaired first). Unknown: RepairError.
    """
    repaired, _ = repair_text(label)
    key = _IP_TYPE_LABELS.get(" ".join(repaired.casefold().split()))
    if key is None:
        raise RepairError(
            f"unknown IP type {label!r} (expected one of {sorted(IP_TYPES)} or its Vietnamese"
            " name: sáng chế, giải pháp hữu ích, kiểu dáng công nghiệp, nhãn hiệu)"
        )
    return key


def check_ip_type(number: str | IpApplicationNumber, ip_type: str) -> IpApplicationNumber:
    """Parse ``number`` if needed and check its type digit is the one of ``ip_type``.

    ``ip_type`` is a key of IP_TYPES or a name :func:`ip_type_key` knows. Raises RepairError
    for an unknown type or a mismatch, e.g. a trademark filed under an invention number
    (``1-2023-00012``).
    """
    parsed = (
        number if isinstance(number, IpApplicationNumber) else parse_ip_application_number(number)
    )
    expected = IP_TYPES.get(ip_type) or IP_TYPES[ip_type_key(ip_type)]
    if parsed.type_digit != expected:
        raise RepairError(
            f"{parsed.canonical!r} is {_a(_IP_TYPE_NAMES[parsed.type_digit])} application number"
            f" (type {parsed.type_digit}), not {_a(_IP_TYPE_NAMES[expected])} (type {expected})"
        )
    return parsed


def _a(noun: str) -> str:
    return ("an " if noun[0] in "aeiou" else "a ") + noun
