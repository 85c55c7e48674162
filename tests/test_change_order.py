"""Issue 14, "the chain is asset-driven": deletions and versions that arrive out of order, from
the registry to the published marts, on a real PostgreSQL with real dbt builds.

Records go the way the sync DAG sends them (landing with the contract's rules → gate → publish
of the batch), then a write–audit–publish build of the S&T task models only (the version table,
its snapshot, fct_st_task and fct_st_task_milestone with what they read), published as the
warehouse DAG publishes. Every place that picks a "current" version is read after each build:
the version table (superseded_at), the snapshot (dbt_valid_to), the published marts (the facts
and the task's host organisation mention), and the gate's ops.accepted_record. The builds also
run the selected models' data tests, among them the ones that state these rules for every
entity (current_version_is_highest on the version tables, snapshot_opens_current_versions on
those with a snapshot): a build that broke them fails here without publishing.

The rules under test (registry API v1: a version never changes, a deletion is a version too,
"consumers keep the highest version"):
- a deletion at the registry ends as a tombstone: the version table's current version is the
  deletion, the marts no longer show the task, the snapshot closes it, and the earlier versions
  stay in both;
- the highest version is current wherever it came from: a lower version landed later (in a
  later batch, a later build, or the same batch) is kept in the version table as history but is
  never current, never in the marts and never in the snapshot (it was never in force);
- a lower version landed after a deletion does not bring the task back.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
from psycopg import sql
from records import pages_of, st_task

from connectors.contract_rules import api_rules
from connectors.jobs import extract_and_land_registry
from connectors.landing import land_extraction
from connectors.warehouse import ensure_schema
from connectors.warehouse_publish import begin_publish, fail_publish, failed_nodes_in, publish
from expectations.gate import publish_batch, run_gate
from local.dbt import DBT_PROJECT, run_dbt
from local.registry.process import RunningRegistry, run_registry

pytestmark = pytest.mark.e2e

SOURCE = {"source_id": "ninh_binh_registry", "entity": "st_task", "contract": "registry-api-v1"}
# The S&T task models and what they read (organisations are resolved from every entity's
# mentions), and the dimensions fct_st_task's relationship tests point at. Tests run when all
# their parents are selected (cautious), so the facts' own tests run, those of other facts not.
SELECTION = [
    "+fct_st_task",
    "+fct_st_task_milestone",
    "+snap_st_task",
    "+dim_research_field",
    "+dim_organisation",
]
TARGET = Path("target") / "test_change_order"

# Hand-made tasks (ids the stand-in registry never serves), one per scenario.
A_DELETED = 901  # v1, then v2 deleted (next build)
B_LATE = 902  # v1; v3 (next build); v2 late (the build after)
C_DELETED_THEN_LATE = 903  # v1; v3 deleted (next build); v2 not deleted, late (the build after)
D_LATE_SAME_BUILD = 904  # v1; then v3 and, in a later batch, v2, both in the same build
E_LATE_SAME_BATCH = 905  # v1; then one batch serving v3 before v2
F_DELETED_THEN_LATE_SAME_BUILD = 906  # v1; then v3 deleted and, in a later batch, v2
G_FIRST_SEEN_DELETED = 907  # first served as v3 deleted; then v2 late


def _task(i: int, version: int, *, deleted: bool = False) -> dict[str, Any]:
    """Version `version` of hand-made task `i`: its title names the version, and a later
    version was changed later at the registry (updated_at grows with the version)."""
    return st_task(
        i,
        id=_id(i),
        version=version,
        deleted=deleted,
        updated_at=f"2024-{5 + version:02d}-01T08:00:{i % 60:02d}Z",
        title=f"Nhiệm vụ {i}, phiên bản {version}",
    )


def _id(i: int) -> str:
    return f"NB-2024-DT-{i:04d}"


# What reaches the warehouse before each build: batches, each a list of records, in order.
BEFORE_BUILD_1 = [
    [_task(i, 1) for i in (A_DELETED, B_LATE, C_DELETED_THEN_LATE, D_LATE_SAME_BUILD)]
    + [_task(i, 1) for i in (E_LATE_SAME_BATCH, F_DELETED_THEN_LATE_SAME_BUILD)]
]
BEFORE_BUILD_2 = [
    [
        _task(A_DELETED, 2, deleted=True),
        _task(B_LATE, 3),
        _task(C_DELETED_THEN_LATE, 3, deleted=True),
        _task(G_FIRST_SEEN_DELETED, 3, deleted=True),
    ]
]
BEFORE_BUILD_3 = [
    [
        _task(B_LATE, 2),
        _task(C_DELETED_THEN_LATE, 2),
        _task(G_FIRST_SEEN_DELETED, 2),
        _task(D_LATE_SAME_BUILD, 3),
        _task(E_LATE_SAME_BATCH, 3),
        _task(E_LATE_SAME_BATCH, 2),
        _task(F_DELETED_THEN_LATE_SAME_BUILD, 3, deleted=True),
    ],
    [_task(D_LATE_SAME_BUILD, 2), _task(F_DELETED_THEN_LATE_SAME_BUILD, 2)],
]


@dataclass(frozen=True)
class Seen:
    """One task in every place that picks a current version, after a published build."""

    versions: list[tuple[int, bool, bool]]  # version table: (version, deleted, current)
    never_current: list[int]  # versions superseded the moment they became visible
    fact: tuple[int, str] | None  # marts.fct_st_task: (version, title), None when absent
    milestone_versions: set[int]  # marts.fct_st_task_milestone: versions its rows carry
    host_mentions: int  # marts.bridge_organisation_mention: the task's host organisation
    snapshot: list[tuple[int, bool, bool]]  # history.snap_st_task: (version, deleted, open)
    accepted: tuple[int, bool] | None  # ops.accepted_record (the gate's view): version, deleted


@dataclass
class Chain:
    url: str
    seen: dict[int, dict[str, Seen]] = field(default_factory=dict)  # build → record id → Seen
    standin_deleted: str = ""  # tasks the stand-in registry deleted and updated after build 1
    standin_updated: str = ""


def _land_gate_publish(url: str, records: list[dict[str, Any]], reports: Path) -> int:
    """One batch of hand-made records through landing (the contract's rules), gate, publish."""
    batch_id = land_extraction(
        url,
        **SOURCE,
        extract=lambda _: pages_of(records, 50),
        rules=api_rules(SOURCE["contract"], SOURCE["entity"]),
    ).batch_id
    _gate_and_publish(url, batch_id, reports, expected=len(records))
    return batch_id


def _sync_standin(url: str, registry: RunningRegistry, reports: Path) -> int:
    """The sync DAG's steps for the stand-in registry's S&T tasks: extract since the cursor
    and land, gate, publish."""
    landed = extract_and_land_registry(
        url,
        source_id=SOURCE["source_id"],
        entity="st_task",
        base_url=registry.base_url,
        client_id=registry.client_id,
        client_secret=registry.client_secret,
    )
    _gate_and_publish(url, landed.batch_id, reports, expected=landed.records_landed)
    return landed.batch_id


def _gate_and_publish(url: str, batch_id: int, reports: Path, expected: int) -> None:
    result = run_gate(url, batch_id, report_dir=reports)
    # Nothing may be held back: the scenarios are about what the warehouse does with them.
    assert (result.rows, result.quarantined) == (expected, 0), result
    publish_batch(url, batch_id)


def _build_and_publish(url: str, run_id: str) -> int:
    """local.dbt.build_and_publish for the selected models only: a write–audit–publish build
    at a cutoff, published only if every selected model and test passed."""
    begun = begin_publish(url, run_id=run_id)
    (DBT_PROJECT / TARGET / "run_results.json").unlink(missing_ok=True)
    result = run_dbt(
        "build",
        "--select",
        *SELECTION,
        "--indirect-selection",
        "cautious",
        "--vars",
        json.dumps(
            {
                "wap": True,
                "published_before": begun.cutoff.isoformat(),
                "publish_id": begun.publish_id,
            }
        ),
        "--target-path",
        str(TARGET),
        warehouse_url=url,
        project_dir=DBT_PROJECT,
        check=False,
        progress=False,
    )
    if result.returncode != 0:
        failed = failed_nodes_in(DBT_PROJECT / TARGET) or [result.stdout[-3000:]]
        fail_publish(url, begun.publish_id, "; ".join(failed))
        pytest.fail(f"build {run_id} failed:\n" + "\n".join(failed))
    publish(url, begun.publish_id)
    return begun.publish_id


def _observe(url: str, record_ids: list[str]) -> dict[str, Seen]:
    seen = {}
    with psycopg.connect(url) as conn:

        def rows(query: str, record_id: str) -> list[tuple]:
            return conn.execute(query, (SOURCE["source_id"], record_id)).fetchall()

        for record_id in record_ids:
            versions = rows(
                "select version, is_deleted, superseded_at is null, superseded_at = visible_at"
                " from history.int_st_tasks_versioned where source_id = %s and record_id = %s"
                " order by version, landed_id",
                record_id,
            )
            facts = rows(
                "select version, title from marts.fct_st_task"
                " where source_id = %s and task_code = %s",
                record_id,
            )
            assert len(facts) <= 1, facts
            milestones = rows(
                "select distinct version from marts.fct_st_task_milestone"
                " where source_id = %s and task_code = %s",
                record_id,
            )
            [(host_mentions,)] = rows(
                "select count(*) from marts.bridge_organisation_mention where source_id = %s"
                " and entity = 'st_task' and record_id = %s and role = 'task_host'",
                record_id,
            )
            snapshot = rows(
                "select version, is_deleted, dbt_valid_to is null from history.snap_st_task"
                " where source_id = %s and record_id = %s order by dbt_valid_from, version",
                record_id,
            )
            accepted = rows(
                "select version, deleted from ops.accepted_record"
                " where source_id = %s and entity = 'st_task' and record_id = %s",
                record_id,
            )
            seen[record_id] = Seen(
                versions=[(v, d, c) for v, d, c, _ in versions],
                never_current=[v for v, _, _, instantly in versions if instantly],
                fact=facts[0] if facts else None,
                milestone_versions={v for (v,) in milestones},
                host_mentions=host_mentions,
                snapshot=snapshot,
                accepted=accepted[0] if accepted else None,
            )
    return seen


@pytest.fixture(scope="module")
def chain(pg_admin_url: str, tmp_path_factory) -> Iterator[Chain]:
    """Three published builds over one database, observed after each:
    1. the stand-in registry's tasks (full extraction) and v1 of the hand-made tasks;
    2. a deletion and an update at the registry (incremental extraction), and the hand-made
       deletions and higher versions;
    3. the late lower versions, and higher and lower versions that arrive together."""
    dbname = f"test_change_order_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(dbname)))
    url = pg_admin_url.rsplit("/", 1)[0] + f"/{dbname}"
    reports = tmp_path_factory.mktemp("change_order_reports")
    try:
        ensure_schema(url)
        chain = Chain(url)
        hand_made = [_id(i) for i in range(A_DELETED, G_FIRST_SEEN_DELETED + 1)]
        with run_registry(records=40, seed=5, bad_share=0) as registry:
            _sync_standin(url, registry, reports)
            for batch in BEFORE_BUILD_1:
                _land_gate_publish(url, batch, reports)
            _build_and_publish(url, "change_order__1")
            changed = requests.post(
                registry.base_url + "/_standin/changes",
                json={"update": 1, "delete": 1},
                timeout=30,
            )
            changed.raise_for_status()
            [chain.standin_updated] = changed.json()["updated"]
            [chain.standin_deleted] = changed.json()["deleted"]
            watched = [*hand_made, chain.standin_updated, chain.standin_deleted]
            chain.seen[1] = _observe(url, watched)

            _sync_standin(url, registry, reports)
        for batch in BEFORE_BUILD_2:
            _land_gate_publish(url, batch, reports)
        _build_and_publish(url, "change_order__2")
        chain.seen[2] = _observe(url, watched)

        for batch in BEFORE_BUILD_3:
            _land_gate_publish(url, batch, reports)
        _build_and_publish(url, "change_order__3")
        chain.seen[3] = _observe(url, watched)
        yield chain
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(dbname))
            )


def _gone_but_kept(seen: Seen, last: int, history: list[int]) -> None:
    """A deleted task: its deletion (version `last`) is the current version, nothing published
    shows it, the snapshot has no open row, and `history` is kept in the version table and the
    snapshot, tombstone included."""
    assert [(v, d, c) for v, d, c in seen.versions if c] == [(last, True, True)]
    assert {v for v, _, _ in seen.versions} >= {*history, last}
    assert seen.fact is None and seen.milestone_versions == set() and seen.host_mentions == 0
    assert [v for v, _, _ in seen.snapshot] == [*history, last]
    assert all(not is_open for _, _, is_open in seen.snapshot), seen.snapshot
    assert seen.snapshot[-1][1] is True  # the tombstone
    assert seen.accepted == (last, True)


def _current_everywhere(seen: Seen, version: int) -> None:
    """`version` (not deleted) is the one current version in every place."""
    assert [(v, d) for v, d, c in seen.versions if c] == [(version, False)]
    assert seen.fact is not None and seen.fact[0] == version
    if seen.fact[1].startswith("Nhiệm vụ 9"):  # a hand-made task's title names its version
        assert seen.fact[1].endswith(f"phiên bản {version}")
    assert seen.milestone_versions == {version} and seen.host_mentions == 1
    assert [(v, d) for v, d, is_open in seen.snapshot if is_open] == [(version, False)]
    assert seen.accepted == (version, False)


# --- (a) a deletion ends as a tombstone, history kept -----------------------------------------


def test_a_deletion_at_the_registry_ends_as_a_tombstone_with_its_history(chain: Chain):
    deleted, updated = chain.standin_deleted, chain.standin_updated
    [(was_deleted, _, _)] = chain.seen[1][deleted].versions
    [(was_updated, _, _)] = chain.seen[1][updated].versions
    _current_everywhere(chain.seen[1][deleted], was_deleted)
    _current_everywhere(chain.seen[1][updated], was_updated)

    # The registry served the record once more, deleted, with the next version.
    _gone_but_kept(chain.seen[2][deleted], was_deleted + 1, [was_deleted])
    _current_everywhere(chain.seen[2][updated], was_updated + 1)
    assert [v for v, _, _ in chain.seen[2][updated].snapshot] == [was_updated, was_updated + 1]
    # A later build changes nothing of it.
    assert chain.seen[3][deleted] == chain.seen[2][deleted]


def test_an_upsert_then_a_delete_of_a_hand_made_task(chain: Chain):
    task = _id(A_DELETED)
    _current_everywhere(chain.seen[1][task], 1)
    _gone_but_kept(chain.seen[2][task], 2, [1])
    assert chain.seen[2][task].versions == [(1, False, False), (2, True, True)]
    assert chain.seen[3][task] == chain.seen[2][task]


# --- (b) the highest version is current, whatever order the versions arrived in ---------------


def test_a_lower_version_landing_in_a_later_build_is_history_never_current(chain: Chain):
    task = _id(B_LATE)
    _current_everywhere(chain.seen[2][task], 3)
    late = chain.seen[3][task]
    _current_everywhere(late, 3)
    assert late.versions == [(1, False, False), (2, False, False), (3, False, True)]
    assert late.never_current == [2]
    # The snapshot holds the versions that were in force; version 2 never was.
    assert late.snapshot == chain.seen[2][task].snapshot == [(1, False, False), (3, False, True)]


@pytest.mark.parametrize(
    "scenario",
    [
        pytest.param(D_LATE_SAME_BUILD, id="later-batch-same-build"),
        pytest.param(E_LATE_SAME_BATCH, id="same-batch"),
    ],
)
def test_a_lower_version_arriving_with_or_after_a_higher_one_in_one_build(
    chain: Chain, scenario: int
):
    task = _id(scenario)
    _current_everywhere(chain.seen[2][task], 1)
    seen = chain.seen[3][task]
    _current_everywhere(seen, 3)
    assert seen.versions == [(1, False, False), (2, False, False), (3, False, True)]
    assert [v for v, _, _ in seen.snapshot] == [1, 3]


# --- a deletion stays a deletion when an older upsert arrives late ----------------------------


def test_a_late_older_upsert_after_a_deletion_leaves_the_task_deleted(chain: Chain):
    task = _id(C_DELETED_THEN_LATE)
    _gone_but_kept(chain.seen[2][task], 3, [1])
    late = chain.seen[3][task]
    _gone_but_kept(late, 3, [1])
    assert late.versions == [(1, False, False), (2, False, False), (3, True, True)]
    assert late.never_current == [2]
    assert late.snapshot == chain.seen[2][task].snapshot


def test_a_deletion_and_an_older_upsert_after_it_in_one_build(chain: Chain):
    task = _id(F_DELETED_THEN_LATE_SAME_BUILD)
    _current_everywhere(chain.seen[2][task], 1)
    seen = chain.seen[3][task]
    _gone_but_kept(seen, 3, [1])
    assert seen.versions == [(1, False, False), (2, False, False), (3, True, True)]


def test_a_task_first_seen_deleted_stays_deleted_when_an_older_version_arrives(chain: Chain):
    task = _id(G_FIRST_SEEN_DELETED)
    assert chain.seen[1][task].versions == []
    _gone_but_kept(chain.seen[2][task], 3, [])
    late = chain.seen[3][task]
    _gone_but_kept(late, 3, [])
    assert late.versions == [(2, False, False), (3, True, True)]
    assert late.never_current == [2]
