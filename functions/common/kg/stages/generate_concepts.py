"""Generate concepts (stage 2): conceptualize the job's elements that have no concepts yet."""

from __future__ import annotations

import uuid

from kg.concepts import Conceptualizer
from kg.embedding_map import embed_texts
from kg.embeddings import Embedder
from kg.graph import GraphStore
from kg.ledger import Ledger
from kg.models import ConceptSummary, EmbeddingCounts, LlmUsage, Stage
from kg.normalize import concept_id


def generate_concepts(
    job_id: str,
    document_id: str | None,
    conceptualizer: Conceptualizer,
    embedder: Embedder,
    graph: GraphStore,
    ledger: Ledger,
    batch_size: int = 50,
    max_elements: int = 100_000,
) -> ConceptSummary:
    """Elements are taken in batches of `batch_size` (one conceptualizer call each) until none is
    left; a batch that fails is counted and left for a later run (its elements stay unmarked)."""
    ledger.set_stage(job_id, Stage.CONCEPTS)
    scope = uuid.UUID(document_id) if document_id else None
    summary = ConceptSummary()
    usage = LlmUsage()
    embedder_before = embedder.usage
    failed_ids: set[str] = set()
    while summary.elements + len(failed_ids) < max_elements:
        elements = [e for e in graph.elements_to_conceptualize(scope, batch_size + len(failed_ids))
                    if e.id not in failed_ids][:batch_size]
        if not elements:
            break
        try:
            batch = conceptualizer.conceptualize(elements)
        except Exception:  # fail-forward: the other batches still get their concepts
            summary.failed_batches += 1
            failed_ids.update(e.id for e in elements)
            continue
        usage = usage.add(batch.usage)
        texts = {concept_id(p.level, p.phrase): p.phrase for phrases in batch.concepts for p in phrases}
        vectors, counts = embed_texts(texts, embedder, graph)
        new_concepts, new_edges = graph.write_concepts(job_id, elements, batch.concepts, vectors)
        summary.elements += len(elements)
        summary.concepts_new += new_concepts
        summary.edges_new += new_edges
        summary.embeddings = EmbeddingCounts(computed=summary.embeddings.computed + counts.computed,
                                             reused=summary.embeddings.reused + counts.reused)
    ledger.set_stage(job_id, Stage.CONCEPTS, {"concepts": summary.model_dump(mode="json")})
    usage = usage.add(embedder.usage.since(embedder_before))
    if usage.calls or usage.cached:
        ledger.record_usage(job_id, Stage.CONCEPTS, usage)
    return summary
