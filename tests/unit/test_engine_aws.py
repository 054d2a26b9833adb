"""kg.engine.aws's follow loop and helpers, with the ledger and Step Functions faked (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kg.engine.aws import DeployedStack, JobObserver, StackOutputs, SubmittedJob, api_region
from kg.models import JobRecord, JobStatus, Stage
from kg.settings import Settings

MACHINE = "arn:aws:states:eu-west-1:123456789012:stateMachine:kg-pipeline"
JOB = "5b0c1a3e-0000-4000-8000-000000000001"


def record(status: JobStatus, stage: Stage, progress: int) -> JobRecord:
    now = datetime.now(UTC)
    return JobRecord(job_id=JOB, source="notes.txt", status=status, stage=stage, progress=progress,
                     created_at=now, updated_at=now)


class FakeLedger:
    """Answers each get with the next record of `script`, then the last one forever."""

    def __init__(self, *script: JobRecord):
        self.script = list(script)

    def get(self, job_id: str, with_chunks: bool = True) -> JobRecord:
        return self.script.pop(0) if len(self.script) > 1 else self.script[0]


class FakeExecutions:
    def __init__(self, status: str, output: str | None = None):
        self.status, self.output = status, output

    def describe_execution(self, executionArn: str) -> dict:
        return {"executionArn": executionArn, "status": self.status, "output": self.output}


class Recorder(JobObserver):
    def __init__(self) -> None:
        self.seen: list[tuple[str, int]] = []

    def job_updated(self, record: JobRecord) -> None:
        self.seen.append((record.stage.value, record.progress))


def stack(ledger: FakeLedger, executions: FakeExecutions) -> DeployedStack:
    outputs = StackOutputs("kg", "eu-west-1", "bucket", "table", MACHINE, "https://abc.execute-api.eu-west-1.amazonaws.com/v1/")
    deployed = DeployedStack(Settings(), outputs)
    deployed.ports.ledger, deployed.ports.executions = ledger, executions
    return deployed


def submitted(deployed: DeployedStack) -> SubmittedJob:
    return SubmittedJob(JOB, "notes.txt", deployed.execution_arn(JOB), JobStatus.QUEUED, True, 0.0)


def test_follow_polls_until_the_ledger_says_the_job_ended_and_reports_it():
    ledger = FakeLedger(record(JobStatus.QUEUED, Stage.PLAN, 0), record(JobStatus.RUNNING, Stage.EXTRACT, 45),
                        record(JobStatus.SUCCEEDED, Stage.FINALIZE, 100))
    deployed = stack(ledger, FakeExecutions("RUNNING", '{"tokens": 1234}'))  # Plan's result is in its output
    observer, sleeps = Recorder(), []
    (report,) = deployed.follow([submitted(deployed)], observer, sleep=sleeps.append)
    assert (report.status, report.tokens, report.job_id) == (JobStatus.SUCCEEDED, 1234, JOB)
    assert observer.seen == [("PLAN", 0), ("EXTRACT", 45), ("FINALIZE", 100)]
    assert len(sleeps) == 2 and sleeps[0] < sleeps[1]  # backing off between polls


def test_an_execution_that_ended_without_the_ledger_knowing_is_reported_failed():
    running = record(JobStatus.RUNNING, Stage.STORE, 85)
    deployed = stack(FakeLedger(running), FakeExecutions("ABORTED"))
    (report,) = deployed.follow([submitted(deployed)], sleep=lambda s: None)
    assert report.status is JobStatus.FAILED
    assert "the execution ended ABORTED while the job was RUNNING at STORE" in report.error
    assert f"executions/details/{MACHINE.replace(':stateMachine:', ':execution:')}:{JOB}" in report.error


def test_the_execution_is_named_by_the_job_id():
    deployed = stack(FakeLedger(record(JobStatus.QUEUED, Stage.PLAN, 0)), FakeExecutions("RUNNING"))
    assert deployed.execution_arn(JOB) == f"arn:aws:states:eu-west-1:123456789012:execution:kg-pipeline:{JOB}"


@pytest.mark.parametrize(("url", "region"), [
    ("https://abc123.execute-api.eu-west-1.amazonaws.com/v1/", "eu-west-1"),
    ("http://127.0.0.1:8080/v1/", "us-east-1"),
])
def test_the_api_is_signed_for_the_region_in_its_url_else_the_sessions(url, region):
    assert api_region(url, "us-east-1") == region
