"""A private PostgreSQL server for the warehouse when WAREHOUSE_URL is not set.

Uses the PostgreSQL 16 binaries bundled in the `pgserver` wheel, so a fresh machine needs no
system PostgreSQL, no root and no service manager. The server listens on 127.0.0.1 only, with
trust authentication (loopback only), on a port chosen once per data directory and remembered
next to it: a restart keeps the port, so URLs handed out earlier (the Airflow connection, a
user's WAREHOUSE_URL) keep working. If another process holds that port, start() stops with an
error saying so rather than moving to another one.

When run as root (containers, CI) PostgreSQL refuses to start, so the server runs as the
unprivileged `nobody` account, which must be able to reach the binaries and the data directory.
A clone (and its .venv) under a folder only root may enter (/root, `mktemp -d`) is out of its
reach, and loosening the user's folders is not ours to do. So, as root and only when needed:
- the binaries are used from a copy under SHARED_DIR (root-owned, 0755), one per pgserver
  build, made in a staging folder and renamed into place, so concurrent starts are safe;
- the data directory is created under SHARED_DIR too, and `<root>/data` is a symlink to it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import hashlib
import importlib.metadata
import importlib.util
import os
import pwd
import random
import shutil
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

SUPERUSER = "postgres"
SERVER_USER_AS_ROOT = "nobody"
# Persistent (not /tmp: a relocated data directory is the demo's warehouse).
SHARED_DIR = Path("/var/lib/sti-local-postgres")
_START_TIMEOUT_S = 60
_COMPLETE = ".complete"
_OWNER = "owner"


def _pgserver_dir() -> Path:
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the pgserver package (bundled PostgreSQL) is not installed")
    return Path(spec.submodule_search_locations[0]).resolve()


def _server_bin_dir(run_as: pwd.struct_passwd | None) -> Path:
    """The binaries as the server account can run them: in place, or a shared copy."""
    source = _pgserver_dir()
    bin_dir = source / "pginstall" / "bin"
    if run_as is None or _install_reachable(source, run_as):
        return bin_dir
    return shared_install(source, _shared_dir()) / "pgserver" / "pginstall" / "bin"


def _install_reachable(source: Path, user: pwd.struct_passwd) -> bool:
    libs = source.parent / "pgserver.libs"  # libpq, found by rpath $ORIGIN/../../../pgserver.libs
    postgres = source / "pginstall" / "bin" / "postgres"
    return (
        _reachable(postgres.parent, user)
        and (not libs.exists() or _reachable(libs, user))
        and _allows(postgres.stat(), user, 0o1)
    )


def _reachable(folder: Path, user: pwd.struct_passwd) -> bool:
    """Whether `user` may traverse every folder from / down to `folder` (mode bits only)."""
    return all(_allows(path.stat(), user, 0o1) for path in (folder, *folder.parents))


def _allows(st: os.stat_result, user: pwd.struct_passwd, bits: int) -> bool:
    if st.st_uid == user.pw_uid:
        return st.st_mode & (bits << 6) == bits << 6
    if st.st_gid in os.getgrouplist(user.pw_name, user.pw_gid):
        return st.st_mode & (bits << 3) == bits << 3
    return st.st_mode & bits == bits


def _shared_dir() -> Path:
    """SHARED_DIR, created root-owned 0755, refusing one another account could tamper with."""
    try:
        SHARED_DIR.mkdir(parents=True, exist_ok=True)
        info = SHARED_DIR.lstat()
        if stat.S_ISDIR(info.st_mode) and info.st_uid == 0 and stat.S_IMODE(info.st_mode) != 0o755:
            SHARED_DIR.chmod(0o755)  # ours: mkdir's mode is cut by the umask
    except OSError as error:
        raise RuntimeError(_as_root_hint(f"{SHARED_DIR} cannot be created: {error}")) from error
    info = SHARED_DIR.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != 0:
        raise RuntimeError(_as_root_hint(f"{SHARED_DIR} is not a folder owned by root"))
    user = _server_user()
    if not _reachable(SHARED_DIR, user):
        raise RuntimeError(_as_root_hint(f"`{user.pw_name}` cannot reach {SHARED_DIR}"))
    return SHARED_DIR


def _as_root_hint(problem: str) -> str:
    return (
        f"The embedded PostgreSQL cannot start: {problem}. PostgreSQL refuses to run as root, so "
        f"as root it runs as `{SERVER_USER_AS_ROOT}`, with its binaries and data under "
        f"{SHARED_DIR} when the clone is out of that account's reach. Fix that folder, run as a "
        "non-root user, clone where every account may traverse, or set WAREHOUSE_URL."
    )


def _server_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(SERVER_USER_AS_ROOT)
    except KeyError:
        raise RuntimeError(
            f"PostgreSQL refuses to run as root and there is no `{SERVER_USER_AS_ROOT}` account "
            "to run it as: run as a non-root user, or set WAREHOUSE_URL"
        ) from None


@functools.cache
def _build_key(source: Path) -> str:
    """Identifies a pgserver build whatever venv it is installed in."""
    digest = hashlib.sha256(importlib.metadata.version("pgserver").encode())
    for folder in (source / "pginstall", source.parent / "pgserver.libs"):
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "include" not in path.relative_to(folder).parts[:1]:
                digest.update(f"{path.relative_to(source.parent)}:{path.stat().st_size}\n".encode())
    with (source / "pginstall" / "bin" / "postgres").open("rb") as binary:
        digest.update(hashlib.file_digest(binary, "sha256").digest())
    return digest.hexdigest()[:16]


def shared_install(source: Path, base: Path) -> Path:
    """A world-readable copy of the pgserver install `source` under `base`; returns its folder.

    The copy keeps the wheel's layout (pgserver/pginstall next to pgserver.libs, as the binaries'
    rpath expects), is built in a staging folder and renamed into place whole, so a process sees
    a complete copy or none; when two build at once, the first rename wins and the other's
    staging folder is deleted.
    """
    target = base / f"pgserver-{_build_key(source)}"
    if (target / _COMPLETE).exists():
        return target
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=base))
    try:
        shutil.copytree(
            source / "pginstall",
            staging / "pgserver" / "pginstall",
            ignore=shutil.ignore_patterns("include"),  # C headers: not needed to run
        )
        libs = source.parent / "pgserver.libs"
        if libs.is_dir():
            shutil.copytree(libs, staging / "pgserver.libs")
        for path in (staging, *staging.rglob("*")):
            executable = path.is_dir() or path.stat().st_mode & 0o111
            path.chmod(0o755 if executable else 0o644)
        (staging / _COMPLETE).write_text(f"copied from {source}\n")
        for _ in range(2):
            try:
                staging.rename(target)
                break
            except OSError as error:
                if error.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
                if (target / _COMPLETE).exists():
                    break  # another process was faster
                # Not one of ours (renames are whole): move it aside, then take its place.
                with contextlib.suppress(OSError):
                    target.rename(Path(tempfile.mkdtemp(prefix=".stale-", dir=base)) / "x")
        else:
            raise RuntimeError(f"could not put the PostgreSQL binaries in place at {target}")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        for stale in base.glob(".stale-*"):
            shutil.rmtree(stale, ignore_errors=True)
        for left in base.glob(".staging-*"):  # of a process killed while copying
            with contextlib.suppress(OSError):
                if left.stat().st_mtime < time.time() - 3600:
                    shutil.rmtree(left, ignore_errors=True)
    return target


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _port_is_free(port: int) -> bool:
    # SO_REUSEADDR, as PostgreSQL binds: connections left in TIME_WAIT by the server's last
    # stop do not hold the port (without it a restart used to move to a new port).
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _new_port() -> int:
    """A free port below the ephemeral range when possible, where outgoing connections made
    while the server is stopped cannot take it."""
    with contextlib.suppress(OSError, ValueError):
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
        for _ in range(50 if low > 21000 else 0):
            port = random.randrange(20000, low)
            if _port_is_free(port) and not _listening(port):
                return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LocalPostgres:
    """One PostgreSQL server whose data lives in `root / "data"` (as root, maybe via a symlink).

    `start()` is idempotent: it reuses a server already running on that data directory.
    """

    def __init__(self, root: Path, *, durable: bool = True) -> None:
        self.root = Path(root).resolve()
        self._data_link = self.root / "data"
        self._port_file = self.root / "port"
        self._durable = durable
        self._run_as = _server_user() if os.geteuid() == 0 else None

    @functools.cached_property
    def bin_dir(self) -> Path:
        return _server_bin_dir(self._run_as)

    @property
    def data_dir(self) -> Path:
        return self._data_link.resolve()  # the server account's path to it

    @property
    def log_file(self) -> Path:
        return self.data_dir / "server.log"

    @property
    def port(self) -> int:
        return int(self._port_file.read_text().strip())

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    def start(self) -> str:
        """Initialise the data directory if needed, start the server, return its admin URL."""
        self.root.mkdir(parents=True, exist_ok=True)
        with self._lock():
            if not (self.data_dir / "PG_VERSION").exists():
                self._initdb()
            elif self._run_as is not None and not _reachable(self.data_dir, self._run_as):
                raise RuntimeError(
                    f"the embedded PostgreSQL's data directory {self.data_dir} is out of reach "
                    f"of `{self._run_as.pw_name}`, which runs the server when running as root. "
                    "Make its parent folders traversable (o+x), or move the data away (e.g. "
                    f"`make clean`, which deletes it) to have it re-created under {SHARED_DIR}"
                )
            if self.is_running():
                return self.url()
            if self._port_file.exists():
                port = self.port
                if not _port_is_free(port):
                    raise RuntimeError(
                        f"port {port}, the embedded PostgreSQL's port (kept in {self._port_file} "
                        "so that URLs given out stay valid), is taken by another process. Stop "
                        "that process, or delete the file to have a new port chosen (then update "
                        "whatever holds the old URL, e.g. WAREHOUSE_URL)"
                    )
            else:
                port = _new_port()
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
        home = self._relocated_home()
        if home is not None:
            shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(self.root, ignore_errors=True)

    def _relocated_home(self) -> Path | None:
        """The folder under SHARED_DIR holding the data directory, if it was relocated there."""
        if not self._data_link.is_symlink():
            return None
        home = self.data_dir.parent
        return home if home.parent == SHARED_DIR / "data" and (home / _OWNER).exists() else None

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        """Serialises start() across processes (two `make` targets started at once)."""
        with (self.root / ".lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def _make_data_dir(self) -> Path:
        if self._data_link.is_symlink():
            home = self._relocated_home()
            if home is not None:
                shutil.rmtree(home)  # a half-initialised directory from an interrupted run
            self._data_link.unlink()
        elif self._data_link.exists():
            shutil.rmtree(self._data_link)  # a half-initialised directory from an interrupted run
        if self._run_as is None or _reachable(self.root, self._run_as):
            self._data_link.mkdir(mode=0o700)
            return self._data_link
        # The server account cannot reach the root: keep the data where it can (see top).
        relocated = _shared_dir() / "data"
        relocated.mkdir(exist_ok=True)
        relocated.chmod(0o755)
        _remove_orphans(relocated)
        prefix = "_".join(self.root.parts[-3:]).replace("/", "") + "-"  # e.g. clone_.local_postgres
        home = Path(tempfile.mkdtemp(prefix=prefix, dir=relocated))
        home.chmod(0o755)
        (home / "data").mkdir(mode=0o700)
        self._data_link.symlink_to(home / "data")
        (home / _OWNER).write_text(f"{self._data_link}\n")
        return home / "data"

    def _initdb(self) -> None:
        data_dir = self._make_data_dir()
        if self._run_as is not None:
            os.chown(data_dir, self._run_as.pw_uid, self._run_as.pw_gid)
        self._run(
            "initdb",
            "-D",
            str(data_dir),
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
        with (data_dir / "postgresql.conf").open("a") as conf:
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

    def _user_kwargs(self) -> dict[str, Any]:
        if self._run_as is None:
            return {}
        # No supplementary groups: the account reaches exactly what _reachable() says.
        return {"user": self._run_as.pw_uid, "group": self._run_as.pw_gid, "extra_groups": []}


def _remove_orphans(relocated: Path) -> None:
    """Delete relocated data directories whose `<root>/data` link is gone (`make clean`, a
    deleted temporary folder) and whose server is not running."""
    for home in relocated.iterdir():
        try:
            link = Path((home / _OWNER).read_text().strip())
        except OSError:
            continue  # being created (the owner file is written last)
        if link.is_symlink() and link.resolve() == home / "data":
            continue
        if not _postmaster_alive(home / "data"):
            shutil.rmtree(home, ignore_errors=True)


def _postmaster_alive(data_dir: Path) -> bool:
    try:
        pid = int((data_dir / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
