"""The local engine: the same stage functions as the AWS state machine, run in-process.

plan -> extract (a thread pool of max_concurrency workers plays the Map) -> merge_and_store -> finalize.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Protocol

from kg.blobs import BlobStore, job_prefix
from kg.blobs.folder import FolderBlobStore
from kg.db import Database, open_database
from kg.embeddings import Embedder
from kg.errors import ExtractionFailed, StoreUnavailable
from kg.extraction import Extractor
from kg.graph import GraphStore
from kg.graph.postgres import PostgresGraphStore
from kg.ledger import Ledger
from kg.ledger.postgres import PostgresLedger
from kg.models import DocumentInput, IngestReport, Stage, StoreSummary
from kg.settings import Settings
from kg.stages import extract_chunk, finalize, merge_and_store, plan
from kg.stages.plan import ChunkingParams


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
    graph: GraphStore
    ledger: Ledger
    blobs: BlobStore
    db: Database

    def close(self) -> None:
        self.db.close()


def default_embedder(settings: Settings) -> Embedder:
    from kg.embeddings.onnx_minilm import MiniLmEmbedder

    return MiniLmEmbedder(batch_size=settings.embedding_batch_size)


def default_extractor(settings: Settings) -> Extractor:
    from kg.extraction.offline import SpacyExtractor

    return SpacyExtractor(settings.spacy_model)


def open_local_ports(
    settings: Settings, extractor: Extractor | None = None, embedder: Embedder | None = None
) -> LocalPorts:
    embedder = embedder or default_embedder(settings)
    db = open_database(settings, embedder.model, embedder.dimensions)
    return LocalPorts(
        extractor=extractor or default_extractor(settings),
        embedder=embedder,
        graph=PostgresGraphStore(db),
        ledger=PostgresLedger(db),
        blobs=FolderBlobStore(settings.blob_dir),
        db=db,
    )


def chunking_params(settings: Settings) -> ChunkingParams:
    return ChunkingParams(
        max_tokens=settings.chunk_tokens,
        overlap_tokens=settings.chunk_overlap_tokens,
        encoding=settings.tokenizer_encoding,
    )


def ingest(
    document: DocumentInput, ports: LocalPorts, settings: Settings, observer: ProgressObserver | None = None
) -> IngestReport:
    observer = observer or SilentObserver()
    started = time.perf_counter()

    observer.stage_started(Stage.PLAN, 1)
    job = plan(document, ports.blobs, ports.ledger, chunking_params(settings))
    observer.advanced(Stage.PLAN)

    observer.stage_started(Stage.EXTRACT, job.chunk_count)
    with ThreadPoolExecutor(max_workers=settings.max_concurrency, thread_name_prefix="chunk") as pool:
        futures = [
            pool.submit(extract_chunk, job.job_id, i, ports.extractor, ports.blobs, ports.ledger)
            for i in range(job.chunk_count)
        ]
        for future in as_completed(futures):
            future.result()
            observer.advanced(Stage.EXTRACT)

    observer.stage_started(Stage.STORE, 1)
    summary: StoreSummary | None = None
    error: str | None = None
    try:
        summary = merge_and_store(job.job_id, ports.embedder, ports.graph, ports.blobs, ports.ledger)
    except (ExtractionFailed, StoreUnavailable) as e:
        error = str(e)
    except Exception as e:  # finalize records any failure as the job's error rather than losing it
        error = f"{type(e).__name__}: {e}"
    observer.advanced(Stage.STORE)

    status = finalize(job.job_id, ports.ledger, summary, error)
    ports.blobs.delete_prefix(job_prefix(job.job_id))
    record = ports.ledger.get(job.job_id, with_chunks=False)
    report = IngestReport(
        job_id=job.job_id,
        status=status,
        source=document.source,
        document_id=job.document_id,
        extractor=ports.extractor.name,
        chunks=job.chunk_count,
        chunks_failed=record.chunks_failed if summary is None else summary.chunks_failed,
        chunks_partial=0 if summary is None else summary.chunks_partial,
        llm=record.llm,
        tokens=job.tokens,
        duration_s=round(time.perf_counter() - started, 3),
        error=error,
    )
    if summary is not None:
        report.triples = summary.triples.as_dict()
        report.entities, report.events, report.relations = summary.entities, summary.events, summary.relations
        report.embeddings = summary.embeddings
    return report
