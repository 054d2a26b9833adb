"""The fault suite's fixtures: the integration layer's (settings, embedder, the fake OpenAI server),
plus a database of its own per run, so that a run under a fault and a clean run of the same
document can be compared fingerprint to fingerprint (tests/support/stages.py)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest

from kg.engine.local import LocalPorts, open_local_ports
from kg.settings import Settings

# The integration layer's fixtures, shared rather than copied (a conftest's names are its fixtures).
from tests.integration.conftest import (  # noqa: F401
    conceptualizer,
    embedder,
    fake_openai,
    openai_settings,
    settings,
)


@pytest.fixture
def new_database(pg_server) -> Iterator[Callable[[], str]]:
    """`new_database()`: the URL of a new, empty database on the session's server; dropped after the test."""
    names: list[str] = []
    admin = pg_server.get_uri()

    def make() -> str:
        name = f"t_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        names.append(name)
        return pg_server.get_uri(database=name)

    yield make
    with psycopg.connect(admin, autocommit=True) as conn:
        for name in names:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def ports_on(new_database) -> Iterator[Callable[..., LocalPorts]]:
    """`ports_on(settings, database_url=None, **components)`: the local engine's ports as `kg` builds them
    from `settings`, on `database_url` (a new database by default); closed after the test."""
    opened: list[LocalPorts] = []

    def make(for_settings: Settings, database_url: str | None = None, **components) -> LocalPorts:
        own = for_settings.model_copy(update={"database_url": database_url or new_database()})
        ports = open_local_ports(own, **components)
        opened.append(ports)
        return ports

    yield make
    for ports in opened:
        ports.close()
