"""The pydantic models that cross every boundary: stages, blob store, ledger, command line, Lambda events."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class TripleType(StrEnum):
    ENTITY_ENTITY = "ENTITY_ENTITY"
    ENTITY_EVENT = "ENTITY_EVENT"
    EVENT_EVENT = "EVENT_EVENT"
    EMOTIONAL_CONTEXT = "EMOTIONAL_CONTEXT"


ALL_TRIPLE_TYPES: tuple[TripleType, ...] = tuple(TripleType)

# What a triple's ends are: an entity (person, place, thing, idea), an event (something that
# happens), or an emotional context (a feeling or attitude attached to an entity or event).
NodeKind = Literal["entity", "event", "emotion"]


class JobStatus(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    # Its LLM requests are with the provider's Batch API (`JobRecord.batch_id`): the provider works
    # on them, for up to a day, while the process polls. Running, for the lease: if the process dies,
    # the lease lapses and the job reads INTERRUPTED; `kg resume` polls the same batch again.
    WAITING = "WAITING"
    # Stopped before its end: its process was told to stop (SIGTERM, Ctrl-C), or died and let its
    # lease lapse. Not finished: `kg resume` continues it (its working blobs are kept until then).
    INTERRUPTED = "INTERRUPTED"
    SUCCEEDED = "SUCCEEDED"
    PARTIAL = "PARTIAL"
    FAILED = "FAILED"

    @property
    def finished(self) -> bool:
        """Final: the job never changes again (INTERRUPTED is not: it can be resumed)."""
        return self in (JobStatus.SUCCEEDED, JobStatus.PARTIAL, JobStatus.FAILED)


class Stage(StrEnum):
    PLAN = "PLAN"
    EXTRACT = "EXTRACT"
    STORE = "STORE"
    CONCEPTS = "CONCEPTS"
    DEDUP = "DEDUP"
    FINALIZE = "FINALIZE"


class ChunkStatus(StrEnum):
    PENDING = "PENDING"
    SUCCEEDED = "SUCCEEDED"
    PARTIAL = "PARTIAL"  # some extraction types failed, the others were kept
    FAILED = "FAILED"


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DocumentInput(Frozen):
    """A validated document, ready to plan."""

    text: str = Field(min_length=1)
    source: str = Field(min_length=1)
    source_type: str = "text"
    source_date: datetime | None = None


class Chunk(Frozen):
    """A slice of a document; `text == document[start_char:end_char]`."""

    document_id: str
    index: int = Field(ge=0)
    text: str
    start_char: int = Field(ge=0)
    end_char: int = Field(ge=0)
    tokens: int = Field(ge=0)

    @property
    def id(self) -> str:
        return f"{self.document_id}:{self.index}"


class Triple(Frozen):
    """One extracted fact, as the extractor saw it in one chunk."""

    type: TripleType
    subject: str = Field(min_length=1)
    predicate: str = Field(min_length=1)
    object: str = Field(min_length=1)
    subject_kind: NodeKind
    object_kind: NodeKind
    confidence: float = Field(ge=0.0, le=1.0)
    chunk_index: int = Field(ge=0)
    # False when an LLM gave an end that does not occur in the chunk and grounding is set to "flag".
    grounded: bool = True

    @field_validator("subject", "predicate", "object")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        value = " ".join(value.split())
        if not value:
            raise ValueError("must not be blank")
        return value

    @property
    def statement(self) -> str:
        return f"{self.subject} {self.predicate} {self.object}"


class LlmUsage(BaseModel):
    """LLM accounting; all zero for the offline extractor."""

    calls: int = 0
    cached: int = 0  # replies served from kg's own LLM cache (no call made)
    input_tokens: int = 0  # prompt tokens the provider billed, the prompt-cached ones included
    # Of input_tokens, those the provider served from its prompt cache (`usage.prompt_tokens_details.
    # cached_tokens`), billed at the model's cached-input rate; 0 for embeddings.
    cached_input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0

    def add(self, other: LlmUsage) -> LlmUsage:
        return LlmUsage(
            calls=self.calls + other.calls,
            cached=self.cached + other.cached,
            input_tokens=self.input_tokens + other.input_tokens,
            cached_input_tokens=self.cached_input_tokens + other.cached_input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cost_usd=round(self.cost_usd + other.cost_usd, 8),
        )

    def since(self, earlier: LlmUsage) -> LlmUsage:
        """What was spent between `earlier` and this running total."""
        return LlmUsage(
            calls=self.calls - earlier.calls,
            cached=self.cached - earlier.cached,
            input_tokens=self.input_tokens - earlier.input_tokens,
            cached_input_tokens=self.cached_input_tokens - earlier.cached_input_tokens,
            output_tokens=self.output_tokens - earlier.output_tokens,
            cost_usd=round(self.cost_usd - earlier.cost_usd, 8),
        )


class ChunkExtraction(BaseModel):
    """What an extractor returns for one chunk: the triples of the types that worked, and why the others failed."""

    triples: list[Triple] = Field(default_factory=list)
    failed_types: dict[TripleType, str] = Field(default_factory=dict)
    dropped: int = 0  # items the extractor discarded as invalid or ungrounded
    ungrounded: int = 0  # triples whose subject or object is not in the chunk (dropped or flagged)
    usage: LlmUsage = Field(default_factory=LlmUsage)


class ChunkResult(BaseModel):
    """The blob an extract step writes for one chunk, and the merge step reads back."""

    job_id: str
    chunk_index: int
    status: ChunkStatus
    triples: list[Triple] = Field(default_factory=list)
    failed_types: dict[TripleType, str] = Field(default_factory=dict)
    error: str | None = None
    dropped: int = 0
    usage: LlmUsage = Field(default_factory=LlmUsage)
    duration_s: float = 0.0


class TripleCounts(BaseModel):
    ENTITY_ENTITY: int = 0
    ENTITY_EVENT: int = 0
    EVENT_EVENT: int = 0
    EMOTIONAL_CONTEXT: int = 0

    @property
    def total(self) -> int:
        return self.ENTITY_ENTITY + self.ENTITY_EVENT + self.EVENT_EVENT + self.EMOTIONAL_CONTEXT

    def as_dict(self) -> dict[str, int]:
        return {**self.model_dump(), "total": self.total}


class EmbeddingCounts(BaseModel):
    computed: int = 0
    reused: int = 0


class ChunkState(BaseModel):
    index: int
    status: ChunkStatus
    error: str | None = None
    triples: int = 0
    attempts: int = 0  # extractions recorded for this chunk (a resumed or retried chunk counts again)


class JobRecord(BaseModel):
    """A job as the ledger knows it: what `kg status` shows."""

    job_id: str
    source: str
    document_id: str | None = None
    status: JobStatus
    stage: Stage
    progress: int = Field(ge=0, le=100)
    chunks_total: int = 0
    chunks_done: int = 0
    chunks_failed: int = 0
    counts: dict[str, object] = Field(default_factory=dict)
    llm: LlmUsage = Field(default_factory=LlmUsage)
    llm_by_stage: dict[str, LlmUsage] = Field(default_factory=dict)  # the same usage, split by stage
    error: str | None = None
    created_at: datetime
    updated_at: datetime
    chunks: list[ChunkState] = Field(default_factory=list)
    # The process that holds the job (local engine), and until when: it renews the lease while it
    # runs. None for a job nobody holds (an AWS job, a finished or interrupted one).
    lease_owner: str | None = None
    lease_until: datetime | None = None
    # The provider's batch (OpenAI Batch API) the job's LLM requests went to last; the job is WAITING
    # while it is being worked on. None for a job that sent no batch.
    batch_id: str | None = None


class IngestReport(BaseModel):
    """What `kg ingest --json` prints for one document."""

    job_id: str
    status: JobStatus
    source: str
    document_id: str | None = None
    extractor: str
    chunks: int = 0
    chunks_failed: int = 0
    chunks_partial: int = 0
    triples: dict[str, int] = Field(default_factory=lambda: TripleCounts().as_dict())
    entities: int = 0
    events: int = 0
    relations: int = 0
    embeddings: EmbeddingCounts = Field(default_factory=EmbeddingCounts)
    llm: LlmUsage = Field(default_factory=LlmUsage)
    tokens: int = 0
    duration_s: float = 0.0
    error: str | None = None
    concepts: ConceptSummary | None = None
    duplicates_removed: int = 0
    dedup: DedupSummary | None = None


ConceptLevel = Literal["high", "medium", "low"]
ElementKind = Literal["entity", "event", "emotion", "relation"]


class ConceptElement(BaseModel):
    """A node or relation to conceptualize, with a little context from the triples it is in."""

    id: str
    kind: ElementKind
    name: str = Field(min_length=1)
    context: list[str] = Field(default_factory=list)  # statements of triples it takes part in
    context_triples: list[str] = Field(default_factory=list)  # and their ids, kept on the concept edges


class ConceptPhrase(BaseModel):
    phrase: str = Field(min_length=1, max_length=80)
    level: ConceptLevel
    confidence: float = Field(ge=0.0, le=1.0)


class ConceptBatch(BaseModel):
    """What a conceptualizer returns: one list of phrases per element, in the order given."""

    concepts: list[list[ConceptPhrase]]
    dropped: int = 0
    usage: LlmUsage = Field(default_factory=LlmUsage)


class ConceptSummary(BaseModel):
    elements: int = 0  # elements the job conceptualized
    concepts_new: int = 0
    edges_new: int = 0
    failed_batches: int = 0


class DedupSummary(BaseModel):
    triples_merged: int = 0  # triples folded into another (exact or semantic)
    exact: int = 0
    semantic: int = 0
    entities_merged: int = 0
    candidate_pairs: int = 0


class DeleteSummary(BaseModel):
    source: str
    document_id: str
    provenance: int = 0
    triples: int = 0
    nodes: int = 0
    relations: int = 0
    concept_edges: int = 0
    concepts: int = 0
    chunks: int = 0


IngestReport.model_rebuild()
