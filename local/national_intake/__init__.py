"""The stand-in national STI intake (national intake API v1, see
connectors/contracts/national_intake_v1.openapi.yaml).

- ``rules``: the record rules behind the reason codes (provinces, research fields, MST, personal
  data), generic over a record's ``data``.
- ``store``: its own PostgreSQL database (schema ``intake``): batches, holdings, applied log.
- ``app``: the Starlette app (contract endpoints and the stand-in's admin endpoints).
- ``__main__``: ``python -m local.national_intake`` serves it with uvicorn.
- ``process``: ``run_national_intake()`` runs it as a subprocess with fresh credentials;
  ``ensure_intake_database()`` gives it a database of its own.
"""

# The variables the server reads its settings from (names, not secrets).
CLIENTS_ENV = "NATIONAL_INTAKE_CLIENTS"
ADMIN_TOKEN_ENV = "NATIONAL_INTAKE_ADMIN_TOKEN"  # noqa: S105
DATABASE_URL_ENV = "NATIONAL_INTAKE_DATABASE_URL"
