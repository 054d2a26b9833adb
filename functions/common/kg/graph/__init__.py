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
    documents: int
    chunks: int
    vectors: int
    last_updated: datetime | None


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
