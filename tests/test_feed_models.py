"""The national feed's dbt models (issue 15) on what the demo lands: the session's built
warehouse (`synced`, tests/conftest.py, shared with test_warehouse_model.py). Each feed model
has exactly the columns of the national feed design, one row per national key, a province,
a digest that is the SHA-256 of its payload and stays the same from build to build, and no
personal data; no published record is dropped without being listed in feed_unplaced; the
reconciliation mart shows every record as not sent while the ledger is empty and no difference
once the ledger holds exactly what was published; NB-P8 becomes computable from the ledger."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from local.dbt import build_and_publish

pytestmark = pytest.mark.e2e

# The national feed design (/tmp/feed_spec.md, "Feed models"): name and type of every column.
FEED_COLUMNS = [
    ("province_code", "text"),
    ("entity", "text"),
    ("record_key", "text"),
    ("payload", "jsonb"),
    ("content_digest", "text"),
    ("source_id", "text"),
    ("record_id", "text"),
    ("landed_id", "bigint"),
]
ENTITIES = {
    "st_task": "st_tasks",
    "result_application": "st_tasks",
    "organisation": "organisations",
    "expert": "experts",
    "ip_right": "industrial_property",
    "technology": "technologies",
    "technology_demand": "st_market",
    "exchange_listing": "st_market",
    "technology_transaction": "st_market",
    "innovation_project": "innovation",
    "innovation_survey": "innovation",
    "capability_assessment": "innovation",
}
# What each feed is built from: every row is fed or listed in feed_unplaced.
SOURCES = {
    "st_task": "fct_st_task",
    "result_application": "fct_result_application",
    "organisation": "dim_organisation",
    "expert": "dim_expert",
    "ip_right": "fct_ip_right",
    "technology": "fct_technology",
    "technology_demand": "fct_technology_demand",
    "exchange_listing": "fct_exchange_listing",
    "technology_transaction": "fct_exchange_transaction",
    "innovation_project": "fct_innovation_project",
    "innovation_survey": "fct_innovation_survey",
    "capability_assessment": "fct_capability_assessment",
}
# Payload fields holding codes however they look: MSTs (ten digits, like a phone number) and
# keys (64 hex digits); macros/national_feed.sql feed_code_field_pattern.
CODE_FIELD = re.compile(r"(^|_)mst$|_key$")
# The quality gate's patterns (connectors/warehouse.sql ops.personal_data_pattern), in Python.
PERSONAL = {
    "e-mail": re.compile(r"[a-z0-9._%+-]+@[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,}", re.I),
    "citizen ID": re.compile(r"(^|[^0-9])0[0-9]{11}([^0-9-]|$)"),
    "phone": re.compile(r"(^|[^0-9.,-])(\+84|0)[35789][0-9]{8}([^0-9-]|$)"),
}
TEST_BATCH = "test_feed_models"


def _rows(url: str, query: str | sql.Composable, *params) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(query, params).fetchall()


def _feed(entity: str) -> sql.Composed:
    return sql.SQL("marts.{}").format(sql.Identifier(f"feed_{entity}"))


def _checksum(pairs) -> int:
    """The national intake's checksum, computed here independently of the SQL."""
    return sum(
        int(hashlib.sha256(f"{key}:{digest}".encode()).hexdigest()[:15], 16)
        for key, digest in pairs
    )


def _strings(value) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)


@pytest.fixture(scope="module")
def published(synced: str) -> dict[str, list[tuple]]:
    """Every feed record as the first build published it: entity → (province, key, payload
    text, digest)."""
    return {
        entity: _rows(
            synced,
            sql.SQL(
                "select province_code, record_key, payload::text, content_digest from {}"
            ).format(_feed(entity)),
        )
        for entity in ENTITIES
    }


def test_every_feed_model_is_published_with_exactly_the_designed_columns(synced):
    assert (
        dict(
            _rows(synced, "select entity, national_database from reference.national_feed_entities")
        )
        == ENTITIES
    )
    assert len(set(ENTITIES.values())) == 7
    for entity in ENTITIES:
        columns = _rows(
            synced,
            "select column_name, data_type from information_schema.columns"
            " where table_schema = 'marts' and table_name = %s order by ordinal_position",
            f"feed_{entity}",
        )
        assert columns == FEED_COLUMNS, entity


def test_feed_records_are_keyed_placed_and_digested(synced, published):
    provinces = {
        code for (code,) in _rows(synced, "select code from marts.dim_province where is_current")
    }
    assert len(provinces) == 34
    for entity, records in published.items():
        assert len(records) > 300, entity
        keys = [key for _province, key, _payload, _digest in records]
        assert len(set(keys)) == len(keys), f"feed_{entity}: record_key not unique"
        for province, key, payload, digest in records:
            assert province in provinces, (entity, key, province)
            assert digest == hashlib.sha256(payload.encode()).hexdigest(), (entity, key)
        (entities,) = _rows(
            synced, sql.SQL("select array_agg(distinct entity) from {}").format(_feed(entity))
        )[0]
        assert entities == [entity]
    # The national keys of the design.
    tasks = dict(_rows(synced, "select record_key, province_code from marts.feed_st_task limit 50"))
    assert all(re.fullmatch(r"[0-9]{2}:.+", key) and key[:2] == p for key, p in tasks.items())
    assert _rows(
        synced,
        "select count(*) from marts.feed_organisation where not ops.mst_valid(record_key)"
        " or payload ->> 'mst' <> record_key",
    ) == [(0,)]
    assert _rows(
        synced, "select count(*) from marts.feed_expert where record_key !~ '^[0-9a-f]{64}$'"
    ) == [(0,)]
    # Old Hà Nam / Nam Định records are fed as Ninh Bình's, with the recorded code beside it.
    assert (
        _rows(
            synced,
            "select count(*) from marts.feed_st_task"
            " where province_code = '37' and payload ->> 'province_code_recorded' in ('35', '36')",
        )[0][0]
        > 0
    )


def test_no_published_record_is_dropped_silently(synced):
    for entity, relation in SOURCES.items():
        (source,) = _rows(
            synced, sql.SQL("select count(*) from {}").format(sql.Identifier("marts", relation))
        )[0]
        (fed,) = _rows(synced, sql.SQL("select count(*) from {}").format(_feed(entity)))[0]
        (unplaced,) = _rows(
            synced, "select count(*) from marts.feed_unplaced where entity = %s", entity
        )[0]
        assert fed + unplaced == source, (entity, source, fed, unplaced)
    reasons = dict(
        _rows(
            synced, "select entity || ':' || reason, count(*) from marts.feed_unplaced group by 1"
        )
    )
    # Organisations without an MST have no national key; deals on the national exchange whose
    # listing, seller and buyer have no province have no province: listed, never dropped.
    assert reasons.get("organisation:no_record_key", 0) > 0
    assert set(reasons) <= {
        f"{entity}:{reason}"
        for entity in ENTITIES
        for reason in ("no_province", "no_record_key", "duplicate_record_key")
    }
    assert _rows(
        synced, "select count(*) from marts.feed_unplaced where how_to_resolve is null"
    ) == [(0,)]


def test_no_personal_data_in_any_payload(synced, published):
    # The gate's own function, skipping only the code fields.
    for entity in ENTITIES:
        found = _rows(
            synced,
            sql.SQL(
                "select record_key, ops.personal_data_in(payload, array("
                "select k from jsonb_object_keys(payload) as k where k ~ %s))"
                " from {} where ops.personal_data_in(payload, array("
                "select k from jsonb_object_keys(payload) as k where k ~ %s)) is not null limit 5"
            ).format(_feed(entity)),
            CODE_FIELD.pattern,
            CODE_FIELD.pattern,
        )
        assert found == [], f"feed_{entity}: {found}"
    # The same patterns in Python, over every string value, nested ones included.
    values: set[str] = set()
    for entity, records in published.items():
        for _province, key, payload, _digest in records:
            for field, value in json.loads(payload).items():
                if CODE_FIELD.search(field):
                    continue
                for text in _strings(value):
                    kinds = [kind for kind, pattern in PERSONAL.items() if pattern.search(text)]
                    assert not kinds, f"feed_{entity} {key}.{field} looks like {kinds}: {text!r}"
                    values.add(text.lower())
    # Nor any person's identifier or name the registries sent: experts' citizen ids, phones,
    # e-mails and names, principal investigators' names (with or without their titles).
    people = _rows(
        synced,
        "select lower(v) from raw.landed_record, lateral (values (payload ->> 'citizen_id'),"
        " (payload ->> 'phone'), (payload ->> 'email'), (payload ->> 'full_name')) as t (v)"
        " where entity = 'expert' and v is not null"
        " union select lower(record ->> 'principal_investigator') from ops.accepted_record"
        " where entity = 'st_task' and record ->> 'principal_investigator' is not null",
    )
    names = {name for (name,) in people}
    names |= {re.sub(r"^([^\s.]+\.\s*)+", "", name) for name in names}
    assert len(names) > 1000
    text = "\n".join(values)
    leaked = [name for name in names if len(name) > 5 and name in text]
    assert leaked == []


def test_with_an_empty_ledger_every_published_record_is_not_sent(synced, published):
    assert _rows(synced, "select count(*) from ops.feed_record_state") == [(0,)]
    rows = _rows(
        synced,
        "select province_code, entity, published_count, published_checksum, acknowledged_count,"
        " not_sent_count, changed_count, tombstone_pending_count, rejected_open_count,"
        " difference_count, is_reconciled from marts.feed_reconciliation",
    )
    by_feed = {(province, entity): rest for province, entity, *rest in rows}
    expected: dict[tuple[str, str], list] = {}
    for entity, records in published.items():
        for province, key, _payload, digest in records:
            expected.setdefault((province, entity), []).append((key, digest))
    assert set(by_feed) == set(expected)
    for feed, pairs in expected.items():
        count, checksum, acknowledged, not_sent, changed, tombstone, rejected, differences, ok = (
            by_feed[feed]
        )
        assert (count, checksum) == (len(pairs), _checksum(pairs)), feed
        assert (acknowledged, not_sent, changed, tombstone, rejected) == (0, count, 0, 0, 0)
        assert differences == count and not ok
    assert _rows(
        synced, "select kind, count(*) from marts.feed_reconciliation_difference group by 1"
    ) == [("not_sent", sum(len(pairs) for pairs in expected.values()))]
    (status, reason) = _rows(
        synced,
        "select status, status_reason from marts.kpi_scorecard where target_id = 'NB-P8.a'"
        " and year = extract(year from current_date)",
    )[0]
    assert status == "not_computable" and "acknowledged by the national STI platform" in reason


def test_a_ledger_of_exactly_the_published_records_reconciles_and_computes_nb_p8(synced, published):
    """One rebuild: the ledger holds exactly the published pairs, except four records of one
    feed that differ in each way; every other feed shows no difference, the digests are those
    of the first build (deterministic payloads), and NB-P8 is computed."""
    perturbed = ("38", "technology")
    pairs = sorted((k, d) for p, k, _payload, d in published["technology"] if p == perturbed[0])
    (missing, _), (changed, _), (rejected, rejected_digest) = pairs[:3]
    with psycopg.connect(synced) as conn:
        for entity in ENTITIES:
            conn.execute(
                sql.SQL(
                    "insert into ops.feed_record_state (province_code, entity, record_key,"
                    " content_digest, idempotency_key, acknowledged_at)"
                    " select province_code, entity, record_key, content_digest, %s, now() from {}"
                ).format(_feed(entity)),
                (TEST_BATCH,),
            )
        conn.execute(
            "delete from ops.feed_record_state where entity = 'technology'"
            " and record_key = any(%s)",
            ([missing, rejected],),
        )
        conn.execute(
            "update ops.feed_record_state set content_digest = repeat('0', 64)"
            " where entity = 'technology' and record_key = %s",
            (changed,),
        )
        conn.execute(
            "insert into ops.feed_record_state values ('38', 'technology', '38:GONE', %s, %s,"
            " now())",
            ("f" * 64, TEST_BATCH),
        )
        conn.execute(
            "insert into ops.feed_rejection (province_code, entity, record_key, content_digest,"
            " idempotency_key, reason_code, reason, reason_vi) values ('38', 'technology', %s,"
            " %s, %s, 'MISSING_FIELD', 'a field is missing', 'thiếu trường')",
            (rejected, rejected_digest, TEST_BATCH),
        )
    try:
        build_and_publish(synced, run_id="test_feed_models__ledger")
        for entity, records in published.items():
            again = _rows(
                synced,
                sql.SQL(
                    "select province_code, record_key, payload::text, content_digest from {}"
                ).format(_feed(entity)),
            )
            assert sorted(again) == sorted(records), f"feed_{entity} changed between builds"
        rows = _rows(
            synced,
            "select province_code, entity, published_count, published_checksum,"
            " acknowledged_count, acknowledged_checksum, not_sent_count, changed_count,"
            " tombstone_pending_count, rejected_open_count, difference_count, is_reconciled,"
            " how_to_resolve from marts.feed_reconciliation",
        )
        assert len(rows) >= 3 * len(ENTITIES)
        for province, entity, *counts, ok, how in rows:
            if (province, entity) == perturbed:
                assert counts[4:] == [1, 1, 1, 1, 3] and not ok
                assert "make quarantine" in how and "not sent" in how
            else:
                published_count, published_sum, acknowledged, acknowledged_sum = counts[:4]
                assert (acknowledged, acknowledged_sum) == (published_count, published_sum)
                assert counts[4:] == [0, 0, 0, 0, 0] and ok, (province, entity)
                assert how.startswith("nothing to resolve")
        differences = _rows(
            synced,
            "select record_key, kind, open_rejection_reason_code, how_to_resolve"
            " from marts.feed_reconciliation_difference order by record_key",
        )
        assert {(key, kind) for key, kind, _code, _how in differences} == {
            (missing, "not_sent"),
            (changed, "changed"),
            ("38:GONE", "tombstone_pending"),
            (rejected, "rejected"),
        }
        assert [code for key, _kind, code, _how in differences if key == rejected] == [
            "MISSING_FIELD"
        ]
        (status, value, basis) = _rows(
            synced,
            "select status, actual_value, basis from marts.kpi_scorecard"
            " where target_id = 'NB-P8.a' and year = extract(year from current_date)",
        )[0]
        assert status == "on_track" and value == 7, basis
        assert basis.startswith("7 of 7 national specialised databases")
    finally:
        with psycopg.connect(synced) as conn:
            conn.execute(
                "delete from ops.feed_record_state where idempotency_key = %s", (TEST_BATCH,)
            )
            conn.execute("delete from ops.feed_rejection where idempotency_key = %s", (TEST_BATCH,))
