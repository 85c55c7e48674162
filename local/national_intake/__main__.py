"""Serve the stand-in national intake: ``python -m local.national_intake --port 8095``.

Everything secret comes from the environment, never from the command line (which other local
users can read from the process list):

- the database URL from the variable named by ``--database-url-env`` (default
  NATIONAL_INTAKE_DATABASE_URL); the schema ``intake`` is created there if missing;
- the clients from NATIONAL_INTAKE_CLIENTS (``--clients-env``), JSON by province code::

      {"37": {"client_secret": "...", "public_keys": {"<key id>": "-----BEGIN PUBLIC KEY-----..."}}}

  (client id ``province-37``; ``local.national_intake.process.intake_environment`` writes it);
- the admin bearer token of the stand-in endpoints from NATIONAL_INTAKE_ADMIN_TOKEN
  (``--admin-token-env``).
"""

from __future__ import annotations

import argparse
import logging
import os

import orjson
import uvicorn

from local.national_intake import ADMIN_TOKEN_ENV, CLIENTS_ENV, DATABASE_URL_ENV
from local.national_intake.app import Client, create_app

log = logging.getLogger("local.national_intake")


def parse_clients(text: str) -> dict[str, Client]:
    """The clients variable's JSON → Client by province code; ValueError when malformed."""
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError as error:
        raise ValueError(f"not JSON: {error}") from None
    if not isinstance(document, dict) or not document:
        raise ValueError("must be a non-empty object by province code")
    clients = {}
    for province, entry in document.items():
        secret = entry.get("client_secret") if isinstance(entry, dict) else None
        keys = entry.get("public_keys") if isinstance(entry, dict) else None
        if not (isinstance(province, str) and len(province) == 2 and province.isdigit()):
            raise ValueError(f"{province!r} is not a 2-digit province code")
        if not isinstance(secret, str) or not secret:
            raise ValueError(f"province {province}: client_secret is required")
        if (
            not isinstance(keys, dict)
            or not keys
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in keys.items())
        ):
            raise ValueError(f"province {province}: public_keys must map key ids to PEM keys")
        clients[province] = Client(province, secret, keys)
    return clients


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m local.national_intake",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database-url-env", default=DATABASE_URL_ENV, metavar="NAME")
    parser.add_argument("--clients-env", default=CLIENTS_ENV, metavar="NAME")
    parser.add_argument("--admin-token-env", default=ADMIN_TOKEN_ENV, metavar="NAME")
    parser.add_argument("--token-ttl", type=int, default=3600, help="seconds")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    args = parser.parse_args(argv)
    for option in ("database_url_env", "clients_env", "admin_token_env"):
        name = getattr(args, option)
        if not os.environ.get(name):
            parser.error(f"set the environment variable {name}")
    try:
        args.clients = parse_clients(os.environ[args.clients_env])
    except ValueError as error:
        parser.error(f"{args.clients_env}: {error}")
    if args.token_ttl < 1:
        parser.error("--token-ttl must be >= 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s: %(message)s")
    app = create_app(
        os.environ[args.database_url_env],
        args.clients,
        os.environ[args.admin_token_env],
        token_ttl=args.token_ttl,
    )
    # Never log the URL (it may hold a password), secrets or tokens.
    log.info(
        "stand-in national intake on http://%s:%d for provinces %s",
        args.host,
        args.port,
        ", ".join(sorted(args.clients)),
    )
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,  # costs more than it tells at hundreds of batches
        timeout_graceful_shutdown=2,
    )


if __name__ == "__main__":
    main()
