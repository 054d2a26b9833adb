"""The stage contract: what each stage takes and returns, the same for every engine.

These are the payloads that travel between Step Functions states (and between the local engine's
steps): job ids, chunk indexes, small counts and bounded messages. Text, triples and vectors stay in
the blob store and the graph. Every model here stays under 8 KB of JSON whatever the document size
(`MAX_PAYLOAD_BYTES`; a plan has at most `MAX_CHUNKS` items).
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from kg.models import ChunkStatus, JobStatus, Stage

MAX_PAYLOAD_BYTES = 8 * 1024
# A plan's items are chunk indexes: 1,000 of them are about 4 KB of JSON. With the default chunk of
# 3,000 tokens that is about 12 MB of text, more than the largest document accepted.
MAX_CHUNKS = 1000
# Errors in payloads and the ledger are cut to this many characters; the whole text is in the blob store.
MAX_ERROR_CHARS = 500


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid")


class JobOptions(Payload):
    concepts: bool = True
    dedup: bool = False
    # Send the job's extraction and concept requests through the provider's Batch API (half the
    # price, answered within a day) before the stages run; what it does not answer goes the normal way.
    llm_batch: bool = False

    @model_serializer(mode="wrap")
    def _without_batch_when_off(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Left out while off, so that the options of a job without it are what they were before it
        # existed: the same state machine input, and the same job id (kg.aws.jobs.JobKey) for a submission.
        data = handler(self)
        if not self.llm_batch:
            data.pop("llm_batch", None)
        return data


class PlanRequest(Payload):
    """Start a job: the document's text is already in the blob store under `text_key`."""

    job_id: str
    source: str = Field(min_length=1)
    source_type: str = "text"
    source_date: datetime | None = None
    text_key: str
    options: JobOptions = Field(default_factory=JobOptions)


class JobPlan(Payload):
    """What `plan` returns: the Map's items (chunk indexes) and what later states branch on."""

    job_id: str
    document_id: str
    source: str
    chunk_count: int
    tokens: int
    content_hash: str
    options: JobOptions
    items: list[int]


class ChunkTask(Payload):
    """One Map item: extract chunk `index` of job `job_id`."""

    job_id: str
    index: int = Field(ge=0)


class ChunkRef(Payload):
    """What `extract_chunk` returns; the triples themselves are in the blob store."""

    job_id: str
    index: int
    status: ChunkStatus
    triples: int = 0
    error: str | None = Field(default=None, max_length=MAX_ERROR_CHARS)


class ChunkFailure(Payload):
    """A Map item that failed past its retries (the Map's Catch): recorded so the Map goes on."""

    job_id: str
    index: int = Field(ge=0)
    error: str


class StageRequest(Payload):
    """Merge-and-store, concepts and dedup: the job, and how long this call may work."""

    job_id: str
    budget_s: float | None = Field(default=None, gt=0)  # None: no limit (the local engine)


class StageProgress(Payload):
    """`more`: call the stage again with the same request to continue; nothing done is redone."""

    job_id: str
    stage: Stage
    state: Literal["done", "more"]
    counts: dict[str, int] = Field(default_factory=dict)


class FailRequest(Payload):
    """What any engine sends `fail_job` on an unhandled error (the whole text: fail_job bounds it).
    `source` names the document when the job may not exist yet (plan failed before creating it)."""

    job_id: str
    error: str
    source: str | None = None


class JobOutcome(Payload):
    job_id: str
    status: JobStatus
    error: str | None = Field(default=None, max_length=MAX_ERROR_CHARS)


def bounded(message: str, limit: int = MAX_ERROR_CHARS) -> str:
    """A message cut to `limit` characters, saying that it was cut."""
    message = message.strip()
    if len(message) <= limit:
        return message
    marker = " … [cut; the whole text is in the blob store]"
    return message[: limit - len(marker)] + marker


class Budget:
    """How long a stage call may go on: it stops between units of work once this runs out."""

    def __init__(self, seconds: float | None = None):
        self.deadline = None if seconds is None else time.monotonic() + seconds

    @classmethod
    def of(cls, request: StageRequest) -> Budget:
        return cls(request.budget_s)

    def expired(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def remaining(self) -> float | None:
        return None if self.deadline is None else max(0.0, self.deadline - time.monotonic())
