"""The API function: a job submitted is stored and started (202), a bad request is refused whole
(400, nothing written), an unknown job or document is 404."""

from __future__ import annotations

import json
import os

import boto3
import pytest
from botocore.exceptions import ClientError

from kg.blobs import text_key
from kg.models import JobStatus
from tests.aws.conftest import BUCKET, api_event, call_api, ledger, migrate

TEXT = "Marie Curie worked in Paris with Pierre Curie."


def executions() -> list[dict]:
    sfn = boto3.client("stepfunctions")
    listed = sfn.list_executions(stateMachineArn=os.environ["KG_STATE_MACHINE_ARN"])["executions"]
    return [sfn.describe_execution(executionArn=e["executionArn"]) for e in listed]


def bucket_keys() -> list[str]:
    return [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=BUCKET).get("Contents", [])]


def post_job(body) -> tuple[int, dict]:
    return call_api(api_event("POST", "/jobs", body))


def test_a_submitted_job_is_stored_queued_and_its_execution_started():
    status, body = post_job({"source": "notes/curie.txt", "text": TEXT, "options": {"dedup": True}})
    assert status == 202
    job_id = body["job_id"]
    started = executions()
    assert [e["name"] for e in started] == [job_id]
    assert json.loads(started[0]["input"]) == {
        "job_id": job_id, "source": "notes/curie.txt", "source_type": "text", "source_date": None,
        "text_key": text_key(job_id), "options": {"concepts": True, "dedup": True},
    }
    stored = boto3.client("s3").get_object(Bucket=BUCKET, Key=text_key(job_id))["Body"].read()
    assert stored.decode() == TEXT
    job = ledger().get(job_id)
    assert (job.status, job.source) == (JobStatus.QUEUED, "notes/curie.txt")


def test_options_left_out_come_from_the_settings(monkeypatch):
    monkeypatch.setenv("KG_DEDUP", "true")
    monkeypatch.setenv("KG_CONCEPTS", "false")
    assert post_job({"source": "notes/curie.txt", "text": TEXT})[0] == 202
    assert json.loads(executions()[0]["input"])["options"] == {"concepts": False, "dedup": True}


def test_a_document_already_in_the_bucket_is_submitted_by_its_key():
    boto3.client("s3").put_object(Bucket=BUCKET, Key="uploads/curie.txt", Body=TEXT.encode())
    status, body = post_job({"source": "curie", "text_key": "uploads/curie.txt"})
    assert status == 202
    assert json.loads(executions()[0]["input"])["text_key"] == "uploads/curie.txt"
    assert bucket_keys() == ["uploads/curie.txt"]  # read in place, not copied


@pytest.mark.parametrize(("body", "message"), [
    ("", "the request has no body"),
    ("{not json", "body: not valid JSON"),
    ({"text": TEXT}, "source: Field required"),
    ({"source": "a.txt"}, "give the document as `text`, or as `text_key`"),
    ({"source": "a.txt", "text": TEXT, "text_key": "uploads/a.txt"}, "not both"),
    ({"source": "a.txt", "text": "   \n"}, "a.txt: the document is empty"),
    ({"source": "a.txt", "text": "bin\u0000ary"}, "a.txt: not text (it contains NUL bytes)"),
    ({"source": "  ", "text": TEXT}, "the source name is empty"),
    ({"source": "a.txt", "text": TEXT, "language": "en"}, "language: Extra inputs are not permitted"),
    ({"source": "a.txt", "text": TEXT, "options": {"concepts": "maybe"}},
     "options.concepts: Input should be a valid boolean"),
    ({"source": "a.txt", "text": TEXT, "options": {"summaries": True}}, "options.summaries: Extra inputs"),
    ({"source": "a.txt", "text": TEXT, "source_date": "last week"}, "source_date: Input should be a valid datetime"),
    ({"source": "a.txt", "text_key": "uploads/missing.txt"}, "no such object in the bucket"),
    ({"source": "a.txt", "text_key": "incoming/a.txt"}, "starts its own job when uploaded"),
    ({"source": "a.txt", "text_key": "jobs/1/input.txt"}, "the pipeline's own objects cannot be submitted"),
    ({"source": "a.txt", "text": "x" * 2_000}, "2,000 bytes is over the limit of 1,000"),
])
def test_a_bad_request_is_400_with_the_reason_and_writes_nothing(monkeypatch, body, message):
    monkeypatch.setenv("KG_MAX_DOCUMENT_BYTES", "1000")
    status, answer = post_job(body)
    assert status == 400
    assert message in answer["error"]
    assert bucket_keys() == [] and executions() == [] and ledger().list_jobs() == []


def test_an_unknown_job_is_404():
    for job_id in ("6f1c7a52-4a8e-4a55-b7b8-8f3c1b3b8e7d", "not-a-job"):
        status, body = call_api(api_event("GET", f"/jobs/{job_id}", resource="/jobs/{id}",
                                          path_parameters={"id": job_id}))
        assert status == 404 and "no job" in body["error"]
    assert call_api(api_event("GET", "/nowhere"))[0] == 404


def test_jobs_are_listed_newest_first():
    first = post_job({"source": "a.txt", "text": TEXT})[1]["job_id"]
    second = post_job({"source": "b.txt", "text": TEXT})[1]["job_id"]
    status, body = call_api(api_event("GET", "/jobs", query={"limit": "10"}))
    assert status == 200
    assert [j["job_id"] for j in body["jobs"]] == [second, first]
    assert call_api(api_event("GET", "/jobs", query={"limit": "many"}))[0] == 400


def test_stats_and_deletes_read_the_graph_database(graph_database):
    migrate()
    status, stats = call_api(api_event("GET", "/stats"))
    assert status == 200 and stats["documents"] == 0 and stats["triples"] == 0
    status, body = call_api(api_event("DELETE", "/documents/notes%2Fnone.txt", resource="/documents/{source}",
                                      path_parameters={"source": "notes/none.txt"}))
    assert status == 404 and "notes/none.txt" in body["error"]


def test_a_pipeline_that_cannot_be_started_leaves_its_job_failed(monkeypatch):
    missing = os.environ["KG_STATE_MACHINE_ARN"].replace("kg-pipeline", "kg-gone")
    monkeypatch.setenv("KG_STATE_MACHINE_ARN", missing)
    with pytest.raises(ClientError):  # the API answers 502: an error of the service, not of the request
        post_job({"source": "notes/curie.txt", "text": TEXT})
    [job] = ledger().list_jobs()
    assert job.status is JobStatus.FAILED and "the pipeline could not be started" in job.error
    assert not [k for k in bucket_keys() if k.startswith("jobs/")]
