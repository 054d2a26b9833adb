"""Extract one chunk (one Map item): all four types, fail-forward. Never touches the graph database.

Safe to retry: a chunk whose result is already in the blob store is recorded again from that
result, not extracted again (a Lambda that died after writing it costs no second LLM call).
"""

from __future__ import annotations

import time

from kg.blobs import BlobStore, chunk_key, error_key, get_optional, result_key
from kg.extraction import Extractor
from kg.ledger import Ledger
from kg.models import ALL_TRIPLE_TYPES, Chunk, ChunkExtraction, ChunkResult, ChunkState, ChunkStatus
from kg.stages.contract import ChunkFailure, ChunkRef, ChunkTask, bounded


def extract_chunk(task: ChunkTask, extractor: Extractor, blobs: BlobStore, ledger: Ledger) -> ChunkRef:
    stored = get_optional(blobs, result_key(task.job_id, task.index))
    if stored is not None:
        return _record(ChunkResult.model_validate_json(stored), blobs, ledger)
    chunk = Chunk.model_validate_json(blobs.get(chunk_key(task.job_id, task.index)))
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
        job_id=task.job_id,
        chunk_index=task.index,
        status=status,
        triples=extraction.triples if status is not ChunkStatus.FAILED else [],
        failed_types=extraction.failed_types,
        error=error,
        dropped=extraction.dropped,
        usage=extraction.usage,
        duration_s=round(time.perf_counter() - started, 4),
    )
    blobs.put(result_key(task.job_id, task.index), result.model_dump_json().encode())
    return _record(result, blobs, ledger)


def fail_chunk(failure: ChunkFailure, blobs: BlobStore, ledger: Ledger) -> ChunkRef:
    """A Map item that failed past its retries (a Lambda timeout, an out-of-memory): the chunk is
    FAILED, unless a result was written before the failure (then that result stands)."""
    stored = get_optional(blobs, result_key(failure.job_id, failure.index))
    if stored is not None:
        return _record(ChunkResult.model_validate_json(stored), blobs, ledger)
    result = ChunkResult(job_id=failure.job_id, chunk_index=failure.index, status=ChunkStatus.FAILED,
                         error=failure.error)
    blobs.put(result_key(failure.job_id, failure.index), result.model_dump_json().encode())
    return _record(result, blobs, ledger)


def _record(result: ChunkResult, blobs: BlobStore, ledger: Ledger) -> ChunkRef:
    error = None
    if result.error:
        error = bounded(result.error)
        if error != result.error:
            blobs.put(error_key(result.job_id, f"chunk-{result.chunk_index:06d}"), result.error.encode())
    state = ChunkState(index=result.chunk_index, status=result.status, error=error, triples=len(result.triples))
    ledger.record_chunk(result.job_id, state, result.usage)
    return ChunkRef(job_id=result.job_id, index=result.chunk_index, status=result.status,
                    triples=len(result.triples), error=error)
