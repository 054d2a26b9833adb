"""Batch mode in the local engine on the real PostgreSQL and the fake server's Batch API: what the
e2e tests (tests/e2e/test_llm_batch_cli.py) do not reach from the command line."""

from __future__ import annotations

import threading
import time

import pytest

from kg.documents import decode_document
from kg.engine.local import ingest
from kg.errors import InvalidInput
from kg.ledger.postgres import PostgresLedger
from kg.llm.pricing import DEFAULT_LLM_BATCH_PRICES, DEFAULT_LLM_PRICES, batch_prices, estimate_cost
from kg.models import JobStatus
from kg.stages.contract import JobOptions
from tests.integration.conftest import many_paragraphs

BATCH = JobOptions(concepts=False, llm_batch=True)


@pytest.fixture
def batch_settings(openai_settings):
    return openai_settings.model_copy(update={"llm_batch_poll_s": 0.02, "llm_batch_poll_max_s": 0.05})


def document(n: int = 4):
    return decode_document(many_paragraphs(n).encode(), "batch.txt", 10_000_000)


def test_an_endpoint_without_a_batch_api_leaves_every_request_to_normal_calls(batch_settings, fake_openai,
                                                                               open_ports):
    fake_openai.refuse_batches = True
    report = ingest(document(), open_ports(batch_settings), batch_settings, options=BATCH)
    assert (report.status, report.chunks_failed) == (JobStatus.SUCCEEDED, 0)
    assert not fake_openai.batches
    assert len(fake_openai.direct_chat_requests()) == report.chunks * 4 and report.llm.cached == 0
    job = PostgresLedger(open_ports(batch_settings).db).get(report.job_id)
    assert job.batch_id is None and job.counts["llm_batch_extract"]["outcome"].startswith("not sent: HTTP 400")


def test_a_job_waiting_longer_than_its_lease_keeps_it_and_reads_waiting_all_along(batch_settings, fake_openai,
                                                                                  open_ports):
    settings = batch_settings.model_copy(update={"lease_s": 1.0})
    ports = open_ports(settings)
    fake_openai.hold_batches = True
    reports = []
    runner = threading.Thread(target=lambda: reports.append(ingest(document(2), ports, settings, options=BATCH)))
    runner.start()
    seen = set()
    try:
        # Polled on until three lease lengths have passed since the job began to wait: a lease not
        # renewed meanwhile would have lapsed, and the job would read INTERRUPTED.
        waiting_since = None
        for _ in range(3000):  # bounded
            jobs = ports.ledger.list_jobs(1)
            if jobs:
                seen.add(jobs[0].status)
                if jobs[0].status is JobStatus.WAITING and waiting_since is None:
                    waiting_since = time.monotonic()
            if waiting_since is not None and time.monotonic() - waiting_since > 3 * settings.lease_s:
                break
            time.sleep(0.01)
        assert waiting_since is not None and fake_openai.batch_polls > 1
    finally:
        fake_openai.hold_batches = False
        runner.join(timeout=120)
    assert JobStatus.INTERRUPTED not in seen and JobStatus.WAITING in seen
    (report,) = reports
    assert report.status is JobStatus.SUCCEEDED and fake_openai.direct_chat_requests() == []


def test_kg_serve_refuses_a_batch_job_where_the_llm_is_offline(settings):
    from kg.api import JobSubmission, OptionsIn
    from kg.serve import LocalBackend

    backend = LocalBackend(settings.model_copy(update={"llm_provider": "offline"}))
    try:
        with pytest.raises(InvalidInput, match="Batch API"):
            backend.submit(JobSubmission(source="a.txt", text="Marie Curie worked in Paris.",
                                         options=OptionsIn(llm_batch=True)))
        assert backend.list_jobs(10) == []
    finally:
        backend.close()


def test_batch_prices_are_half_the_list_prices_and_a_model_priced_only_normally_is_billed_half():
    table = batch_prices({**DEFAULT_LLM_PRICES, "my-model": (1.0, 2.0)}, DEFAULT_LLM_BATCH_PRICES)
    for model, price in DEFAULT_LLM_PRICES.items():
        assert table[model] == pytest.approx(tuple(rate / 2 for rate in price)), model
    assert table["my-model"] == (0.5, 1.0)
    normal = estimate_cost("gpt-4o-mini", 10_000, 2_000, DEFAULT_LLM_PRICES, 4_096)
    assert estimate_cost("gpt-4o-mini", 10_000, 2_000, table, 4_096) == pytest.approx(normal / 2)


def test_an_extractor_without_an_llm_cache_sends_no_batch_since_its_answers_would_be_lost(openai_settings,
                                                                                          fake_openai):
    from kg.extraction.openai import OpenAiExtractor
    from kg.llm.cache import NoLlmCache
    from kg.llm.client import LlmClient
    from kg.stages.llm_batch import BatchPhase, BatchRequest, llm_batch

    extractor = OpenAiExtractor(LlmClient.from_settings(openai_settings), NoLlmCache())
    progress = llm_batch(BatchRequest(job_id="00000000-0000-0000-0000-000000000001", phase=BatchPhase.EXTRACT,
                                      items=[0]), extractor, None, None, None, None, {}, 50, 60.0)
    assert progress.state == "done" and not fake_openai.batches and not fake_openai.files


class _Died(BaseException):
    """The process ending between two lines (kill -9): nothing after it runs."""


def test_a_process_that_died_right_after_creating_its_batch_is_found_by_its_token_not_sent_again(
        batch_settings, fake_openai, open_ports):
    import uuid

    from kg.llm.batch import BatchClient
    from kg.llm.client import LlmClient, chat_request
    from kg.stages.llm_batch import BatchPhase, advance, read_state

    ports = open_ports(batch_settings)
    job_id = str(uuid.uuid4())
    ports.ledger.create_job(job_id, "a.txt")
    ports.ledger.start_extraction(job_id, str(uuid.uuid4()), 1)
    body = chat_request("gpt-4o-mini", [{"role": "user", "content": "Marie Curie met Pierre Curie"}],
                        {"type": "json_object"})
    requests = {"k1": body, "k2": body}
    llm = LlmClient.from_settings(batch_settings)

    class DiesAfterCreating(BatchClient):
        def submit(self, *args, **kwargs):
            super().submit(*args, **kwargs)
            raise _Died

    fake_openai.hold_batches = True
    with pytest.raises(_Died):
        advance(job_id, BatchPhase.EXTRACT, lambda: requests, DiesAfterCreating(llm), ports.extractor.cache,
                ports.ledger, ports.blobs, {}, 3600)
    assert len(fake_openai.batches) == 1 and read_state(ports.blobs, job_id, BatchPhase.EXTRACT).batch_id is None

    progress = advance(job_id, BatchPhase.EXTRACT, lambda: requests, BatchClient(llm), ports.extractor.cache,
                       ports.ledger, ports.blobs, {}, 3600)
    (batch,) = fake_openai.batches.values()  # found, not sent again
    assert progress.state == "more" and read_state(ports.blobs, job_id, BatchPhase.EXTRACT).batch_id == batch["id"]
    assert (ports.ledger.get(job_id).status, ports.ledger.get(job_id).batch_id) == (JobStatus.WAITING, batch["id"])
    fake_openai.hold_batches = False
    progress = advance(job_id, BatchPhase.EXTRACT, lambda: requests, BatchClient(llm), ports.extractor.cache,
                       ports.ledger, ports.blobs, {}, 3600)
    assert progress.state == "done" and ports.ledger.get(job_id).status is JobStatus.RUNNING
    assert set(ports.extractor.cache.get_many(["k1", "k2"])) == {"k1", "k2"}
