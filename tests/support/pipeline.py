"""The synthesized state machine executed in moto, each Lambda task served by the real handler in-process.

`MotoPipeline(template)` takes the definition (infra/asl.py) and the handler file of every function
(the `kg:handler` tags) from the synthesized template. Inside a moto mock that already holds the
bucket, the ledger table and the secrets, `pipeline.running()` turns execution on, routes every
function to `functions/<file>`'s `handler` (looked up at each call, so a test may monkeypatch the
module), makes Retry waits no-ops, and creates the functions and the state machine; the caller then
points KG_STATE_MACHINE_ARN at `pipeline.arn`, and jobs submitted through the API or S3 upload
handlers run as they do in AWS. On exit it waits for the executions still running (moto runs them on
threads that would otherwise outlive the mock).

Used by tests/aws/test_state_machine_e2e.py and bench/aws_overhead.py.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import boto3

from infra import asl
from tests.support.handlers import load_handler
from tests.support.sfn import (
    REGION,
    Handler,
    InvocationLog,
    create_state_machine,
    executing_state_machines,
    history,
    no_retry_sleep,
    routed_lambdas,
    wait_for_execution,
)

# How long to wait for an execution to end: a test document's runs in seconds.
DEFAULT_TIMEOUT_S = 60.0


def _real_handler(handler_file: str) -> Handler:
    def call(event: dict, context: Any) -> Any:
        return load_handler(handler_file).handler(event, context)

    return call


class MotoPipeline:
    """The template's state machine and functions, for `running()` in one moto mock after another."""

    def __init__(self, template: dict):
        self.definition = asl.definition(template)
        self.handler_files = asl.handler_files(template)  # function name -> file under functions/
        machines = asl.state_machines(template)
        (machine,) = machines.values()
        name = machine["Properties"].get("StateMachineName")
        self.name = name if isinstance(name, str) else "kg-pipeline"
        self.arn = ""
        self.calls = InvocationLog()

    @contextlib.contextmanager
    def running(self, timeout_s: float = DEFAULT_TIMEOUT_S) -> Iterator[MotoPipeline]:
        handlers = {name: _real_handler(file) for name, file in self.handler_files.items()}
        for file in self.handler_files.values():
            load_handler(file)  # imported here, once, as a cold start would; not by the first Map items at once
        with executing_state_machines(), routed_lambdas(handlers) as calls, no_retry_sleep():
            self.calls = calls
            self.arn = create_state_machine(self.definition, names=handlers, name=self.name)
            try:
                yield self
            finally:
                self.settle(timeout_s)

    def function(self, handler_file: str) -> str:
        """The name of the function whose handler is functions/<handler_file> (e.g. "kg-extract-chunk")."""
        (name,) = [name for name, file in self.handler_files.items() if file == handler_file]
        return name

    @property
    def client(self) -> Any:
        return boto3.client("stepfunctions", region_name=REGION)

    def execution_arn(self, job_id: str) -> str:
        """A job's execution is named by its id."""
        return self.arn.replace(":stateMachine:", ":execution:", 1) + f":{job_id}"

    def wait(self, job_id: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> dict:
        """The job's execution once it has left RUNNING (describe_execution)."""
        return wait_for_execution(self.client, self.execution_arn(job_id), timeout_s)

    def history(self, job_id: str) -> list[dict]:
        return history(self.client, self.execution_arn(job_id))

    def executions(self) -> list[dict]:
        listed = self.client.list_executions(stateMachineArn=self.arn)["executions"]
        return sorted(listed, key=lambda e: e["startDate"])

    def settle(self, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        """Wait until no execution is RUNNING."""
        deadline = time.monotonic() + timeout_s
        for execution in self.executions():
            if execution["status"] == "RUNNING":
                wait_for_execution(self.client, execution["executionArn"], max(0.1, deadline - time.monotonic()))


def map_iterations(events: list[dict]) -> list[int]:
    """The index of each Map iteration started, in the order the history records them."""
    return [e["mapIterationStartedEventDetails"]["index"] for e in events if e["type"] == "MapIterationStarted"]
