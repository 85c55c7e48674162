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
