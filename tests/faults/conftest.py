"""The fault suite's fixtures: the integration layer's (settings, embedder, the fake OpenAI server),
plus ports on a database of their own per run (new_database, tests/conftest.py), so that a run under
a fault and a clean run of the same document can be compared fingerprint to fingerprint
(tests/support/stages.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

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
