"""Notifications (connectors/notify.py, dags/notifiers.py): the log always, a JSON POST to a
real local HTTP server, an e-mail to a real local SMTP server; a failing channel is logged and
never raises; StiNotifier's message for a failed task, through Airflow itself (dag.test)."""

from __future__ import annotations

import base64
import email
import email.policy
import json
import logging
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pendulum
import pytest

from connectors.notify import NotifyConnection, notify, parse_connection, webhook_url
from tests.airflow_standalone import CATALOGUE

SECRET_PATH = "/hooks/T0/B0/s3cr3t-path"


class WebhookSink:
    """A local HTTP server recording every POST (path, headers, JSON body); answers `status`."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.requests: list[dict] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                sink.requests.append(
                    {
                        "path": self.path,
                        "headers": dict(self.headers),
                        "json": json.loads(self.rfile.read(length) or b"null"),
                    }
                )
                self.send_response(sink.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> WebhookSink:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def connection(self, **extra: object) -> str:
        """AIRFLOW_CONN_STI_NOTIFY_WEBHOOK in Airflow's JSON form."""
        return json.dumps({"conn_type": "http", "host": self.base + SECRET_PATH, "extra": extra})


@contextmanager
def smtp_sink() -> Iterator[tuple[int, list[tuple[str, list[str], bytes]]]]:
    """A local SMTP server (the standard library's smtpd, deprecated but in Python 3.11):
    its port and the messages it received (envelope from, envelope to, data)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import asyncore
        import smtpd

    received: list[tuple[str, list[str], bytes]] = []
    socket_map: dict = {}

    class Sink(smtpd.SMTPServer):
        def process_message(self, peer, mailfrom, rcpttos, data, **kwargs):
            received.append((mailfrom, rcpttos, data))

    server = Sink(("127.0.0.1", 0), None, map=socket_map, decode_data=False)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            asyncore.loop(timeout=0.05, count=1, map=socket_map)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.socket.getsockname()[1], received
    finally:
        stop.set()
        thread.join(5)
        server.close()


def _smtp_connection(port: int, **extra: object) -> str:
    return json.dumps(
        {
            "conn_type": "smtp",
            "host": "127.0.0.1",
            "port": port,
            "extra": {"from": "sti-pipeline@example.gov.vn", **extra},
        }
    )


@pytest.fixture
def no_channels(monkeypatch):
    for name in ("AIRFLOW_CONN_STI_NOTIFY_WEBHOOK", "AIRFLOW_CONN_STI_NOTIFY_SMTP"):
        monkeypatch.delenv(name, raising=False)


def test_without_channels_it_only_logs_at_the_severitys_level(no_channels, caplog):
    caplog.set_level(logging.WARNING, logger="sti.notify")
    assert notify("lag", "events wait", severity="warning") == ["log"]
    assert notify("failed", "a task failed", severity="error") == ["log"]
    levels = [(r.name, r.levelno, r.getMessage()) for r in caplog.records]
    assert levels == [
        ("sti.notify", logging.WARNING, "lag\nevents wait"),
        ("sti.notify", logging.ERROR, "failed\na task failed"),
    ]


def test_it_posts_json_to_the_webhook_with_its_credentials_and_headers(
    no_channels, monkeypatch, caplog
):
    with WebhookSink() as sink:
        conn = json.loads(sink.connection(headers={"X-Api-Key": "key-123"}))
        conn.update(login="sti", password="p4ss-w0rd")
        monkeypatch.setenv("AIRFLOW_CONN_STI_NOTIFY_WEBHOOK", json.dumps(conn))
        used = notify("Nguồn trễ", "Sự kiện chờ quá lâu", severity="warning")

    assert used == ["log", "webhook"]
    [request] = sink.requests
    assert request["path"] == SECRET_PATH
    assert request["headers"]["X-Api-Key"] == "key-123"
    assert request["headers"]["Authorization"] == "Basic " + base64.b64encode(
        b"sti:p4ss-w0rd"
    ).decode("ascii")
    body = request["json"]
    assert body["text"] == "Nguồn trễ\nSự kiện chờ quá lâu"
    assert (body["subject"], body["body"], body["severity"]) == (
        "Nguồn trễ",
        "Sự kiện chờ quá lâu",
        "warning",
    )
    assert body["sender"] == "sti-pipeline" and pendulum.parse(body["sent_at"])
    assert "p4ss-w0rd" not in caplog.text and "key-123" not in caplog.text


def test_a_webhook_given_as_an_airflow_uri_is_that_url(no_channels, monkeypatch):
    with WebhookSink() as sink:
        monkeypatch.setenv("AIRFLOW_CONN_STI_NOTIFY_WEBHOOK", sink.base + SECRET_PATH)
        assert notify("s", "b", severity="error") == ["log", "webhook"]
    assert [r["path"] for r in sink.requests] == [SECRET_PATH]

    # As Airflow reads URIs: scheme → type, path → schema, query → extra; a second scheme is
    # the host's own protocol.
    conn = parse_connection("https://hooks.example.org:8443/services/T0/B0?timeout=5")
    assert (conn.conn_type, conn.host, conn.port, conn.schema) == (
        "https",
        "hooks.example.org",
        8443,
        "services/T0/B0",
    )
    assert conn.extra == {"timeout": 5}
    assert webhook_url(conn) == "https://hooks.example.org:8443/services/T0/B0"
    conn = parse_connection(
        "http://https://chat.example.org/hook?__extra__=%7B%22attempts%22%3A2%7D"
    )
    assert webhook_url(conn) == "https://chat.example.org/hook" and conn.extra == {"attempts": 2}
    assert webhook_url(NotifyConnection(host="chat.example.org", port=8080, schema="x")) == (
        "https://chat.example.org:8080/x"
    )


def test_a_failing_webhook_is_retried_logged_without_its_secret_and_never_raises(
    no_channels, monkeypatch, caplog
):
    caplog.set_level(logging.WARNING, logger="sti.notify")
    with WebhookSink(status=503) as sink:
        monkeypatch.setenv("AIRFLOW_CONN_STI_NOTIFY_WEBHOOK", sink.connection(attempts=2))
        assert notify("a task failed", "details", severity="error") == ["log"]
    assert len(sink.requests) == 2  # retried once, then given up
    [failure] = [r for r in caplog.records if "not sent" in r.getMessage()]
    assert failure.levelno == logging.ERROR
    assert "503" in failure.getMessage() and "webhook" in failure.getMessage()

    # Nothing listening: the connection error is logged without the URL's path (its secret).
    caplog.clear()
    closed = WebhookSink()
    closed.server.server_close()  # bound once, now closed: the port refuses connections
    monkeypatch.setenv("AIRFLOW_CONN_STI_NOTIFY_WEBHOOK", closed.connection(attempts=1))
    assert notify("a task failed", "details", severity="error") == ["log"]
    message = next(r.getMessage() for r in caplog.records if "not sent" in r.getMessage())
    assert "ConnectionError" in message
    assert "s3cr3t-path" not in caplog.text

    # A malformed connection is a failing channel too.
    monkeypatch.setenv("AIRFLOW_CONN_STI_NOTIFY_WEBHOOK", "{not json")
    assert notify("s", "b", severity="error") == ["log"]


def test_it_sends_an_email_through_smtp(no_channels, monkeypatch):
    with smtp_sink() as (port, received):
        monkeypatch.setenv(
            "AIRFLOW_CONN_STI_NOTIFY_SMTP",
            _smtp_connection(port, to=["ops@example.gov.vn", "data@example.gov.vn"]),
        )
        used = notify("Lô dữ liệu bị chặn", "batch 7 blocked: 40% quarantined", severity="error")

    assert used == ["log", "smtp"]
    [(mailfrom, rcpttos, data)] = received
    assert mailfrom == "sti-pipeline@example.gov.vn"
    assert rcpttos == ["ops@example.gov.vn", "data@example.gov.vn"]
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert message["Subject"] == "[STI error] Lô dữ liệu bị chặn"
    assert message["To"] == "ops@example.gov.vn, data@example.gov.vn"
    assert message.get_content().strip() == "batch 7 blocked: 40% quarantined"


def test_a_failing_smtp_channel_is_logged_and_the_webhook_still_delivers(
    no_channels, monkeypatch, caplog
):
    """The connection asks for STARTTLS and a login, which this server does not offer: the
    e-mail fails (logged, the password nowhere), the webhook is sent all the same."""
    caplog.set_level(logging.WARNING, logger="sti.notify")
    with smtp_sink() as (port, received), WebhookSink() as sink:
        smtp = json.loads(_smtp_connection(port, to="ops@example.gov.vn", starttls=True))
        smtp.update(login="mailer", password="smtp-s3cret")
        monkeypatch.setenv("AIRFLOW_CONN_STI_NOTIFY_SMTP", json.dumps(smtp))
        monkeypatch.setenv("AIRFLOW_CONN_STI_NOTIFY_WEBHOOK", sink.connection())
        assert notify("s", "b", severity="warning") == ["log", "webhook"]
    assert received == [] and len(sink.requests) == 1
    message = next(r.getMessage() for r in caplog.records if "not sent by smtp" in r.getMessage())
    assert "STARTTLS" in message
    assert "smtp-s3cret" not in caplog.text


class _TaskInstance:
    dag_id = "ninh_binh_registry__st_task"
    task_id = "gate"
    run_id = "manual__2026-05-04T03:00:00+00:00"
    try_number = 1
    max_tries = 2
    log_url = "http://localhost:8080/dags/ninh_binh_registry__st_task/runs/x/tasks/gate"


def test_a_failure_is_described_and_a_blocked_batch_named_as_such():
    from airflow.sdk.exceptions import AirflowFailException

    from dags.notifiers import describe_failure

    blocked = AirflowFailException(
        "batch 7 blocked by its quality gate: 40% of the rows quarantined (limit 10%)"
    )
    subject, body = describe_failure({"ti": _TaskInstance(), "exception": blocked})
    assert subject == "blocked batch: ninh_binh_registry__st_task (task gate failed)"
    assert body.startswith("A batch was blocked by its quality gate")
    for line in (
        "DAG: ninh_binh_registry__st_task",
        "Task: gate",
        "Run: manual__2026-05-04T03:00:00+00:00",
        "Try: 1 of 3",
        "Exception: AirflowFailException: batch 7 blocked by its quality gate: 40% of the rows"
        " quarantined (limit 10%)",
        f"Log: {_TaskInstance.log_url}",
    ):
        assert line in body.splitlines(), body

    subject, body = describe_failure(
        {"ti": _TaskInstance(), "exception": RuntimeError("registry answered 500")}
    )
    assert subject == "task failed: ninh_binh_registry__st_task.gate"
    assert "Exception: RuntimeError: registry answered 500" in body.splitlines()
    assert "blocked" not in body


@pytest.fixture(scope="module")
def operations_dag(airflow_home):
    from airflow.dag_processing.dagbag import DagBag

    from local.airflow_env import DAGS_FOLDER

    bag = DagBag(dag_folder=str(DAGS_FOLDER / "operations_dag.py"))
    assert bag.import_errors == {}
    return bag.dags["ops__event_lag"]


@pytest.mark.e2e
def test_a_failed_task_is_notified_through_airflow(operations_dag, monkeypatch, tmp_path):
    """The monitoring DAG cannot reach the warehouse: its task fails, and StiNotifier (the
    DAG's on_failure_callback, the one the sync and warehouse DAGs use) posts the failure."""
    from local.airflow_env import warehouse_connection

    catalogue = tmp_path / "sources.yml"  # one source: dag.test parses the DAG folder
    catalogue.write_text(CATALOGUE, encoding="utf-8")
    monkeypatch.setenv("STI_SOURCE_CATALOGUE", str(catalogue))
    with WebhookSink() as sink:
        monkeypatch.setenv("AIRFLOW_CONN_STI_NOTIFY_WEBHOOK", sink.connection())
        monkeypatch.delenv("AIRFLOW_CONN_STI_NOTIFY_SMTP", raising=False)
        closed = WebhookSink()  # a port nothing listens on
        closed.server.server_close()
        port = closed.server.server_address[1]
        monkeypatch.setenv(
            "AIRFLOW_CONN_STI_WAREHOUSE",
            warehouse_connection(f"postgresql://postgres@127.0.0.1:{port}/sti"),
        )
        run = operations_dag.test(logical_date=pendulum.now("UTC"))

    assert run.state == "failed"
    [request] = sink.requests
    notice = request["json"]
    assert notice["severity"] == "error"
    assert notice["subject"] == "task failed: ops__event_lag.notify_late_events"
    lines = notice["body"].splitlines()
    assert "DAG: ops__event_lag" in lines and "Task: notify_late_events" in lines
    assert f"Run: {run.run_id}" in lines
    assert "Try: 1 of 1" in lines
    assert any(line.startswith("Exception: OperationalError: ") for line in lines), lines
    [log_line] = [line for line in lines if line.startswith("Log: ")]
    assert "/dags/ops__event_lag/runs/" in log_line and "/tasks/notify_late_events" in log_line


@pytest.mark.e2e
def test_a_batch_the_gate_blocks_is_notified_as_a_blocked_batch(
    airflow_home, warehouse_url, monkeypatch, tmp_path
):
    """A real sync DAG run whose gate blocks the batch (60% of its rows fail): the gate task's
    failure callback (failure_notifier, as the DAG factory's default_args set it) posts it."""
    from airflow.dag_processing.dagbag import DagBag

    from dags.notifiers import failure_notifier
    from local.airflow_env import DAGS_FOLDER, connection_env
    from local.registry.process import run_registry

    catalogue = tmp_path / "sources.yml"
    catalogue.write_text(CATALOGUE, encoding="utf-8")
    monkeypatch.setenv("STI_SOURCE_CATALOGUE", str(catalogue))
    bag = DagBag(dag_folder=str(DAGS_FOLDER / "source_dags.py"))
    dag = bag.dags["ninh_binh_registry__st_task"]
    for task in dag.tasks:
        monkeypatch.setattr(task, "on_failure_callback", [failure_notifier()])
    monkeypatch.delenv("AIRFLOW_CONN_STI_NOTIFY_SMTP", raising=False)
    with run_registry(records=100, bad_share=0.6, seed=3) as registry, WebhookSink() as sink:
        for name, value in connection_env(warehouse_url, {"ninh_binh_registry": registry}).items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("AIRFLOW_CONN_STI_NOTIFY_WEBHOOK", sink.connection())
        run = dag.test(logical_date=pendulum.now("UTC"))

    assert run.state == "failed"
    [request] = sink.requests  # the gate only: the tasks after it did not run
    notice = request["json"]
    assert notice["subject"] == "blocked batch: ninh_binh_registry__st_task (task gate failed)"
    assert (
        "Exception: AirflowFailException: batch 1 blocked by its quality gate: 60 of 100"
        in (notice["body"])
    )
