"""Run the stand-in registry in a subprocess for tests and benchmarks.

    with run_registry(records=1_000_000) as registry:
        requests.post(registry.base_url + "/oauth/token", ...)

    with run_registries("demo", ["ninh_binh", "thanh_hoa"]) as registries:
        registries["thanh_hoa"].base_url   # http://127.0.0.1:PORT/r/thanh_hoa

    target = EventTarget(intake_url, {"ninh_binh": new_signing_secret()},
                         {"ninh_binh": "ninh-binh-registry"})
    with run_registry(records=500, events=target) as registry:
        ...  # POST /_standin/changes now sends signed change events to the intake

The server runs in its own process group (so uvicorn and anything it spawns stop together) and
gets its client secret and its events' signing secrets through the environment, never through
its command line.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from local.registry import SECRET_ENV, registry_secret_env
from local.registry.events import EventTarget, events_secret_env
from local.registry.profiles import load_profiles
from local.standin_process import free_loopback_port, serve

STARTUP_TIMEOUT = 30.0  # seconds
SINGLE_REGISTRY = "ninh_binh"  # the registry id of the single-registry mode (run_registry)


@dataclass(frozen=True)
class RunningRegistry:
    base_url: str  # e.g. http://127.0.0.1:41234 or …/r/thanh_hoa, no trailing slash
    client_id: str
    client_secret: str = field(repr=False)
    registry_id: str = "ninh_binh"


@contextmanager
def run_registry(
    *,
    records: int = 500,
    seed: int = 42,
    bad_share: float = 0.05,
    token_ttl: int = 3600,
    client_id: str = "sti-pipeline-local",
    client_secret: str | None = None,
    events: EventTarget | None = None,
) -> Iterator[RunningRegistry]:
    """Start ``python -m local.registry`` on a free loopback port; stop it on exit.

    Waits until ``/healthz`` answers (at most 30 s); raises RuntimeError with the tail of the
    server's log if it exits or does not come up in time. A random secret is generated when
    none is given. With ``events`` (keyed by registry id, here ``ninh_binh``), changes made
    through ``/_standin/changes`` are sent to its intake as signed change events.
    """
    secret = client_secret or secrets.token_urlsafe(32)
    arguments = [
        "--records",
        str(records),
        "--seed",
        str(seed),
        "--bad-share",
        str(bad_share),
        "--token-ttl",
        str(token_ttl),
        "--client-id",
        client_id,
    ]
    event_arguments, event_env = _events([SINGLE_REGISTRY], events)
    with _serve(arguments + event_arguments, {SECRET_ENV: secret, **event_env}) as server_url:
        yield RunningRegistry(server_url, client_id, secret)


@contextmanager
def run_registries(
    profile: str = "demo",
    registry_ids: list[str] | None = None,
    *,
    seed: int | None = None,
    token_ttl: int = 3600,
    client_id: str = "sti-pipeline-local",
    events: EventTarget | None = None,
) -> Iterator[dict[str, RunningRegistry]]:
    """Serve several registries of a profile from one process, each with its own credentials.

    Registry ``r`` is at ``http://127.0.0.1:PORT/r/<r>`` with client id ``<client_id>-<r>`` and
    a random secret of its own. ``registry_ids`` defaults to the profile's. Start-up is quick
    whatever the profile: records are generated when asked for. With ``events`` (keyed by
    registry id), the registries it has a secret for send signed change events to its intake.
    """
    ids = (
        list(registry_ids)
        if registry_ids is not None
        else list(load_profiles().profile(profile).registries)
    )
    secrets_by_id = {registry_id: secrets.token_urlsafe(32) for registry_id in ids}
    arguments = [
        "--profile",
        profile,
        "--registries",
        ",".join(ids),
        "--token-ttl",
        str(token_ttl),
        "--client-id",
        client_id,
    ]
    if seed is not None:
        arguments += ["--seed", str(seed)]
    env = {
        registry_secret_env(registry_id): secret for registry_id, secret in secrets_by_id.items()
    }
    event_arguments, event_env = _events(ids, events)
    with _serve(arguments + event_arguments, {**env, **event_env}) as server_url:
        yield {
            registry_id: RunningRegistry(
                f"{server_url}/r/{registry_id}", f"{client_id}-{registry_id}", secret, registry_id
            )
            for registry_id, secret in secrets_by_id.items()
        }


def _events(served: list[str], events: EventTarget | None) -> tuple[list[str], dict[str, str]]:
    """The registry process's event arguments and the environment with their secrets."""
    if events is None or not events.secrets:
        return [], {}
    unknown = sorted(set(events.secrets) - set(served))
    if unknown:
        raise ValueError(f"event secrets for {unknown}, which are not served ({served})")
    missing = sorted(set(events.secrets) - set(events.subscriptions))
    if missing:
        raise ValueError(f"no event subscription for {missing}")
    arguments = ["--events-intake", events.intake_url]
    for registry_id in events.secrets:
        arguments += ["--events-subscription", f"{registry_id}={events.subscriptions[registry_id]}"]
    env = {events_secret_env(registry_id): secret for registry_id, secret in events.secrets.items()}
    return arguments, env


@contextmanager
def _serve(arguments: list[str], secrets_env: dict[str, str]) -> Iterator[str]:
    """Run ``python -m local.registry`` with ``arguments``; yield the server's root URL."""
    port = free_loopback_port()
    server_url = f"http://127.0.0.1:{port}"
    module = ["-m", "local.registry", "--host", "127.0.0.1", "--port", str(port)]
    with serve(
        [*module, *arguments, "--log-level", "warning"],
        secrets_env,
        [server_url + "/healthz"],
        name="stand-in registry",
        startup_timeout=STARTUP_TIMEOUT,
    ):
        yield server_url
