"""Process plumbing shared by the stand-in servers (registry, exchange) run for tests/benchmarks.

:func:`serve` starts ``python -m <module>`` in its own process group (so uvicorn and anything it
spawns stop together), logs to a temporary file, waits until its health URLs answer, and stops
the whole group on exit. Secrets go through the environment, never through the command line.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO

import requests

REPO_ROOT = Path(__file__).resolve().parents[1]
STOP_TIMEOUT = 5.0  # seconds between SIGTERM and SIGKILL


@contextmanager
def serve(
    arguments: list[str],
    env: Mapping[str, str],
    health_urls: Iterable[str],
    *,
    name: str,
    startup_timeout: float,
) -> Iterator[None]:
    """Run ``python <arguments>`` from the repository root until the block exits.

    ``env`` is added to this process's environment. Each of ``health_urls`` must answer 200
    within ``startup_timeout`` seconds; otherwise RuntimeError with the tail of the server's
    log (``name`` says which server it was).
    """
    command = [sys.executable, *arguments]
    full_env = {**os.environ, **env, "PYTHONPATH": str(REPO_ROOT)}
    # The log goes to a file, not a pipe: an unread pipe would fill up and block the server.
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group, stopped as a whole
        )
        try:
            for url in health_urls:
                wait_until_healthy(process, url, log, name=name, timeout=startup_timeout)
            yield
        finally:
            stop(process)


def free_loopback_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    # The port could be taken again before the server binds it; unlikely enough on loopback.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_healthy(
    process: subprocess.Popen, health_url: str, log: IO[bytes], *, name: str, timeout: float
) -> None:
    """Poll ``health_url`` until it answers 200; RuntimeError if the process exits or times out."""
    deadline = time.monotonic() + timeout
    with requests.Session() as session:
        session.trust_env = False  # loopback: never through a proxy from the environment
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with code {process.returncode}:\n{tail(log)}")
            with suppress(requests.ConnectionError):
                if session.get(health_url, timeout=1).status_code == 200:
                    return
            time.sleep(0.05)  # polling for start-up, not synchronising a test
    raise RuntimeError(f"{name} not healthy after {timeout:.0f} s:\n{tail(log)}")


def tail(log: IO[bytes], size: int = 4000) -> str:
    """The last ``size`` bytes of a server's log file, decoded."""
    log.flush()
    log.seek(0, os.SEEK_END)
    log.seek(max(0, log.tell() - size))
    return log.read().decode("utf-8", "replace")


def stop(process: subprocess.Popen) -> None:
    """SIGTERM the process group, then SIGKILL it if it has not exited within 5 s."""
    if process.poll() is not None:
        return  # already gone (and reaped): its group id may no longer be ours to signal
    signal_group(process, signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        signal_group(process, signal.SIGKILL)
        process.wait()


def signal_group(process: subprocess.Popen, sig: signal.Signals) -> None:
    with suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
