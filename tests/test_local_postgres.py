"""The embedded PostgreSQL (local/postgres.py) on a newcomer's machine: run as root from a clone
under a folder only root may enter, restarted without moving port, copied safely."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest

from local.postgres import LocalPostgres, _pgserver_dir, shared_install

REPO_ROOT = Path(__file__).resolve().parents[1]

# Run in a fresh interpreter whose pgserver package is the copy under the private folder, as in
# a clone under /root: the test server as tests/conftest.py makes it, one in the private folder,
# and the demo's durable server in the clone's .local/postgres, restarted once.
_SCRIPT = r"""
import importlib.util, json, sys, tempfile
from pathlib import Path
import psycopg
from local.postgres import LocalPostgres, throwaway_server

private = Path(sys.argv[1])
assert importlib.util.find_spec("pgserver").origin.startswith(str(private))
out = {}
with (
    tempfile.TemporaryDirectory(prefix="sti-test-pg-") as folder,
    throwaway_server(Path(folder)) as server,
):
    with psycopg.connect(server.url()) as conn:
        out["throwaway"] = conn.execute("select current_user").fetchone()[0]
    out["bin_dir"] = str(server.bin_dir)
with throwaway_server(private / "throwaway") as server:
    with psycopg.connect(server.url()) as conn:
        out["private_throwaway"] = conn.execute("select 1").fetchone()[0]
durable = LocalPostgres(private / "clone" / ".local" / "postgres")
try:
    with psycopg.connect(durable.start(), autocommit=True) as conn:
        conn.execute("create table kept (x int); insert into kept values (7)")
    first_port = durable.port
    durable.stop()
    with psycopg.connect(durable.start()) as conn:
        out["durable"] = conn.execute("select x from kept").fetchone()[0]
    out["ports"] = [first_port, durable.port]
    out["data_dir"] = str(durable.data_dir)
finally:
    durable.destroy()
print(json.dumps(out))
"""


@pytest.mark.skipif(
    os.geteuid() != 0,
    reason="needs root: the bug is root's server account (nobody) not reaching a root-only clone",
)
def test_as_root_the_servers_run_from_a_clone_under_a_root_only_folder():
    private = Path(tempfile.mkdtemp(prefix="sti-private-"))  # 0700, like /root and mktemp -d
    try:
        assert stat.S_IMODE(private.stat().st_mode) == 0o700
        site_packages = private / "site-packages"
        source = _pgserver_dir()
        shutil.copytree(source, site_packages / "pgserver")
        shutil.copytree(source.parent / "pgserver.libs", site_packages / "pgserver.libs")

        result = subprocess.run(
            [sys.executable, "-c", _SCRIPT, str(private)],
            cwd=REPO_ROOT,
            env={**os.environ, "PYTHONPATH": str(site_packages)},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        out = json.loads(result.stdout.splitlines()[-1])
        assert out["throwaway"] == "postgres" and out["private_throwaway"] == 1
        assert out["durable"] == 7
        assert out["ports"][0] == out["ports"][1]
        # The server account got its own reachable copies; the private folder stayed private.
        assert not out["bin_dir"].startswith(str(private))
        assert not out["data_dir"].startswith(str(private))
        assert stat.S_IMODE(private.stat().st_mode) == 0o700
        assert not Path(out["data_dir"]).exists()  # destroy() removed the relocated data too
    finally:
        shutil.rmtree(private)


def test_a_restarted_server_keeps_its_port_and_its_clients_reconnect(tmp_path):
    server = LocalPostgres(tmp_path / "pg")
    try:
        url = server.start()
        # A client still connected at stop (an Airflow worker, a psql session) keeps the old
        # connection's socket closing for a while: that used to make the next start pick
        # another port, and every holder of the URL got "connection refused".
        held = psycopg.connect(url, autocommit=True)
        try:
            server.stop()
            assert server.start() == url
        finally:
            held.close()
        with psycopg.connect(url) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
        server.stop()
        assert LocalPostgres(tmp_path / "pg").start() == url  # another process, same folder
    finally:
        server.destroy()


def test_a_start_stops_clearly_when_another_process_holds_the_port(tmp_path):
    server = LocalPostgres(tmp_path / "pg", durable=False)
    try:
        url = server.start()
        server.stop()
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
            squatter.bind(("127.0.0.1", server.port))
            squatter.listen()
            with pytest.raises(RuntimeError, match=f"port {server.port}.*another process"):
                server.start()
        assert server.start() == url
    finally:
        server.destroy()


def test_concurrent_copies_of_the_binaries_end_in_one_complete_copy(tmp_path):
    source = _pgserver_dir()
    with ThreadPoolExecutor(max_workers=3) as pool:
        targets = set(pool.map(lambda _: shared_install(source, tmp_path), range(3)))
    assert len(targets) == 1
    (target,) = targets
    assert [p.name for p in tmp_path.iterdir()] == [target.name]  # no staging left behind
    assert shared_install(source, tmp_path) == target  # idempotent
    bin_dir = target / "pgserver" / "pginstall" / "bin"
    for program in ("postgres", "initdb", "pg_ctl", "psql"):  # initdb, psql: need libpq's copy
        version = subprocess.run(
            [str(bin_dir / program), "--version"], capture_output=True, text=True, check=True
        )
        assert "16." in version.stdout
