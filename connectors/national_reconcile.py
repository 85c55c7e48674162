"""Reconciliation of the national feed: per province and entity, the warehouse's published
records (`marts.feed_<entity>`), what the national side acknowledged (`ops.feed_record_state`)
and, when the intake is reachable, what it says it holds — counts and an order-independent
checksum (contracts/national_intake_v1.openapi.yaml: the sum of the first 15 hex digits of
sha256(record_key ":" content_digest)), with the differing records and how to resolve them.

The mart `marts.feed_reconciliation` compares the same two sides as of the last warehouse build;
this is the live check (`python -m local feed reconcile`, the national_feed DAG's last task).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from connectors.national_feed import feed_entities, feed_relation
from connectors.national_intake import NationalIntakeClient

_CHECKSUM = (
    "coalesce(sum(('x' || left(encode(sha256(convert_to(record_key || ':' || content_digest,"
    " 'UTF8')), 'hex'), 15))::bit(60)::bigint), 0)"
)

RESOLUTIONS = {
    "not_sent": "run the national feed (the national_feed DAG, or `make feed`)",
    "changed": "run the national feed: the acknowledged version is older",
    "tombstone_pending": "run the national feed: the record is no longer published",
    "rejected": "fix it at the source (`make quarantine` gives the national reason); it is"
    " sent again once it changes",
    "national_missing": "the national side lost what it acknowledged: `make feed-resend"
    " PROVINCE=… ENTITY=… REASON=…`",
    "national_unexpected": "the national side holds what it never acknowledged to this"
    " province: ask the national side, then `make feed-resend`",
}
LISTED_PER_FEED = (
    20  # differing records listed per feed (all of them: marts.feed_reconciliation_difference)
)


@dataclass
class FeedBalance:
    province_code: str
    entity: str
    published: int = 0
    published_checksum: int = 0
    acknowledged: int = 0
    acknowledged_checksum: int = 0
    national: int | None = None  # None: the intake was not asked
    national_checksum: int | None = None
    kinds: dict[str, int] = field(default_factory=dict)  # difference kind → records

    @property
    def differences(self) -> int:
        """Records that differ and that delivery or an operator must settle (open
        rejections wait for the source and are counted apart)."""
        return sum(count for kind, count in self.kinds.items() if kind != "rejected")


@dataclass(frozen=True)
class Difference:
    province_code: str
    entity: str
    record_key: str
    kind: str
    published_digest: str | None
    acknowledged_digest: str | None

    @property
    def how_to_resolve(self) -> str:
        return RESOLUTIONS[self.kind]


def reconcile(
    warehouse_url: str,
    clients: Callable[[str], NationalIntakeClient | None] | None = None,
    entities: Iterable[str] | None = None,
) -> tuple[list[FeedBalance], list[Difference]]:
    """Balances per province and entity, and up to LISTED_PER_FEED differing records per
    feed and kind. With clients (connectors.national_feed.IntakeClients), the intake's
    holdings are compared with the ledger too, for each province that has a connection."""
    balances: dict[tuple[str, str], FeedBalance] = {}
    listed: list[Difference] = []
    with psycopg.connect(warehouse_url) as conn:
        conn.execute("set transaction isolation level repeatable read, read only")
        for entity in entities or feed_entities(warehouse_url):
            _count_sides(conn, entity, balances)
            listed += _warehouse_differences(conn, entity, balances)
        if clients is not None:
            listed += _national_differences(conn, clients, balances)
    return sorted(balances.values(), key=lambda b: (b.province_code, b.entity)), listed


def _balance(balances: dict, province: str, entity: str) -> FeedBalance:
    return balances.setdefault((province, entity), FeedBalance(province, entity))


def _count_sides(conn: psycopg.Connection, entity: str, balances: dict) -> None:
    published = sql.SQL(
        "select province_code, count(*), " + _CHECKSUM + " from {feed} group by 1"
    ).format(feed=feed_relation(entity))
    for province, count, checksum in conn.execute(published):
        balance = _balance(balances, province, entity)
        balance.published, balance.published_checksum = count, int(checksum)
    acknowledged = (
        "select province_code, count(*), " + _CHECKSUM + " from ops.feed_record_state"
        " where entity = %s group by 1"
    )
    for province, count, checksum in conn.execute(acknowledged, (entity,)):
        balance = _balance(balances, province, entity)
        balance.acknowledged, balance.acknowledged_checksum = count, int(checksum)


def _warehouse_differences(
    conn: psycopg.Connection, entity: str, balances: dict
) -> list[Difference]:
    query = sql.SQL(
        """
        with difference as (
            select
                coalesce(p.province_code, s.province_code) as province_code,
                coalesce(p.record_key, s.record_key) as record_key,
                p.content_digest as published_digest,
                s.content_digest as acknowledged_digest,
                case
                    when exists (
                        select 1 from ops.feed_rejection as r
                        where r.entity = %(entity)s and r.record_key = p.record_key
                            and r.content_digest = p.content_digest and r.resolved_at is null
                    ) then 'rejected'
                    when s.record_key is null then 'not_sent'
                    when p.record_key is null then 'tombstone_pending'
                    else 'changed'
                end as kind
            from {feed} as p
            full join (select * from ops.feed_record_state where entity = %(entity)s) as s
                on s.record_key = p.record_key
            where p.content_digest is distinct from s.content_digest
                or p.province_code is distinct from s.province_code
        ),
        ranked as (
            select *, count(*) over w as records, row_number() over (w order by record_key) as n
            from difference
            window w as (partition by province_code, kind)
        )
        select province_code, record_key, kind, published_digest, acknowledged_digest, records
        from ranked where n <= %(listed)s
        order by province_code, kind, record_key
        """
    ).format(feed=feed_relation(entity))
    listed = []
    for province, key, kind, published, acknowledged, records in conn.execute(
        query, {"entity": entity, "listed": LISTED_PER_FEED}
    ):
        _balance(balances, province, entity).kinds[kind] = records
        listed.append(Difference(province, entity, key, kind, published, acknowledged))
    return listed


def _national_differences(
    conn: psycopg.Connection,
    clients: Callable[[str], NationalIntakeClient | None],
    balances: dict,
) -> list[Difference]:
    """Ask the intake what it holds per province; where its count or checksum differs from
    the ledger's, page through its holdings and name the records."""
    listed: list[Difference] = []
    for province in sorted({province for province, _ in balances}):
        if (client := clients(province)) is None:
            continue
        holdings = client.holdings_summary(province)
        for (balance_province, entity), balance in balances.items():
            if balance_province != province:
                continue
            balance.national, balance.national_checksum = holdings.get(entity, (0, 0))
            if (balance.national, balance.national_checksum) == (
                balance.acknowledged,
                balance.acknowledged_checksum,
            ):
                continue
            ledger = dict(
                conn.execute(
                    "select record_key, content_digest from ops.feed_record_state"
                    " where province_code = %s and entity = %s",
                    (province, entity),
                ).fetchall()
            )
            national = dict(client.holdings(province, entity))
            missing = [k for k, digest in ledger.items() if national.get(k) != digest]
            unexpected = [k for k in national if k not in ledger]
            for kind, keys in (("national_missing", missing), ("national_unexpected", unexpected)):
                if keys:
                    balance.kinds[kind] = len(keys)
                    listed += [
                        Difference(province, entity, k, kind, None, ledger.get(k))
                        for k in sorted(keys)[:LISTED_PER_FEED]
                    ]
    return listed


def format_balances(balances: list[FeedBalance], differences: list[Difference]) -> str:
    """The reconciliation as operators read it: one line per feed, then the differing records
    (up to LISTED_PER_FEED per feed and kind) with how to resolve them."""
    lines = [
        f"{'prov.':<5} {'entity':<24} {'published':>9} {'acknowl.':>9} {'national':>9}"
        f" {'differ':>6} {'rejected':>8}  checksums"
    ]
    for b in balances:
        national = "-" if b.national is None else str(b.national)
        agree = b.published_checksum == b.acknowledged_checksum and b.national_checksum in (
            None,
            b.acknowledged_checksum,
        )
        lines.append(
            f"{b.province_code:<5} {b.entity:<24} {b.published:>9} {b.acknowledged:>9}"
            f" {national:>9} {b.differences:>6} {b.kinds.get('rejected', 0):>8}"
            f"  {'agree' if agree else 'differ'}"
        )
    total = sum(b.differences for b in balances)
    rejected = sum(b.kinds.get("rejected", 0) for b in balances)
    lines.append(
        f"{total} differences; {rejected} records rejected by the national side wait for a fix"
        " at the source"
    )
    for d in differences:
        lines.append(
            f"  {d.province_code} {d.entity} {d.record_key}: {d.kind} — {d.how_to_resolve}"
        )
    return "\n".join(lines)
