"""The entities of registry API v1: landing name -> API path, and the dirt each can carry."""

from __future__ import annotations

# Landing entity name -> resource path under /v1: defined once, by the client of the contract.
from connectors.registry_api import ENTITY_PATHS

ENTITY_OF_PATH = {path: entity for entity, path in ENTITY_PATHS.items()}

# S&T task defects the S&T task gate quarantines (expectations/registry_api_v1/st_task.json).
BAD_KINDS = ("missing_id", "unknown_field_code", "end_before_start", "negative_budget")

# Dirt real sources have (see profiles.yml for what each means and its default share).
DIRT_KINDS = (
    "nfd_text", "tcvn3_text", "vni_text", "mst_check_digit", "ip_type_digit",
    "date_out_of_range", "amount_wrong_unit", "resent", "deleted",
)  # fmt: skip
_TEXT = ("nfd_text", "tcvn3_text", "vni_text")
_ENVELOPE = ("resent", "deleted")

# The dirt kinds each entity carries (in profile mode; the single-registry st_task has only the
# BAD_KINDS). A kind is left out where the entity has no field it could spoil.
ENTITY_DIRT = {
    "st_task": (*_TEXT, "amount_wrong_unit", *_ENVELOPE),
    "result_application": (*_TEXT, "mst_check_digit", "date_out_of_range", "amount_wrong_unit",
                           *_ENVELOPE),
    "ip_right": (*_TEXT, "mst_check_digit", "ip_type_digit", "date_out_of_range", *_ENVELOPE),
    "organisation": (*_TEXT, "mst_check_digit", "date_out_of_range", *_ENVELOPE),
    "expert": (*_TEXT, "date_out_of_range", *_ENVELOPE),
    "technology": (*_TEXT, "mst_check_digit", "date_out_of_range", *_ENVELOPE),
    "technology_demand": (*_TEXT, "mst_check_digit", "date_out_of_range", "amount_wrong_unit",
                          *_ENVELOPE),
    "innovation_project": (*_TEXT, "mst_check_digit", "date_out_of_range", "amount_wrong_unit",
                           *_ENVELOPE),
    "innovation_survey": (*_TEXT, "mst_check_digit", "date_out_of_range", "amount_wrong_unit",
                          *_ENVELOPE),
    "capability_assessment": (*_TEXT, "mst_check_digit", "date_out_of_range", *_ENVELOPE),
}  # fmt: skip

# The date an entity's unit codes (province, commune, and the address text) are in force on:
# the record's own date as its gate suite reads it (expectations/registry_api_v1/<entity>.json
# says which), never its last update. The generators address each record on this date.
UNIT_DATE_FIELDS = {
    "result_application": "report_date",
    "ip_right": "filing_date",
    "expert": "registered_date",
    "technology": "registered_date",
    "technology_demand": "posted_date",
    "innovation_project": "decision_date",
    "innovation_survey": "submitted_date",
    "capability_assessment": "assessment_date",
}


def unit_date(entity: str, record: dict) -> str | None:
    """The ISO date ``record``'s unit codes are read on (see :data:`UNIT_DATE_FIELDS`).

    An S&T task's is its start date, or its last update when that is earlier (a proposed task
    is recorded before it starts); an organisation's its S&T registration date, or its
    establishment date without one.
    """
    if entity == "st_task":
        start, updated = record.get("start_date"), (record.get("updated_at") or "")[:10]
        return min(start, updated) if start and updated else start or updated or None
    if entity == "organisation":
        return record.get("st_registration_date") or record.get("established_date")
    return record.get(UNIT_DATE_FIELDS[entity])
