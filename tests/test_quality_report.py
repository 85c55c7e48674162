"""The quality reports' index when gates of several entities finish at the same time (the
scheduler runs them in parallel): every run listed once, the index never half written."""

from __future__ import annotations

import multiprocessing
import re

from expectations.gate import GateResult
from expectations.report import write_report

SUITE = {"name": "registry_api_v1.st_task", "expectations": [], "meta": {}}


def _write(root: str, batch_id: int) -> None:
    from pathlib import Path

    result = GateResult(batch_id, rows=10, passed=9, warned=0, quarantined=1, success=True)
    write_report(result, "ninh_binh_registry", f"entity_{batch_id % 4}", SUITE, Path(root))


def test_reports_written_at_the_same_time_are_all_in_the_index(tmp_path):
    # Processes, as Airflow's task processes are; 24 at once on 2 CPUs overlap for sure.
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_write, args=(str(tmp_path), n)) for n in range(1, 25)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0

    index = (tmp_path / "index.html").read_text(encoding="utf-8")
    listed = sorted(int(n) for n in re.findall(r"batch (\d+)</a>", index))
    assert listed == list(range(1, 25))
    assert index.count("<h1>Quality gate runs</h1>") == 1
    assert not list(tmp_path.glob(".index.*.html"))  # no partial file left behind
