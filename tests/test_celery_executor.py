"""The local stack on CeleryExecutor (local.airflow_stack): two sync DAGs run at once through two
Celery workers on Redis, Celery's results in the metadata DB; and the settings around it
(`executor_from_environment`, an unreachable broker).

Needs Redis for the e2e test: the one answering on 127.0.0.1:6379, in a database of its own (the
highest-numbered empty one, claimed with a key, emptied after; nothing else is touched), else a
`redis-server` (from PATH) started on a free port for the test; with neither, the test is
skipped, naming what is missing.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from urllib.parse import urlsplit

import pendulum
import psutil
import psycopg
import pytest
import redis
import requests
from airflow_standalone import CATALOGUE

from local.airflow_env import connection_env
from local.airflow_stack import DEFAULT_BROKER_URL, airflow_stack, executor_from_environment
from local.dag_runs import DagRuns
from local.postgres import drop_database, ensure_database
from local.registry.process import run_registry
from local.standin_process import free_loopback_port

SHARED_REDIS = "redis://127.0.0.1:6379"
CLAIM_KEY = "sti-test:celery-executor"  # marks the shared Redis database this test uses
RECORDS = 80  # S&T tasks in the stand-in registry
ENTITIES = ("st_task", "organisation")  # two sync DAGs, run at the same time
DAG_IDS = [f"ninh_binh_registry__{entity}" for entity in ENTITIES]
WORKERS = ("celery-worker-1", "celery-worker-2")


def test_the_executor_comes_from_the_environment():
    assert executor_from_environment({}) == {}
    assert executor_from_environment({"STI_AIRFLOW_EXECUTOR": "LocalExecutor"}) == {}
    assert executor_from_environment({"STI_AIRFLOW_EXECUTOR": "CeleryExecutor"}) == {
        "executor": "CeleryExecutor",
        "broker_url": DEFAULT_BROKER_URL,
        "celery_workers": 2,
    }
    given = {
        "STI_AIRFLOW_EXECUTOR": "CeleryExecutor",
        "STI_CELERY_BROKER_URL": "redis://broker.example:6380/3",
        "STI_CELERY_WORKERS": "4",
    }
    assert executor_from_environment(given) == {
        "executor": "CeleryExecutor",
        "broker_url": "redis://broker.example:6380/3",
        "celery_workers": 4,
    }
    with pytest.raises(ValueError, match="LocalExecutor or CeleryExecutor"):
        executor_from_environment({"STI_AIRFLOW_EXECUTOR": "KubernetesExecutor"})
    with pytest.raises(ValueError, match="STI_CELERY_WORKERS"):
        executor_from_environment(
            {"STI_AIRFLOW_EXECUTOR": "CeleryExecutor", "STI_CELERY_WORKERS": "0"}
        )


def test_an_unreachable_broker_fails_before_anything_starts(tmp_path):
    dead = f"redis://127.0.0.1:{free_loopback_port()}/0"
    with (
        pytest.raises(RuntimeError, match="does not answer"),
        airflow_stack(
            tmp_path,
            "postgresql+psycopg2://unused@127.0.0.1:1/unused",
            {},
            {},
            executor="CeleryExecutor",
            broker_url=dead,
            celery_workers=1,
        ),
    ):
        pass


def _answers(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


@contextmanager
def _shared_redis_database() -> Iterator[str]:
    """A database of the Redis on 127.0.0.1:6379 that nothing uses (empty), claimed with a
    key, emptied after the test; only that database is flushed."""
    for db in range(15, 0, -1):
        client = redis.Redis.from_url(f"{SHARED_REDIS}/{db}")
        try:
            if client.dbsize() == 0 and client.set(CLAIM_KEY, os.getpid(), nx=True):
                break
        except redis.ResponseError:  # fewer databases configured
            pass
        client.close()
    else:
        pytest.skip(f"Redis at {SHARED_REDIS} has no empty database 1–15 for the test")
    try:
        yield f"{SHARED_REDIS}/{db}"
    finally:
        client.flushdb()
        client.close()


@contextmanager
def _own_redis_server(binary: str) -> Iterator[str]:
    """`redis-server` on a free loopback port, without persistence; stopped after."""
    port = free_loopback_port()
    with tempfile.TemporaryDirectory(prefix="sti-test-redis-") as folder:
        process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
             "no", "--dir", folder],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        url = f"redis://127.0.0.1:{port}/0"
        try:
            deadline = time.monotonic() + 20
            while not _answers(url):
                assert process.poll() is None, f"redis-server exited ({process.returncode})"
                assert time.monotonic() < deadline, "redis-server did not answer in 20 s"
                time.sleep(0.1)
            yield url
        finally:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=10)


@pytest.fixture
def broker_url() -> Iterator[str]:
    if _answers(f"{SHARED_REDIS}/0"):
        with _shared_redis_database() as url:
            yield url
    elif binary := shutil.which("redis-server"):
        with _own_redis_server(binary) as url:
            yield url
    else:
        pytest.skip(f"needs Redis: nothing answers on {SHARED_REDIS} and no redis-server on PATH")


@pytest.fixture
def metadata_url(pg_admin_url: str) -> Iterator[str]:
    """Airflow's metadata DB (and the Celery result store): a throwaway database."""
    dbname = f"sti_test_airflow_{uuid.uuid4().hex[:12]}"
    ensure_database(pg_admin_url, dbname)
    parts = urlsplit(pg_admin_url)
    try:
        yield parts._replace(scheme="postgresql+psycopg2", path=f"/{dbname}").geturl()
    finally:
        drop_database(pg_admin_url, dbname)


def _metadata(url: str) -> str:
    return url.replace("postgresql+psycopg2://", "postgresql://", 1)


@pytest.mark.e2e
def test_sync_dags_run_through_two_celery_workers(broker_url, warehouse_url, metadata_url):
    with (
        tempfile.TemporaryDirectory(prefix="sti-airflow-celery-") as folder,
        run_registry(records=RECORDS, bad_share=0.0, seed=5) as registry,
    ):
        expected = {
            entity: stats["records"]
            for entity, stats in requests.get(f"{registry.base_url}/_standin/stats", timeout=10)
            .json()["entities"]
            .items()
            if entity in ENTITIES
        }
        home = Path(folder)
        catalogue = home / "sources.yml"
        catalogue.write_text(
            CATALOGUE.replace("entities: [st_task]", f"entities: [{', '.join(ENTITIES)}]"),
            encoding="utf-8",
        )
        env = {
            **connection_env(warehouse_url, {"ninh_binh_registry": registry}),
            "STI_SOURCE_CATALOGUE": str(catalogue),
            "WAREHOUSE_URL": warehouse_url,
        }
        settings = {
            # One task at a time per worker: the two runs' tasks, which overlap, cannot all go
            # to one worker (a busy worker takes no other message: acks late, prefetch 1).
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "1",
            # A busy machine (the suite in parallel) is no reason for a task's first call to
            # the execution API to time out and cost a retry.
            "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "30",
        }
        with airflow_stack(
            home, metadata_url, env, {"source__ninh_binh_registry": 2},
            executor="CeleryExecutor", broker_url=broker_url, celery_workers=2, settings=settings,
        ) as airflow:  # fmt: skip
            runs = DagRuns(airflow.api)
            runs.wait_for_dags(DAG_IDS)
            runs.set_paused(DAG_IDS, paused=False)
            since = pendulum.now("UTC")
            for dag_id in DAG_IDS:
                runs.trigger(dag_id, "celery")
            reports = runs.follow(
                since, lambda finished, _: len(finished) == len(DAG_IDS), print, timeout=300
            )
            logs = {name: airflow.log(name).read_text(errors="replace") for name in WORKERS}
            processes = list(airflow.processes.values())
            started = [c for p in processes for c in psutil.Process(p.pid).children(True)]
        # stop() took every component's whole process group with it, and whatever the
        # components started (the workers' pool processes and log servers).
        for process in processes:
            assert process.returncode is not None
            with pytest.raises(ProcessLookupError):
                os.killpg(process.pid, 0)
        left = [c for c in started if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
        assert not left, left

    assert {r.dag_id: r.state for r in reports} == dict.fromkeys(DAG_IDS, "success"), logs
    with psycopg.connect(warehouse_url) as conn:
        batches = conn.execute(
            "select entity, state, records_landed from ops.load_batch order by entity"
        ).fetchall()
    assert batches == [(entity, "published", expected[entity]) for entity in sorted(ENTITIES)]
    assert expected["st_task"] == RECORDS
    with psycopg.connect(_metadata(metadata_url)) as conn:
        instances = conn.execute(
            "select dag_id, task_id, state, external_executor_id from task_instance"
            " where run_id = 'celery' order by dag_id, start_date"
        ).fetchall()
        celery_results = conn.execute("select count(*) from celery_taskmeta").fetchone()[0]
    tasks = ["extract_and_land", "gate", "publish", "announce", "nothing_left_out"]
    assert sorted((dag, task, state) for dag, task, state, _ in instances) == sorted(
        (dag, task, "success") for dag in DAG_IDS for task in tasks
    )
    assert celery_results >= len(instances)  # Celery's own results: in the metadata DB
    # Which worker ran each task: the Celery task id Airflow recorded for it, found in that
    # worker's log (task_instance.hostname is the machine's, the same for both).
    ran_on = {}
    for dag, task, _, celery_id in instances:
        assert celery_id, f"{dag}.{task}: no Celery task id"
        found = [name for name, log in logs.items() if celery_id in log]
        assert len(found) == 1, (dag, task, celery_id, found)
        ran_on[f"{dag}.{task}"] = found[0]
    assert set(ran_on.values()) == set(WORKERS), ran_on
