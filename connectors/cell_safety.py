"""Values that a spreadsheet would run as a formula (CSV / formula injection, OWASP).

Excel and LibreOffice evaluate a cell that starts with ``=``, ``+``, ``-`` or ``@`` (and, in
CSV, a leading tab or carriage return) as a formula: ``=HYPERLINK(…)`` leaks data, ``-2+3+cmd|…``
runs a command through DDE. Sources send such values as text; the landing keeps them as sent
(the payload is the evidence), the gate warns about them (``ops.formula_like`` in warehouse.sql
is this same rule, for the drop suites), and anything that writes a spreadsheet or CSV for people
must pass every cell through :func:`neutralise` (none does yet: the project's CSV writers make
seeds and stand-in drops, read back by machines, where a quote would change the data).

The rule is precise so that numbers typed as text are not flagged: "-5", "-0,3", "-1.234,5",
"+84 912 345 678", "-5%", "-1e5" and a lone "-" (the forms' "none") are plain values; "- text"
and "+84-912-345-678" are not (a spreadsheet evaluates both).
"""

from __future__ import annotations

import re
from typing import Any

# Keep in step with ops.formula_like (connectors/warehouse.sql).
_TRIGGER = re.compile(r"[=+\-@\t\r]")
# A sign alone, or a sign and a plain number: digits with ". , space" separators, an optional
# exponent or percent.
_SIGNED_NUMBER = re.compile(r"[+-]([0-9][0-9., ]*([eE][+-]?[0-9]+)?%?)?")


def looks_like_formula(value: Any) -> bool:
    """Whether a spreadsheet would evaluate `value` (a string) as a formula."""
    if not isinstance(value, str) or not _TRIGGER.match(value):
        return False
    return _SIGNED_NUMBER.fullmatch(value) is None


def neutralise(value: Any) -> Any:
    """`value` for a spreadsheet or CSV people open: a formula gets a leading single quote
    (OWASP), so it shows as the text it is; anything else is returned unchanged."""
    return "'" + value if looks_like_formula(value) else value
