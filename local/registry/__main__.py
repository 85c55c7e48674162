"""Serve the stand-in registry: ``python -m local.registry --port 8081 [options]``.

The client secret is read from the environment variable STANDIN_REGISTRY_CLIENT_SECRET (never a
command-line argument, which other local users could read from the process list).
"""

from __future__ import annotations

import argparse
import logging
import os

import uvicorn

from local.registry import SECRET_ENV
from local.registry.app import RegistrySettings, create_app

log = logging.getLogger("local.registry")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m local.registry", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--records", type=int, default=500, help="number of S&T tasks")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--bad-share", type=float, default=0.05, help="share of bad records")
    parser.add_argument("--token-ttl", type=int, default=3600, help="token lifetime, seconds")
    parser.add_argument("--client-id", default="sti-pipeline-local")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    args = parser.parse_args(argv)
    if args.records < 0:
        parser.error("--records must be >= 0")
    if not 0.0 <= args.bad_share <= 1.0:
        parser.error("--bad-share must be within 0..1")
    if args.token_ttl < 1:
        parser.error("--token-ttl must be >= 1")
    if not os.environ.get(SECRET_ENV):
        parser.error(f"set the client secret in the environment variable {SECRET_ENV}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    settings = RegistrySettings(
        records=args.records,
        seed=args.seed,
        bad_share=args.bad_share,
        token_ttl=args.token_ttl,
        client_id=args.client_id,
        client_secret=os.environ[SECRET_ENV],
    )
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s: %(message)s")
    # Never log the secret or tokens; the settings' repr leaves the secret out.
    log.info("stand-in registry on http://%s:%d with %r", args.host, args.port, settings)
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
