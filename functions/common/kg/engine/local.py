"""The local engine: the same stage functions as the AWS state machine, run in-process.

plan -> extract (a thread pool of max_concurrency workers plays the Map) -> merge_and_store
     -> generate_concepts -> [deduplicate] -> finalize.
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
from kg.llm.cache import LlmCache
from kg.llm.cache_postgres import PostgresLlmCache
from kg.concepts import Conceptualizer
from kg.models import ConceptSummary, DedupSummary, DocumentInput, IngestReport, Stage, StoreSummary
from kg.settings import Settings
from kg.stages import DedupParams, deduplicate, extract_chunk, finalize, generate_concepts, merge_and_store, plan
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
    conceptualizer: Conceptualizer
    graph: GraphStore
    ledger: Ledger
    blobs: BlobStore
    db: Database

    def close(self) -> None:
        self.db.close()


def default_embedder(settings: Settings) -> Embedder:
    if settings.embedding_provider == "openai":
        from kg.embeddings.openai import OpenAiEmbedder
        from kg.llm.client import shared_client

        return OpenAiEmbedder(shared_client(settings), settings.embedding_model, settings.embedding_dimensions,
                              settings.embedding_batch_size, settings.llm_prices)
    from kg.embeddings.onnx_minilm import MiniLmEmbedder

    return MiniLmEmbedder(batch_size=settings.embedding_batch_size)


def default_extractor(settings: Settings, cache: LlmCache | None = None) -> Extractor:
    """The extractor the settings choose; an LLM extractor caches its replies in `cache` (none: no cache)."""
    if settings.llm_provider == "openai":
        from kg.extraction.openai import OpenAiExtractor
        from kg.llm.cache import NoLlmCache
        from kg.llm.client import shared_client

        return OpenAiExtractor(shared_client(settings), cache or NoLlmCache(), settings.llm_model,
                               settings.extraction_mode, settings.grounding, settings.llm_prices)
    from kg.extraction.offline import SpacyExtractor

    return SpacyExtractor(settings.spacy_model)


def default_conceptualizer(settings: Settings, extractor: Extractor, cache: LlmCache | None = None) -> Conceptualizer:
    if settings.llm_provider == "openai":
        from kg.llm.cache import NoLlmCache
        from kg.llm.client import shared_client
        from kg.llm.concepts import OpenAiConceptualizer

        return OpenAiConceptualizer(shared_client(settings), cache or NoLlmCache(), settings.llm_model,
                                    settings.llm_prices)
    from kg.concepts.offline import HeuristicConceptualizer
    from kg.extraction.offline import SpacyExtractor

    # The heuristic concepts parse names with spaCy: share the offline extractor's loaded model.
    parser = extractor if isinstance(extractor, SpacyExtractor) else SpacyExtractor(settings.spacy_model)
    return HeuristicConceptualizer(parser)


def open_local_ports(
    settings: Settings,
    extractor: Extractor | None = None,
    embedder: Embedder | None = None,
    conceptualizer: Conceptualizer | None = None,
) -> LocalPorts:
    embedder = embedder or default_embedder(settings)
    db = open_database(settings, embedder.model, embedder.dimensions)
    cache = PostgresLlmCache(db)
    extractor = extractor or default_extractor(settings, cache)
    return LocalPorts(
        extractor=extractor,
        embedder=embedder,
        conceptualizer=conceptualizer or default_conceptualizer(settings, extractor, cache),
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


def dedup_params(settings: Settings) -> DedupParams:
    return DedupParams(
        triple_threshold=settings.dedup_threshold,
        entity_threshold=settings.entity_dedup_threshold,
        neighbours=settings.dedup_neighbours,
    )


def ingest(
    document: DocumentInput, ports: LocalPorts, settings: Settings, observer: ProgressObserver | None = None
) -> IngestReport:
    """One document through every stage; `settings.concepts` and `settings.dedup` choose the optional ones."""
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

    concepts: ConceptSummary | None = None
    dedup: DedupSummary | None = None
    if summary is not None and settings.concepts:
        observer.stage_started(Stage.CONCEPTS, 1)
        try:
            concepts = generate_concepts(job.job_id, job.document_id, ports.conceptualizer, ports.embedder,
                                         ports.graph, ports.ledger, settings.concept_batch_size)
            if concepts.failed_batches:
                error = f"concepts: {concepts.failed_batches} batches failed; their elements wait for the next run"
        except Exception as e:  # the stored graph stands; the job says what is missing
            error = f"concepts: {type(e).__name__}: {e}"
        observer.advanced(Stage.CONCEPTS)
    if summary is not None and settings.dedup:
        observer.stage_started(Stage.DEDUP, 1)
        try:
            dedup = deduplicate(job.job_id, job.document_id, ports.graph, ports.ledger, dedup_params(settings))
        except Exception as e:
            error = f"dedup: {type(e).__name__}: {e}"
        observer.advanced(Stage.DEDUP)

    extra = {"duplicates_removed": dedup.triples_merged if dedup else 0}
    if concepts:
        extra["concepts"] = concepts.model_dump(mode="json")
    status = finalize(job.job_id, ports.ledger, summary, error, extra)
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
        concepts=concepts,
        duplicates_removed=dedup.triples_merged if dedup else 0,
        dedup=dedup,
    )
    if summary is not None:
        report.triples = summary.triples.as_dict()
        report.entities, report.events, report.relations = summary.entities, summary.events, summary.relations
        report.embeddings = summary.embeddings
    return report
