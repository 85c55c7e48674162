"""A client of Airflow's REST API (v2) for the project's own services: the event dispatcher
posts asset events with it, the operator commands pause, resume and trigger DAGs with it.

Plain Python (no Airflow import): it talks to a running Airflow over HTTP. The connection
`sti_airflow_api` (AIRFLOW_CONN_STI_AIRFLOW_API) gives the base URL and a user's login.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from urllib.parse import unquote, urlsplit

import requests

from connectors.http import body_excerpt, build_session, redact_url

API_CONNECTION = "sti_airflow_api"  # host: Airflow's base URL; login and password of an Op user


class AirflowApiError(Exception):
    """Airflow did not take the asset event (after the session's retries)."""


class AirflowApi:
    """Airflow's REST API (v2) with a JWT from `/auth/token` that it renews.

    The session retries connection errors, timeouts, 429 and 5xx with exponential backoff
    (connectors/http.py), POST included: a repeated asset event is harmless, and the other
    callers' writes (pause, trigger with a run id) are idempotent.
    """

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        *,
        timeout: float = 10.0,
        attempts: int = 4,
        backoff: float = 0.5,
        user_agent: str = "sti-pipeline/0.1",
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._credentials = {"username": username, "password": password}
        self._timeout = timeout
        self._session = build_session(
            max_attempts=attempts,
            backoff_base=backoff,
            backoff_max=8.0,
            retry_after_max=30,
            user_agent=user_agent,
        )
        self._token: str | None = None
        self._asset_ids: dict[str, int] = {}

    def asset_id(self, uri: str) -> int:
        if uri not in self._asset_ids:
            # uri_pattern is a substring match: keep the asset whose uri is exactly this one.
            found = self.call("GET", "/api/v2/assets", params={"uri_pattern": uri, "limit": 100})
            ids = [a["id"] for a in found.json()["assets"] if a["uri"] == uri]
            if not ids:
                raise AirflowApiError(f"Airflow has no asset {uri} (is its DAG parsed?)")
            self._asset_ids[uri] = ids[0]
        return self._asset_ids[uri]

    def post_asset_event(self, uri: str, extra: dict) -> tuple[int, datetime]:
        """Create an asset event on `uri`: Airflow's id and timestamp for it."""
        body = {"asset_id": self.asset_id(uri), "extra": extra}
        try:
            reply = self.call("POST", "/api/v2/assets/events", json=body)
        except AirflowApiError:
            self._asset_ids.pop(uri, None)  # the asset may have been re-created: look it up anew
            raise
        event = reply.json()
        return event["id"], datetime.fromisoformat(event["timestamp"])

    def call(
        self, method: str, path: str, *, allow: tuple[int, ...] = (), **kwargs
    ) -> requests.Response:
        """The reply to `method path`; AirflowApiError unless it is 2xx or in `allow`."""
        for fresh_token in (False, True):
            if self._token is None or fresh_token:
                self._token = self._new_token()
            headers = {"Authorization": f"Bearer {self._token}"}
            reply = self._send(method, path, headers=headers, **kwargs)
            if reply.status_code != 401:  # 401: the token expired; one new one, then give up
                break
        if not reply.ok and reply.status_code not in allow:
            raise AirflowApiError(self._describe(method, path, reply))
        return reply

    def _new_token(self) -> str:
        reply = self._send("POST", "/auth/token", json=self._credentials)
        if not reply.ok:
            raise AirflowApiError(self._describe("POST", "/auth/token", reply))
        return reply.json()["access_token"]

    def _send(self, method: str, path: str, **kwargs) -> requests.Response:
        try:
            return self._session.request(
                method, self.base_url + path, timeout=self._timeout, **kwargs
            )
        except requests.RequestException as exc:  # retries exhausted, or no connection at all
            raise AirflowApiError(f"{method} {redact_url(self.base_url)}{path}: {exc}") from None

    def _describe(self, method: str, path: str, reply: requests.Response) -> str:
        excerpt = body_excerpt(reply.content, [self._credentials["password"], self._token or ""])
        return f"{method} {path}: {reply.status_code} {excerpt}"


def api_from_environment(environ: dict[str, str] | None = None) -> AirflowApi:
    """The API client from connection `sti_airflow_api` (AIRFLOW_CONN_STI_AIRFLOW_API), in
    Airflow's JSON form (host = base URL, login, password) or as a URL with user info."""
    environ = os.environ if environ is None else environ
    value = environ.get(f"AIRFLOW_CONN_{API_CONNECTION.upper()}", "").strip()
    if value.startswith("{"):
        conn = json.loads(value)
        base, login, password = conn.get("host", ""), conn.get("login"), conn.get("password")
        if conn.get("port") and base.count(":") < 2:
            base = f"{base}:{conn['port']}"
    else:
        parts = urlsplit(value)
        base = f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        login, password = unquote(parts.username or ""), unquote(parts.password or "")
    if not (value and base and login and password):
        raise SystemExit(
            f"set AIRFLOW_CONN_{API_CONNECTION.upper()}: Airflow's base URL (host), and the"
            " login and password of a user allowed to create asset events (role Op)"
        )
    return AirflowApi(base, login, password)
