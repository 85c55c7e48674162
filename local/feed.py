"""Operator commands of the national feed (WAREHOUSE_URL, else the embedded warehouse).

    python -m local feed [status]                              the ledger per province and entity
    python -m local feed deliver [--entity E]                  deliver the published changes now
    python -m local feed reconcile                             published vs acknowledged vs held
    python -m local feed pause --province P [--entity E] --reason R
    python -m local feed resume --province P [--entity E]
    python -m local feed resend --province P [--entity E] --reason R
                                                               after the national side lost data

`deliver` and `reconcile` talk to the intake of each province's connection
(AIRFLOW_CONN_NATIONAL_INTAKE_<code>, Airflow's JSON form: host, login, password, extra
key_id and signing_key). When none is set they start the local stand-in of the national
intake over its own database (`national_intake`) on the warehouse's server, with the
credentials the demo used (.local/national_intake/credentials.json, mode 0600).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from functools import partial
from pathlib import Path

import psycopg

from connectors.national_feed import (
    FeedBusy,
    FeedDeliveryError,
    IntakeClients,
    deliver,
    feed_entities,
)
from connectors.national_feed_control import set_paused, start_resend
from connectors.national_intake import CONNECTION_ENV, IntakeConnection
from connectors.national_reconcile import format_balances, reconcile
from connectors.warehouse import ensure_schema
from local.national_intake.process import (
    IntakeCredential,
    RunningIntake,
    ensure_intake_database,
    new_credentials,
    run_national_intake,
)
from local.warehouse import LOCAL_STATE, REPO_ROOT, resolve_warehouse_url

CREDENTIALS_FILE = LOCAL_STATE / "national_intake" / "credentials.json"
PROVINCES_SEED = REPO_ROOT / "dbt_project" / "seeds" / "admin_provinces.csv"


def todays_provinces() -> list[str]:
    """Today's 34 province codes (the seed admin_provinces: rows without an end date)."""
    import csv

    with PROVINCES_SEED.open(encoding="utf-8") as seed:
        return sorted(row["code"] for row in csv.DictReader(seed) if not row["valid_to"])


def local_credentials(path: Path = CREDENTIALS_FILE) -> dict[str, IntakeCredential]:
    """The stand-in's credentials of every province, made once and kept (mode 0600)."""
    if path.exists():
        stored = json.loads(path.read_text(encoding="utf-8"))
        return {province: IntakeCredential(**fields) for province, fields in stored.items()}
    credentials = new_credentials(todays_provinces())
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        json.dump({p: asdict(c) for p, c in credentials.items()}, file)
    return credentials


def connection_env(intake: RunningIntake) -> dict[str, str]:
    """AIRFLOW_CONN_NATIONAL_INTAKE_<code> of every province the stand-in knows."""
    return {
        CONNECTION_ENV.format(province=province): intake_connection(
            intake, province
        ).as_airflow_json()
        for province in intake.credentials
    }


def intake_connection(intake: RunningIntake, province: str) -> IntakeConnection | None:
    """The province's connection to the running stand-in (None: it has no credentials)."""
    credential = intake.credentials.get(province)
    return credential.connection(intake.base_url) if credential else None


@contextmanager
def local_intake(warehouse_url: str) -> Iterator[RunningIntake]:
    """The stand-in national intake on the warehouse's server, with the kept credentials."""
    with run_national_intake(
        ensure_intake_database(warehouse_url),
        todays_provinces(),
        credentials=local_credentials(),
    ) as intake:
        yield intake


@contextmanager
def intake_connections(warehouse_url: str) -> Iterator[Callable[[str], IntakeConnection | None]]:
    """The provinces' connections from the environment, else the local stand-in's."""
    prefix = CONNECTION_ENV.format(province="")
    if any(name.startswith(prefix) for name in os.environ):
        yield IntakeConnection.from_environment
        return
    with local_intake(warehouse_url) as intake:
        yield partial(intake_connection, intake)


_STATUS_SQL = """
select province_code, entity, epoch, acknowledged, open_batches, open_rejections,
    last_acknowledged_at, paused_at, coalesce(last_error, '')
from ops.feed_status
"""


def print_status(warehouse_url: str) -> None:
    with psycopg.connect(warehouse_url) as conn:
        rows = conn.execute(_STATUS_SQL).fetchall()
    if not rows:
        print("Nothing delivered yet (ops.feed_status is empty).")
        return
    print(
        f"{'prov.':<5} {'entity':<24} {'epoch':>5} {'acknowl.':>9} {'open':>5} {'rejected':>8}"
        f"  {'last acknowledged (UTC)':<24} state"
    )
    for province, entity, epoch, acked, open_, rejected, last, paused, error in rows:
        state = "PAUSED" if paused else ("open: " + error[:60] if open_ else "ok")
        when = f"{last:%Y-%m-%d %H:%M:%S}" if last else "-"
        print(
            f"{province:<5} {entity:<24} {epoch:>5} {acked:>9} {open_:>5} {rejected:>8}"
            f"  {when:<24} {state}"
        )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m local feed")
    parser.add_argument(
        "command",
        nargs="?",
        default="status",
        choices=["status", "deliver", "reconcile", "pause", "resume", "resend"],
    )
    parser.add_argument("--province")
    parser.add_argument("--entity")
    parser.add_argument("--reason", default="")
    args = parser.parse_args(argv)
    url = resolve_warehouse_url()
    ensure_schema(url)
    if args.command == "status":
        print_status(url)
        return 0
    if args.command in ("pause", "resume", "resend"):
        if not args.province:
            parser.error(f"{args.command} needs --province")
        try:
            if args.command == "resend":
                forgotten = start_resend(url, args.province, args.entity, args.reason)
                print(
                    f"province {args.province}: {forgotten} acknowledged records forgotten;"
                    " the next delivery sends them all again (new epoch)"
                )
            else:
                changed = set_paused(
                    url, args.province, args.entity, args.command == "pause", args.reason
                )
                print(f"province {args.province}: {args.command}d {', '.join(changed)}")
        except ValueError as error:
            print(error, file=sys.stderr)
            return 2
        return 0
    if not feed_entities(url):
        print(
            "No published warehouse build with the national feed models yet: run `make demo`"
            " or `make warehouse` first.",
            file=sys.stderr,
        )
        return 1
    with intake_connections(url) as connection_for, IntakeClients(connection_for) as clients:
        if args.command == "reconcile":
            balances, differences = reconcile(url, clients)
            print(format_balances(balances, differences))
            return 1 if any(b.differences for b in balances) else 0
        failed = False
        for entity in [args.entity] if args.entity else feed_entities(url):
            try:
                print(deliver(url, clients, entity).summary())
            except (FeedBusy, FeedDeliveryError) as error:
                print(f"{entity}: {error}", file=sys.stderr)
                failed = True
        return 1 if failed else 0
