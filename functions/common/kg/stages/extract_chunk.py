"""Extract one chunk (one Map item): all four types, fail-forward. Never touches the graph database."""

from __future__ import annotations

import time

from kg.blobs import BlobStore, chunk_key, result_key
from kg.extraction import Extractor
from kg.ledger import Ledger
from kg.models import ALL_TRIPLE_TYPES, Chunk, ChunkExtraction, ChunkResult, ChunkState, ChunkStatus


def extract_chunk(job_id: str, index: int, extractor: Extractor, blobs: BlobStore, ledger: Ledger) -> ChunkState:
    chunk = Chunk.model_validate_json(blobs.get(chunk_key(job_id, index)))
    started = time.perf_counter()
    error: str | None = None
    try:
        extraction = extractor.extract(chunk, ALL_TRIPLE_TYPES)
    except Exception as e:  # one bad chunk must not sink the job: record it and go on
        extraction = ChunkExtraction()
        error = f"{type(e).__name__}: {e}"
    if error is None and len(extraction.failed_types) == len(ALL_TRIPLE_TYPES):
        error = "; ".join(f"{t}: {why}" for t, why in extraction.failed_types.items())
    if error is not None:
        status = ChunkStatus.FAILED
    elif extraction.failed_types:
        status = ChunkStatus.PARTIAL
        error = "; ".join(f"{t}: {why}" for t, why in extraction.failed_types.items())
    else:
        status = ChunkStatus.SUCCEEDED
    result = ChunkResult(
        job_id=job_id,
        chunk_index=index,
        status=status,
        triples=extraction.triples if status is not ChunkStatus.FAILED else [],
        failed_types=extraction.failed_types,
        error=error,
        dropped=extraction.dropped,
        usage=extraction.usage,
        duration_s=round(time.perf_counter() - started, 4),
    )
    blobs.put(result_key(job_id, index), result.model_dump_json().encode())
    state = ChunkState(index=index, status=status, error=error, triples=len(result.triples))
    ledger.record_chunk(job_id, state, extraction.usage)
    return state
