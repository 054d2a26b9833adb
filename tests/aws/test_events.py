"""What the handlers make of their events: errors as a user reads them, stage budgets, database secrets."""

from __future__ import annotations

import json

import pytest
from psycopg.conninfo import conninfo_to_dict

from kg.aws.events import MIN_MARGIN_S, ChunkFailedEvent, JobEvent, JobFailedEvent, StateFailure
from kg.aws.ports import MissingSetting, aws_ports, database_conninfo, openai_key
from kg.errors import ProviderUnavailable
from tests.support.sfn import FakeLambdaContext


def test_a_lambda_errors_message_is_kept_and_its_stack_trace_left_out():
    cause = json.dumps({"errorMessage": "rate limited", "errorType": "RateLimitError", "stackTrace": ["..."]})
    assert StateFailure(Error="RateLimitError", Cause=cause).describe() == "RateLimitError: rate limited"
    assert StateFailure(Error="States.Timeout", Cause="timed out").describe() == "States.Timeout: timed out"
    assert StateFailure(Error="States.Timeout").describe() == "States.Timeout"
    failed = ChunkFailedEvent.model_validate(
        {"job_id": "j", "index": 3, "failure": {"Error": "States.TaskFailed", "Cause": "oom"}})
    assert failed.chunk_failure().error == "States.TaskFailed: oom"
    job = JobFailedEvent.model_validate({"job_id": "j", "source": "a.txt", "failure": {"Error": "X", "Cause": "y"}})
    assert (job.fail_request().error, job.fail_request().source) == ("X: y", "a.txt")


def test_an_event_of_another_shape_is_refused():
    with pytest.raises(ValueError, match="index"):
        ChunkFailedEvent.model_validate({"job_id": "j", "failure": {"Error": "X"}})
    with pytest.raises(ValueError, match="Extra inputs"):
        JobEvent.model_validate({"job_id": "j", "budget": 5})


def test_a_stage_budget_keeps_a_margin_before_the_lambda_timeout():
    full = JobEvent(job_id="j").stage_request(FakeLambdaContext("kg-merge-and-store", timeout_ms=900_000))
    assert 590 <= full.budget_s <= 600  # a third of 15 minutes kept back
    short = JobEvent(job_id="j").stage_request(FakeLambdaContext("kg-merge-and-store", timeout_ms=90_000))
    assert short.budget_s <= 90 - MIN_MARGIN_S
    nearly_out = JobEvent(job_id="j").stage_request(FakeLambdaContext("kg-merge-and-store", timeout_ms=5_000))
    assert nearly_out.budget_s == 1.0  # still one unit of work: every call moves the job on


def test_the_database_secret_as_rds_generates_it_gives_a_tls_connection():
    secret = {"engine": "postgres", "host": "kg.cluster-x.us-east-1.rds.amazonaws.com", "port": 5432,
              "username": "kg_admin", "password": "p@ss word'\\", "dbname": "kg", "dbClusterIdentifier": "kg"}
    parts = conninfo_to_dict(database_conninfo(secret))
    assert parts["host"] == secret["host"] and parts["password"] == secret["password"]
    assert (parts["port"], parts["user"], parts["dbname"], parts["sslmode"]) == ("5432", "kg_admin", "kg", "require")
    assert conninfo_to_dict(database_conninfo({**secret, "dbname": None}))["dbname"] == "kg"
    with pytest.raises(ProviderUnavailable, match="lacks password"):
        database_conninfo({"host": "h", "username": "u"})


def test_the_openai_secret_is_the_key_or_json_holding_it():
    assert openai_key(" sk-1 \n") == "sk-1"
    assert openai_key('{"OPENAI_API_KEY": "sk-2"}') == "sk-2"
    with pytest.raises(ProviderUnavailable):
        openai_key("  ")


def test_a_missing_setting_names_the_variable(monkeypatch):
    monkeypatch.delenv("KG_BLOB_BUCKET")
    with pytest.raises(MissingSetting, match="KG_BLOB_BUCKET is not set"):
        _ = aws_ports().blobs
