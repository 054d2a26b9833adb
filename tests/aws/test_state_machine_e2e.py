"""The synthesized state machine, executed in moto with the real handlers: end to end as in AWS.

Jobs come in through the API handler (POST /jobs) or the S3 upload handler; the definition the CDK
app synthesizes runs in moto's Step Functions interpreter, each task served in-process by the
function's real handler (tests/support/pipeline.py); S3, DynamoDB and Secrets Manager are moto's,
the graph is a real PostgreSQL reached through the database secret, the LLM and the embeddings the
fake OpenAI server. Retry waits are no-ops; everything else (Map, Retry, Catch, the `more` loops,
FailJob) is the interpreter's.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from kg.aws.ports import aws_ports, reset_ports
from kg.chunking import chunk_text
from kg.documents import decode_document
from kg.engine.local import ingest, open_local_ports
from kg.errors import ProviderUnavailable
from kg.models import ChunkStatus, JobStatus
from kg.settings import Settings

from tests.aws.conftest import (
    BUCKET,
    api_event,
    call_api,
    ledger,
    many_paragraphs,
    migrate,
)
from tests.support.fake_openai import Reply
from tests.support.handlers import (
    CHUNK_FAILED,
    EXTRACT_CHUNK,
    MERGE_AND_STORE,
    S3_UPLOAD,
    load_handler,
    raising,
)
from tests.support.pipeline import MotoPipeline, map_iterations
from tests.support.sfn import FakeLambdaContext, states_entered
from tests.support.stages import graph_fingerprint

SOURCE = "notes/curie.txt"
OPTIONS = {"concepts": True, "dedup": True}
PARAGRAPHS = 12  # four chunks at the tests' 200 tokens a chunk


# Map items share one Powertools Metrics object in this process, so one item's flush can empty
# another's; and a handler that raises publishes none. Neither happens to a Lambda container.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")


@pytest.fixture(scope="module")
def moto_pipeline(synth) -> MotoPipeline:
    return MotoPipeline(synth.template)


@pytest.fixture
def pipeline(moto_pipeline, graph_database, fake_openai, monkeypatch) -> Iterator[MotoPipeline]:
    """The state machine created in this test's moto, the API and S3 upload functions starting it,
    the graph database migrated as a deploy does."""
    with moto_pipeline.running() as running:
        monkeypatch.setenv("KG_STATE_MACHINE_ARN", running.arn)
        reset_ports()
        migrate()
        yield running
        reset_ports()


def post_job(text: str, source: str = SOURCE, options: dict[str, bool] | None = None) -> str:
    status, body = call_api(api_event("POST", "/jobs", {"source": source, "text": text,
                                                        "options": OPTIONS if options is None else options}))
    assert status == 202, body
    return body["job_id"]


def get_job(job_id: str) -> dict[str, Any]:
    status, body = call_api(api_event("GET", f"/jobs/{job_id}", resource="/jobs/{id}", path_parameters={"id": job_id}))
    assert status == 200, body
    return body


def local_graph(text: str, database_url: str, tmp_path) -> tuple[dict[str, str], Any]:
    """The local engine on its own database, with the settings the functions read from the environment."""
    settings = Settings(database_url=database_url, data_dir=tmp_path / "local", concepts=OPTIONS["concepts"],
                        dedup=OPTIONS["dedup"], openai_api_key="test-key")
    ports = open_local_ports(settings)
    try:
        report = ingest(decode_document(text.encode(), SOURCE, settings.max_document_bytes), ports, settings)
        return graph_fingerprint(ports.db), report
    finally:
        ports.close()


def test_a_document_posted_to_the_api_runs_to_the_local_engines_graph(pipeline, fake_openai, new_database,
                                                                      tmp_path):
    text = many_paragraphs(PARAGRAPHS)
    job_id = post_job(text)
    described = pipeline.wait(job_id)
    assert described["status"] == "SUCCEEDED", described
    aws_requests = len(fake_openai.requests)

    job = ledger().get(job_id, with_chunks=True)
    assert (job.status, job.progress, job.chunks_failed) == (JobStatus.SUCCEEDED, 100, 0)
    assert job.chunks_total > 2
    events = pipeline.history(job_id)
    assert sorted(map_iterations(events)) == list(range(job.chunks_total))  # one Map iteration per chunk
    entered = states_entered(events)
    assert entered[0] == "Plan" and entered[-2:] == ["Finalize", "Done"]
    assert entered.count("ExtractChunk") == job.chunks_total
    assert {"GenerateConcepts", "Deduplicate"} <= set(entered) and "FailJob" not in entered

    aws_graph = graph_fingerprint(aws_ports().db)
    local, report = local_graph(text, new_database(), tmp_path)
    assert (report.status, report.chunks) == (JobStatus.SUCCEEDED, job.chunks_total)
    assert len(fake_openai.requests) == 2 * aws_requests  # the same questions (each engine has its LLM cache)
    assert all(int(aws_graph[t].split(":")[0]) > 0 for t in ("triples", "triple_provenance", "conceptualizations"))
    assert aws_graph == local

    answer = get_job(job_id)
    assert (answer["status"], answer["progress"], answer["execution"]["status"]) == ("SUCCEEDED", 100, "SUCCEEDED")


def middle_chunk(text: str) -> tuple[int, str]:
    """A chunk in the middle of the document, and a phrase of its text that no other chunk holds
    (chunks overlap: the phrases at their edges are in two)."""
    settings = Settings()
    chunks = chunk_text(text, "d", settings.chunk_tokens, settings.chunk_overlap_tokens, settings.tokenizer_encoding)
    middle = len(chunks) // 2
    for i in range(PARAGRAPHS):
        phrase = f"Part {i}."
        if [c.index for c in chunks if phrase in c.text] == [middle]:
            return middle, phrase
    raise AssertionError(f"no phrase is only in chunk {middle}")


def stored_chunks() -> set[int]:
    """The indexes of the chunks the graph holds facts from."""
    with aws_ports().db.connection() as conn:
        rows = conn.execute("SELECT DISTINCT c.idx FROM triple_provenance p JOIN chunks c ON c.id = p.chunk_id")
        return {row[0] for row in rows.fetchall()}


@pytest.mark.parametrize("how", ["llm_answers_500", "extract_function_raises"])
def test_a_chunk_that_always_fails_leaves_the_job_partial_with_the_other_chunks_stored(
        pipeline, fake_openai, monkeypatch, how):
    text = many_paragraphs(PARAGRAPHS)
    failing, phrase = middle_chunk(text)
    if how == "llm_answers_500":  # the extractor records every type failed: a FAILED chunk, no exception
        fake_openai.on(lambda r: r.path.endswith("/chat/completions") and phrase in r.message("user"),
                       Reply(status=500))
    else:  # the function fails, is retried past its attempts, then caught: ChunkFailed records it
        module = load_handler(EXTRACT_CHUNK)
        extract = module.extract_chunk

        def extract_or_fail(task, *ports):
            if task.index == failing:
                raise ProviderUnavailable(f"chunk {task.index}: the LLM endpoint is down")
            return extract(task, *ports)

        monkeypatch.setattr(module, "extract_chunk", extract_or_fail)

    job_id = post_job(text)
    described = pipeline.wait(job_id)
    assert described["status"] == "SUCCEEDED", described  # the execution ends well; the job is PARTIAL
    job = ledger().get(job_id, with_chunks=True)
    assert (job.status, job.progress, job.chunks_failed) == (JobStatus.PARTIAL, 100, 1)
    assert [c.index for c in job.chunks if c.status is ChunkStatus.FAILED] == [failing]
    assert f"chunk {failing}" in job.error
    assert stored_chunks() == set(range(job.chunks_total)) - {failing}

    attempts = [c.error for c in pipeline.calls.of(pipeline.function(EXTRACT_CHUNK)) if c.event["index"] == failing]
    entered = states_entered(pipeline.history(job_id))
    if how == "llm_answers_500":
        assert attempts == [None] and "ChunkFailed" not in entered
    else:
        assert attempts == ["ProviderUnavailable"] * 5  # the first call and its 4 retries
        assert entered.count("ChunkFailed") == 1
        (recorded,) = pipeline.calls.of(pipeline.function(CHUNK_FAILED))
        assert recorded.event["failure"]["Error"] == "ProviderUnavailable"
        assert "the LLM endpoint is down" in job.chunks[failing].error


def s3_created(key: str, size: int) -> dict[str, Any]:
    """The notification S3 sends for an object created (its key URL-encoded, spaces as '+')."""
    return {"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2026-01-05T10:00:00.000Z", "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AWS:EXAMPLE"}, "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810", "x-amz-id-2": "FMyUVURIY8"},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "incoming",
               "bucket": {"name": BUCKET, "ownerIdentity": {"principalId": "EXAMPLE"}, "arn": f"arn:aws:s3:::{BUCKET}"},
               "object": {"key": key.replace(" ", "+"), "size": size, "eTag": "0123456789abcdef",
                          "sequencer": "0A1B2C3D4E5F00"}},
    }]}


def test_an_uploaded_object_starts_a_job_that_succeeds(pipeline):
    text = many_paragraphs(4)
    key = "incoming/field notes/curie.txt"
    boto3.client("s3").put_object(Bucket=BUCKET, Key=key, Body=text.encode())
    upload = load_handler(S3_UPLOAD).handler
    started = upload(s3_created(key, len(text)), FakeLambdaContext(function_name=pipeline.function(S3_UPLOAD)))
    (job_id,) = started["jobs"]
    described = pipeline.wait(job_id)
    assert described["status"] == "SUCCEEDED", described
    answer = get_job(job_id)
    assert (answer["status"], answer["source"], answer["execution"]["status"]) == (
        "SUCCEEDED", "field notes/curie.txt", "SUCCEEDED")
    assert stored_chunks() == set(range(answer["chunks_total"]))


def test_the_same_document_submitted_twice_runs_once(pipeline):
    text = many_paragraphs(3)
    submission = {"source": SOURCE, "text": text, "options": OPTIONS}
    first = post_job(text)
    again_while_running = call_api(api_event("POST", "/jobs", submission))
    assert pipeline.wait(first)["status"] == "SUCCEEDED"
    again_once_ended = call_api(api_event("POST", "/jobs", submission))
    pipeline.settle()
    for status, body in (again_while_running, again_once_ended):
        assert (status, body["job_id"], body["started"]) == (202, first, False), body
    assert [e["name"] for e in pipeline.executions()] == [first]
    assert get_job(first)["status"] == "SUCCEEDED"


def test_a_stage_that_raises_fails_the_job_with_its_error_in_the_api(pipeline, monkeypatch):
    monkeypatch.setattr(load_handler(MERGE_AND_STORE), "merge_and_store",
                        raising(RuntimeError("the graph refused the batch")))
    job_id = post_job(many_paragraphs(3))
    described = pipeline.wait(job_id)
    assert described["status"] == "FAILED", described
    assert described["error"] == "RuntimeError"
    entered = states_entered(pipeline.history(job_id))
    assert entered[-3:] == ["MergeAndStore", "FailJob", "JobFailed"]
    assert "Finalize" not in entered

    answer = get_job(job_id)
    assert (answer["status"], answer["execution"]["status"]) == ("FAILED", "FAILED")
    assert "RuntimeError" in answer["error"] and "the graph refused the batch" in answer["error"]
