"""Starting a job in AWS: open it in the ledger, start the pipeline's execution named by its id.

The API (a document in the request, or a key under `incoming/`) and the S3 upload function (an
object put under `incoming/`) both end here; every check of the request has been made before, so a
refused request leaves nothing behind.
"""

from __future__ import annotations

import uuid
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.parser.models import S3Model, S3RecordModel
from botocore.exceptions import ClientError

from kg.aws.ports import AwsPorts
from kg.settings import Settings
from kg.stages import fail_job
from kg.stages.contract import FailRequest, JobOptions, PlanRequest

# Uploads under this prefix start a job (infra/stack.py INCOMING_PREFIX, the bucket's notification filter).
INCOMING_PREFIX = "incoming/"
# Job ids of uploads are derived from the S3 event, so a notification delivered twice starts one job.
_UPLOAD_NAMESPACE = uuid.UUID("1c0f4b0e-5a7e-4c55-9d0f-6b2d0e7a6c11")


def default_options(settings: Settings) -> JobOptions:
    return JobOptions(concepts=settings.concepts, dedup=settings.dedup)


def start_job(request: PlanRequest, ports: AwsPorts) -> bool:
    """Open the job (QUEUED: its status can be read at once) and start its execution, whose input is
    the plan request. False when an execution of that name exists already (the same job started
    twice). If the execution cannot be started, the job ends FAILED with the reason, and the error
    is raised."""
    ports.ledger.create_job(request.job_id, request.source)
    try:
        ports.executions.start_execution(
            stateMachineArn=ports.state_machine_arn, name=request.job_id, input=request.model_dump_json()
        )
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") == "ExecutionAlreadyExists":
            return False
        fail_job(FailRequest(job_id=request.job_id, error=f"the pipeline could not be started: {e}"),
                 ports.ledger, ports.blobs)
        raise
    return True


def start_uploads(event: S3Model, ports: AwsPorts) -> list[PlanRequest]:
    """Start a job for each document the event announces; the requests of the jobs started now."""
    return [request for request in upload_requests(event, ports.settings) if start_job(request, ports)]


def upload_requests(event: S3Model, settings: Settings) -> list[PlanRequest]:
    """A plan request per object created under `incoming/` of the pipeline's bucket; the object is
    read in place (plan reads `text_key`), and its key under `incoming/` is the document's source."""
    requests = []
    for record in event.Records:
        key = unquote_plus(record.s3.object.key)  # notification keys are URL-encoded, spaces as '+'
        if (record.s3.bucket.name != settings.blob_bucket or not record.eventName.startswith("ObjectCreated")
                or not key.startswith(INCOMING_PREFIX) or key.endswith("/")):
            continue  # not a document of ours (a folder marker, another bucket's event)
        requests.append(PlanRequest(job_id=upload_job_id(record, key), source=key.removeprefix(INCOMING_PREFIX),
                                    text_key=key, options=default_options(settings)))
    return requests


def upload_job_id(record: S3RecordModel, key: str) -> str:
    """The same for every delivery of one object's creation (the sequencer orders a key's events),
    different for a new upload of the same key."""
    version = record.s3.object.sequencer or record.s3.object.eTag or record.eventTime.isoformat()
    return str(uuid.uuid5(_UPLOAD_NAMESPACE, f"{record.s3.bucket.name}/{key}#{version}"))
