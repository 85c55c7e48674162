"""A running Airflow on the local stack: its real components, each a process of its own.

    with airflow_stack(home, metadata_url, env, pools) as airflow:
        airflow.api.call("PATCH", "/api/v2/dags", params=..., json={"is_paused": False})

Starts `airflow api-server`, `scheduler`, `dag-processor` and `triggerer` (LocalExecutor:
the scheduler runs each task in a process of its own, at most `parallelism` at a time and
at most a pool's slots per source host), with the metadata DB in PostgreSQL (a database of
its own, never the warehouse's) and logs in `<home>/logs/<component>.log`. With
`executor="CeleryExecutor"` it also starts `celery_workers` Celery workers
(`celery-worker-<n>@<host>`) on the broker `broker_url` (Redis), results in the metadata DB,
each serving its task logs on a port of its own; `executor_from_environment()` reads that
choice from STI_AIRFLOW_EXECUTOR, STI_CELERY_BROKER_URL and STI_CELERY_WORKERS.

Users come from Airflow's simple auth manager: `admin` (role admin) and `sti_dispatcher`
(role op: creates asset events, triggers and pauses DAGs), with passwords generated once into
`<home>/passwords.json` (mode 0600); JWT and API secrets are generated the same way, so the
components started separately trust each other's tokens. Nothing secret is on a command line.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from connectors.airflow_api import API_CONNECTION, AirflowApi
from local.airflow_env import AIRFLOW_BIN, REPO_ROOT, airflow_settings, migrate_metadata_db
from local.standin_process import free_loopback_port, signal_group

ADMIN = "admin"
DISPATCHER = "sti_dispatcher"  # the event dispatcher's and operator commands' user (role op)
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
STARTUP_TIMEOUT = 180.0  # seconds until every component reports healthy
HEALTHY = ("metadatabase", "scheduler", "dag_processor", "triggerer")
LOCAL_SETTINGS_DIR = Path(__file__).with_name("airflow_config")
EXECUTOR_ENV = "STI_AIRFLOW_EXECUTOR"  # LocalExecutor (default) | CeleryExecutor
BROKER_ENV = "STI_CELERY_BROKER_URL"
WORKERS_ENV = "STI_CELERY_WORKERS"
DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/0"
DEFAULT_CELERY_WORKERS = 2


@dataclass
class AirflowStack:
    base: str  # the API server, http://127.0.0.1:<port>
    home: Path
    passwords: dict[str, str] = field(repr=False)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    _api: AirflowApi | None = field(default=None, repr=False)

    @property
    def api(self) -> AirflowApi:
        """The REST API as `sti_dispatcher` (role op)."""
        if self._api is None:
            self._api = AirflowApi(self.base, DISPATCHER, self.passwords[DISPATCHER])
        return self._api

    def api_connection(self) -> dict[str, str]:
        """`AIRFLOW_CONN_STI_AIRFLOW_API` for the dispatcher and the operator commands."""
        connection = {
            "conn_type": "http",
            "host": self.base,
            "login": DISPATCHER,
            "password": self.passwords[DISPATCHER],
        }
        return {f"AIRFLOW_CONN_{API_CONNECTION.upper()}": json.dumps(connection)}

    def log(self, component: str) -> Path:
        return self.home / "logs" / f"{component}.log"

    def health(self) -> dict[str, str]:
        """Each component's status from the API server ({} while it does not answer)."""
        try:
            reply = requests.get(self.base + "/api/v2/monitor/health", timeout=10)
        except requests.RequestException:
            return {}
        if reply.status_code != 200:
            return {}
        return {name: (part or {}).get("status", "") for name, part in reply.json().items()}

    def check_running(self) -> None:
        """Raises, with the log's tail, if a component has exited."""
        for name, process in self.processes.items():
            if process.poll() is not None:
                tail = self.log(name).read_text(errors="replace")[-3000:]
                raise RuntimeError(f"airflow {name} exited ({process.returncode}):\n{tail}")

    def stop(self) -> None:
        """SIGTERM to each component's process group, SIGKILL to what is left of each group
        (a leader that did not exit within 30 s, or a Celery pool or log-server process it
        left behind), then reap the leaders. A leader is reaped only after its group was
        killed, so the group id signalled is still ours; one that exited before
        (check_running reaped it) is not signalled again. Task processes run in process groups
        of their own (Airflow's supervisor puts them there; SIGTERM reaches them through it):
        those still running at the end are killed one by one."""
        import psutil

        alive = [p for p in self.processes.values() if p.returncode is None]
        started: list[psutil.Process] = []
        for process in alive:
            with suppress(psutil.Error):
                started += psutil.Process(process.pid).children(recursive=True)
        for process in alive:
            signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all(_exited(p) for p in alive):
            time.sleep(0.2)
        for process in alive:
            signal_group(process, signal.SIGKILL)
            process.wait()
        for child in started:
            with suppress(psutil.Error):  # gone, or its pid now another process's
                child.kill()


def stack_settings(
    home: Path,
    metadata_url: str,
    *,
    port: int,
    executor: str = "LocalExecutor",
    broker_url: str | None = None,
    parallelism: int = 4,
    celery_workers: int = 1,
) -> dict[str, str]:
    """The AIRFLOW__* settings every component of one stack shares."""
    keys = _secrets(home / "secrets.json", ("jwt_secret", "api_secret_key", "fernet_key"))
    _secrets(home / "passwords.json", (ADMIN, DISPATCHER))  # the file the auth manager reads
    settings = {
        **airflow_settings(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url,
        "AIRFLOW__CORE__EXECUTOR": executor,
        "AIRFLOW__CORE__PARALLELISM": str(parallelism),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN}:admin,{DISPATCHER}:op",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "AIRFLOW__CORE__FERNET_KEY": _fernet(keys["fernet_key"]),
        "AIRFLOW__API_AUTH__JWT_SECRET": keys["jwt_secret"],
        "AIRFLOW__API__SECRET_KEY": keys["api_secret_key"],
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__API__WORKERS": "1",
        # Seconds matter for change events: a short loop and a quick look for new DAG files.
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "30",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        # Their own ports: two stacks on one machine (a test beside the demo) never collide.
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_loopback_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_loopback_port()),
        # A task's calls to the API server wait longer than the 5 s default: on a busy 2-CPU
        # machine the one API worker can be slower than that, and a timeout costs a retry.
        "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "30",
    }
    if executor == "CeleryExecutor":
        if not broker_url:
            raise ValueError(f"CeleryExecutor needs a broker_url (e.g. {DEFAULT_BROKER_URL})")
        settings["AIRFLOW__CELERY__BROKER_URL"] = broker_url
        # Celery's task results go to the metadata DB (tables celery_taskmeta, …), with the
        # metadata DB's driver: no second store to run.
        settings["AIRFLOW__CELERY__RESULT_BACKEND"] = "db+" + metadata_url
        # The workers together take `parallelism` tasks at once, as LocalExecutor would.
        concurrency = math.ceil(parallelism / max(1, celery_workers))
        settings["AIRFLOW__CELERY__WORKER_CONCURRENCY"] = str(concurrency)
        # Said explicitly (the provider warns otherwise): a task still unacknowledged after a
        # day is delivered again.
        settings["AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT"] = "86400"
    return settings


def executor_from_environment(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """`airflow_stack` keyword arguments for the executor STI_AIRFLOW_EXECUTOR names:
    {} for LocalExecutor (the default), else CeleryExecutor on STI_CELERY_BROKER_URL (default
    redis://127.0.0.1:6379/0) with STI_CELERY_WORKERS workers (default 2)."""
    environ = os.environ if environ is None else environ
    executor = environ.get(EXECUTOR_ENV, "").strip() or "LocalExecutor"
    if executor == "LocalExecutor":
        return {}
    if executor != "CeleryExecutor":
        raise ValueError(f"{EXECUTOR_ENV}={executor!r}: LocalExecutor or CeleryExecutor")
    workers = environ.get(WORKERS_ENV, "").strip() or str(DEFAULT_CELERY_WORKERS)
    if not workers.isdigit() or int(workers) < 1:
        raise ValueError(f"{WORKERS_ENV}={workers!r}: a number of workers, 1 or more")
    return {
        "executor": "CeleryExecutor",
        "broker_url": environ.get(BROKER_ENV, "").strip() or DEFAULT_BROKER_URL,
        "celery_workers": int(workers),
    }


@contextmanager
def airflow_stack(
    home: Path,
    metadata_url: str,
    env: Mapping[str, str],
    pools: Mapping[str, int],
    *,
    port: int | None = None,
    executor: str = "LocalExecutor",
    broker_url: str | None = None,
    celery_workers: int = 0,
    parallelism: int = 4,
    settings: Mapping[str, str] | None = None,
) -> Iterator[AirflowStack]:
    """Migrate the metadata DB, create `pools` (name → slots), start the components with
    `env` (connections, the catalogue path) and yield once all report healthy; stop them all
    on exit, whatever happened."""
    home.mkdir(parents=True, exist_ok=True)
    port = port or free_loopback_port()
    base_settings = stack_settings(
        home, metadata_url, port=port, executor=executor, broker_url=broker_url,
        parallelism=parallelism, celery_workers=celery_workers,
    )  # fmt: skip
    workers: list[str] = []
    if executor == "CeleryExecutor":
        workers = [f"celery-worker-{n}" for n in range(1, celery_workers + 1)]
        if not workers:
            raise ValueError("CeleryExecutor needs celery_workers >= 1")
        check_broker(base_settings["AIRFLOW__CELERY__BROKER_URL"])
        # Each worker serves its task logs on a port of its own (two on one machine would
        # collide on 8793). The logs folder is shared, so the API server may ask any of them:
        # it asks the first.
        log_ports = {name: free_loopback_port() for name in workers}
        base_settings["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] = str(log_ports[workers[0]])
    full_settings = {**base_settings, **(settings or {})}
    migrate_metadata_db(full_settings)
    ensure_pools(full_settings, pools)
    components = [*COMPONENTS, *workers]
    stack = AirflowStack(
        f"http://127.0.0.1:{port}", home, _secrets(home / "passwords.json", (ADMIN, DISPATCHER))
    )
    process_env = {
        **os.environ,
        **full_settings,
        **env,
        # The scheduler starts task processes as `airflow …` from PATH.
        "PATH": f"{AIRFLOW_BIN.parent}{os.pathsep}{os.environ.get('PATH', '')}",
        # airflow_local_settings: the scheduler and Celery workers preload GX and dbt.
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(LOCAL_SETTINGS_DIR), str(REPO_ROOT), os.environ.get("PYTHONPATH")])
        ),
    }
    (home / "logs").mkdir(exist_ok=True)
    try:
        for name in components:
            own: dict[str, str] = {}
            if name in workers:
                own = {"AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(log_ports[name])}
            stack.processes[name] = _start(name, stack.log(name), {**process_env, **own})
        _wait_healthy(stack)
        yield stack
    finally:
        stack.stop()


def ensure_pools(settings: Mapping[str, str], pools: Mapping[str, int]) -> None:
    """Create or resize `pools` (name → slots) in the metadata DB (`airflow pools import`)."""
    if not pools:
        return
    path = Path(settings["AIRFLOW_HOME"]) / "pools.json"
    path.write_text(
        json.dumps(
            {
                name: {"slots": slots, "description": "extraction tasks calling one source host"}
                for name, slots in pools.items()
            }
        ),
        encoding="utf-8",
    )
    result = subprocess.run(
        [str(AIRFLOW_BIN), "pools", "import", str(path)],
        env={**os.environ, **settings},
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"airflow pools import failed:\n{result.stderr[-3000:]}")


def check_broker(broker_url: str, timeout: float = 5.0) -> None:
    """RuntimeError naming the broker unless it answers PING: workers would otherwise wait
    for it forever while the scheduler queues tasks nobody runs."""
    if not broker_url.startswith(("redis://", "rediss://")):
        return  # another transport: Celery reports it
    import redis

    client = redis.Redis.from_url(broker_url, socket_connect_timeout=timeout)
    try:
        client.ping()
    except redis.RedisError as error:
        where = broker_url.rpartition("@")[2]  # no password in the message
        raise RuntimeError(
            f"the Celery broker {where} does not answer ({error}); start Redis"
            f" (redis-server) or set {BROKER_ENV}"
        ) from error
    finally:
        client.close()


def _exited(process: subprocess.Popen) -> bool:
    """Whether `process` has exited, without reaping it (its pid and group id stay ours)."""
    if process.returncode is not None:
        return True
    try:
        return os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _start(name: str, log: Path, env: Mapping[str, str]) -> subprocess.Popen:
    if name.startswith("celery-worker-"):
        # Each worker its own hostname, so Celery tells the two apart.
        command = ["celery", "worker", "--celery-hostname", f"{name}@%h"]
    else:
        command = [name]
    with log.open("ab") as out:
        return subprocess.Popen(
            [str(AIRFLOW_BIN), *command],
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped with all it spawned
        )


def _wait_healthy(stack: AirflowStack) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        stack.check_running()
        health = stack.health()
        if health and all(health.get(name) == "healthy" for name in HEALTHY):
            return
        time.sleep(1)
    raise RuntimeError(
        f"Airflow did not become healthy in {STARTUP_TIMEOUT:.0f} s: {stack.health() or 'no API'}"
        f" (logs in {stack.home / 'logs'})"
    )


def local_passwords(home: Path) -> dict[str, str]:
    """The users' passwords of the stack in `home`, or {} when it has never run."""
    path = home / "passwords.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def _secrets(path: Path, names: tuple[str, ...]) -> dict[str, str]:
    """Random secrets kept in `path` (0600), made once: restarts keep users' passwords."""
    values = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    missing = [name for name in names if name not in values]
    if missing:
        values.update({name: secrets.token_urlsafe(24) for name in missing})
        path.touch(mode=0o600, exist_ok=True)
        path.chmod(0o600)
        path.write_text(json.dumps(values), encoding="utf-8")
    return {name: values[name] for name in names}


def _fernet(seed: str) -> str:
    """A Fernet key (32 url-safe base64 bytes) derived from a stored random secret."""
    import base64
    import hashlib

    return base64.urlsafe_b64encode(hashlib.sha256(seed.encode()).digest()).decode()


def main(argv: list[str] | None = None) -> int:
    """`python -m local.airflow_stack pools`: create the catalogue's pools in the metadata DB
    Airflow's environment points to (a deployment's init step, e.g. docker/compose.yaml)."""
    import sys

    from connectors.catalogue import host_pools, load_catalogue

    args = sys.argv[1:] if argv is None else argv
    if args != ["pools"]:
        print("usage: python -m local.airflow_stack pools", file=sys.stderr)
        return 2
    pools = host_pools(load_catalogue())
    ensure_pools({**os.environ, "AIRFLOW_HOME": os.environ.get("AIRFLOW_HOME", ".")}, pools)
    print("pools: " + ", ".join(f"{name} ({slots})" for name, slots in sorted(pools.items())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
