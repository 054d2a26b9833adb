"""Run a state machine in moto's Step Functions interpreter, with each Lambda task served in-process.

moto (5.2) executes ASL when its config asks it to, and turns every Lambda task into `lambda.invoke`
on its Docker-free Lambda backend, which only echoes the payload. `routed_lambdas(handlers)` patches
that backend so that an invoke of function `name` calls `handlers[name](event, context)` instead: a
fake in a test of the definition, the real handler in an end-to-end test. An exception becomes a
Lambda function error whose `errorType` is the exception's class name: what Retry and Catch match,
as in AWS.

Typical use:

    with moto_sfn(), routed_lambdas(handlers), no_retry_sleep():
        sfn = boto3.client("stepfunctions")
        arn = create_state_machine(definition, names=handlers)
        execution = start_and_wait(sfn, arn, name=job_id, input=payload)
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account: the ARNs in infra.asl use it

Handler = Callable[[dict, Any], Any]

MOTO_CONFIG = {
    "stepfunctions": {"execute_state_machine": True},
    "lambda": {"use_docker": False},
}


def set_dummy_credentials() -> None:
    """Before any boto3 client is made: moto needs credentials to exist, never real ones."""
    os.environ["AWS_ACCESS_KEY_ID"] = "testing"
    os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
    os.environ["AWS_SESSION_TOKEN"] = "testing"
    os.environ["AWS_DEFAULT_REGION"] = REGION
    os.environ.pop("AWS_PROFILE", None)


@contextlib.contextmanager
def moto_sfn() -> Iterator[None]:
    """moto for every AWS service, with Step Functions executing definitions and Lambda without Docker."""
    from moto import mock_aws

    set_dummy_credentials()
    with mock_aws(config=MOTO_CONFIG):
        yield


@contextlib.contextmanager
def executing_state_machines() -> Iterator[None]:
    """Inside a mock already started (e.g. a plain `mock_aws()`): Step Functions executes definitions
    and Lambda is the Docker-free backend from now on. moto reads both settings at each request; state
    machines created before stay with the backend that does not execute."""
    from moto.core.config import default_user_config

    with mock.patch.dict(default_user_config, MOTO_CONFIG):
        yield


@dataclass
class FakeLambdaContext:
    """What Powertools and the handlers read from a Lambda context."""

    function_name: str
    memory_limit_in_mb: int = 1024
    timeout_ms: int = 900_000
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    invoked_function_arn: str = ""
    log_group_name: str = ""
    log_stream_name: str = ""
    _started: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.invoked_function_arn = self.invoked_function_arn or (
            f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function_name}"
        )
        self.log_group_name = self.log_group_name or f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self.timeout_ms - int((time.monotonic() - self._started) * 1000))


@dataclass
class Invocation:
    function_name: str
    event: dict
    result: Any = None
    error: str | None = None  # the errorType, when the handler raised


class InvocationLog:
    """Every routed invoke, in order (thread-safe: Map items run on threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: list[Invocation] = []

    def add(self, call: Invocation) -> None:
        with self._lock:
            self.calls.append(call)

    def of(self, function_name: str) -> list[Invocation]:
        with self._lock:
            return [c for c in self.calls if c.function_name == function_name]

    def count(self, function_name: str) -> int:
        return len(self.of(function_name))


@contextlib.contextmanager
def routed_lambdas(
    handlers: Mapping[str, Handler], context_factory: Callable[[str], Any] = FakeLambdaContext
) -> Iterator[InvocationLog]:
    """Route moto's Lambda invokes to `handlers` by function name; yields the log of invocations.

    A function with no handler fails the invoke with errorType `NoHandler` (a test that forgets one
    sees it in the execution's error, not a silent echo)."""
    from moto.awslambda_simple.models import LambdaSimpleBackend

    log = InvocationLog()

    def invoke(self, function_name, qualifier, body, headers, response_headers):  # noqa: ANN001
        name = self.get_function(function_name, qualifier).function_name
        event = json.loads(body) if body else {}
        call = Invocation(name, event)
        handler = handlers.get(name)
        try:
            if handler is None:
                raise LookupError(f"no handler routed for function {name}")
            call.result = handler(event, context_factory(name))
            log.add(call)
            return json.dumps(call.result).encode()
        except Exception as e:  # the function error, as Lambda reports an unhandled exception
            call.error = "NoHandler" if handler is None else type(e).__name__
            log.add(call)
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps(
                {
                    "errorType": call.error,
                    "errorMessage": str(e),
                    "stackTrace": traceback.format_exception(e)[-3:],
                }
            ).encode()

    with mock.patch.object(LambdaSimpleBackend, "invoke", invoke):
        yield log


@contextlib.contextmanager
def no_retry_sleep() -> Iterator[None]:
    """Retry waits are real sleeps in moto's interpreter; a test needs the retries, not the waits."""
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    class _Clock:
        @staticmethod
        def sleep(seconds: float) -> None:
            return None

        def __getattr__(self, name: str) -> Any:
            return getattr(time, name)

    with mock.patch.object(retrier_decl, "time", _Clock()):
        yield


def lambda_role_arn(iam: Any = None) -> str:
    """A role moto's Lambda accepts (it checks that the role exists)."""
    import boto3

    iam = iam or boto3.client("iam", region_name=REGION)
    name = "kg-test-lambda-role"
    try:
        return iam.get_role(RoleName=name)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        document = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
            ],
        }
        return iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(document))["Role"]["Arn"]


def create_functions(names: Iterator[str] | list[str], runtime: str = "python3.11") -> None:
    """Placeholder functions of these names (their code is never run: invokes are routed)."""
    import boto3

    client = boto3.client("lambda", region_name=REGION)
    role = lambda_role_arn()
    for name in names:
        client.create_function(
            FunctionName=name, Runtime=runtime, Role=role, Handler="index.handler", Code={"ZipFile": b"x"}
        )


def create_state_machine(definition: dict | str, names: Mapping[str, Any] | list[str] = (), name: str = "kg-pipeline") -> str:
    """Create the functions in `names`, then the state machine; returns its ARN."""
    import boto3

    create_functions(list(names))
    sfn = boto3.client("stepfunctions", region_name=REGION)
    role = f"arn:aws:iam::{ACCOUNT}:role/kg-test-states-role"
    body = definition if isinstance(definition, str) else json.dumps(definition)
    return sfn.create_state_machine(name=name, definition=body, roleArn=role)["stateMachineArn"]


def wait_for_execution(sfn: Any, execution_arn: str, timeout_s: float = 30.0) -> dict:
    """Poll until the execution leaves RUNNING (moto runs it on a thread); the last describe."""
    deadline = time.monotonic() + timeout_s
    while True:
        described = sfn.describe_execution(executionArn=execution_arn)
        if described["status"] != "RUNNING":
            return described
        if time.monotonic() > deadline:
            raise TimeoutError(f"execution still RUNNING after {timeout_s} s: {execution_arn}")
        time.sleep(0.02)


def start_and_wait(sfn: Any, state_machine_arn: str, name: str, input: dict, timeout_s: float = 30.0) -> dict:
    execution_arn = sfn.start_execution(stateMachineArn=state_machine_arn, name=name, input=json.dumps(input))[
        "executionArn"
    ]
    return wait_for_execution(sfn, execution_arn, timeout_s)


def history(sfn: Any, execution_arn: str) -> list[dict]:
    """Every event of the execution, oldest first."""
    events: list[dict] = []
    kwargs: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
    while True:
        page = sfn.get_execution_history(**kwargs)
        events.extend(page["events"])
        if not page.get("nextToken"):
            return events
        kwargs["nextToken"] = page["nextToken"]


def states_entered(events: list[dict]) -> list[str]:
    """The names of the states entered, in order (Map iterations included)."""
    return [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]
