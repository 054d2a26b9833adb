"""`kg` with an OpenAI-compatible endpoint (the fake server on 127.0.0.1), as a user would set it up."""

from __future__ import annotations

NOTE = "Marie Curie met Pierre Curie in Paris. Because Pierre admired Marie, Pierre proposed.\n"


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


def test_the_prompt_cache_hits_show_in_the_ingest_report_and_in_kg_status(kg, tmp_path, fake_openai):
    """Three chunks of about 1,500 tokens in per_type mode: on each chunk the first call warms the
    provider's prompt cache and the other three read the chunk from it; what the server reported as
    cached is what the job accounts, in the total and in the extract stage, and `kg status` shows it."""
    from tests.integration.conftest import many_paragraphs

    notes = tmp_path / "notes.txt"
    notes.write_text(many_paragraphs(60))
    env = {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": fake_openai.url, "KG_EMBEDDING_DIMENSIONS": "64",
           "KG_CHUNK_TOKENS": "1500", "KG_EXTRACTION_MODE": "per_type", "KG_CONCEPTS": "false"}
    (report,) = kg("ingest", str(notes), "--json", extra_env=env).json_lines()
    assert report["status"] == "SUCCEEDED" and report["chunks"] >= 3
    assert report["llm"]["cached_input_tokens"] == fake_openai.cached_tokens > 0

    status = kg("status", report["job_id"], "--json", extra_env=env).json()
    assert status["llm"]["cached_input_tokens"] == fake_openai.cached_tokens
    assert status["llm_by_stage"]["EXTRACT"]["cached_input_tokens"] == fake_openai.cached_tokens
    assert status["llm_by_stage"]["STORE"]["cached_input_tokens"] == 0  # embeddings have no prompt cache

    table = kg("status", report["job_id"], extra_env={**env, "COLUMNS": "200"}).stdout
    cached_lines = [line for line in table.splitlines() if "from the prompt cache" in line]
    assert len(cached_lines) == 3  # the total, extract, store
    assert sum(f"({fake_openai.cached_tokens} input tokens from the prompt cache)" in line
               for line in cached_lines) == 2
