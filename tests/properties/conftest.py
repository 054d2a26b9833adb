"""The property tests' fixtures: the offline engine's ports on a database of the module's own (hypothesis
runs many examples inside one test call, so the ports outlive a function-scoped fixture)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kg.engine.local import LocalPorts, open_local_ports
from kg.settings import Settings
from tests.support.embedded import fresh_database

# The integration layer's session models, shared rather than loaded twice.
from tests.integration.conftest import conceptualizer, embedder  # noqa: F401


@pytest.fixture(scope="module")
def offline_settings(pg_server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """The offline engine's default settings (concepts on), on a database dropped after the module."""
    with fresh_database(pg_server) as url:
        yield Settings(database_url=url, data_dir=tmp_path_factory.mktemp("kg"),
                       llm_provider="offline", embedding_provider="offline")


@pytest.fixture(scope="module")
def offline_ports(offline_settings: Settings, embedder, conceptualizer) -> Iterator[LocalPorts]:  # noqa: F811
    ports = open_local_ports(offline_settings, embedder=embedder, conceptualizer=conceptualizer)
    yield ports
    ports.close()
