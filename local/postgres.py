"""A private PostgreSQL server for the warehouse when WAREHOUSE_URL is not set.

Uses the PostgreSQL 16 binaries bundled in the `pgserver` wheel, so a fresh machine needs no
system PostgreSQL, no root and no service manager. The server listens on 127.0.0.1 only, on a
free port remembered next to its data directory, with trust authentication (loopback only).

When run as root (containers, CI) PostgreSQL refuses to start, so the server runs as the
unprivileged `nobody` account: its data directory is handed to that account, and folders above
it that `nobody` cannot traverse get the traverse bit (o+x, no read) so the server can reach it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import shutil
import socket
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
from psycopg import sql

SUPERUSER = "postgres"
_START_TIMEOUT_S = 60


def _bundled_bin_dir() -> Path:
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the pgserver package (bundled PostgreSQL) is not installed")
    return Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


class LocalPostgres:
    """One PostgreSQL server whose data lives in `root / "data"`.

    `start()` is idempotent: it reuses a server already running on that data directory.
    """

    def __init__(self, root: Path, *, durable: bool = True) -> None:
        self.root = Path(root).resolve()
        self.data_dir = self.root / "data"
        self.log_file = self.data_dir / "server.log"
        self._port_file = self.root / "port"
        self._durable = durable
        self.bin_dir = _bundled_bin_dir()
        self._run_as = pwd.getpwnam("nobody") if os.geteuid() == 0 else None

    @property
    def port(self) -> int:
        return int(self._port_file.read_text().strip())

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    def start(self) -> str:
        """Initialise the data directory if needed, start the server, return its admin URL."""
        self.root.mkdir(parents=True, exist_ok=True)
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        if self.is_running():
            return self.url()
        port = self.port if self._port_file.exists() else _free_port()
        if not _port_is_free(port):
            port = _free_port()
        self._port_file.write_text(f"{port}\n")
        self._pg_ctl(
            "start",
            "--wait",
            f"--timeout={_START_TIMEOUT_S}",
            f"--log={self.log_file}",
            f"--options=-p {port}",
        )
        return self.url()

    def stop(self) -> None:
        if self.is_running():
            self._pg_ctl("stop", "--wait", "--mode=fast")

    def is_running(self) -> bool:
        if not (self.data_dir / "postmaster.pid").exists():
            return False
        status = subprocess.run(
            [str(self.bin_dir / "pg_ctl"), "status", "-D", str(self.data_dir)],
            capture_output=True,
            text=True,
            **self._user_kwargs(),
        )
        return status.returncode == 0

    def destroy(self) -> None:
        """Stop the server and delete its data (for throwaway test servers)."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def _initdb(self) -> None:
        if self.data_dir.exists():
            shutil.rmtree(self.data_dir)  # a half-initialised directory from an interrupted run
        self.data_dir.mkdir(mode=0o700)
        if self._run_as is not None:
            _allow_traverse(self.root)
            os.chown(self.data_dir, self._run_as.pw_uid, self._run_as.pw_gid)
        self._run(
            "initdb",
            "-D",
            str(self.data_dir),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--no-locale",
            "--no-instructions",
        )
        settings = [
            "listen_addresses = '127.0.0.1'",
            "unix_socket_directories = ''",
            "max_connections = 100",
            "shared_buffers = '256MB'",
            "max_wal_size = '2GB'",
            "logging_collector = off",
        ]
        if not self._durable:
            # Throwaway test servers: crash safety is irrelevant, speed is not.
            settings += ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write("\n# set by local/postgres.py\n" + "\n".join(settings) + "\n")

    def _pg_ctl(self, *args: str) -> None:
        self._run("pg_ctl", "-D", str(self.data_dir), *args)

    def _run(self, program: str, *args: str) -> None:
        result = subprocess.run(
            [str(self.bin_dir / program), *args],
            capture_output=True,
            text=True,
            **self._user_kwargs(),
        )
        if result.returncode != 0:
            log_tail = ""
            if self.log_file.exists():
                log_tail = "\n".join(self.log_file.read_text(errors="replace").splitlines()[-20:])
            raise RuntimeError(
                f"{program} {' '.join(args[:1])} failed ({result.returncode}):\n"
                f"{result.stderr.strip()}\n{log_tail}".rstrip()
            )

    def _user_kwargs(self) -> dict[str, int]:
        if self._run_as is None:
            return {}
        return {"user": self._run_as.pw_uid, "group": self._run_as.pw_gid}


def _allow_traverse(folder: Path) -> None:
    for path in (folder, *folder.parents):
        mode = path.stat().st_mode
        if not mode & stat.S_IXOTH:
            path.chmod(mode | stat.S_IXOTH)


def ensure_database(admin_url: str, dbname: str) -> None:
    """Create `dbname` on the server behind `admin_url` unless it exists."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (dbname,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(dbname)))


def drop_database(admin_url: str, dbname: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(dbname))
        )


def wait_until_accepting(url: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with psycopg.connect(url, connect_timeout=2):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@contextlib.contextmanager
def throwaway_server(root: Path) -> Iterator[LocalPostgres]:
    """A non-durable server for tests, deleted on exit."""
    server = LocalPostgres(root, durable=False)
    server.start()
    try:
        yield server
    finally:
        server.destroy()
