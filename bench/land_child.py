"""The extracting process of the extract+land benchmark: ``python -m bench.land_child``.

Started by :mod:`bench.extract_land` as a fresh interpreter, so its peak memory is the
extraction's alone. Reads its job as one JSON object on stdin (stdin, not argv, because it
carries the client secret), runs :func:`connectors.jobs.extract_and_land_registry` once and
prints one JSON line: ``{"landed": n, "extracted": n, "pages": n, "seconds": s,
"peak_rss_kib": k}``. With ``"profile": path`` in the job, the call runs under cProfile and the
stats are written to ``path`` (the timing is then inflated by the profiler).

Peak memory is ``VmHWM`` from ``/proc/self/status``, the high-water mark of this process's own
address space, and not ``ru_maxrss``: Linux carries ``ru_maxrss`` over from the address space
that ``execve`` replaced, and a child started with fork/vfork + exec therefore reports the
*parent's* peak (the benchmark's parent holds a million rows in memory, so ``ru_maxrss`` here
read over 1 GB while this process never went above ~140 MB). ``ru_maxrss`` is the fallback
where ``/proc`` is missing.
"""

from __future__ import annotations

import cProfile
import json
import logging
import resource
import sys
import time

from connectors.jobs import extract_and_land_registry


def main() -> int:
    logging.basicConfig(level=logging.WARNING, format="land_child: %(levelname)s %(message)s")
    job = json.load(sys.stdin)
    profiler = cProfile.Profile() if job.get("profile") else None
    started = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    result = extract_and_land_registry(
        job["warehouse_url"],
        source_id=job["source_id"],
        entity=job["entity"],
        base_url=job["base_url"],
        client_id=job["client_id"],
        client_secret=job["client_secret"],
        page_size=job["page_size"],
    )
    if profiler is not None:
        profiler.disable()
    seconds = time.perf_counter() - started
    if profiler is not None:
        profiler.dump_stats(job["profile"])
    report = {
        "landed": result.records_landed,
        "extracted": result.records_extracted,
        "pages": result.pages,
        "seconds": seconds,
        "peak_rss_kib": peak_rss_kib(),
    }
    print(json.dumps(report), flush=True)
    return 0


def peak_rss_kib() -> int:
    """High-water mark of this process's resident set in KiB, interpreter and imports included."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


if __name__ == "__main__":
    sys.exit(main())
