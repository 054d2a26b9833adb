"""Merge and store: merge the chunk results, embed what is new, write the document's graph in one transaction.

Within a time budget, and safe to retry. The slow part is embedding (a 1,000-chunk document has
tens of thousands of texts), so it is planned once and done in slices kept in the blob store:

1. merge the chunk results (pure and quick: redone on every call);
2. the embedding plan: the texts no stored row has a vector for, saved once at the first call, so
   every later call (after `more`, or a retry after the commit) embeds and counts the same texts;
3. slices of that plan, each embedded once and saved with its cost (`more` when the budget runs out
   between slices; at least one slice is done per call, so a job always moves on);
4. the write, one transaction, idempotent (rows are keyed by content), under the document's lock
   (kg.graph.postgres); a fact that names an entity deduplication merged away is written with the
   kept entity's name, and its statement embedded again right after (kg.stages.stale_vectors).

The counts recorded are those of the merged graph and the plan, never of one call, so a retry
leaves the same ledger.

`pre_embed_chunks` does step 2's work ahead of time: the local engine runs it on the chunks whose
results have landed, while the others are still being extracted (on the core the offline parser
leaves idle, or alongside the LLM calls), and the plan then counts those texts as embedded.
"""

from __future__ import annotations

import io
import threading
import uuid
from collections.abc import Iterable, Sequence

import numpy as np
from pydantic import BaseModel

from kg.blobs import BlobStore, chunk_key, document_key, get_optional, result_key, stage_key
from kg.embedding_map import missing_texts
from kg.embeddings import Embedder
from kg.errors import ExtractionFailed
from kg.graph import GraphStore
from kg.ledger import Ledger
from kg.merge import merge_chunk_results
from kg.models import Chunk, ChunkResult, ChunkStatus, EmbeddingCounts, Stage
from kg.stages.contract import Budget, StageProgress, StageRequest
from kg.stages.plan import PlannedDocument
from kg.stages.stale_vectors import embed_stale_triples

# Texts per saved slice: big enough that a slice is several embedding requests, small enough that
# a slice of OpenAI embeddings (about a minute at worst) fits well inside a Lambda's budget.
EMBED_SLICE = 2048


class EmbeddingPlan(BaseModel):
    missing: list[str]  # sorted, each once
    reused: int
    pre_embedded: int = 0  # texts whose vectors pre_embed_chunks saved before the plan was made


class ClaimedTexts:
    """The texts one job's pre-embedding has taken in this process: a name that many chunks share
    is embedded by the first of them only."""

    def __init__(self) -> None:
        self._taken: set[str] = set()
        self._lock = threading.Lock()

    def take(self, texts: Iterable[str]) -> list[str]:
        """Those of `texts` no other chunk has taken (sorted), taken now."""
        with self._lock:
            new = sorted(set(texts) - self._taken)
            self._taken.update(new)
            return new


def pre_embed_chunks(job_id: str, indexes: Sequence[int], embedder: Embedder, graph: GraphStore, blobs: BlobStore,
                     ledger: Ledger, claimed: ClaimedTexts) -> int:
    """Embeds, in one embedding call, the texts of these extracted chunks that no stored row and no
    other chunk has, and saves each chunk's vectors (and the call's cost) for merge_and_store.
    Returns how many texts it embedded: 0 when the chunks failed, their vectors are saved already,
    or every text of them is stored or taken.

    Only a head start: a text whose vector is not found saved (its embedding failed, or the whole
    document's merge names a node with another chunk's spelling) is embedded by merge_and_store."""
    texts_of: dict[int, dict[uuid.UUID, str]] = {}
    for index in indexes:
        if get_optional(blobs, _chunk_vectors_key(job_id, index)) is not None:
            continue
        result = _read_result(blobs, job_id, index)
        if result.status is not ChunkStatus.FAILED and result.triples:
            texts_of[index] = merge_chunk_results([result]).embedding_texts()
    missing = set(missing_texts({i: t for texts in texts_of.values() for i, t in texts.items()}, graph)[0])
    new_of = {index: claimed.take(t for t in texts.values() if t in missing) for index, texts in texts_of.items()}
    new_of = {index: new for index, new in new_of.items() if new}
    if not new_of:
        return 0
    embedded = embedder.embed([t for new in new_of.values() for t in new])
    blobs.put(_ahead_marker_key(job_id), b"1")
    start = 0
    for index, new in new_of.items():
        out = io.BytesIO()
        np.savez(out, model=np.array(embedder.model), texts=np.array(new),
                 vectors=np.asarray(embedded.vectors[start:start + len(new)], dtype=np.float32))
        blobs.put(_chunk_vectors_key(job_id, index), out.getvalue())
        start += len(new)
    # Keyed by the first chunk: a later call never includes it again (its vectors are saved).
    ledger.record_usage(job_id, Stage.STORE, embedded.usage, part=f"pre-embed-{min(new_of):05d}")
    return start


def merge_and_store(
    request: StageRequest,
    embedder: Embedder,
    graph: GraphStore,
    blobs: BlobStore,
    ledger: Ledger,
    slice_size: int = EMBED_SLICE,
) -> StageProgress:
    job_id = request.job_id
    budget = Budget.of(request)
    ledger.set_stage(job_id, Stage.STORE)
    planned = PlannedDocument.model_validate_json(blobs.get(document_key(job_id)))
    results = [_read_result(blobs, job_id, i) for i in range(planned.chunk_count)]
    usable = [r for r in results if r.status is not ChunkStatus.FAILED]
    if not usable:
        first = next((r.error for r in results if r.error), "no error recorded")
        raise ExtractionFailed(f"all {planned.chunk_count} chunks failed, nothing to store (first error: {first})")
    merged = merge_chunk_results(usable)
    texts = merged.embedding_texts()

    plan_key = stage_key(job_id, "store", "embedding-plan.json")
    stored_plan = get_optional(blobs, plan_key)
    pre_embedded = _pre_embedded(blobs, job_id, planned.chunk_count, embedder.model)
    if stored_plan is None:
        missing, _ = missing_texts(texts, graph)
        ahead = sum(t in pre_embedded for t in missing)
        plan = EmbeddingPlan(missing=[t for t in missing if t not in pre_embedded], pre_embedded=ahead,
                             reused=len(set(texts.values())) - len(missing))
        blobs.put(plan_key, plan.model_dump_json().encode())
    else:
        plan = EmbeddingPlan.model_validate_json(stored_plan)

    slices = range(0, (len(plan.missing) + slice_size - 1) // slice_size)
    by_text: dict[str, np.ndarray] = pre_embedded
    done_this_call = 0
    for k in slices:
        key = stage_key(job_id, "store", f"vectors-{k:05d}.npy")
        saved = get_optional(blobs, key)
        if saved is None:
            if done_this_call and budget.expired():
                return StageProgress(job_id=job_id, stage=Stage.STORE, state="more",
                                     counts={"slices_done": k, "slices_total": len(slices)})
            texts_k = plan.missing[k * slice_size:(k + 1) * slice_size]
            embedded = embedder.embed(texts_k)
            ledger.record_usage(job_id, Stage.STORE, embedded.usage, part=f"embed-{k:05d}")
            saved = _to_bytes(embedded.vectors)
            blobs.put(key, saved)
            done_this_call += 1
        vectors = np.load(io.BytesIO(saved), allow_pickle=False)
        by_text.update(zip(plan.missing[k * slice_size:(k + 1) * slice_size], vectors, strict=True))

    need_stored = {row_id: text for row_id, text in texts.items() if text not in by_text}
    stored = graph.stored_vectors(need_stored.keys())
    by_text.update({need_stored[row_id]: vector for row_id, vector in stored.items()})
    # A vector the plan counted on can be gone by now (another job's dedup merged its row away).
    late = sorted({text for text in need_stored.values() if text not in by_text})
    if late:
        embedded = embedder.embed(late)
        ledger.record_usage(job_id, Stage.STORE, embedded.usage, part="embed-late")
        by_text.update(zip(late, embedded.vectors, strict=True))

    chunks = [Chunk.model_validate_json(blobs.get(chunk_key(job_id, i))) for i in range(planned.chunk_count)]
    graph.write_document(job_id, planned.document, chunks, merged, {row_id: by_text[t] for row_id, t in texts.items()})
    # Few (only facts naming a merged-away entity), so not split by the budget.
    embed_stale_triples(graph, embedder, planned.document.id, usage_to=(ledger, job_id, Stage.STORE))

    kinds = [n.kind for n in merged.nodes.values()]
    triples = merged.counts()
    embeddings = EmbeddingCounts(computed=len(plan.missing) + plan.pre_embedded, reused=plan.reused)
    ledger.set_stage(job_id, Stage.STORE, {
        "triples": triples.as_dict(),
        "entities": kinds.count("entity"),
        "events": kinds.count("event"),
        "relations": len(merged.relations),
        "embeddings": embeddings.model_dump(),
        "chunks_stored": len(usable),
    })
    return StageProgress(job_id=job_id, stage=Stage.STORE, state="done", counts={
        "triples": triples.total, "entities": kinds.count("entity"), "events": kinds.count("event"),
        "relations": len(merged.relations), "embeddings_computed": embeddings.computed,
        "embeddings_reused": embeddings.reused,
    })


def _to_bytes(vectors: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, np.asarray(vectors, dtype=np.float32), allow_pickle=False)
    return out.getvalue()


def _chunk_vectors_key(job_id: str, index: int) -> str:
    return stage_key(job_id, "store", f"chunk-{index:05d}-vectors.npz")


def _ahead_marker_key(job_id: str) -> str:
    return stage_key(job_id, "store", "pre-embedded")


def _pre_embedded(blobs: BlobStore, job_id: str, chunk_count: int, model: str) -> dict[str, np.ndarray]:
    """The vectors pre_embed_chunks saved for this job, by text; those of another model (a job resumed
    with other settings) are left out."""
    by_text: dict[str, np.ndarray] = {}
    if get_optional(blobs, _ahead_marker_key(job_id)) is None:
        return by_text  # nothing embedded ahead (the AWS engine): not one read per chunk for nothing
    for index in range(chunk_count):
        saved = get_optional(blobs, _chunk_vectors_key(job_id, index))
        if saved is None:
            continue
        with np.load(io.BytesIO(saved), allow_pickle=False) as arrays:
            if str(arrays["model"]) == model:
                by_text.update(zip(arrays["texts"].tolist(), arrays["vectors"], strict=True))
    return by_text


def _read_result(blobs: BlobStore, job_id: str, index: int) -> ChunkResult:
    stored = get_optional(blobs, result_key(job_id, index))
    if stored is None:
        # The Map item never finished (its Lambda died past its retries): the chunk counts as failed.
        return ChunkResult(job_id=job_id, chunk_index=index, status=ChunkStatus.FAILED, error="no result")
    return ChunkResult.model_validate_json(stored)
