"""The dlt baseline: one full extraction of a registry API v1 entity with dlt's REST API source.

Runs inside bench/dlt/.venv (dlt's own environment; bench/dlt_baseline.py creates it and
starts this script):

    REGISTRY_CLIENT_ID=... REGISTRY_CLIENT_SECRET=... DESTINATION_URL=postgresql://... \\
        bench/dlt/.venv/bin/python bench/dlt/registry_pipeline.py BASE_URL st-tasks DATASET \\
        --pipelines-dir /tmp/somewhere [--page-size 10000] [--loader-file-format csv]

Secrets come from the environment, never argv (argv is visible to every local user); that
includes the destination URL, which may carry a password. The source is dlt's documented
declarative config only: ``rest_api_source`` with an OAuth2 client-credentials auth, a JSON
cursor paginator on ``next_cursor``/``has_more`` and an incremental ``updated_since`` on
``updated_at``; the destination is dlt's postgres, schema DATASET. Without options everything
is dlt's default: page size the registry's (1,000), file format dlt's preferred one for
postgres (``insert_values``). Other dlt settings come, as dlt reads them, from environment
variables (``NORMALIZE__WORKERS``, ``DATA_WRITER__DISABLE_COMPRESSION``, ...).

Prints one JSON line: ``{"records": n, "seconds": s, "peak_rss_mb": m, ...}``. ``records`` is
the row count of the entity's table after the run; ``seconds`` times building the source and
``pipeline.run`` (extract, normalise, load, commit), not the interpreter start or imports.

``peak_rss_mb`` is the resident memory of this process and its descendants (dlt's normalise
workers, when there is more than one): the larger of this process's ``VmHWM`` and the largest
sum of the tree's ``VmRSS`` seen by a sampler thread (every 20 ms). Pages that forked workers
share copy-on-write with this process count in each, so with workers it overstates what the
tree holds; ``peak_rss_upper_mb`` adds every process's own ``VmHWM`` (an upper bound). Not
``ru_maxrss`` (``getrusage`` SELF/CHILDREN): Linux carries it over an ``exec`` from the address
space that exec replaced, so this process would report its parent's peak (bench/land_child.py
explains). ``getrusage`` is the fallback where there is no ``/proc``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import dlt
from dlt.sources.rest_api import rest_api_source

INITIAL_UPDATED_SINCE = "1970-01-01T00:00:00Z"  # a first run extracts everything
SAMPLE_INTERVAL = 0.02  # seconds between two looks at the process tree


def build_source(base_url: str, entity_path: str, page_size: int | None) -> dlt.sources.DltSource:
    """The registry entity as dlt's declarative REST API source (client secrets from env)."""
    params: dict = {
        "updated_since": {
            "type": "incremental",
            "cursor_path": "updated_at",
            "initial_value": INITIAL_UPDATED_SINCE,
        },
    }
    if page_size is not None:
        params["limit"] = page_size
    return rest_api_source(
        {
            "client": {
                "base_url": base_url.rstrip("/") + "/",
                "auth": {
                    "type": "oauth2_client_credentials",
                    "access_token_url": base_url.rstrip("/") + "/oauth/token",
                    "client_id": os.environ["REGISTRY_CLIENT_ID"],
                    "client_secret": os.environ["REGISTRY_CLIENT_SECRET"],
                },
                "paginator": {
                    "type": "cursor",
                    "cursor_path": "next_cursor",
                    "cursor_param": "cursor",
                    "has_more_path": "has_more",
                },
            },
            "resources": [
                {
                    "name": table_name(entity_path),
                    "endpoint": {
                        "path": f"v1/{entity_path}",
                        "params": params,
                        "data_selector": "data",
                    },
                }
            ],
        }
    )


def destination_url(url: str) -> str:
    """The URL with a placeholder password if it has none.

    dlt's postgres credentials insist on a password even where the server asks for none (trust
    authentication, as on the project's local servers). libpq sends it only when asked, and a
    server that asks would refuse a password-less login anyway.
    """
    parts = urlsplit(url)
    if parts.password is not None or "@" not in parts.netloc:
        return url
    user, host = parts.netloc.rsplit("@", 1)
    return urlunsplit(parts._replace(netloc=f"{user}:unused@{host}"))


def table_name(entity_path: str) -> str:
    """The destination table of an entity: ``st-tasks`` -> ``st_tasks``."""
    return entity_path.replace("-", "_")


class TreeMemory:
    """Samples the resident memory of this process and its descendants, in a thread."""

    def __init__(self) -> None:
        self.tree_kib = 0  # largest sum of VmRSS over the tree at one sample
        self._children_hwm_kib: dict[int, int] = {}  # pid -> its VmHWM when last seen
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tree-memory", daemon=True)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_INTERVAL):
            self._sample()

    def _sample(self) -> None:
        tree_kib = _status_kib("self", "VmRSS:")
        for pid in _descendants(os.getpid()):
            hwm = _status_kib(pid, "VmHWM:")
            if hwm:  # 0 once a process has exited: keep what was seen before
                self._children_hwm_kib[pid] = max(hwm, self._children_hwm_kib.get(pid, 0))
                tree_kib += _status_kib(pid, "VmRSS:")
        self.tree_kib = max(self.tree_kib, tree_kib)

    @property
    def children_hwm_kib(self) -> int:
        return sum(self._children_hwm_kib.values())

    @property
    def children(self) -> int:
        return len(self._children_hwm_kib)


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                text = Path(f"/proc/{parent}/task/{task}/children").read_text()
            except OSError:
                continue
            for child in map(int, text.split()):
                found.append(child)
                todo.append(child)
    return found


def _status_kib(pid: int | str, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(key):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base_url")
    parser.add_argument("entity_path", help="e.g. st-tasks")
    parser.add_argument("dataset", help="destination schema (created by dlt)")
    parser.add_argument("--pipelines-dir", required=True, help="dlt's working dir (a temp dir)")
    parser.add_argument("--page-size", type=int, help="the limit parameter (default: the API's)")
    parser.add_argument("--loader-file-format", help="e.g. csv (COPY); default: dlt's choice")
    args = parser.parse_args(argv)

    pipeline = dlt.pipeline(
        pipeline_name="registry_bench",
        pipelines_dir=args.pipelines_dir,
        destination=dlt.destinations.postgres(
            credentials=destination_url(os.environ["DESTINATION_URL"])
        ),
        dataset_name=args.dataset,
    )
    with TreeMemory() as tree:
        cpu_started = _cpu_seconds()
        started = time.perf_counter()
        source = build_source(args.base_url, args.entity_path, args.page_size)
        pipeline.run(source, loader_file_format=args.loader_file_format)
        seconds = time.perf_counter() - started
        # Worker processes count once they have been waited for; any still alive are missed,
        # which can only make dlt look cheaper.
        cpu_seconds = _cpu_seconds() - cpu_started
    steps = {
        step.step: (step.finished_at - step.started_at).total_seconds()
        for step in pipeline.last_trace.steps
        if step.finished_at is not None
    }
    # Rows in the table: dlt's own row counts are not rows with csv files.
    with pipeline.sql_client() as client:
        table = client.make_qualified_table_name(table_name(args.entity_path))
        ((records,),) = client.execute_sql(f"select count(*) from {table}")

    self_kib = _status_kib("self", "VmHWM:")
    if self_kib:
        peak_kib = max(self_kib, tree.tree_kib)
        upper_kib = self_kib + tree.children_hwm_kib
    else:  # no /proc: getrusage, with the exec carry-over described above
        self_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak_kib = upper_kib = self_kib + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    report = {
        "records": records,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "peak_rss_mb": peak_kib / 1024,
        "peak_rss_upper_mb": upper_kib / 1024,
        "self_peak_rss_mb": self_kib / 1024,
        "child_processes": tree.children,
        "steps": steps,
        "dlt_version": dlt.__version__,
    }
    print(json.dumps(report), flush=True)
    return 0


def _cpu_seconds() -> float:
    """User + system CPU of this process and of its children that have ended."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


if __name__ == "__main__":
    sys.exit(main())
