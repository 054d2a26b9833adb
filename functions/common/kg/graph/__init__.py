"""The graph store port, and the rows it speaks."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

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


class DocumentSummary(BaseModel):
    """A stored document, as a list of documents shows it."""

    id: uuid.UUID
    source: str
    source_type: str
    source_date: datetime | None
    chars: int
    tokens: int
    chunks: int
    triples: int  # the triples it supports (other documents may support them too)
    job_id: uuid.UUID  # the job that wrote its current version
    created_at: datetime
    updated_at: datetime


class ConceptCount(BaseModel):
    """A concept and how many elements (nodes and relations) it covers."""

    id: uuid.UUID
    name: str
    level: str
    elements: int


class SimilarPair(BaseModel):
    a: uuid.UUID
    b: uuid.UUID
    similarity: float


class TripleAttributes(BaseModel):
    confidence: float
    created_at: datetime
    subject: str
    predicate: str
    object: str


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


# -- search (kg.search ranks and fuses; the store finds candidates) ---------------------------------

MatchKind = Literal["node", "relation", "concept", "triple"]


@dataclass(frozen=True)
class TripleFilter:
    """Which triples a search may return; None means no condition. A triple passes the document
    conditions when one document that supports it meets all of them (dates inclusive, compared
    with the document's source date: an undated document never passes a date condition)."""

    types: tuple[str, ...] | None = None
    sources: tuple[str, ...] | None = None
    source_types: tuple[str, ...] | None = None
    date_from: datetime | None = None
    date_to: datetime | None = None


@dataclass(frozen=True)
class MatchQuery:
    """What `match` looks for: the query's vector (the store's embedding space), its normalised
    text and lexical terms, how many candidates each half (vector, lexical) may bring, the least
    cosine similarity a candidate needs (0: none), and, by kind, the triple filter or the concept
    level."""

    vector: np.ndarray
    text: str
    terms: tuple[str, ...]
    limit: int
    threshold: float = 0.0
    filters: TripleFilter = field(default_factory=TripleFilter)
    level: str | None = None


class Match(BaseModel):
    """A candidate of one kind: its rank in the vector half and in the lexical half (None when that
    half did not find it; never both None), and its cosine similarity to the query."""

    id: uuid.UUID
    name: str
    vector_rank: int | None
    lexical_rank: int | None
    similarity: float
    level: str | None = None  # a concept's abstraction level


class TripleMatch(BaseModel):
    """A triple reached from matched elements, with its cosine similarity to the query."""

    id: uuid.UUID
    subject_id: uuid.UUID
    relation_id: uuid.UUID
    object_id: uuid.UUID
    similarity: float


class ConceptMember(BaseModel):
    id: uuid.UUID
    kind: str  # entity, event, emotion or relation
    name: str
    confidence: float
    similarity: float | None = None  # to the query, when members were asked for nearest first


class ConceptMembers(BaseModel):
    count: int  # every element under the concept
    members: list[ConceptMember]


class Provenance(BaseModel):
    """One chunk that supports a triple, with the chunk's text (for the supporting span)."""

    document_id: uuid.UUID
    source: str
    source_type: str
    source_date: datetime | None
    chunk_index: int
    chunk_start: int  # the chunk's offset in the document
    chunk_text: str


class FoundTriple(BaseModel):
    id: uuid.UUID
    type: str
    subject: str
    predicate: str
    object: str
    confidence: float
    provenance: list[Provenance]  # at most the number asked for, most recent documents first
    provenance_count: int


class GraphNode(BaseModel):
    id: uuid.UUID
    kind: str
    name: str
    hops: int  # from the nearest centre


class GraphEdge(BaseModel):
    id: uuid.UUID
    type: str
    subject_id: uuid.UUID
    subject: str
    predicate: str
    object_id: uuid.UUID
    object: str
    confidence: float
    hop: int  # 1: touches a centre; k: touches a node k - 1 hops away


class Neighbourhood(BaseModel):
    centres: list[GraphNode]
    nodes: list[GraphNode]  # every node of `triples`, and the centres
    triples: list[GraphEdge]  # by hop, then most confident first
    truncated: bool  # the limit cut the last hop short


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
        """Remove a document's provenance and all it alone supported (with the concept links and the
        concepts left without one), after any writer of that document commits; NotFound for an
        unknown source."""
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
        document_id: uuid.UUID | None = None,
    ) -> tuple[int, int]:
        """Concepts and element -> concept edges, and the elements marked done; returns (concepts,
        edges) new. With `document_id`: under that document's lock, NotFound when it was deleted."""
        ...

    def document_exists(self, document_id: uuid.UUID) -> bool: ...

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
        document_id: uuid.UUID | None = None,
    ) -> DedupSummary:
        """Apply the merges in one transaction; the triples that named a merged entity are rewritten
        and marked for a new vector (`stale_triples`). NotFound when `document_id` was deleted."""
        ...

    def stale_triples(self, limit: int, document_id: uuid.UUID | None = None) -> dict[uuid.UUID, str]:
        """Triples whose statement changed after their vector was made, with that statement."""
        ...

    def write_triple_vectors(self, vectors: Mapping[uuid.UUID, tuple[str, np.ndarray]]) -> int:
        """New vectors for stale triples, each with the statement it was made from (a triple whose
        statement changed again since keeps its mark); returns the triples updated."""
        ...

    def dedup_counts(self, job_id: str) -> DedupSummary:
        """The merges job `job_id` made (candidate_pairs is not known here: zero)."""
        ...

    def stats(self) -> GraphStats: ...

    # -- search --------------------------------------------------------------------------------

    def embedding_space(self) -> tuple[str, int]:
        """The embedding model and dimension the store was created for (kg_meta)."""
        ...

    def search_session(self) -> AbstractContextManager[None]:
        """A block in which this thread's searches (match, triples_of, members_near) may share one
        connection and one read transaction (fewer round trips); a no-op is a valid one."""
        ...

    def match(self, kind: MatchKind, query: MatchQuery, lexical: bool = True) -> list[Match]:
        """Candidates of one kind for a query: the `limit` nearest by cosine (HNSW) and the `limit`
        best lexical matches (trigrams), those under `threshold` dropped. Triples obey
        `query.filters`, concepts `query.level`. Without `lexical`, the nearest only."""
        ...

    def lexical_matches(self, query: MatchQuery, statements: int) -> tuple[list[Match], list[Match]]:
        """The lexical halves of match("node", query) and of match("triple", query with limit
        `statements`), at once: (nodes, triples)."""
        ...

    def triples_of(
        self, node_ids: Collection[uuid.UUID], relation_ids: Collection[uuid.UUID], vector: np.ndarray,
        filters: TripleFilter, limit: int,
    ) -> list[TripleMatch]:
        """The `limit` triples nearest to `vector` among those with one of these nodes as subject or
        object or one of these relations as predicate, that pass `filters`."""
        ...

    def concept_members(
        self, concept_ids: Collection[uuid.UUID], limit: int, vector: np.ndarray | None = None
    ) -> dict[uuid.UUID, ConceptMembers]:
        """Up to `limit` elements under each concept: nearest to `vector` first when given, else most
        confident first; with the count of all of them."""
        ...

    def members_near(
        self, concept_ids: Collection[uuid.UUID], vector: np.ndarray, limit: int
    ) -> list[tuple[uuid.UUID, ConceptMember]]:
        """The `limit` elements under any of these concepts nearest to `vector`, nearest first, as
        (concept, member) for each concept of theirs among these."""
        ...

    def found_triples(self, ids: Collection[uuid.UUID], max_provenance: int) -> dict[uuid.UUID, FoundTriple]:
        """The triples with these ids, each with up to `max_provenance` supporting chunks."""
        ...

    def neighbourhood(
        self, node: str, hops: int, limit: int, types: Collection[str] | None = None, kind: str | None = None
    ) -> Neighbourhood:
        """The triples within `hops` of the node named `node` (or with that id), at most `limit`, of
        `types` only when given; every node of that name is a centre unless `kind` picks one.
        NotFound when no node has that name."""
        ...

    # -- browsing (the web view) ---------------------------------------------------------------

    def documents(self, limit: int) -> list[DocumentSummary]:
        """The stored documents, the most recently written first."""
        ...

    def node(self, node_id: uuid.UUID) -> ExportNode:
        """One node with its aliases and concepts; NotFound when there is none."""
        ...

    def top_concepts(self, per_level: int) -> list[ConceptCount]:
        """Up to `per_level` concepts of each level, those covering the most elements first."""
        ...

    def iter_nodes(self) -> Iterator[ExportNode]: ...

    def iter_triples(self) -> Iterator[ExportTriple]: ...
