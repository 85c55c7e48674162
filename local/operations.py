"""Operator commands through Airflow's REST API: pause or resume every DAG of a source, and
trigger a backfill (the ops__backfill DAG). Airflow's base URL and user come from connection
`sti_airflow_api` (AIRFLOW_CONN_STI_AIRFLOW_API, see connectors/airflow_api.py); the changes
are Airflow's own, so they show in its UI and audit log.

    python -m local pause SOURCE_ID                        pause every DAG of the source
    python -m local resume SOURCE_ID                       resume them
    python -m local backfill SOURCE_ID ENTITY FROM TO      land, gate and publish the records
                                                           updated FROM..TO (YYYY-MM-DD)

A source's DAGs are those whose id is `<source_id>__…` (one sync DAG per entity). Each is
patched on its own (PATCH /api/v2/dags/{dag_id}): the bulk form (PATCH /api/v2/dags with
dag_id_pattern) matches a substring with `_` as a wildcard, which could reach another source's
DAGs.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

from connectors.airflow_api import (
    API_CONNECTION,
    AirflowApi,
    AirflowApiError,
    api_from_environment,
)
from connectors.backfill import (
    BACKFILL_DAG_ID,
    BackfillRequest,
    BackfillRequestError,
    backfill_request,
)
from connectors.catalogue import Source, load_catalogue

_PAGE = 100  # Airflow's default maximum page size


class OperationError(RuntimeError):
    """The operation cannot be done as asked; the message says why."""


@dataclass(frozen=True, slots=True)
class PauseOutcome:
    source_id: str
    paused: bool  # what was asked: paused (True) or resumed (False)
    changed: list[str]  # DAG ids this call paused or resumed
    unchanged: list[str]  # DAG ids that were so already

    def lines(self) -> list[str]:
        verb = "paused" if self.paused else "resumed"
        lines = [f"{verb} {dag_id}" for dag_id in self.changed]
        if self.unchanged:
            lines.append(f"already {verb}: {', '.join(self.unchanged)}")
        if not self.changed:
            lines.insert(0, f"nothing changed: every DAG of {self.source_id} was already {verb}")
        return lines


@dataclass(frozen=True, slots=True)
class TriggeredRun:
    dag_id: str
    run_id: str
    state: str
    dag_paused: bool  # a run of a paused DAG waits until it is resumed


def source_dags(api: AirflowApi, source_id: str, source_ids: Iterable[str]) -> dict[str, bool]:
    """dag_id → is_paused of every DAG of `source_id` that Airflow knows (`<source_id>__…`,
    not those of another catalogue source whose id extends it, e.g. `<source_id>__x__…`)."""
    others = [other for other in source_ids if other.startswith(f"{source_id}__")]
    found: dict[str, bool] = {}
    offset = 0
    while True:
        page = api.call(
            "GET",
            "/api/v2/dags",
            params={"dag_id_prefix_pattern": source_id, "limit": _PAGE, "offset": offset},
        ).json()
        for dag in page["dags"]:
            dag_id = dag["dag_id"]
            if dag_id.startswith(f"{source_id}__") and not any(
                dag_id.startswith(f"{other}__") for other in others
            ):
                found[dag_id] = bool(dag["is_paused"])
        offset += len(page["dags"])
        if not page["dags"] or offset >= page["total_entries"]:
            return found


def known_source(source_id: str, sources: list[Source] | None = None) -> Source:
    """The catalogue's source `source_id`, or OperationError naming the known ones."""
    by_id = {source.id: source for source in (load_catalogue() if sources is None else sources)}
    if source_id not in by_id:
        raise OperationError(
            f"unknown source {source_id!r}; the catalogue has {', '.join(sorted(by_id))}"
        )
    return by_id[source_id]


def set_source_paused(
    api: AirflowApi, source_id: str, paused: bool, sources: list[Source] | None = None
) -> PauseOutcome:
    """Pause (or resume) every DAG of catalogue source `source_id` in Airflow."""
    sources = load_catalogue() if sources is None else sources
    known_source(source_id, sources)
    dags = source_dags(api, source_id, [source.id for source in sources])
    if not dags:
        raise OperationError(
            f"Airflow has no DAG of {source_id} ({source_id}__<entity>): are its DAGs parsed?"
        )
    changed, unchanged = [], []
    for dag_id, is_paused in sorted(dags.items()):
        if is_paused == paused:
            unchanged.append(dag_id)
            continue
        api.call(
            "PATCH",
            f"/api/v2/dags/{quote(dag_id, safe='')}",
            params={"update_mask": "is_paused"},
            json={"is_paused": paused},
        )
        changed.append(dag_id)
    return PauseOutcome(source_id, paused, changed, unchanged)


def pause_source(
    api: AirflowApi, source_id: str, sources: list[Source] | None = None
) -> PauseOutcome:
    return set_source_paused(api, source_id, True, sources)


def resume_source(
    api: AirflowApi, source_id: str, sources: list[Source] | None = None
) -> PauseOutcome:
    return set_source_paused(api, source_id, False, sources)


def trigger_backfill(api: AirflowApi, request: BackfillRequest, note: str) -> TriggeredRun:
    """Trigger the ops__backfill DAG for `request` (its Params as the run's conf)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    run_id = (
        f"cli__{request.source.id}.{request.entity}.{request.date_from}.{request.date_to}.{stamp}"
    )
    path = f"/api/v2/dags/{BACKFILL_DAG_ID}/dagRuns"
    body = {"dag_run_id": run_id, "logical_date": None, "conf": request.params(), "note": note}
    try:
        run = api.call("POST", path, json=body).json()
    except AirflowApiError as error:
        if ": 409 " not in str(error):
            raise
        # The session retried a POST whose reply was lost: the run exists, with this id.
        run = api.call("GET", f"{path}/{quote(run_id, safe='')}").json()
    dag = api.call("GET", f"/api/v2/dags/{BACKFILL_DAG_ID}").json()
    return TriggeredRun(BACKFILL_DAG_ID, run["dag_run_id"], run["state"], bool(dag["is_paused"]))


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        return "an unnamed user"


def _api() -> AirflowApi:
    """AIRFLOW_CONN_STI_AIRFLOW_API when set; else the local stack's Airflow (`make
    airflow-ui`, port AIRFLOW_UI_PORT or 8080) as its op user, when the local stack has one."""
    if os.environ.get(f"AIRFLOW_CONN_{API_CONNECTION.upper()}"):
        return api_from_environment()
    from local.airflow_stack import DISPATCHER, local_passwords
    from local.demo import AIRFLOW_HOME

    password = local_passwords(AIRFLOW_HOME).get(DISPATCHER)
    if password is None:
        return api_from_environment()  # says what to set
    port = os.environ.get("AIRFLOW_UI_PORT", "8080")
    return AirflowApi(f"http://127.0.0.1:{port}", DISPATCHER, password)


def main(command: str, argv: list[str]) -> int:
    """`python -m local pause|resume SOURCE_ID` and `python -m local backfill …`."""
    parser = argparse.ArgumentParser(prog=f"python -m local {command}")
    parser.add_argument("source_id")
    if command == "backfill":
        parser.add_argument("entity")
        parser.add_argument("date_from", metavar="FROM", help="first day, YYYY-MM-DD")
        parser.add_argument("date_to", metavar="TO", help="last day (included), YYYY-MM-DD")
    args = parser.parse_args(argv)
    try:
        if command == "backfill":
            request = backfill_request(
                load_catalogue(), args.source_id, args.entity, args.date_from, args.date_to
            )
            api = _api()
            run = trigger_backfill(api, request, f"python -m local backfill, by {_user()}")
            print(
                f"triggered {run.dag_id} run {run.run_id} ({run.state}): {request.source.id}"
                f" {request.entity}, {request.date_from} to {request.date_to}"
            )
            if run.dag_paused:
                print(f"{run.dag_id} is paused: the run waits until it is resumed in Airflow")
            return 0
        sources = load_catalogue()
        known_source(args.source_id, sources)  # before asking for the API's connection
        api = _api()
        outcome = set_source_paused(api, args.source_id, command == "pause", sources)
    except (OperationError, BackfillRequestError, AirflowApiError) as error:
        print(error, file=sys.stderr)
        return 1
    for line in outcome.lines():
        print(line)
    return 0
