"""The Postgres job ledger: counters that a retried step cannot inflate, progress, lookups."""

from __future__ import annotations

import uuid

import pytest

from kg.errors import NotFound
from kg.models import ChunkState, ChunkStatus, JobStatus, LlmUsage, Stage


@pytest.fixture
def ledger(make_ports):
    return make_ports().ledger


def test_a_new_job_is_queued_then_running_with_pending_chunks(ledger):
    job_id = str(uuid.uuid4())
    ledger.create_job(job_id, "a.txt")
    assert ledger.get(job_id).status is JobStatus.QUEUED
    ledger.start_extraction(job_id, str(uuid.uuid4()), 3)
    job = ledger.get(job_id)
    assert job.status is JobStatus.RUNNING and job.stage is Stage.EXTRACT
    assert [c.status for c in job.chunks] == [ChunkStatus.PENDING] * 3


def test_recording_a_chunk_twice_counts_it_once(ledger):
    job_id = str(uuid.uuid4())
    ledger.create_job(job_id, "a.txt")
    ledger.start_extraction(job_id, str(uuid.uuid4()), 4)
    usage = LlmUsage(calls=4, input_tokens=100, output_tokens=10, cost_usd=0.001)
    for _ in range(2):
        ledger.record_chunk(job_id, ChunkState(index=0, status=ChunkStatus.SUCCEEDED, triples=5), usage)
        ledger.record_chunk(job_id, ChunkState(index=1, status=ChunkStatus.FAILED, error="boom"), usage)
    job = ledger.get(job_id)
    assert (job.chunks_done, job.chunks_failed) == (2, 1)
    assert job.llm.calls == 8 and job.llm.input_tokens == 200
    assert job.progress == 5 + 80 * 2 // 4
    assert job.chunks[1].error == "boom"


def test_finish_sets_status_progress_and_counts(ledger):
    job_id = str(uuid.uuid4())
    ledger.create_job(job_id, "a.txt")
    ledger.set_stage(job_id, Stage.STORE, {"new_rows": 3})
    assert ledger.finish(job_id, JobStatus.PARTIAL, {"triples": {"total": 7}}, "chunk 2 failed") is True
    job = ledger.get(job_id)
    assert (job.status, job.progress, job.error) == (JobStatus.PARTIAL, 100, "chunk 2 failed")
    assert job.counts == {"new_rows": 3, "triples": {"total": 7}}
    assert [j.job_id for j in ledger.list_jobs()] == [job_id]


@pytest.mark.parametrize("job_id", [str(uuid.uuid4()), "not-a-uuid"])
def test_an_unknown_job_is_not_found(ledger, job_id):
    with pytest.raises(NotFound):
        ledger.get(job_id)
