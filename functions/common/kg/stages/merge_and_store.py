"""Merge and store: merge the chunk results, embed what is new, write the document's graph in one transaction."""

from __future__ import annotations

from kg.blobs import BlobStore, chunk_key, document_key, result_key
from kg.embedding_map import embedding_map
from kg.embeddings import Embedder
from kg.errors import ExtractionFailed, NotFound
from kg.graph import GraphStore
from kg.ledger import Ledger
from kg.merge import merge_chunk_results
from kg.models import Chunk, ChunkResult, ChunkStatus, Stage, StoreSummary
from kg.stages.plan import PlannedDocument


def merge_and_store(
    job_id: str, embedder: Embedder, graph: GraphStore, blobs: BlobStore, ledger: Ledger
) -> StoreSummary:
    ledger.set_stage(job_id, Stage.STORE)
    planned = PlannedDocument.model_validate_json(blobs.get(document_key(job_id)))
    results = [_read_result(blobs, job_id, i) for i in range(planned.chunk_count)]
    usable = [r for r in results if r.status is not ChunkStatus.FAILED]
    if not usable:
        first = next((r.error for r in results if r.error), "no error recorded")
        raise ExtractionFailed(f"all {planned.chunk_count} chunks failed, nothing to store (chunk 0: {first})")
    chunks = [Chunk.model_validate_json(blobs.get(chunk_key(job_id, i))) for i in range(planned.chunk_count)]
    merged = merge_chunk_results(usable)
    spent_before = embedder.usage
    vectors, embeddings = embedding_map(merged, embedder, graph)
    if embedder.usage != spent_before:
        ledger.record_usage(job_id, Stage.STORE, embedder.usage.since(spent_before))
    new_rows = graph.write_document(job_id, planned.document, chunks, merged, vectors)
    kinds = [n.kind for n in merged.nodes.values()]
    summary = StoreSummary(
        job_id=job_id,
        chunks_stored=len(usable),
        chunks_failed=len(results) - len(usable),
        chunks_partial=sum(r.status is ChunkStatus.PARTIAL for r in results),
        triples=merged.counts(),
        entities=kinds.count("entity"),
        events=kinds.count("event"),
        relations=len(merged.relations),
        embeddings=embeddings,
        new_rows=new_rows,
    )
    ledger.set_stage(job_id, Stage.STORE, {"triples": summary.triples.as_dict(),
                                           "embeddings": embeddings.model_dump(), "new_rows": new_rows})
    return summary


def _read_result(blobs: BlobStore, job_id: str, index: int) -> ChunkResult:
    try:
        return ChunkResult.model_validate_json(blobs.get(result_key(job_id, index)))
    except NotFound:
        # The Map item never finished (its Lambda died past its retries): the chunk counts as failed.
        return ChunkResult(job_id=job_id, chunk_index=index, status=ChunkStatus.FAILED, error="no result")
