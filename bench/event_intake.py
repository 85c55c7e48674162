"""Event intake throughput: signed change events accepted and durable per second, none lost.

The intake (connectors/event_intake.py) runs in a child process under uvicorn, as it would be
deployed; this process posts pre-signed CloudEvents over loopback from `--clients` concurrent
keep-alive connections, a share of them re-sent (a sender's retries), then counts the inbox's
rows: every event answered 2xx must be there once. Target (issue 14): >= 1,000 events/s.

    .venv/bin/python -m bench.event_intake                     # 20,000 events, 3 runs
    .venv/bin/python -m bench.event_intake --events 2000 --repeat 1 --no-write   # smoke
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import multiprocessing
import os
import platform
import secrets
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import orjson
import psycopg
from standardwebhooks import Webhook

from bench.results_log import record_results, say
from connectors.catalogue import load_catalogue
from connectors.event_intake import MEDIA_TYPE
from connectors.warehouse import ensure_schema
from local.postgres import drop_database, ensure_database

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS = REPO_ROOT / "bench" / "results" / "event_intake.md"
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
TARGET = 1_000  # events/s
RESEND_EVERY = 20  # one delivery in 20 is a re-send of an earlier event
MAX_EVENTS = 200_000  # pre-signed before timing: all must be sent within the 5-minute window


@dataclass
class Run:
    events: int  # distinct events
    resent: int
    clients: int
    seconds: float
    statuses: dict[int, int]
    latencies_ms: list[float]
    rows: int  # inbox rows of this run's events
    missing: int  # acknowledged but not in the inbox
    commits: int
    load: float

    @property
    def stored_per_second(self) -> float:
        return self.rows / self.seconds

    @property
    def passed(self) -> bool:
        return (
            self.missing == 0
            and self.rows == self.events
            and self.statuses.get(202, 0) == self.events
            and self.statuses.get(200, 0) == self.resent
            and self.stored_per_second >= TARGET
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.event_intake",
        description="Signed change events through the intake into the inbox, per second.",
    )
    parser.add_argument("--events", type=int, default=20_000, help="default: %(default)s")
    parser.add_argument("--clients", type=int, default=32, help="concurrent connections")
    parser.add_argument("--repeat", type=int, default=3, help="runs (default 3)")
    parser.add_argument("--note", default="", help="a remark for the results section")
    parser.add_argument("--no-write", action="store_true", help="do not append to the results")
    args = parser.parse_args(argv)
    if not 1 <= args.events <= MAX_EVENTS or args.clients < 1 or args.repeat < 1:
        parser.error(f"--events must be 1 to {MAX_EVENTS}; --clients and --repeat at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started_at = datetime.now(UTC)
    runs, machine = run_benchmark(args.events, args.clients, args.repeat)
    text = report(args, runs, machine, started_at)
    record_results(
        text,
        RESULTS,
        "Event intake benchmark results",
        "bench.event_intake",
        write=not args.no_write,
    )
    return 0 if all(run.passed for run in runs) else 1


def run_benchmark(events: int, clients: int, repeat: int) -> tuple[list[Run], str]:
    sources = [s for s in load_catalogue() if s.events is not None]
    keys = {s.id: "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode() for s in sources}
    with fresh_database() as (url, server), intake_process(url, keys) as port:
        with psycopg.connect(url) as conn:
            pg_version = conn.execute("show server_version").fetchone()[0]
        runs = []
        for number in range(1, repeat + 1):
            runs.append(one_run(url, port, sources, keys, events, clients))
            say(f"run {number}: {_line(runs[-1])}")
    return runs, machine_description(server, pg_version)


def one_run(url, port, sources, keys, events: int, clients: int) -> Run:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("truncate ops.event_inbox")
    requests, ids = build_requests(port, sources, keys, events)
    load = os.getloadavg()[0]
    started = time.perf_counter()
    statuses, latencies = asyncio.run(post_all(port, requests, clients))
    seconds = time.perf_counter() - started
    with psycopg.connect(url) as conn:
        rows, commits, present = conn.execute(
            "select count(*), count(distinct received_at), count(*) filter"
            " (where event_id = any(%s)) from ops.event_inbox",
            (ids,),
        ).fetchone()
    return Run(
        events=events,
        resent=len(requests) - events,
        clients=clients,
        seconds=seconds,
        statuses=statuses,
        latencies_ms=latencies,
        rows=rows,
        missing=events - present,
        commits=commits,
        load=load,
    )


def build_requests(port, sources, keys, events: int) -> tuple[list[bytes], list[str]]:
    """Signed HTTP/1.1 requests, round-robin over every source entity; not timed (signing is
    the senders' work). Every RESEND_EVERY-th delivery repeats an event sent ten before."""
    targets = [(s, entity) for s in sources for entity in s.entities]
    webhooks = {source_id: Webhook(key) for source_id, key in keys.items()}
    now = datetime.now(UTC)
    requests, ids, bodies = [], [], []
    for i in range(events):
        source, entity = targets[i % len(targets)]
        event = {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": source.events.subscription,
            "type": "vn.gov.sti.record.deleted" if i % 50 == 49 else "vn.gov.sti.record.upserted",
            "time": now.isoformat(),
            "datacontenttype": "application/json",
            "data": {"entity": entity, "record_id": f"BENCH-{i:07d}", "version": 1 + i % 5},
        }
        ids.append(event["id"])
        bodies.append((source, orjson.dumps(event)))
        if i % RESEND_EVERY == RESEND_EVERY - 1 and i >= 10:
            bodies.append(bodies[-11])
    for source, body in bodies:
        msg_id = f"msg_{uuid.uuid4().hex}"
        head = (
            f"POST /v1/sources/{source.events.subscription}/events HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{port}\r\nContent-Type: {MEDIA_TYPE}\r\n"
            f"Content-Length: {len(body)}\r\nwebhook-id: {msg_id}\r\n"
            f"webhook-timestamp: {int(now.timestamp())}\r\n"
            f"webhook-signature: {webhooks[source.id].sign(msg_id, now, body)}\r\n\r\n"
        )
        requests.append(head.encode() + body)
    return requests, ids


async def post_all(port: int, requests: list[bytes], clients: int):
    """Send every request over `clients` keep-alive connections; statuses and latencies."""
    pending = iter(requests)
    statuses: dict[int, int] = {}
    latencies: list[float] = []

    async def client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for request in pending:  # shared: each connection takes the next one
                sent = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                await reader.readexactly(length)
                latencies.append((time.perf_counter() - sent) * 1000)
                status = int(head.split(b" ", 2)[1])
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    await asyncio.gather(*(client() for _ in range(clients)))
    return statuses, latencies


# --- The intake and the database ------------------------------------------------------------


def _serve(url: str, keys: dict[str, str], port: int) -> None:
    from connectors.event_intake import create_app, serve

    serve(create_app(url, load_catalogue(), keys), port=port)


@contextmanager
def intake_process(url: str, keys: dict[str, str]) -> Iterator[int]:
    """The intake in a child process (its own interpreter and core), on a free port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    child = multiprocessing.get_context("spawn").Process(target=_serve, args=(url, keys, port))
    child.start()
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if not child.is_alive() or time.monotonic() > deadline:
                    raise RuntimeError("the intake did not start") from None
                time.sleep(0.1)
        yield port
    finally:
        child.terminate()
        child.join(30)


@contextmanager
def fresh_database(prefix: str = "bench_event_intake") -> Iterator[tuple[str, str]]:
    """Database <prefix>_<pid> with the warehouse schema on WAREHOUSE_URL's server (or the
    default); dropped on exit."""
    admin_url = os.environ.get("WAREHOUSE_URL") or DEFAULT_URL
    server = "WAREHOUSE_URL" if os.environ.get("WAREHOUSE_URL") else DEFAULT_URL
    dbname = f"{prefix}_{os.getpid()}"
    drop_database(admin_url, dbname)  # left over by a killed run with the same pid
    ensure_database(admin_url, dbname)
    url = urlunsplit(urlsplit(admin_url)._replace(path=f"/{dbname}"))
    try:
        ensure_schema(url)
        yield url, server
    finally:
        drop_database(admin_url, dbname)


# --- Reporting ------------------------------------------------------------------------------


def machine_description(server: str, pg_version: str) -> str:
    cpus = len(os.sched_getaffinity(0))
    with open("/proc/meminfo") as meminfo:
        kib = next((int(line.split()[1]) for line in meminfo if line.startswith("MemTotal:")), 0)
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "connectors", "bench"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        commit, dirty = "unknown", ""
    return (
        f"{cpus} CPUs (nproc), {kib / 1024 / 1024:.1f} GiB RAM, {platform.system()}"
        f" {platform.release()}, Python {platform.python_version()}, PostgreSQL {pg_version}"
        f" ({server}), commit {commit}"
        + (" + uncommitted changes in connectors/ or bench/" if dirty else "")
    )


def _line(run: Run) -> str:
    p50, p99 = _percentiles(run.latencies_ms)
    return (
        f"{run.rows:,} stored in {run.seconds:.1f} s = {run.stored_per_second:,.0f} events/s;"
        f" answers {dict(sorted(run.statuses.items()))}; p50 {p50:.1f} ms, p99 {p99:.1f} ms;"
        f" {run.commits:,} commits; missing {run.missing}"
    )


def _percentiles(values: list[float]) -> tuple[float, float]:
    if len(values) < 2:
        return (values or [0.0])[0], (values or [0.0])[0]
    cuts = statistics.quantiles(values, n=100)
    return cuts[49], cuts[98]


def report(args: argparse.Namespace, runs: list[Run], machine: str, started_at: datetime) -> str:
    lines = [
        f"{started_at:%Y-%m-%d %H:%M} UTC -- {args.events:,} events, {args.clients} clients,"
        f" {len(runs)} run(s)",
        "",
        f"Machine: {machine}.",
        *(["", f"Note: {args.note}"] if args.note else []),
        "",
        "| run | events | re-sent | seconds | stored events/s | 202 | 200 | other | p50 ms"
        " | p99 ms | commits | rows/commit | missing | doubled | load | result |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:--|",
    ]
    for number, run in enumerate(runs, 1):
        p50, p99 = _percentiles(run.latencies_ms)
        other = sum(n for status, n in run.statuses.items() if status not in (200, 202))
        lines.append(
            f"| {number} | {run.events:,} | {run.resent:,} | {run.seconds:.2f}"
            f" | {run.stored_per_second:,.0f} | {run.statuses.get(202, 0):,}"
            f" | {run.statuses.get(200, 0):,} | {other} | {p50:.1f} | {p99:.1f}"
            f" | {run.commits:,} | {run.rows / max(run.commits, 1):.1f} | {run.missing}"
            f" | {run.rows - run.events + run.missing} | {run.load:.1f}"
            f" | {'PASS' if run.passed else 'FAIL'} |"
        )
    median = statistics.median(run.stored_per_second for run in runs)
    verdict = "PASS" if all(run.passed for run in runs) else "FAIL"
    lines += [
        "",
        f"**{verdict}** (target: >= {TARGET:,} events/s stored, every 2xx in the inbox once)"
        f" -- median {median:,.0f} events/s.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
