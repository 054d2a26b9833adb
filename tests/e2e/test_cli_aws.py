"""`kg --engine aws` end to end: the installed command drives a stack "deployed" on a moto server.

The stack is found through CloudFormation by name (KG_STACK_NAME) and reached through
AWS_ENDPOINT_URL; its state machine is the synthesized one, executed by moto, each Lambda task the
real handler (offline extraction, the graph in the embedded PostgreSQL). moto's API Gateway does not
invoke Lambda proxy integrations, so the stack's API URL is a local stand-in that requires a SigV4
signature and runs the API handler (tests/support/api_gateway.py).
"""

from __future__ import annotations

import boto3
import pytest

from tests.e2e.conftest import EXAMPLE, NO_API_STACK, OTHER_STACK
from tests.support.handlers import MERGE_AND_STORE, load_handler, raising
from tests.support.sfn import wait_for_execution

TYPES = ("ENTITY_ENTITY", "ENTITY_EVENT", "EVENT_EVENT", "EMOTIONAL_CONTEXT")


def stored(moto_stack) -> tuple[list[str], list[str]]:
    """Every object of the bucket and every job of the ledger table: what a refused command must not add."""
    objects = boto3.client("s3").list_objects_v2(Bucket=moto_stack.bucket).get("Contents", [])
    items = boto3.client("dynamodb").scan(TableName=moto_stack.table, ProjectionExpression="pk, sk")["Items"]
    return sorted(o["Key"] for o in objects), sorted(i["pk"]["S"] + i["sk"]["S"] for i in items)


@pytest.mark.slow
def test_ingest_on_the_stack_succeeds_and_status_jobs_and_stats_read_it(kg_aws, moto_stack):
    run = kg_aws("ingest", "--engine", "aws", str(EXAMPLE), "--source-date", "2024-05-01", "--json")
    assert run.code == 0, run.stderr
    (report,) = run.json_lines()
    assert report["status"] == "SUCCEEDED", report
    assert report["source"] == str(EXAMPLE) and report["chunks"] >= 2 and report["chunks_failed"] == 0
    assert all(report["triples"][t] > 0 for t in TYPES)
    assert report["embeddings"]["computed"] > 0 and report["tokens"] > 0
    assert f"stack: {moto_stack.name}" in run.stderr

    status = kg_aws("status", "--engine", "aws", report["job_id"], "--json")
    assert status.code == 0, status.stderr
    job = status.json()
    assert (job["status"], job["progress"], job["stage"]) == ("SUCCEEDED", 100, "FINALIZE")
    assert job["chunks_done"] == report["chunks"]
    assert job["counts"]["triples"]["total"] == report["triples"]["total"]
    assert job["execution"]["status"] == "SUCCEEDED"
    assert job["execution"]["arn"] == (moto_stack.state_machine_arn.replace(":stateMachine:", ":execution:")
                                       + f":{report['job_id']}")  # the execution is named by the job id

    jobs = kg_aws("jobs", "--engine", "aws", "--json")
    assert jobs.code == 0, jobs.stderr
    assert report["job_id"] in [j["job_id"] for j in jobs.json()]
    by_setting = kg_aws("jobs", "--json", extra_env={"KG_ENGINE": "aws"})  # the setting instead of the option
    assert by_setting.code == 0 and by_setting.json() == jobs.json()

    stats = kg_aws("stats", "--engine", "aws", "--json")
    assert stats.code == 0, stats.stderr
    totals = stats.json()
    assert totals["triples"] == report["triples"]["total"] and totals["documents"] == 1
    assert totals["triples_by_type"] == {t: report["triples"][t] for t in TYPES}
    (request,) = [r for r in moto_stack.api.requests if r.path == "/stats"][-1:]
    assert request.method == "GET" and request.authorization.startswith("AWS4-HMAC-SHA256 Credential=testing/")


def test_ingest_without_waiting_starts_the_job_once_and_rerun_starts_another(kg_aws, moto_stack, tmp_path):
    document = tmp_path / "note.txt"
    document.write_text("Marie Curie discovered polonium in Paris. Pierre Curie worked with her.")
    ingest = ("ingest", "--engine", "aws", str(document), "--no-wait", "--no-concepts", "--json")
    run = kg_aws(*ingest)
    assert run.code == 0, run.stderr
    (started,) = run.json_lines()
    assert (started["status"], started["started"], started["source"]) == ("QUEUED", True, str(document))
    assert started["execution_arn"].endswith(f":{started['job_id']}")
    sfn = boto3.client("stepfunctions")
    assert wait_for_execution(sfn, started["execution_arn"], timeout_s=120)["status"] == "SUCCEEDED"
    job = kg_aws("status", "--engine", "aws", started["job_id"], "--json").json()
    assert (job["status"], job["progress"]) == ("SUCCEEDED", 100) and "concepts" not in job["counts"]

    (again,) = kg_aws(*ingest).json_lines()  # the same submission is the same job, as through the API
    assert (again["job_id"], again["status"], again["started"]) == (started["job_id"], "SUCCEEDED", False)

    (rerun,) = kg_aws(*ingest, "--rerun").json_lines()
    assert rerun["started"] is True and rerun["job_id"] != started["job_id"]
    assert wait_for_execution(sfn, rerun["execution_arn"], timeout_s=120)["status"] == "SUCCEEDED"


def test_a_job_that_fails_on_the_stack_exits_1_with_its_error(kg_aws, monkeypatch, tmp_path):
    monkeypatch.setattr(load_handler(MERGE_AND_STORE), "merge_and_store",
                        raising(RuntimeError("the graph refused the batch")))
    document = tmp_path / "refused.txt"
    document.write_text("Irene Curie married Frederic Joliot in Paris.")
    run = kg_aws("ingest", "--engine", "aws", str(document), "--json")
    assert run.code == 1, run.stderr
    (report,) = run.json_lines()
    assert report["status"] == "FAILED" and "the graph refused the batch" in report["error"]


def test_stats_without_a_reachable_api_is_a_clear_error(kg_aws):
    run = kg_aws("stats", "--engine", "aws", extra_env={"KG_STACK_NAME": NO_API_STACK})
    assert run.code == 2, run.stderr
    assert "the stack's API at http://127.0.0.1:" in run.stderr and "cannot be reached" in run.stderr
    assert "Traceback" not in run.stderr


def bad_inputs(tmp_path):
    good = tmp_path / "good.txt"
    good.write_text("Marie Curie discovered radium.")
    (tmp_path / "empty.txt").write_text("")
    return {
        "missing file": (["ingest", "--engine", "aws", str(tmp_path / "nope.txt")], "no such file", {}),
        "empty file": (["ingest", "--engine", "aws", str(good), str(tmp_path / "empty.txt")], "empty", {}),
        "unknown engine": (["ingest", "--engine", "gcp", str(good)], "setting engine", {}),
        "empty stack name": (["ingest", "--engine", "aws", str(good)], "setting stack_name", {"KG_STACK_NAME": ""}),
        "unknown stack": (["ingest", "--engine", "aws", str(good)], "no stack 'nope'", {"KG_STACK_NAME": "nope"}),
        "not the kg stack": (["ingest", "--engine", "aws", str(good)], "has no output", {"KG_STACK_NAME": OTHER_STACK}),
        "no endpoint": (["ingest", "--engine", "aws", str(good)], "cannot reach",
                        {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_MAX_ATTEMPTS": "1"}),
        "local option": (["ingest", "--engine", "aws", str(good), "--max-concurrency", "2"], "kg:mapMaxConcurrency", {}),
        "aws option": (["ingest", str(good), "--rerun"], "--rerun is for --engine aws", {}),
        "unknown job": (["status", "--engine", "aws", "00000000-0000-0000-0000-000000000000"], "no job", {}),
        "delete on the aws engine": (["delete", "x"], "local engine only", {"KG_ENGINE": "aws"}),
    }


@pytest.mark.parametrize("case", [
    "missing file", "empty file", "unknown engine", "empty stack name", "unknown stack", "not the kg stack",
    "no endpoint", "local option", "aws option", "unknown job", "delete on the aws engine",
])
def test_bad_input_exits_2_with_a_clear_message_and_writes_nothing(kg_aws, moto_stack, tmp_path, case):
    args, expected, extra_env = bad_inputs(tmp_path)[case]
    before = stored(moto_stack)
    run = kg_aws(*args, extra_env=extra_env)
    assert run.code == 2, (run.stdout, run.stderr)
    assert expected in run.stderr and "Traceback" not in run.stderr
    assert stored(moto_stack) == before
