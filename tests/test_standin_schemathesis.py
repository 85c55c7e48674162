"""Property-based contract tests: schemathesis fuzzes both stand-ins, over loopback, from their
OpenAPI contracts (connectors/contracts/) with a bounded number of examples per operation.

Every built-in check runs (server errors, status codes, content types, headers, response
schemas, rejection of invalid data, acceptance of valid data, auth enforcement, ...). The only
failures allowed are the documented false positives in ``FALSE_POSITIVES``: each names the
check, the answers it is skipped for, and why the stand-in's answer is right although the
check flags it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
    positive_data_acceptance,
)

from local.exchange.app import ExchangeSpec
from local.exchange.process import RunningExchange, run_exchanges
from local.registry.process import RunningRegistry, run_registry

REPO_ROOT = Path(__file__).resolve().parents[1]
CONTRACTS = REPO_ROOT / "connectors/contracts"
MAX_EXAMPLES = 25  # per operation and phase; the whole module runs in well under two minutes
FUZZ = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,  # the same examples on every run: a failure is reproducible
    database=None,  # nothing to replay: derandomized
    suppress_health_check=list(HealthCheck),
)


@dataclass(frozen=True)
class FalsePositive:
    """A check that fails on a right answer. It is skipped only for the answers ``applies``
    picks (by the request and the response), never for a whole operation."""

    check: Any  # a schemathesis check function
    applies: Callable[[schemathesis.Case, requests.Response], bool]
    why: str


def _bad_request_saying(pattern: str) -> Callable[[schemathesis.Case, requests.Response], bool]:
    def applies(case: schemathesis.Case, response: requests.Response) -> bool:
        detail = response.json().get("detail") if response.status_code == 400 else None
        return isinstance(detail, str) and re.match(pattern, detail) is not None

    return applies


def _unknown_query_parameter(case: schemathesis.Case, response: requests.Response) -> bool:
    return bool(set(case.query or {}) - {p.name for p in case.operation.query})


FALSE_POSITIVES = (
    FalsePositive(
        positive_data_acceptance,
        _bad_request_saying(r"cursor (is not valid base64url|has the wrong length|was not issued)"),
        "A registry cursor is opaque: any string of 1 to 2048 characters is schema-valid, but "
        "only a next_cursor the registry issued is accepted; anything else is 400, as the "
        "contract's BadRequest says (malformed or altered cursor). A schema cannot say 'issued "
        "by the server'.",
    ),
    FalsePositive(
        positive_data_acceptance,
        _bad_request_saying(r"modified_(from|to) is not a valid date and time"),
        "The exchange's InstantParameter pattern describes the shape of a date and time; a "
        "regular expression cannot rule out days that do not exist (00/00/0000 00:00:00, "
        "31/02/2024 …), which are 400 bad_parameter, as they must be.",
    ),
    FalsePositive(
        negative_data_rejection,
        _unknown_query_parameter,
        "Unknown query parameters are ignored, not refused, as both contracts say (a later "
        "version may add parameters; an older server must keep answering). schemathesis "
        "counts a request with an undeclared parameter as invalid data that must be refused.",
    ),
)


def call_and_validate(
    case: schemathesis.Case, base_url: str, http: requests.Session, headers: dict[str, str]
) -> None:
    """``case.call_and_validate`` but for the documented false positives of this answer."""
    response = case.call(base_url=base_url, session=http, headers=headers)
    known = [fp.check for fp in FALSE_POSITIVES if fp.applies(case, response)]
    transport = {"base_url": base_url, "session": http, "headers": headers}
    case.validate_response(
        response, headers=headers, excluded_checks=known, transport_kwargs=transport
    )


@pytest.fixture(scope="module")
def registry() -> Iterator[RunningRegistry]:
    with run_registry(records=200) as running:
        yield running


@pytest.fixture(scope="module")
def exchange() -> Iterator[RunningExchange]:
    with run_exchanges([ExchangeSpec("ninh_binh_exchange", 200, 100)]) as running:
        yield running["ninh_binh_exchange"]


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.trust_env = False  # loopback: never through a proxy from the environment
        yield session


# Loaded eagerly: schemathesis.pytest.from_fixture (lazy) breaks on pytest 9 (Node._nodeid).
registry_api = schemathesis.openapi.from_path(CONTRACTS / "registry_api_v1.openapi.yaml")
exchange_api = schemathesis.openapi.from_path(CONTRACTS / "exchange_api_v1.openapi.yaml")


@pytest.fixture(scope="module")
def bearer(registry: RunningRegistry, http: requests.Session) -> str:
    form = {
        "grant_type": "client_credentials",
        "client_id": registry.client_id,
        "client_secret": registry.client_secret,
    }
    response = http.post(registry.base_url + "/oauth/token", data=form, timeout=10)
    return response.json()["access_token"]


@pytest.fixture(scope="module")
def session_token(exchange: RunningExchange, http: requests.Session) -> str:
    headers = {"X-Api-Key": exchange.api_key}
    response = http.post(exchange.base_url + "/api/auth/login", headers=headers, timeout=10)
    return response.json()["session_token"]


@registry_api.parametrize()
@FUZZ
def test_registry_conforms_to_its_contract(
    case: schemathesis.Case, registry: RunningRegistry, http: requests.Session, bearer: str
) -> None:
    headers = {} if case.path == "/oauth/token" else {"Authorization": f"Bearer {bearer}"}
    call_and_validate(case, registry.base_url, http, headers)


@exchange_api.parametrize()
@FUZZ
def test_exchange_conforms_to_its_contract(
    case: schemathesis.Case, exchange: RunningExchange, http: requests.Session, session_token: str
) -> None:
    if case.path == "/api/auth/login":
        headers = {"X-Api-Key": exchange.api_key}
    else:
        headers = {"X-Session-Token": session_token}
    call_and_validate(case, exchange.base_url, http, headers)
