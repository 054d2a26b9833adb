"""The REST API (API Gateway, Lambda proxy): jobs in, their status, graph statistics, document deletes.

    POST   /jobs               {source, text | text_key, source_type?, source_date?, options?} -> 202 {job_id}
    GET    /jobs?limit=20      the latest jobs
    GET    /jobs/{id}          one job: its ledger record and its execution's status
    GET    /stats              totals of the graph
    DELETE /documents/{source} a document's contribution (the source URL-encoded: a%2Fb.txt)

A request is checked whole before anything is written: a refused one (400, with the reason) leaves
no blob, no job and no execution. Errors map once, here: InvalidInput and a malformed body 400,
NotFound 404, an unreachable database or provider 503.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from kg.aws.jobs import INCOMING_PREFIX, default_options, start_job
from kg.aws.ports import aws_ports
from kg.blobs import get_optional, text_key
from kg.documents import decode_document
from kg.errors import InvalidInput, NotFound, ProviderUnavailable, StoreUnavailable
from kg.stages.contract import PlanRequest

# Where the pipeline keeps its own objects (kg.blobs, kg.llm.cache_s3): never a document to submit.
_INTERNAL_PREFIXES = ("jobs/", "errors/", "llm-cache/")
MAX_LIST = 100

app = APIGatewayRestResolver()


class OptionsIn(BaseModel):
    """What the request may choose; what it leaves out comes from the settings (KG_CONCEPTS, KG_DEDUP)."""

    model_config = ConfigDict(extra="forbid")

    concepts: bool | None = None
    dedup: bool | None = None


class JobSubmission(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str = Field(min_length=1, max_length=1024)
    text: str | None = None
    text_key: str | None = Field(default=None, min_length=1)
    source_type: str = "text"
    source_date: datetime | None = None
    options: OptionsIn = Field(default_factory=OptionsIn)

    @model_validator(mode="after")
    def _one_document(self) -> JobSubmission:
        if (self.text is None) == (self.text_key is None):
            raise ValueError("give the document as `text`, or as `text_key` (a key of the bucket), not both")
        key = self.text_key
        if key is not None and key.startswith(INCOMING_PREFIX):
            raise ValueError(f"text_key {key!r}: an object under {INCOMING_PREFIX} starts its own job when uploaded")
        if key is not None and key.startswith(_INTERNAL_PREFIXES):
            raise ValueError(f"text_key {key!r}: the pipeline's own objects cannot be submitted")
        return self


@app.post("/jobs")
def submit_job() -> Response:
    body = app.current_event.decoded_body or ""
    if not body.strip():
        raise InvalidInput("the request has no body: send JSON with `source` and `text` (or `text_key`)")
    submission = JobSubmission.model_validate_json(body)
    ports = aws_ports()
    settings = ports.settings
    job_id = str(uuid.uuid4())
    if submission.text is not None:
        key, data = text_key(job_id), submission.text.encode()
    else:
        key, data = submission.text_key, get_optional(ports.blobs, submission.text_key)
        if data is None:
            raise InvalidInput(f"text_key {key!r}: no such object in the bucket; upload the document first")
    # The checks plan makes, made now: a document plan would refuse is refused before anything is written.
    decode_document(data, submission.source, settings.max_document_bytes, submission.source_type,
                    submission.source_date)
    chosen = submission.options.model_dump(exclude_none=True)
    request = PlanRequest(
        job_id=job_id, source=submission.source, source_type=submission.source_type,
        source_date=submission.source_date, text_key=key,
        options=default_options(settings).model_copy(update=chosen),
    )
    if submission.text is not None:
        ports.blobs.put(key, data)
    start_job(request, ports)
    return _json(HTTPStatus.ACCEPTED, {"job_id": job_id})


@app.get("/jobs")
def list_jobs() -> dict[str, Any]:
    raw = app.current_event.get_query_string_value("limit", "20")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIST:
        raise InvalidInput(f"limit {raw!r}: a whole number from 1 to {MAX_LIST}")
    records = aws_ports().ledger.list_jobs(int(raw))
    return {"jobs": [r.model_dump(mode="json", exclude={"chunks"}) for r in records]}


@app.get("/jobs/<job_id>")
def get_job(job_id: str) -> dict[str, Any]:
    ports = aws_ports()
    job = ports.ledger.get(_path_parameter("job_id", job_id), with_chunks=True).model_dump(mode="json")
    job["execution"] = _execution(ports, job["job_id"])
    return job


@app.get("/stats")
def stats() -> dict[str, Any]:
    return aws_ports().graph.stats().model_dump(mode="json")


@app.delete("/documents/<source>")
def delete_document(source: str) -> dict[str, Any]:
    return aws_ports().graph.delete_document(_path_parameter("source", source)).model_dump(mode="json")


# -- errors, mapped once --------------------------------------------------------------------------


@app.exception_handler(InvalidInput)
def _invalid(error: InvalidInput) -> Response:
    return _error(HTTPStatus.BAD_REQUEST, str(error))


@app.exception_handler(ValidationError)
def _malformed(error: ValidationError) -> Response:
    return _error(HTTPStatus.BAD_REQUEST, validation_message(error))


@app.exception_handler(NotFound)
def _not_found(error: NotFound) -> Response:
    return _error(HTTPStatus.NOT_FOUND, str(error))


@app.exception_handler([StoreUnavailable, ProviderUnavailable])
def _unavailable(error: Exception) -> Response:
    return _error(HTTPStatus.SERVICE_UNAVAILABLE, f"{error}; try again shortly")


def validation_message(error: ValidationError) -> str:
    """One line per problem: `field: what is wrong` (the body as a whole has no field name)."""
    problems = []
    for e in error.errors(include_url=False, include_input=False):
        where = ".".join(str(part) for part in e["loc"])
        message = e["msg"].removeprefix("Value error, ")
        if e["type"] == "json_invalid":
            where, message = "body", f"not valid JSON ({e.get('ctx', {}).get('error', message)})"
        problems.append(f"{where}: {message}" if where else message)
    return "; ".join(problems)


def _path_parameter(name: str, matched: str) -> str:
    """The parameter as API Gateway decoded it; the route's own match is the path still URL-encoded."""
    return app.current_event.path_parameters.get(name) or unquote(matched)


def _execution(ports, job_id: str) -> dict[str, str] | None:
    """The job's execution (named by its id) and its status, when the state machine knows it."""
    if not ports.settings.state_machine_arn:
        return None
    arn = ports.settings.state_machine_arn.replace(":stateMachine:", ":execution:", 1) + f":{job_id}"
    try:
        described = ports.executions.describe_execution(executionArn=arn)
    except ClientError:
        return None
    return {"arn": arn, "status": described["status"]}


def _json(status: HTTPStatus, body: Any) -> Response:
    return Response(status_code=status.value, content_type=content_types.APPLICATION_JSON, body=body)


def _error(status: HTTPStatus, message: str) -> Response:
    return _json(status, {"error": message})
