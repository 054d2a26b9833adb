"""The stage contract on a real PostgreSQL: every stage safe to retry (also after a failure injected
after its commit), budgets that stop between units of work, bounded payloads, and a failure in any
stage ending the job FAILED with its error."""

from __future__ import annotations

import uuid

import pytest

from kg.blobs import error_key, get_optional, job_prefix, text_key
from kg.documents import decode_document
from kg.engine.local import ingest, open_local_ports
from kg.providers import dedup_params
from kg.errors import InvalidInput
from kg.models import ChunkStatus, JobStatus
from kg.stages import deduplicate, extract_chunk, fail_chunk, fail_job, finalize, generate_concepts, merge_and_store
from kg.stages.contract import (
    MAX_CHUNKS,
    MAX_ERROR_CHARS,
    MAX_PAYLOAD_BYTES,
    ChunkFailure,
    ChunkTask,
    FailRequest,
    JobOptions,
    StageRequest,
)
from kg.stages.plan import ChunkingParams
from tests.integration.conftest import many_paragraphs
from tests.integration.test_dedup import DISTINCT, LONG, SHORT
from tests.support.extractors import FactsExtractor, ScriptedExtractor
from tests.support.stages import graph_fingerprint, ledger_view, start_job


@pytest.fixture
def fresh_ports(new_database, settings, embedder, conceptualizer):
    """`fresh_ports(extractor)`: ports on a database of their own, to compare two runs of one job."""
    opened = []

    def make(extractor):
        own = settings.model_copy(update={"database_url": new_database()})
        ports = open_local_ports(own, extractor=extractor, embedder=embedder, conceptualizer=conceptualizer)
        opened.append(ports)
        return ports

    yield make
    for ports in opened:
        ports.close()


def _run_stages(ports, settings, text: str, source: str = "doc", calls: int = 1, budget_s: float | None = None):
    """Every stage in the state machine's order, each called `calls` times; returns the job id."""
    job = start_job(ports, settings, text, source, JobOptions(concepts=True, dedup=True))
    for _ in range(calls):
        for i in job.items:
            extract_chunk(ChunkTask(job_id=job.job_id, index=i), ports.extractor, ports.blobs, ports.ledger)
    request = StageRequest(job_id=job.job_id, budget_s=budget_s)
    for stage in (
        lambda: merge_and_store(request, ports.embedder, ports.graph, ports.blobs, ports.ledger, slice_size=7),
        lambda: generate_concepts(request, ports.conceptualizer, ports.embedder, ports.graph, ports.ledger,
                                  ports.blobs, batch_size=3, workers=2),
        lambda: deduplicate(request, ports.graph, ports.ledger, ports.blobs, dedup_params(settings), ports.embedder),
    ):
        for _ in range(calls):
            while stage().state == "more":
                pass
    for _ in range(calls):
        finalize(job.job_id, ports.ledger, ports.blobs)
    return job.job_id


TEXT = "Marie Curie and Pierre Curie worked in Paris; the Royal Swedish Academy took note.\n\n" * 3


def _dedup_world(ports, settings):
    """A graph holding the short form of a fact, so that the job's long form is a near-duplicate."""
    ports.extractor = FactsExtractor([SHORT, *DISTINCT])
    _run_stages(ports, settings, TEXT, "a")
    ports.extractor = FactsExtractor([LONG, *DISTINCT])


def _comparable(view: dict) -> dict:
    return {k: v for k, v in view.items() if k != "llm_by_stage"} | {"stages": sorted(view["llm_by_stage"])}


def test_every_stage_called_twice_leaves_the_graph_and_ledger_of_one_call(fresh_ports, settings):
    once, twice = fresh_ports(None), fresh_ports(None)
    for ports in (once, twice):
        _dedup_world(ports, settings)
    job_once = _run_stages(once, settings, TEXT + "Again.", "b", calls=1)
    job_twice = _run_stages(twice, settings, TEXT + "Again.", "b", calls=2)
    assert graph_fingerprint(twice.db) == graph_fingerprint(once.db)
    view_once, view_twice = ledger_view(once.ledger, job_once), ledger_view(twice.ledger, job_twice)
    assert view_twice == view_once
    assert view_once["status"] is JobStatus.SUCCEEDED
    assert view_once["counts"]["dedup"]["semantic"] == 1 and view_once["counts"]["concepts"]["elements"] > 0


def test_a_retry_after_a_failure_injected_after_each_commit_leaves_the_graph_of_one_call(
    fresh_ports, settings, monkeypatch
):
    """The Lambda dies after the stage's write committed, before it returned: Step Functions calls it
    again. The write is the last graph call of each stage; the ledger's counts are written after it."""
    clean, crashed = fresh_ports(None), fresh_ports(None)
    for ports in (clean, crashed):
        _dedup_world(ports, settings)
    clean_job = _run_stages(clean, settings, TEXT + "Again.", "b")

    ports = crashed
    job = start_job(ports, settings, TEXT + "Again.", "b", JobOptions(concepts=True, dedup=True))
    request = StageRequest(job_id=job.job_id)
    real_set_stage = ports.ledger.set_stage
    crashes = []

    def dies_after_commit(job_id, stage, counts=None):
        if counts and stage not in crashes:  # the stage's closing ledger write, after its graph commit
            crashes.append(stage)
            raise ConnectionError(f"Lambda killed after {stage} committed")
        return real_set_stage(job_id, stage, counts)

    monkeypatch.setattr(ports.ledger, "set_stage", dies_after_commit)
    for i in job.items:
        extract_chunk(ChunkTask(job_id=job.job_id, index=i), ports.extractor, ports.blobs, ports.ledger)
    for stage in (
        lambda: merge_and_store(request, ports.embedder, ports.graph, ports.blobs, ports.ledger, slice_size=7),
        lambda: generate_concepts(request, ports.conceptualizer, ports.embedder, ports.graph, ports.ledger,
                                  ports.blobs, batch_size=3, workers=2),
        lambda: deduplicate(request, ports.graph, ports.ledger, ports.blobs, dedup_params(settings), ports.embedder),
    ):
        with pytest.raises(ConnectionError):
            stage()
        assert stage().state == "done"
    finalize(job.job_id, ports.ledger, ports.blobs)
    assert len(crashes) == 3
    assert graph_fingerprint(crashed.db) == graph_fingerprint(clean.db)
    assert _comparable(ledger_view(crashed.ledger, job.job_id)) == _comparable(ledger_view(clean.ledger, clean_job))


def test_stages_on_a_tiny_budget_return_more_and_end_with_the_same_graph(fresh_ports, settings):
    unlimited, budgeted = fresh_ports(ScriptedExtractor()), fresh_ports(ScriptedExtractor())
    text = many_paragraphs(6)
    job_a = _run_stages(unlimited, settings, text)
    job = start_job(budgeted, settings, text, "doc", JobOptions(concepts=True, dedup=True))
    for i in job.items:
        extract_chunk(ChunkTask(job_id=job.job_id, index=i), budgeted.extractor, budgeted.blobs, budgeted.ledger)
    # An expired budget still does one unit of work per call, so every call moves the job on.
    request = StageRequest(job_id=job.job_id, budget_s=1e-9)
    store_calls = 1
    while merge_and_store(request, budgeted.embedder, budgeted.graph, budgeted.blobs, budgeted.ledger,
                          slice_size=7).state == "more":
        store_calls += 1
    concept_calls = 1
    while generate_concepts(request, budgeted.conceptualizer, budgeted.embedder, budgeted.graph, budgeted.ledger,
                            budgeted.blobs, batch_size=3, workers=2).state == "more":
        concept_calls += 1
    dedup_calls = 1
    while deduplicate(request, budgeted.graph, budgeted.ledger, budgeted.blobs, dedup_params(settings),
                      budgeted.embedder).state == "more":
        dedup_calls += 1
    finalize(job.job_id, budgeted.ledger, budgeted.blobs)
    assert store_calls > 3 and concept_calls > 3 and dedup_calls == 3  # triple pairs, entity pairs, the write
    assert graph_fingerprint(budgeted.db) == graph_fingerprint(unlimited.db)
    assert ledger_view(budgeted.ledger, job.job_id)["counts"] == ledger_view(unlimited.ledger, job_a)["counts"]


@pytest.mark.parametrize("stage", ["plan", "extract_chunk", "merge_and_store", "generate_concepts", "deduplicate",
                                   "finalize"])
def test_a_failure_in_any_stage_ends_the_job_failed_with_its_error(make_ports, settings, monkeypatch, stage):
    import kg.engine.local as engine

    settings.dedup = True
    ports = make_ports()
    real = getattr(engine, stage)

    def broken(*args, **kwargs):
        if stage == "plan":
            real(*args, **kwargs)  # the job exists: the failure comes after plan's own writes
        raise RuntimeError(f"{stage} blew up")

    monkeypatch.setattr(engine, stage, broken)
    report = ingest(decode_document(many_paragraphs(4).encode(), "doc", 10_000_000), ports, settings)
    record = ports.ledger.get(report.job_id)
    assert report.status is JobStatus.FAILED and record.status is JobStatus.FAILED
    if stage == "extract_chunk":  # every chunk failed, so nothing could be stored
        assert "nothing to store" in record.error and f"{stage} blew up" in record.error
        assert all(c.status is ChunkStatus.FAILED for c in record.chunks)
    else:
        assert record.error == f"RuntimeError: {stage} blew up"
    assert get_optional(ports.blobs, text_key(report.job_id)) is None  # the job's intermediates are gone
    assert ports.ledger.list_jobs() and all(j.status.finished for j in ports.ledger.list_jobs())


def test_too_many_chunks_is_refused_before_a_job_exists(make_ports, settings):
    ports = make_ports()
    tiny = ChunkingParams(max_tokens=100, overlap_tokens=0)
    text = " ".join(f"word{i}" for i in range(100 * (MAX_CHUNKS + 5)))
    with pytest.raises(InvalidInput, match="over the limit"):
        start_job(ports, settings, text, chunking=tiny)
    assert ports.ledger.list_jobs() == []


def test_a_document_refused_by_the_local_engine_leaves_no_job_and_no_blob(make_ports, settings):
    ports = make_ports()
    settings.chunk_tokens, settings.chunk_overlap_tokens = 100, 0
    document = decode_document(" ".join(f"w{i}" for i in range(100 * (MAX_CHUNKS + 5))).encode(), "big", 10**8)
    with pytest.raises(InvalidInput):
        ingest(document, ports, settings)
    assert ports.ledger.list_jobs() == []
    assert not (settings.blob_dir / "jobs").exists() or not any((settings.blob_dir / "jobs").iterdir())


def test_payloads_of_a_200_chunk_document_stay_small_and_long_errors_are_kept_whole(make_ports, settings):
    long_error = "the model replied with something unexpected: " + "x" * 20_000
    ports = make_ports(ScriptedExtractor(fail=lambda chunk, t: chunk.index % 50 == 7 and t is None))
    settings.chunk_tokens, settings.chunk_overlap_tokens = 100, 10
    job = start_job(ports, settings, many_paragraphs(60) * 4)
    assert job.chunk_count >= 200
    payloads = [job]
    for i in job.items:
        if i == 3:
            payloads.append(fail_chunk(ChunkFailure(job_id=job.job_id, index=i, error=long_error), ports.blobs,
                                       ports.ledger))
        else:
            payloads.append(extract_chunk(ChunkTask(job_id=job.job_id, index=i), ports.extractor, ports.blobs,
                                          ports.ledger))
    request = StageRequest(job_id=job.job_id, budget_s=600)
    payloads.append(request)
    payloads.append(merge_and_store(request, ports.embedder, ports.graph, ports.blobs, ports.ledger))
    payloads.append(generate_concepts(request, ports.conceptualizer, ports.embedder, ports.graph, ports.ledger,
                                      ports.blobs))
    payloads.append(finalize(job.job_id, ports.ledger, ports.blobs))
    assert max(len(p.model_dump_json()) for p in payloads) < MAX_PAYLOAD_BYTES
    assert payloads[-1].status is JobStatus.PARTIAL

    chunk = ports.ledger.get(job.job_id).chunks[3]
    assert chunk.status is ChunkStatus.FAILED and len(chunk.error) <= MAX_ERROR_CHARS
    assert ports.blobs.get(error_key(job.job_id, "chunk-000003")).decode() == long_error

    failed = fail_job(FailRequest(job_id=str(uuid.uuid4()), error=long_error, source="never planned"),
                      ports.ledger, ports.blobs)
    assert failed.status is JobStatus.FAILED and len(failed.model_dump_json()) < MAX_PAYLOAD_BYTES
    assert ports.blobs.get(error_key(failed.job_id, "job")).decode() == long_error
    assert ports.ledger.get(failed.job_id).source == "never planned"


def test_fail_job_never_changes_a_finished_job_and_finalize_is_idempotent(make_ports, settings):
    ports = make_ports()
    report = ingest(decode_document(many_paragraphs(2).encode(), "doc", 10_000_000), ports, settings)
    assert report.status is JobStatus.SUCCEEDED
    late = fail_job(FailRequest(job_id=report.job_id, error="a late duplicate failure"), ports.ledger, ports.blobs)
    assert late.status is JobStatus.SUCCEEDED and late.error is None
    assert finalize(report.job_id, ports.ledger, ports.blobs).status is JobStatus.SUCCEEDED
    assert get_optional(ports.blobs, job_prefix(report.job_id) + "document.json") is None
