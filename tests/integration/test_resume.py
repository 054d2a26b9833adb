"""Every job ends, or can be resumed: leases, interruption and `resume` on the local engine, in process
(a real `kg` killed with SIGKILL or SIGTERM is tests/e2e/test_resume_cli.py)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from kg.blobs import job_prefix, text_key
from kg.engine.local import JobSpec, LeaseKeeper, ingest, open_local_ports, resume, spec_key
from kg.errors import InvalidInput, NotFound
from kg.ledger import Lease, LeaseHeld, LeaseLost
from kg.models import Chunk, ChunkExtraction, ChunkStatus, DocumentInput, JobStatus, TripleType
from kg.providers import chunking_params
from kg.settings import Settings
from kg.stages import extract_chunk, plan
from kg.stages.contract import ChunkTask, JobOptions, PlanRequest
from tests.integration.conftest import many_paragraphs
from tests.support.extractors import ScriptedExtractor
from tests.support.stages import graph_fingerprint

TEXT = many_paragraphs(12)
SOURCE = "notes/curie.txt"


class StopsAt(ScriptedExtractor):
    """Ctrl-C reaching the process while chunk `index` is being extracted."""

    def __init__(self, index: int):
        super().__init__()
        self.index = index

    def extract(self, chunk: Chunk, types: Sequence[TripleType]) -> ChunkExtraction:
        if chunk.index == self.index:
            raise KeyboardInterrupt
        return super().extract(chunk, types)


def extracted_chunks(extractor: ScriptedExtractor) -> set[int]:
    return {index for index, _ in extractor.calls}


def job_blobs(settings: Settings, job_id: str) -> Path:
    return settings.blob_dir / job_prefix(job_id)


@pytest.fixture
def clean_graph(new_database, tmp_path, settings: Settings, embedder,
                conceptualizer) -> Callable[[], dict[str, str]]:
    """`clean_graph()`: the fingerprint of the same document ingested once, uninterrupted, into a
    database of its own."""
    own = settings.model_copy(update={"database_url": new_database(), "data_dir": tmp_path / "clean"})

    def fingerprint() -> dict[str, str]:
        ports = open_local_ports(own, extractor=ScriptedExtractor(), embedder=embedder, conceptualizer=conceptualizer)
        try:
            assert ingest(DocumentInput(text=TEXT, source=SOURCE), ports, own).status is JobStatus.SUCCEEDED
            return graph_fingerprint(ports.db)
        finally:
            ports.close()

    return fingerprint


def test_ctrl_c_ends_the_job_interrupted_at_once_keeping_its_blobs(make_ports, settings):
    ports = make_ports(StopsAt(3))
    job_id = str(uuid.uuid4())
    with pytest.raises(KeyboardInterrupt):
        ingest(DocumentInput(text=TEXT, source=SOURCE), ports, settings.model_copy(update={"max_concurrency": 1}),
               job_id=job_id)
    job = ports.ledger.get(job_id)
    assert job.status is JobStatus.INTERRUPTED and not job.status.finished
    assert job.error.startswith("interrupted (KeyboardInterrupt)") and f"kg resume {job_id}" in job.error
    assert (job.lease_owner, job.lease_until) == (None, None)
    assert [c.index for c in job.chunks if c.status is not ChunkStatus.PENDING] == [0, 1, 2]
    assert (job_blobs(settings, job_id) / "local" / "job.json").is_file()  # kept: the job can be resumed


def test_resume_extracts_only_the_chunks_left_and_builds_the_graph_a_clean_ingest_builds(
        make_ports, settings, clean_graph):
    job_id = str(uuid.uuid4())
    with pytest.raises(KeyboardInterrupt):
        ingest(DocumentInput(text=TEXT, source=SOURCE), make_ports(StopsAt(3)),
               settings.model_copy(update={"max_concurrency": 1}), job_id=job_id)
    counting = ScriptedExtractor()
    ports = make_ports(counting)
    total = ports.ledger.get(job_id).chunks_total
    report = resume(job_id, ports, settings)
    assert (report.job_id, report.status, report.chunks, report.error) == (job_id, JobStatus.SUCCEEDED, total, None)
    assert extracted_chunks(counting) == set(range(3, total))  # chunks 0-2 were extracted before Ctrl-C
    job = ports.ledger.get(job_id)
    assert (job.status, job.chunks_done, job.lease_owner) == (JobStatus.SUCCEEDED, total, None)
    assert not job_blobs(settings, job_id).exists()  # ended: its working blobs are gone
    assert graph_fingerprint(ports.db) == clean_graph()


def died_mid_extraction(ports, settings: Settings, extracted: int) -> str:
    """A job whose process died after extracting its first chunks: started as the engine starts one,
    under a short lease that nobody renews."""
    job_id = str(uuid.uuid4())
    spec = JobSpec(request=PlanRequest(job_id=job_id, source=SOURCE, text_key=text_key(job_id),
                                       options=JobOptions(concepts=True, dedup=False)),
                   chunking=chunking_params(settings))
    ports.blobs.put(text_key(job_id), TEXT.encode())
    ports.blobs.put(spec_key(job_id), spec.model_dump_json().encode())
    plan(spec.request, ports.blobs, ports.ledger, spec.chunking, Lease(owner="gone:1:dead", seconds=0.2))
    for index in range(extracted):
        extract_chunk(ChunkTask(job_id=job_id, index=index), ports.extractor, ports.blobs, ports.ledger)
    return job_id


def eventually_interrupted(ports, job_id: str) -> bool:
    for _ in range(500):  # bounded: the lease is 0.2 s
        if ports.ledger.get(job_id, with_chunks=False).status is JobStatus.INTERRUPTED:
            return True
        time.sleep(0.01)
    return False


def test_a_job_whose_process_died_reads_interrupted_once_its_lease_lapses_then_resumes(
        make_ports, settings, clean_graph):
    job_id = died_mid_extraction(make_ports(ScriptedExtractor()), settings, extracted=2)
    counting = ScriptedExtractor()
    ports = make_ports(counting)
    assert eventually_interrupted(ports, job_id)
    assert ports.ledger.latest_job(SOURCE).status is JobStatus.INTERRUPTED
    report = resume(job_id, ports, settings)
    assert report.status is JobStatus.SUCCEEDED
    assert extracted_chunks(counting) == set(range(2, report.chunks))
    assert graph_fingerprint(ports.db) == clean_graph()


def test_a_chunk_whose_result_was_stored_but_not_recorded_is_not_extracted_again(make_ports, settings):
    # kill -9 between writing a chunk's result and recording it: the blob is the truth.
    ports = make_ports(ScriptedExtractor())
    job_id = died_mid_extraction(ports, settings, extracted=0)
    extract_chunk(ChunkTask(job_id=job_id, index=0), ports.extractor, ports.blobs, _Forgetful(ports.ledger))
    assert ports.ledger.get(job_id).chunks[0].status is ChunkStatus.PENDING
    counting = ScriptedExtractor()
    resumed = make_ports(counting)
    assert eventually_interrupted(resumed, job_id)
    assert resume(job_id, resumed, settings).status is JobStatus.SUCCEEDED
    assert 0 not in extracted_chunks(counting)


class _Forgetful:
    """A ledger whose process died before it recorded the chunk."""

    def __init__(self, ledger):
        self.ledger = ledger

    def record_chunk(self, *args, **kwargs) -> None:
        pass


def test_a_job_held_by_a_live_process_is_not_resumed(make_ports, settings):
    ports = make_ports()
    job_id = died_mid_extraction(ports, settings, extracted=1)
    ports.ledger.renew_lease(job_id, Lease(owner="gone:1:dead", seconds=600))  # it is alive after all
    with pytest.raises(LeaseHeld, match="gone:1:dead"):
        resume(job_id, ports, settings)
    job = ports.ledger.get(job_id)
    assert (job.status, job.lease_owner) == (JobStatus.RUNNING, "gone:1:dead")


def test_an_ended_or_unknown_job_is_not_resumed(make_ports, settings):
    ports = make_ports()
    report = ingest(DocumentInput(text=TEXT, source=SOURCE), ports, settings)
    with pytest.raises(InvalidInput, match="has ended SUCCEEDED"):
        resume(report.job_id, ports, settings)
    with pytest.raises(NotFound):
        resume(str(uuid.uuid4()), ports, settings)


def test_a_job_whose_blobs_are_gone_ends_failed_when_resumed(make_ports, settings):
    ports = make_ports()
    job_id = died_mid_extraction(ports, settings, extracted=1)
    assert eventually_interrupted(ports, job_id)
    ports.blobs.delete_prefix(job_prefix(job_id))
    report = resume(job_id, ports, settings)
    assert report.status is JobStatus.FAILED and "working files" in report.error
    assert ports.ledger.get(job_id).status is JobStatus.FAILED


def test_a_process_whose_job_was_taken_over_learns_it_at_its_next_check(make_ports, settings):
    ports = make_ports()
    lease = Lease(owner="slow:1:aaaa", seconds=0.3)
    job_id = str(uuid.uuid4())
    ports.ledger.create_job(job_id, SOURCE, lease)
    with LeaseKeeper(ports.ledger, job_id, lease) as keeper:
        keeper.check()  # held: nothing to say
        ports.ledger.interrupt(job_id, lease.owner, "stalled")  # as if its lease had lapsed
        ports.ledger.take_over(job_id, Lease(owner="resumer:2:bbbb", seconds=600))
        for _ in range(300):  # bounded: a renewal every 0.1 s
            try:
                keeper.check()
            except LeaseLost:
                break
            time.sleep(0.01)
        with pytest.raises(LeaseLost, match=job_id):
            keeper.check()
    assert ports.ledger.get(job_id).lease_owner == "resumer:2:bbbb"


@pytest.mark.parametrize(("setting", "value"), [("chunk_overlap_tokens", 3000), ("tokenizer_encoding", "p50k_base")])
def test_settings_plan_cannot_use_are_refused_when_read(setting, value):
    with pytest.raises(ValueError, match=setting):
        Settings(**{setting: value})
