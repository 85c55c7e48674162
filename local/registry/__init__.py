"""Stand-in of a provincial STI registry serving API v1 (connectors/contracts/README.md).

- ``data``: deterministic synthetic S&T tasks and the in-memory change overlay.
- ``app``: the Starlette app (contract endpoints plus stand-in-only admin endpoints).
- ``__main__``: ``python -m local.registry`` serves it with uvicorn.
- ``process``: ``run_registry()`` runs it as a subprocess for tests and benchmarks.
"""

# The name of the variable the server reads its client secret from (not a secret itself).
SECRET_ENV = "STANDIN_REGISTRY_CLIENT_SECRET"  # noqa: S105
