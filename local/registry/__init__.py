"""Stand-in provincial STI registries serving API v1 (connectors/contracts/README.md).

- ``profiles.yml`` / ``profiles``: which registries exist (province, pre-merger origins) and how
  much each profile ("demo", "national") serves of each entity.
- ``entities``: the entities (landing name -> API path) and the dirt each can carry.
- ``enterprises``: the enterprise pool every stand-in source shares (also local/exchange/).
- ``reference/``: the stand-in's copy of the 2025 administrative units (provinces, communes).
- ``synth``, ``context``, ``generator``: hashing, calendar, dirt; a registry's origins and
  addresses; the base class of the entity generators.
- ``data`` (S&T tasks, single-registry mode), ``tasks`` (S&T tasks, profile mode), ``results``,
  ``ip``, ``orgs``, ``enterprise_data``: one generator per entity.
- ``store``: paging and the change overlay of one entity; ``registries``: a registry's entities.
- ``app``: the Starlette app (contract endpoints plus stand-in-only admin endpoints).
- ``__main__``: ``python -m local.registry`` serves it with uvicorn.
- ``process``: ``run_registry()`` / ``run_registries()`` run it as a subprocess.
"""

# The name of the variable the server reads its client secret from (not a secret itself).
SECRET_ENV = "STANDIN_REGISTRY_CLIENT_SECRET"  # noqa: S105


def registry_secret_env(registry_id: str) -> str:
    """The variable holding one registry's client secret in profile mode."""
    return f"{SECRET_ENV}_{registry_id.upper()}"
