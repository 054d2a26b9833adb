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
    def create_job(self, job_id: str, source: str) -> None:
        """A new job, QUEUED at the PLAN stage."""
        ...

    def start_extraction(self, job_id: str, document_id: str, chunks_total: int) -> None:
        """The plan is made: the job is RUNNING, each chunk PENDING."""
        ...

    def record_chunk(self, job_id: str, chunk: ChunkState, usage: LlmUsage | None = None) -> None:
        """A chunk's outcome; recording the same chunk again replaces it, counters stay exact."""
        ...

    def record_usage(self, job_id: str, stage: Stage, usage: LlmUsage) -> None:
        """A stage's LLM usage (stages after EXTRACT, whose usage comes per chunk); recording it
        again replaces it. The job's total is the chunks' usage plus every stage's."""
        ...

    def set_stage(self, job_id: str, stage: Stage, counts: dict[str, object] | None = None) -> None: ...

    def finish(
        self, job_id: str, status: JobStatus, counts: dict[str, object] | None = None, error: str | None = None
    ) -> None: ...

    def get(self, job_id: str, with_chunks: bool = True) -> JobRecord:
        """Raises NotFound for an unknown job."""
        ...

    def list_jobs(self, limit: int = 20) -> list[JobRecord]: ...
