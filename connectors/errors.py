"""Errors the connectors raise on purpose, so callers (DAG tasks, scripts) can tell them apart.

Every message is written to be safe to log: no client secrets, no access tokens, no query
strings. The kind of error tells the operator what to do next:

- SourceUnavailableError: the source was down or overloaded; rerun later.
- SourceAuthError: the credentials are wrong or were revoked; fix the connection settings.
- SourceResponseError / RepeatedCursorError: the source sent something unusable; investigate.
- ContractError: the source rejected our request (400/404); our request or config is wrong.
"""

from __future__ import annotations


class ConnectorError(Exception):
    """Base class for every error a connector raises deliberately."""


class SourceUnavailableError(ConnectorError):
    """Timeouts, connection errors, 5xx or 429 that were still failing after all retries."""


class SourceAuthError(ConnectorError):
    """The token endpoint refused the credentials, or a 401 persisted after one token refresh."""


class SourceResponseError(ConnectorError):
    """A body we cannot use: truncated or invalid JSON, a non-JSON page, or the wrong shape.

    The message names the URL (without query string), the page, the content type and a short,
    sanitised excerpt of the body.
    """


class RepeatedCursorError(ConnectorError):
    """The source handed back a pagination cursor already seen in this extraction.

    Following it would loop forever or duplicate records, so the run stops instead.
    """


class ContractError(ConnectorError):
    """A non-retryable 4xx (e.g. 400 bad parameter, 404 unknown entity).

    Carries the RFC 9457 problem-details ``title`` and ``detail`` when the source sent them.
    """

    def __init__(
        self, message: str, status: int, title: str | None = None, detail: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.detail = detail

    def __reduce__(self) -> tuple[type[ContractError], tuple[str, int, str | None, str | None]]:
        # Keep the extra attributes when the error crosses a process boundary (pickling).
        return (type(self), (self.args[0], self.status, self.title, self.detail))
