"""Deduplicate (stage 3, optional): merge near-duplicate triples and entities in one transaction.

Candidates come from pgvector kNN (HNSW, cosine) for each triple and entity of the job's document
against the whole graph, so the cost grows with the document, not with the graph; there is no
pairwise pass. Pairs become clusters by union-find; each cluster keeps one canonical row.
"""

from __future__ import annotations

import uuid

from pydantic import BaseModel, Field

from kg.dedup import plan_merges
from kg.graph import GraphStore
from kg.ledger import Ledger
from kg.models import DedupSummary, Stage


class DedupParams(BaseModel):
    triple_threshold: float = Field(default=0.85, gt=0, le=1)
    entity_threshold: float = Field(default=0.92, gt=0, le=1)
    neighbours: int = Field(default=8, ge=1, le=100)


def deduplicate(
    job_id: str | None, document_id: str | None, graph: GraphStore, ledger: Ledger | None, params: DedupParams
) -> DedupSummary:
    """`document_id` None: the whole graph (a maintenance pass); otherwise that document's rows."""
    if ledger and job_id:
        ledger.set_stage(job_id, Stage.DEDUP)
    scope = uuid.UUID(document_id) if document_id else None

    triple_pairs = graph.similar_triples(params.triple_threshold, params.neighbours, scope, params.entity_threshold)
    triples = graph.triple_attributes({i for p in triple_pairs for i in (p.a, p.b)})
    # Canonical triple: the most confident, then the oldest.
    triple_merges = plan_merges(triple_pairs, lambda i: (-triples[i].confidence, triples[i].created_at))

    entity_pairs = graph.similar_entities(params.entity_threshold, params.neighbours, scope)
    nodes = graph.node_attributes({i for p in entity_pairs for i in (p.a, p.b)})
    # Canonical entity: the one most triples use, then the longest (most specific) name.
    node_merges = plan_merges(entity_pairs, lambda i: (-nodes[i].triples, -len(nodes[i].name)))

    summary = graph.apply_dedup(job_id, triple_merges, node_merges)
    if ledger and job_id:
        ledger.set_stage(job_id, Stage.DEDUP, {"dedup": summary.model_dump()})
    return summary
