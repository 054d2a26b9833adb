"""A failure injected in each handler's stage ends the job FAILED with its error, through the
failure handler, as the state machine's Catches route it."""

from __future__ import annotations

import uuid

import boto3
import pytest

from kg.models import JobStatus
from tests.aws.conftest import BUCKET, ledger, many_paragraphs, migrate, submit
from tests.support.handlers import (
    CHUNK_FAILED,
    DEDUPLICATE,
    EXTRACT_CHUNK,
    FAIL_JOB,
    FINALIZE,
    GENERATE_CONCEPTS,
    MERGE_AND_STORE,
    PLAN,
    HandlerDriver,
    load_handler,
    raising,
)

OPTIONS = {"concepts": True, "dedup": True}
TEXT = many_paragraphs(8)  # three chunks
# A handler that raises before its stage returns has published no metric: Powertools says so.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


def objects_under(prefix: str) -> list[str]:
    listed = boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return [o["Key"] for o in listed.get("Contents", [])]


@pytest.mark.parametrize(("injected", "expected"), [
    ({PLAN: "plan"}, "RuntimeError: injected into plan"),
    # Every Map item fails past its retries, so the chunks are recorded failed and merge-and-store finds nothing.
    ({EXTRACT_CHUNK: "extract_chunk"}, "ExtractionFailed: all 3 chunks failed, nothing to store "
                                       "(first error: RuntimeError: injected into extract_chunk)"),
    ({EXTRACT_CHUNK: "extract_chunk", CHUNK_FAILED: "fail_chunk"}, "RuntimeError: injected into fail_chunk"),
    ({MERGE_AND_STORE: "merge_and_store"}, "RuntimeError: injected into merge_and_store"),
    ({GENERATE_CONCEPTS: "generate_concepts"}, "RuntimeError: injected into generate_concepts"),
    ({DEDUPLICATE: "deduplicate"}, "RuntimeError: injected into deduplicate"),
    ({FINALIZE: "finalize"}, "RuntimeError: injected into finalize"),
], ids=["plan", "extract_chunk", "fail_chunk", "merge_and_store", "generate_concepts", "deduplicate", "finalize"])
def test_a_failing_stage_ends_the_job_failed_with_its_error(graph_database, offline_ports, monkeypatch,
                                                             injected, expected):
    for handler_file, stage in injected.items():
        monkeypatch.setattr(load_handler(handler_file), stage, raising(RuntimeError(f"injected into {stage}")))
    migrate()
    driver = HandlerDriver()
    state = driver.run(submit(TEXT, "notes/curie.txt", OPTIONS))

    assert set(injected) <= {c.handler_file for c in driver.calls if c.error}
    assert [c.handler_file for c in driver.calls][-1] == FAIL_JOB
    assert state["outcome"] == {"job_id": state["job_id"], "status": "FAILED", "error": expected}
    job = ledger().get(state["job_id"], with_chunks=False)
    assert (job.status, job.progress, job.error) == (JobStatus.FAILED, 100, expected)
    assert objects_under(f"jobs/{state['job_id']}/") == []  # what the stages kept is cleaned up


def test_the_failure_handler_ends_a_job_plan_never_opened_and_is_safe_to_repeat(offline_ports):
    job_id = str(uuid.uuid4())
    event = {"job_id": job_id, "source": "notes/broken.txt",
             "failure": {"Error": "States.Timeout", "Cause": "Plan timed out"}}
    driver = HandlerDriver()
    first = driver.call(FAIL_JOB, event)
    assert first == {"job_id": job_id, "status": "FAILED", "error": "States.Timeout: Plan timed out"}
    assert driver.call(FAIL_JOB, event) == first
    job = ledger().get(job_id)
    assert (job.source, job.status, job.error) == ("notes/broken.txt", JobStatus.FAILED, first["error"])


def test_a_finished_job_is_not_failed_afterwards(graph_database, offline_ports):
    migrate()
    driver = HandlerDriver()
    state = driver.run(submit(many_paragraphs(2), "notes/curie.txt", OPTIONS))
    assert state["outcome"]["status"] == "SUCCEEDED"
    late = driver.call(FAIL_JOB, {"job_id": state["job_id"], "source": state["source"],
                                  "failure": {"Error": "States.Runtime", "Cause": "late"}})
    assert late == state["outcome"]
    assert ledger().get(state["job_id"]).status is JobStatus.SUCCEEDED
