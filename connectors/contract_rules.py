"""The landing rules each contract brings: its standardiser (field specs) and drift check."""

from __future__ import annotations

from functools import cache

from connectors.drift import CONTRACTS_DIR, DriftMonitor, record_shape
from connectors.landing import Envelope, RecordRules
from connectors.standardise import Standardiser, load_field_specs


@cache
def standardiser(contract: str, entity: str) -> Standardiser | None:
    """The standardiser of `entity` from `connectors/contracts/<contract>.fields.yml`."""
    specs = load_field_specs(CONTRACTS_DIR / f"{contract.replace('-', '_')}.fields.yml")
    return specs.get(entity)


def api_rules(
    contract: str, entity: str, envelope: Envelope | None = None, id_field: str = "id"
) -> RecordRules:
    """The landing rules of an API contract's entity: envelope, standardiser, drift check."""
    shape = record_shape(contract, entity)
    return RecordRules(
        envelope=envelope,
        standardiser=standardiser(contract, entity),
        shape=lambda: DriftMonitor(shape, id_field=id_field),
    )
