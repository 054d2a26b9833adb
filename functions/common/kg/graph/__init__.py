"""The graph store port, and the rows it speaks."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Protocol

import numpy as np
from pydantic import BaseModel

from kg.merge import MergedGraph
from kg.models import Chunk


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
    def stored_vectors(self, ids: Collection[uuid.UUID]) -> dict[uuid.UUID, np.ndarray]:
        """Vectors already stored for these node, relation or triple ids."""
        ...

    def write_document(
        self,
        job_id: str,
        document: DocumentRow,
        chunks: Sequence[Chunk],
        merged: MergedGraph,
        vectors: Mapping[uuid.UUID, np.ndarray],
    ) -> int:
        """Write a document's chunks and graph in one transaction; returns the rows inserted."""
        ...

    def stats(self) -> GraphStats: ...
