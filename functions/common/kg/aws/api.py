"""The REST API on AWS (API Gateway, IAM authorization, Lambda proxy): kg.api's routes over the AWS
backend (the document in S3, the job in DynamoDB, its Step Functions execution, the graph in
Aurora). docs/openapi.json is the API as the stack deploys it (`python -m kg.aws.api >
docs/openapi.json` writes it again; a test checks it is current).

AWS services out of reach answer 503 (the details go to the log, not to the caller).
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.models import (
    APIKey,
    APIKeyIn,
    Server,
    ServerVariable,
)
from botocore.exceptions import BotoCoreError, ClientError

from kg import api
from kg.api import (  # noqa: F401 (the API's names, as this module has always offered them)
    API_DESCRIPTION,
    API_TITLE,
    API_VERSION,
    ApiError,
    ExecutionView,
    JobAccepted,
    JobSubmission,
    JobSummary,
    JobView,
    Submitted,
    app,
    validation_message,
)
from kg.aws.jobs import (
    console_url,
    content_of,
    default_options,
    execution_arn,
    job_key,
    read_object,
    submit,
    too_large,
)
from kg.aws.ports import AwsPorts, aws_ports
from kg.documents import decode_document
from kg.embeddings import Embedder
from kg.errors import InvalidInput
from kg.graph import GraphStore
from kg.llm.batch import check_batch_settings
from kg.models import JobRecord

log = logging.getLogger(__name__)


class AwsBackend:
    """kg.api.ApiBackend on the stack's services: a submission starts an execution named by the job id."""

    def __init__(self, ports: AwsPorts):
        self.ports = ports

    def submit(self, submission: JobSubmission) -> Submitted:
        ports, settings = self.ports, self.ports.settings
        data = submission.text.encode() if submission.text is not None else self._stored_document(submission)
        # The checks plan makes, made now: a document plan would refuse is refused before anything is written.
        decode_document(data, submission.source, settings.max_document_bytes, submission.source_type,
                        submission.source_date)
        options = default_options(settings).model_copy(update=submission.options.model_dump(exclude_none=True))
        if options.llm_batch:
            check_batch_settings(settings)
        key = job_key(submission.source, content_of(data), submission.source_type, submission.source_date, options)
        job = submit(key, ports, text=data if submission.text is not None else None,
                     document_key=submission.text_key, rerun=submission.rerun)
        return Submitted.model_validate(job.model_dump())

    def get_job(self, job_id: str) -> JobRecord:
        return self.ports.ledger.get(job_id, with_chunks=True)

    def list_jobs(self, limit: int) -> list[JobRecord]:
        return self.ports.ledger.list_jobs(limit)

    def execution(self, job_id: str) -> ExecutionView | None:
        """The job's execution (named by its id), when it has one."""
        ports = self.ports
        if not ports.settings.state_machine_arn:
            return None
        arn = execution_arn(ports.settings.state_machine_arn, job_id)
        url = console_url(arn, ports.executions.meta.region_name)
        try:
            described = ports.executions.describe_execution(executionArn=arn)
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") == "ExecutionDoesNotExist":
                return None
            # The job's status stands on its own: the execution's is an extra, and can wait for the next read.
            log.warning("could not describe execution %s: %s", arn, e)
            return ExecutionView(arn=arn, status=None, console_url=url)
        return ExecutionView(arn=arn, status=described["status"], console_url=url)

    @property
    def graph(self) -> GraphStore:
        return self.ports.graph

    @property
    def embedder(self) -> Embedder:
        return self.ports.embedder

    def _stored_document(self, submission: JobSubmission) -> bytes:
        key, limit = submission.text_key or "", self.ports.settings.max_document_bytes
        stored = read_object(self.ports, key, limit)
        if stored is None:
            raise InvalidInput(f"text_key {key!r}: no such object in the bucket; upload the document first")
        if stored.data is None:
            raise InvalidInput(too_large(submission.source, stored.size, limit))
        return stored.data


def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda proxy answer to one request, from the container's ports."""
    return api.handle(event, context, AwsBackend(aws_ports()))


@app.exception_handler([ClientError, BotoCoreError])
def _aws_unavailable(error: Exception) -> Response:
    # The details (ARNs, the service's message) go to the log, not to the caller.
    log.exception("an AWS call failed")
    code = error.response.get("Error", {}).get("Code", "error") if isinstance(error, ClientError) else "no answer"
    return api._error(HTTPStatus.SERVICE_UNAVAILABLE, f"the pipeline's AWS services failed ({code}); try again shortly")


def openapi_document() -> str:
    """docs/openapi.json: the API with IAM (SigV4) authorization, and the server as the stack deploys it."""
    return api.openapi_document(
        servers=[Server(url="https://{api_id}.execute-api.{region}.amazonaws.com/v1",
                        description="The stack's ApiUrl output",
                        variables={"api_id": ServerVariable(default="api_id", description="The REST API's id"),
                                   "region": ServerVariable(default="us-east-1")})],
        security_schemes={"sigv4": APIKey(name="Authorization", in_=APIKeyIn.header, description=(
            "IAM authorization: requests signed with AWS Signature Version 4 for execute-api"))},
        security=[{"sigv4": []}],
    )


if __name__ == "__main__":
    print(openapi_document(), end="")
