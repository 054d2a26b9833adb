"""`kg` with an OpenAI-compatible endpoint (the fake server on 127.0.0.1), as a user would set it up."""

from __future__ import annotations

import pytest

from tests.support.fake_openai import FakeOpenAI

NOTE = "Marie Curie met Pierre Curie in Paris. Because Pierre admired Marie, Pierre proposed.\n"


@pytest.fixture
def fake_openai():
    with FakeOpenAI() as fake:
        yield fake


def test_with_an_api_key_kg_uses_the_llm_says_so_and_reports_cost(kg, tmp_path, fake_openai):
    note = tmp_path / "note.txt"
    note.write_text(NOTE)
    env = {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": fake_openai.url, "KG_EMBEDDING_DIMENSIONS": "64"}
    run = kg("ingest", str(note), "--json", extra_env=env)
    assert run.code == 0, run.stderr
    assert "extractor: openai:gpt-4o-mini" in run.stderr and "text-embedding-3-small (64 dimensions)" in run.stderr
    (report,) = run.json_lines()
    assert report["status"] == "SUCCEEDED" and report["triples"]["total"] > 0
    assert report["llm"]["calls"] == fake_openai.ok_chat + len(fake_openai.embedding_requests())
    assert report["llm"]["cost_usd"] > 0 and report["llm"]["input_tokens"] > 0

    status = kg("status", report["job_id"], "--json", extra_env=env).json()
    assert status["llm"] == report["llm"]

    reached = len(fake_openai.requests)
    (again,) = kg("ingest", str(note), "--json", extra_env=env).json_lines()
    assert len(fake_openai.requests) == reached  # served from the cache
    assert again["llm"]["calls"] == 0 and again["llm"]["cached"] > 0 and again["triples"] == report["triples"]


def test_a_store_made_for_other_embeddings_is_refused(kg, tmp_path, fake_openai):
    note = tmp_path / "note.txt"
    note.write_text(NOTE)
    assert kg("ingest", str(note), "--no-concepts").code == 0  # offline: MiniLM, 384 dimensions
    env = {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": fake_openai.url}
    run = kg("ingest", str(note), extra_env=env)
    assert run.code == 1
    assert "384 dimensions" in run.stderr and "Traceback" not in run.stderr
    assert fake_openai.requests == []
