"""The OpenAI provider end to end: the official client against a fake server on 127.0.0.1, the real
embedded PostgreSQL, the local engine as `kg ingest` runs it."""

from __future__ import annotations

import json

import pytest

from kg.documents import decode_document
from kg.embeddings.openai import OpenAiEmbedder
from kg.engine.local import ingest
from kg.extraction.openai import OpenAiExtractor
from kg.llm.pricing import estimate_cost
from kg.models import ALL_TRIPLE_TYPES, ChunkStatus, JobStatus, Stage
from tests.integration.conftest import many_paragraphs, table_counts
from tests.support.fake_openai import Reply, free_port_refusing_connections

TYPES = [t.value for t in ALL_TRIPLE_TYPES]


def document(paragraphs: int = 10, source: str = "curie-notes"):
    return decode_document(many_paragraphs(paragraphs).encode(), source, 10_000_000)


def of_type(name: str):
    return lambda request: request.triple_type == name


def test_a_document_goes_through_the_openai_provider_into_the_graph(open_ports, openai_settings, fake_openai):
    ports = open_ports(openai_settings)
    assert isinstance(ports.extractor, OpenAiExtractor) and isinstance(ports.embedder, OpenAiEmbedder)
    report = ingest(document(), ports, openai_settings)
    assert report.status is JobStatus.SUCCEEDED
    assert report.chunks > 2
    assert all(report.triples[t] > 0 for t in TYPES)
    assert table_counts(ports)["triples"] == report.triples["total"]
    assert len(fake_openai.chat_requests()) == 4 * report.chunks
    assert fake_openai.embedding_requests()  # the vectors came through the same client
    assert report.embeddings.computed > 0


def test_every_extraction_request_is_strict_json_schema_at_temperature_0_and_names_its_type(
    open_ports, openai_settings, fake_openai
):
    report = ingest(document(5), open_ports(openai_settings), openai_settings)
    requests = fake_openai.chat_requests()
    assert sorted(r.triple_type for r in requests) == sorted(TYPES * report.chunks)
    for request in requests:
        fmt = request.body["response_format"]
        assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
        schema = fmt["json_schema"]["schema"]
        assert schema["additionalProperties"] is False and schema["required"] == list(schema["properties"])
        assert request.body["temperature"] == 0
        sent = json.dumps(request.body["messages"])
        # The replaced system sent "Extract undefined from the following text" for every type.
        assert "undefined" not in sent
        # The type is named in the message after the text (the shared prefix ends with the text).
        task = request.body["messages"][-1]
        assert task["role"] == "system" and request.triple_type in task["content"]
        assert all(other not in sent for other in TYPES if other != request.triple_type)


def test_429_three_times_then_success_honours_retry_after(open_ports, openai_settings, fake_openai):
    fake_openai.on(of_type("EVENT_EVENT"), Reply(status=429, headers={"Retry-After-Ms": "40"}), times=3)
    ports = open_ports(openai_settings.model_copy(update={"chunk_tokens": 2000}))
    report = ingest(document(1), ports, openai_settings)
    assert report.status is JobStatus.SUCCEEDED and report.chunks == 1
    assert report.triples["EVENT_EVENT"] > 0
    arrivals = [r.at for r in fake_openai.chat_requests("EVENT_EVENT")]
    assert len(arrivals) == 4
    # The client waited at least what the server asked before each retry.
    assert all(later - earlier >= 0.04 for earlier, later in zip(arrivals, arrivals[1:]))
    assert fake_openai.ok_chat == 4
    assert report.llm.calls == fake_openai.ok_chat + len(fake_openai.embedding_requests())


def test_at_a_tight_rate_limit_every_chunk_succeeds_by_waiting_out_the_429s(open_ports, openai_settings, fake_openai):
    # Issue 11's 8 requests/min, scaled down in time: 90/min tells a refused request to come back
    # within about 0.7 s instead of 7.5 s. Twelve type-calls and the embeddings contend for it.
    fake_openai.rate_limit(90)
    settings = openai_settings.model_copy(update={
        "llm_max_retries": 0,  # 429s are waited out up to the deadline, not counted
        "llm_retry_deadline_s": 120.0, "llm_backoff_base_s": 0.05,
    })
    ports = open_ports(settings)
    report = ingest(document(10), ports, settings)
    assert report.status is JobStatus.SUCCEEDED and report.chunks >= 3
    assert report.chunks_failed == 0 and report.chunks_partial == 0
    assert all(report.triples[t] > 0 for t in TYPES)
    statuses = [c["status"] for c in fake_openai.stats()["chat"]]
    assert statuses.count(429) > 0
    assert statuses.count(200) == fake_openai.ok_chat == 4 * report.chunks
    job = ports.ledger.get(report.job_id)
    assert job.status is JobStatus.SUCCEEDED and all(c.status is ChunkStatus.SUCCEEDED for c in job.chunks)


def test_a_rate_limit_that_asks_for_longer_than_the_deadline_gives_up_without_waiting(
    open_ports, openai_settings, fake_openai
):
    fake_openai.on(of_type("EVENT_EVENT"), Reply(status=429, headers={"Retry-After": "600"}))
    settings = openai_settings.model_copy(update={"llm_retry_deadline_s": 30.0})
    ports = open_ports(settings)
    report = ingest(document(1), ports, settings)
    assert report.status is JobStatus.PARTIAL and report.triples["EVENT_EVENT"] == 0
    assert len(fake_openai.chat_requests("EVENT_EVENT")) == report.chunks  # one attempt each, no wait


def test_a_type_that_always_fails_with_500_is_recorded_failed_and_the_job_is_partial(
    open_ports, openai_settings, fake_openai
):
    fake_openai.on(of_type("EMOTIONAL_CONTEXT"), Reply(status=500))
    ports = open_ports(openai_settings)
    report = ingest(document(), ports, openai_settings)
    assert report.status is JobStatus.PARTIAL
    assert report.triples["EMOTIONAL_CONTEXT"] == 0
    assert all(report.triples[t] > 0 for t in TYPES if t != "EMOTIONAL_CONTEXT")
    assert report.chunks_partial == report.chunks and report.chunks_failed == 0
    job = ports.ledger.get(report.job_id)
    assert job.status is JobStatus.PARTIAL
    assert all(c.status is ChunkStatus.PARTIAL and "EMOTIONAL_CONTEXT" in c.error for c in job.chunks)
    attempts = openai_settings.llm_max_retries + 1
    assert len(fake_openai.chat_requests("EMOTIONAL_CONTEXT")) == attempts * report.chunks


def test_malformed_json_is_asked_for_again_once(open_ports, openai_settings, fake_openai):
    fake_openai.on(of_type("ENTITY_EVENT"), Reply(content='{"triples": [{"subject": "Mar'), times=1)
    report = ingest(document(5), open_ports(openai_settings), openai_settings)
    assert report.status is JobStatus.SUCCEEDED
    assert len(fake_openai.chat_requests("ENTITY_EVENT")) == report.chunks + 1
    # The malformed reply was paid for too (and so were the embeddings).
    assert report.llm.calls == 4 * report.chunks + 1 + len(fake_openai.embedding_requests())


def test_malformed_json_twice_records_that_type_failed(open_ports, openai_settings, fake_openai):
    fake_openai.on(of_type("ENTITY_EVENT"), Reply(content="I am sorry, here are the triples:"))
    report = ingest(document(5), open_ports(openai_settings), openai_settings)
    assert report.status is JobStatus.PARTIAL
    assert report.triples["ENTITY_EVENT"] == 0 and report.triples["ENTITY_ENTITY"] > 0
    assert len(fake_openai.chat_requests("ENTITY_EVENT")) == 2 * report.chunks


def test_reingesting_the_same_document_is_served_from_the_cache(open_ports, openai_settings, fake_openai):
    ports = open_ports(openai_settings)
    first = ingest(document(), ports, openai_settings)
    before = table_counts(ports)
    reached = len(fake_openai.requests)
    second = ingest(document(), ports, openai_settings)
    assert len(fake_openai.requests) == reached  # zero calls reached the server, chat or embeddings
    assert second.llm.calls == 0 and second.llm.cached == 4 * second.chunks
    assert second.llm.cost_usd == 0 and second.llm.input_tokens == 0
    assert second.triples == first.triples and table_counts(ports) == before


def test_accounting_equals_what_the_server_counted(open_ports, openai_settings, fake_openai):
    fake_openai.on(of_type("ENTITY_ENTITY"), Reply(status=429, headers={"Retry-After": "0"}), times=2)
    fake_openai.on(of_type("EVENT_EVENT"), Reply(content="not json"), times=2)
    ports = open_ports(openai_settings)
    report = ingest(document(), ports, openai_settings)
    embeddings = len(fake_openai.embedding_requests())
    assert embeddings > 0
    assert report.llm.calls == fake_openai.ok_chat + embeddings
    assert report.llm.input_tokens == fake_openai.prompt_tokens + fake_openai.embedding_tokens
    assert report.llm.output_tokens == fake_openai.completion_tokens
    chat_cost = estimate_cost("gpt-4o-mini", fake_openai.prompt_tokens, fake_openai.completion_tokens,
                              openai_settings.llm_prices, fake_openai.cached_tokens)
    embedding_cost = estimate_cost("text-embedding-3-small", fake_openai.embedding_tokens, 0,
                                   openai_settings.llm_prices)
    assert report.llm.cost_usd == pytest.approx(chat_cost + embedding_cost, abs=1e-7) and chat_cost > 0
    job = ports.ledger.get(report.job_id)
    assert job.llm == report.llm
    assert set(job.llm_by_stage) == {Stage.EXTRACT.value, Stage.STORE.value}
    assert job.llm_by_stage[Stage.EXTRACT.value].calls == fake_openai.ok_chat
    assert job.llm_by_stage[Stage.STORE.value].input_tokens == fake_openai.embedding_tokens


def test_per_type_calls_on_a_chunk_read_it_from_the_prompt_cache_and_cost_the_cached_rate(
    open_ports, openai_settings, fake_openai
):
    # Chunks long enough for the provider's prompt cache (from 1,024 tokens), several of them.
    settings = openai_settings.model_copy(update={"chunk_tokens": 1500, "chunk_overlap_tokens": 100,
                                                  "extraction_mode": "per_type"})
    assert settings.prompt_cache_warmup
    ports = open_ports(settings)
    report = ingest(document(60), ports, settings)
    assert report.status is JobStatus.SUCCEEDED and report.chunks >= 3
    chats = fake_openai.chat_requests()
    assert len(chats) == 4 * report.chunks
    # The first call on each chunk warms the cache, the other three read the shared prefix from it:
    # at least the chunk text of each of them, never the whole prompt.
    assert report.llm.cached_input_tokens == fake_openai.cached_tokens
    shared = sum(3 * len(c.message("user")) // 4 for c in chats if c.triple_type == "ENTITY_ENTITY")
    assert shared < fake_openai.cached_tokens < fake_openai.prompt_tokens
    job = ports.ledger.get(report.job_id)
    assert job.llm.cached_input_tokens == job.llm_by_stage[Stage.EXTRACT.value].cached_input_tokens \
        == fake_openai.cached_tokens
    # The cost: cached prompt tokens at gpt-4o-mini's cached rate, the rest at the input rate.
    input_rate, output_rate, cached_rate = settings.llm_prices["gpt-4o-mini"]
    chat_cost = ((fake_openai.prompt_tokens - fake_openai.cached_tokens) * input_rate
                 + fake_openai.cached_tokens * cached_rate + fake_openai.completion_tokens * output_rate) / 1e6
    embedding_cost = fake_openai.embedding_tokens * settings.llm_prices["text-embedding-3-small"][0] / 1e6
    assert report.llm.cost_usd == pytest.approx(chat_cost + embedding_cost, abs=1e-7)
    uncached = (fake_openai.prompt_tokens * input_rate + fake_openai.completion_tokens * output_rate) / 1e6
    assert report.llm.cost_usd < uncached + embedding_cost - 1e-6


def test_a_dead_endpoint_fails_the_job_with_a_clear_error(open_ports, openai_settings):
    dead = free_port_refusing_connections()
    settings = openai_settings.model_copy(update={"openai_base_url": dead, "llm_breaker_threshold": 3})
    ports = open_ports(settings)
    report = ingest(document(), ports, settings)
    assert report.status is JobStatus.FAILED
    assert "unreachable" in report.error and "OPENAI_BASE_URL" in report.error
    job = ports.ledger.get(report.job_id)
    assert job.chunks_failed == report.chunks and job.llm.calls == 0
