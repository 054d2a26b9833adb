"""`kg --engine aws`: a client of a deployed stack (infra/).

The stack is found by name through CloudFormation: its outputs name the bucket, the ledger table,
the state machine and the API (infra/stack.py's CfnOutputs). A document goes in as the API's
`POST /jobs` takes one, through `kg.aws.jobs.submit`: its text under `text_key(job_id)`, an
execution named by the job id started with the plan request, the job opened in the ledger. So it is
idempotent as the API is: the same document with the same options is the job it was, unless
`rerun`. A job is followed, and `status` and `jobs` answered, from the DynamoDB ledger. The graph's
totals come from the API's `GET /stats`, signed with SigV4: the database sits in private subnets.

Every boto3 client honours AWS_ENDPOINT_URL (botocore reads it, and `AWS_ENDPOINT_URL_<SERVICE>`),
so the same commands run against a moto server.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError, NoRegionError

from kg.aws.jobs import console_url, content_of, default_options, execution_arn, job_key, submit
from kg.aws.ports import AwsPorts
from kg.engine.local import report_of
from kg.errors import InvalidInput, KgError
from kg.graph import GraphStats
from kg.models import DocumentInput, IngestReport, JobRecord, JobStatus
from kg.settings import Settings
from kg.stages.contract import JobOptions

# infra/stack.py's CfnOutputs that this client reads: field -> output key.
OUTPUT_KEYS = {
    "bucket": "BucketName",
    "ledger_table": "LedgerTableName",
    "state_machine_arn": "StateMachineArn",
    "api_url": "ApiUrl",
}
# Polling the ledger: quick at first (a small document takes seconds), then every few seconds.
FIRST_POLL_S, MAX_POLL_S = 0.2, 3.0
API_TIMEOUT_S = 35.0  # API Gateway gives up on an integration after 29 s
_UNFINISHED_EXECUTION = ("RUNNING", "PENDING_REDRIVE")
# AWS answers these when the caller's credentials or rights are the problem: the user can act on it.
_ACCESS_CODES = {"AccessDenied", "AccessDeniedException", "UnrecognizedClientException", "InvalidClientTokenId",
                 "ExpiredToken", "ExpiredTokenException", "SignatureDoesNotMatch", "InvalidSignatureException"}


class StackError(KgError):
    """The deployed stack answered with an error the caller cannot fix (exit 1)."""


@dataclass(frozen=True)
class StackOutputs:
    stack_name: str
    region: str
    bucket: str
    ledger_table: str
    state_machine_arn: str
    api_url: str


@dataclass(frozen=True)
class SubmittedJob:
    job_id: str
    source: str
    execution_arn: str
    status: JobStatus
    started: bool  # False: the same submission's job was there already
    submitted_at: float  # time.monotonic(), for the report's duration


class JobObserver:
    """What `follow` tells as it polls (the command line draws progress bars from it)."""

    def job_updated(self, record: JobRecord) -> None:
        pass


@contextmanager
def aws_errors(what: str) -> Iterator[None]:
    """botocore's errors as the domain's: configuration and credentials are the user's to fix (InvalidInput),
    anything else the stack said is a StackError."""
    try:
        yield
    except NoRegionError:
        raise InvalidInput(f"{what}: no AWS region; set AWS_REGION or AWS_DEFAULT_REGION") from None
    except NoCredentialsError:
        raise InvalidInput(f"{what}: no AWS credentials (environment, ~/.aws or AWS_PROFILE)") from None
    except EndpointConnectionError as e:
        raise InvalidInput(f"{what}: cannot reach {e.kwargs.get('endpoint_url', 'AWS')} "
                           "(check AWS_ENDPOINT_URL and the network)") from None
    except ClientError as e:
        error = e.response.get("Error", {})
        message = f"{what}: {error.get('Code', 'error')}: {error.get('Message', e)}"
        if error.get("Code") in _ACCESS_CODES:
            raise InvalidInput(message) from None
        raise StackError(message) from None
    except BotoCoreError as e:
        raise StackError(f"{what}: {e}") from None


def find_stack(stack_name: str, cloudformation: Any = None) -> StackOutputs:
    """The stack's outputs, by name (KG_STACK_NAME); InvalidInput when there is no such stack or it
    is not the kg stack."""
    with aws_errors(f"stack {stack_name!r}"):
        client = cloudformation or boto3.client("cloudformation")
        try:
            stacks = client.describe_stacks(StackName=stack_name)["Stacks"]
        except ClientError as e:
            if "does not exist" in str(e.response.get("Error", {}).get("Message", "")):
                raise InvalidInput(f"no stack {stack_name!r} in {client.meta.region_name}: deploy it "
                                   "(README, Deploying to AWS) or name yours with KG_STACK_NAME") from None
            raise
    outputs = {o["OutputKey"]: o.get("OutputValue", "") for o in stacks[0].get("Outputs", [])}
    missing = [key for key in OUTPUT_KEYS.values() if not outputs.get(key)]
    if missing:
        raise InvalidInput(f"stack {stack_name!r} ({stacks[0].get('StackStatus', '?')}) has no output "
                           f"{', '.join(missing)}: is it the kg stack, deployed from infra/?")
    return StackOutputs(stack_name=stack_name, region=client.meta.region_name,
                        **{field: outputs[key] for field, key in OUTPUT_KEYS.items()})


class DeployedStack:
    """The commands' view of one deployed stack; `connect(settings)` finds it."""

    def __init__(self, settings: Settings, outputs: StackOutputs):
        self.settings = settings
        self.outputs = outputs
        self.ports = AwsPorts(settings.model_copy(update={
            "blob_bucket": outputs.bucket, "ledger_table": outputs.ledger_table,
            "state_machine_arn": outputs.state_machine_arn,
        }))

    @classmethod
    def connect(cls, settings: Settings) -> DeployedStack:
        return cls(settings, find_stack(settings.stack_name))

    @property
    def name(self) -> str:
        return self.outputs.stack_name

    # -- jobs in ------------------------------------------------------------------------------------

    def submit(self, document: DocumentInput, options: JobOptions | None = None, rerun: bool = False) -> SubmittedJob:
        """Upload the document's text and start its job (already checked: `decode_document` made it),
        or find the job of the same submission. The options are the caller's settings (KG_CONCEPTS,
        KG_DEDUP, or the flags), not the stack's."""
        data = document.text.encode()
        key = job_key(document.source, content_of(data), document.source_type, document.source_date,
                      options or default_options(self.settings))
        with aws_errors(f"submitting {document.source}"):
            job = submit(key, self.ports, text=data, rerun=rerun)
        return SubmittedJob(job.job_id, job.source, self.execution_arn(job.job_id), job.status, job.started,
                            time.monotonic())

    def follow(self, jobs: list[SubmittedJob], observer: JobObserver | None = None,
               sleep: Callable[[float], None] = time.sleep) -> list[IngestReport]:
        """Poll the ledger until every job has ended; their reports, in the order of `jobs`.

        A job whose execution ended without the ledger saying so (aborted, timed out, or its
        failure handler failed too) is reported FAILED with the execution's status: it would
        otherwise be followed forever."""
        observer = observer or JobObserver()
        ended: dict[str, IngestReport] = {}
        wait = FIRST_POLL_S
        while len(ended) < len(jobs):
            for job in jobs:
                if job.job_id in ended:
                    continue
                record = self._poll(job)
                observer.job_updated(record)
                if record.status.finished:
                    ended[job.job_id] = self._report(job, record)
            if len(ended) < len(jobs):
                sleep(wait)
                wait = min(MAX_POLL_S, wait * 1.5)
        return [ended[job.job_id] for job in jobs]

    # -- reading --------------------------------------------------------------------------------------

    def status(self, job_id: str) -> tuple[JobRecord, dict[str, str] | None]:
        """The job's ledger record, and its execution (arn, status, console URL) when there is one."""
        with aws_errors(f"job {job_id}"):
            record = self.ports.ledger.get(job_id, with_chunks=True)
            return record, self.execution(record.job_id)

    def jobs(self, limit: int) -> list[JobRecord]:
        with aws_errors("listing jobs"):
            return self.ports.ledger.list_jobs(limit)

    def stats(self) -> GraphStats:
        return GraphStats.model_validate(self.call_api("GET", "stats"))

    def execution_arn(self, job_id: str) -> str:
        return execution_arn(self.outputs.state_machine_arn, job_id)

    def execution(self, job_id: str) -> dict[str, str] | None:
        arn = self.execution_arn(job_id)
        try:
            described = self.ports.executions.describe_execution(executionArn=arn)
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") == "ExecutionDoesNotExist":
                return None
            raise
        return {"arn": arn, "status": described["status"], "console_url": console_url(arn, self.outputs.region)}

    def call_api(self, method: str, path: str) -> Any:
        """A request to the stack's REST API (IAM authorization: signed with the caller's credentials)."""
        url = urljoin(self.outputs.api_url.rstrip("/") + "/", path)
        with aws_errors("the stack's API"):
            credentials = boto3.Session().get_credentials()
            if credentials is None:
                raise NoCredentialsError()
            request = AWSRequest(method=method, url=url, headers={"Accept": "application/json"})
            SigV4Auth(credentials.get_frozen_credentials(), "execute-api", api_region(url, self.outputs.region)
                      ).add_auth(request)
        prepared = request.prepare()
        signed = urllib.request.Request(prepared.url, headers=dict(prepared.headers), method=method)
        try:
            with urllib.request.urlopen(signed, timeout=API_TIMEOUT_S) as answer:
                return json.loads(answer.read() or b"null")
        except urllib.error.HTTPError as e:
            message = _api_message(e)
            if e.code in (401, 403, 404):
                raise InvalidInput(f"the stack's API at {url} refused the request ({e.code}: {message})") from None
            raise StackError(f"the stack's API at {url} answered {e.code}: {message}") from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise InvalidInput(f"the stack's API at {url} cannot be reached ({reason}); "
                               f"check the stack {self.name!r} and the network") from None

    # -- internals ------------------------------------------------------------------------------------

    def _poll(self, job: SubmittedJob) -> JobRecord:
        with aws_errors(f"job {job.job_id}"):
            record = self.ports.ledger.get(job.job_id, with_chunks=False)
            if record.status.finished:
                return record
            execution = self.execution(job.job_id)
            if execution is None or execution["status"] in _UNFINISHED_EXECUTION:
                return record
            # The execution has ended: read again, since Finalize or FailJob may have just written.
            record = self.ports.ledger.get(job.job_id, with_chunks=False)
        if record.status.finished:
            return record
        return record.model_copy(update={
            "status": JobStatus.FAILED,
            "error": f"the execution ended {execution['status']} while the job was {record.status.value} "
                     f"at {record.stage.value}; see {execution['console_url']}",
        })

    def _report(self, job: SubmittedJob, record: JobRecord) -> IngestReport:
        with aws_errors(f"job {job.job_id}"):
            full = self.ports.ledger.get(job.job_id, with_chunks=True)
            if not full.status.finished:  # a FAILED made up by _poll: keep it, and its reason
                full = full.model_copy(update={"status": record.status, "error": record.error})
            tokens = self._document_tokens(job)
        return report_of(full, f"aws stack {self.name}", tokens, round(time.monotonic() - job.submitted_at, 3))

    def _document_tokens(self, job: SubmittedJob) -> int:
        """The document's token count: Plan's result is the execution's state (result_path "$"), so
        it is in the output of an execution that succeeded."""
        try:
            output = self.ports.executions.describe_execution(executionArn=job.execution_arn).get("output")
            return int(json.loads(output or "{}").get("tokens", 0))
        except (ClientError, ValueError, TypeError):
            return 0


def api_region(url: str, default: str) -> str:
    """The region of an `https://<id>.execute-api.<region>.amazonaws.com/<stage>/` URL (SigV4 signs
    for it), else the session's."""
    parts = (urlsplit(url).hostname or "").split(".")
    if len(parts) >= 4 and parts[1] == "execute-api":
        return parts[2]
    return default


def _api_message(error: urllib.error.HTTPError) -> str:
    """The API's own `{"error": ...}`, or API Gateway's `{"message": ...}`, or the raw body."""
    body = error.read().decode(errors="replace")
    try:
        payload = json.loads(body)
    except ValueError:
        return body.strip()[:300] or error.reason
    if isinstance(payload, dict):
        return str(payload.get("error") or payload.get("message") or payload)
    return body.strip()[:300]
