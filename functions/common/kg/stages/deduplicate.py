"""Deduplicate (stage 3, optional): merge near-duplicate triples and entities in one transaction.

Candidates come from pgvector kNN (HNSW, cosine) for each triple and entity of the job's document
against the whole graph, so the cost grows with the document, not with the graph; there is no
pairwise pass. Pairs become clusters by union-find; each cluster keeps one canonical row.

A pair found by its vectors merges only when its wordings agree (kg.dedup.triples_conflict: no
negation on one side only, no converse direction, no opposite words), since an embedding model
places "presented" near "received" and "won" near "did not win".

As a stage it has three steps, each kept in the blob store once done (triple merges, entity merges,
the write), with the budget checked between them. Applying the same merges again changes nothing
(a merged row is gone, so its merge is skipped), and the counts are read from the job's merge log,
so a retry leaves the same graph and the same ledger. The write rewrites the triples that named a
merged entity; their new statements are embedded right after it (kg.stages.stale_vectors), in
slices with the budget checked between them, and a retry embeds only what is still marked.
"""

from __future__ import annotations

import uuid

from pydantic import BaseModel, Field

from kg.blobs import BlobStore, get_optional, stage_key
from kg.dedup import plan_merges, triples_conflict, wordings_conflict
from kg.embeddings import Embedder
from kg.graph import GraphStore, TripleAttributes
from kg.ledger import Ledger
from kg.models import DedupSummary, Stage
from kg.stages.contract import Budget, StageProgress, StageRequest
from kg.stages.stale_vectors import embed_stale_triples

Merge = tuple[uuid.UUID, uuid.UUID, float]


class DedupParams(BaseModel):
    triple_threshold: float = Field(default=0.85, gt=0, le=1)
    entity_threshold: float = Field(default=0.92, gt=0, le=1)
    neighbours: int = Field(default=8, ge=1, le=100)


class PlannedMerges(BaseModel):
    merges: list[Merge]


def triple_merges(graph: GraphStore, params: DedupParams, scope: uuid.UUID | None) -> list[Merge]:
    candidates = graph.similar_triples(params.triple_threshold, params.neighbours, scope, params.entity_threshold)
    triples = graph.triple_attributes({i for p in candidates for i in (p.a, p.b)})
    # A pair deleted since the probe has no attributes: nothing to merge.
    pairs = [p for p in candidates if p.a in triples and p.b in triples and triples_conflict(
        _parts(triples[p.a]), _parts(triples[p.b])) is None]
    # Canonical triple: the most confident, then the oldest.
    return plan_merges(pairs, lambda i: (-triples[i].confidence, triples[i].created_at))


def entity_merges(graph: GraphStore, params: DedupParams, scope: uuid.UUID | None) -> list[Merge]:
    candidates = graph.similar_entities(params.entity_threshold, params.neighbours, scope)
    nodes = graph.node_attributes({i for p in candidates for i in (p.a, p.b)})
    # "North Korea" / "South Korea": names that differ by opposite words are different entities.
    pairs = [p for p in candidates if p.a in nodes and p.b in nodes
             and wordings_conflict(nodes[p.a].name, nodes[p.b].name) is None]
    # Canonical entity: the one most triples use, then the longest (most specific) name.
    return plan_merges(pairs, lambda i: (-nodes[i].triples, -len(nodes[i].name)))


def _parts(t: TripleAttributes) -> tuple[str, str, str]:
    return t.subject, t.predicate, t.object


def deduplicate_graph(
    graph: GraphStore, embedder: Embedder, params: DedupParams, document_id: str | None = None
) -> DedupSummary:
    """One pass outside any job: `document_id` None is the whole graph (a maintenance pass, whose
    candidates the store finds in memory rather than by one HNSW probe per row: kg.graph.knn). The
    triples an entity merge rewrote are embedded again before it returns."""
    scope = uuid.UUID(document_id) if document_id else None
    summary = graph.apply_dedup(None, triple_merges(graph, params, scope), entity_merges(graph, params, scope), scope)
    embed_stale_triples(graph, embedder)
    return summary


def deduplicate(
    request: StageRequest, graph: GraphStore, ledger: Ledger, blobs: BlobStore, params: DedupParams,
    embedder: Embedder,
) -> StageProgress:
    """The job's document against the whole graph; `embedder` makes the vectors of the triples an
    entity merge rewrote."""
    job_id = request.job_id
    budget = Budget.of(request)
    ledger.set_stage(job_id, Stage.DEDUP)
    record = ledger.get(job_id, with_chunks=False)
    scope = uuid.UUID(record.document_id) if record.document_id else None

    planned: list[list[Merge]] = []
    worked = False  # at least one step per call, so that every call moves on
    for step, find in (("triple-merges", triple_merges), ("entity-merges", entity_merges)):
        key = stage_key(job_id, "dedup", f"{step}.json")
        saved = get_optional(blobs, key)
        if saved is None:
            if worked and budget.expired():
                return StageProgress(job_id=job_id, stage=Stage.DEDUP, state="more",
                                     counts={"steps_done": len(planned)})
            merges = find(graph, params, scope)
            blobs.put(key, PlannedMerges(merges=merges).model_dump_json().encode())
            worked = True
        else:
            merges = PlannedMerges.model_validate_json(saved).merges
        planned.append(merges)
    applied_key = stage_key(job_id, "dedup", "applied.json")
    if get_optional(blobs, applied_key) is None:
        if worked and budget.expired():
            return StageProgress(job_id=job_id, stage=Stage.DEDUP, state="more",
                                 counts={"steps_done": len(planned)})
        # NotFound when the job's document was deleted meanwhile: the job ends FAILED.
        graph.apply_dedup(job_id, planned[0], planned[1], scope)
        blobs.put(applied_key, b"{}")  # a call after `more` does not apply again (it would change nothing)
    if not embed_stale_triples(graph, embedder, budget=budget, usage_to=(ledger, job_id, Stage.DEDUP)):
        return StageProgress(job_id=job_id, stage=Stage.DEDUP, state="more",
                             counts={"steps_done": len(planned) + 1})

    summary = graph.dedup_counts(job_id)
    summary.candidate_pairs = len(planned[0]) + len(planned[1])
    ledger.set_stage(job_id, Stage.DEDUP, {"dedup": summary.model_dump(), "duplicates_removed": summary.triples_merged})
    return StageProgress(job_id=job_id, stage=Stage.DEDUP, state="done", counts=summary.model_dump())
