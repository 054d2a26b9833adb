"""The job ledger port: a job's status, stage, progress, per-chunk outcome, counts and cost.

Implemented on PostgreSQL for the local engine; the AWS engine implements it on DynamoDB. Every
write is idempotent (a retried step records the same thing again without counting it twice).

Leases: a job run by a process of the local engine is held by it (a `Lease`: its owner and a length)
from the moment it is created; the process renews it while it runs. A QUEUED or RUNNING job whose
lease has lapsed reads INTERRUPTED (its process died), as does one its process stopped on a signal
(`interrupt`); `take_over` is how `kg resume` continues it, atomically, so that of two resumes one
wins. The AWS engine's jobs have no lease (Step Functions ends them): they never read INTERRUPTED.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

from pydantic import BaseModel, Field

from kg.errors import InvalidInput, KgError
from kg.models import ChunkState, JobRecord, JobStatus, LlmUsage, Stage


class Lease(BaseModel):
    """Who holds a job, and for how long each grant (or renewal) lasts."""

    owner: str = Field(min_length=1)
    seconds: float = Field(gt=0)


class LeaseHeld(KgError):
    """The job is held by another process's live lease: it is running (or being resumed) elsewhere."""


class LeaseLost(KgError):
    """The process's lease on its job was taken over (its renewals had stopped long enough for the
    lease to lapse, and `kg resume` took the job): it must leave the job to its new owner."""

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
    again, except that finishing it again with the same status is a no-op (a retried finalize). An
    INTERRUPTED job takes no stage or plan writes until it is taken over; it can still be finished."""

    def create_job(self, job_id: str, source: str, lease: Lease | None = None) -> None:
        """A new job, QUEUED at the PLAN stage; creating it again changes nothing. With `lease`, the
        job is held by `lease.owner` from its creation; a job there already (opened QUEUED by `kg
        serve` before it runs) is taken unless another owner's lease on it is live (LeaseHeld)."""
        ...

    def renew_lease(self, job_id: str, lease: Lease) -> bool:
        """Extend the owner's lease by `lease.seconds` from now; False (nothing changed) when the job is
        no longer the owner's to run: another owner took it over, or it has ended or was interrupted."""
        ...

    def take_over(self, job_id: str, lease: Lease) -> JobRecord:
        """Resume: an INTERRUPTED job (or a QUEUED or RUNNING one whose lease has lapsed) becomes RUNNING
        under `lease`, its error cleared, in one conditional write. LeaseHeld when another owner's lease
        is live; InvalidInput when the job has ended, or has no lease (nobody here runs it); NotFound."""
        ...

    def interrupt(self, job_id: str, owner: str, error: str) -> bool:
        """The owner stops its QUEUED or RUNNING job before its end (SIGTERM, Ctrl-C): INTERRUPTED with
        `error`, its lease released. False (nothing changed) when the job is another owner's or not
        running any more."""
        ...

    def latest_job(self, source: str) -> JobRecord | None:
        """The newest job of `source`, without its chunks; None when there is none."""
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

    def wait_for_batch(self, job_id: str, batch_id: str | None) -> None:
        """With `batch_id`: the running job is WAITING on that provider batch (kept as its `batch_id`).
        With None: it runs again (RUNNING; the last batch id stays on the record). No effect once the
        job has ended or was interrupted."""
        ...

    def set_stage(self, job_id: str, stage: Stage, counts: dict[str, object] | None = None) -> None:
        """Move a running job to `stage`, merging `counts` into its counts; no effect once finished."""
        ...

    def finish(
        self, job_id: str, status: JobStatus, counts: dict[str, object] | None = None, error: str | None = None
    ) -> bool:
        """End the job (its lease released); False (and nothing changed) when it had already ended
        with another status."""
        ...

    def get(self, job_id: str, with_chunks: bool = True) -> JobRecord:
        """Raises NotFound for an unknown job. A QUEUED or RUNNING job whose lease has lapsed reads
        INTERRUPTED (here and in list_jobs and latest_job)."""
        ...

    def list_jobs(self, limit: int = 20) -> list[JobRecord]:
        """The latest jobs, newest first, without their chunks."""
        ...


def when(moment: datetime | None) -> str:
    """A lease's end as a message shows it."""
    return moment.astimezone(UTC).isoformat(timespec="seconds") if moment else "?"


def check_resumable(job_id: str, status: JobStatus, owner: str | None, until: datetime | None,
                     lapsed: bool | None) -> None:
    """Why `take_over` refuses a job, if it does: the same rules in every ledger. `lapsed`: its lease
    has run out (None: it has none)."""
    if status.finished:
        raise InvalidInput(f"job {job_id} has ended {status.value}: there is nothing to resume")
    if status is JobStatus.INTERRUPTED:
        return
    if owner is None:
        raise InvalidInput(f"job {job_id} is {status.value} and held by no process here (an AWS job, or one "
                           "kg serve has queued): it cannot be resumed")
    if not lapsed:
        raise LeaseHeld(f"job {job_id} is running: {owner} holds it until {when(until)} (a resume may have "
                        "taken it); it can be resumed once it is INTERRUPTED")
