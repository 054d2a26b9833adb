"""Batch mode in AWS: the synthesized state machine executed in moto with the real handlers (as in
tests/aws/test_state_machine_e2e.py), its LlmBatch task sending the job's LLM requests to the fake
server's Batch API, the Wait loop polling it, and the stages reading the answers from the LLM cache."""

from __future__ import annotations

import time
from collections.abc import Iterator
from unittest import mock

import pytest

from kg.models import JobStatus
from tests.aws.conftest import ledger, many_paragraphs
from tests.aws.test_state_machine_e2e import (  # noqa: F401 (fixtures)
    OPTIONS,
    PARAGRAPHS,
    local_graph,
    moto_pipeline,
    pipeline,
    post_job,
)
from tests.support.sfn import states_entered

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")


@pytest.fixture
def short_waits() -> Iterator[None]:
    """The Wait between two polls is 5 minutes in the definition; a few milliseconds here."""
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function import wait_function

    with mock.patch.object(wait_function.WaitFunction, "_wait_interval",
                           lambda self, env, wait_seconds: time.sleep(0.02)):
        yield


def test_a_batch_job_waits_on_its_batch_then_builds_the_graph_of_a_normal_job(pipeline, fake_openai, short_waits,  # noqa: F811 (the fixture imported above)
                                                                              new_database, tmp_path):
    from kg.aws.ports import aws_ports
    from tests.support.stages import graph_fingerprint

    fake_openai.hold_batches = True
    text = many_paragraphs(PARAGRAPHS)
    job_id = post_job(text, options={**OPTIONS, "llm_batch": True})
    for _ in range(3000):  # bounded: until the job waits on its batch
        job = ledger().get(job_id, with_chunks=False)
        if job.status is JobStatus.WAITING:
            break
        time.sleep(0.01)
    (batch,) = fake_openai.batches.values()
    assert (job.status, job.batch_id) == (JobStatus.WAITING, batch["id"])
    fake_openai.hold_batches = False

    described = pipeline.wait(job_id)
    assert described["status"] == "SUCCEEDED", described
    job = ledger().get(job_id, with_chunks=False)
    assert (job.status, job.chunks_failed) == (JobStatus.SUCCEEDED, 0)
    assert [b["metadata"]["kg_phase"] for b in fake_openai.batches.values()] == ["extract", "concepts"]
    assert fake_openai.direct_chat_requests() == []  # every chat request went as a line of a batch
    entered = states_entered(pipeline.history(job_id))
    assert "WaitForExtractBatch" in entered and entered.index("ExtractChunks") > entered.index("LlmBatchExtract")
    assert {"LlmBatchConcepts", "GenerateConcepts"} <= set(entered)
    extract = job.llm_by_stage["EXTRACT"]
    assert extract.calls == 4 * job.chunks_total and extract.cost_usd > 0

    aws_graph = graph_fingerprint(aws_ports().db)
    local, report = local_graph(text, new_database(), tmp_path)
    assert report.status is JobStatus.SUCCEEDED and aws_graph == local
