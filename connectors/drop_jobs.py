"""Land the spreadsheet files of a drop location: each file once, by content.

Each new file of the entity's form is landed as its own load batch, so one malformed file (an
unexpected sheet, a renamed header) is rejected with an error naming the file, sheet and cell
while the others land. Landed and rejected files are recorded in `ops.drop_file` by SHA-256: a
file dropped twice, under any name, is landed once, and a rejected file is not read again until
its content changes.
"""

from __future__ import annotations

import logging
from functools import cache

import psycopg

from connectors.contract_rules import standardiser
from connectors.drop_location import DroppedFile, open_location
from connectors.jobs import Landing
from connectors.landing import RecordRules, land_extraction
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
        seen = {
            bytes(sha)
            for (sha,) in conn.execute(
                "select sha256 from ops.drop_file where source_id = %s", (source_id,)
            )
        }
        outcome = Landing([])
        for dropped in open_location(location).list_files():
            digest = bytes.fromhex(dropped.sha256)
            if digest in seen:
                continue
            seen.add(digest)  # a second copy in this listing is the same file
            with dropped.local_path() as path:
                try:
                    form = detect_form(path, forms, name=dropped.name)
                except SpreadsheetError as error:
                    _reject(conn, source_id, dropped, None, str(error))
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
                        extract=lambda _since, p=path, f=form, d=dropped: read_drop_file(
                            p, f, file_sha256=d.sha256, name=d.name, modified_at=d.modified_at
                        ),
                        rules=rules,
                    )
                except SpreadsheetError as error:
                    _reject(conn, source_id, dropped, entity, str(error))
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


def _record_landed(
    conn: psycopg.Connection,
    source_id: str,
    entity: str,
    dropped: DroppedFile,
    batch_id: int,
    rows: int,
) -> None:
    conn.execute(
        "insert into ops.drop_file (source_id, sha256, file_name, entity, size_bytes,"
        " modified_at, state, batch_id, rows_landed) values (%s, %s, %s, %s, %s, %s,"
        " 'landed', %s, %s)",
        (
            source_id,
            bytes.fromhex(dropped.sha256),
            dropped.name,
            entity,
            dropped.size,
            dropped.modified_at,
            batch_id,
            rows,
        ),
    )


def _reject(
    conn: psycopg.Connection,
    source_id: str,
    dropped: DroppedFile,
    entity: str | None,
    error: str,
) -> None:
    conn.execute(
        "insert into ops.drop_file (source_id, sha256, file_name, entity, size_bytes,"
        " modified_at, state, error) values (%s, %s, %s, %s, %s, %s, 'rejected', %s)"
        " on conflict (source_id, sha256) do nothing",
        (
            source_id,
            bytes.fromhex(dropped.sha256),
            dropped.name,
            entity,
            dropped.size,
            dropped.modified_at,
            error,
        ),
    )
