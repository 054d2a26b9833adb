"""The API function: a submission is stored and started (202), the same submission again is the same
job and no second execution, a bad request is refused whole (400, nothing written), an unknown job
is 404, a job reads with its execution, and docs/openapi.json is what the resolver generates."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import boto3

from kg.aws.api import API_VERSION, app, openapi_document
from kg.aws.jobs import console_url
from kg.blobs import text_key
from kg.models import ChunkState, ChunkStatus, JobStatus, LlmUsage, Stage
from tests.aws.conftest import BUCKET, api_event, call_api, ledger, migrate
from tests.support.handlers import API, load_handler
from tests.support.sfn import FakeLambdaContext

TEXT = "Marie Curie worked in Paris with Pierre Curie."
OPENAPI = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
# The routes API Gateway has (infra/stack.py `_api`), as the OpenAPI document names them.
ROUTES = {("post", "/jobs"), ("get", "/jobs"), ("get", "/jobs/{id}"), ("get", "/stats"),
          ("delete", "/documents/{source}"), ("get", "/documents"), ("get", "/triples/{id}"), ("get", "/nodes/{id}"),
          ("get", "/overview"), *((method, path) for method in ("get", "post")
                                               for path in ("/search", "/concepts", "/neighbors"))}


def executions() -> list[dict]:
    sfn = boto3.client("stepfunctions")
    listed = sfn.list_executions(stateMachineArn=os.environ["KG_STATE_MACHINE_ARN"])["executions"]
    return [sfn.describe_execution(executionArn=e["executionArn"]) for e in listed]


def bucket_keys() -> list[str]:
    return [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=BUCKET).get("Contents", [])]


def post_job(body: Any) -> tuple[int, dict]:
    return call_api(api_event("POST", "/jobs", body))


def get_job(job_id: str) -> tuple[int, dict]:
    return call_api(api_event("GET", f"/jobs/{job_id}", resource="/jobs/{id}", path_parameters={"id": job_id}))


def accepted(body: Any) -> dict:
    status, answer = post_job(body)
    assert status == 202, answer
    return answer


def assert_nothing_written(*kept: str) -> None:
    assert bucket_keys() == sorted(kept) and executions() == [] and ledger().list_jobs() == []


# -- submitting -----------------------------------------------------------------------------------


def test_a_submitted_job_is_stored_queued_and_its_execution_started():
    response = load_handler(API).handler(api_event("POST", "/jobs", {"source": "notes/curie.txt", "text": TEXT,
                                                            "options": {"dedup": True}}),
                                         FakeLambdaContext(function_name="kg-api"))
    assert response["statusCode"] == 202
    body = json.loads(response["body"])
    job_id = body["job_id"]
    assert body == {"job_id": job_id, "status_url": f"/jobs/{job_id}", "status": "QUEUED", "started": True}
    assert response["multiValueHeaders"]["Location"] == [f"/v1/jobs/{job_id}"]  # the stage comes first
    [started] = executions()
    assert started["name"] == job_id
    assert json.loads(started["input"]) == {
        "job_id": job_id, "source": "notes/curie.txt", "source_type": "text", "source_date": None,
        "text_key": text_key(job_id), "options": {"concepts": True, "dedup": True},
    }
    stored = boto3.client("s3").get_object(Bucket=BUCKET, Key=text_key(job_id))["Body"].read()
    assert stored.decode() == TEXT
    job = ledger().get(job_id)
    assert (job.status, job.source) == (JobStatus.QUEUED, "notes/curie.txt")


def test_the_type_and_date_go_to_the_plan_request_and_options_left_out_come_from_the_settings(monkeypatch):
    monkeypatch.setenv("KG_DEDUP", "true")
    monkeypatch.setenv("KG_CONCEPTS", "false")
    accepted({"source": "a.txt", "text": TEXT, "source_type": "letter", "source_date": "1903-06-25"})
    request = json.loads(executions()[0]["input"])
    assert request["options"] == {"concepts": False, "dedup": True}
    assert (request["source_type"], request["source_date"]) == ("letter", "1903-06-25T00:00:00Z")


def test_a_document_already_in_the_bucket_is_submitted_by_its_key():
    boto3.client("s3").put_object(Bucket=BUCKET, Key="uploads/curie.txt", Body=TEXT.encode())
    accepted({"source": "curie", "text_key": "uploads/curie.txt"})
    assert json.loads(executions()[0]["input"])["text_key"] == "uploads/curie.txt"
    assert bucket_keys() == ["uploads/curie.txt"]  # read in place, not copied


# -- idempotency ----------------------------------------------------------------------------------


def test_the_same_submission_twice_is_one_job_and_one_execution():
    body = {"source": "a.txt", "text": TEXT, "options": {"dedup": True}}
    first, second = accepted(body), accepted(body)
    assert second == {**first, "started": False}
    assert [e["name"] for e in executions()] == [first["job_id"]]
    assert [j.job_id for j in ledger().list_jobs()] == [first["job_id"]]


def test_the_same_document_in_the_bucket_and_in_the_request_is_one_job():
    boto3.client("s3").put_object(Bucket=BUCKET, Key="uploads/a.txt", Body=TEXT.encode())
    by_text = accepted({"source": "a.txt", "text": TEXT})
    by_key = accepted({"source": "a.txt", "text_key": "uploads/a.txt"})
    assert (by_key["job_id"], by_key["started"]) == (by_text["job_id"], False)
    assert len(executions()) == 1


def test_a_changed_submission_is_a_new_job_and_an_equal_one_is_not():
    base = {"source": "a.txt", "text": TEXT, "source_date": "1903-06-25"}
    changes = [{"text": TEXT + " Pierre died in 1906."}, {"source": "b.txt"}, {"options": {"concepts": False}},
               {"source_type": "letter"}, {"source_date": "1903-06-26"}]
    jobs = [accepted({**base, **change}) for change in [{}, *changes]]
    assert all(job["started"] for job in jobs)
    assert len({job["job_id"] for job in jobs}) == len(executions()) == 1 + len(changes)
    # The same instant in another zone, and an option stated as the default it would get, are the same.
    for same in ({"source_date": "1903-06-25T02:00:00+02:00"}, {"options": {"concepts": True}}):
        assert accepted({**base, **same})["job_id"] == jobs[0]["job_id"]
    assert len(executions()) == 1 + len(changes)


def test_a_finished_job_stands_and_rerun_starts_one_new_attempt():
    body = {"source": "a.txt", "text": TEXT}
    first = accepted(body)["job_id"]
    assert accepted({**body, "rerun": True}) == {  # still queued: a rerun joins it
        "job_id": first, "status_url": f"/jobs/{first}", "status": "QUEUED", "started": False}
    ledger().finish(first, JobStatus.FAILED, error="the LLM endpoint is down")

    again = accepted(body)
    assert (again["job_id"], again["status"], again["started"]) == (first, "FAILED", False)
    rerun = accepted({**body, "rerun": True})
    assert rerun["job_id"] != first and (rerun["status"], rerun["started"]) == ("QUEUED", True)
    assert accepted({**body, "rerun": True})["job_id"] == rerun["job_id"]  # the rerun sent twice: one attempt
    assert accepted(body)["job_id"] == rerun["job_id"]  # the latest attempt answers for the submission
    assert sorted(e["name"] for e in executions()) == sorted([first, rerun["job_id"]])
    assert json.loads(executions()[0]["input"])["text_key"] in {text_key(first), text_key(rerun["job_id"])}


def test_an_execution_there_before_the_job_is_taken_as_the_job(monkeypatch):
    """Two submissions racing past the ledger look-up: the second start meets the first's execution.
    Simulated by a ledger that has not seen the job yet when the execution has ended already."""
    from kg.aws import jobs

    body = {"source": "a.txt", "text": TEXT}
    first = accepted(body)["job_id"]
    sfn = boto3.client("stepfunctions")
    sfn.stop_execution(executionArn=executions()[0]["executionArn"])  # ended: a restart is ExecutionAlreadyExists
    monkeypatch.setattr(jobs, "latest_attempt", lambda key, ledger: (0, None))
    again = accepted(body)
    assert (again["job_id"], again["started"], again["status"]) == (first, False, "QUEUED")
    assert len(executions()) == 1


def test_a_pipeline_that_cannot_be_started_is_503_and_the_same_request_can_be_sent_again(monkeypatch):
    arn = os.environ["KG_STATE_MACHINE_ARN"]
    monkeypatch.setenv("KG_STATE_MACHINE_ARN", arn.replace("kg-pipeline", "kg-gone"))
    from kg.aws.ports import reset_ports

    reset_ports()
    status, body = post_job({"source": "a.txt", "text": TEXT})
    assert status == 503 and "StateMachineDoesNotExist" in body["error"] and "try again" in body["error"]
    assert ledger().list_jobs() == []  # no job that would stand for the submission without an execution

    monkeypatch.setenv("KG_STATE_MACHINE_ARN", arn)
    reset_ports()
    job = accepted({"source": "a.txt", "text": TEXT})
    assert job["started"] and [e["name"] for e in executions()] == [job["job_id"]]


# -- refusals -------------------------------------------------------------------------------------


BAD_REQUESTS = [
    (None, "the request has no body"),
    ("", "the request has no body"),
    ("{not json", "the body is not valid JSON"),
    ("[1, 2]", "the body must be a JSON object"),
    ('"just text"', "the body must be a JSON object"),
    ("[" * 100_000, "the body is not usable JSON: it is nested too deeply"),
    ({"text": TEXT}, "source: Field required"),
    ({"source": "a.txt"}, "give the document as `text`, or as `text_key`"),
    ({"source": "a.txt", "text": TEXT, "text_key": "uploads/a.txt"}, "not both"),
    ({"source": "a.txt", "text": ""}, "text: String should have at least 1 character"),
    ({"source": "a.txt", "text": "   \n"}, "a.txt: the document is empty"),
    ({"source": "a.txt", "text": "bin\u0000ary"}, "a.txt: not text (it contains NUL bytes)"),
    ({"source": "a.txt", "text": "x" * 2_000}, "a.txt: 2,000 bytes is over the limit of 1,000"),
    ({"source": "a.txt", "text": "é" * 600}, "1,200 bytes is over the limit"),  # bytes, not characters
    ({"source": "  ", "text": TEXT}, "source: the source name is empty"),
    ({"source": "a" * 1025, "text": TEXT}, "source: String should have at most 1024 characters"),
    ({"source": 7, "text": TEXT}, "source: Input should be a valid string"),
    ({"source": "a\u0000.txt", "text": TEXT}, "source: a name cannot contain a NUL character"),
    ('{"source": "a.txt", "text": "\\ud800"}', "text: Input should be a valid string"),  # a lone surrogate
    ({"source": "a.txt", "text": TEXT, "language": "en"}, "language: Extra inputs are not permitted"),
    ({"source": "a.txt", "text": TEXT, "options": {"summaries": True}}, "options.summaries: Extra inputs"),
    ({"source": "a.txt", "text": TEXT, "options": {"concepts": "maybe"}},
     "options.concepts: Input should be a valid boolean"),
    ({"source": "a.txt", "text": TEXT, "options": []}, "options: Input should be a valid dictionary"),
    ({"source": "a.txt", "text": TEXT, "source_date": "last week"}, "source_date: Input should be a valid datetime"),
    ({"source": "a.txt", "text": TEXT, "source_date": "2024-13-01"}, "source_date: Input should be a valid datetime"),
    ({"source": "a.txt", "text": TEXT, "source_type": ""}, "source_type: String should have at least 1 character"),
    ({"source": "a.txt", "text": TEXT, "rerun": "sometimes"}, "rerun: Input should be a valid boolean"),
    ({"source": "a.txt", "text_key": "uploads/missing.txt"}, "no such object in the bucket"),
    ({"source": "a.txt", "text_key": "jobs/1/input.txt"}, "the pipeline's own objects cannot be submitted"),
    ({"source": "a.txt", "text_key": "uploads/big.txt"}, "a.txt: 1,001 bytes is over the limit of 1,000"),
    ({"source": "a.txt", "text_key": "uploads/latin1.txt"}, "a.txt: not UTF-8 text (invalid byte at offset 3)"),
    ({"text": "", "source": "  ", "extra": 1}, "source: the source name is empty; text: String should have"),
]


def test_a_bad_request_is_400_with_the_reason_and_writes_nothing(monkeypatch, subtests):
    monkeypatch.setenv("KG_MAX_DOCUMENT_BYTES", "1000")
    s3 = boto3.client("s3")
    s3.put_object(Bucket=BUCKET, Key="uploads/big.txt", Body=b"x" * 1001)
    s3.put_object(Bucket=BUCKET, Key="uploads/latin1.txt", Body="café au lait".encode("latin-1"))
    for body, message in BAD_REQUESTS:
        with subtests.test(body=str(body)[:60]):
            status, answer = post_job(body)
            assert status == 400, answer
            assert message in answer["error"]
            assert_nothing_written("uploads/big.txt", "uploads/latin1.txt")


def test_a_body_that_is_not_json_is_415_and_writes_nothing(subtests):
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data",
                         "multipart/form-data; boundary=xyz", "application/xml"):
        with subtests.test(content_type=content_type):
            event = api_event("POST", "/jobs", "source=a.txt&text=hello")
            event["headers"] = {"Content-Type": content_type}
            status, answer = call_api(event)
            assert status == 415 and "send JSON" in answer["error"]
            assert_nothing_written()


def test_a_json_body_with_a_charset_and_no_content_type_is_taken():
    event = api_event("POST", "/jobs", {"source": "a.txt", "text": TEXT})
    event["headers"] = {"Content-Type": "application/json; charset=utf-8"}
    assert call_api(event)[0] == 202
    event = api_event("POST", "/jobs", {"source": "b.txt", "text": TEXT})
    event["headers"] = {}
    assert call_api(event)[0] == 202


# -- reading ----------------------------------------------------------------------------------------


def test_a_job_reads_with_its_progress_chunks_usage_and_execution():
    job_id = accepted({"source": "notes/curie.txt", "text": TEXT})["job_id"]
    book = ledger()
    book.start_extraction(job_id, "6f1c7a52-4a8e-4a55-b7b8-8f3c1b3b8e7d", 3)
    usage = LlmUsage(calls=2, input_tokens=1200, output_tokens=300, cost_usd=0.00036)
    book.record_chunk(job_id, ChunkState(index=0, status=ChunkStatus.SUCCEEDED, triples=4), usage)
    book.record_chunk(job_id, ChunkState(index=1, status=ChunkStatus.FAILED, error="ProviderUnavailable: down"))

    status, job = get_job(job_id)
    assert status == 200
    assert (job["status"], job["stage"], job["source"]) == ("RUNNING", "EXTRACT", "notes/curie.txt")
    assert (job["chunks_total"], job["chunks_done"], job["chunks_failed"]) == (3, 2, 1)
    assert 5 < job["progress"] < 85
    assert job["llm"] == {"calls": 2, "cached": 0, "input_tokens": 1200, "cached_input_tokens": 0,
                          "output_tokens": 300, "cost_usd": 0.00036}
    assert job["failed_chunks"] == [{"index": 1, "status": "FAILED", "error": "ProviderUnavailable: down",
                                     "triples": 0, "attempts": 1}]
    arn = executions()[0]["executionArn"]
    assert job["execution"] == {"arn": arn, "status": "RUNNING", "console_url": (
        f"https://us-east-1.console.aws.amazon.com/states/home?region=us-east-1#/v2/executions/details/{arn}")}

    book.finish(job_id, JobStatus.PARTIAL, {"triples": {"entity_relation": 4}}, "1 of 3 chunks failed")
    job = get_job(job_id)[1]
    assert (job["status"], job["progress"], job["error"]) == ("PARTIAL", 100, "1 of 3 chunks failed")
    assert job["counts"]["triples"] == {"entity_relation": 4}


def test_a_job_without_an_execution_reads_with_none():
    job_id = "6f1c7a52-4a8e-4a55-b7b8-8f3c1b3b8e7d"
    ledger().create_job(job_id, "incoming/broken.bin")
    status, job = get_job(job_id)
    assert status == 200 and job["execution"] is None and job["stage"] == Stage.PLAN.value


def test_the_console_url_is_the_partitions():
    for arn, domain in (
        ("arn:aws:states:eu-west-1:1:execution:kg-pipeline:j", "eu-west-1.console.aws.amazon.com"),
        ("arn:aws-cn:states:cn-north-1:1:execution:kg-pipeline:j", "cn-north-1.console.amazonaws.cn"),
        ("arn:aws-us-gov:states:us-gov-west-1:1:execution:kg-pipeline:j", "us-gov-west-1.console.amazonaws-us-gov.com"),
    ):
        region = arn.split(":")[3]
        assert console_url(arn, region) == f"https://{domain}/states/home?region={region}#/v2/executions/details/{arn}"


def test_an_unknown_job_or_route_is_404():
    for job_id in ("6f1c7a52-4a8e-4a55-b7b8-8f3c1b3b8e7d", "not-a-job"):
        status, body = get_job(job_id)
        assert status == 404 and "no job" in body["error"]
    for method, path in (("GET", "/nowhere"), ("PUT", "/jobs")):
        status, body = call_api(api_event(method, path))
        assert status == 404 and f"no route {method} {path}" in body["error"]


def test_jobs_are_listed_newest_first_and_a_bad_limit_is_400():
    first = accepted({"source": "a.txt", "text": TEXT})["job_id"]
    second = accepted({"source": "b.txt", "text": TEXT})["job_id"]
    status, body = call_api(api_event("GET", "/jobs", query={"limit": "10"}))
    assert status == 200
    assert [j["job_id"] for j in body["jobs"]] == [second, first]
    assert "failed_chunks" not in body["jobs"][0] and body["jobs"][0]["status"] == "QUEUED"
    assert [j["job_id"] for j in call_api(api_event("GET", "/jobs", query={"limit": "1"}))[1]["jobs"]] == [second]
    assert len(call_api(api_event("GET", "/jobs"))[1]["jobs"]) == 2  # 20 by default
    for limit, message in (("many", "valid integer"), ("0", "greater than or equal to 1"),
                           ("101", "less than or equal to 100")):
        status, body = call_api(api_event("GET", "/jobs", query={"limit": limit}))
        assert status == 400 and body["error"].startswith("limit (query parameter): ") and message in body["error"]


def test_stats_and_deletes_read_the_graph_database(graph_database):
    migrate()
    status, stats = call_api(api_event("GET", "/stats"))
    assert status == 200 and stats["documents"] == 0 and stats["triples"] == 0
    status, body = call_api(api_event("DELETE", "/documents/notes%2Fnone.txt", resource="/documents/{source}",
                                      path_parameters={"source": "notes/none.txt"}))
    assert status == 404 and "notes/none.txt" in body["error"]
    status, body = call_api(api_event("DELETE", "/documents/a%00b", resource="/documents/{source}",
                                      path_parameters={"source": "a\x00b"}))
    assert status == 400 and "NUL" in body["error"]


def test_a_database_out_of_reach_is_503(monkeypatch):
    monkeypatch.setenv("KG_DATABASE_URL", "postgresql://kg@127.0.0.1:9/kg?connect_timeout=1")
    from kg.aws.ports import reset_ports

    reset_ports()
    status, body = call_api(api_event("GET", "/stats"))
    assert status == 503 and "try again shortly" in body["error"]


# -- the OpenAPI document ---------------------------------------------------------------------------


def test_the_committed_openapi_document_is_the_one_the_code_generates():
    assert OPENAPI.read_text() == openapi_document(), (
        "docs/openapi.json is out of date: .venv/bin/python -m kg.aws.api > docs/openapi.json")


def test_the_openapi_document_lists_every_route_with_its_models_and_errors():
    document = json.loads(openapi_document())
    assert document["info"]["version"] == API_VERSION
    operations = {(method, path): op for path, ops in document["paths"].items() for method, op in ops.items()}
    registered = {(r.method.lower(), r.openapi_path) for r in app._static_routes + app._dynamic_routes}
    assert set(operations) == registered == ROUTES
    for operation in operations.values():
        responses = operation["responses"]
        assert "422" not in responses and "500" not in responses
        for code, response in responses.items():
            schema = response["content"]["application/json"]["schema"]
            assert (schema == {"$ref": "#/components/schemas/ApiError"}) == (int(code) >= 400)
    assert operations[("post", "/jobs")]["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/JobSubmission"}
    assert set(operations[("post", "/jobs")]["responses"]) == {"202", "400", "415", "503"}
    schemas = document["components"]["schemas"]
    assert schemas["JobSubmission"]["additionalProperties"] is False
    assert schemas["JobSubmission"]["required"] == ["source"]
    assert {"execution", "failed_chunks", "llm", "progress", "chunks_failed"} <= set(schemas["JobView"]["properties"])
    assert document["security"] == [{"sigv4": []}]
