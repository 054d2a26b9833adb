"""Generate concepts (stage 2): conceptualize the job's elements that have no concepts yet.

Elements come in rounds of `workers` batches of `batch_size`; a round's conceptualizer calls run
concurrently (the LLM layer's limiter still caps requests in flight), then each batch's concepts are
embedded and written, one transaction per batch, which marks its elements done. The budget is
checked between rounds, so a call returns `more` with its finished batches kept. A batch that fails
is left for a later run (its elements stay unmarked) and counted; the job then ends PARTIAL.

Safe to retry: an element is written once (a retry finds it marked), and the counts come from the
graph rows tagged with the job, not from what one call did.

A delete of the document may come at any time (the conceptualizer call holds no lock): each batch
is written under the document's lock and only while the document exists, and the stage ends with
NotFound (the job FAILED) when the document is gone, never `done` over a deleted graph.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from pydantic import BaseModel, Field

from kg.blobs import BlobStore, error_key, get_optional, stage_key
from kg.concepts import Conceptualizer
from kg.embedding_map import embed_texts
from kg.embeddings import Embedder
from kg.errors import NotFound
from kg.graph import GraphStore
from kg.ledger import Ledger
from kg.models import ConceptElement, Stage
from kg.normalize import concept_id
from kg.stages.contract import Budget, StageProgress, StageRequest


class FailedBatches(BaseModel):
    """Batches whose conceptualizer call failed, kept between calls so they are not tried forever."""

    batches: int = 0
    element_ids: list[str] = Field(default_factory=list)
    last_error: str | None = None


def generate_concepts(
    request: StageRequest,
    conceptualizer: Conceptualizer,
    embedder: Embedder,
    graph: GraphStore,
    ledger: Ledger,
    blobs: BlobStore,
    batch_size: int = 50,
    workers: int = 4,
) -> StageProgress:
    job_id = request.job_id
    budget = Budget.of(request)
    ledger.set_stage(job_id, Stage.CONCEPTS)
    record = ledger.get(job_id, with_chunks=False)
    scope = uuid.UUID(record.document_id) if record.document_id else None
    failed_key = stage_key(job_id, "concepts", "failed.json")
    stored_failed = get_optional(blobs, failed_key)
    failed = FailedBatches.model_validate_json(stored_failed) if stored_failed else FailedBatches()

    rounds = 0
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="concepts") as pool:
        while True:
            skip = set(failed.element_ids)
            wanted = batch_size * workers
            elements = [e for e in graph.elements_to_conceptualize(scope, wanted + len(skip))
                        if e.id not in skip][:wanted]
            if not elements:
                break
            if rounds and budget.expired():  # at least one round per call, so that every call moves on
                return StageProgress(job_id=job_id, stage=Stage.CONCEPTS, state="more",
                                     counts=graph.concept_counts(job_id).model_dump())
            batches = [elements[i:i + batch_size] for i in range(0, len(elements), batch_size)]
            futures = [pool.submit(conceptualizer.conceptualize, batch) for batch in batches]
            rounds += 1
            round_failed = False
            for batch, future in zip(batches, futures, strict=True):
                try:
                    result = future.result()
                except Exception as error:  # fail-forward: the other batches still get their concepts
                    failed.batches += 1
                    failed.element_ids.extend(element.id for element in batch)
                    failed.last_error = f"{type(error).__name__}: {error}"
                    round_failed = True
                    continue
                texts = {concept_id(p.level, p.phrase): p.phrase for phrases in result.concepts for p in phrases}
                vectors, _, embedding_usage = embed_texts(texts, embedder, graph)
                ledger.record_usage(job_id, Stage.CONCEPTS, result.usage.add(embedding_usage), part=_part(batch))
                graph.write_concepts(job_id, batch, result.concepts, vectors, document_id=scope)
            if round_failed:
                blobs.put(failed_key, failed.model_dump_json().encode())
                blobs.put(error_key(job_id, "concepts"), (failed.last_error or "").encode())

    if scope is not None and not graph.document_exists(scope):
        # Deleted between two rounds: the last round found nothing left to conceptualize.
        raise NotFound(f"document {scope} was deleted while its concepts were being generated; this job's"
                       " writes are not kept (ingest it again to bring it back)")
    summary = graph.concept_counts(job_id)
    summary.failed_batches = failed.batches
    ledger.set_stage(job_id, Stage.CONCEPTS, {"concepts": summary.model_dump(mode="json")})
    return StageProgress(job_id=job_id, stage=Stage.CONCEPTS, state="done", counts=summary.model_dump())


def _part(batch: Sequence[ConceptElement]) -> str:
    """A batch's name in the ledger's usage: the same elements, the same part, whichever call made it."""
    return "batch-" + hashlib.sha256(",".join(sorted(e.id for e in batch)).encode()).hexdigest()[:16]
