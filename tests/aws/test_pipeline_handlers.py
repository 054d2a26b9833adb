"""The handlers, called in the state machine's order on moto and a real PostgreSQL, build the same
graph as the local engine does from the same document and settings, and the DynamoDB ledger ends the
job at 100 %."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from kg.aws.ports import aws_ports
from kg.documents import decode_document
from kg.engine.local import ingest, open_local_ports
from kg.providers import default_extractor
from kg.models import Chunk, ChunkExtraction, ChunkStatus, JobStatus, TripleType
from kg.settings import Settings
from tests.aws.conftest import api_event, call_api, ledger, many_paragraphs, migrate, submit
from tests.support.handlers import CHUNK_FAILED, EXTRACT_CHUNK, HandlerDriver
from tests.support.stages import graph_fingerprint, ledger_view

SOURCE = "notes/curie.txt"
OPTIONS = {"concepts": True, "dedup": True}


class FailingChunk:
    """The local engine's counterpart of a Map item that failed past its retries."""

    def __init__(self, inner: Any, index: int):
        self.inner, self.index, self.name = inner, index, inner.name

    def extract(self, chunk: Chunk, types: Sequence[TripleType]) -> ChunkExtraction:
        if chunk.index == self.index:
            raise RuntimeError(f"chunk {chunk.index} timed out")
        return self.inner.extract(chunk, types)


def same_graph(aws: dict[str, str], local: dict[str, str]) -> bool:
    """Equal fingerprints, of a graph with triples, provenance and concepts in it."""
    assert all(int(aws[t].split(":")[0]) > 0 for t in ("triples", "triple_provenance", "conceptualizations"))
    return aws == local


def local_engine(text: str, database_url: str, tmp_path, extractor: Any = None, **overrides: Any):
    """The local engine on its own database, with the settings the functions read from the environment."""
    settings = Settings(database_url=database_url, data_dir=tmp_path / "local", concepts=OPTIONS["concepts"],
                        dedup=OPTIONS["dedup"], **overrides)
    ports = open_local_ports(settings, extractor=extractor(settings) if extractor else None)
    report = ingest(decode_document(text.encode(), SOURCE, settings.max_document_bytes), ports, settings)
    return ports, report


def run_handlers(text: str, chunk_failures: dict[int, dict[str, str]] | None = None) -> tuple[dict, HandlerDriver]:
    migrate()
    driver = HandlerDriver()
    return driver.run(submit(text, SOURCE, OPTIONS), chunk_failures), driver


def test_offline_handlers_build_the_local_engines_graph(graph_database, new_database, tmp_path):
    text = many_paragraphs(8)
    state, driver = run_handlers(text)
    assert state["outcome"] == {"job_id": state["job_id"], "status": "SUCCEEDED", "error": None}
    assert len(driver.of(EXTRACT_CHUNK)) == state["chunk_count"] > 1

    local, report = local_engine(text, new_database(), tmp_path)
    try:
        assert report.status is JobStatus.SUCCEEDED
        assert same_graph(graph_fingerprint(aws_ports().db), graph_fingerprint(local.db))
        job = ledger().get(state["job_id"])
        assert (job.status, job.progress) == (JobStatus.SUCCEEDED, 100)
        aws_view, local_view = ledger_view(ledger(), state["job_id"]), ledger_view(local.ledger, report.job_id)
        assert aws_view == local_view
    finally:
        local.close()


def test_the_api_reads_the_finished_job_and_deletes_its_document(graph_database, offline_ports):
    state, _ = run_handlers(many_paragraphs(3))
    status, job = call_api(api_event("GET", f"/jobs/{state['job_id']}", resource="/jobs/{id}",
                                     path_parameters={"id": state["job_id"]}))
    assert status == 200
    assert (job["status"], job["progress"], job["execution"]["status"]) == ("SUCCEEDED", 100, "RUNNING")
    status, stats = call_api(api_event("GET", "/stats"))
    assert status == 200 and stats["documents"] == 1 and stats["triples"] > 0

    path = f"/documents/{quote(SOURCE, safe='')}"
    status, deleted = call_api(api_event("DELETE", path, resource="/documents/{source}",
                                         path_parameters={"source": SOURCE}))
    assert status == 200 and deleted["source"] == SOURCE and deleted["triples"] == stats["triples"]
    assert call_api(api_event("GET", "/stats"))[1]["documents"] == 0
    assert call_api(api_event("DELETE", path, resource="/documents/{source}",
                              path_parameters={"source": SOURCE}))[0] == 404


def test_openai_handlers_build_the_local_engines_graph(graph_database, new_database, fake_openai, tmp_path):
    text = many_paragraphs(8)
    state, _ = run_handlers(text)
    assert state["outcome"]["status"] == "SUCCEEDED"
    aws_requests = len(fake_openai.requests)
    assert fake_openai.chat_requests() and fake_openai.embedding_requests()

    # The provider's prompt cache is the provider's state, not the engine's: each engine starts from a
    # cold one, so that their ledgers (cached input tokens included) compare.
    fake_openai.forget_prompt_cache()
    local, report = local_engine(text, new_database(), tmp_path, openai_api_key="test-key")
    try:
        assert report.status is JobStatus.SUCCEEDED
        # The local engine asked the same questions (its LLM cache is its own database).
        assert len(fake_openai.requests) == 2 * aws_requests
        assert same_graph(graph_fingerprint(aws_ports().db), graph_fingerprint(local.db))
        job = ledger().get(state["job_id"])
        assert (job.status, job.progress) == (JobStatus.SUCCEEDED, 100)
        assert job.llm.calls > 0
        assert ledger_view(ledger(), state["job_id"]) == ledger_view(local.ledger, report.job_id)
    finally:
        local.close()


def test_a_chunk_failed_past_its_retries_leaves_the_job_partial_with_the_local_engines_graph(
        graph_database, new_database, fake_openai, tmp_path):
    text = many_paragraphs(8)
    timeout = {"Error": "States.Timeout", "Cause": "the extract function timed out"}
    state, driver = run_handlers(text, chunk_failures={1: timeout})
    assert [c.event["index"] for c in driver.of(CHUNK_FAILED)] == [1]
    assert state["outcome"]["status"] == "PARTIAL"
    assert "chunk 1: States.Timeout: the extract function timed out" in state["outcome"]["error"]

    local, report = local_engine(text, new_database(), tmp_path, openai_api_key="test-key",
                                 extractor=lambda settings: FailingChunk(default_extractor(settings), 1))
    try:
        assert report.status is JobStatus.PARTIAL
        assert same_graph(graph_fingerprint(aws_ports().db), graph_fingerprint(local.db))
        job = ledger().get(state["job_id"])
        assert (job.status, job.progress, job.chunks_failed) == (JobStatus.PARTIAL, 100, 1)
        assert job.chunks[1].status is ChunkStatus.FAILED
        assert job.chunks[1].error == "States.Timeout: the extract function timed out"
        assert [c.status for c in job.chunks] == [c.status for c in local.ledger.get(report.job_id).chunks]
    finally:
        local.close()


def test_the_options_skip_concepts_and_dedup(graph_database, offline_ports):
    migrate()
    driver = HandlerDriver()
    state = driver.run(submit(many_paragraphs(2), SOURCE, {"concepts": False, "dedup": False}))
    assert state["outcome"]["status"] == "SUCCEEDED"
    assert "concepts" not in state and "dedup" not in state
    assert {c.handler_file for c in driver.calls}.isdisjoint({"concepts/handler.py", "dedup/handler.py"})
