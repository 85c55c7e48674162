"""Run the stand-in registry in a subprocess for tests and benchmarks.

    with run_registry(records=1_000_000) as registry:
        requests.post(registry.base_url + "/oauth/token", ...)

The server runs in its own process group (so uvicorn and anything it spawns stop together) and
gets its client secret through the environment, never through its command line.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import requests

from local.registry import SECRET_ENV

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT = 30.0  # seconds
STOP_TIMEOUT = 5.0  # seconds between SIGTERM and SIGKILL


@dataclass(frozen=True)
class RunningRegistry:
    base_url: str  # e.g. http://127.0.0.1:41234, no trailing slash
    client_id: str
    client_secret: str = field(repr=False)


@contextmanager
def run_registry(
    *,
    records: int = 500,
    seed: int = 42,
    bad_share: float = 0.05,
    token_ttl: int = 3600,
    client_id: str = "sti-pipeline-local",
    client_secret: str | None = None,
) -> Iterator[RunningRegistry]:
    """Start ``python -m local.registry`` on a free loopback port; stop it on exit.

    Waits until ``/healthz`` answers (at most 30 s); raises RuntimeError with the tail of the
    server's log if it exits or does not come up in time. A random secret is generated when
    none is given.
    """
    secret = client_secret or secrets.token_urlsafe(32)
    port = _free_loopback_port()
    command = [
        sys.executable, "-m", "local.registry",
        "--host", "127.0.0.1", "--port", str(port),
        "--records", str(records), "--seed", str(seed), "--bad-share", str(bad_share),
        "--token-ttl", str(token_ttl), "--client-id", client_id,
        "--log-level", "warning",
    ]  # fmt: skip
    env = {**os.environ, SECRET_ENV: secret, "PYTHONPATH": str(REPO_ROOT)}
    base_url = f"http://127.0.0.1:{port}"
    # The log goes to a file, not a pipe: an unread pipe would fill up and block the server.
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group, stopped as a whole
        )
        try:
            _wait_until_healthy(process, base_url, log)
            yield RunningRegistry(base_url, client_id, secret)
        finally:
            _stop(process)


def _free_loopback_port() -> int:
    # The port could be taken again before the server binds it; unlikely enough on loopback.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_healthy(process: subprocess.Popen, base_url: str, log: IO[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    with requests.Session() as session:
        session.trust_env = False  # loopback: never through a proxy from the environment
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(
                    f"stand-in registry exited with code {process.returncode}:\n{_tail(log)}"
                )
            with suppress(requests.ConnectionError):
                if session.get(base_url + "/healthz", timeout=1).status_code == 200:
                    return
            time.sleep(0.05)
    raise RuntimeError(
        f"stand-in registry not healthy after {STARTUP_TIMEOUT:.0f} s:\n{_tail(log)}"
    )


def _tail(log: IO[bytes], size: int = 4000) -> str:
    log.flush()
    log.seek(0, os.SEEK_END)
    log.seek(max(0, log.tell() - size))
    return log.read().decode("utf-8", "replace")


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM the process group, then SIGKILL it if it has not exited within 5 s."""
    if process.poll() is not None:
        return  # already gone (and reaped): its group id may no longer be ours to signal
    _signal_group(process, signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        _signal_group(process, signal.SIGKILL)
        process.wait()


def _signal_group(process: subprocess.Popen, sig: signal.Signals) -> None:
    with suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
