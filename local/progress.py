"""Progress of long work, one line per finished item as it finishes:

    [12/45] ninh_binh_registry__st_task success (3.2 s)
    [ 37/212] model marts__build.fct_st_task success (1.4 s)

The demo's DAG runs (local.demo) and dbt's nodes (local.dbt, from dbt's structured events) both
report through `Progress`; on stdout, like the rest of the local commands' output.
"""

from __future__ import annotations

import sys
import threading
from typing import Any, TextIO


class Progress:
    """Counts finished items of `total` and prints a line for each (thread-safe: dbt reports
    from its worker threads)."""

    def __init__(self, total: int = 0, out: TextIO | None = None) -> None:
        self.total = total
        self.done = 0
        self._out = out
        self._lock = threading.Lock()

    def finished(self, label: str, state: str, seconds: float | None = None) -> None:
        with self._lock:
            self.done += 1
            total = max(self.total, self.done)
            line = f"[{self.done:>{len(str(total))}}/{total}] {label} {state}"
            if seconds is not None:
                line += f" ({seconds:.1f} s)"
            print(line, file=self._out or sys.stdout, flush=True)


class DbtProgress:
    """A `dbtRunner(callbacks=[...])` callback: a Progress line per node dbt finished (seed,
    model, snapshot, test, unit test), out of the nodes selected."""

    def __init__(self, progress: Progress | None = None) -> None:
        self.progress = progress or Progress()

    def __call__(self, event: Any) -> None:  # dbt's EventMsg: .info (name, …) and .data
        name, data = event.info.name, event.data
        if name in ("ConcurrencyLine", "LogStartLine"):
            # The nodes to run; `dbt build` adds its unit tests after announcing the others.
            total = data.node_count if name == "ConcurrencyLine" else data.total
            self.progress.total = max(self.progress.total, total)
        elif name == "NodeFinished" and data.node_info.materialized != "ephemeral":
            self.progress.finished(
                _label(data.node_info), data.run_result.status, data.run_result.execution_time
            )
        elif name == "GenericExceptionOnRun":  # a node that crashed: no NodeFinished for it
            self.progress.finished(_label(data.node_info), "error")


def _label(node_info: Any) -> str:
    relation = node_info.node_relation
    if node_info.resource_type in ("model", "seed", "snapshot") and relation.alias:
        return f"{node_info.resource_type} {relation.schema}.{relation.alias}"
    return f"{node_info.resource_type} {node_info.node_name}"
