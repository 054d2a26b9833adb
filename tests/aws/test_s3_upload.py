"""The S3 upload function: an object created under incoming/ is one job, read where it lies, its
source its key and its type and date its metadata; the same object again is the same job; an
object that is not a usable document is a FAILED job with the reason, and no execution."""

from __future__ import annotations

import json
import os

import boto3

from kg.models import JobStatus
from tests.aws.conftest import BUCKET, api_event, call_api, ledger
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
               "object": {"key": key.replace(" ", "+"), "size": len(TEXT), "eTag": "0123456789abcdef",
                          "sequencer": f"0A1B2C3D4E5F{i:02d}"}},
    } for i, key in enumerate(keys)]}


def upload(key: str, body: bytes = TEXT.encode(), **metadata: str) -> dict:
    """Put the object (metadata as x-amz-meta-*), then deliver its notification."""
    boto3.client("s3").put_object(Bucket=BUCKET, Key=key, Body=body,
                                  Metadata={name.replace("_", "-"): value for name, value in metadata.items()})
    return HandlerDriver().call(S3_UPLOAD, s3_event(key))


def executions() -> list[dict]:
    sfn = boto3.client("stepfunctions")
    listed = sfn.list_executions(stateMachineArn=os.environ["KG_STATE_MACHINE_ARN"])["executions"]
    return [sfn.describe_execution(executionArn=e["executionArn"]) for e in listed]


def test_an_upload_starts_a_job_that_plans_the_object_in_place():
    answer = upload("incoming/field notes/day 1.txt", source_type="letter", source_date="1903-06-25")
    [job_id] = answer["jobs"]
    assert answer["started"] == [job_id]
    [execution] = executions()
    request = json.loads(execution["input"])
    assert execution["name"] == job_id
    assert request == {"job_id": job_id, "source": "field notes/day 1.txt", "source_type": "letter",
                       "source_date": "1903-06-25T00:00:00Z", "text_key": "incoming/field notes/day 1.txt",
                       "options": {"concepts": True, "dedup": False}}
    assert ledger().get(job_id).status is JobStatus.QUEUED

    plan = HandlerDriver().call(PLAN, request)
    assert plan["chunk_count"] >= 1 and ledger().get(job_id).status is JobStatus.RUNNING


def test_the_same_object_twice_is_one_job_and_a_changed_one_a_new_job():
    driver = HandlerDriver()
    first = upload("incoming/a.txt")
    assert driver.call(S3_UPLOAD, s3_event("incoming/a.txt")) == {**first, "started": []}  # delivered twice
    assert upload("incoming/a.txt") == {**first, "started": []}  # the same bytes uploaded again
    assert len(executions()) == 1

    changed = upload("incoming/a.txt", (TEXT + " Pierre died in 1906.").encode())
    assert changed["jobs"] != first["jobs"] and changed["started"] == changed["jobs"]
    dated = upload("incoming/a.txt", (TEXT + " Pierre died in 1906.").encode(), source_date="1906-04-19")
    assert dated["jobs"] != changed["jobs"] and len(executions()) == 3


def test_the_api_answers_an_uploaded_document_with_its_job_and_reruns_it_on_request():
    [job_id] = upload("incoming/a.txt")["jobs"]
    body = {"source": "a.txt", "text_key": "incoming/a.txt"}
    status, answer = call_api(api_event("POST", "/jobs", body))
    assert (status, answer["job_id"], answer["started"]) == (202, job_id, False)
    ledger().finish(job_id, JobStatus.FAILED, error="the LLM endpoint is down")
    status, answer = call_api(api_event("POST", "/jobs", {**body, "rerun": True}))
    assert status == 202 and answer["job_id"] != job_id and answer["started"]
    assert json.loads(executions()[-1]["input"])["text_key"] == "incoming/a.txt"


def test_an_object_that_is_not_a_document_is_a_failed_job_with_the_reason(monkeypatch, subtests):
    monkeypatch.setenv("KG_MAX_DOCUMENT_BYTES", "1000")
    for key, body, metadata, error in [
        ("incoming/scan.pdf", b"%PDF-1.7\x00\x01\x02", {}, "scan.pdf: not text (it contains NUL bytes)"),
        ("incoming/latin1.txt", "café".encode("latin-1"), {}, "latin1.txt: not UTF-8 text (invalid byte at offset 3)"),
        ("incoming/blank.txt", b" \n\n ", {}, "blank.txt: the document is empty"),
        ("incoming/big.txt", b"x" * 1001, {}, "big.txt: 1,001 bytes is over the limit of 1,000 (KG_MAX_DOCUMENT_BYTES)"),
        ("incoming/dated.txt", b"Curie.", {"source_date": "last week"},
         "dated.txt: x-amz-meta-source-date 'last week' is not an ISO 8601 date or date-time"),
    ]:
        with subtests.test(key=key):
            answer = upload(key, body, **metadata)
            [job_id] = answer["jobs"]
            assert answer["started"] == []
            job = ledger().get(job_id)
            assert (job.status, job.source, job.progress) == (JobStatus.FAILED, key.removeprefix("incoming/"), 100)
            assert job.error is not None and job.error.startswith(error)
            assert upload(key, body, **metadata)["jobs"] == [job_id]  # the same object again: the same job
    assert executions() == []


def test_folders_other_prefixes_other_buckets_and_deleted_objects_start_nothing():
    driver = HandlerDriver()
    assert driver.call(S3_UPLOAD, s3_event("incoming/", "results/a.txt"))["jobs"] == []
    assert driver.call(S3_UPLOAD, s3_event("incoming/a.txt", bucket="someone-else"))["jobs"] == []
    assert driver.call(S3_UPLOAD, s3_event("incoming/gone.txt"))["jobs"] == []  # deleted before we read it
    assert driver.call(S3_UPLOAD, s3_event("incoming/a.txt", event_name="ObjectRemoved:Delete"))["jobs"] == []
    assert executions() == [] and ledger().list_jobs() == []
