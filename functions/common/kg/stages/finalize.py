"""Finalize and fail_job: the only two places a job ends, whichever engine runs it.

finalize reads the job's ledger record and decides: SUCCEEDED when every chunk and every batch went
through; PARTIAL when the graph holds the document but some chunks, triple types or concept batches
failed (the error says which); FAILED when nothing was stored. fail_job is what an engine calls on
any unhandled error: the job ends FAILED with that error, whatever state it was in.

Both are safe to retry: a finished job is never changed again, and a second call returns the outcome
recorded by the first. An INTERRUPTED job is not finished: fail_job ends it (a resume that cannot go
on), as it ends a QUEUED or RUNNING one.

The job's working blobs (`jobs/<id>/`: its text, chunks, chunk results, what the stages keep between
calls) go when it ends, here; while it is INTERRUPTED they stay, since resuming it needs
them. Whole error texts (`errors/<id>/`) stay after the end.
"""

from __future__ import annotations

from kg.blobs import BlobStore, error_key, job_prefix
from kg.errors import NotFound
from kg.ledger import Ledger
from kg.models import ChunkStatus, JobRecord, JobStatus, Stage
from kg.stages.contract import FailRequest, JobOutcome, bounded


def finalize(job_id: str, ledger: Ledger, blobs: BlobStore) -> JobOutcome:
    record = ledger.get(job_id, with_chunks=True)
    if record.status.finished:
        return _outcome(record)
    ledger.set_stage(job_id, Stage.FINALIZE)
    status, error = job_status(record)
    _end(ledger, blobs, job_id, status, error)
    return _outcome(ledger.get(job_id, with_chunks=False))


def job_status(record: JobRecord) -> tuple[JobStatus, str | None]:
    """The rules, from what the ledger holds of a job whose stages have run."""
    if "triples" not in record.counts:
        return JobStatus.FAILED, "nothing was stored: merge-and-store did not finish"
    failed = sum(c.status in (ChunkStatus.FAILED, ChunkStatus.PENDING) for c in record.chunks)
    partial = sum(c.status is ChunkStatus.PARTIAL for c in record.chunks)
    concepts = record.counts.get("concepts")
    failed_batches = concepts.get("failed_batches", 0) if isinstance(concepts, dict) else 0
    problems = []
    if failed:
        first = next(c for c in record.chunks if c.status in (ChunkStatus.FAILED, ChunkStatus.PENDING))
        problems.append(f"{failed} of {record.chunks_total} chunks failed (chunk {first.index}: {first.error})")
    if partial:
        problems.append(f"{partial} chunks lost some triple types")
    if failed_batches:
        problems.append(f"concepts: {failed_batches} batches failed; their elements wait for the next run")
    if problems:
        return JobStatus.PARTIAL, "; ".join(problems)
    return JobStatus.SUCCEEDED, None


def fail_job(request: FailRequest, ledger: Ledger, blobs: BlobStore) -> JobOutcome:
    try:
        ledger.get(request.job_id, with_chunks=False)
    except NotFound:
        # The failure came before plan opened the job (the document could not even be read).
        ledger.create_job(request.job_id, request.source or "(unknown source)")
    _end(ledger, blobs, request.job_id, JobStatus.FAILED, request.error)
    return _outcome(ledger.get(request.job_id, with_chunks=False))


def _end(ledger: Ledger, blobs: BlobStore, job_id: str, status: JobStatus, error: str | None) -> None:
    short = bounded(error) if error else None
    if error and short != error.strip():
        blobs.put(error_key(job_id, "job"), error.encode())
    ledger.finish(job_id, status, None, short)  # False: it had already ended, and that outcome stands
    # What the stages kept between calls is not needed once the job has ended.
    blobs.delete_prefix(job_prefix(job_id))


def _outcome(record: JobRecord) -> JobOutcome:
    return JobOutcome(job_id=record.job_id, status=record.status, error=record.error)
