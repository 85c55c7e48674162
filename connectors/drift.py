"""Schema drift: each landed batch checked against the record schema its contract declares.

A source may add a field (kept in the payload, noted in the ledger and the log: the contract
should catch up); a field it removes or sends with another JSON type breaks the contract and
fails the batch before anything is committed, with a message saying what changed.

What counts, per batch:
- *added*: a field the schema does not declare, in any record;
- *removed*: a field the schema requires, absent from every record of the batch (one record
  missing it is that record's problem, for the gate to quarantine);
- *retyped*: a declared field whose value (null aside: nullability is a row rule) has a JSON
  type the schema does not allow, in at least half of the batch's records (and five or more):
  the source changed its format. In fewer records it is those records' problem: landing marks
  them (`landing_issue`, unless the standardiser repaired the value, e.g. "850,5" → 850.5) and
  the gate quarantines them, so one bad record does not hold up its source.

Schemas are read from the contract's OpenAPI file: the record schema of entity `ip_right` is
`components.schemas.IpRight` (the entity name in CamelCase), following `$ref`, `allOf`,
`oneOf`/`anyOf` and `enum`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from connectors.errors import SourceResponseError

CONTRACTS_DIR = Path(__file__).resolve().parent / "contracts"

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
    "null": (type(None),),
}
_TYPE_NAMES = {
    str: "string", int: "integer", float: "number", bool: "boolean", list: "array", dict: "object",
}  # fmt: skip
_EXAMPLES = 3  # record ids quoted per finding
_RETYPED_DRIFT_MIN = 5  # records retyped before a batch-wide change counts as drift


class SchemaDriftError(SourceResponseError):
    """The batch's records no longer match the schema their contract declares."""


@dataclass(frozen=True, slots=True)
class RecordShape:
    name: str  # e.g. registry-api-v1 IpRight
    fields: dict[str, frozenset[type]]  # field → Python types its non-null values may have
    required: frozenset[str]


@dataclass(slots=True)
class _Finding:
    records: int = 0
    examples: list[str] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)

    def add(self, record: dict[str, Any], seen: str | None = None) -> None:
        self.records += 1
        if len(self.examples) < _EXAMPLES:
            self.examples.append(str(record.get("id", "?")))
        if seen is not None:
            self.seen.add(seen)


class DriftMonitor:
    """Observes the records of one batch; `finish()` judges them (see the module docstring)."""

    def __init__(self, shape: RecordShape, id_field: str = "id") -> None:
        self._shape = shape
        self._fields = {name: tuple(types) for name, types in shape.fields.items()}
        self._id_field = id_field
        self._records = 0
        self._not_seen_required = set(shape.required)
        self._added: dict[str, _Finding] = {}
        self._retyped: dict[str, _Finding] = {}

    def observe(self, record: dict[str, Any]) -> None:
        if not isinstance(record, dict):
            return
        self._records += 1
        if self._not_seen_required:
            self._not_seen_required.difference_update(record)
        fields = self._fields
        for key, value in record.items():
            allowed = fields.get(key)
            if allowed is None:
                self._finding(self._added, key).add(self._keyed(record))
            elif value is not None and type(value) not in allowed:
                seen = _TYPE_NAMES.get(type(value), "object")
                self._finding(self._retyped, key).add(self._keyed(record), seen)

    def finish(self) -> dict[str, Any] | None:
        """Raise SchemaDriftError on removed or retyped fields; else a note of the fields added
        and of those retyped in a few records only (for landing to mark), or None."""
        problems = []
        if self._records and self._not_seen_required:
            problems.append(
                f"required field(s) {', '.join(sorted(self._not_seen_required))} missing from"
                f" all {self._records} records"
            )
        row_problems = {}
        for name, finding in sorted(self._retyped.items()):
            expected = "/".join(sorted(_TYPE_NAMES.get(t, "null") for t in self._fields[name]))
            if finding.records < max(_RETYPED_DRIFT_MIN, self._records / 2):
                row_problems[name] = {
                    "records": finding.records,
                    "examples": finding.examples,
                    "expected": expected,
                }
                continue
            problems.append(
                f"field {name!r} is {'/'.join(sorted(finding.seen))} in {finding.records} records"
                f" (e.g. id {', '.join(finding.examples)}) but the contract says {expected}"
            )
        if problems:
            raise SchemaDriftError(
                f"the batch does not match {self._shape.name}: {'; '.join(problems)}."
                " Nothing of it was landed; update the contract (and its suite) if the change is"
                " intended, or ask the source to restore its format."
            )
        note: dict[str, Any] = {}
        if self._added:
            note["added"] = {
                name: {"records": f.records, "examples": f.examples}
                for name, f in sorted(self._added.items())
            }
        if row_problems:
            note["retyped_in_some_records"] = row_problems
        return note or None

    def _keyed(self, record: dict[str, Any]) -> dict[str, Any]:
        return record if self._id_field == "id" else {"id": record.get(self._id_field)}

    @staticmethod
    def _finding(findings: dict[str, _Finding], key: str) -> _Finding:
        finding = findings.get(key)
        if finding is None:
            finding = findings[key] = _Finding()
        return finding


def schema_name(entity: str) -> str:
    return "".join(part.capitalize() for part in entity.split("_"))


@cache
def _openapi(contract: str) -> dict[str, Any]:
    path = CONTRACTS_DIR / f"{contract.replace('-', '_')}.openapi.yaml"
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@cache
def record_shape(contract: str, entity: str) -> RecordShape:
    """The record schema of `entity` in `contract`'s OpenAPI file, flattened."""
    schemas = _openapi(contract)["components"]["schemas"]
    name = schema_name(entity)
    if name not in schemas:
        raise KeyError(f"{contract}: no schema {name!r} for entity {entity!r}")
    fields: dict[str, set[type]] = {}
    required: set[str] = set()
    _collect(schemas, schemas[name], fields, required)
    return RecordShape(
        name=f"{contract} {name}",
        fields={key: frozenset(types) for key, types in fields.items()},
        required=frozenset(required),
    )


def _collect(
    schemas: dict[str, Any], schema: dict[str, Any], fields: dict[str, set[type]], required: set
) -> None:
    schema = _resolve(schemas, schema)
    for part in schema.get("allOf", []):
        _collect(schemas, part, fields, required)
    required.update(schema.get("required", []))
    for key, prop in schema.get("properties", {}).items():
        fields.setdefault(key, set()).update(_types(schemas, prop))


def _types(schemas: dict[str, Any], schema: dict[str, Any]) -> set[type]:
    schema = _resolve(schemas, schema)
    types: set[type] = set()
    declared = schema.get("type")
    for name in [declared] if isinstance(declared, str) else declared or []:
        types.update(_JSON_TYPES[name])
    for key in ("oneOf", "anyOf", "allOf"):
        for part in schema.get(key, []):
            types.update(_types(schemas, part))
    if not types and "enum" in schema:
        types.update(type(value) for value in schema["enum"])
    if not types:  # an unconstrained schema allows anything
        types.update(t for group in _JSON_TYPES.values() for t in group)
    return types


def _resolve(schemas: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = schemas[schema["$ref"].rsplit("/", 1)[-1]]
    return schema
