"""Shared HTTP plumbing for connectors: a retrying requests.Session and safe-to-log helpers.

The session retries at the transport level, inside a single ``session.request`` call:
connection errors, read timeouts and statuses 429/500/502/503/504, with exponential backoff
plus jitter, honouring ``Retry-After``. When the attempts run out, the last response is
returned as-is (``raise_on_status=False``) so each connector maps it to its own errors.

Nothing here knows about a particular API (auth, pagination, body shape): that belongs in
the connector module.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

# POST is included because OAuth token requests are safe to repeat. A connector that POSTs
# something non-idempotent must pass its own retry_methods.
DEFAULT_RETRY_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "POST"})

# A source asking us to wait longer than this per attempt is effectively down.
DEFAULT_RETRY_AFTER_MAX = 120

DEFAULT_USER_AGENT = "sti-pipeline-connector/0.1"


def build_retry(
    *,
    max_attempts: int,
    backoff_base: float,
    backoff_max: float,
    retry_after_max: int = DEFAULT_RETRY_AFTER_MAX,
    retry_methods: Collection[str] = DEFAULT_RETRY_METHODS,
) -> Retry:
    """A urllib3 Retry making at most ``max_attempts`` attempts per request.

    Waits ``backoff_base * 2**(n-1)`` plus up to ``backoff_base`` of random jitter, capped at
    ``backoff_max`` (urllib3 retries the first failure immediately). A ``Retry-After`` header
    on 429/503 replaces the computed wait, capped at ``retry_after_max`` seconds.
    """
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    return Retry(
        total=max_attempts - 1,  # urllib3 counts retries, not attempts
        connect=None,
        read=None,
        status=None,
        allowed_methods=frozenset(m.upper() for m in retry_methods),
        status_forcelist=RETRY_STATUSES,
        backoff_factor=backoff_base,
        backoff_jitter=backoff_base,
        backoff_max=backoff_max,
        respect_retry_after_header=True,
        retry_after_max=retry_after_max,
        raise_on_status=False,
    )


def build_session(
    *,
    max_attempts: int = 6,
    backoff_base: float = 0.5,
    backoff_max: float = 30.0,
    retry_after_max: int = DEFAULT_RETRY_AFTER_MAX,
    retry_methods: Collection[str] = DEFAULT_RETRY_METHODS,
    pool_maxsize: int = 4,
    user_agent: str = DEFAULT_USER_AGENT,
) -> requests.Session:
    """A keep-alive Session with the retry policy of :func:`build_retry` on http and https."""
    retry = build_retry(
        max_attempts=max_attempts,
        backoff_base=backoff_base,
        backoff_max=backoff_max,
        retry_after_max=retry_after_max,
        retry_methods=retry_methods,
    )
    adapter = HTTPAdapter(max_retries=retry, pool_connections=1, pool_maxsize=pool_maxsize)
    session = requests.Session()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = user_agent
    return session


def redact_url(url: str) -> str:
    """The URL without user info, query string or fragment: safe for messages and logs."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


# Credentials a misbehaving proxy or server might echo back in an error page.
_CREDENTIAL_PATTERNS = (
    re.compile(r"(?i)(\b(?:bearer|basic)\s+)[^\s\"'<>,;]+"),
    re.compile(
        r"(?i)(\b(?:access_token|refresh_token|id_token|client_secret|password)"
        r"[\"']?\s*[:=]\s*[\"']?)[^\s\"'<>&,;]+"
    ),
)
_WHITESPACE = re.compile(r"\s+")
_NON_PRINTABLE = re.compile(r"[^\x20-\x7e\u00a0-\U0010ffff]")


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Replace the given secrets, and anything that looks like a credential, with ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    for pattern in _CREDENTIAL_PATTERNS:
        text = pattern.sub(r"\1***", text)
    return text


def body_excerpt(body: bytes, secrets: Iterable[str] = (), limit: int = 160) -> str:
    """A short, single-line, credential-free excerpt of a response body for error messages."""
    # Redact the whole body before cutting it, so a secret straddling the cut cannot leak a
    # prefix. This only runs on error paths, so the cost on a large body does not matter.
    text = redact(body.decode("utf-8", errors="replace"), secrets)[: limit * 8]
    text = _NON_PRINTABLE.sub("?", _WHITESPACE.sub(" ", text)).strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."
