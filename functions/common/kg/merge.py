"""Merging the chunk results of one document into graph rows (pure: no I/O).

Chunks overlap, so the same fact is often found twice: triples with the same deterministic id
collapse into one row with the highest confidence, and each chunk that found it stays as
provenance. A node or relation takes the surface form seen most often (first seen on a tie).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from kg.models import ChunkResult, TripleCounts
from kg.normalize import clean_surface, node_id, normalise, relation_id, triple_id


@dataclass(frozen=True, slots=True)
class NodeRow:
    id: uuid.UUID
    kind: str
    name: str
    normalised: str


@dataclass(frozen=True, slots=True)
class RelationRow:
    id: uuid.UUID
    name: str
    normalised: str


@dataclass(frozen=True, slots=True)
class TripleRow:
    id: uuid.UUID
    type: str
    subject_id: uuid.UUID
    relation_id: uuid.UUID
    object_id: uuid.UUID
    subject: str
    predicate: str
    object: str
    confidence: float

    @property
    def statement(self) -> str:
        return f"{self.subject} {self.predicate} {self.object}"


@dataclass(frozen=True, slots=True)
class ProvenanceRow:
    triple_id: uuid.UUID
    chunk_index: int
    confidence: float
    grounded: bool = True


@dataclass
class MergedGraph:
    nodes: dict[uuid.UUID, NodeRow] = field(default_factory=dict)
    relations: dict[uuid.UUID, RelationRow] = field(default_factory=dict)
    triples: dict[uuid.UUID, TripleRow] = field(default_factory=dict)
    provenance: list[ProvenanceRow] = field(default_factory=list)

    def counts(self) -> TripleCounts:
        by_type = Counter(t.type for t in self.triples.values())
        return TripleCounts(**by_type)

    def embedding_texts(self) -> dict[uuid.UUID, str]:
        """The text each row's vector is made from, by row id."""
        texts: dict[uuid.UUID, str] = {n.id: n.name for n in self.nodes.values()}
        texts.update({r.id: r.name for r in self.relations.values()})
        texts.update({t.id: t.statement for t in self.triples.values()})
        return texts


def _most_common(surfaces: Counter[str]) -> str:
    # Counter keeps insertion order, and max() returns the first maximum: first seen wins a tie.
    return max(surfaces, key=surfaces.__getitem__)


def merge_chunk_results(results: Iterable[ChunkResult]) -> MergedGraph:
    node_kinds: dict[uuid.UUID, str] = {}
    node_surfaces: dict[uuid.UUID, Counter[str]] = {}
    relation_surfaces: dict[uuid.UUID, Counter[str]] = {}
    best: dict[uuid.UUID, tuple[float, object]] = {}
    provenance: dict[tuple[uuid.UUID, int], tuple[float, bool]] = {}

    for result in sorted(results, key=lambda r: r.chunk_index):
        for t in result.triples:
            subject, predicate, obj = clean_surface(t.subject), clean_surface(t.predicate), clean_surface(t.object)
            if not (normalise(subject) and normalise(predicate) and normalise(obj)):
                continue
            s_id, o_id, r_id = node_id(t.subject_kind, subject), node_id(t.object_kind, obj), relation_id(predicate)
            if s_id == o_id:
                continue
            node_kinds.setdefault(s_id, t.subject_kind)
            node_kinds.setdefault(o_id, t.object_kind)
            node_surfaces.setdefault(s_id, Counter())[subject] += 1
            node_surfaces.setdefault(o_id, Counter())[obj] += 1
            relation_surfaces.setdefault(r_id, Counter())[predicate] += 1
            t_id = triple_id(t.type, subject, predicate, obj)
            if t_id not in best or t.confidence > best[t_id][0]:
                best[t_id] = (t.confidence, (t.type, s_id, r_id, o_id))
            key = (t_id, result.chunk_index)
            confidence, grounded = provenance.get(key, (0.0, False))
            provenance[key] = (max(confidence, t.confidence), grounded or t.grounded)

    merged = MergedGraph()
    for n_id, surfaces in node_surfaces.items():
        name = _most_common(surfaces)
        merged.nodes[n_id] = NodeRow(n_id, node_kinds[n_id], name, normalise(name))
    for r_id, surfaces in relation_surfaces.items():
        name = _most_common(surfaces)
        merged.relations[r_id] = RelationRow(r_id, name, normalise(name))
    for t_id, (confidence, (ttype, s_id, r_id, o_id)) in best.items():
        merged.triples[t_id] = TripleRow(
            t_id, ttype, s_id, r_id, o_id,
            merged.nodes[s_id].name, merged.relations[r_id].name, merged.nodes[o_id].name,
            round(float(confidence), 4),
        )
    merged.provenance = [ProvenanceRow(t_id, idx, c, g) for (t_id, idx), (c, g) in provenance.items()]
    return merged
