"""Starting a job in AWS: one job per submission, its execution named by the job id.

The API (a document in the request, or a key of the bucket) and the S3 upload function (an object
created under `incoming/`) both end here, once every check of the request has been made: a refused
request leaves nothing behind.

Idempotency. A job's id is derived (uuid5) from what the job would do: its `JobKey`, the source,
the SHA-256 of the document's bytes, its source type and date, and the options in effect. The id is
the execution's name. Submitting the same thing again finds the job in the ledger and starts
nothing; two submissions that race past that look-up start the same execution name with the same
input, which Step Functions answers with the execution already running (or ExecutionAlreadyExists
once it has ended): one execution either way. Changed content, type, date or options make another
job. A job stands whatever its outcome, so that a notification S3 delivers twice, or a client
retrying a request it timed out on, never runs a document twice; `rerun` (API only) asks for a new
attempt once the latest has ended, with an id derived from the same key and the attempt number, so
that a rerun sent twice is still one execution.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.parser.models import S3Model, S3RecordModel
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict

from kg.aws.ports import AwsPorts
from kg.blobs import text_key
from kg.documents import decode_document
from kg.errors import InvalidInput, NotFound
from kg.ledger import Ledger
from kg.models import JobRecord, JobStatus
from kg.settings import Settings
from kg.stages import fail_job
from kg.stages.contract import FailRequest, JobOptions, PlanRequest

# Uploads under this prefix start a job (infra/stack.py INCOMING_PREFIX, the bucket's notification filter).
INCOMING_PREFIX = "incoming/"
# Object metadata an upload may carry (S3 lowercases the names; the client sends x-amz-meta-source-type).
SOURCE_TYPE_METADATA = "source-type"
SOURCE_DATE_METADATA = "source-date"
# Job ids are uuid5 names in this namespace (changing it would change every job's id).
_JOB_NAMESPACE = uuid.UUID("1c0f4b0e-5a7e-4c55-9d0f-6b2d0e7a6c11")
# Attempts of one key: each costs a ledger read at every submission of it.
MAX_ATTEMPTS = 50
# The console's address of each partition (an execution ARN names its partition).
_CONSOLE_DOMAINS = {"aws": "console.aws.amazon.com", "aws-cn": "console.amazonaws.cn",
                    "aws-us-gov": "console.amazonaws-us-gov.com"}


class JobKey(BaseModel):
    """What a job does, and so what names it: equal keys are one job."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str
    content: str  # "sha256:<hex>" of the document's bytes ("etag:<etag>" for an object too large to read)
    source_type: str = "text"
    source_date: str | None = None  # ISO 8601 in UTC, or an upload's unreadable metadata as it came
    options: JobOptions

    def job_id(self, attempt: int = 1) -> str:
        name = self.model_dump_json() + (f"#{attempt}" if attempt > 1 else "")
        return str(uuid.uuid5(_JOB_NAMESPACE, name))


class Submitted(BaseModel):
    """The job a submission ended at; `started` is False when it was there already."""

    job_id: str
    source: str
    status: JobStatus
    started: bool


def default_options(settings: Settings) -> JobOptions:
    return JobOptions(concepts=settings.concepts, dedup=settings.dedup, llm_batch=settings.llm_batch)


def content_of(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def utc(moment: datetime) -> datetime:
    """A source date as the key and the plan request carry it: aware, in UTC (a naive one is UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def job_key(source: str, content: str, source_type: str, source_date: datetime | None,
            options: JobOptions) -> JobKey:
    return JobKey(source=source, content=content, source_type=source_type,
                  source_date=utc(source_date).isoformat() if source_date else None, options=options)


def submit(key: JobKey, ports: AwsPorts, *, text: bytes | None = None, document_key: str | None = None,
           rerun: bool = False) -> Submitted:
    """The job of `key`: the one there is, or a new one started. The document is `text` (stored under
    the job's `text_key`) or the object at `document_key`, read in place by plan."""
    attempt, latest = latest_attempt(key, ports.ledger)
    if latest is not None and not (rerun and latest.status.finished):
        return Submitted(job_id=latest.job_id, source=latest.source, status=latest.status, started=False)
    if attempt >= MAX_ATTEMPTS:
        raise InvalidInput(f"{key.source}: this document has run {MAX_ATTEMPTS} times; "
                           "change its source name to run it again")
    job_id = key.job_id(attempt + 1)
    request = PlanRequest(job_id=job_id, source=key.source, source_type=key.source_type,
                          source_date=datetime.fromisoformat(key.source_date) if key.source_date else None,
                          text_key=document_key or text_key(job_id), options=key.options)
    if text is not None:
        ports.blobs.put(request.text_key, text)
    if start_job(request, ports):
        return Submitted(job_id=job_id, source=key.source, status=JobStatus.QUEUED, started=True)
    record = ports.ledger.get(job_id, with_chunks=False)
    return Submitted(job_id=job_id, source=key.source, status=record.status, started=False)


def refuse(key: JobKey, ports: AwsPorts, error: str) -> Submitted:
    """A document that cannot be ingested, sent where no one can be told (an upload): its job ends
    FAILED with the reason at once, and no execution starts. The job of `key`, if there is one, stands."""
    _, latest = latest_attempt(key, ports.ledger)
    if latest is not None:
        return Submitted(job_id=latest.job_id, source=latest.source, status=latest.status, started=False)
    job_id = key.job_id()
    outcome = fail_job(FailRequest(job_id=job_id, error=error, source=key.source), ports.ledger, ports.blobs)
    return Submitted(job_id=job_id, source=key.source, status=outcome.status, started=False)


def latest_attempt(key: JobKey, ledger: Ledger) -> tuple[int, JobRecord | None]:
    """The last attempt of `key` the ledger holds, and its record: (0, None) when there is none."""
    latest: tuple[int, JobRecord | None] = (0, None)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            latest = (attempt, ledger.get(key.job_id(attempt), with_chunks=False))
        except NotFound:
            break
    return latest


def start_job(request: PlanRequest, ports: AwsPorts) -> bool:
    """Start the execution named by the job id, with the plan request as its input, then open the job
    in the ledger (QUEUED, unless the execution got there first: plan opens it too). False when an
    execution of that name had ended already. When the execution cannot be started the error is
    raised and the ledger is left as it was, so that the same submission can simply be sent again."""
    try:
        ports.executions.start_execution(
            stateMachineArn=ports.state_machine_arn, name=request.job_id, input=request.model_dump_json()
        )
        started = True
    except ClientError as e:
        if _code(e) != "ExecutionAlreadyExists":
            raise
        started = False
    ports.ledger.create_job(request.job_id, request.source)
    return started


def execution_arn(state_machine_arn: str, job_id: str) -> str:
    return state_machine_arn.replace(":stateMachine:", ":execution:", 1) + f":{job_id}"


def console_url(execution_arn: str, region: str) -> str:
    """The execution in the Step Functions console (its name is the job id)."""
    partition = execution_arn.split(":", 2)[1] if execution_arn.count(":") >= 2 else "aws"
    domain = _CONSOLE_DOMAINS.get(partition, _CONSOLE_DOMAINS["aws"])
    return f"https://{region}.{domain}/states/home?region={region}#/v2/executions/details/{execution_arn}"


# -- S3 uploads ------------------------------------------------------------------------------------


def start_uploads(event: S3Model, ports: AwsPorts) -> list[Submitted]:
    """The job of each document the event announces (started now, there already, or refused)."""
    return [job for record in event.Records if (job := start_upload(record, ports)) is not None]


def start_upload(record: S3RecordModel, ports: AwsPorts) -> Submitted | None:
    """An object created under `incoming/` of the pipeline's bucket is a document: its source is its
    key under `incoming/`, its type and date its metadata. It is read whole (to check that it is
    text, and for its hash), then read in place again by plan. None for anything else, or for an
    object deleted since."""
    key = unquote_plus(record.s3.object.key)  # notification keys are URL-encoded, spaces as '+'
    settings = ports.settings
    if (record.s3.bucket.name != settings.blob_bucket or not record.eventName.startswith("ObjectCreated")
            or not key.startswith(INCOMING_PREFIX) or key.endswith("/")):
        return None  # not a document of ours (a folder marker, another bucket's event)
    stored = read_object(ports, key, settings.max_document_bytes)
    if stored is None:
        return None  # deleted before we got to it: there is nothing to ingest
    source = key.removeprefix(INCOMING_PREFIX)
    options = default_options(settings)
    metadata = {name.lower(): value.strip() for name, value in stored.metadata.items()}
    source_type = metadata.get(SOURCE_TYPE_METADATA) or "text"
    raw_date = metadata.get(SOURCE_DATE_METADATA) or None
    try:
        source_date = parse_metadata_date(raw_date)
    except InvalidInput as e:
        return refuse(JobKey(source=source, content=stored.content, source_type=source_type,
                             source_date=raw_date, options=options), ports, f"{source}: {e}")
    key_of_job = job_key(source, stored.content, source_type, source_date, options)
    try:
        if stored.data is None:
            raise InvalidInput(too_large(source, stored.size, settings.max_document_bytes))
        decode_document(stored.data, source, settings.max_document_bytes, source_type, source_date)
    except InvalidInput as e:
        return refuse(key_of_job, ports, str(e))
    return submit(key_of_job, ports, document_key=key)


def parse_metadata_date(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return utc(datetime.fromisoformat(value))
    except ValueError:
        raise InvalidInput(f"x-amz-meta-{SOURCE_DATE_METADATA} {value!r} is not an ISO 8601 date or "
                           "date-time (e.g. 2024-05-01)") from None


class StoredObject(BaseModel):
    size: int
    content: str  # content_of(data), or the ETag when the object was too large to read
    metadata: dict[str, str]
    data: bytes | None  # None: larger than the limit, left unread


def read_object(ports: AwsPorts, key: str, max_bytes: int) -> StoredObject | None:
    """An object of the bucket, read only when it is within the document limit; None when there is none."""
    try:
        answer: dict[str, Any] = ports.s3.get_object(Bucket=ports.blobs.bucket, Key=key)
    except ClientError as e:
        if _code(e) in ("NoSuchKey", "404"):
            return None
        raise
    size, body = int(answer["ContentLength"]), answer["Body"]
    if size > max_bytes:
        body.close()
        return StoredObject(size=size, content=f"etag:{answer.get('ETag', '').strip(chr(34))}",
                            metadata=answer.get("Metadata", {}), data=None)
    data = body.read()
    return StoredObject(size=size, content=content_of(data), metadata=answer.get("Metadata", {}), data=data)


def too_large(source: str, size: int, max_bytes: int) -> str:
    """decode_document's message, for a document left unread."""
    return f"{source}: {size:,} bytes is over the limit of {max_bytes:,} (KG_MAX_DOCUMENT_BYTES)"


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))
