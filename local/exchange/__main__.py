"""Serve stand-in technology exchanges: ``python -m local.exchange --port 8082 [options]``.

Each exchange is served under ``/{exchange_id}`` (its base URL). Give ``--exchange-id`` once per
exchange; ``--listings`` and ``--transactions`` once (for all) or once per exchange, in the
same order, e.g.::

    python -m local.exchange --port 8082 \\
        --exchange-id ninh_binh_exchange --listings 2000 --transactions 500 \\
        --exchange-id national_exchange --listings 20000 --transactions 4000

The secret the API keys are derived from is read from the environment variable
STANDIN_EXCHANGE_SECRET (never a command-line argument, which other local users could read
from the process list); ``local.exchange.api_key_for(secret, exchange_id)`` gives each key.
"""

from __future__ import annotations

import argparse
import logging
import os

from local.exchange import SECRET_ENV
from local.exchange.app import ExchangeSpec, StandinSettings, create_app
from local.exchange.data import DEFAULT_SPECIAL_SHARE, EXCHANGES, MAX_SPECIAL_SHARE
from local.standin_http import run

log = logging.getLogger("local.exchange")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m local.exchange",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--exchange-id", action="append", choices=list(EXCHANGES), help="repeat for several"
    )
    parser.add_argument("--listings", type=int, action="append", help="default 500")
    parser.add_argument("--transactions", type=int, action="append", help="default 200")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--special-share",
        type=float,
        default=DEFAULT_SPECIAL_SHARE,
        help="share of irregular records (dirt, withdrawn, re-sent revisions)",
    )
    parser.add_argument("--session-ttl", type=int, default=1800, help="seconds")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    args = parser.parse_args(argv)
    args.exchange_id = args.exchange_id or ["ninh_binh_exchange"]
    n = len(args.exchange_id)
    for name, default in (("listings", 500), ("transactions", 200)):
        values = getattr(args, name) or [default]
        if len(values) == 1:
            values = values * n
        if len(values) != n:
            parser.error(f"give --{name} once, or once per --exchange-id ({n})")
        if any(value < 0 for value in values):
            parser.error(f"--{name} must be >= 0")
        setattr(args, name, values)
    if len(set(args.exchange_id)) != n:
        parser.error("an --exchange-id is repeated")
    if not 0.0 <= args.special_share <= MAX_SPECIAL_SHARE:
        parser.error(f"--special-share must be within 0..{MAX_SPECIAL_SHARE}")
    if args.session_ttl < 1:
        parser.error("--session-ttl must be >= 1")
    if not os.environ.get(SECRET_ENV):
        parser.error(f"set the secret in the environment variable {SECRET_ENV}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    settings = StandinSettings(
        exchanges=tuple(
            ExchangeSpec(exchange_id, listings, transactions)
            for exchange_id, listings, transactions in zip(
                args.exchange_id, args.listings, args.transactions, strict=True
            )
        ),
        seed=args.seed,
        special_share=args.special_share,
        session_ttl=args.session_ttl,
        secret=os.environ[SECRET_ENV],
    )
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s: %(message)s")
    # Never log the secret, keys or tokens; the settings' repr leaves the secret out.
    log.info("stand-in exchanges on http://%s:%d with %r", args.host, args.port, settings)
    run(create_app(settings), host=args.host, port=args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
