"""The S3 upload function: an object created under incoming/ starts one job, read where it lies."""

from __future__ import annotations

import json
import os

import boto3

from kg.models import JobStatus
from tests.aws.conftest import BUCKET, ledger
from tests.support.handlers import PLAN, S3_UPLOAD, HandlerDriver

TEXT = "Marie Curie worked in Paris with Pierre Curie. " * 40


def s3_event(*keys: str, bucket: str = BUCKET, event_name: str = "ObjectCreated:Put") -> dict:
    """An S3 event notification as S3 sends it: keys URL-encoded, spaces as '+'."""
    return {"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2026-01-05T10:00:00.000Z", "eventName": event_name,
        "userIdentity": {"principalId": "AWS:EXAMPLE"}, "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810", "x-amz-id-2": "FMyUVURIY8"},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "incoming",
               "bucket": {"name": bucket, "ownerIdentity": {"principalId": "EXAMPLE"},
                          "arn": f"arn:aws:s3:::{bucket}"},
               "object": {"key": key, "size": len(TEXT), "eTag": "0123456789abcdef",
                          "sequencer": f"0A1B2C3D4E5F{i:02d}"}},
    } for i, key in enumerate(keys)]}


def executions() -> list[dict]:
    sfn = boto3.client("stepfunctions")
    listed = sfn.list_executions(stateMachineArn=os.environ["KG_STATE_MACHINE_ARN"])["executions"]
    return [sfn.describe_execution(executionArn=e["executionArn"]) for e in listed]


def test_an_upload_starts_a_job_that_plans_the_object_in_place():
    boto3.client("s3").put_object(Bucket=BUCKET, Key="incoming/field notes/day 1.txt", Body=TEXT.encode())
    driver = HandlerDriver()
    started = driver.call(S3_UPLOAD, s3_event("incoming/field+notes/day+1.txt"))
    [job_id] = started["jobs"]
    [execution] = executions()
    request = json.loads(execution["input"])
    assert execution["name"] == job_id
    assert (request["source"], request["text_key"]) == ("field notes/day 1.txt", "incoming/field notes/day 1.txt")
    assert ledger().get(job_id).status is JobStatus.QUEUED

    plan = driver.call(PLAN, request)
    assert plan["chunk_count"] >= 1 and ledger().get(job_id).status is JobStatus.RUNNING


def test_a_notification_delivered_twice_starts_one_job():
    driver = HandlerDriver()
    first = driver.call(S3_UPLOAD, s3_event("incoming/a.txt"))
    second = driver.call(S3_UPLOAD, s3_event("incoming/a.txt"))
    assert first["jobs"] == second["jobs"] and len(executions()) == 1


def test_folders_other_prefixes_and_other_buckets_start_nothing():
    driver = HandlerDriver()
    assert driver.call(S3_UPLOAD, s3_event("incoming/", "results/a.txt"))["jobs"] == []
    assert driver.call(S3_UPLOAD, s3_event("incoming/a.txt", bucket="someone-else"))["jobs"] == []
    assert executions() == [] and ledger().list_jobs() == []
