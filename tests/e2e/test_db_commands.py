"""`kg db start | status | url | stop` on the embedded PostgreSQL, as a new user meets it: no
KG_DATABASE_URL, a data folder of its own. (`kg db migrate` is in tests/e2e/test_db_cli.py.)"""

from __future__ import annotations

import psycopg
import pytest

from tests.support.embedded import server_folder


@pytest.fixture
def embedded(kg):
    """`embedded(*args)`: kg with the embedded server under a new data folder (tests.support.embedded:
    one its server's user can enter when run as root); stopped after the test."""
    with server_folder() as root:
        env = {"KG_DATABASE_URL": "", "KG_DATA_DIR": str(root / "data")}

        def run(*args: str):
            return kg(*args, extra_env=env)

        run.pgdata = root / "data" / "pgdata"
        yield run
        run("db", "stop")


def reachable(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            return conn.execute("SELECT 1").fetchone() == (1,)
    except psycopg.OperationalError:
        return False


def test_start_status_url_and_stop_drive_the_embedded_server_and_its_data_survives_a_restart(embedded):
    before = embedded("db", "status", "--json")
    assert before.code == 0, before.stderr
    state = before.json()
    assert (state["pgdata"], state["initialised"], state["running"], state["url"]) == (
        str(embedded.pgdata), False, False, None)
    assert not embedded.pgdata.exists()  # status only looks: it starts nothing

    started = embedded("db", "start")
    assert started.code == 0, started.stderr
    assert "running" in started.stdout and (embedded.pgdata / "PG_VERSION").exists()
    status = embedded("db", "status", "--json").json()
    assert status["running"] is True and status["initialised"] is True  # (its url has the password hidden)

    url = embedded("db", "url")
    assert url.code == 0 and url.stdout.count("\n") == 1
    url = url.stdout.strip()
    assert reachable(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (note text)")
        conn.execute("INSERT INTO kept VALUES ('written before the stop')")

    stopped = embedded("db", "stop")
    assert stopped.code == 0 and "stopped" in stopped.stdout
    assert embedded("db", "status", "--json").json()["running"] is False
    assert not reachable(url)
    again = embedded("db", "stop")
    assert again.code == 0 and "not running" in again.stdout

    # `kg db url` starts the server when it is down, on the same data.
    restarted = embedded("db", "url")
    assert restarted.code == 0, restarted.stderr
    with psycopg.connect(restarted.stdout.strip()) as conn:
        assert conn.execute("SELECT note FROM kept").fetchall() == [("written before the stop",)]


def test_start_with_a_database_url_set_is_refused_and_starts_nothing(kg, tmp_path, database_url):
    data_dir = tmp_path / "unused"
    run = kg("db", "start", extra_env={"KG_DATA_DIR": str(data_dir)})  # KG_DATABASE_URL is set by the fixture
    assert run.code == 2
    assert "KG_DATABASE_URL is set" in run.stderr and "Traceback" not in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1
    assert not (data_dir / "pgdata").exists()


def test_url_prints_the_configured_database_url_as_is(kg, database_url):
    run = kg("db", "url")
    assert run.code == 0 and run.stdout.strip() == database_url
