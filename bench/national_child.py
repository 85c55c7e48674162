"""The extracting process of the national benchmark: ``python -m bench.national_child``.

Started by :mod:`bench.national` as a fresh interpreter. Reads its jobs as one JSON list on
stdin (it carries credentials, so not argv): ``[{"source": {...catalogue fields...},
"entity": e, "connection": {...}}]`` plus ``"warehouse_url"``. Runs each job with
:func:`connectors.jobs.extract_and_land`, exactly what the DAG task calls, one after the other,
and prints one JSON line per job: ``{"source_id", "system", "entity", "landed", "seconds",
"cpu_seconds", "peak_rss_kib"}`` (CPU: this process's user + system time, all threads).

The peak is per job: before each one the process's resident high-water mark (``VmHWM``) is
reset by writing ``5`` to ``/proc/self/clear_refs`` (Linux ≥ 4.0), so each figure is what that
task would need on its own, interpreter and imports included.
"""

from __future__ import annotations

import json
import logging
import resource
import sys
import time

from bench.land_child import peak_rss_kib
from connectors.catalogue import EventSubscription, Source
from connectors.jobs import SourceConnection, extract_and_land


def reset_peak_rss() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        pass  # the peaks are then cumulative: an upper bound


def _cpu_seconds() -> float:
    """User + system CPU time of this process, all threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    logging.basicConfig(level=logging.WARNING, format="national_child: %(levelname)s %(message)s")
    batch = json.load(sys.stdin)
    for job in batch["jobs"]:
        fields = dict(job["source"])
        events = fields.pop("events", None)
        source = Source(
            **{**fields, "entities": tuple(fields["entities"])},
            events=EventSubscription(**events) if events else None,
        )
        connection = SourceConnection(**job["connection"])
        reset_peak_rss()
        cpu_started = _cpu_seconds()
        started = time.perf_counter()
        landing = extract_and_land(batch["warehouse_url"], source, job["entity"], connection)
        seconds = time.perf_counter() - started
        cpu_seconds = _cpu_seconds() - cpu_started
        report = {
            "source_id": source.id,
            "system": source.system,
            "entity": job["entity"],
            "landed": sum(b.records_landed for b in landing.batches),
            "rejected": len(landing.rejected),
            "seconds": seconds,
            "cpu_seconds": cpu_seconds,
            "peak_rss_kib": peak_rss_kib(),
        }
        print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
