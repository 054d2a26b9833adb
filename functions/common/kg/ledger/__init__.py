"""The job ledger port: a job's status, stage, progress, per-chunk outcome, counts and cost.

Implemented on PostgreSQL for the local engine; the AWS engine implements it on DynamoDB. Every
write is idempotent (a retried step records the same thing again without counting it twice).
"""

from __future__ import annotations

from typing import Protocol

from kg.models import ChunkState, JobRecord, JobStatus, LlmUsage, Stage

# Where each stage starts on the 0-100 progress scale; extraction fills the span up to STORE.
STAGE_PROGRESS: dict[Stage, int] = {
    Stage.PLAN: 0,
    Stage.EXTRACT: 5,
    Stage.STORE: 85,
    Stage.CONCEPTS: 90,
    Stage.DEDUP: 95,
    Stage.FINALIZE: 99,
}


def extract_progress(done: int, total: int) -> int:
    span = STAGE_PROGRESS[Stage.STORE] - STAGE_PROGRESS[Stage.EXTRACT]
    return STAGE_PROGRESS[Stage.EXTRACT] + (span * done // total if total else span)


class Ledger(Protocol):
    """Status transitions are conditional: a finished job (SUCCEEDED, PARTIAL, FAILED) never changes
    again, except that finishing it again with the same status is a no-op (a retried finalize)."""

    def create_job(self, job_id: str, source: str) -> None:
        """A new job, QUEUED at the PLAN stage; creating it again changes nothing."""
        ...

    def start_extraction(self, job_id: str, document_id: str, chunks_total: int) -> None:
        """The plan is made: the job is RUNNING, each chunk PENDING (chunks already recorded keep their state)."""
        ...

    def record_chunk(self, job_id: str, chunk: ChunkState, usage: LlmUsage | None = None) -> None:
        """A chunk's outcome; recording the same chunk again replaces it, counters stay exact."""
        ...

    def record_usage(self, job_id: str, stage: Stage, usage: LlmUsage, part: str = "") -> None:
        """LLM usage of one unit of a stage's work (stages after EXTRACT, whose usage comes per chunk);
        recording the same (stage, part) again replaces it. The job's total is the chunks' usage
        plus every stage's parts."""
        ...

    def set_stage(self, job_id: str, stage: Stage, counts: dict[str, object] | None = None) -> None:
        """Move a running job to `stage`, merging `counts` into its counts; no effect once finished."""
        ...

    def finish(
        self, job_id: str, status: JobStatus, counts: dict[str, object] | None = None, error: str | None = None
    ) -> bool:
        """End the job; False (and nothing changed) when it had already ended with another status."""
        ...

    def get(self, job_id: str, with_chunks: bool = True) -> JobRecord:
        """Raises NotFound for an unknown job."""
        ...

    def list_jobs(self, limit: int = 20) -> list[JobRecord]:
        """The latest jobs, newest first, without their chunks."""
        ...
