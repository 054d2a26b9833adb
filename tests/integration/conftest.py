"""Integration fixtures: the local engine's ports on a fresh database of the real embedded PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kg.engine.local import LocalPorts, open_local_ports
from kg.settings import Settings
from tests.support.extractors import ScriptedExtractor

PARAGRAPH = (
    "Marie Curie worked in Paris with Pierre Curie. Henri Becquerel found rays in Uranium salts. "
    "The Sorbonne hired Marie after Pierre died. Irene Curie later married Frederic Joliot. "
    "Warsaw remembered Marie with pride, and Poland honoured her."
)


def many_paragraphs(n: int = 24) -> str:
    return "\n\n".join(f"Part {i}. {PARAGRAPH}" for i in range(n))


@pytest.fixture(scope="session")
def embedder():
    pytest.importorskip("onnxruntime")
    from kg.embeddings.onnx_minilm import MiniLmEmbedder

    return MiniLmEmbedder()


@pytest.fixture
def settings(database_url: str, tmp_path) -> Settings:
    # Small chunks, so that a short text makes several of them.
    return Settings(database_url=database_url, data_dir=tmp_path / "kg", chunk_tokens=200,
                    chunk_overlap_tokens=20, max_concurrency=3)


@pytest.fixture(scope="session")
def conceptualizer():
    pytest.importorskip("spacy")
    from kg.concepts.offline import HeuristicConceptualizer

    return HeuristicConceptualizer()


@pytest.fixture
def make_ports(settings: Settings, embedder, conceptualizer) -> Iterator:
    opened: list[LocalPorts] = []

    def make(extractor=None) -> LocalPorts:
        ports = open_local_ports(settings, extractor=extractor or ScriptedExtractor(), embedder=embedder,
                                 conceptualizer=conceptualizer)
        opened.append(ports)
        return ports

    yield make
    for ports in opened:
        ports.close()


def table_counts(ports: LocalPorts) -> dict[str, int]:
    tables = ("documents", "chunks", "nodes", "relations", "triples", "triple_provenance", "concepts",
              "conceptualizations", "dedup_merges")
    with ports.db.connection() as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}


# -- the LLM layer against a fake OpenAI-compatible server --------------------------------------


@pytest.fixture
def fake_openai():
    from tests.support.fake_openai import FakeOpenAI

    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def openai_settings(settings: Settings, fake_openai) -> Settings:
    """The openai provider for extraction and embeddings, on the fake server, with tiny backoffs."""
    from pydantic import SecretStr

    return settings.model_copy(update={
        "llm_provider": "openai", "embedding_provider": "openai", "openai_api_key": SecretStr("test"),
        "openai_base_url": fake_openai.url, "embedding_dimensions": 64, "llm_timeout_s": 10.0,
        "llm_backoff_base_s": 0.001, "llm_backoff_max_s": 0.01, "llm_breaker_cooldown_s": 600.0,
        # Extraction tests count chat requests; the concepts stage's own calls are tested on their own.
        "concepts": False,
    })


@pytest.fixture
def open_ports(settings: Settings) -> Iterator:
    """`open_ports(settings)`: the local engine's ports exactly as `kg` builds them from settings."""
    opened: list[LocalPorts] = []

    def make(for_settings: Settings) -> LocalPorts:
        ports = open_local_ports(for_settings)
        opened.append(ports)
        return ports

    yield make
    for ports in opened:
        ports.close()
