"""Which warehouse the project uses, and the embedded server's life cycle."""

from __future__ import annotations

import psycopg

from local import warehouse
from local.postgres import LocalPostgres
from local.warehouse import dbt_env, resolve_warehouse_url


def test_a_given_warehouse_url_is_used_as_is(monkeypatch):
    monkeypatch.setenv("WAREHOUSE_URL", "postgresql://etl:s3cret@db.example:6543/sti")
    assert resolve_warehouse_url() == "postgresql://etl:s3cret@db.example:6543/sti"


def test_without_a_url_the_embedded_server_is_started_with_its_database(tmp_path, monkeypatch):
    monkeypatch.delenv("WAREHOUSE_URL", raising=False)
    monkeypatch.setattr(warehouse, "LOCAL_STATE", tmp_path)
    try:
        url = resolve_warehouse_url()
        assert url.endswith("/sti") and "127.0.0.1" in url
        with psycopg.connect(url) as conn:
            assert conn.execute("select current_database()").fetchone() == ("sti",)
        # idempotent: a second call reuses the running server
        assert resolve_warehouse_url() == url
    finally:
        warehouse.local_server().destroy()


def test_the_embedded_server_restarts_on_its_data(tmp_path):
    server = LocalPostgres(tmp_path / "pg", durable=False)
    try:
        with psycopg.connect(server.start(), autocommit=True) as conn:
            conn.execute("create table kept (x int); insert into kept values (42)")
        server.stop()
        assert not server.is_running()
        with psycopg.connect(server.start()) as conn:
            assert conn.execute("select x from kept").fetchone() == (42,)
    finally:
        server.destroy()


def test_dbt_settings_come_from_the_url():
    assert dbt_env("postgresql://etl:p%40ss@db.example:6543/sti") == {
        "DBT_PG_HOST": "db.example",
        "DBT_PG_PORT": "6543",
        "DBT_PG_USER": "etl",
        "DBT_PG_PASSWORD": "p@ss",
        "DBT_PG_DBNAME": "sti",
    }
