"""Change events from a stand-in registry: the reference sender for registry operators.

When ``POST /_standin/changes`` changes records, the registry queues one CloudEvents 1.0 event
per changed record and posts it, signed per Standard Webhooks, to the event intake
(connectors/event_intake.py; the README's "Change events" is the contract for senders):

    sender = EventSender(EventSettings("http://127.0.0.1:8090", "ninh-binh-registry", secret))
    sender.publish([RecordChange("st_task", "NB-2024-DT-0001", 2, False, "2026-07-01T00:00:00Z")])
    sender.stats()  # {"subscription": ..., "delivered": 1, "pending": 0, "refused": 0, ...}
    sender.close()

- One event at a time, in the order of the changes, from an in-memory outbox, on a background
  thread: the request that made the changes is answered at once.
- Every attempt is signed anew with the time of sending and keeps the event's id as its
  ``webhook-id``; the intake de-duplicates by (source, id), so retrying an event it had in fact
  stored is answered 200 and counted as delivered.
- Connection errors, timeouts, 429 and 5xx are retried with exponential backoff (0.2 s doubling
  to 10 s, at least the ``Retry-After`` asked for) until the stand-in stops. Any other answer
  refuses the event: it is dropped with a log line and counted as refused.
- The outbox lives in memory, so events still pending when the stand-in stops are lost. A real
  registry keeps its outbox in its database, written in the transaction that makes the change.

Signing secrets reach the registry process through the environment only
(:func:`events_secret_env`), never through its command line.
"""

from __future__ import annotations

import base64
import logging
import secrets
import threading
import uuid
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import orjson
import requests
from standardwebhooks import Webhook

log = logging.getLogger(__name__)

# The name prefix of the variables holding each registry's signing secret (not a secret itself).
EVENTS_SECRET_ENV = "STANDIN_REGISTRY_EVENTS_SECRET"  # noqa: S105
MEDIA_TYPE = "application/cloudevents+json"
UPSERTED = "vn.gov.sti.record.upserted"
DELETED = "vn.gov.sti.record.deleted"
FIRST_BACKOFF = 0.2  # seconds before the first retry; doubles up to MAX_BACKOFF
MAX_BACKOFF = 10.0
TIMEOUT = (3.0, 10.0)  # seconds to connect, to read the answer


def events_secret_env(registry_id: str) -> str:
    """The variable holding one registry's signing secret in the registry process."""
    return f"{EVENTS_SECRET_ENV}_{registry_id.upper()}"


def new_signing_secret() -> str:
    """A fresh Standard Webhooks secret: ``whsec_`` + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


@dataclass(frozen=True)
class EventTarget:
    """Where stand-in registries send their change events: the intake's URL (e.g.
    ``http://127.0.0.1:8090``) and, per key, the signing secret and the subscription.

    Keys are catalogue source ids for ``local.standins.run_standins`` (the subscription then
    defaults to the source's ``events.subscription``) and registry ids for
    ``run_registry``/``run_registries`` (the single-registry mode is ``ninh_binh``), which need
    the subscription of each key with a secret.
    """

    intake_url: str
    secrets: Mapping[str, str] = field(repr=False)
    subscriptions: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class EventSettings:
    """One registry's sender: the intake, its subscription there, and its signing secret."""

    intake_url: str
    subscription: str
    secret: str = field(repr=False)

    @property
    def endpoint(self) -> str:
        return f"{self.intake_url.rstrip('/')}/v1/sources/{self.subscription}/events"


@dataclass(frozen=True, slots=True)
class RecordChange:
    entity: str  # the landing (catalogue) name, e.g. st_task
    record_id: str
    version: int  # after the change
    deleted: bool
    time: str  # RFC 3339: the record's updated_at, when it changed


class ChangedStore(Protocol):
    @property
    def records(self) -> int: ...
    @property
    def changes(self) -> int: ...
    def record_at(self, seq: int) -> dict[str, Any]: ...


def last_changes(store: ChangedStore, entity: str, count: int) -> list[RecordChange]:
    """The ``count`` most recent changes of a record store, oldest first.

    Changed records sit at the end of the store's ordering in the order they were changed, so
    these are the records ``apply_changes`` just returned, updated ones then deleted ones.
    """
    end = store.records + store.changes
    changes = []
    for seq in range(end - count, end):
        record = store.record_at(seq)
        if record["id"] is None:  # changes pick clean records, which have ids; never expected
            continue
        changes.append(
            RecordChange(
                entity, record["id"], record["version"], record["deleted"], record["updated_at"]
            )
        )
    return changes


def change_event(subscription: str, change: RecordChange) -> dict[str, Any]:
    """The CloudEvent (structured JSON mode) saying that a record changed."""
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": subscription,
        "type": DELETED if change.deleted else UPSERTED,
        "time": change.time,
        "datacontenttype": "application/json",
        "data": {"entity": change.entity, "record_id": change.record_id, "version": change.version},
    }


class EventSender:
    """One registry's outbox and the thread delivering it (started at the first publish)."""

    def __init__(
        self,
        settings: EventSettings,
        *,
        first_backoff: float = FIRST_BACKOFF,
        max_backoff: float = MAX_BACKOFF,
    ) -> None:
        self.settings = settings
        self._webhook = Webhook(settings.secret)
        self._first_backoff = first_backoff
        self._max_backoff = max_backoff
        self._outbox: deque[tuple[str, bytes]] = deque()  # (event id, body)
        self._lock = threading.Condition()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.delivered = 0
        self.refused = 0
        self.retries = 0
        self.last_error: str | None = None
        self._failing = False  # the last attempt is to be retried

    def publish(self, changes: Iterable[RecordChange]) -> None:
        """Queue one event per change; returns at once."""
        events = [change_event(self.settings.subscription, change) for change in changes]
        with self._lock:
            if self._stopping.is_set():
                return
            self._outbox.extend((event["id"], orjson.dumps(event)) for event in events)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"events-{self.settings.subscription}", daemon=True
                )
                self._thread.start()
            self._lock.notify()

    def stats(self) -> dict[str, Any]:
        with self._lock:
            pending = len(self._outbox)
        return {
            "subscription": self.settings.subscription,
            "delivered": self.delivered,
            "pending": pending,
            "refused": self.refused,
            "retries": self.retries,
            "last_error": self.last_error,  # since the last delivery
        }

    def stop(self) -> None:
        """Ask the delivery thread to stop (at once, or after the attempt under way)."""
        with self._lock:
            self._stopping.set()
            self._lock.notify()

    def close(self, timeout: float = 2.0) -> None:
        """Stop delivering; events still pending are dropped (and counted in the log)."""
        self.stop()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._outbox:
            log.warning(
                "events to %s: %d still pending at shutdown, dropped",
                self.settings.subscription,
                len(self._outbox),
            )

    def _run(self) -> None:
        with requests.Session() as session:
            session.trust_env = False  # the intake is local: never through a proxy
            backoff = self._first_backoff
            while True:
                with self._lock:
                    while not self._outbox and not self._stopping.is_set():
                        self._lock.wait()
                    if self._stopping.is_set():
                        return
                    event_id, body = self._outbox[0]
                outcome = self._deliver(session, event_id, body)
                if isinstance(outcome, str):  # done with: counted as it leaves the outbox
                    with self._lock:
                        self._outbox.popleft()
                        if outcome == "delivered":
                            self.delivered += 1
                        else:
                            self.refused += 1
                    backoff = self._first_backoff
                    continue
                self.retries += 1
                if self._stopping.wait(max(backoff, min(outcome, self._max_backoff))):
                    return
                backoff = min(backoff * 2, self._max_backoff)

    def _deliver(self, session: requests.Session, event_id: str, body: bytes) -> str | float:
        """One attempt: "delivered" or "refused", or the seconds the intake asked to wait
        before a retry (0 when it did not say)."""
        now = datetime.now(UTC)
        headers = {
            "content-type": MEDIA_TYPE,
            "webhook-id": event_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": self._webhook.sign(event_id, now, body),
        }
        subscription = self.settings.subscription
        try:
            response = session.post(
                self.settings.endpoint,
                data=body,
                headers=headers,
                timeout=TIMEOUT,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            return self._failed(f"{type(exc).__name__}: {exc}"[:300], 0.0)
        status = response.status_code
        if status == 429 or status >= 500:
            return self._failed(f"HTTP {status}", _retry_after(response))
        if self._failing:
            log.info("events to %s: the intake answers again (HTTP %d)", subscription, status)
            self._failing = False
        if 200 <= status < 300:
            self.last_error = None
            return "delivered"
        self.last_error = f"HTTP {status}: event {event_id} refused"
        log.error(
            "events to %s: event %s refused with HTTP %d, dropped: %s",
            subscription,
            event_id,
            status,
            _detail(response),
        )
        return "refused"

    def _failed(self, error: str, retry_after: float) -> float:
        if not self._failing or self.last_error != error:  # a line per failure, not per retry
            log.warning(
                "events to %s: %s; retrying with backoff", self.settings.subscription, error
            )
        self._failing = True
        self.last_error = error
        return retry_after


def _retry_after(response: requests.Response) -> float:
    value = response.headers.get("retry-after", "").strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return 0.0
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


def _detail(response: requests.Response) -> str:
    try:
        return str(response.json().get("detail", ""))[:500]
    except (ValueError, AttributeError):
        return response.text[:200]


def settings_from(
    intake_url: str | None, subscriptions: Mapping[str, str], environ: Mapping[str, str]
) -> dict[str, EventSettings]:
    """registry id → its sender's settings; the secrets come from ``environ``.

    ValueError (naming the variable, never a secret) when a secret is missing or invalid.
    """
    if not intake_url:
        if subscriptions:
            raise ValueError("event subscriptions need the intake's URL")
        return {}
    settings = {}
    for registry_id, subscription in subscriptions.items():
        variable = events_secret_env(registry_id)
        secret = environ.get(variable, "")
        if not secret:
            raise ValueError(f"set the signing secret of {registry_id} in {variable}")
        try:
            Webhook(secret)
        except Exception:
            raise ValueError(f"{variable} is not a Standard Webhooks secret") from None
        settings[registry_id] = EventSettings(intake_url, subscription, secret)
    return settings
