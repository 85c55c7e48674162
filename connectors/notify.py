"""Notifications to operators: a failed task, a blocked batch, change events waiting too long.

:func:`notify` always logs (logger ``sti.notify``, WARNING or ERROR by severity), then sends
through whichever of two Airflow connections is configured:

- ``sti_notify_webhook`` (AIRFLOW_CONN_STI_NOTIFY_WEBHOOK): a JSON POST to the URL in `host`
  (``{"text", "subject", "body", "severity", "sender", "sent_at"}``; `text` is what Slack,
  Mattermost and Google Chat incoming webhooks show). A login and password are sent as basic
  auth, `extra` may add ``headers``, and set ``timeout`` (seconds, default 10) and ``attempts``
  (default 4: connection errors, timeouts, 429 and 5xx are retried with backoff).
- ``sti_notify_smtp`` (AIRFLOW_CONN_STI_NOTIFY_SMTP): an e-mail through `host`:`port`, with
  `login`/`password` when given; `extra`: ``{"from": "...", "to": ["...", ...]}``, and
  ``"starttls": true`` (STARTTLS, port 587 by default) or ``"ssl": true`` (SMTPS, 465) with
  the system's certificate checks; plain port 25 otherwise.

Connections come in Airflow's JSON form or as an Airflow URI; for the webhook, a URI is the URL
itself (``https://hooks.example.org/services/T0/B0/XYZ``; query parameters are Airflow's extra,
as Airflow reads them). A channel that fails is logged (without the URL's path, credentials or
headers: a webhook's path is often its secret) and the others still run: notifying never raises.

Plain Python (no Airflow import); dags/notifiers.py resolves the connections through Airflow
(environment, secrets backend or metadata DB) and passes them in.
"""

from __future__ import annotations

import json
import logging
import os
import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote, urlsplit

from connectors.http import body_excerpt, build_session, redact

log = logging.getLogger("sti.notify")

WEBHOOK_CONNECTION = "sti_notify_webhook"
SMTP_CONNECTION = "sti_notify_smtp"
SENDER = "sti-pipeline"
Severity = Literal["warning", "error"]
_LEVELS = {"warning": logging.WARNING, "error": logging.ERROR}


@dataclass(frozen=True)
class NotifyConnection:
    """The fields of an Airflow connection that notifying reads."""

    conn_type: str | None = None
    host: str | None = None
    port: int | None = None
    login: str | None = None
    password: str | None = field(default=None, repr=False)
    schema: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False)


def connection_from_env(
    conn_id: str, environ: Mapping[str, str] | None = None
) -> NotifyConnection | None:
    """The connection `conn_id` from AIRFLOW_CONN_<ID> (JSON or URI form), or None if unset."""
    environ = os.environ if environ is None else environ
    value = environ.get(f"AIRFLOW_CONN_{conn_id.upper()}", "").strip()
    if not value:
        return None
    return parse_connection(value)


def parse_connection(value: str) -> NotifyConnection:
    """An Airflow connection in its JSON form or as an Airflow URI (read as Airflow reads it:
    scheme → type, path → schema, query → extra; `http://https://host/path` keeps the protocol
    in the host)."""
    if value.startswith("{"):
        conn = json.loads(value)
        extra = conn.get("extra") or {}
        if isinstance(extra, str):
            extra = json.loads(extra) if extra.strip() else {}
        port = conn.get("port")
        return NotifyConnection(
            conn_type=conn.get("conn_type"),
            host=conn.get("host"),
            port=int(port) if port not in (None, "") else None,
            login=conn.get("login"),
            password=conn.get("password"),
            schema=conn.get("schema"),
            extra=extra,
        )
    scheme = urlsplit(value).scheme
    rest = value[len(scheme) + 3 :] if value.startswith(f"{scheme}://") else value
    protocol = None
    if "://" in rest:  # Airflow's form for a host with its own protocol
        protocol, rest = rest.split("://", 1)
    parts = urlsplit("//" + rest)
    host = parts.hostname
    if host and protocol:
        host = f"{protocol}://{host}"
    extra: dict[str, Any] = {}
    for key, item in parse_qsl(parts.query, keep_blank_values=True):
        if key == "__extra__":
            extra = json.loads(item)
            break
        try:
            extra[key] = json.loads(item) if item else item
        except json.JSONDecodeError:
            extra[key] = item
    return NotifyConnection(
        conn_type=scheme.replace("-", "_") or None,
        host=host,
        port=parts.port,
        login=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        schema=unquote(parts.path[1:]) if parts.path[1:] else None,
        extra=extra,
    )


def webhook_url(conn: NotifyConnection) -> str:
    """The URL to post to: `host` when it is a URL (its port and schema added when given
    separately), else `<type or https>://host[:port][/schema]`."""
    host = (conn.host or "").rstrip("/")
    if not host:
        raise ValueError(f"connection {WEBHOOK_CONNECTION} has no host (the webhook's URL)")
    if "://" not in host:
        scheme = conn.conn_type if conn.conn_type in ("http", "https") else "https"
        host = f"{scheme}://{host}"
    parts = urlsplit(host)
    if conn.port and parts.port is None:
        host = host.replace(parts.netloc, f"{parts.netloc}:{conn.port}", 1)
    if conn.schema:
        host = f"{host}/{conn.schema.lstrip('/')}"
    return host


def notify(
    subject: str,
    body: str,
    *,
    severity: Severity,
    connections: Mapping[str, NotifyConnection | None] | None = None,
) -> list[str]:
    """Log the notification, and send it through the configured channels; the channels that
    delivered it (``log`` always, then ``webhook``, ``smtp``). Never raises for a channel that
    fails: that failure is logged. `connections` maps the connection ids to their settings (None:
    not configured); by default they are read from AIRFLOW_CONN_* variables. An unknown severity
    is treated as ``error`` (a notification is never lost for its label)."""
    if severity not in _LEVELS:
        severity = "error"
    log.log(_LEVELS[severity], "%s\n%s", subject, body)
    delivered = ["log"]
    channels = (("webhook", WEBHOOK_CONNECTION, _post), ("smtp", SMTP_CONNECTION, _mail))
    for name, conn_id, send in channels:
        conn: NotifyConnection | None = None
        try:
            if connections is not None:
                conn = connections.get(conn_id)
            else:
                conn = connection_from_env(conn_id)
            if conn is None:
                continue
            send(conn, subject, body, severity)
        except Exception as exc:  # a channel's failure must not hide the notification
            secrets = _secrets(conn) if conn is not None else []
            reason = redact(f"{type(exc).__name__}: {exc}", secrets)[:500]
            log.error("notification %r not sent by %s (%s): %s", subject, name, conn_id, reason)
            continue
        delivered.append(name)
    return delivered


def _secrets(conn: NotifyConnection) -> list[str]:
    """Values a channel's error message must not show: the password, and for a webhook the
    URL's path and query (a webhook's path is often its secret) and the extra headers."""
    secrets = [conn.password or ""]
    try:
        parts = urlsplit(webhook_url(conn))
        secrets += [parts.path if len(parts.path) > 1 else "", parts.query]
    except ValueError:
        pass
    secrets += [str(value) for value in dict(conn.extra.get("headers") or {}).values()]
    # longest first: a secret that contains another is replaced whole
    return sorted((s for s in secrets if s), key=len, reverse=True)


def _post(conn: NotifyConnection, subject: str, body: str, severity: str) -> None:
    url = webhook_url(conn)
    extra = conn.extra
    session = build_session(
        max_attempts=int(extra.get("attempts", 4)),
        backoff_base=0.5,
        backoff_max=8.0,
        retry_after_max=30,
        user_agent=f"{SENDER}/0.1",
    )
    payload = {
        "text": f"{subject}\n{body}",
        "subject": subject,
        "body": body,
        "severity": severity,
        "sender": SENDER,
        "sent_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    with session:
        reply = session.post(
            url,
            json=payload,
            headers=dict(extra.get("headers") or {}),
            auth=(conn.login, conn.password or "") if conn.login else None,
            timeout=float(extra.get("timeout", 10)),
        )
    if not reply.ok:
        excerpt = body_excerpt(reply.content, _secrets(conn))
        raise RuntimeError(f"{_where(url)} answered {reply.status_code} {excerpt}")


def _where(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def _mail(conn: NotifyConnection, subject: str, body: str, severity: str) -> None:
    extra = conn.extra
    sender = extra.get("from")
    recipients = extra.get("to") or []
    if isinstance(recipients, str):
        recipients = [r.strip() for r in recipients.split(",") if r.strip()]
    if not (conn.host and sender and recipients):
        raise ValueError(
            f"connection {SMTP_CONNECTION} needs a host and extra {{'from': ..., 'to': [...]}}"
        )
    use_ssl, starttls = _flag(extra.get("ssl")), _flag(extra.get("starttls"))
    port = conn.port or (465 if use_ssl else 587 if starttls else 25)
    timeout = float(extra.get("timeout", 30))
    message = EmailMessage()
    message["Subject"] = f"[STI {severity}] {subject}"
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message.set_content(body)
    context = ssl.create_default_context()
    if use_ssl:
        server: smtplib.SMTP = smtplib.SMTP_SSL(conn.host, port, timeout=timeout, context=context)
    else:
        server = smtplib.SMTP(conn.host, port, timeout=timeout)
    with server:
        if starttls and not use_ssl:
            server.starttls(context=context)
        if conn.login:
            server.login(conn.login, conn.password or "")
        server.send_message(message, from_addr=sender, to_addrs=recipients)


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)
