"""The local engine: the same stage functions as the AWS state machine, run in-process.

plan -> extract (a thread pool of max_concurrency workers plays the Map; a chunk whose step raises
goes to fail_chunk, as the Map's Catch does) -> merge_and_store -> [generate_concepts]
-> [deduplicate] -> finalize; any other error -> fail_job. Each stage that can return `more` is
called until it is done. The engine holds no job logic: the stages decide, the ledger records.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Protocol

from kg.blobs import BlobStore, job_prefix, text_key
from kg.blobs.folder import FolderBlobStore
from kg.concepts import Conceptualizer
from kg.db import Database, open_database
from kg.embeddings import Embedder
from kg.errors import InvalidInput
from kg.extraction import Extractor
from kg.graph import GraphStore
from kg.graph.postgres import PostgresGraphStore
from kg.ledger import Ledger
from kg.ledger.postgres import PostgresLedger
from kg.llm.cache_postgres import PostgresLlmCache
from kg.models import (
    ChunkStatus,
    ConceptSummary,
    DedupSummary,
    DocumentInput,
    EmbeddingCounts,
    IngestReport,
    JobRecord,
    Stage,
    TripleCounts,
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
from kg.stages.contract import (
    ChunkFailure,
    ChunkTask,
    FailRequest,
    JobOptions,
    PlanRequest,
    StageProgress,
    StageRequest,
)


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
    embedder = embedder or default_embedder(settings)
    db = open_database(settings, embedder.model, embedder.dimensions, migrate=True)
    cache = PostgresLlmCache(db)
    extractor = extractor or default_extractor(settings, cache)
    return LocalPorts(
        extractor=extractor,
        embedder=embedder,
        conceptualizer=conceptualizer or default_conceptualizer(settings, cache),
        graph=PostgresGraphStore(db),
        ledger=PostgresLedger(db),
        blobs=FolderBlobStore(settings.blob_dir),
        db=db,
    )


def ingest(
    document: DocumentInput, ports: LocalPorts, settings: Settings, observer: ProgressObserver | None = None,
    *, job_id: str | None = None, options: JobOptions | None = None,
) -> IngestReport:
    """One document through every stage; `options` (by default `settings.concepts` and
    `settings.dedup`) choose the optional ones. `job_id` names the job (kg.serve derives it from the
    submission, as the AWS engine does); a new uuid4 by default.

    Raises InvalidInput, with no job left behind, when plan refuses the document."""
    observer = observer or SilentObserver()
    started = time.perf_counter()
    job_id = job_id or str(uuid.uuid4())
    request = PlanRequest(
        job_id=job_id, source=document.source, source_type=document.source_type, source_date=document.source_date,
        text_key=text_key(job_id), options=options or JobOptions(concepts=settings.concepts, dedup=settings.dedup),
    )
    ports.blobs.put(request.text_key, document.text.encode())
    tokens = 0
    try:
        observer.stage_started(Stage.PLAN, 1)
        try:
            job = plan(request, ports.blobs, ports.ledger, chunking_params(settings))
        except InvalidInput:  # refused before the job exists: nothing to end, nothing to keep
            ports.blobs.delete_prefix(job_prefix(job_id))
            raise
        observer.advanced(Stage.PLAN)
        tokens = job.tokens
        _extract(job.items, job_id, ports, settings, observer)
        stage = StageRequest(job_id=job_id)
        _until_done(Stage.STORE, observer, lambda: merge_and_store(
            stage, ports.embedder, ports.graph, ports.blobs, ports.ledger))
        if job.options.concepts:
            _until_done(Stage.CONCEPTS, observer, lambda: generate_concepts(
                stage, ports.conceptualizer, ports.embedder, ports.graph, ports.ledger, ports.blobs,
                settings.concept_batch_size, settings.concept_workers or settings.max_concurrency))
        if job.options.dedup:
            _until_done(Stage.DEDUP, observer, lambda: deduplicate(
                stage, ports.graph, ports.ledger, ports.blobs, dedup_params(settings)))
        finalize(job_id, ports.ledger, ports.blobs)
    except InvalidInput:
        raise
    except Exception as e:  # the job ends FAILED with its error; the command goes on to the next document
        fail_job(FailRequest(job_id=job_id, error=_describe(e), source=document.source), ports.ledger, ports.blobs)
    except BaseException as e:  # Ctrl-C, SystemExit: the job ends too, then the process does
        fail_job(FailRequest(job_id=job_id, error=f"interrupted ({type(e).__name__})", source=document.source),
                 ports.ledger, ports.blobs)
        raise
    record = ports.ledger.get(job_id, with_chunks=True)
    return report_of(record, ports.extractor.name, tokens, round(time.perf_counter() - started, 3))


def _extract(items: list[int], job_id: str, ports: LocalPorts, settings: Settings, observer: ProgressObserver) -> None:
    observer.stage_started(Stage.EXTRACT, len(items))
    with ThreadPoolExecutor(max_workers=settings.max_concurrency, thread_name_prefix="chunk") as pool:
        futures = {pool.submit(extract_chunk, ChunkTask(job_id=job_id, index=i), ports.extractor, ports.blobs,
                               ports.ledger): i for i in items}
        for future in as_completed(futures):
            try:
                future.result()
            except Exception as e:  # what the Map's Catch does with an item that failed past its retries
                fail_chunk(ChunkFailure(job_id=job_id, index=futures[future], error=_describe(e)),
                           ports.blobs, ports.ledger)
            observer.advanced(Stage.EXTRACT)


def _until_done(stage: Stage, observer: ProgressObserver, call: Callable[[], StageProgress]) -> StageProgress:
    observer.stage_started(stage, 1)
    progress = call()
    while progress.state == "more":
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
