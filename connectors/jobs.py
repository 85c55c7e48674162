"""One call per pipeline step, composed from the connectors; what Airflow tasks invoke."""

from __future__ import annotations

from connectors.landing import LandResult, land_extraction
from connectors.registry_api import RegistryClient
from connectors.warehouse import ensure_schema

# Resource path of each entity in registry API v1 (connectors/contracts/).
REGISTRY_API_V1_PATHS = {"st_task": "st-tasks"}


def extract_and_land_registry(
    warehouse_url: str,
    *,
    source_id: str,
    entity: str,
    base_url: str,
    client_id: str,
    client_secret: str,
    page_size: int = 5000,
) -> LandResult:
    """Extract `entity` from a registry API v1 source incrementally and land it as one batch."""
    ensure_schema(warehouse_url)
    path = REGISTRY_API_V1_PATHS[entity]
    with RegistryClient(base_url, client_id, client_secret, page_size=page_size) as client:
        return land_extraction(
            warehouse_url,
            source_id=source_id,
            entity=entity,
            contract="registry-api-v1",
            extract=lambda updated_since: client.iter_pages(path, updated_since),
        )
