"""The graph store port, and the rows it speaks."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Protocol

import numpy as np
from pydantic import BaseModel

from kg.merge import MergedGraph
from kg.models import Chunk, ConceptElement, ConceptPhrase, ConceptSummary, DedupSummary, DeleteSummary


class DocumentRow(BaseModel):
    id: uuid.UUID
    source: str
    source_type: str
    source_date: datetime | None
    content_hash: str
    chars: int
    tokens: int


class GraphStats(BaseModel):
    triples: int
    triples_by_type: dict[str, int]
    entities: int
    events: int
    emotions: int
    relations: int
    concepts: int
    concepts_by_level: dict[str, int]
    documents: int
    chunks: int
    merges: int
    vectors: int
    last_updated: datetime | None


class SimilarPair(BaseModel):
    a: uuid.UUID
    b: uuid.UUID
    similarity: float


class TripleAttributes(BaseModel):
    confidence: float
    created_at: datetime


class NodeAttributes(BaseModel):
    name: str
    triples: int


class ExportNode(BaseModel):
    id: uuid.UUID
    kind: str
    name: str
    aliases: list[str]
    concepts: list[str]  # "level:name"


class ExportTriple(BaseModel):
    id: uuid.UUID
    type: str
    subject_id: uuid.UUID
    subject: str
    predicate: str
    object_id: uuid.UUID
    object: str
    confidence: float
    sources: list[str]
    chunks: list[str]
    grounded: bool  # some supporting chunk contains both its subject and its object


class GraphStore(Protocol):
    """Where the graph lives. Every method that changes it is one transaction."""

    def stored_vectors(self, ids: Collection[uuid.UUID]) -> dict[uuid.UUID, np.ndarray]:
        """Vectors already stored for these node, relation, triple or concept ids."""
        ...

    def write_document(
        self,
        job_id: str,
        document: DocumentRow,
        chunks: Sequence[Chunk],
        merged: MergedGraph,
        vectors: Mapping[uuid.UUID, np.ndarray],
    ) -> int:
        """Write a document's chunks and graph (replacing an earlier version's contribution);
        returns the rows inserted."""
        ...

    def delete_document(self, source: str) -> DeleteSummary:
        """Remove a document's provenance and all it alone supported; NotFound for an unknown source."""
        ...

    def elements_to_conceptualize(
        self, document_id: uuid.UUID | None, limit: int, context_size: int = 3
    ) -> list[ConceptElement]: ...

    def write_concepts(
        self,
        job_id: str | None,
        elements: Sequence[ConceptElement],
        concepts: Sequence[Sequence[ConceptPhrase]],
        vectors: Mapping[uuid.UUID, np.ndarray],
    ) -> tuple[int, int]: ...

    def concept_counts(self, job_id: str) -> ConceptSummary:
        """What job `job_id` conceptualized: elements, concepts it created, edges it drew."""
        ...

    def similar_triples(
        self, threshold: float, neighbours: int, document_id: uuid.UUID | None = None, part_threshold: float = 0.92
    ) -> list[SimilarPair]: ...

    def similar_entities(
        self, threshold: float, neighbours: int, document_id: uuid.UUID | None = None
    ) -> list[SimilarPair]: ...

    def triple_attributes(self, ids: Collection[uuid.UUID]) -> dict[uuid.UUID, TripleAttributes]: ...

    def node_attributes(self, ids: Collection[uuid.UUID]) -> dict[uuid.UUID, NodeAttributes]: ...

    def apply_dedup(
        self,
        job_id: str | None,
        triple_merges: Sequence[tuple[uuid.UUID, uuid.UUID, float]],
        node_merges: Sequence[tuple[uuid.UUID, uuid.UUID, float]],
    ) -> DedupSummary: ...

    def dedup_counts(self, job_id: str) -> DedupSummary:
        """The merges job `job_id` made (candidate_pairs is not known here: zero)."""
        ...

    def stats(self) -> GraphStats: ...

    def iter_nodes(self) -> Iterator[ExportNode]: ...

    def iter_triples(self) -> Iterator[ExportTriple]: ...
