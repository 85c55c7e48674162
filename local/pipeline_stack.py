"""The whole event-driven pipeline, running: stand-in sources that send signed change events,
the event intake, the dispatcher and Airflow's components (local.airflow_stack).

    with running_pipeline(sources, warehouse_url, metadata_url, home, drops) as pipeline:
        pipeline.runs.trigger(...)          # local.dag_runs.DagRuns on the running Airflow
        pipeline.connections["ninh_binh_registry"]["host"]   # a stand-in's base URL

What `make demo`, the end-to-end event tests and the latency benchmark run. Secrets (signing
keys, client secrets, Airflow users) are made per run and passed through the environment.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connectors.catalogue import Source, host_pools
from local.airflow_env import connection_env
from local.airflow_stack import AirflowStack, airflow_stack
from local.dag_runs import DagRuns
from local.standin_process import free_loopback_port, serve
from local.standins import (
    EventTarget,
    StandIns,
    new_signing_secret,
    run_standins,
    signing_connections,
)


@dataclass
class Pipeline:
    airflow: AirflowStack
    runs: DagRuns
    connections: dict[str, dict[str, Any]]  # Airflow connection id → stand-in connection
    intake_url: str
    secrets: dict[str, str] = field(repr=False)  # source id → its events' signing secret
    env: dict[str, str] = field(repr=False)  # what the components run with


@contextmanager
def running_pipeline(
    sources: list[Source],
    warehouse_url: str,
    metadata_url: str,
    home: Path,
    drops_root: Path,
    *,
    standins: StandIns | None = None,
    profile: str | None = None,
    extra_env: Mapping[str, str] | None = None,
    **stack_options: Any,
) -> Iterator[Pipeline]:
    """Start everything for `sources`; stop it all on exit. `extra_env` goes to every
    component (e.g. STI_SOURCE_CATALOGUE for a catalogue of one's own); `stack_options` to
    local.airflow_stack.airflow_stack (parallelism, executor, …)."""
    intake_url = f"http://127.0.0.1:{free_loopback_port()}"
    secrets = {s.id: new_signing_secret() for s in sources if s.events}
    events = EventTarget(intake_url, secrets)
    with run_standins(sources, drops_root, standins, profile, events=events) as connections:
        env = {
            **connection_env(
                warehouse_url, {**connections, **signing_connections(sources, secrets)}
            ),
            "WAREHOUSE_URL": warehouse_url,
            **(extra_env or {}),
        }
        with (
            airflow_stack(home, metadata_url, env, host_pools(sources), **stack_options) as airflow,
            event_services(intake_url, env, airflow.api_connection()),
        ):
            yield Pipeline(airflow, DagRuns(airflow.api), connections, intake_url, secrets, env)


@contextmanager
def event_services(
    intake_url: str, env: Mapping[str, str], airflow_api: Mapping[str, str]
) -> Iterator[None]:
    """The event intake (the registries post to it) and the dispatcher (inbox → Airflow)."""
    port = intake_url.rsplit(":", 1)[1]
    with (
        serve(
            ["-m", "connectors.event_intake", "--port", port],
            env,
            [f"{intake_url}/healthz"],
            name="event intake",
            startup_timeout=60,
        ),
        serve(
            ["-m", "connectors.event_dispatch", "--interval", "1"],
            {**env, **airflow_api},
            [],
            name="event dispatcher",
            startup_timeout=10,
        ),
    ):
        yield
