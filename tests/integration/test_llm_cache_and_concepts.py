"""The Postgres LLM cache, the embedder and the conceptualization call against the fake server."""

from __future__ import annotations

import threading

import numpy as np

from kg.db import Database
from kg.embeddings.openai import OpenAiEmbedder
from kg.llm.cache import CachedResponse, MemoryLlmCache
from kg.llm.cache_postgres import PostgresLlmCache
from kg.llm.client import LlmClient
from kg.llm.concepts import OpenAiConceptualizer, conceptualize
from kg.models import ConceptElement
from tests.support.fake_openai import Reply


def test_the_postgres_cache_returns_what_was_put_and_keeps_the_first(database_url):
    first = CachedResponse(model="m", content='{"a": 1}', input_tokens=3, output_tokens=2)
    with Database(database_url, "m", 8, migrate=True) as db:
        cache = PostgresLlmCache(db)
        assert cache.get_many(["k", "j"]) == {}
        cache.put_many({"k": first})
        cache.put_many({"k": CachedResponse(model="m", content='{"a": 2}'), "j": CachedResponse(model="m", content="{}")})
        assert cache.get_many(["k", "j", "x"]) == {"k": first, "j": CachedResponse(model="m", content="{}")}


def test_embeddings_are_batched_normalised_float32_in_input_order(openai_settings, fake_openai):
    embedder = OpenAiEmbedder(LlmClient.from_settings(openai_settings), dimensions=32, batch_size=4)
    texts = [f"text {i}" for i in range(10)]
    embedded = embedder.embed(texts)
    vectors = embedded.vectors
    assert vectors.shape == (10, 32) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    requests = fake_openai.embedding_requests()
    assert sorted(len(r.body["input"]) for r in requests) == [2, 4, 4]  # sent together: any arrival order
    assert all(r.body["dimensions"] == 32 for r in requests)
    again = embedder.embed(texts[5:6])
    assert np.allclose(again.vectors[0], vectors[5], atol=1e-6)
    # Each call's usage is its own: together they are what the server counted.
    assert embedded.usage.calls == 3 and again.usage.calls == 1
    assert embedded.usage.input_tokens + again.usage.input_tokens == fake_openai.embedding_tokens


class _MeetingClient:
    """The real client, but each embedding request waits until `parties` requests have come: requests
    sent one after another would never meet, and the barrier breaks."""

    def __init__(self, llm: LlmClient, parties: int):
        self.llm, self.barrier = llm, threading.Barrier(parties)

    def embed(self, *args):
        self.barrier.wait(timeout=60)
        return self.llm.embed(*args)


def test_the_batches_of_one_embedding_call_are_in_flight_together(openai_settings, fake_openai):
    llm = LlmClient.from_settings(openai_settings)
    texts = [f"text {i}" for i in range(12)]
    together = OpenAiEmbedder(_MeetingClient(llm, 3), dimensions=32, batch_size=4, concurrency=3).embed(texts)
    one_by_one = OpenAiEmbedder(llm, dimensions=32, batch_size=4, concurrency=1).embed(texts)
    assert np.allclose(together.vectors, one_by_one.vectors, atol=1e-6)  # in input order either way
    assert together.usage == one_by_one.usage


def test_embeddings_retry_a_429(openai_settings, fake_openai):
    fake_openai.on(lambda r: r.path.endswith("/embeddings"), Reply(status=429, headers={"Retry-After": "0"}), times=2)
    vectors = OpenAiEmbedder(LlmClient.from_settings(openai_settings), dimensions=16).embed(["a", "b"]).vectors
    assert vectors.shape == (2, 16) and len(fake_openai.embedding_requests()) == 3


ELEMENTS = [
    ConceptElement(id="n1", kind="entity", name="Marie Curie", context=["Marie Curie won the Nobel Prize"]),
    ConceptElement(id="n2", kind="event", name="Pierre Curie died"),
    ConceptElement(id="r1", kind="relation", name="worked with"),
]


def test_conceptualize_gives_each_element_concepts_at_three_levels_and_caches(openai_settings, fake_openai):
    llm, cache = LlmClient.from_settings(openai_settings), MemoryLlmCache()
    result = conceptualize(llm, cache, "gpt-4o-mini", ELEMENTS, openai_settings.llm_prices)
    assert [sorted(c.level for c in concepts) for concepts in result.concepts] == [["high", "low", "medium"]] * 3
    assert result.usage.calls == 1 and result.usage.input_tokens == fake_openai.prompt_tokens
    (request,) = fake_openai.chat_requests()
    assert request.body["response_format"]["json_schema"]["name"] == "concepts"
    assert "3. [relation] worked with" in request.message("user")
    assert "1. [entity] Marie Curie (context: Marie Curie won the Nobel Prize)" in request.message("user")
    again = OpenAiConceptualizer(llm, cache, "gpt-4o-mini").conceptualize(ELEMENTS)
    assert again.concepts == result.concepts and again.usage.cached == 1
    assert len(fake_openai.chat_requests()) == 1


def test_conceptualize_drops_invalid_items_and_unknown_elements(openai_settings, fake_openai):
    fake_openai.on(lambda r: True, Reply(data={"elements": [
        {"element": 1, "concepts": [{"phrase": "person", "level": "high", "confidence": 0.9},
                                    {"phrase": "scientist", "level": "very high", "confidence": 0.9}]},
        {"element": 9, "concepts": []},
    ]}))
    result = conceptualize(LlmClient.from_settings(openai_settings), MemoryLlmCache(), "gpt-4o-mini", ELEMENTS)
    assert [[c.phrase for c in concepts] for concepts in result.concepts] == [["person"], [], []]
    assert result.dropped == 2


def test_the_concepts_stage_runs_on_the_llm_with_cache_and_its_own_account(open_ports, openai_settings, fake_openai):
    from kg.documents import decode_document
    from kg.engine.local import ingest
    from kg.models import Stage
    from tests.integration.conftest import many_paragraphs

    settings = openai_settings.model_copy(update={"concepts": True, "concept_batch_size": 10})
    document = decode_document(many_paragraphs(4).encode(), "notes", 10_000_000)
    ports = open_ports(settings)
    report = ingest(document, ports, settings)
    concept_calls = [r for r in fake_openai.chat_requests() if r.schema_name == "concepts"]
    assert report.concepts.elements > 10 and len(concept_calls) == -(-report.concepts.elements // 10)
    assert all(ports.graph.stats().concepts_by_level[level] > 0 for level in ("high", "medium", "low"))
    job = ports.ledger.get(report.job_id)
    # The concepts stage pays for its chat calls and for embedding the new concept names.
    assert job.llm_by_stage[Stage.CONCEPTS.value].calls > len(concept_calls)
    assert job.llm_by_stage[Stage.STORE.value].input_tokens > 0  # the embeddings' cost is accounted too
    assert job.llm.calls == fake_openai.ok_chat + len(fake_openai.embedding_requests())

    fake_openai.requests.clear()
    again = ingest(document, ports, settings)
    assert again.concepts.elements == 0
    assert fake_openai.chat_requests() == [] and fake_openai.embedding_requests() == []
