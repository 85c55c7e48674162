"""The national feed's credentials for the Docker stack, generated once and kept in files.

docker/compose.yaml runs this in its one-shot `national-intake-init` service (as root, writing
into two named volumes, then handing the files to the runtime user):

    python -m local.national_intake.credentials_files files \\
        --server-dir /var/lib/national-intake --publisher-dir /opt/airflow/national-feed \\
        --intake-url http://national-intake:8095 --owner 50000:0 [--provinces 37,38] [--rotate]
    python -m local.national_intake.credentials_files database \\
        --pgpass-file /var/lib/national-intake/pgpass --admin-url-env WAREHOUSE_URL

`files` gives every province (default: today's 34) an OAuth client secret and an Ed25519 signing
key, and writes

- into the stand-in intake's directory (``--server-dir``, mounted into it alone):
  ``clients.json`` (what NATIONAL_INTAKE_CLIENTS takes: each province's client secret and public
  key, never a private key), ``admin_token`` (its /admin endpoints) and ``pgpass`` (the
  password of its database role ``national_intake``, in libpq's password file format: the
  stand-in reads it through PGPASSFILE, so its database URL holds no password);
- into the publisher's directory (``--publisher-dir``, mounted into the Airflow components):
  ``connections.json``, Airflow's LocalFilesystemBackend form of the connections
  ``national_intake_<code>`` the national_feed DAG reads (host = ``--intake-url``, login = the
  client id, password = the client secret, extra ``key_id`` and ``signing_key``).

Files are mode 0600 and directories 0700, owned by ``--owner`` when run as root. What exists is
kept (the private keys live in connections.json only; clients.json is derived from them on every
run, so the two always agree); ``--rotate`` replaces every secret, key and token.

`database` gives the stand-in a role and a database of its own, both ``national_intake``, on the
server of the URL in the variable ``--admin-url-env`` (a superuser's: the warehouse's owner in
the stack), with the password ``--pgpass-file`` holds for that role, set again on every run;
PUBLIC may not connect to it. Never the warehouse's database or schemas. Nothing secret is on a
command line or printed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from connectors.national_intake import CONNECTION_ENV
from local.national_intake import CLIENTS_ENV
from local.national_intake.process import (
    INTAKE_DB,
    IntakeCredential,
    intake_environment,
    new_credentials,
)

CLIENTS_FILE = "clients.json"
ADMIN_TOKEN_FILE = "admin_token"  # noqa: S105 (a file name)
PGPASS_FILE = "pgpass"
CONNECTIONS_FILE = "connections.json"
_PROVINCE = re.compile(r"[0-9]{2}")
_OWNER = re.compile(r"([0-9]+):([0-9]+)")
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")


def connection_id(province: str) -> str:
    """The Airflow connection id of a province's intake, e.g. national_intake_37."""
    return CONNECTION_ENV.format(province=province).removeprefix("AIRFLOW_CONN_").lower()


def todays_provinces() -> list[str]:
    from local.feed import todays_provinces as provinces  # the seed admin_provinces

    return provinces()


def write_private(path: Path, text: str, owner: tuple[int, int] | None = None) -> None:
    """Replace `path` atomically by a file of mode 0600 holding `text`."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            os.fchmod(file.fileno(), 0o600)
            if owner is not None:
                os.fchown(file.fileno(), *owner)
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def private_directory(path: Path, owner: tuple[int, int] | None = None) -> None:
    path.mkdir(parents=True, exist_ok=True)
    if owner is not None:
        os.chown(path, *owner)
    path.chmod(0o700)


def pgpass_line(role: str, password: str) -> str:
    """libpq's password file entry for `role` on any host, port and database."""
    return f"*:*:*:{role}:{password}\n"


def pgpass_password(path: Path, role: str) -> str:
    """The password the password file at `path` holds for `role` ('' when none)."""
    for line in _read_text(path).splitlines():
        fields = line.split(":")
        if len(fields) == 5 and fields[3] == role:
            return fields[4]
    return ""


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return ""


def kept_credentials(
    connections_file: Path, provinces: Sequence[str]
) -> dict[str, IntakeCredential]:
    """The provinces' credentials already in the connections file (complete ones only)."""
    try:
        stored = json.loads(connections_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except json.JSONDecodeError:
        return {}  # damaged: everything is made again
    kept = {}
    for province in provinces:
        conn = stored.get(connection_id(province)) if isinstance(stored, dict) else None
        if not isinstance(conn, dict):
            continue
        extra = conn.get("extra") or {}
        if isinstance(extra, str):
            try:
                extra = json.loads(extra)
            except json.JSONDecodeError:
                continue
        fields = (conn.get("login"), conn.get("password"), extra.get("key_id"))
        signing_key = extra.get("signing_key")
        if all(isinstance(f, str) and f for f in (*fields, signing_key)):
            login, password, key_id = fields
            kept[province] = IntakeCredential(login, password, key_id, signing_key)
    return kept


def connections_document(
    credentials: Mapping[str, IntakeCredential], intake_url: str
) -> dict[str, Any]:
    """{connection id: Airflow connection} for LocalFilesystemBackend."""
    return {
        connection_id(province): json.loads(credential.connection(intake_url).as_airflow_json())
        for province, credential in sorted(credentials.items())
    }


def write_files(
    server_dir: Path,
    publisher_dir: Path,
    intake_url: str,
    provinces: Sequence[str],
    *,
    rotate: bool = False,
    owner: tuple[int, int] | None = None,
) -> list[str]:
    """Make (or keep) the credentials and write both directories; the provinces made anew."""
    private_directory(server_dir, owner)
    private_directory(publisher_dir, owner)
    connections_file = publisher_dir / CONNECTIONS_FILE
    credentials = {} if rotate else kept_credentials(connections_file, provinces)
    missing = [province for province in provinces if province not in credentials]
    credentials |= new_credentials(missing)
    admin_token = "" if rotate else _read_text(server_dir / ADMIN_TOKEN_FILE)
    password = "" if rotate else pgpass_password(server_dir / PGPASS_FILE, INTAKE_DB)
    clients = intake_environment(credentials, "", "")[CLIENTS_ENV]
    # The stand-in's side first: a province's new key is known to the intake before the
    # publisher can sign with it.
    write_private(server_dir / CLIENTS_FILE, clients, owner)
    write_private(server_dir / ADMIN_TOKEN_FILE, admin_token or secrets.token_urlsafe(32), owner)
    password = password or secrets.token_urlsafe(32)
    write_private(server_dir / PGPASS_FILE, pgpass_line(INTAKE_DB, password), owner)
    document = connections_document(credentials, intake_url)
    write_private(connections_file, json.dumps(document, indent=2) + "\n", owner)
    return missing


def ensure_database(admin_url: str, password: str, name: str = INTAKE_DB) -> None:
    """Role `name` (login, `password`) owning database `name` on the server of `admin_url`,
    which PUBLIC may not connect to."""
    import psycopg
    from psycopg import sql

    if not _IDENTIFIER.fullmatch(name):
        raise ValueError(f"{name!r} is not a plain lower-case identifier")
    if not password:
        raise ValueError("the database password is empty")
    ident, secret = sql.Identifier(name), sql.Literal(password)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if conn.execute("select 1 from pg_roles where rolname = %s", (name,)).fetchone():
            conn.execute(sql.SQL("alter role {} with login password {}").format(ident, secret))
        else:
            conn.execute(sql.SQL("create role {} with login password {}").format(ident, secret))
        if not conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone():
            conn.execute(sql.SQL("create database {} owner {}").format(ident, ident))
        conn.execute(sql.SQL("alter database {} owner to {}").format(ident, ident))
        conn.execute(sql.SQL("revoke all on database {} from public").format(ident))


def _owner(value: str) -> tuple[int, int]:
    match = _OWNER.fullmatch(value)
    if match is None:
        raise argparse.ArgumentTypeError(f"{value!r} is not UID:GID")
    return int(match[1]), int(match[2])


def _provinces(value: str) -> list[str]:
    codes = sorted({code.strip() for code in value.split(",") if code.strip()})
    bad = [code for code in codes if not _PROVINCE.fullmatch(code)]
    if bad or not codes:
        raise argparse.ArgumentTypeError(f"not 2-digit province codes: {value!r}")
    return codes


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m local.national_intake.credentials_files",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    files = commands.add_parser("files", help="make or keep the credentials; write both sides")
    files.add_argument("--server-dir", type=Path, required=True, metavar="DIR")
    files.add_argument("--publisher-dir", type=Path, required=True, metavar="DIR")
    files.add_argument("--intake-url", required=True, metavar="URL")
    files.add_argument(
        "--provinces", type=_provinces, metavar="CODES", help="e.g. 37,38 (default: all 34)"
    )
    files.add_argument("--owner", type=_owner, metavar="UID:GID", help="when run as root")
    files.add_argument("--rotate", action="store_true", help="replace every secret and key")
    database = commands.add_parser("database", help="the stand-in's role and database")
    database.add_argument("--pgpass-file", type=Path, required=True, metavar="FILE")
    database.add_argument("--admin-url-env", default="WAREHOUSE_URL", metavar="NAME")
    database.add_argument("--database", default=INTAKE_DB, metavar="NAME")
    args = parser.parse_args(argv)
    if args.command == "database" and not os.environ.get(args.admin_url_env):
        parser.error(f"set the environment variable {args.admin_url_env}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "database":
        password = pgpass_password(args.pgpass_file, args.database)
        if not password:
            print(
                f"{args.pgpass_file} has no password for {args.database}: run `files` first",
                file=sys.stderr,
            )
            return 2
        ensure_database(os.environ[args.admin_url_env], password, args.database)
        print(f"national intake: role and database {args.database} ready")
        return 0
    owner = args.owner if args.owner is not None and os.geteuid() == 0 else None
    provinces = args.provinces or todays_provinces()
    made = write_files(
        args.server_dir,
        args.publisher_dir,
        args.intake_url,
        provinces,
        rotate=args.rotate,
        owner=owner,
    )
    kept = len(provinces) - len(made)
    print(
        f"national intake credentials: {len(provinces)} provinces"
        f" ({len(made)} made, {kept} kept){' (rotated)' if args.rotate else ''}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
