"""Faults in the graph write: nothing lost, nothing duplicated.

- merge_and_store killed right after its transaction committed (before it could record or return),
  then run again, as Step Functions retries a Lambda that died: the graph and the ledger's counts
  equal a clean run's.
- The database connection terminated inside write_document (pg_terminate_backend from a second
  connection while the write waits on a lock another connection holds, after it has already
  written the document, its chunks and nodes in its transaction): the graph is exactly as before,
  and the retry (or a new ingest) ends with the clean run's graph.

The same injection after each stage's commit is in tests/integration/test_stages.py
(test_a_retry_after_a_failure_injected_after_each_commit_leaves_the_graph_of_one_call), where it
fails the stage's closing ledger write; here it fails right after the graph write itself.
"""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from kg.documents import decode_document
from kg.engine.local import LocalPorts, ingest
from kg.errors import StoreUnavailable
from kg.models import JobStatus
from kg.settings import Settings
from kg.stages import extract_chunk, finalize, generate_concepts, merge_and_store
from kg.stages.contract import ChunkTask, JobOptions, StageRequest
from tests.integration.conftest import many_paragraphs
from tests.support.extractors import ScriptedExtractor
from tests.support.stages import graph_fingerprint, ledger_view, start_job

EARLIER = many_paragraphs(3)  # a document already in the graph, which a failed write must leave alone
TEXT = "\n\n".join(f"Chapter {i}. Albert Einstein wrote to Niels Bohr from Berlin about Copenhagen."
                   for i in range(12))


class KilledAfterCommit(Exception):
    """The process died between the graph's commit and anything after it."""


@pytest.fixture
def offline_ports(ports_on, settings: Settings, embedder, conceptualizer):
    """`offline_ports(database_url=None)`: the local engine's ports with the deterministic test extractor."""

    def make(database_url: str | None = None) -> LocalPorts:
        return ports_on(settings, database_url, extractor=ScriptedExtractor(), embedder=embedder,
                        conceptualizer=conceptualizer)

    return make


def store_stage(ports: LocalPorts, job_id: str):
    return merge_and_store(StageRequest(job_id=job_id), ports.embedder, ports.graph, ports.blobs, ports.ledger)


def after_store(ports: LocalPorts, settings: Settings, job_id: str) -> None:
    """The stages after merge and store, with the local engine's parameters."""
    request = StageRequest(job_id=job_id)
    while generate_concepts(request, ports.conceptualizer, ports.embedder, ports.graph, ports.ledger, ports.blobs,
                            settings.concept_batch_size, settings.max_concurrency).state == "more":
        pass
    finalize(job_id, ports.ledger, ports.blobs)


def extracted_job(ports: LocalPorts, settings: Settings, text: str, source: str):
    job = start_job(ports, settings, text, source, JobOptions(concepts=True, dedup=False))
    for i in job.items:
        extract_chunk(ChunkTask(job_id=job.job_id, index=i), ports.extractor, ports.blobs, ports.ledger)
    return job


def clean_run(ports: LocalPorts, settings: Settings) -> str:
    """EARLIER then TEXT, every stage once: the graph a fault must end up with."""
    assert ingest(decode_document(EARLIER.encode(), "earlier", 10**7), ports, settings).status is JobStatus.SUCCEEDED
    job = extracted_job(ports, settings, TEXT, "letters")
    assert store_stage(ports, job.job_id).state == "done"
    after_store(ports, settings, job.job_id)
    return job.job_id


def test_merge_and_store_killed_after_its_commit_then_run_again_equals_a_clean_run(
    offline_ports, settings, monkeypatch
):
    clean = offline_ports()
    clean_job = clean_run(clean, settings)

    ports = offline_ports()
    assert ingest(decode_document(EARLIER.encode(), "earlier", 10**7), ports, settings).status is JobStatus.SUCCEEDED
    job = extracted_job(ports, settings, TEXT, "letters")
    real_write = ports.graph.write_document
    writes = []

    def write_then_die(*args, **kwargs):
        written = real_write(*args, **kwargs)  # committed when it returns
        writes.append(written)
        if len(writes) == 1:
            raise KilledAfterCommit("killed after the graph write committed")
        return written

    monkeypatch.setattr(ports.graph, "write_document", write_then_die)
    with pytest.raises(KilledAfterCommit):
        store_stage(ports, job.job_id)
    committed = graph_fingerprint(ports.db)
    assert committed["triples"] == graph_fingerprint(clean.db)["triples"]  # the first write did land, whole
    assert store_stage(ports, job.job_id).state == "done"  # the retry
    assert writes[0] > 0 and writes[1] == 0  # the retry's write found every row already there
    after_store(ports, settings, job.job_id)

    assert graph_fingerprint(ports.db) == graph_fingerprint(clean.db)
    crashed_view, clean_view = ledger_view(ports.ledger, job.job_id), ledger_view(clean.ledger, clean_job)
    assert crashed_view["status"] is JobStatus.SUCCEEDED
    assert crashed_view["counts"] == clean_view["counts"]


def test_a_job_that_failed_after_the_commit_then_ingested_again_equals_a_clean_run(
    offline_ports, settings, monkeypatch
):
    clean = offline_ports()
    clean_run(clean, settings)

    ports = offline_ports()
    assert ingest(decode_document(EARLIER.encode(), "earlier", 10**7), ports, settings).status is JobStatus.SUCCEEDED
    real_write = ports.graph.write_document
    writes = []

    def write_then_die(*args, **kwargs):
        writes.append(real_write(*args, **kwargs))
        if len(writes) == 1:
            raise KilledAfterCommit("killed after the graph write committed")
        return writes[-1]

    monkeypatch.setattr(ports.graph, "write_document", write_then_die)
    document = decode_document(TEXT.encode(), "letters", 10**7)
    failed = ingest(document, ports, settings)
    assert failed.status is JobStatus.FAILED and "killed after the graph write committed" in failed.error
    again = ingest(document, ports, settings)
    assert again.status is JobStatus.SUCCEEDED
    assert graph_fingerprint(ports.db) == graph_fingerprint(clean.db)


# -- the connection terminated inside the write -------------------------------------------------


def _blocked_write(url: str, timeout_s: float = 60.0) -> int:
    """The backend pid of the write waiting on a lock, once it waits."""
    deadline = time.monotonic() + timeout_s
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
                " AND query LIKE '%INSERT INTO triples %'"
            ).fetchone()
            if row:
                return row[0]
            time.sleep(0.02)
    raise AssertionError("the graph write never waited on the lock")


def _terminate_inside_the_write(ports: LocalPorts, run) -> BaseException | None:
    """Run `run()` in a thread while a second connection holds a lock the write's triple insert
    needs; once the write waits on it (its document, chunks and nodes already inserted in its
    transaction), terminate the write's connection. Returns what `run` raised, if anything."""
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["result"] = run()
        except BaseException as e:  # noqa: BLE001 (handed to the test to assert on)
            outcome["error"] = e

    with psycopg.connect(ports.db.url) as blocker:
        blocker.execute("LOCK TABLE triples IN SHARE ROW EXCLUSIVE MODE")  # readers pass, writers wait
        worker = threading.Thread(target=target)
        worker.start()
        pid = _blocked_write(ports.db.url)
        with psycopg.connect(ports.db.url, autocommit=True) as admin:
            assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0] is True
        worker.join(60)
        assert not worker.is_alive()
        blocker.rollback()
    outcome.setdefault("error", None)
    return outcome["error"]  # type: ignore[return-value]


def test_the_connection_terminated_inside_the_write_leaves_the_graph_as_before_and_the_retry_equals_a_clean_run(
    offline_ports, settings
):
    clean = offline_ports()
    clean_job = clean_run(clean, settings)

    ports = offline_ports()
    assert ingest(decode_document(EARLIER.encode(), "earlier", 10**7), ports, settings).status is JobStatus.SUCCEEDED
    before = graph_fingerprint(ports.db)
    job = extracted_job(ports, settings, TEXT, "letters")

    error = _terminate_inside_the_write(ports, lambda: store_stage(ports, job.job_id))
    assert isinstance(error, psycopg.OperationalError | StoreUnavailable), error
    assert graph_fingerprint(ports.db) == before  # the half-done transaction left nothing

    assert store_stage(ports, job.job_id).state == "done"  # the retry, on a new pooled connection
    after_store(ports, settings, job.job_id)
    assert graph_fingerprint(ports.db) == graph_fingerprint(clean.db)
    assert ledger_view(ports.ledger, job.job_id)["counts"] == ledger_view(clean.ledger, clean_job)["counts"]


def test_a_job_whose_connection_was_terminated_inside_the_write_fails_and_a_new_ingest_equals_a_clean_run(
    offline_ports, settings
):
    clean = offline_ports()
    clean_run(clean, settings)

    ports = offline_ports()
    assert ingest(decode_document(EARLIER.encode(), "earlier", 10**7), ports, settings).status is JobStatus.SUCCEEDED
    before = graph_fingerprint(ports.db)
    document = decode_document(TEXT.encode(), "letters", 10**7)
    reports = []

    assert _terminate_inside_the_write(ports, lambda: reports.append(ingest(document, ports, settings))) is None
    (failed,) = reports
    assert failed.status is JobStatus.FAILED and "terminating connection" in failed.error
    assert ports.ledger.get(failed.job_id).status is JobStatus.FAILED
    assert graph_fingerprint(ports.db) == before

    again = ingest(document, ports, settings)
    assert again.status is JobStatus.SUCCEEDED
    assert graph_fingerprint(ports.db) == graph_fingerprint(clean.db)
