"""LLM faults: nothing lost, nothing duplicated.

Each test ingests one document through the local engine against the fake OpenAI server while the
server misbehaves (429 storms, 5xx, timeouts, malformed replies, a dead endpoint), then compares
the graph with that of a clean run of the same document on a database of its own: the same
fingerprint (every row of every graph table, tests/support/stages.py) means no triple, entity,
provenance row or vector was lost or written twice. A fault that outlasts the retries leaves the
job PARTIAL or FAILED; once the endpoint heals, ingesting the document again must complete the
graph to the clean run's.

Concepts are off here (as in tests/integration/test_llm_extraction.py): the fake server's concept
phrases depend on how elements are batched, so a graph built in two runs legitimately differs from
one built in one. The concepts stage's own retry safety is tested in tests/integration/test_stages.py.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections import Counter
from collections.abc import Callable

import pytest

from kg.documents import decode_document
from kg.engine.local import ingest
from kg.models import JobStatus
from kg.settings import Settings
from tests.integration.conftest import many_paragraphs
from tests.support.fake_openai import FakeOpenAI, Received, Reply, free_port_refusing_connections
from tests.support.stages import graph_fingerprint

DOCUMENT = decode_document(many_paragraphs(8).encode(), "curie-notes", 10_000_000)


def is_chat(request: Received) -> bool:
    return request.path.endswith("/chat/completions")


def is_embedding(request: Received) -> bool:
    return request.path.endswith("/embeddings")


class FirstAttempts:
    """A match for FakeOpenAI.on: true for the first `n` attempts of each distinct request (the same
    question asked again is the same request) among those `which` selects. Deterministic whatever
    the threads' order, unlike "the first N requests", which one unlucky request could take all of."""

    def __init__(self, n: int, which: Callable[[Received], bool] = lambda r: True):
        self.n, self.which = n, which
        self.attempts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, request: Received) -> bool:
        if not self.which(request):
            return False
        key = json.dumps([request.path, request.schema_name, request.body.get("messages"), request.body.get("input")])
        with self._lock:
            self.attempts[key] += 1
            return self.attempts[key] <= self.n

    @property
    def faulted(self) -> int:
        """How many attempts the rule answered."""
        with self._lock:
            return sum(min(count, self.n) for count in self.attempts.values())

    @property
    def requests(self) -> int:
        with self._lock:
            return len(self.attempts)


@pytest.fixture
def clean_run(ports_on, openai_settings: Settings):
    """The report and graph fingerprint of DOCUMENT ingested on a new database against a well-behaved server."""
    with FakeOpenAI() as server:
        settings = openai_settings.model_copy(update={"openai_base_url": server.url})
        ports = ports_on(settings)
        report = ingest(DOCUMENT, ports, settings)
    assert report.status is JobStatus.SUCCEEDED and report.chunks >= 3 and report.triples["total"] > 0
    return report, graph_fingerprint(ports.db)


def statuses(server: FakeOpenAI) -> Counter[int]:
    return Counter(server._statuses)


def test_a_429_storm_on_chat_and_embeddings_is_waited_out_and_the_graph_equals_a_clean_run(
    ports_on, openai_settings, fake_openai, clean_run
):
    clean_report, clean_graph = clean_run
    # Every request is refused three times, with the wait the server asks for; 429s are not
    # counted against llm_max_retries, so it is set to 0: only waiting them out gets through.
    storm = FirstAttempts(3)
    fake_openai.on(storm, Reply(status=429, headers={"Retry-After-Ms": "5", "Retry-After": "0"}))
    settings = openai_settings.model_copy(update={"llm_max_retries": 0})
    ports = ports_on(settings)
    report = ingest(DOCUMENT, ports, settings)
    assert report.status is JobStatus.SUCCEEDED and report.chunks_failed == report.chunks_partial == 0
    assert storm.faulted == 3 * storm.requests and statuses(fake_openai)[429] == storm.faulted
    assert any(is_embedding(r) for r in fake_openai.requests)  # the storm reached the store stage too
    assert report.triples == clean_report.triples
    assert graph_fingerprint(ports.db) == clean_graph


def test_5xx_on_every_request_twice_is_retried_and_the_graph_equals_a_clean_run(
    ports_on, openai_settings, fake_openai, clean_run
):
    clean_report, clean_graph = clean_run
    errors = FirstAttempts(2)
    codes = itertools.cycle([500, 502, 503, 504])
    lock = threading.Lock()

    def next_error(_request: Received) -> Reply:
        with lock:
            return Reply(status=next(codes))

    fake_openai.on(errors, next_error)
    ports = ports_on(openai_settings)
    report = ingest(DOCUMENT, ports, openai_settings)
    assert report.status is JobStatus.SUCCEEDED and report.chunks_failed == report.chunks_partial == 0
    seen = statuses(fake_openai)
    assert errors.faulted == 2 * errors.requests == sum(seen[c] for c in (500, 502, 503, 504))
    assert all(seen[c] > 0 for c in (500, 502, 503, 504))
    assert report.triples == clean_report.triples
    assert graph_fingerprint(ports.db) == clean_graph


def test_timeouts_are_retried_and_the_graph_equals_a_clean_run(ports_on, openai_settings, fake_openai, clean_run):
    clean_report, clean_graph = clean_run
    # One type's first attempt and every embedding request's first attempt answer after the client
    # gave up. Not every request: consecutive timeouts also open the circuit breaker (threshold 5),
    # which is tested on its own (tests/unit/test_llm_client.py).
    slow = FirstAttempts(1, lambda r: is_embedding(r) or r.triple_type == "ENTITY_EVENT")
    fake_openai.on(slow, Reply(delay_s=1.5))
    settings = openai_settings.model_copy(update={"llm_timeout_s": 0.5})
    ports = ports_on(settings)
    report = ingest(DOCUMENT, ports, settings)
    assert report.status is JobStatus.SUCCEEDED and report.chunks_failed == report.chunks_partial == 0
    assert slow.faulted == slow.requests > report.chunks  # every chunk's ENTITY_EVENT, and the embeddings
    assert report.triples == clean_report.triples
    assert graph_fingerprint(ports.db) == clean_graph


MALFORMED = ['{"triples": [{"subject": "Mar', "Sure! Here are the triples you asked for:", "", "[]", "null"]


def test_malformed_replies_are_asked_for_again_and_the_graph_equals_a_clean_run(
    ports_on, openai_settings, fake_openai, clean_run
):
    clean_report, clean_graph = clean_run
    malformed = FirstAttempts(1, is_chat)
    replies = itertools.cycle(MALFORMED)
    served: list[str] = []
    lock = threading.Lock()

    def next_malformed(_request: Received) -> Reply:
        with lock:
            served.append(next(replies))
            return Reply(content=served[-1])

    fake_openai.on(malformed, next_malformed)
    ports = ports_on(openai_settings)
    report = ingest(DOCUMENT, ports, openai_settings)
    assert report.status is JobStatus.SUCCEEDED and report.chunks_failed == report.chunks_partial == 0
    assert malformed.faulted == malformed.requests == 4 * report.chunks and set(served) == set(MALFORMED)
    assert report.triples == clean_report.triples
    assert graph_fingerprint(ports.db) == clean_graph


@pytest.mark.parametrize("fault", [Reply(status=500), Reply(content="I cannot help with that.")],
                         ids=["http-500", "malformed"])
def test_a_type_that_keeps_failing_leaves_the_job_partial_and_a_run_after_recovery_equals_a_clean_run(
    ports_on, openai_settings, fake_openai, clean_run, fault
):
    clean_report, clean_graph = clean_run
    healed = threading.Event()
    fake_openai.on(lambda r: r.triple_type == "EMOTIONAL_CONTEXT" and not healed.is_set(), fault)
    ports = ports_on(openai_settings)
    first = ingest(DOCUMENT, ports, openai_settings)
    assert first.status is JobStatus.PARTIAL and first.chunks_partial == first.chunks
    assert first.triples["EMOTIONAL_CONTEXT"] == 0
    assert graph_fingerprint(ports.db) != clean_graph  # what the fault cost is visible

    healed.set()
    again = ingest(DOCUMENT, ports, openai_settings)
    assert again.status is JobStatus.SUCCEEDED
    assert again.triples == clean_report.triples
    assert graph_fingerprint(ports.db) == clean_graph


def _dead_endpoint_run(ports_on, openai_settings):
    """A job against an endpoint where nothing listens: FAILED, nothing written. Returns the ports,
    the settings and the port the endpoint comes back on."""
    dead = free_port_refusing_connections()
    port = int(dead.rsplit(":", 1)[1].split("/")[0])
    # Cooldown 0: the breaker lets a probe through as soon as the endpoint might be back.
    settings = openai_settings.model_copy(update={"openai_base_url": dead, "llm_breaker_cooldown_s": 0.0})
    ports = ports_on(settings)
    first = ingest(DOCUMENT, ports, settings)
    assert first.status is JobStatus.FAILED and "unreachable" in first.error
    assert all(digest.startswith("0:") for digest in graph_fingerprint(ports.db).values())  # nothing written
    return ports, settings, port


def test_a_dead_endpoint_fails_the_job_writes_nothing_and_the_next_run_once_it_is_back_equals_a_clean_run(
    ports_on, openai_settings, clean_run, monkeypatch
):
    """`kg ingest` again once the endpoint is back: a new process, so a new client and breaker."""
    import kg.llm.client

    clean_report, clean_graph = clean_run
    ports, settings, port = _dead_endpoint_run(ports_on, openai_settings)
    monkeypatch.setattr(kg.llm.client, "_shared", {})  # what a new process starts with
    ports = ports_on(settings, ports.db.url)  # ... and its own ports, on the same database
    with FakeOpenAI(port=port) as back:  # the endpoint returns, at the same address
        again = ingest(DOCUMENT, ports, settings)
        assert back.ok_chat == 4 * again.chunks
    assert again.status is JobStatus.SUCCEEDED
    assert again.triples == clean_report.triples
    assert graph_fingerprint(ports.db) == clean_graph


def test_after_an_outage_the_first_job_in_the_same_process_loses_nothing(ports_on, openai_settings, clean_run):
    clean_report, clean_graph = clean_run
    ports, settings, port = _dead_endpoint_run(ports_on, openai_settings)
    # The same process: the breaker that saw the outage is open. Latency keeps the probe on the
    # wire while the other chunks' requests arrive, as it would with a real model.
    with FakeOpenAI(port=port, latency_s=0.3):
        again = ingest(DOCUMENT, ports, settings)
    assert again.status is JobStatus.SUCCEEDED
    assert graph_fingerprint(ports.db) == clean_graph
