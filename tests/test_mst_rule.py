"""One MST rule everywhere: the Python rule, the SQL ops.mst_valid and python-stdnum agree.

The Python rule (validate_mst) takes a code as sent and returns the canonical form landing
stores; the SQL function checks values already in the warehouse, so it accepts exactly the
canonical forms of valid codes. python-stdnum's vn.mst is the oracle for both.
"""

from __future__ import annotations

import psycopg
import pytest
from stdnum.vn import mst as stdnum_mst

from connectors.vietnamese import RepairError, validate_mst

# (code as sent, valid according to python-stdnum). The flag pins the oracle too: a stdnum
# upgrade that changes the rule fails here rather than moving both sides silently.
CASES = [
    # 10 digits
    ("0100233488", True),
    ("0100233487", False),  # wrong check digit
    ("1002334070", True),  # check digit 0
    ("1002334000", False),  # the first nine give check value 10: no tenth digit is valid
    ("1002334009", False),
    ("0100000003", False),  # sequence 0000000 (check digit right)
    ("9836900602", True),  # stdnum checks no province code: 98 is not one, still valid
    ("9901234560", True),
    ("0001234561", True),
    # 13 digits: branch codes
    ("0100233488-001", True),
    ("0100233488-999", True),
    ("0100233488002", True),  # without the dash
    ("0100233488-000", False),  # branch 000
    ("0100233488000", False),
    ("9836900602-000", False),
    ("0100233487-001", False),  # wrong check digit on the parent code
    ("0100000003-001", False),  # sequence 0000000
    # separators stdnum ignores: spaces, dots, dashes anywhere, surrounding whitespace
    ("01.00.233.488", True),
    ("0100 233 488", True),
    (" 0100233488 ", True),
    ("\t0100233488\n", True),
    ("0100233488 - 002", True),
    ("010023348-8002", True),
    ("0100233488--002", True),
    ("0100233488-", True),
    ("-0100233488", True),
    ("0100233488\u2010002", True),  # a Unicode hyphen
    ("\uff10\uff11\uff10\uff10\uff12\uff13\uff13\uff14\uff18\uff18", True),  # full-width digits
    ("0100\t233488", False),  # a tab inside is no separator
    # wrong lengths (12 digits too: stdnum takes only 10 or 13)
    ("010023348", False),
    ("01002334888", False),
    ("010023348800", False),
    ("0100233488-2", False),
    ("0100233488-0002", False),
    ("01002334880020", False),
    # letters, empty, null-ish
    ("010023348A", False),
    ("O100233488", False),
    ("0100233488-00A", False),
    ("", False),
    ("   ", False),
    ("-", False),
    ("null", False),
    ("None", False),
]


def _canonical(code: str) -> str | None:
    """What the oracle says landing should store for `code` (None: invalid)."""
    return stdnum_mst.format(code) if stdnum_mst.is_valid(code) else None


@pytest.mark.parametrize(("code", "valid"), CASES)
def test_the_python_rule_agrees_with_stdnum(code: str, valid: bool) -> None:
    assert stdnum_mst.is_valid(code) is valid
    try:
        ours = validate_mst(code)
    except RepairError:
        ours = None
    assert ours == _canonical(code)


def test_the_sql_rule_agrees_with_stdnum(warehouse_url: str) -> None:
    codes = [code for code, _ in CASES]
    canonical = [_canonical(code) for code in codes]
    with psycopg.connect(warehouse_url) as conn:
        got = conn.execute(
            "select ops.mst_valid(code) from unnest(%s::text[]) with ordinality as c(code, n)"
            " order by n",
            (codes,),
        ).fetchall()
        # What landing stores for every valid code passes the gate.
        stored = conn.execute(
            "select bool_and(ops.mst_valid(code)) from unnest(%s::text[]) as c(code)",
            ([c for c in canonical if c is not None],),
        ).fetchone()
        absent = conn.execute("select ops.mst_valid(null)").fetchone()
    # Valid exactly when stdnum accepts the code and it is already in canonical form.
    expected = [c is not None and c == code for code, c in zip(codes, canonical, strict=True)]
    disagree = [
        (code, row[0])
        for code, row, want in zip(codes, got, expected, strict=True)
        if row[0] != want
    ]
    assert disagree == []
    assert stored == (True,)
    assert absent == (None,)  # no code is not an invalid code: callers decide
