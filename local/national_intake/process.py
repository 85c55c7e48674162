"""Run the stand-in national intake in a subprocess for tests, benchmarks and the demo.

    url = ensure_intake_database(warehouse_server_url)    # its own database, national_intake
    with run_national_intake(url, ["37"]) as intake:
        credential = intake.credentials["37"]
        requests.post(intake.base_url + "/oauth/token", data={
            "grant_type": "client_credentials",
            "client_id": credential.client_id, "client_secret": credential.client_secret})
        sign_batch(body, key, count, credential.private_key_pem, credential.key_id)

Fresh credentials are made for every province on each start (a client secret and an Ed25519 key
pair; the server only ever gets the public key). The server runs in its own process group and
gets its database URL, clients and admin token through the environment, never its command line.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import orjson
from cryptography.hazmat.primitives import serialization

from connectors.national_contract import new_signing_key
from connectors.national_intake import IntakeConnection
from local.national_intake import ADMIN_TOKEN_ENV, CLIENTS_ENV, DATABASE_URL_ENV
from local.postgres import ensure_database
from local.standin_process import free_loopback_port, serve

INTAKE_DB = "national_intake"
STARTUP_TIMEOUT = 30.0  # seconds
_PROVINCE = re.compile(r"[0-9]{2}")


@dataclass(frozen=True)
class IntakeCredential:
    """What a province's publisher needs: its OAuth client and its signing key."""

    client_id: str  # province-<code>
    client_secret: str = field(repr=False)
    key_id: str
    private_key_pem: str = field(repr=False)

    def connection(self, base_url: str) -> IntakeConnection:
        """The publisher's connection to the intake at `base_url` with this credential."""
        return IntakeConnection(
            base_url.rstrip("/"), self.client_id, self.client_secret, self.key_id,
            self.private_key_pem,
        )  # fmt: skip


@dataclass(frozen=True)
class RunningIntake:
    base_url: str  # e.g. http://127.0.0.1:41234, no trailing slash
    admin_token: str = field(repr=False)
    credentials: dict[str, IntakeCredential]  # by province code


def new_credentials(provinces: Sequence[str]) -> dict[str, IntakeCredential]:
    """A client secret and an Ed25519 key pair per province code."""
    credentials = {}
    for province in provinces:
        if not _PROVINCE.fullmatch(province):
            raise ValueError(f"{province!r} is not a 2-digit province code")
        private_pem, _public_pem = new_signing_key()
        credentials[province] = IntakeCredential(
            client_id=f"province-{province}",
            client_secret=secrets.token_urlsafe(32),
            key_id=f"province-{province}-{secrets.token_hex(4)}",
            private_key_pem=private_pem,
        )
    return credentials


def public_key_pem(private_key_pem: str) -> str:
    """The public key (SubjectPublicKeyInfo PEM) of a private key PEM."""
    private = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    return (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def intake_environment(
    credentials: Mapping[str, IntakeCredential], admin_token: str, database_url: str
) -> dict[str, str]:
    """The server's environment variables (see ``python -m local.national_intake --help``):
    public keys only, never a private key."""
    clients = {
        province: {
            "client_secret": credential.client_secret,
            "public_keys": {credential.key_id: public_key_pem(credential.private_key_pem)},
        }
        for province, credential in credentials.items()
    }
    return {
        CLIENTS_ENV: orjson.dumps(clients).decode(),
        ADMIN_TOKEN_ENV: admin_token,
        DATABASE_URL_ENV: database_url,
    }


def ensure_intake_database(server_url: str) -> str:
    """A database ``national_intake`` of its own on the server of ``server_url`` (created if
    missing, never the warehouse's database); its URL."""
    parts = urlsplit(server_url)
    ensure_database(parts._replace(path="/postgres").geturl(), INTAKE_DB)
    return parts._replace(path=f"/{INTAKE_DB}").geturl()


@contextmanager
def run_national_intake(
    database_url: str,
    provinces: Sequence[str],
    *,
    token_ttl: int = 3600,
    credentials: Mapping[str, IntakeCredential] | None = None,
) -> Iterator[RunningIntake]:
    """Start ``python -m local.national_intake`` on a free loopback port over the database at
    ``database_url``, with fresh credentials for ``provinces`` (or the given ones, kept by the
    caller, e.g. local.feed's); stop it on exit.

    Waits until ``/health`` answers (at most 30 s); RuntimeError with the tail of the server's
    log if it exits or does not come up in time.
    """
    credentials = dict(credentials) if credentials is not None else new_credentials(provinces)
    admin_token = secrets.token_urlsafe(32)
    port = free_loopback_port()
    arguments = [
        "-m", "local.national_intake", "--host", "127.0.0.1", "--port", str(port),
        "--database-url-env", DATABASE_URL_ENV, "--token-ttl", str(token_ttl),
        "--log-level", "warning",
    ]  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    with serve(
        arguments,
        intake_environment(credentials, admin_token, database_url),
        [base_url + "/health"],
        name="stand-in national intake",
        startup_timeout=STARTUP_TIMEOUT,
    ):
        yield RunningIntake(base_url, admin_token, credentials)
