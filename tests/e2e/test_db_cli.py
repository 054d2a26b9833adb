"""`kg db`: the schema as an explicit, idempotent step (other commands migrate on first use); the embedded
server (first starts at once, its password, the folders above it left alone); `kg db status`; bad
database settings as one line."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from kg.db import _migrations
from kg.embedded_server import stop
from tests.support.cli import kg_env, start_kg
from tests.support.embedded import server_folder


def applied_versions(database_url: str) -> list[int]:
    with psycopg.connect(database_url) as conn:
        return [v for (v,) in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]


def test_migrate_applies_every_migration_then_is_a_no_op(kg, database_url):
    bundled = _migrations()
    first = kg("db", "migrate", "--json")
    assert first.code == 0, first.stderr
    assert first.json() == {"applied": [name for _, name, _ in bundled], "schema_version": bundled[-1][0]}
    assert applied_versions(database_url) == [v for v, _, _ in bundled]

    second = kg("db", "migrate")
    assert second.code == 0, second.stderr
    assert f"schema version {bundled[-1][0]}: up to date, nothing applied" in second.stdout
    assert applied_versions(database_url) == [v for v, _, _ in bundled]


def test_read_commands_on_a_new_database_migrate_it_and_answer(kg, database_url):
    stats = kg("stats", "--json")
    assert stats.code == 0, stats.stderr
    assert stats.json()["triples"] == 0
    assert kg("jobs", "--json").json() == []
    assert kg("db", "migrate", "--json").json()["applied"] == []


def test_migrate_with_bad_settings_exits_2_and_writes_nothing(kg, database_url):
    run = kg("db", "migrate", extra_env={"KG_MAX_CONCURRENCY": "0"})
    assert run.code == 2 and "max_concurrency" in run.stderr and "Traceback" not in run.stderr
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT to_regclass('public.schema_migrations')").fetchone()[0] is None


@pytest.fixture
def data_folder() -> Iterator[Path]:
    """A KG_DATA_DIR for an embedded server of the test's own (tests.support.embedded); the servers
    started in it are stopped after."""
    with server_folder() as root:
        yield root / "kg"
        for pgdata in root.rglob("PG_VERSION"):
            stop(pgdata.parent)


def embedded(data_dir: Path) -> dict[str, str]:
    return {"KG_DATABASE_URL": "", "KG_DATA_DIR": str(data_dir)}


def one_line_error(run) -> str:
    assert "Traceback" not in run.stderr and run.stdout == "", run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kg: error: "), run.stderr
    return lines[0]


def test_the_embedded_server_starts_in_a_data_dir_that_does_not_exist_yet(kg, data_folder):
    """A new user's first command: no KG_DATABASE_URL, a KG_DATA_DIR nobody has made."""
    data_dir = data_folder / "new" / "kg"
    run = kg("db", "migrate", "--json", extra_env=embedded(data_dir))
    assert run.code == 0, run.stderr
    assert run.json()["applied"] and (data_dir / "pgdata" / "PG_VERSION").exists()


def test_commands_started_at_once_on_a_new_data_folder_share_one_server(kg, data_folder):
    """The first start initialises the server; the others wait for it rather than start their own."""
    env = kg_env(**embedded(data_folder))
    commands = [["db", "start"], ["db", "start"], ["stats", "--json"], ["stats", "--json"]]
    procs = [start_kg(env, *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for args in commands]
    done = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    assert [code for code, _, _ in done] == [0] * len(commands), [err for _, _, err in done]
    assert all(json.loads(out)["triples"] == 0 for _, out, _ in done[2:])
    status = kg("db", "status", "--json", extra_env=embedded(data_folder)).json()
    assert status["running"] and status["reachable"] and status["schema_version"] == _migrations()[-1][0]


def test_the_embedded_server_wants_the_password_its_url_carries(kg, data_folder):
    url = kg("db", "url", extra_env=embedded(data_folder)).stdout.strip()
    password = conninfo_to_dict(url)["password"]
    assert len(password) >= 32
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    with pytest.raises(psycopg.OperationalError, match="no password supplied"):
        psycopg.connect(url, password="", passfile="/nonexistent/kg-pgpass", connect_timeout=5).close()

    status = kg("db", "status", "--json", extra_env=embedded(data_folder))
    assert status.code == 0 and password not in status.stdout
    state = status.json()
    assert state["database"] == "embedded" and state["pgdata"] == str(data_folder / "pgdata")
    assert state["url"] == url.replace(password, "***") and state["reachable"] is True


def test_status_of_a_stopped_embedded_server_does_not_start_it(kg, data_folder):
    assert kg("db", "start", extra_env=embedded(data_folder)).code == 0
    assert kg("db", "stop", extra_env=embedded(data_folder)).stdout.strip() == "stopped"
    run = kg("db", "status", extra_env=embedded(data_folder))
    assert run.code == 0, run.stderr
    assert f"embedded PostgreSQL in {data_folder / 'pgdata'}, stopped" in run.stdout
    assert "reachable: no (the embedded PostgreSQL is not running" in run.stdout
    assert kg("db", "status", "--json", extra_env=embedded(data_folder)).json()["running"] is False


def test_status_names_the_external_database_with_its_password_hidden(kg, database_url):
    password = conninfo_to_dict(database_url)["password"]
    assert password, "the session's server has a password"
    before = kg("db", "status", "--json")
    assert before.code == 0, before.stderr
    assert password not in before.stdout
    state = before.json()
    assert state["database"] == "external" and state["pgdata"] is None
    assert state["url"] == database_url.replace(password, "***")
    assert state["reachable"] is True and state["schema_version"] is None

    kg("db", "migrate")
    after = kg("db", "status")
    assert after.code == 0 and password not in after.stdout
    assert "database: KG_DATABASE_URL" in after.stdout and "reachable: yes" in after.stdout
    assert f"schema: version {_migrations()[-1][0]}, current" in after.stdout


def test_status_of_an_external_database_out_of_reach_says_why(kg, tmp_path):
    url = f"postgresql://kg:secret-pw@/kg?host={tmp_path}&connect_timeout=2"
    run = kg("db", "status", "--json", extra_env={"KG_DATABASE_URL": url})
    assert run.code == 0, run.stderr
    state = run.json()
    assert state["reachable"] is False and "cannot reach the graph database" in state["error"]
    assert "secret-pw" not in run.stdout and state["url"].startswith("postgresql://kg:***@/kg?")


@pytest.mark.parametrize("url", ["not a url", "http://example.com/kg", "postgresql://kg:secret-pw@localhost:port/kg"])
@pytest.mark.parametrize("command", [["stats"], ["db", "status"], ["db", "migrate"]])
def test_a_bad_database_url_is_a_bad_setting_in_one_line(kg, url, command):
    run = kg(*command, extra_env={"KG_DATABASE_URL": url})
    assert run.code == 2
    assert "KG_DATABASE_URL" in one_line_error(run) and "secret-pw" not in run.stderr


def test_a_data_folder_that_is_a_file_is_a_bad_setting_in_one_line(kg, data_folder):
    data_folder.parent.joinpath("a-file").write_text("not a folder")
    for data_dir in (data_folder.parent / "a-file", data_folder.parent / "a-file" / "kg"):
        run = kg("stats", extra_env=embedded(data_dir))
        assert run.code == 2
        assert "is a file, not a folder" in one_line_error(run)


def test_a_data_folder_out_of_reach_is_an_unavailable_database_in_one_line(kg, data_folder):
    data_folder.mkdir(mode=0o000)
    try:
        # As root, the server's user cannot enter it; as a user, this process cannot.
        run = kg("stats", extra_env=embedded(data_folder / "kg"))
        assert run.code == 1
        assert str(data_folder) in one_line_error(run)
        assert stat.S_IMODE(data_folder.stat().st_mode) == 0
    finally:
        data_folder.chmod(0o700)


@pytest.mark.skipif(os.geteuid() != 0, reason="as a user, the server runs as that user: a 0700 folder of its own serves")
def test_as_root_a_private_parent_folder_keeps_its_mode_and_the_refusal_says_what_to_do(kg, data_folder):
    data_folder.mkdir(mode=0o700)
    above = {p: stat.S_IMODE(p.stat().st_mode) for p in data_folder.parents}
    run = kg("db", "start", extra_env=embedded(data_folder / "kg"))
    assert run.code == 1
    message = one_line_error(run)
    assert f"cannot enter {data_folder} (mode 0700)" in message and "KG_DATA_DIR" in message
    assert stat.S_IMODE(data_folder.stat().st_mode) == 0o700 and list(data_folder.iterdir()) == []
    assert {p: stat.S_IMODE(p.stat().st_mode) for p in data_folder.parents} == above
