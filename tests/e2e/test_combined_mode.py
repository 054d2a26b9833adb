"""`kg ingest` in combined extraction mode (KG_EXTRACTION_MODE=combined): one request per chunk for the
four triple types, against the fake OpenAI server, as a user would set it up."""

from __future__ import annotations

import pytest

from tests.support.fake_openai import FakeOpenAI, Reply

PARAGRAPH = ("Marie Curie met Pierre Curie in Paris. Because Pierre admired Marie, Pierre proposed. "
             "Henri Becquerel found rays in Uranium salts, and Warsaw remembered Marie with pride.")
TYPES = ("ENTITY_ENTITY", "ENTITY_EVENT", "EVENT_EVENT", "EMOTIONAL_CONTEXT")


@pytest.fixture
def note(tmp_path):
    path = tmp_path / "note.txt"
    path.write_text("\n\n".join(f"Part {i}. {PARAGRAPH}" for i in range(8)))
    return path


def llm_env(fake: FakeOpenAI, mode: str) -> dict[str, str]:
    # Small chunks, so that the note makes several; concepts off, so every chat request is extraction.
    return {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": fake.url, "KG_EMBEDDING_DIMENSIONS": "64",
            "KG_EXTRACTION_MODE": mode, "KG_CHUNK_TOKENS": "100", "KG_CHUNK_OVERLAP_TOKENS": "10",
            "KG_CONCEPTS": "false", "KG_LLM_BACKOFF_BASE_S": "0.001", "KG_LLM_BACKOFF_MAX_S": "0.01"}


def test_combined_mode_asks_once_per_chunk_for_all_four_types_and_finds_what_per_type_finds(kg, note, fake_openai):
    run = kg("ingest", str(note), "--json", extra_env=llm_env(fake_openai, "combined"))
    assert run.code == 0, run.stderr
    assert "extractor: openai:gpt-4o-mini:combined" in run.stderr
    (report,) = run.json_lines()
    assert report["status"] == "SUCCEEDED" and report["chunks"] >= 3
    assert all(report["triples"][t] > 0 for t in TYPES)
    requests = fake_openai.chat_requests()
    assert [r.triple_type for r in requests] == ["ALL"] * report["chunks"]  # one request per chunk, no other
    schema = requests[0].body["response_format"]["json_schema"]
    assert schema["strict"] is True and set(schema["schema"]["properties"]) == {t.lower() for t in TYPES}
    assert report["llm"]["calls"] == report["chunks"] + len(fake_openai.embedding_requests())
    stored = kg("stats", "--json").json()["triples"]
    assert stored == report["triples"]["total"]

    # The same note in per_type mode: four times the requests, the very same triples (nothing new stored).
    before = len(fake_openai.chat_requests())
    (per_type,) = kg("ingest", str(note), "--json", extra_env=llm_env(fake_openai, "per_type")).json_lines()
    assert len(fake_openai.chat_requests()) - before == 4 * per_type["chunks"]
    assert per_type["triples"] == report["triples"]
    assert kg("stats", "--json").json()["triples"] == stored


def test_a_combined_reply_that_stays_malformed_fails_that_chunk_with_its_four_types_together(kg, note, fake_openai):
    first_chunk = "Part 0."
    fake_openai.on(lambda r: r.triple_type == "ALL" and r.message("user").startswith(first_chunk),
                   Reply(content="Here are the triples you asked for"))
    run = kg("ingest", str(note), "--json", extra_env=llm_env(fake_openai, "combined"))
    assert run.code == 0, run.stderr
    (report,) = run.json_lines()
    assert report["status"] == "PARTIAL" and report["chunks_failed"] == 1 and report["chunks_partial"] == 0
    assert all(report["triples"][t] > 0 for t in TYPES)  # the other chunks' triples are all there
    status = kg("status", report["job_id"], "--json").json()
    (broken,) = [c for c in status["chunks"] if c["status"] != "SUCCEEDED"]
    assert broken["status"] == "FAILED" and broken["index"] == 0
    assert all(t in broken["error"] for t in TYPES)
    # asked twice (a malformed reply is asked for once more), then the chunk's four types failed together
    assert len([r for r in fake_openai.chat_requests() if r.message("user").startswith(first_chunk)]) == 2
