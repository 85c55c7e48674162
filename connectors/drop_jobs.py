"""Land the spreadsheet files of a drop location: each file once, by content.

Each new file of the entity's form is landed as its own load batch, so one malformed file (an
unexpected sheet, a renamed header) is rejected with an error naming the file, sheet and cell
while the others land. Landed and rejected files are recorded in `ops.drop_file` by SHA-256: a
file dropped twice, under any name, is landed once, and a rejected file is not read again until
its content changes. Files the location leaves out (hidden, dated in the future, a link out of
the folder) are recorded too, as `skipped` (until fixed) or `rejected`, never silently.

One run per source entity at a time: a run takes an advisory lock before it reads what was
recorded, so a second run stops with LoadInProgressError instead of landing the same file again
(the two then collided on ops.drop_file's key).
"""

from __future__ import annotations

import logging
from functools import cache

import psycopg

from connectors.contract_rules import standardiser
from connectors.drop_location import DroppedFile, SkippedFile, open_location
from connectors.jobs import Landing
from connectors.landing import RecordRules, land_extraction, lock_source
from connectors.spreadsheets import (
    Form,
    SpreadsheetError,
    detect_form,
    drop_envelope,
    load_forms,
    read_drop_file,
)
from connectors.warehouse import ensure_schema

log = logging.getLogger(__name__)

CONTRACT = "spreadsheet-forms-v1"


@cache
def _forms() -> dict[str, Form]:
    return load_forms()


def land_dropped_files(warehouse_url: str, source_id: str, entity: str, location: str) -> Landing:
    """Land every file of `entity`'s form at `location` not landed or rejected before."""
    ensure_schema(warehouse_url)
    forms = _forms()
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        # The run's own lock: landing takes its `land` lock per file on another connection,
        # so the same key would lock the run out of its own landings.
        lock_source(conn, source_id, entity, purpose="drop")  # held until the connection closes
        seen = {
            bytes(sha)
            for (sha,) in conn.execute(
                "select sha256 from ops.drop_file where source_id = %s and state <> 'skipped'",
                (source_id,),
            )
        }
        outcome = Landing([])

        def left_out(skipped: SkippedFile) -> None:
            if bytes.fromhex(skipped.sha256) in seen:
                return  # rejected (or landed) before: reported then
            if skipped.state == "rejected":
                outcome.rejected.append(skipped.reason)
            _record(conn, source_id, skipped, None, skipped.state, skipped.reason)

        for dropped in open_location(location).list_files(left_out):
            digest = bytes.fromhex(dropped.sha256)
            if digest in seen:
                continue
            seen.add(digest)  # a second copy in this listing is the same file
            with dropped.local_path() as path:
                try:
                    form = detect_form(path, forms, name=dropped.name)
                except SpreadsheetError as error:
                    _record(conn, source_id, dropped, None, "rejected", str(error))
                    outcome.rejected.append(str(error))
                    continue
                if form.entity != entity:
                    seen.discard(digest)  # another form's DAG lands it
                    continue
                rules = RecordRules(
                    envelope=drop_envelope,
                    standardiser=standardiser(CONTRACT, entity),
                    on_landed=lambda c, batch_id, rows, d=dropped: _record_landed(
                        c, source_id, entity, d, batch_id, rows
                    ),
                )
                try:
                    result = land_extraction(
                        warehouse_url,
                        source_id=source_id,
                        entity=entity,
                        contract=CONTRACT,
                        extraction="file",
                        extract=lambda _since, p=path, f=form, d=dropped: read_drop_file(
                            p, f, file_sha256=d.sha256, name=d.name, modified_at=d.modified_at
                        ),
                        rules=rules,
                    )
                except SpreadsheetError as error:
                    _record(conn, source_id, dropped, entity, "rejected", str(error))
                    outcome.rejected.append(str(error))
                    continue
            log.info(
                "%s: landed %s rows as batch %s",
                dropped.name,
                result.records_landed,
                result.batch_id,
            )
            outcome.batches.append(result)
    for error in outcome.rejected:
        log.error("rejected: %s", error)
    return outcome


# A `skipped` row gives way to what becomes of the file once fixed; other rows stay as they are.
_RECORD_SQL = (
    "insert into ops.drop_file (source_id, sha256, file_name, entity, size_bytes, modified_at,"
    " state, batch_id, rows_landed, error) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
    " on conflict (source_id, sha256) do update set file_name = excluded.file_name,"
    " entity = excluded.entity, size_bytes = excluded.size_bytes,"
    " modified_at = excluded.modified_at, state = excluded.state,"
    " batch_id = excluded.batch_id, rows_landed = excluded.rows_landed,"
    " error = excluded.error, recorded_at = now()"
    " where ops.drop_file.state = 'skipped'"
    " and (excluded.state <> 'skipped' or ops.drop_file.error is distinct from excluded.error)"
)


def _record_landed(
    conn: psycopg.Connection,
    source_id: str,
    entity: str,
    dropped: DroppedFile,
    batch_id: int,
    rows: int,
) -> None:
    if not _record(conn, source_id, dropped, entity, "landed", None, batch_id, rows):
        # Under the run's lock this cannot happen; raising rolls the batch back, as before.
        raise RuntimeError(f"{dropped.name} is recorded in ops.drop_file already")


def _record(
    conn: psycopg.Connection,
    source_id: str,
    dropped: DroppedFile | SkippedFile,
    entity: str | None,
    state: str,
    error: str | None,
    batch_id: int | None = None,
    rows: int | None = None,
) -> bool:
    """Record what became of a file; False when its row stays as it was."""
    return (
        conn.execute(
            _RECORD_SQL,
            (
                source_id,
                bytes.fromhex(dropped.sha256),
                dropped.name,
                entity,
                dropped.size,
                dropped.modified_at,
                state,
                batch_id,
                rows,
                error,
            ),
        ).rowcount
        > 0
    )
