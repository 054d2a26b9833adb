"""The synthesized definition, executed by moto's Step Functions interpreter with fake Lambda handlers.

This proves the shape works before the real handlers do: the Map runs one ExtractChunk per chunk
index, a chunk that fails past its retries goes through ChunkFailed and the Map goes on, a stage
returning `more` is called again, the options steer concepts and dedup, and an unhandled error ends
the job through FailJob and the execution FAILED. The fakes return the contract's shapes.
"""

from __future__ import annotations

import json
import threading

import boto3
import pytest

from infra import asl as asl_helper
from tests.support import sfn as moto_sfn_support
from tests.support.sfn import (
    create_state_machine,
    history,
    moto_sfn,
    no_retry_sleep,
    routed_lambdas,
    start_and_wait,
    states_entered,
)

JOB = "job-0001"


class RateLimitError(Exception):
    """Named like the openai client's error: a transient one the Map item retries."""


class ExtractionFailed(Exception):
    """Not transient: the item is caught and recorded as failed."""


class DatabaseBroken(Exception):
    pass


class StoreUnavailable(Exception):
    """Named like kg.errors.StoreUnavailable: the database is resuming, the stage waits and retries."""


def execution_input(concepts: bool = True, dedup: bool = False, llm_batch: bool | None = None) -> dict:
    return {
        "job_id": JOB,
        "source": "examples/curie.txt",
        "source_type": "text",
        "source_date": None,
        "text_key": f"jobs/{JOB}/input.txt",
        "options": {"concepts": concepts, "dedup": dedup, **({} if llm_batch is None else {"llm_batch": llm_batch})},
    }


class FakePipeline:
    """Fake handlers for every state machine task, by function name, returning the contract's shapes.

    `rounds` is how many calls each looping stage takes to answer `done` (1: done at once); `errors`
    makes a function raise, by function name."""

    def __init__(self, chunks: int = 3, failing_chunk: int | None = 1, store_rounds: int = 2,
                 store_error: Exception | None = None, throttled_once: int | None = 0,
                 rounds: dict[str, int] | None = None, errors: dict[str, Exception] | None = None):
        self.chunks = chunks
        self.failing_chunk = failing_chunk
        self.throttled_once = throttled_once
        self.rounds = {"kg-merge-and-store": store_rounds, **(rounds or {})}
        self.errors = dict(errors or {})
        if store_error is not None:
            self.errors["kg-merge-and-store"] = store_error
        self._lock = threading.Lock()
        self._calls: dict[str, int] = {}
        self._throttled = False

    def handlers(self) -> dict:
        handlers = {
            "kg-plan": self.plan,
            "kg-extract-chunk": self.extract_chunk,
            "kg-chunk-failed": self.chunk_failed,
            "kg-merge-and-store": self.stage("kg-merge-and-store", "STORE"),
            "kg-generate-concepts": self.stage("kg-generate-concepts", "CONCEPTS"),
            "kg-deduplicate": self.stage("kg-deduplicate", "DEDUP"),
            "kg-finalize": self.finalize,
            "kg-fail-job": self.fail_job,
            "kg-llm-batch": self.llm_batch,
        }
        return {name: self._failing(name, handler) for name, handler in handlers.items()}

    def _failing(self, name, handler):
        def call(event, context):
            with self._lock:
                error = self.errors.get(name)
                if isinstance(error, list):  # fail the first calls only, one error each
                    error = error.pop(0) if error else None
            if error is not None:
                raise error
            return handler(event, context)
        return call

    def plan(self, event, context):
        assert set(event) == {"job_id", "source", "source_type", "source_date", "text_key", "options"}
        return {
            "job_id": event["job_id"], "document_id": "doc-1", "source": event["source"],
            "chunk_count": self.chunks, "tokens": 1234, "content_hash": "abc", "options": event["options"],
            "items": list(range(self.chunks)),
        }

    def extract_chunk(self, event, context):
        assert set(event) == {"job_id", "index"}
        with self._lock:
            if event["index"] == self.throttled_once and not self._throttled:
                self._throttled = True
                raise RateLimitError("429 from the LLM endpoint")
        if event["index"] == self.failing_chunk:
            raise ExtractionFailed(f"chunk {event['index']}: every extraction type failed")
        return {"job_id": event["job_id"], "index": event["index"], "status": "SUCCEEDED", "triples": 5, "error": None}

    def chunk_failed(self, event, context):
        assert set(event) == {"job_id", "index", "failure"}
        return {"job_id": event["job_id"], "index": event["index"], "status": "FAILED", "triples": 0,
                "error": event["failure"]["Error"]}

    def stage(self, name, stage):
        def handler(event, context):
            assert event == {"job_id": JOB}
            assert context.get_remaining_time_in_millis() > 0  # what the handler derives its budget from
            with self._lock:
                self._calls[name] = self._calls.get(name, 0) + 1
                state = "more" if self._calls[name] < self.rounds.get(name, 1) else "done"
            return {"job_id": JOB, "stage": stage, "state": state, "counts": {"triples": 10}}
        return handler

    def llm_batch(self, event, context):
        """Batch mode's phase step: `more` while the batch is pending (rounds per phase), then `done`."""
        phase = event["phase"]
        assert set(event) == ({"job_id", "phase", "items"} if phase == "extract" else {"job_id", "phase"})
        if phase == "extract":
            assert event["items"] == list(range(self.chunks))
        name = f"kg-llm-batch-{phase}"
        with self._lock:
            self._calls[name] = self._calls.get(name, 0) + 1
            state = "more" if self._calls[name] < self.rounds.get(name, 1) else "done"
        return {"job_id": JOB, "stage": "EXTRACT" if phase == "extract" else "CONCEPTS", "state": state,
                "counts": {"requests": 12}}

    def finalize(self, event, context):
        assert event == {"job_id": JOB}
        return {"job_id": event["job_id"], "status": "PARTIAL", "error": None}

    def fail_job(self, event, context):
        assert set(event) == {"job_id", "source", "failure"}
        assert set(event["failure"]) == {"Error", "Cause"}
        return {"job_id": event["job_id"], "status": "FAILED", "error": event["failure"]["Error"]}


@pytest.fixture(scope="module")
def definition(synth) -> dict:
    return asl_helper.definition(synth.template)


def run(definition: dict, fakes: FakePipeline, payload: dict):
    with moto_sfn(), routed_lambdas(fakes.handlers()) as calls, no_retry_sleep():
        client = boto3.client("stepfunctions", region_name=moto_sfn_support.REGION)
        machine = create_state_machine(definition, names=fakes.handlers())
        described = start_and_wait(client, machine, name=JOB, input=payload)
        events = history(client, described["executionArn"])
    return described, events, calls


def test_a_job_runs_every_chunk_records_the_failed_one_and_loops_until_stored(definition):
    described, events, calls = run(definition, FakePipeline(), execution_input(concepts=True, dedup=False))

    assert described["status"] == "SUCCEEDED", described
    assert described["name"] == JOB
    # one ExtractChunk per item; item 0 was throttled once (RateLimitError) and retried
    extracted = calls.of("kg-extract-chunk")
    assert sorted(c.event["index"] for c in extracted if c.error is None) == [0, 2]
    assert [c.error for c in extracted if c.event["index"] == 0] == ["RateLimitError", None]
    # item 1 failed past its retries: caught, recorded by ChunkFailed, and the Map went on
    assert [c.error for c in extracted if c.event["index"] == 1] == ["ExtractionFailed"] * 1
    (failed,) = calls.of("kg-chunk-failed")
    assert failed.event["index"] == 1 and failed.event["failure"]["Error"] == "ExtractionFailed"
    assert "every extraction type failed" in failed.event["failure"]["Cause"]
    # MergeAndStore returned `more` once, then `done`
    assert calls.count("kg-merge-and-store") == 2
    assert calls.count("kg-generate-concepts") == 1
    assert calls.count("kg-deduplicate") == 0
    assert calls.count("kg-finalize") == 1 and calls.count("kg-fail-job") == 0

    entered = states_entered(events)
    assert entered[0] == "Plan" and entered[-1] == "Done"
    assert entered.count("MergeAndStore") == 2 and entered.count("MoreToStore?") == 2
    assert "Deduplicate" not in entered and "FailJob" not in entered
    assert events[-1]["type"] == "ExecutionSucceeded"
    output = json.loads(described["output"])
    assert output["outcome"] == {"job_id": JOB, "status": "PARTIAL", "error": None}
    assert "items" in output and output["store"]["state"] == "done"  # the Map's results were discarded


def test_options_skip_concepts_and_run_dedup(definition):
    described, events, calls = run(
        definition, FakePipeline(failing_chunk=None, throttled_once=None, store_rounds=1),
        execution_input(concepts=False, dedup=True),
    )
    assert described["status"] == "SUCCEEDED", described
    assert calls.count("kg-extract-chunk") == 3 and calls.count("kg-chunk-failed") == 0
    assert calls.count("kg-generate-concepts") == 0 and calls.count("kg-deduplicate") == 1
    assert "GenerateConcepts" not in states_entered(events)


def test_an_unhandled_error_fails_the_job_through_the_failure_handler(definition):
    described, events, calls = run(
        definition, FakePipeline(store_error=DatabaseBroken("relation triples does not exist")),
        execution_input(),
    )
    assert described["status"] == "FAILED", described
    assert calls.count("kg-merge-and-store") == 1  # not a retried error
    (fail_job,) = calls.of("kg-fail-job")
    assert fail_job.event["job_id"] == JOB and fail_job.event["source"] == "examples/curie.txt"
    assert fail_job.event["failure"]["Error"] == "DatabaseBroken"
    assert calls.count("kg-finalize") == 0
    entered = states_entered(events)
    assert entered[-2:] == ["FailJob", "JobFailed"]
    assert events[-1]["type"] == "ExecutionFailed"
    details = events[-1]["executionFailedEventDetails"]
    assert details["error"] == "DatabaseBroken"
    assert "relation triples does not exist" in details["cause"]


def test_concepts_and_dedup_are_called_again_while_they_return_more(definition):
    fakes = FakePipeline(failing_chunk=None, throttled_once=None, store_rounds=1,
                         rounds={"kg-generate-concepts": 3, "kg-deduplicate": 2})
    described, events, calls = run(definition, fakes, execution_input(concepts=True, dedup=True))
    assert described["status"] == "SUCCEEDED", described
    counts = [calls.count(f"kg-{name}") for name in ("merge-and-store", "generate-concepts", "deduplicate")]
    assert counts == [1, 3, 2]
    entered = states_entered(events)
    assert entered.count("MoreConcepts?") == 3 and entered.count("MoreDedup?") == 2
    output = json.loads(described["output"])
    assert output["concepts"]["state"] == output["dedup"]["state"] == "done"


def test_a_store_that_is_resuming_is_retried_not_failed(definition):
    fakes = FakePipeline(failing_chunk=None, throttled_once=None, store_rounds=1,
                         errors={"kg-merge-and-store": [StoreUnavailable("Aurora is resuming")]})
    described, events, calls = run(definition, fakes, execution_input(concepts=False))
    assert described["status"] == "SUCCEEDED", described
    assert [c.error for c in calls.of("kg-merge-and-store")] == ["StoreUnavailable", None]
    assert calls.count("kg-fail-job") == 0


@pytest.mark.parametrize(
    ("function_name", "state"),
    [("kg-plan", "Plan"), ("kg-generate-concepts", "GenerateConcepts"), ("kg-deduplicate", "Deduplicate"),
     ("kg-finalize", "Finalize")],
)
def test_a_failing_state_ends_in_fail_job_then_fail(definition, function_name, state):
    fakes = FakePipeline(failing_chunk=None, throttled_once=None, store_rounds=1,
                         errors={function_name: DatabaseBroken(f"{state} broke")})
    described, events, calls = run(definition, fakes, execution_input(concepts=True, dedup=True))
    assert described["status"] == "FAILED", described
    (fail_job,) = calls.of("kg-fail-job")
    assert fail_job.event["job_id"] == JOB and fail_job.event["source"] == "examples/curie.txt"
    assert fail_job.event["failure"]["Error"] == "DatabaseBroken"
    assert f"{state} broke" in fail_job.event["failure"]["Cause"]
    entered = states_entered(events)
    assert entered[-3:] == [state, "FailJob", "JobFailed"]
    assert events[-1]["executionFailedEventDetails"]["error"] == "DatabaseBroken"
    if state == "Plan":
        assert calls.count("kg-extract-chunk") == 0


def test_a_chunk_failure_that_cannot_be_recorded_fails_the_map_and_the_job(definition):
    fakes = FakePipeline(throttled_once=None, errors={"kg-chunk-failed": DatabaseBroken("ledger unreachable")})
    described, events, calls = run(definition, fakes, execution_input())
    assert described["status"] == "FAILED", described
    assert calls.count("kg-merge-and-store") == 0
    (fail_job,) = calls.of("kg-fail-job")
    assert fail_job.event["failure"]["Error"] == "DatabaseBroken"
    assert states_entered(events)[-2:] == ["FailJob", "JobFailed"]


@pytest.fixture
def no_waits():
    """Wait states are real waits in moto's interpreter (5 minutes between batch polls)."""
    from unittest import mock

    from moto.stepfunctions.parser.asl.component.state.wait.wait_function import wait_function

    with mock.patch.object(wait_function.WaitFunction, "_wait_interval", lambda self, env, wait_seconds: None):
        yield


def test_batch_mode_waits_and_polls_each_phase_until_done_before_its_stage(definition, no_waits):
    fakes = FakePipeline(failing_chunk=None, throttled_once=None, store_rounds=1,
                         rounds={"kg-llm-batch-extract": 3, "kg-llm-batch-concepts": 2})
    described, events, calls = run(definition, fakes, execution_input(concepts=True, llm_batch=True))
    assert described["status"] == "SUCCEEDED", described
    phases = [c.event["phase"] for c in calls.of("kg-llm-batch")]
    assert phases == ["extract"] * 3 + ["concepts"] * 2
    entered = states_entered(events)
    assert entered.count("WaitForExtractBatch") == 2 and entered.count("WaitForConceptsBatch") == 1
    # each phase is over before the stage it prepares starts
    assert entered.index("ExtractChunks") > max(i for i, s in enumerate(entered) if s == "LlmBatchExtract")
    assert entered.index("GenerateConcepts") > max(i for i, s in enumerate(entered) if s == "LlmBatchConcepts")


@pytest.mark.parametrize("llm_batch", [False, None], ids=["off", "absent"])
def test_without_batch_mode_no_batch_is_sent(definition, llm_batch):
    fakes = FakePipeline(failing_chunk=None, throttled_once=None, store_rounds=1)
    described, events, calls = run(definition, fakes, execution_input(concepts=True, llm_batch=llm_batch))
    assert described["status"] == "SUCCEEDED", described
    assert calls.count("kg-llm-batch") == 0 and calls.count("kg-generate-concepts") == 1
