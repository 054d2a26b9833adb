"""The local engine: the same stage functions as the AWS state machine, run in-process.

plan -> extract (a thread pool of max_concurrency workers plays the Map; a chunk whose step raises
goes to fail_chunk, as the Map's Catch does; each chunk's new texts are embedded as its result lands,
pre_embed_chunks, in one more thread) -> merge_and_store -> [generate_concepts]
-> [deduplicate] -> finalize; any other error -> fail_job. Each stage that can return `more` is
called until it is done. The engine holds no job logic: the stages decide, the ledger records.

Every job ends, or can be resumed. The process holds its job by a lease (kg.ledger.Lease, taken when
plan opens the job) that a background thread renews every third of KG_LEASE_S: if the process dies
(kill -9, a lost machine, a database that stopped answering) the lease lapses and the job reads
INTERRUPTED. SIGTERM and Ctrl-C (KeyboardInterrupt, SystemExit) end it INTERRUPTED at once. Either
way its blobs stay until `resume` takes it over: plan runs again with the job's own request and
chunking (its `JobSpec`, kept with its blobs), extract_chunk re-records a chunk whose result is stored
instead of extracting it again, and the later stages are retry-safe. A job that ends (finalize,
fail_job) loses its blobs.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Protocol

from pydantic import BaseModel

from kg.blobs import BlobStore, get_optional, job_prefix, stage_key, text_key
from kg.blobs.folder import FolderBlobStore
from kg.concepts import Conceptualizer
from kg.db import Database, open_database
from kg.embeddings import Embedder
from kg.engine.local_batch import batch_phase
from kg.errors import InvalidInput, NotFound
from kg.extraction import Extractor
from kg.graph import GraphStore
from kg.graph.postgres import PostgresGraphStore
from kg.ledger import Lease, LeaseLost, Ledger
from kg.ledger.postgres import PostgresLedger
from kg.llm.cache_postgres import PostgresLlmCache
from kg.models import (
    Chunk,
    ChunkExtraction,
    ChunkStatus,
    ConceptSummary,
    DedupSummary,
    DocumentInput,
    EmbeddingCounts,
    IngestReport,
    JobRecord,
    JobStatus,
    Stage,
    TripleCounts,
    TripleType,
)
from kg.providers import (
    chunking_params,
    dedup_params,
    default_conceptualizer,
    default_embedder,
    default_extractor,
)
from kg.settings import Settings
from kg.stages import (
    deduplicate,
    extract_chunk,
    fail_chunk,
    fail_job,
    finalize,
    generate_concepts,
    merge_and_store,
    plan,
)
from kg.stages.merge_and_store import ClaimedTexts, pre_embed_chunks
from kg.stages.contract import (
    ChunkFailure,
    ChunkTask,
    FailRequest,
    JobOptions,
    PlanRequest,
    StageProgress,
    StageRequest,
)
from kg.stages.llm_batch import BatchPhase
from kg.stages.plan import ChunkingParams

log = logging.getLogger(__name__)


class ProgressObserver(Protocol):
    def stage_started(self, stage: Stage, total: int) -> None: ...

    def advanced(self, stage: Stage, amount: int = 1) -> None: ...


class SilentObserver:
    def stage_started(self, stage: Stage, total: int) -> None:
        pass

    def advanced(self, stage: Stage, amount: int = 1) -> None:
        pass


@dataclass
class LocalPorts:
    extractor: Extractor
    embedder: Embedder
    conceptualizer: Conceptualizer
    graph: GraphStore
    ledger: Ledger
    blobs: BlobStore
    db: Database

    def close(self) -> None:
        self.db.close()


def open_local_ports(
    settings: Settings,
    extractor: Extractor | None = None,
    embedder: Embedder | None = None,
    conceptualizer: Conceptualizer | None = None,
) -> LocalPorts:
    if settings.llm_provider != "openai" and (extractor is None or conceptualizer is None):
        from kg.nlp import check_model

        check_model(settings.spacy_model)  # an unknown model is refused before any job is opened
    embedder = embedder or default_embedder(settings)
    db = open_database(settings, embedder.model, embedder.dimensions, migrate=True)
    cache = PostgresLlmCache(db)
    extractor = extractor or default_extractor(settings, cache)
    return LocalPorts(
        extractor=extractor,
        embedder=embedder,
        conceptualizer=conceptualizer or default_conceptualizer(settings, cache),
        graph=PostgresGraphStore(db, bulk_load_ratio=settings.bulk_load_ratio),
        ledger=PostgresLedger(db),
        blobs=FolderBlobStore(settings.blob_dir),
        db=db,
    )


class JobSpec(BaseModel):
    """How a job was started: what `resume` needs to run it again the same way (the same chunks, the
    same optional stages), kept with the job's blobs until it ends."""

    request: PlanRequest
    chunking: ChunkingParams


def spec_key(job_id: str) -> str:
    return stage_key(job_id, "local", "job.json")


def new_lease(settings: Settings) -> Lease:
    """A lease for one run of one job by this process: host, process id and a nonce, so that two runs
    in one process (kg serve's jobs) are two owners."""
    return Lease(owner=f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}", seconds=settings.lease_s)


class LeaseKeeper:
    """Renews a job's lease from a daemon thread every third of its length, while the job runs.

    A renewal that fails (the database out of reach) is tried again at the next tick: if the database
    stays away longer than the lease, the job reads INTERRUPTED, which is what it is. A renewal the
    ledger refuses means another process took the job over: `check` raises LeaseLost at the next
    chunk or stage boundary."""

    def __init__(self, ledger: Ledger, job_id: str, lease: Lease):
        self.ledger, self.job_id, self.lease = ledger, job_id, lease
        self._stopped = threading.Event()
        self._lost = threading.Event()
        self._thread = threading.Thread(target=self._renew, name=f"lease-{job_id[:8]}", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopped.set()
        self._thread.join(timeout=1)  # a renewal stuck on a dead database must not hold the exit

    def check(self) -> None:
        if self._lost.is_set():
            raise LeaseLost(f"job {self.job_id} was taken over by another process (this one's lease on it had "
                            "lapsed); it goes on there")

    def _renew(self) -> None:
        while not self._stopped.wait(self.lease.seconds / 3):
            try:
                if not self.ledger.renew_lease(self.job_id, self.lease) and not self._stopped.is_set():
                    self._lost.set()
                    return
            except NotFound:
                continue  # plan has not opened the job yet
            except Exception as e:  # the database is away: try again at the next tick
                log.info("job %s: lease not renewed: %s", self.job_id, e)


def ingest(
    document: DocumentInput, ports: LocalPorts, settings: Settings, observer: ProgressObserver | None = None,
    *, job_id: str | None = None, options: JobOptions | None = None, lease: Lease | None = None,
) -> IngestReport:
    """One document through every stage; `options` (by default `settings.concepts` and
    `settings.dedup`) choose the optional ones. `job_id` names the job (kg.serve derives it from the
    submission, as the AWS engine does); a new uuid4 by default.

    `lease`: the one the job was opened with (kg serve opens its jobs QUEUED under its own); a new
    one for this run by default.

    Raises InvalidInput, with no job left behind, when plan refuses the document. On SIGTERM or
    Ctrl-C (KeyboardInterrupt, SystemExit) the job ends INTERRUPTED and the exception goes on."""
    started = time.perf_counter()
    spec = prepare(document, ports, settings, job_id=job_id or str(uuid.uuid4()), options=options)
    return _run(spec, ports, settings, observer or SilentObserver(), lease or new_lease(settings), started, fresh=True)


def prepare(document: DocumentInput, ports: LocalPorts, settings: Settings, *, job_id: str,
            options: JobOptions | None = None) -> JobSpec:
    """The job's text and spec, kept with its blobs: what running it, now or after a resume, needs.
    Writing them again is a no-op (the same bytes)."""
    spec = JobSpec(
        request=PlanRequest(
            job_id=job_id, source=document.source, source_type=document.source_type,
            source_date=document.source_date, text_key=text_key(job_id),
            options=options or JobOptions(concepts=settings.concepts, dedup=settings.dedup,
                                          llm_batch=settings.llm_batch)),
        chunking=chunking_params(settings),
    )
    ports.blobs.put(spec.request.text_key, document.text.encode())
    ports.blobs.put(spec_key(job_id), spec.model_dump_json().encode())
    return spec


def resume(job_id: str, ports: LocalPorts, settings: Settings,
           observer: ProgressObserver | None = None) -> IngestReport:
    """Continue an INTERRUPTED job (or a QUEUED or RUNNING one whose lease has lapsed) to its end.

    The job is taken over atomically (kg.ledger.Ledger.take_over): LeaseHeld when another process
    holds it (of two resumes at once, one wins), InvalidInput when it has ended, NotFound. The chunks
    whose results are stored are not extracted again; the extractor and embedder are this process's
    (the settings of now), the chunking and optional stages the job's own."""
    started = time.perf_counter()
    lease = new_lease(settings)
    record = ports.ledger.take_over(job_id, lease)
    stored = get_optional(ports.blobs, spec_key(record.job_id))
    if stored is None:  # a job of an older version, or its blob folder was removed: it can only end
        error = (f"cannot be resumed: its working files ({job_prefix(record.job_id)} in the blob store) are gone; "
                 "ingest the document again")
        fail_job(FailRequest(job_id=record.job_id, error=error, source=record.source), ports.ledger, ports.blobs)
        return report_of(ports.ledger.get(record.job_id), ports.extractor.name, 0,
                         round(time.perf_counter() - started, 3))
    spec = JobSpec.model_validate_json(stored)
    return _run(spec, ports, settings, observer or SilentObserver(), lease, started, fresh=False)


def interrupted_job(ports: LocalPorts, source: str) -> JobRecord | None:
    """The latest job of `source` when it is INTERRUPTED (resumable), else None."""
    latest = ports.ledger.latest_job(source)
    return latest if latest is not None and latest.status is JobStatus.INTERRUPTED else None


def same_document(ports: LocalPorts, job_id: str, document: DocumentInput) -> bool:
    """Whether `document` is the one the job was started with (its text, as kept with the job's blobs)."""
    stored = get_optional(ports.blobs, spec_key(job_id))
    if stored is None:
        return False
    spec = JobSpec.model_validate_json(stored)
    text = get_optional(ports.blobs, spec.request.text_key)
    return (text == document.text.encode() and spec.request.source_type == document.source_type
            and spec.request.source_date == document.source_date)


def _run(spec: JobSpec, ports: LocalPorts, settings: Settings, observer: ProgressObserver, lease: Lease,
         started: float, *, fresh: bool) -> IngestReport:
    job_id, source = spec.request.job_id, spec.request.source
    tokens, planned = 0, False
    with LeaseKeeper(ports.ledger, job_id, lease) as keeper:
        try:
            observer.stage_started(Stage.PLAN, 1)
            job = plan(spec.request, ports.blobs, ports.ledger, spec.chunking, lease)
            planned = True
            observer.advanced(Stage.PLAN)
            tokens = job.tokens
            if job.options.llm_batch:  # the answers go to the LLM cache, where the stages find them
                _llm_batch(BatchPhase.EXTRACT, job.items, job_id, ports, settings, keeper)
            _extract(job.items, job_id, ports, settings, observer, keeper)
            stage = StageRequest(job_id=job_id)
            _until_done(Stage.STORE, observer, keeper, lambda: merge_and_store(
                stage, ports.embedder, ports.graph, ports.blobs, ports.ledger))
            if job.options.concepts and job.options.llm_batch:
                _llm_batch(BatchPhase.CONCEPTS, job.items, job_id, ports, settings, keeper)
            if job.options.concepts:
                _until_done(Stage.CONCEPTS, observer, keeper, lambda: generate_concepts(
                    stage, ports.conceptualizer, ports.embedder, ports.graph, ports.ledger, ports.blobs,
                    settings.concept_batch_size, settings.concept_workers or settings.max_concurrency))
            if job.options.dedup:
                _until_done(Stage.DEDUP, observer, keeper, lambda: deduplicate(
                    stage, ports.graph, ports.ledger, ports.blobs, dedup_params(settings), ports.embedder))
            keeper.check()
            finalize(job_id, ports.ledger, ports.blobs)
        except LeaseLost:
            raise  # the job is another process's now: its outcome is not this one's to write
        except Exception as e:
            if isinstance(e, InvalidInput) and fresh and not planned:
                ports.blobs.delete_prefix(job_prefix(job_id))  # refused before the job exists: nothing to keep
                raise
            # The job ends FAILED with its error; the command goes on to the next document.
            fail_job(FailRequest(job_id=job_id, error=_describe(e), source=source), ports.ledger, ports.blobs)
        except BaseException as e:  # SIGTERM, Ctrl-C, SystemExit: the job stops, resumable; then the process does
            _interrupt(job_id, lease, f"interrupted ({type(e).__name__}): kg resume {job_id} continues it", ports)
            raise
    record = ports.ledger.get(job_id, with_chunks=True)
    return report_of(record, ports.extractor.name, tokens, round(time.perf_counter() - started, 3))


def _llm_batch(phase: BatchPhase, items: list[int], job_id: str, ports: LocalPorts, settings: Settings,
               keeper: LeaseKeeper) -> None:
    batch_phase(phase, job_id, items, ports.extractor, ports.conceptualizer, ports.graph, ports.ledger,
                ports.blobs, settings, keeper.check)


def _interrupt(job_id: str, lease: Lease, error: str, ports: LocalPorts) -> None:
    try:
        ports.ledger.interrupt(job_id, lease.owner, error)  # False: ended, or another's: nothing to do
    except NotFound:  # stopped before plan opened the job: there is nothing to resume
        ports.blobs.delete_prefix(job_prefix(job_id))
    except Exception as e:  # the database is away: the lease lapses, and the job reads INTERRUPTED then
        log.info("job %s: could not be marked INTERRUPTED: %s", job_id, e)


def _extract(items: list[int], job_id: str, ports: LocalPorts, settings: Settings, observer: ProgressObserver,
             keeper: LeaseKeeper) -> None:
    observer.stage_started(Stage.EXTRACT, len(items))
    stopping = threading.Event()
    extractor = _UntilStopped(ports.extractor, stopping)
    pool = ThreadPoolExecutor(max_workers=settings.max_concurrency, thread_name_prefix="chunk")
    ahead = _EmbedAhead(job_id, ports)
    try:
        futures = {pool.submit(extract_chunk, ChunkTask(job_id=job_id, index=i), extractor, ports.blobs,
                               ports.ledger): i for i in items}
        for future in as_completed(futures):
            try:
                ref = future.result()
                if ref.status is not ChunkStatus.FAILED and ref.triples:
                    ahead.add(ref.index)
            except Exception as e:  # what the Map's Catch does with an item that failed past its retries
                fail_chunk(ChunkFailure(job_id=job_id, index=futures[future], error=_describe(e)),
                           ports.blobs, ports.ledger)
            observer.advanced(Stage.EXTRACT)
            keeper.check()
    except BaseException:
        # Stopping (a signal, the lease lost): chunks not started are dropped at once; those being
        # extracted finish in their threads, and what they get right is there for a resume.
        stopping.set()
        pool.shutdown(wait=False, cancel_futures=True)
        ahead.stop()
        raise
    pool.shutdown()
    ahead.finish()


class _EmbedAhead:
    """Embeds the new texts of extracted chunks while the others are extracted, so that the store has
    little left to embed: one thread, one embedding call for all the chunks that landed since its
    last call (a call per chunk would queue behind one another). An embedding that fails here is
    the store's to do again."""

    def __init__(self, job_id: str, ports: LocalPorts):
        self.job_id, self.ports = job_id, ports
        self.claimed = ClaimedTexts()
        self.pending: list[int] = []
        self.running = False
        self.lock = threading.Lock()
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pre-embed")

    def add(self, index: int) -> None:
        with self.lock:
            self.pending.append(index)
            if self.running:
                return
            self.running = True
        self.pool.submit(self._drain)

    def finish(self) -> None:
        self.pool.shutdown()

    def stop(self) -> None:
        with self.lock:
            self.pending.clear()
        self.pool.shutdown(wait=False, cancel_futures=True)

    def _drain(self) -> None:
        while True:
            with self.lock:
                if not self.pending:
                    self.running = False
                    return
                indexes, self.pending = self.pending, []
            try:
                pre_embed_chunks(self.job_id, indexes, self.ports.embedder, self.ports.graph, self.ports.blobs,
                                 self.ports.ledger, self.claimed)
            except Exception as e:
                log.info("job %s: chunks %s not embedded ahead (the store embeds them): %s", self.job_id, indexes, e)


class _Abandoned(BaseException):
    """Not an Exception, so that extract_chunk lets it through without writing a result."""


class _UntilStopped:
    """The extractor, as the chunks in flight when the job stops see it: the process closes its ports
    around them (the database pool the LLM cache uses, the client), so an error or a failed type they
    meet then says nothing about the chunk. Such an extraction is abandoned, the chunk left PENDING,
    for a resume to extract it again instead of keeping that failure as the chunk's."""

    def __init__(self, extractor: Extractor, stopping: threading.Event):
        self.extractor, self.stopping = extractor, stopping
        self.name = extractor.name

    def extract(self, chunk: Chunk, types: Sequence[TripleType]) -> ChunkExtraction:
        try:
            extraction = self.extractor.extract(chunk, types)
        except Exception:
            if self.stopping.is_set():
                raise _Abandoned from None
            raise
        if self.stopping.is_set() and extraction.failed_types:
            raise _Abandoned
        return extraction


def _until_done(stage: Stage, observer: ProgressObserver, keeper: LeaseKeeper,
                call: Callable[[], StageProgress]) -> StageProgress:
    observer.stage_started(stage, 1)
    keeper.check()
    progress = call()
    while progress.state == "more":
        keeper.check()
        progress = call()
    observer.advanced(stage)
    return progress


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def report_of(record: JobRecord, extractor: str, tokens: int, duration_s: float) -> IngestReport:
    """The command line's account of a job, read from its ledger record."""
    counts = record.counts
    concepts, dedup = counts.get("concepts"), counts.get("dedup")
    return IngestReport(
        job_id=record.job_id,
        status=record.status,
        source=record.source,
        document_id=record.document_id,
        extractor=extractor,
        chunks=record.chunks_total,
        chunks_failed=sum(c.status in (ChunkStatus.FAILED, ChunkStatus.PENDING) for c in record.chunks),
        chunks_partial=sum(c.status is ChunkStatus.PARTIAL for c in record.chunks),
        triples=counts.get("triples") or TripleCounts().as_dict(),
        entities=counts.get("entities", 0),
        events=counts.get("events", 0),
        relations=counts.get("relations", 0),
        embeddings=EmbeddingCounts.model_validate(counts.get("embeddings") or {}),
        llm=record.llm,
        tokens=tokens,
        duration_s=duration_s,
        error=record.error,
        concepts=ConceptSummary.model_validate(concepts) if concepts else None,
        duplicates_removed=counts.get("duplicates_removed", 0),
        dedup=DedupSummary.model_validate(dedup) if dedup else None,
    )
