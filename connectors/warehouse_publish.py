"""Write–audit–publish of the warehouse: analysts see a dbt build only once all of it passed.

Analysts read the published schemas (PUBLISHED_SCHEMAS: `marts`, and `reference` for the seeds),
which hold one view per relation dbt built: `marts.fct_st_task` is
`select * from marts__p<publish_id>.fct_st_task`.

1. begin_publish: a row in ops.warehouse_publish (state `building`) with the build's cutoff,
   and the build schemas `<schema>__build` emptied. dbt then builds into them (dbt var `wap`,
   dbt_project/macros/generate_schema_name.sql) and reads only the load batches the gate
   published up to the cutoff (var `published_before`).
2. publish, once every model and blocking test passed: in one transaction, each build schema is
   renamed to its version `<schema>__p<publish_id>` and every published view is repointed at it
   (CREATE OR REPLACE VIEW, which keeps the grants on the view and the analysts' views on it);
   the publish is recorded and the batches it included get its publish_id. Then old versions
   that nothing reads any more are dropped; nothing outside them ever is.
3. fail_publish otherwise: the published views are untouched; the row names what failed.

No Airflow here: the warehouse DAG (dags/sync_dag_factory.py) and local runs (local/dbt.py)
call these functions.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

# Schemas analysts read. dbt_project/macros/generate_schema_name.sql lists the same ones.
PUBLISHED_SCHEMAS = ("marts", "reference")
BUILD_SUFFIX = "__build"
VERSION_INFIX = "__p"
# Where a table that sat in a published schema before write–audit–publish is moved to when a
# view takes its name; objects that read it keep reading it there. Never dropped automatically.
LEGACY_SUFFIX = "__legacy"
# Schemas of append-only relations dbt never rebuilds (version tables, snapshots: full_refresh
# is off for them); published views may read them. dbt_project/macros/versioned.sql.
STORE_SCHEMAS = ("history",)

# Serialises begin/publish/fail of concurrent builds (and their reads of the ledger).
_PUBLISH_LOCK_KEY = 7_324_002
# Relations dbt leaves behind only when a build was interrupted; never published.
_DBT_SCRATCH = re.compile(r"__dbt_(tmp|backup)$")
_FAILED_STATUSES = ("error", "fail", "runtime error")


class PublishError(RuntimeError):
    """Publishing refused or failed; the published state is as it was before."""


class Begun(NamedTuple):
    publish_id: int
    cutoff: datetime


def build_schema(schema: str) -> str:
    return f"{schema}{BUILD_SUFFIX}"


def version_schema(schema: str, publish_id: int) -> str:
    return f"{schema}{VERSION_INFIX}{publish_id}"


def begin_publish(
    warehouse_url: str, cutoff: datetime | None = None, run_id: str | None = None
) -> Begun:
    """Start a build: its ledger row and empty build schemas. Returns its id and cutoff.

    The cutoff (default: now, by the warehouse's clock) is the `published_before` dbt var of the
    build: it reads the batches the gate published up to then, and publishing it records exactly
    those batches as included. A build still `building` is abandoned (marked failed): only the
    latest build may publish, since this one empties the build schemas it was writing.
    """
    from connectors.warehouse import ensure_schema

    ensure_schema(warehouse_url)
    with psycopg.connect(warehouse_url, autocommit=True) as conn, conn.transaction():
        conn.execute("select pg_advisory_xact_lock(%s)", (_PUBLISH_LOCK_KEY,))
        abandoned = conn.execute(
            "update ops.warehouse_publish set state = 'failed', finished_at = now(),"
            " failures = 'abandoned: a later build began before this one was published'"
            " where state = 'building' returning publish_id"
        ).fetchall()
        publish_id, begun_cutoff = conn.execute(
            "insert into ops.warehouse_publish (cutoff, dag_run_id)"
            " values (coalesce(%s, now()), %s) returning publish_id, cutoff",
            (cutoff, run_id),
        ).fetchone()
        leftovers = [
            name
            for name in (build_schema(s) for s in PUBLISHED_SCHEMAS)
            if _schema_exists(conn, name)
        ]
        if leftovers:
            outside = _outside_dependents(conn, leftovers)
            if outside:
                raise PublishError(
                    "cannot empty the build schemas: objects outside them read them ("
                    + "; ".join(f"{s}: {', '.join(objs)}" for s, objs in outside.items())
                    + "). Build schemas are rebuilt by every run; point those objects at the"
                    " published schemas instead, or drop them."
                )
            conn.execute(
                sql.SQL("drop schema {} cascade").format(
                    sql.SQL(", ").join(map(sql.Identifier, leftovers))
                )
            )
    for old in abandoned:
        log.warning("publish %s was still building; abandoned (marked failed)", old[0])
    log.info("publish %s: building, cutoff %s", publish_id, begun_cutoff.isoformat())
    return Begun(publish_id, begun_cutoff)


def publish(warehouse_url: str, publish_id: int, *, lock_timeout: str = "2min") -> list[str]:
    """Publish a finished build atomically; returns the published relations (`schema.name`).

    Call only when every model and blocking test of the build passed. If any published view
    cannot take its new version (a column dropped, renamed or retyped), nothing is published,
    the publish is recorded as failed and PublishError says which relation and what to do.
    Publishing an already published build again does nothing (safe to retry).
    """
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        try:
            with conn.transaction():
                conn.execute("select pg_advisory_xact_lock(%s)", (_PUBLISH_LOCK_KEY,))
                conn.execute("select set_config('lock_timeout', %s, true)", (lock_timeout,))
                row = conn.execute(
                    "select state, cutoff, relations, failures from ops.warehouse_publish"
                    " where publish_id = %s for update",
                    (publish_id,),
                ).fetchone()
                if row is None:
                    raise PublishError(f"there is no publish {publish_id}")
                state, cutoff, relations, failures = row
                if state == "published":
                    log.info("publish %s was already published", publish_id)
                    return list(relations or [])
                if state != "building":
                    raise PublishError(f"publish {publish_id} is {state}: {failures}")
                relations, warnings = _swap_in(conn, publish_id)
                conn.execute(
                    "update ops.warehouse_publish set state = 'published', finished_at = now(),"
                    " relations = %s, warnings = %s where publish_id = %s",
                    (relations, warnings or None, publish_id),
                )
                batches = conn.execute(
                    "update ops.load_batch set publish_id = %s where state = 'published'"
                    " and publish_id is null and published_at <= %s",
                    (publish_id, cutoff),
                ).rowcount
        except Exception as error:
            if isinstance(error, PublishError):
                reason = str(error)
            elif isinstance(error, psycopg.errors.LockNotAvailable):
                reason = (
                    f"publish {publish_id} failed: the published views stayed locked for more"
                    f" than {lock_timeout} (long-running queries on them). Nothing was"
                    " published; the published state is unchanged. Run the build again."
                )
            else:
                reason = (
                    f"publish {publish_id} failed: {error}. Nothing was published; the"
                    " published state is unchanged."
                )
            try:
                _record_failure(conn, publish_id, reason)
            except psycopg.Error as unrecorded:
                log.error("publish %s: could not record the failure: %s", publish_id, unrecorded)
            if isinstance(error, PublishError):
                raise
            raise PublishError(reason) from error
    log.info(
        "publish %s: published %d relations (%s), %d load batches",
        publish_id,
        len(relations),
        ", ".join(relations),
        batches,
    )
    for warning in warnings:
        log.warning("publish %s: %s", publish_id, warning)
    drop_unused_versions(warehouse_url, publish_id)
    return relations


def fail_publish(warehouse_url: str, publish_id: int, failures: str) -> str:
    """Record that a build failed and will not be published; returns the recorded failures.

    A publish that already failed keeps what it recorded first (the more specific reason), and a
    published one is left as it is.
    """
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        return _record_failure(conn, publish_id, failures)


def failed_nodes(run_results: dict[str, Any]) -> list[str]:
    """Failed nodes of a run_results.json, e.g. `test unique_x_id: fail (Got 2 results…)`."""
    failed = []
    for result in run_results.get("results", []):
        if result.get("status") not in _FAILED_STATUSES:
            continue
        resource_type, _, name = result["unique_id"].split(".")[:3]
        message = (result.get("message") or "").strip().replace("\n", " ")
        failed.append(f"{resource_type} {name}: {result['status']} ({message[:500]})")
    return failed


def failed_nodes_in(target_dir: Path) -> list[str]:
    """failed_nodes of `<target_dir>/run_results.json`; empty if dbt wrote none."""
    path = target_dir / "run_results.json"
    if not path.is_file():
        return []
    return failed_nodes(json.loads(path.read_text(encoding="utf-8")))


def drop_unused_versions(warehouse_url: str, publish_id: int) -> list[str]:
    """Drop the versions older than `publish_id` that nothing outside them reads any more.

    A version stays while a published view (of a relation no longer built) or an analyst's
    object reads it; each such reader is logged. Returns the dropped schemas. Failing to drop
    (e.g. a long query holds a lock) only logs: the next publish tries again.
    """
    try:
        with psycopg.connect(warehouse_url, autocommit=True) as conn, conn.transaction():
            conn.execute("select set_config('lock_timeout', '10s', true)")
            candidates = [
                name
                for (name,) in conn.execute(
                    "select nspname from pg_namespace where nspname ~ %s order by nspname",
                    (_version_pattern(),),
                )
                if _version_number(name) < publish_id
            ]
            if not candidates:
                return []
            kept, droppable = _unread(conn, candidates)
            if droppable:
                # Lock what will be dropped, then check again: no new reader can appear now.
                relations = conn.execute(
                    "select c.oid::regclass::text from pg_class c"
                    " join pg_namespace n on n.oid = c.relnamespace"
                    " where n.nspname = any(%s) and c.relkind in ('r', 'p', 'v', 'm', 'f')",
                    (droppable,),
                ).fetchall()
                if relations:
                    conn.execute(
                        sql.SQL("lock table {} in access exclusive mode").format(
                            sql.SQL(", ").join(sql.SQL(name) for (name,) in relations)
                        )
                    )
                more_kept, droppable = _unread(conn, droppable)
                kept.update(more_kept)
            if droppable:
                conn.execute(
                    sql.SQL("drop schema {} cascade").format(
                        sql.SQL(", ").join(map(sql.Identifier, droppable))
                    )
                )
    except psycopg.Error as error:
        log.warning("publish %s: old versions not dropped this time: %s", publish_id, error)
        return []
    for name, readers in kept.items():
        log.warning("kept %s: still read by %s", name, ", ".join(readers))
    if droppable:
        log.info("publish %s: dropped unused versions %s", publish_id, ", ".join(droppable))
    return droppable


def _unread(
    conn: psycopg.Connection, candidates: list[str]
) -> tuple[dict[str, list[str]], list[str]]:
    """Split schemas into those something outside them reads (with the readers) and the rest."""
    kept: dict[str, list[str]] = {}
    droppable = list(candidates)
    while droppable:  # a kept schema keeps what it reads too
        outside = _outside_dependents(conn, droppable)
        if not outside:
            break
        kept.update(outside)
        droppable = [name for name in droppable if name not in outside]
    return kept, droppable


def _swap_in(conn: psycopg.Connection, publish_id: int) -> tuple[list[str], list[str]]:
    """Step 1 of publish, inside its transaction: version the build schemas, repoint the views."""
    published: list[str] = []
    warnings: list[str] = []
    built = [s for s in PUBLISHED_SCHEMAS if _schema_exists(conn, build_schema(s))]
    if not built:
        raise PublishError(
            f"publish {publish_id}: nothing to publish, no build schema exists ("
            + ", ".join(build_schema(s) for s in PUBLISHED_SCHEMAS)
            + "). Was dbt run with the var `wap: true`?"
        )
    versions = [version_schema(s, publish_id) for s in built]
    for schema, version in zip(built, versions, strict=True):
        conn.execute(
            sql.SQL("alter schema {} rename to {}").format(
                sql.Identifier(build_schema(schema)), sql.Identifier(version)
            )
        )
    _refuse_views_over_rebuilt_relations(conn, versions)
    for schema, version in zip(built, versions, strict=True):
        conn.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(schema)))
        names = [name for name in _relations(conn, version) if not _DBT_SCRATCH.search(name)]
        for name in names:
            moved = _move_aside_if_not_a_view(conn, schema, name)
            if moved:
                warnings.append(moved)
            _replace_view(conn, schema, name, version)
            published.append(f"{schema}.{name}")
        warnings.extend(_views_no_longer_built(conn, schema, version, names))
    return published, warnings


def _replace_view(conn: psycopg.Connection, schema: str, name: str, version: str) -> None:
    statement = sql.SQL("create or replace view {}.{} as select * from {}.{}").format(
        sql.Identifier(schema), sql.Identifier(name), sql.Identifier(version), sql.Identifier(name)
    )
    try:
        with conn.transaction():  # a savepoint: the transaction stays usable to explain
            conn.execute(statement)
    except psycopg.errors.InvalidTableDefinition as error:
        readers = _readers_of(conn, schema, name)
        raise PublishError(
            f"cannot publish {schema}.{name}: its columns changed incompatibly"
            f" ({error.diag.message_primary}). A published view can only gain columns after its"
            " existing ones. Nothing was published; the published state is unchanged. Either"
            " keep the existing columns (add new ones at the end) and build again, or drop the"
            f" view {schema}.{name}"
            + (f" and what reads it ({', '.join(readers)})" if readers else "")
            + " deliberately, build again, then recreate"
            + (" those objects" if readers else " its grants")
            + "."
        ) from error


def _move_aside_if_not_a_view(conn: psycopg.Connection, schema: str, name: str) -> str | None:
    """A table in a published schema from before write–audit–publish gives its name to a view."""
    kind = conn.execute(
        "select c.relkind from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = %s and c.relname = %s",
        (schema, name),
    ).fetchone()
    if kind is None or kind[0] == "v":
        return None
    legacy = f"{schema}{LEGACY_SUFFIX}"
    readers = _readers_of(conn, schema, name)
    keyword = {"r": "table", "p": "table", "m": "materialized view", "f": "foreign table"}
    conn.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(legacy)))
    conn.execute(
        sql.SQL("alter {} {}.{} set schema {}").format(
            sql.SQL(keyword.get(kind[0], "table")),
            sql.Identifier(schema),
            sql.Identifier(name),
            sql.Identifier(legacy),
        )
    )
    return (
        f"moved {schema}.{name} (a {keyword.get(kind[0], 'relation')} from before"
        f" write-audit-publish) to {legacy}.{name}; {schema}.{name} is now the published view"
        + (
            f"; {', '.join(readers)} still read(s) the old copy: recreate them on"
            f" {schema}.{name}, then drop {legacy}.{name}"
            if readers
            else f"; drop {legacy}.{name} when no longer needed"
        )
    )


def _views_no_longer_built(
    conn: psycopg.Connection, schema: str, version: str, built: Iterable[str]
) -> list[str]:
    """Published views whose relation this build no longer has: left reading their old version."""
    rows = conn.execute(
        """
        select distinct view.relname, source_ns.nspname
        from pg_class view
        join pg_namespace view_ns on view_ns.oid = view.relnamespace
        join pg_rewrite rule on rule.ev_class = view.oid
        join pg_depend dep on dep.classid = 'pg_rewrite'::regclass and dep.objid = rule.oid
            and dep.refclassid = 'pg_class'::regclass and dep.refobjid <> view.oid
        join pg_class source on source.oid = dep.refobjid
        join pg_namespace source_ns on source_ns.oid = source.relnamespace
        where view_ns.nspname = %s and view.relkind = 'v'
            and source_ns.nspname ~ %s and source_ns.nspname <> %s
            and not view.relname = any(%s)
        order by 1
        """,
        (schema, _version_pattern(schema), version, list(built)),
    ).fetchall()
    return [
        f"{schema}.{name} is no longer built: it still reads {old}.{name}, kept while the view"
        f" exists; drop view {schema}.{name} once analysts no longer need it"
        for name, old in rows
    ]


def _refuse_views_over_rebuilt_relations(conn: psycopg.Connection, versions: list[str]) -> None:
    """A published view over a relation outside its version would be dropped with that relation
    (dbt replaces staging/intermediate relations with DROP … CASCADE), taking the published
    view and the analysts' views on it along."""
    rows = conn.execute(
        """
        select distinct format('%%I.%%I', view_ns.nspname, view.relname),
            format('%%I.%%I', source_ns.nspname, source.relname)
        from pg_class view
        join pg_namespace view_ns on view_ns.oid = view.relnamespace
        join pg_rewrite rule on rule.ev_class = view.oid
        join pg_depend dep on dep.classid = 'pg_rewrite'::regclass and dep.objid = rule.oid
            and dep.refclassid = 'pg_class'::regclass and dep.refobjid <> view.oid
        join pg_class source on source.oid = dep.refobjid
        join pg_namespace source_ns on source_ns.oid = source.relnamespace
        where view_ns.nspname = any(%s) and view.relkind in ('v', 'm')
            and not source_ns.nspname = any(%s)
        order by 1, 2
        """,
        (versions, [*versions, *STORE_SCHEMAS]),
    ).fetchall()
    if rows:
        raise PublishError(
            "cannot publish views over relations outside the build: "
            + "; ".join(f"{view} reads {source}" for view, source in rows)
            + ". Materialize those models as tables (published models must not depend on"
            " relations that dbt rebuilds in place; version tables in the store schemas are"
            " fine)."
        )


def _record_failure(conn: psycopg.Connection, publish_id: int, failures: str) -> str:
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(%s)", (_PUBLISH_LOCK_KEY,))
        row = conn.execute(
            "update ops.warehouse_publish set state = 'failed', finished_at = now(),"
            " failures = %s where publish_id = %s and state = 'building'"
            " returning failures",
            (failures, publish_id),
        ).fetchone()
        if row is None:
            row = conn.execute(
                "select coalesce(failures, state) from ops.warehouse_publish where publish_id = %s",
                (publish_id,),
            ).fetchone()
    return row[0] if row else failures


def _relations(conn: psycopg.Connection, schema: str) -> list[str]:
    return [
        name
        for (name,) in conn.execute(
            "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace"
            " where n.nspname = %s and c.relkind in ('r', 'p', 'v', 'm', 'f') order by 1",
            (schema,),
        )
    ]


def _readers_of(conn: psycopg.Connection, schema: str, name: str) -> list[str]:
    """Views and other objects that depend on one relation."""
    relation = sql.Identifier(schema, name).as_string(conn)
    return [
        reader
        for (reader,) in conn.execute(
            """
            select distinct case when d.classid = 'pg_rewrite'::regclass
                then (select ev_class::regclass::text from pg_rewrite where oid = d.objid)
                else (pg_identify_object(d.classid, d.objid, d.objsubid)).identity end
            from pg_depend d
            where d.refclassid = 'pg_class'::regclass and d.refobjid = %s::regclass
                and d.deptype in ('n', 'a')
                and not (d.classid = 'pg_rewrite'::regclass and exists (
                    select 1 from pg_rewrite r where r.oid = d.objid and r.ev_class = d.refobjid))
            order by 1
            """,
            (relation,),
        )
    ]


def _outside_dependents(conn: psycopg.Connection, schemas: list[str]) -> dict[str, list[str]]:
    """Objects outside `schemas` that depend on anything inside them, per schema."""
    rows = conn.execute(
        """
        with inside as (
            select oid from pg_namespace where nspname = any(%(schemas)s)
        ),
        ours as (
            select c.oid, 'pg_class'::regclass as classid, c.relnamespace as nsp
            from pg_class c where c.relnamespace in (select oid from inside)
            union all
            select t.oid, 'pg_type'::regclass, t.typnamespace
            from pg_type t where t.typnamespace in (select oid from inside)
            union all
            select p.oid, 'pg_proc'::regclass, p.pronamespace
            from pg_proc p where p.pronamespace in (select oid from inside)
        ),
        dependents as (
            select ours.nsp, d.classid, d.objid, d.objsubid,
                case d.classid
                    when 'pg_rewrite'::regclass then (
                        select c.relnamespace from pg_rewrite r
                        join pg_class c on c.oid = r.ev_class where r.oid = d.objid)
                    when 'pg_class'::regclass then (
                        select relnamespace from pg_class where oid = d.objid)
                    when 'pg_type'::regclass then (
                        select typnamespace from pg_type where oid = d.objid)
                    when 'pg_proc'::regclass then (
                        select pronamespace from pg_proc where oid = d.objid)
                    when 'pg_constraint'::regclass then (
                        select coalesce(c.relnamespace, con.connamespace)
                        from pg_constraint con left join pg_class c on c.oid = con.conrelid
                        where con.oid = d.objid)
                    when 'pg_trigger'::regclass then (
                        select c.relnamespace from pg_trigger t
                        join pg_class c on c.oid = t.tgrelid where t.oid = d.objid)
                    when 'pg_attrdef'::regclass then (
                        select c.relnamespace from pg_attrdef a
                        join pg_class c on c.oid = a.adrelid where a.oid = d.objid)
                    when 'pg_policy'::regclass then (
                        select c.relnamespace from pg_policy p
                        join pg_class c on c.oid = p.polrelid where p.oid = d.objid)
                end as dependent_nsp
            from pg_depend d
            join ours on d.refclassid = ours.classid and d.refobjid = ours.oid
            where d.deptype in ('n', 'a')
        )
        select distinct n.nspname,
            case when d.classid = 'pg_rewrite'::regclass
                then 'view ' || (select ev_class::regclass::text from pg_rewrite
                                 where oid = d.objid)
                else (pg_identify_object(d.classid, d.objid, d.objsubid)).type || ' '
                    || (pg_identify_object(d.classid, d.objid, d.objsubid)).identity
            end
        from dependents d
        join pg_namespace n on n.oid = d.nsp
        where d.dependent_nsp is null or d.dependent_nsp not in (select oid from inside)
        order by 1, 2
        """,
        {"schemas": schemas},
    ).fetchall()
    outside: dict[str, list[str]] = {}
    for schema, dependent in rows:
        outside.setdefault(schema, []).append(dependent)
    return outside


def _schema_exists(conn: psycopg.Connection, name: str) -> bool:
    return (
        conn.execute("select 1 from pg_namespace where nspname = %s", (name,)).fetchone()
        is not None
    )


def _version_pattern(schema: str | None = None) -> str:
    names = [schema] if schema else list(PUBLISHED_SCHEMAS)
    return "^(" + "|".join(re.escape(n) for n in names) + ")" + VERSION_INFIX + "[0-9]+$"


def _version_number(name: str) -> int:
    return int(name.rsplit(VERSION_INFIX, 1)[1])
