"""Airflow's side of the notifications (connectors/notify.py): a notifier for failed tasks and
the connections the notifications go through, resolved by Airflow.

Every sync and warehouse DAG has ``on_failure_callback=failure_notifier()`` in its
default_args: a task that fails for good (after its retries) sends its DAG, task, run, try,
exception and log URL to the operators. A batch the quality gate blocked fails the `gate` task
with AirflowFailException (no retry), so it is reported at once, as a "blocked batch".
"""

from __future__ import annotations

import re
from typing import Any

from airflow.sdk import BaseHook, BaseNotifier

from connectors.notify import (
    SMTP_CONNECTION,
    WEBHOOK_CONNECTION,
    NotifyConnection,
    connection_from_env,
    notify,
)

# What the gate's errors say of a blocked batch ("batch 12 blocked by its quality gate: …").
_BLOCKED = re.compile(r"\bblocked by (its|the) quality gate\b|\bblocked batch\b", re.IGNORECASE)
NOTIFY_CONNECTIONS = (WEBHOOK_CONNECTION, SMTP_CONNECTION)
_MAX_EXCEPTION_CHARS = 2000


def send(subject: str, body: str, *, severity: str) -> list[str]:
    """connectors.notify.notify with the notification connections as Airflow resolves them
    (environment, secrets backend or metadata DB); the channels that delivered it."""
    return notify(
        subject,
        body,
        severity=severity,  # type: ignore[arg-type]
        connections={conn_id: _connection(conn_id) for conn_id in NOTIFY_CONNECTIONS},
    )


def _connection(conn_id: str) -> NotifyConnection | None:
    try:
        conn = BaseHook.get_connection(conn_id)
    except Exception as exc:  # not defined (AirflowNotFoundException), or Airflow unreachable
        if type(exc).__name__ == "AirflowNotFoundException":
            return None
        return connection_from_env(conn_id)  # the environment still works without Airflow
    return NotifyConnection(
        conn_type=conn.conn_type,
        host=conn.host,
        port=conn.port,
        login=conn.login,
        password=conn.password,
        schema=conn.schema,
        extra=conn.extra_dejson,
    )


def describe_failure(context: Any) -> tuple[str, str]:
    """Subject and body for a failed task, from its Airflow context."""
    ti = context.get("ti") or context.get("task_instance")
    dag_id = getattr(ti, "dag_id", None) or getattr(context.get("dag"), "dag_id", "?")
    task_id = getattr(ti, "task_id", None) or getattr(context.get("task"), "task_id", "?")
    run_id = getattr(ti, "run_id", None) or context.get("run_id", "?")
    try_number = getattr(ti, "try_number", None)
    max_tries = getattr(ti, "max_tries", None)
    exception = context.get("exception")
    if isinstance(exception, BaseException):
        error = f"{type(exception).__name__}: {exception}"
    else:
        error = str(exception) if exception else "(no exception recorded)"
    if len(error) > _MAX_EXCEPTION_CHARS:
        error = error[: _MAX_EXCEPTION_CHARS - 1] + "…"
    try:
        log_url = ti.log_url if ti is not None else None
    except Exception:  # a URL is a convenience: never lose the notification for it
        log_url = None
    blocked = exception is not None and bool(_BLOCKED.search(str(exception)))
    if blocked:
        subject = f"blocked batch: {dag_id} (task {task_id} failed)"
        lead = (
            "A batch was blocked by its quality gate: nothing of it was published. See its"
            " reason in ops.load_batch.blocked_reason and the quarantine (make quarantine);"
            " make release BATCH=… NOTE=… publishes it once it is known genuine."
        )
    else:
        subject = f"task failed: {dag_id}.{task_id}"
        lead = "A task failed after its retries."
    tries = f"{try_number}" + (f" of {max_tries + 1}" if isinstance(max_tries, int) else "")
    lines = [
        lead,
        "",
        f"DAG: {dag_id}",
        f"Task: {task_id}",
        f"Run: {run_id}",
        f"Try: {tries if try_number is not None else '?'}",
        f"Exception: {error}",
        f"Log: {log_url or '-'}",
    ]
    return subject, "\n".join(lines)


class StiNotifier(BaseNotifier):
    """Sends a failed task's summary through connectors.notify (log, webhook, e-mail)."""

    def __init__(self, severity: str = "error") -> None:
        super().__init__()
        self.severity = severity

    def notify(self, context: Any) -> None:
        subject, body = describe_failure(context)
        send(subject, body, severity=self.severity)


def failure_notifier() -> StiNotifier:
    """For ``default_args={"on_failure_callback": failure_notifier(), ...}``."""
    return StiNotifier(severity="error")
