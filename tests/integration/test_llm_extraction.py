"""The OpenAI provider end to end: the official client against a fake server on 127.0.0.1, the real
embedded PostgreSQL, the local engine as `kg ingest` runs it."""

from __future__ import annotations

import json

import pytest

from kg.documents import decode_document
from kg.embeddings.openai import OpenAiEmbedder
from kg.engine.local import ingest
from kg.errors import StoreMismatch
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
        system = request.message("system")
        # The replaced system sent "Extract undefined from the following text" for every type.
        assert "undefined" not in json.dumps(request.body["messages"])
        assert request.triple_type in system
        assert all(other not in system for other in TYPES if other != request.triple_type)


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
    assert report.llm.calls == fake_openai.ok_chat == 4


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
    assert report.llm.calls == 4 * report.chunks + 1  # the malformed reply was paid for too


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
    assert report.llm.calls == fake_openai.ok_chat
    assert report.llm.input_tokens == fake_openai.prompt_tokens
    assert report.llm.output_tokens == fake_openai.completion_tokens
    expected = estimate_cost("gpt-4o-mini", fake_openai.prompt_tokens, fake_openai.completion_tokens,
                             openai_settings.llm_prices)
    assert report.llm.cost_usd == pytest.approx(expected, abs=1e-7) and expected > 0
    job = ports.ledger.get(report.job_id)
    assert job.llm == report.llm
    assert job.llm_by_stage == {Stage.EXTRACT.value: report.llm}


def test_later_stages_add_their_usage_to_the_job(open_ports, openai_settings, fake_openai):
    from kg.models import LlmUsage

    ports = open_ports(openai_settings)
    report = ingest(document(2), ports, openai_settings)
    concepts = LlmUsage(calls=2, input_tokens=100, output_tokens=50, cost_usd=0.001)
    for _ in range(2):  # recording again replaces, never adds twice
        ports.ledger.record_usage(report.job_id, Stage.CONCEPTS, concepts)
    job = ports.ledger.get(report.job_id)
    assert job.llm_by_stage == {"EXTRACT": report.llm, "CONCEPTS": concepts}
    assert job.llm == report.llm.add(concepts)


def test_combined_mode_makes_one_call_per_chunk_for_all_types(open_ports, openai_settings, fake_openai):
    combined = openai_settings.model_copy(update={"extraction_mode": "combined"})
    report = ingest(document(), open_ports(combined), combined)
    assert report.status is JobStatus.SUCCEEDED
    requests = fake_openai.chat_requests()
    assert len(requests) == report.chunks and {r.triple_type for r in requests} == {"ALL"}
    assert all(all(t in r.message("system") for t in TYPES) for r in requests)
    assert all(report.triples[t] > 0 for t in TYPES)


def test_a_store_made_for_one_embedding_dimension_refuses_another(open_ports, openai_settings):
    open_ports(openai_settings).close()
    with pytest.raises(StoreMismatch, match="64 dimensions"):
        open_ports(openai_settings.model_copy(update={"embedding_dimensions": 256}))


def test_a_dead_endpoint_fails_the_job_fast_with_a_clear_error(open_ports, openai_settings):
    from kg.llm.client import shared_client

    dead = openai_settings.model_copy(update={
        "openai_base_url": free_port_refusing_connections(), "embedding_provider": "offline",
        "llm_max_retries": 8, "llm_breaker_threshold": 3,
    })
    ports = open_ports(dead)
    report = ingest(document(), ports, dead)
    assert report.status is JobStatus.FAILED
    job = ports.ledger.get(report.job_id)
    assert all(c.status is ChunkStatus.FAILED for c in job.chunks)
    assert all("ProviderUnavailable" in c.error and "unreachable" in c.error for c in job.chunks)
    assert any("OPENAI_BASE_URL" in c.error for c in job.chunks)
    # Without the breaker: chunks x 4 types x 9 attempts. With it: the threshold, plus what was
    # already in flight when it opened.
    assert shared_client(dead).attempts <= dead.llm_breaker_threshold + dead.llm_concurrency
