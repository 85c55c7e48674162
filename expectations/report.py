"""A static HTML report of one gate run: what was checked, what failed, what it did.

The equivalent of GX Data Docs for our gate (GX's own renderer needs a file-backed context per
run): one page per run under `<reports>/<source>/<entity>/batch_<id>.html` and an index of
all runs, newest first. No personal data: the page names record ids and reasons only.
The folder is `.local/reports/quality` in the repository (ignored) unless STI_QUALITY_REPORTS
says otherwise.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import fcntl
import html
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from expectations.gate import GateResult

DEFAULT_DIR = Path(__file__).resolve().parents[1] / ".local" / "reports" / "quality"
_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;color:#222}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}"
    ".ok{color:#176317}.warning{color:#8a5a00}.blocking{color:#a11}"
)


def reports_dir(report_dir: Path | None = None) -> Path:
    return report_dir or Path(os.environ.get("STI_QUALITY_REPORTS") or DEFAULT_DIR)


def write_report(
    result: GateResult,
    source_id: str,
    entity: str,
    suite: dict[str, Any],
    report_dir: Path | None = None,
) -> GateResult:
    """Write the run's page and refresh the index; returns the result with its report path."""
    root = reports_dir(report_dir)
    page = root / source_id / entity / f"batch_{result.batch_id}.html"
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(_page(result, source_id, entity, suite), encoding="utf-8")
    _append_index(root, page, result, source_id, entity)
    return dataclasses.replace(result, report=page)


def _page(result: GateResult, source_id: str, entity: str, suite: dict[str, Any]) -> str:
    e = html.escape
    verdict = (
        '<p class="ok">Passed: the batch may be published without its quarantined rows.</p>'
        if result.success
        else f'<p class="blocking">Blocked: {e(result.blocked_reason or "")}</p>'
    )
    reasons_vi = {_name(x): x["meta"].get("reason_vi", "") for x in suite["expectations"]}
    rows = "".join(
        f"<tr><td><code>{e(o.name)}</code></td><td class='{o.severity}'>{o.severity}</td>"
        f"<td class='{'ok' if not o.unexpected else o.severity}'>{o.unexpected}</td>"
        f"<td>{e(o.reason)}<br><small>{e(reasons_vi.get(o.name, ''))}</small></td></tr>"
        for o in result.outcomes
    )
    return (
        f"<!doctype html><meta charset='utf-8'><title>Gate: {e(source_id)} / {e(entity)}"
        f" batch {result.batch_id}</title><style>{_STYLE}</style>"
        f"<h1>{e(source_id)} / {e(entity)} — batch {result.batch_id}</h1>"
        f"<p>Suite <code>{e(suite['name'])}</code>; run {_now()}.</p>{verdict}"
        f"<table><tr><th>rows</th><th>passed</th><th>warned</th><th>quarantined</th>"
        f"<th>quarantine resolved by this run</th></tr><tr><td>{result.rows}</td>"
        f"<td>{result.passed}</td><td>{result.warned}</td><td>{result.quarantined}</td>"
        f"<td>{result.resolved}</td></tr></table>"
        f"<h2>Expectations</h2><p>{e(suite.get('meta', {}).get('description', ''))}</p>"
        "<table><tr><th>expectation</th><th>severity</th><th>failing rows</th>"
        f"<th>reason</th></tr>{rows}</table>"
        "<p>Quarantined rows with their reasons: <code>make quarantine</code> or"
        " <code>select * from ops.quarantine where batch_id = "
        f"{result.batch_id}</code>.</p>"
    )


def _append_index(root: Path, page: Path, result: GateResult, source_id: str, entity: str) -> None:
    index = root / "index.html"
    entry = (
        f"<li>{_now()} <a href='{html.escape(str(page.relative_to(root)))}'>"
        f"{html.escape(source_id)} / {html.escape(entity)} batch {result.batch_id}</a>:"
        f" {result.rows} rows, {result.passed} passed, {result.warned} warned,"
        f" {result.quarantined} quarantined{'' if result.success else ' — BLOCKED'}</li>\n"
    )
    head = (
        "<!doctype html><meta charset='utf-8'><title>Quality gate runs</title>"
        f"<style>{_STYLE}</style><h1>Quality gate runs</h1><ul>\n"
    )
    # Gates of different entities run at the same time: one writer at a time (a lock file), and
    # the index replaced whole, so no reader ever sees it half written.
    with (root / ".index.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        previous = index.read_text(encoding="utf-8") if index.exists() else ""
        entries = previous.split("<ul>\n", 1)[1] if "<ul>\n" in previous else ""
        handle, partial = tempfile.mkstemp(dir=root, prefix=".index.", suffix=".html")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(head + entry + entries)
        os.chmod(partial, 0o644)  # mkstemp makes it 0600; the index is for people to open
        os.replace(partial, index)


def _name(expectation: dict[str, Any]) -> str:
    from expectations.gate import _expectation_name

    return _expectation_name(expectation)


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
