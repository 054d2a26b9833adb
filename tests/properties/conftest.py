"""The property tests' fixtures: the offline engine's ports on a database of the module's own (hypothesis
runs many examples inside one test call, so the ports outlive a function-scoped fixture)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest

from kg.engine.local import LocalPorts, open_local_ports
from kg.settings import Settings

# The integration layer's session models, shared rather than loaded twice.
from tests.integration.conftest import conceptualizer, embedder  # noqa: F401


@pytest.fixture(scope="module")
def offline_settings(pg_server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """The offline engine's default settings (concepts on), on a database dropped after the module."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    admin = pg_server.get_uri()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield Settings(database_url=pg_server.get_uri(database=name), data_dir=tmp_path_factory.mktemp("kg"),
                   llm_provider="offline", embedding_provider="offline")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def offline_ports(offline_settings: Settings, embedder, conceptualizer) -> Iterator[LocalPorts]:
    ports = open_local_ports(offline_settings, embedder=embedder, conceptualizer=conceptualizer)
    yield ports
    ports.close()
