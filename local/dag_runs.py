"""DAG runs on a running Airflow, through its REST API: unpause, trigger, and follow them.

What `make demo` uses to let the scheduler run the DAGs (local.airflow_stack) and to print a
line per run as it finishes. Plain HTTP (connectors.airflow_api): no Airflow import.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from connectors.airflow_api import AirflowApi

FINISHED = ("success", "failed")


@dataclass(frozen=True)
class RunReport:
    dag_id: str
    run_id: str
    run_type: str  # manual | asset_triggered | scheduled | …
    state: str
    seconds: float
    started: datetime | None
    ended: datetime | None
    failed_tasks: tuple[str, ...] = ()


class DagRuns:
    def __init__(self, api: AirflowApi) -> None:
        self.api = api

    def wait_for_dags(self, dag_ids: Iterable[str], timeout: float = 180.0) -> None:
        """Until the DAG processor has parsed every one of `dag_ids` (RuntimeError naming the
        missing ones, or the import errors, after `timeout`)."""
        wanted = set(dag_ids)
        deadline = time.monotonic() + timeout
        while True:
            known = {d["dag_id"] for d in self._all("/api/v2/dags", "dags")}
            if wanted <= known:
                return
            if time.monotonic() > deadline:
                errors = [
                    f"{e['filename']}: {e['stack_trace'][-500:]}"
                    for e in self._all("/api/v2/importErrors", "import_errors")
                ]
                raise RuntimeError(
                    f"DAGs not parsed after {timeout:.0f} s: {sorted(wanted - known)}"
                    + ("\n" + "\n".join(errors) if errors else "")
                )
            time.sleep(1)

    def set_paused(self, dag_ids: Iterable[str], paused: bool) -> None:
        for dag_id in dag_ids:
            self.api.call(
                "PATCH",
                f"/api/v2/dags/{dag_id}",
                params={"update_mask": "is_paused"},
                json={"is_paused": paused},
            )

    def trigger(self, dag_id: str, run_id: str, conf: dict | None = None) -> None:
        """A manual run with id `run_id`; an existing run of that id is left as it is (409),
        so a retried trigger never makes two runs."""
        self.api.call(
            "POST",
            f"/api/v2/dags/{dag_id}/dagRuns",
            allow=(409,),
            json={"dag_run_id": run_id, "logical_date": None, "conf": conf or {}},
        )

    def runs(self, dag_ids: Iterable[str] | None = None, since: datetime | None = None) -> list:
        """DAG runs (the API's JSON) of `dag_ids` (all when None) queued after `since`."""
        body: dict = {"page_limit": 1000, "order_by": "run_after"}
        if dag_ids is not None:
            body["dag_ids"] = sorted(dag_ids)
        if since is not None:
            body["run_after_gte"] = since.isoformat()
        return self.api.call("POST", "/api/v2/dags/~/dagRuns/list", json=body).json()["dag_runs"]

    def report(self, run: dict) -> RunReport:
        started, ended = _time(run.get("start_date")), _time(run.get("end_date"))
        failed: tuple[str, ...] = ()
        if run["state"] != "success":
            instances = self.api.call(
                "GET", f"/api/v2/dags/{run['dag_id']}/dagRuns/{run['dag_run_id']}/taskInstances"
            ).json()["task_instances"]
            failed = tuple(
                sorted(t["task_id"] for t in instances if t["state"] not in ("success", "skipped"))
            )
        return RunReport(
            dag_id=run["dag_id"],
            run_id=run["dag_run_id"],
            run_type=run["run_type"],
            state=run["state"],
            seconds=round((ended - started).total_seconds(), 1) if started and ended else 0.0,
            started=started,
            ended=ended,
            failed_tasks=failed,
        )

    def queued_asset_events(self, dag_id: str) -> int:
        """Asset events waiting to trigger `dag_id`'s next run."""
        path = f"/api/v2/dags/{dag_id}/assets/queuedEvents"
        reply = self.api.call("GET", path, allow=(404,))
        return 0 if reply.status_code == 404 else reply.json()["total_entries"]

    def follow(
        self,
        since: datetime,
        done: Callable[[list[RunReport], list[dict]], bool],
        on_finished: Callable[[RunReport], None],
        *,
        timeout: float,
        poll: float = 2.0,
        already: set[tuple[str, str]] | None = None,
    ) -> list[RunReport]:
        """Every run queued after `since`, reported once as it finishes (runs in `already`,
        (dag id, run id) pairs, are not reported again), until `done(finished reports, all
        runs)` says so; RuntimeError after `timeout` seconds."""
        reports: dict[tuple[str, str], RunReport] = {}
        skip = already or set()
        deadline = time.monotonic() + timeout
        while True:
            runs = self.runs(since=since)
            for run in runs:
                key = (run["dag_id"], run["dag_run_id"])
                if run["state"] in FINISHED and key not in reports and key not in skip:
                    reports[key] = self.report(run)
                    on_finished(reports[key])
            finished = list(reports.values())
            if done(finished, runs):
                return finished
            if time.monotonic() > deadline:
                waiting = sorted(r["dag_id"] for r in runs if r["state"] not in FINISHED)
                raise RuntimeError(f"runs not finished after {timeout:.0f} s: {waiting}")
            time.sleep(poll)

    def _all(self, path: str, key: str) -> list[dict]:
        items: list[dict] = []
        while True:
            page = self.api.call("GET", path, params={"limit": 100, "offset": len(items)}).json()
            items += page[key]
            if not page[key] or len(items) >= page["total_entries"]:
                return items


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
