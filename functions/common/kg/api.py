"""The REST API, whatever runs the pipeline: the routes, the models they validate and answer with,
and the errors mapped once. API Gateway serves it through a Lambda (kg.aws.api: the AWS backend),
and `kg serve` on a laptop (kg.serve: the local backend), so the two cannot drift apart; the routes
reach the pipeline only through an `ApiBackend`. docs/openapi.json is its OpenAPI document as the
stack deploys it (`python -m kg.aws.api > docs/openapi.json` writes it again; a test checks it is current).

    POST   /jobs               {source, text | text_key, source_type?, source_date?, options?, rerun?}
                               -> 202 {job_id, status_url, status, started}
    GET    /jobs?limit=20      the latest jobs, newest first
    GET    /jobs/{id}          one job: status, stage, progress, counts, chunks, LLM tokens and cost,
                               error, and its execution (AWS: status, Step Functions console URL)
    GET    /stats              totals of the graph
    DELETE /documents/{source} a document's contribution to the graph (the source URL-encoded: a%2Fb.txt)
    GET    /documents          the stored documents: type, date, chunks, triples, the job that wrote them
    GET    /triples/{id}       one triple: its confidence and every source, with the span that supports it
    GET    /nodes/{id}         one node: its aliases, concepts and facts (its triples)
    GET    /overview           the graph's totals and the concepts covering most elements, per level
    GET|POST /search           fusion search (kg.search.SearchRequest -> SearchResponse)
    GET|POST /concepts         concept search (ConceptRequest -> ConceptResponse)
    GET|POST /neighbors        a node's neighbourhood (NeighborsRequest -> NeighborsResponse)

The query routes take their request as query parameters (GET; the fusion weights as
`weight_entity`, ...) or as a JSON body (POST), and validate it with the same model as the `kg`
commands and the MCP tools.

Submitting is idempotent (kg.aws.jobs): the job id is derived from the source, the content's hash,
its type and date and the options. The same submission again answers 202 with the same job, its
current status, and `started: false`; it starts nothing. The answer is the same 202 either way, so
that a client retrying a request it lost the answer to reads it as it would have read the first;
`started` tells the two apart. `rerun: true` starts a new attempt once the latest one has ended
(after deleting the document, or to retry a FAILED or PARTIAL job).

Every request is checked whole before anything is written: a refused one leaves no blob, no job
and no execution. Errors map once, here, to `{"error": "<what is wrong>"}`: a request the models
refuse, or InvalidInput, 400; a body that is not JSON 415; NotFound 404; the database, a provider
or an AWS service out of reach (or a store built for another embedding model) 503. Nothing a
caller sends is answered 500.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Annotated, Any, Protocol
from urllib.parse import unquote

from aws_lambda_powertools.event_handler import (
    APIGatewayRestResolver,
    Response,
    content_types,
)
from aws_lambda_powertools.event_handler.exceptions import NotFoundError, ServiceError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
    ResponseValidationError,
)
from aws_lambda_powertools.event_handler.openapi.models import Server
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kg.embeddings import Embedder
from kg.errors import InvalidInput, NotFound, ProviderUnavailable, StoreError
from kg.graph import DeleteSummary, GraphStats, GraphStore
from kg.models import ChunkState, ChunkStatus, JobRecord, JobStatus, LlmUsage, Stage, TripleType
from kg.search import (
    ConceptRequest,
    ConceptResponse,
    NeighborsRequest,
    NeighborsResponse,
    NeighborTriple,
    SearchRequest,
    SearchResponse,
    SourceSpan,
    neighbors,
    parse_request,
    search,
    search_concepts,
    supporting_span,
)

log = logging.getLogger(__name__)

API_TITLE = "kg: knowledge-graph ingestion"
API_VERSION = "1"  # the stage's name is v1 (infra/stack.py)
API_DESCRIPTION = (
    "Documents in, a knowledge graph out. `POST /jobs` starts a document's job: a Step Functions "
    "execution named by the job id. Submitting is idempotent: the same source, content, type, date and "
    "options are one job, so the same submission again answers 202 with that job and `started: false`, "
    "and starts nothing (`rerun: true` starts a new attempt once the latest has ended). `GET /jobs/{id}` "
    "follows the job, with a link to its execution in the Step Functions console. `/search`, `/concepts` "
    "and `/neighbors` query the graph (GET with query parameters, or POST with a JSON body). Errors answer "
    "`{\"error\": \"<what is wrong>\"}`: 400 for a request that cannot be used (nothing is written), "
    "404 for an unknown job or document, 415 for a body that is not JSON, 503 when the database or an "
    "AWS service is out of reach."
)
API_DESCRIPTION_LOCAL = (
    "The knowledge-graph API of `kg serve`: the same routes and payloads as the stack's API Gateway API "
    "(docs/openapi.json), on the local engine. `POST /jobs` runs the document's job in the background "
    "and answers 202 at once; `GET /jobs/{id}` follows it. Submitting is idempotent, as on AWS. "
    "`/search`, `/concepts` and `/neighbors` query the graph (GET with query parameters, or POST with a "
    "JSON body). Errors answer `{\"error\": \"<what is wrong>\"}`: 400 for a request that cannot be used, "
    "404 for an unknown job or document, 415 for a body that is not JSON, 503 when the database is out of reach."
)
# Where the pipeline keeps its own objects (kg.blobs, kg.llm.cache_s3): never a document to submit.
_INTERNAL_PREFIXES = ("jobs/", "errors/", "llm-cache/")
DEFAULT_LIST, MAX_LIST = 20, 100
DEFAULT_DOCUMENTS, MAX_DOCUMENTS = 100, 1000
MAX_TRIPLE_SOURCES = 100  # GET /triples/{id}: the supporting chunks listed (source_count counts them all)
DEFAULT_FACTS, MAX_FACTS = 100, 500  # GET /nodes/{id}: the node's triples listed
DEFAULT_TOP, MAX_TOP = 10, 50  # GET /overview: concepts per level
MAX_SOURCE_CHARS = 1024
NUL_NAME = "a name cannot contain a NUL character"
NO_BODY = "the request has no body: send a JSON object with `source` and `text` (or `text_key`)"

# A response that shows a bug of ours is a 500; Powertools would otherwise answer it 422, as if the
# caller had sent something wrong.
app = APIGatewayRestResolver(enable_validation=True, response_validation_error_http_code=HTTPStatus.INTERNAL_SERVER_ERROR)


# -- the models: what the resolver validates, and what docs/openapi.json shows ---------------------


class ApiError(BaseModel):
    error: str = Field(description="What is wrong, in words the caller can act on")


class OptionsIn(BaseModel):
    """What the request may choose; what it leaves out comes from the stack's settings (KG_CONCEPTS, KG_DEDUP)."""

    model_config = ConfigDict(extra="forbid")

    concepts: bool | None = Field(default=None, description="Generate concepts for the new elements")
    dedup: bool | None = Field(default=None, description="Deduplicate the graph after storing")
    llm_batch: bool | None = Field(default=None, description=(
        "Send the job's LLM requests through the OpenAI Batch API (half the price, answered within 24 h; the "
        "job is WAITING meanwhile, `batch_id` naming the batch); refused (400) where the LLM is offline"))


class JobSubmission(BaseModel):
    """A document to ingest: its text, or the key of an object of the pipeline's bucket."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"source": "notes/curie.txt", "text": "Marie Curie worked in Paris with Pierre Curie.",
         "source_date": "1903-06-25", "options": {"dedup": True}},
        {"source": "reports/2024.txt", "text_key": "uploads/reports/2024.txt"},
    ]})

    source: str = Field(min_length=1, max_length=MAX_SOURCE_CHARS,
                        description="The document's name in the graph; DELETE /documents/{source} removes it")
    text: str | None = Field(default=None, min_length=1, description=(
        "The document, as UTF-8 text of at most KG_MAX_DOCUMENT_BYTES bytes (a request to the API carries at "
        "most 6 MB: a larger document goes to the bucket first, and by `text_key`)"))
    text_key: str | None = Field(default=None, min_length=1, max_length=1024, description=(
        "Instead of `text`: the key of the document in the pipeline's bucket, read where it lies"))
    source_type: str = Field(default="text", min_length=1, max_length=64)
    source_date: datetime | None = Field(default=None, description=(
        "When the document was written: an ISO 8601 date or date-time (UTC when it has no zone)"))
    options: OptionsIn = Field(default_factory=OptionsIn)
    rerun: bool = Field(default=False, description=(
        "Run it again even though the same submission has run already: a new job starts unless the "
        "latest one for it is still queued or running"))

    @field_validator("source")
    @classmethod
    def _named(cls, source: str) -> str:
        if not source.strip():
            raise ValueError("the source name is empty")
        return source

    @field_validator("source", "text_key", "source_type")
    @classmethod
    def _no_nul(cls, value: str | None) -> str | None:
        if value is not None and "\x00" in value:
            raise ValueError(NUL_NAME)  # PostgreSQL's text, and S3's keys, cannot hold one
        return value

    @field_validator("source_date")
    @classmethod
    def _in_utc(cls, moment: datetime | None) -> datetime | None:
        return (moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)) if moment else None

    @model_validator(mode="after")
    def _one_document(self) -> JobSubmission:
        if (self.text is None) == (self.text_key is None):
            raise ValueError("give the document as `text`, or as `text_key` (a key of the bucket), not both")
        if self.text_key is not None and self.text_key.startswith(_INTERNAL_PREFIXES):
            raise ValueError(f"text_key {self.text_key!r}: the pipeline's own objects cannot be submitted")
        return self


class JobAccepted(BaseModel):
    job_id: str = Field(description="The job's id, which is also its execution's name")
    status_url: str = Field(description="GET it for the job's status: a path relative to the API's base URL "
                                        "(the stack's ApiUrl output, which ends with the stage)")
    status: JobStatus = Field(description="QUEUED for a new job; the current status of one there already")
    started: bool = Field(description="True when this request started the job; False when the same submission "
                                      "had started it before")


class ExecutionView(BaseModel):
    arn: str
    status: str | None = Field(description="RUNNING, SUCCEEDED, FAILED, TIMED_OUT or ABORTED; "
                                           "null when Step Functions could not be asked just now")
    console_url: str = Field(description="The execution in the Step Functions console")


class JobSummary(BaseModel):
    """A job as the ledger holds it. Its LLM usage (`llm`) is its tokens and their cost in USD."""

    job_id: str
    source: str
    document_id: str | None = None
    status: JobStatus
    stage: Stage
    progress: int = Field(ge=0, le=100)
    chunks_total: int
    chunks_done: int
    chunks_failed: int
    counts: dict[str, Any] = Field(description="What the stages stored: triples by type, entities, events, "
                                               "relations, embeddings, concepts, merges")
    llm: LlmUsage
    llm_by_stage: dict[str, LlmUsage]
    error: str | None = None
    created_at: datetime
    updated_at: datetime
    batch_id: str | None = Field(default=None, description=(
        "The OpenAI batch the job's LLM requests went to last (batch mode); the job is WAITING while it runs"))

    @classmethod
    def of(cls, record: JobRecord, **extra: Any) -> Any:
        return cls.model_validate({**record.model_dump(exclude={"chunks"}), **extra})


class JobView(JobSummary):
    failed_chunks: list[ChunkState] = Field(description="The chunks that failed, or lost some triple types")
    chunks: list[ChunkState] = Field(default_factory=list, description=(
        "Every chunk the ledger has recorded, by index: its status, triples and error (the per-chunk ledger)"))
    execution: ExecutionView | None = Field(description="The job's Step Functions execution; null when none "
                                                        "was started (a document refused on upload)")


class JobList(BaseModel):
    jobs: list[JobSummary]


class DocumentView(BaseModel):
    document_id: str
    source: str = Field(description="DELETE /documents/{source} removes it")
    source_type: str
    source_date: datetime | None
    chars: int
    tokens: int
    chunks: int
    triples: int = Field(description="The triples it supports (other documents may support them too)")
    job_id: str = Field(description="The job that wrote its current version (GET /jobs/{id})")
    created_at: datetime
    updated_at: datetime


class DocumentList(BaseModel):
    documents: list[DocumentView] = Field(description="The most recently written first")


class TripleSource(SourceSpan):
    """A chunk that supports the triple: the span that says so (`start`/`end`, offsets into the
    document, and `text`), and the whole chunk around it (`chunk_text`, from `chunk_start`)."""

    chunk_start: int = Field(description="The chunk's offset in the document: the span is "
                                         "chunk_text[start - chunk_start : end - chunk_start]")
    chunk_text: str


class TripleView(BaseModel):
    id: str
    type: TripleType
    subject: str
    predicate: str
    object: str
    confidence: float
    source_count: int = Field(description="Chunks supporting the triple (sources lists at most 100)")
    sources: list[TripleSource] = Field(description="The most recent documents first")


class ConceptRef(BaseModel):
    level: str
    name: str


class NodeView(BaseModel):
    id: str
    kind: str = Field(description="entity, event or emotion")
    name: str
    aliases: list[str] = Field(description="Other names it absorbed (deduplication)")
    concepts: list[ConceptRef]
    triples: list[NeighborTriple] = Field(description="Its facts: the triples it is the subject or object of, "
                                                      "most confident first")
    truncated: bool = Field(description="The limit cut its facts short")


class ConceptCountView(BaseModel):
    id: str
    name: str
    level: str
    elements: int = Field(description="The nodes and relations it covers")


class Overview(BaseModel):
    stats: GraphStats
    top_concepts: dict[str, list[ConceptCountView]] = Field(description=(
        "By level (high, medium, low): the concepts covering the most elements first"))


class Submitted(BaseModel):
    """The job a submission ended at; `started` is False when it was there already."""

    job_id: str
    source: str
    status: JobStatus
    started: bool


class ApiBackend(Protocol):
    """What the routes need of an engine: jobs in and their records, the graph and the embedder its
    queries are embedded with. kg.aws.api.AwsBackend (S3, DynamoDB, Step Functions, Aurora) and
    kg.serve.LocalBackend (the local engine, jobs in a thread pool) implement it."""

    def submit(self, submission: JobSubmission) -> Submitted:
        """The submission's job: started now, or the one the same submission started before.
        Raises InvalidInput, with nothing written, for a document the pipeline would refuse."""
        ...

    def get_job(self, job_id: str) -> JobRecord: ...  # with its chunks; NotFound when there is none

    def execution(self, job_id: str) -> ExecutionView | None: ...  # None: the engine has no executions

    def list_jobs(self, limit: int) -> list[JobRecord]: ...

    @property
    def graph(self) -> GraphStore: ...

    @property
    def embedder(self) -> Embedder: ...


_ERROR_DESCRIPTIONS = {
    400: "The request is unusable (the reason says why); nothing was written",
    404: "No such job, document, node or route",
    415: "The body is not JSON",
    503: "The database, a provider or an AWS service is out of reach; try again shortly",
}


def _responses(status: int, description: str, *errors: int) -> dict[int, Any]:
    """The OpenAPI responses of a route: its own (its schema from the return type), and its errors."""
    content = {content_types.APPLICATION_JSON: {"model": ApiError}}
    return {status: {"description": description},
            **{code: {"description": _ERROR_DESCRIPTIONS[code], "content": content} for code in errors}}


# -- the backend of the request being answered ------------------------------------------------------


def backend() -> ApiBackend:
    """The backend `handle` was given for this request."""
    return app.context["backend"]


def handle(event: dict[str, Any], context: Any, api_backend: ApiBackend) -> dict[str, Any]:
    """The Lambda proxy answer to one request, from `api_backend`. A body is JSON or nothing: the
    resolver would try to parse a form or a multipart body, and fail on some with an error of its own
    (a 500). The resolver keeps the request being answered in class state: one request at a time
    (a Lambda serves one; kg.serve holds a lock)."""
    request = APIGatewayProxyEvent(event)
    content_type = (request.headers.get("content-type") or "").strip().lower()
    if request.body and content_type and not content_type.startswith(content_types.APPLICATION_JSON):
        body = {"error": f"the body is {content_type.split(';')[0]}: send JSON (Content-Type: application/json)"}
        return {"statusCode": HTTPStatus.UNSUPPORTED_MEDIA_TYPE.value, "body": json.dumps(body),
                "headers": {"Content-Type": content_types.APPLICATION_JSON}, "isBase64Encoded": False}
    app.append_context(backend=api_backend)
    return app.resolve(event, context)


# -- the routes ------------------------------------------------------------------------------------


@app.post("/jobs", status_code=202, operation_id="submitJob", tags=["jobs"], summary="Submit a document",
          description="Starts the document's job, or answers with the job the same submission started before "
                      "(`started` false): one job per submission.",
          responses=_responses(202, "The job (started, or there already)", 400, 415, 503))
def submit_job(submission: Annotated[JobSubmission, Body()]) -> Response[JobAccepted]:
    job = backend().submit(submission)
    status_url = f"/jobs/{job.job_id}"
    return Response(
        status_code=HTTPStatus.ACCEPTED.value, content_type=content_types.APPLICATION_JSON,
        body=JobAccepted(job_id=job.job_id, status_url=status_url, status=job.status, started=job.started),
        headers={"Location": _base_path() + status_url},
    )


@app.get("/jobs", operation_id="listJobs", tags=["jobs"], summary="The latest jobs, newest first",
         responses=_responses(200, "The jobs (without their chunks)", 400, 503))
def list_jobs(
    limit: Annotated[int, Query(ge=1, le=MAX_LIST, description="How many jobs")] = DEFAULT_LIST,
) -> JobList:
    return JobList(jobs=[JobSummary.of(record) for record in backend().list_jobs(limit)])


@app.get("/jobs/<id>", operation_id="getJob", tags=["jobs"], summary="One job and its execution",
         responses=_responses(200, "The job", 404, 503))
def get_job(id: Annotated[str, Path(description="The job id (a UUID)")]) -> JobView:
    job_id = _path_parameter("id", id)
    if "\x00" in job_id:
        raise NotFound(f"no job {job_id!r}")  # no id holds one (and PostgreSQL's text cannot)
    record = backend().get_job(job_id)
    failed = [c for c in record.chunks if c.status in (ChunkStatus.FAILED, ChunkStatus.PARTIAL)]
    return JobView.of(record, failed_chunks=failed, chunks=sorted(record.chunks, key=lambda c: c.index),
                      execution=backend().execution(record.job_id))


@app.get("/stats", operation_id="getStats", tags=["graph"], summary="Totals of the graph",
         responses=_responses(200, "The graph's totals", 503))
def stats() -> GraphStats:
    return backend().graph.stats()


@app.delete("/documents/<source>", operation_id="deleteDocument", tags=["graph"],
            summary="Remove a document's contribution to the graph",
            description="Its provenance, and every element only it supported.",
            responses=_responses(200, "What was removed", 400, 404, 503))
def delete_document(
    source: Annotated[str, Path(description="The document's source, URL-encoded (notes%2Fcurie.txt)")],
) -> DeleteSummary:
    name = _path_parameter("source", source)
    if "\x00" in name:
        raise InvalidInput(f"source: {NUL_NAME}")
    return backend().graph.delete_document(name)


# -- browsing the graph (the web view) -------------------------------------------------------------


@app.get("/documents", operation_id="listDocuments", tags=["graph"], summary="The stored documents",
         responses=_responses(200, "The documents, the most recently written first", 400, 503))
def list_documents(
    limit: Annotated[int, Query(ge=1, le=MAX_DOCUMENTS, description="How many documents")] = DEFAULT_DOCUMENTS,
) -> DocumentList:
    return DocumentList(documents=[
        DocumentView(document_id=str(d.id), source=d.source, source_type=d.source_type, source_date=d.source_date,
                     chars=d.chars, tokens=d.tokens, chunks=d.chunks, triples=d.triples, job_id=str(d.job_id),
                     created_at=d.created_at, updated_at=d.updated_at)
        for d in backend().graph.documents(limit)])


@app.get("/triples/<id>", operation_id="getTriple", tags=["graph"], summary="One triple and its sources",
         description="Its confidence, and every chunk that supports it with the span that states it.",
         responses=_responses(200, "The triple", 404, 503))
def get_triple(id: Annotated[str, Path(description="The triple's id (a UUID)")]) -> TripleView:
    triple_id = _uuid_parameter("id", id, "triple")
    found = backend().graph.found_triples([triple_id], MAX_TRIPLE_SOURCES).get(triple_id)
    if found is None:
        raise NotFound(f"no triple with id {str(triple_id)!r}")
    sources = []
    for p in found.provenance:
        start, end = supporting_span(p.chunk_text, found.subject, found.object)
        sources.append(TripleSource(
            source=p.source, source_type=p.source_type, source_date=p.source_date, document_id=str(p.document_id),
            chunk_index=p.chunk_index, start=p.chunk_start + start, end=p.chunk_start + end,
            text=p.chunk_text[start:end], chunk_start=p.chunk_start, chunk_text=p.chunk_text))
    return TripleView(id=str(found.id), type=found.type, subject=found.subject, predicate=found.predicate,
                      object=found.object, confidence=round(found.confidence, 4),
                      source_count=found.provenance_count, sources=sources)


@app.get("/nodes/<id>", operation_id="getNode", tags=["graph"], summary="One node: aliases, concepts, facts",
         responses=_responses(200, "The node", 400, 404, 503))
def get_node(
    id: Annotated[str, Path(description="The node's id (a UUID)")],
    limit: Annotated[int, Query(ge=1, le=MAX_FACTS, description="At most this many of its triples")] = DEFAULT_FACTS,
) -> NodeView:
    node_id = _uuid_parameter("id", id, "node")
    node = backend().graph.node(node_id)
    facts = neighbors(NeighborsRequest(node=str(node.id), hops=1, limit=limit), backend().graph)
    concepts = [ConceptRef(level=level, name=name) for level, _, name in (c.partition(":") for c in node.concepts)]
    return NodeView(id=str(node.id), kind=node.kind, name=node.name, aliases=node.aliases, concepts=concepts,
                    triples=facts.triples, truncated=facts.truncated)


@app.get("/overview", operation_id="getOverview", tags=["graph"],
         summary="The graph's totals and its top concepts per level",
         responses=_responses(200, "The overview", 400, 503))
def overview(
    top: Annotated[int, Query(ge=1, le=MAX_TOP, description="Concepts per level")] = DEFAULT_TOP,
) -> Overview:
    graph = backend().graph
    by_level: dict[str, list[ConceptCountView]] = {level: [] for level in ("high", "medium", "low")}
    for c in graph.top_concepts(top):
        by_level.setdefault(c.level, []).append(
            ConceptCountView(id=str(c.id), name=c.name, level=c.level, elements=c.elements))
    return Overview(stats=graph.stats(), top_concepts=by_level)


# -- querying the graph (kg.search): GET with query parameters, POST with the request model as body --
# The GET parameters are declared loosely (strings, numbers) and the request is validated by the
# model itself, so that GET, POST, the `kg` commands and the MCP tools refuse exactly the same things.

_QUERY_ERRORS = (400, 415, 503)


@app.get("/search", operation_id="searchGraph", tags=["search"], summary="Fusion search of the graph's triples",
         description="Four ranked lists (entity, relationship, semantic, concept), each a cosine kNN and a "
                     "lexical match, merged by weighted reciprocal-rank fusion. POST /search takes the same "
                     "request as a JSON body.",
         responses=_responses(200, "The triples that best answer the query", 400, 503))
def search_get(
    query: Annotated[str, Query(description="What to look for, in words (at most 2,000 characters)")],
    limit: Annotated[int | None, Query(description="How many triples (1-100; 10)")] = None,
    threshold: Annotated[float | None, Query(description="The least cosine similarity (0-1; 0)")] = None,
    types: Annotated[list[str] | None, Query(description="Only triples of these types")] = None,
    sources: Annotated[list[str] | None, Query(description="Only triples supported by these documents")] = None,
    source_types: Annotated[list[str] | None, Query(description="Only documents of these types")] = None,
    date_from: Annotated[str | None, Query(description="Documents dated on or after (ISO 8601)")] = None,
    date_to: Annotated[str | None, Query(description="Documents dated on or before (ISO 8601)")] = None,
    search_types: Annotated[list[str] | None, Query(description="The lists to search and fuse")] = None,
    weight_entity: Annotated[float | None, Query(description="The entity list's weight (0-1; 0.3)")] = None,
    weight_relationship: Annotated[float | None, Query(description="The relationship list's weight (0.2)")] = None,
    weight_semantic: Annotated[float | None, Query(description="The semantic list's weight (0.3)")] = None,
    weight_concept: Annotated[float | None, Query(description="The concept list's weight (0.2)")] = None,
) -> SearchResponse:
    weights = {name: value for name, value in (("entity", weight_entity), ("relationship", weight_relationship),
                                               ("semantic", weight_semantic), ("concept", weight_concept))
               if value is not None}
    request = parse_request(SearchRequest, query=query, limit=limit, threshold=threshold, types=types,
                            sources=sources, source_types=source_types, date_from=date_from, date_to=date_to,
                            search_types=search_types, weights=weights or None)
    return search(request, backend().graph, backend().embedder)


@app.post("/search", operation_id="searchGraphWithBody", tags=["search"], summary="Fusion search (JSON body)",
          responses=_responses(200, "The triples that best answer the query", *_QUERY_ERRORS))
def search_post(request: Annotated[SearchRequest, Body()]) -> SearchResponse:
    return search(request, backend().graph, backend().embedder)


@app.get("/concepts", operation_id="searchConcepts", tags=["search"], summary="Concepts near a query",
         description="Each with the elements it covers; of one abstraction level when asked.",
         responses=_responses(200, "The concepts nearest the query", 400, 503))
def concepts_get(
    query: Annotated[str, Query(description="The idea to look for (at most 2,000 characters)")],
    level: Annotated[str | None, Query(description="Only concepts of this abstraction level")] = None,
    limit: Annotated[int | None, Query(description="How many concepts (1-100; 10)")] = None,
    threshold: Annotated[float | None, Query(description="The least cosine similarity (0-1; 0)")] = None,
    members: Annotated[int | None, Query(description="Elements listed per concept (1-100; 20)")] = None,
) -> ConceptResponse:
    request = parse_request(ConceptRequest, query=query, level=level, limit=limit, threshold=threshold,
                            members=members)
    return search_concepts(request, backend().graph, backend().embedder)


@app.post("/concepts", operation_id="searchConceptsWithBody", tags=["search"], summary="Concepts (JSON body)",
          responses=_responses(200, "The concepts nearest the query", *_QUERY_ERRORS))
def concepts_post(request: Annotated[ConceptRequest, Body()]) -> ConceptResponse:
    return search_concepts(request, backend().graph, backend().embedder)


@app.get("/neighbors", operation_id="getNeighbors", tags=["search"], summary="A node's neighbourhood",
         description="The triples within `hops` of a node (by name or id), breadth first.",
         responses=_responses(200, "The neighbourhood", 400, 404, 503))
def neighbors_get(
    node: Annotated[str, Query(description="A node's name, or its id")],
    hops: Annotated[int | None, Query(description="How far (1-3; 1)")] = None,
    limit: Annotated[int | None, Query(description="At most this many triples (1-500; 50)")] = None,
    types: Annotated[list[str] | None, Query(description="Only triples of these types")] = None,
    kind: Annotated[str | None, Query(description="Of the nodes of that name, only this kind")] = None,
) -> NeighborsResponse:
    request = parse_request(NeighborsRequest, node=node, hops=hops, limit=limit, types=types, kind=kind)
    return neighbors(request, backend().graph)


@app.post("/neighbors", operation_id="getNeighborsWithBody", tags=["search"],
          summary="A node's neighbourhood (JSON body)",
          responses=_responses(200, "The neighbourhood", 400, 404, 415, 503))
def neighbors_post(request: Annotated[NeighborsRequest, Body()]) -> NeighborsResponse:
    return neighbors(request, backend().graph)


# -- errors, mapped once --------------------------------------------------------------------------


@app.exception_handler(RequestValidationError)
def _refused(error: RequestValidationError) -> Response:
    return _error(HTTPStatus.BAD_REQUEST, validation_message(error.errors()))


@app.exception_handler(ResponseValidationError)
def _bad_answer(error: ResponseValidationError) -> Response:
    log.error("an answer broke its model: %s", error.errors())
    return _error(HTTPStatus.INTERNAL_SERVER_ERROR, "the API failed to answer; the error is in its log")


@app.exception_handler(RecursionError)
def _too_deep(error: RecursionError) -> Response:
    # json.loads of a body of thousands of nested brackets: the only recursion a request can drive.
    return _error(HTTPStatus.BAD_REQUEST, "the body is not usable JSON: it is nested too deeply")


@app.exception_handler(InvalidInput)
def _invalid(error: InvalidInput) -> Response:
    return _error(HTTPStatus.BAD_REQUEST, str(error))


@app.exception_handler(RequestUnsupportedContentType)
def _not_json(error: RequestUnsupportedContentType) -> Response:
    return _error(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "send the body as JSON (Content-Type: application/json)")


@app.exception_handler(NotFound)
def _not_found(error: NotFound) -> Response:
    return _error(HTTPStatus.NOT_FOUND, str(error))


@app.not_found
def _no_route(error: NotFoundError) -> Response:
    event = app.current_event
    return _error(HTTPStatus.NOT_FOUND, f"no route {event.http_method} {event.path} (docs/openapi.json lists them)")


@app.exception_handler(ServiceError)
def _service(error: ServiceError) -> Response:
    return _error(HTTPStatus(error.status_code), error.msg)


@app.exception_handler([StoreError, ProviderUnavailable])
def _unavailable(error: Exception) -> Response:
    # Out of reach, or not usable as configured (a store built for another embedding model): either
    # way the caller's request was fine, and the message says what is wrong.
    return _error(HTTPStatus.SERVICE_UNAVAILABLE, f"{error}; try again shortly")


def validation_message(errors: Sequence[Mapping[str, Any]]) -> str:
    """One clause per problem, `field: what is wrong`, joined by '; '."""
    problems = []
    jobs = _route_path() == "/jobs"
    for e in errors:
        loc = [str(part) for part in e.get("loc", ())]
        kind, message = e.get("type", ""), str(e.get("msg", "")).removeprefix("Value error, ")
        if loc[:1] == ["body"] and kind == "json_invalid":
            problems.append(f"the body is not valid JSON ({(e.get('ctx') or {}).get('error', message)})")
        elif loc == ["body"] and kind == "missing":
            problems.append(NO_BODY if jobs else "the request has no body: send the request as a JSON object")
        elif loc == ["body"] and kind in ("model_attributes_type", "dict_type", "model_type"):
            problems.append(f"the body must be a JSON object: {NO_BODY.split(': ', 1)[1]}" if jobs
                            else "the body must be a JSON object")
        elif loc[:1] == ["body"]:
            field = ".".join(loc[1:])
            problems.append(f"{field}: {message}" if field else message)
        elif len(loc) >= 2:
            problems.append(f"{loc[1]} ({loc[0]} parameter): {message}")
        else:
            problems.append(message)
    return "; ".join(problems) or "the request is not valid"


# -- internals ------------------------------------------------------------------------------------


def _route_path() -> str:
    try:
        return app.current_event.path
    except (AttributeError, KeyError, TypeError):
        return ""


def _path_parameter(name: str, matched: str) -> str:
    """The parameter as API Gateway decoded it; the route's own match is the path still URL-encoded."""
    return (app.current_event.path_parameters or {}).get(name) or unquote(matched)


def _uuid_parameter(name: str, matched: str, what: str) -> uuid.UUID:
    """A path parameter that names a row by its id: anything but a UUID names none (404)."""
    value = _path_parameter(name, matched)
    try:
        return uuid.UUID(value.strip())
    except ValueError:
        raise NotFound(f"no {what} with id {value!r} (ids are UUIDs)") from None


def _base_path() -> str:
    """What comes before the route in the URL the caller used: the stage (/v1), or a custom domain's mapping."""
    event = app.current_event
    full = event.request_context.path or ""
    return full[: -len(event.path)] if event.path and full.endswith(event.path) else ""


def _error(status: HTTPStatus, message: str) -> Response:
    return Response(status_code=status.value, content_type=content_types.APPLICATION_JSON,
                    body=ApiError(error=message).model_dump())


# -- the OpenAPI document ---------------------------------------------------------------------------


def openapi_document(servers: list[Server], description: str = API_DESCRIPTION,
                     security_schemes: dict[str, Any] | None = None,
                     security: list[dict[str, list[str]]] | None = None) -> str:
    """The routes, the models the resolver validates with, the errors as they are answered, and
    where the API is served (the stack's URL and IAM authorization, or `kg serve`'s)."""
    document = json.loads(app.get_openapi_json_schema(
        title=API_TITLE, version=API_VERSION, description=description, servers=servers,
        security_schemes=security_schemes, security=security,
    ))
    # Powertools documents a 422 for a request its validation refuses (this API answers those 400),
    # and a 500 for an answer that breaks its own model: a bug of ours, not part of the contract.
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            for code in ("422", "500"):
                operation.get("responses", {}).pop(code, None)
    schemas = document.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
        schemas.pop(name, None)
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
