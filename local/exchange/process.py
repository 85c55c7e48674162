"""Run stand-in technology exchanges in a subprocess for tests and benchmarks.

    with run_exchange("ninh_binh_exchange", listings=200_000) as exchange:
        ExchangeClient(exchange.base_url, exchange.api_key)

    with run_exchanges([ExchangeSpec("ninh_binh_exchange"), ExchangeSpec("national_exchange")])
            as exchanges:
        exchanges["national_exchange"].base_url

Several exchanges share one server process, each under its own base URL. The server runs in
its own process group (stopped as a whole) and gets its secret through the environment, never
through its command line.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from local.exchange import SECRET_ENV, api_key_for
from local.exchange.app import ExchangeSpec
from local.exchange.data import DEFAULT_SPECIAL_SHARE
from local.standin_process import free_loopback_port, serve

STARTUP_TIMEOUT = 60.0  # seconds: large pools of several exchanges take a while to draw


@dataclass(frozen=True)
class RunningExchange:
    exchange_id: str
    base_url: str  # e.g. http://127.0.0.1:41234/ninh_binh_exchange, no trailing slash
    api_key: str = field(repr=False)


@contextmanager
def run_exchange(
    exchange_id: str = "ninh_binh_exchange",
    *,
    listings: int = 500,
    transactions: int = 200,
    seed: int = 42,
    special_share: float = DEFAULT_SPECIAL_SHARE,
    session_ttl: int = 1800,
    secret: str | None = None,
) -> Iterator[RunningExchange]:
    """Serve one exchange on a free loopback port; stop it on exit (see run_exchanges)."""
    spec = ExchangeSpec(exchange_id, listings, transactions)
    with run_exchanges(
        [spec], seed=seed, special_share=special_share, session_ttl=session_ttl, secret=secret
    ) as running:
        yield running[exchange_id]


@contextmanager
def run_exchanges(
    specs: Sequence[ExchangeSpec],
    *,
    seed: int = 42,
    special_share: float = DEFAULT_SPECIAL_SHARE,
    session_ttl: int = 1800,
    secret: str | None = None,
) -> Iterator[dict[str, RunningExchange]]:
    """Start ``python -m local.exchange`` serving ``specs``; stop it on exit.

    Waits until every exchange's ``/api/health`` answers (at most 60 s); raises RuntimeError
    with the tail of the server's log if it exits or does not come up in time. A random secret
    is generated when none is given.
    """
    secret = secret or secrets.token_urlsafe(32)
    port = free_loopback_port()
    arguments = [
        "-m", "local.exchange", "--host", "127.0.0.1", "--port", str(port),
        "--seed", str(seed), "--special-share", str(special_share),
        "--session-ttl", str(session_ttl), "--log-level", "warning",
    ]  # fmt: skip
    for spec in specs:
        arguments += ["--exchange-id", spec.exchange_id, "--listings", str(spec.listings)]
        arguments += ["--transactions", str(spec.transactions)]
    root = f"http://127.0.0.1:{port}"
    running = {
        spec.exchange_id: RunningExchange(
            spec.exchange_id, f"{root}/{spec.exchange_id}", api_key_for(secret, spec.exchange_id)
        )
        for spec in specs
    }
    with serve(
        arguments,
        {SECRET_ENV: secret},
        [exchange.base_url + "/api/health" for exchange in running.values()],
        name="stand-in exchange",
        startup_timeout=STARTUP_TIMEOUT,
    ):
        yield running
