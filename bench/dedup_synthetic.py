"""Shared by bench/dedup_scale.py and bench/delete_document.py: a seeded synthetic graph with
planted near-duplicate triples and hard negatives, split over documents, written with
PostgresGraphStore.write_document.

Vectors are 384-dim float32 unit vectors (numpy, seeded). Unrelated rows get independent random
vectors (cosine about 0). A planted near-duplicate of triple t says the same thing with at least
one end or the predicate worded differently, the way paraphrases come out of an extractor, and
meets the store's candidate rule on purpose:

- same type; statement vector normalise(c*v + sqrt(1-c^2)*u), u a random unit vector orthogonal
  to v, so the cosine with t is exactly c, drawn from U(0.90, 0.97);
- each of subject / relation / object is either the same row, or a new row whose name contains
  the other's name ("element radium" / "radium"; its vector at cosine U(0.70, 0.85), below the
  0.92 part threshold, so containment is what admits it), or a new row with an unrelated name
  whose vector has cosine U(0.93, 0.98) with the original.

A hard negative of triple t has the same subject and relation, statement cosine U(0.86, 0.95) with
t, and a different object: either an existing unrelated node (cosine about 0) or a new node at
cosine U(0.50, 0.78), with no name containment. It must not merge.
"""

from __future__ import annotations

import time
import uuid
from contextlib import nullcontext
from dataclasses import dataclass, field

import numpy as np

from kg.db import Database
from _synthetic_docs import ChunkText, indexes_built_after, schema_indexes, synthetic_document

from kg.graph import DocumentRow
from kg.graph.postgres import PostgresGraphStore
from kg.merge import MergedGraph, NodeRow, RelationRow, TripleRow
from kg.models import Chunk
from kg.normalize import node_id, normalise, relation_id, triple_id

DIMS = 384
MODEL = "bench-random-384"
WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa "
         "quebec romeo sierra tango uniform victor whiskey xray yankee zulu marie pierre paris warsaw radium "
         "polonium nobel prize sorbonne physics chemistry laboratory discovery research").split()
PREFIXES = ("element", "famous", "young", "old", "great", "city of", "first", "new")
KINDS_BY_TYPE = {
    "ENTITY_ENTITY": ("entity", "entity"),
    "ENTITY_EVENT": ("entity", "event"),
    "EVENT_EVENT": ("event", "event"),
    "EMOTIONAL_CONTEXT": ("entity", "emotion"),
}
TYPE_WEIGHTS = (0.40, 0.43, 0.07, 0.10)
# Which parts of a planted duplicate differ from the original, and how ("contains" or "near").
VARIANTS = (
    {"object": "contains"},
    {"subject": "contains"},
    {"object": "near"},
    {"subject": "near"},
    {"relation": "near"},
    {"relation": "contains"},
    {"subject": "near", "object": "contains"},
    {"subject": "contains", "relation": "near"},
)


@dataclass
class Synthetic:
    nodes: dict[uuid.UUID, NodeRow] = field(default_factory=dict)
    relations: dict[uuid.UUID, RelationRow] = field(default_factory=dict)
    triples: dict[uuid.UUID, TripleRow] = field(default_factory=dict)
    vectors: dict[uuid.UUID, np.ndarray] = field(default_factory=dict)
    order: list[uuid.UUID] = field(default_factory=list)  # triples in generation (ingest) order
    planted: list[tuple[uuid.UUID, uuid.UUID, str]] = field(default_factory=list)  # (original, duplicate, variant)
    hard_negatives: list[tuple[uuid.UUID, uuid.UUID]] = field(default_factory=list)
    # Entity nodes planted at cosine >= 0.93 ("near" variants): the entity pass should merge these.
    planted_nodes: list[tuple[uuid.UUID, uuid.UUID]] = field(default_factory=list)
    # Which documents state each triple (the first is its home document).
    docs_of: dict[uuid.UUID, list[int]] = field(default_factory=dict)
    n_docs: int = 1


def _unit(m: np.ndarray) -> np.ndarray:
    return (m / np.linalg.norm(m, axis=-1, keepdims=True)).astype(np.float32)


def _at_cosine(rng: np.random.Generator, v: np.ndarray, c: float) -> np.ndarray:
    """A unit vector whose cosine with unit vector v is exactly c."""
    u = rng.standard_normal(DIMS).astype(np.float64)
    u -= u.dot(v) * v
    u /= np.linalg.norm(u)
    return _unit(c * v.astype(np.float64) + np.sqrt(1 - c * c) * u)


def build(n_triples: int, seed: int, dup_fraction: float = 0.05, hard_fraction: float = 0.01,
          n_docs: int = 1, share_fraction: float = 0.0, heavy_share_docs: int = 0,
          heavy_share_fraction: float = 0.9) -> Synthetic:
    """n_triples distinct triple rows in all: base triples, then planted duplicates and hard negatives
    (each of those in another document than its original, when there are several)."""
    rng = np.random.default_rng(seed)
    g = Synthetic(n_docs=n_docs)
    n_dup = int(round(n_triples * dup_fraction))
    n_hard = int(round(n_triples * hard_fraction))
    n_base = n_triples - n_dup - n_hard
    counter = [0]

    def fresh_token(prefix: str) -> str:
        counter[0] += 1
        return f"{prefix}{counter[0]}"

    def add_node(kind: str, name: str, vector: np.ndarray) -> uuid.UUID:
        i = node_id(kind, name)
        assert i not in g.nodes, name
        g.nodes[i] = NodeRow(i, kind, name, normalise(name))
        g.vectors[i] = vector
        return i

    def add_relation(name: str, vector: np.ndarray) -> uuid.UUID:
        i = relation_id(name)
        assert i not in g.relations, name
        g.relations[i] = RelationRow(i, name, normalise(name))
        g.vectors[i] = vector
        return i

    def random_name(prefix: str) -> str:
        a, b = rng.choice(len(WORDS), 2)
        return f"{WORDS[a].title()} {WORDS[b]} {fresh_token(prefix)}"

    sizes = {"entity": max(4, n_base // 3), "event": max(4, n_base // 6), "emotion": max(4, n_base // 200)}
    pools: dict[str, list[uuid.UUID]] = {}
    for kind, size in sizes.items():
        vecs = _unit(rng.standard_normal((size, DIMS), dtype=np.float32))
        pools[kind] = [add_node(kind, random_name(kind[:2]), vecs[i]) for i in range(size)]
    n_rel = max(4, n_base // 20)
    rvecs = _unit(rng.standard_normal((n_rel, DIMS), dtype=np.float32))
    rel_pool = [add_relation(f"{WORDS[i % len(WORDS)]} {fresh_token('r')}", rvecs[i]) for i in range(n_rel)]

    def add_triple(ttype: str, s: uuid.UUID, r: uuid.UUID, o: uuid.UUID, vector: np.ndarray,
                   docs: list[int]) -> uuid.UUID:
        sn, rn, on = g.nodes[s].name, g.relations[r].name, g.nodes[o].name
        i = triple_id(ttype, sn, rn, on)
        assert i not in g.triples
        g.triples[i] = TripleRow(i, ttype, s, r, o, sn, rn, on, round(float(rng.uniform(0.4, 1.0)), 4))
        g.vectors[i] = vector
        g.order.append(i)
        g.docs_of[i] = docs
        return i

    types = list(KINDS_BY_TYPE)
    seen: set[tuple[str, uuid.UUID, uuid.UUID, uuid.UUID]] = set()
    base_vecs = _unit(rng.standard_normal((n_base, DIMS), dtype=np.float32))
    while len(seen) < n_base:
        ttype = types[rng.choice(4, p=TYPE_WEIGHTS)]
        sk, ok = KINDS_BY_TYPE[ttype]
        s = pools[sk][rng.integers(len(pools[sk]))]
        o = pools[ok][rng.integers(len(pools[ok]))]
        r = rel_pool[rng.integers(len(rel_pool))]
        if s == o or (ttype, s, r, o) in seen:
            continue
        k = len(seen)
        seen.add((ttype, s, r, o))
        home = k * n_docs // n_base
        add_triple(ttype, s, r, o, base_vecs[k], [home])
    base = list(g.order)

    # Originals for duplicates and hard negatives: distinct base triples.
    picks = rng.choice(len(base), n_dup + n_hard, replace=False)

    def other_doc(t: uuid.UUID) -> list[int]:
        home = g.docs_of[t][0]
        return [(home + 1 + int(rng.integers(max(1, n_docs - 1)))) % n_docs] if n_docs > 1 else [0]

    def variant_node(original: uuid.UUID, how: str) -> uuid.UUID:
        row = g.nodes[original]
        v = g.vectors[original]
        if how == "contains":
            prefix = PREFIXES[rng.integers(len(PREFIXES))]
            name = f"{prefix} {row.name}"
            while node_id(row.kind, name) in g.nodes:
                name = f"{PREFIXES[rng.integers(len(PREFIXES))]} {name}"
            return add_node(row.kind, name, _at_cosine(rng, v, rng.uniform(0.70, 0.85)))
        new = add_node(row.kind, random_name(row.kind[:2]), _at_cosine(rng, v, rng.uniform(0.93, 0.98)))
        if row.kind == "entity":
            g.planted_nodes.append((original, new))
        return new

    def variant_relation(original: uuid.UUID, how: str) -> uuid.UUID:
        row = g.relations[original]
        v = g.vectors[original]
        if how == "contains":
            name = f"first {row.name}"
            while relation_id(name) in g.relations:
                name = f"also {name}"
            return add_relation(name, _at_cosine(rng, v, rng.uniform(0.70, 0.85)))
        return add_relation(f"{WORDS[rng.integers(len(WORDS))]} {fresh_token('r')}",
                            _at_cosine(rng, v, rng.uniform(0.93, 0.98)))

    for n, pick in enumerate(picks[:n_dup]):
        t = g.triples[base[pick]]
        variant = VARIANTS[n % len(VARIANTS)]
        s = variant_node(t.subject_id, variant["subject"]) if "subject" in variant else t.subject_id
        r = variant_relation(t.relation_id, variant["relation"]) if "relation" in variant else t.relation_id
        o = variant_node(t.object_id, variant["object"]) if "object" in variant else t.object_id
        dup = add_triple(t.type, s, r, o, _at_cosine(rng, g.vectors[t.id], rng.uniform(0.90, 0.97)), other_doc(t.id))
        g.planted.append((t.id, dup, "+".join(f"{k}-{v}" for k, v in variant.items())))

    for n, pick in enumerate(picks[n_dup:]):
        t = g.triples[base[pick]]
        kind = g.nodes[t.object_id].kind
        if n % 2 == 0:  # an existing, unrelated node
            while True:
                o = pools[kind][rng.integers(len(pools[kind]))]
                if o not in (t.subject_id, t.object_id) and (t.type, t.subject_id, t.relation_id, o) not in seen:
                    break
        else:  # a new node, related but below the part threshold
            o = add_node(kind, random_name(kind[:2]), _at_cosine(rng, g.vectors[t.object_id], rng.uniform(0.50, 0.78)))
        seen.add((t.type, t.subject_id, t.relation_id, o))
        neg = add_triple(t.type, t.subject_id, t.relation_id, o,
                         _at_cosine(rng, g.vectors[t.id], rng.uniform(0.86, 0.95)), other_doc(t.id))
        g.hard_negatives.append((t.id, neg))

    # Facts stated by more than one document (delete benchmark): each document shares
    # share_fraction of its triples with the next document; the first heavy_share_docs documents
    # share heavy_share_fraction of theirs with random other documents.
    if n_docs > 1 and (share_fraction or heavy_share_docs):
        by_doc: dict[int, list[uuid.UUID]] = {}
        for t in base:
            by_doc.setdefault(g.docs_of[t][0], []).append(t)
        for d, ts in by_doc.items():
            fraction = heavy_share_fraction if d < heavy_share_docs else share_fraction
            for i in rng.choice(len(ts), int(len(ts) * fraction), replace=False):
                other = (d + 1) % n_docs if d >= heavy_share_docs else int(rng.integers(heavy_share_docs, n_docs))
                g.docs_of[ts[i]].append(other)
    return g


def source_of(d: int) -> str:
    return f"bench://dedup-synthetic/doc{d:04d}"


def documents(g: Synthetic) -> list[tuple[DocumentRow, list[Chunk], MergedGraph]]:
    """One (document row, chunks, merged graph) per document, as merge_and_store would write them."""
    per_doc: list[list[uuid.UUID]] = [[] for _ in range(g.n_docs)]
    for t in g.order:
        for d in g.docs_of[t]:
            per_doc[d].append(t)

    def filler(d: int) -> ChunkText:
        return lambda i, _: f"synthetic chunk {i} of document {d}: " + " ".join(
            WORDS[(i + j) % len(WORDS)] for j in range(200))

    return [synthetic_document(source_of(d), "text", None, ts, g.triples, g.nodes, g.relations, filler(d))
            for d, ts in enumerate(per_doc)]


def write(db: Database, g: Synthetic, index_build: str = "bulk") -> dict[str, float]:
    """Write every document with write_document; returns seconds.

    index_build "insert": the schema as migrated, HNSW maintained row by row during the writes.
    index_build "bulk": the HNSW indexes are dropped first and re-created with the same
    definitions (read from pg_indexes) after the last write, which is much faster to set up; the
    indexes the deduplication then searches are the ones the migrations define."""
    store = PostgresGraphStore(db)
    timings: dict[str, float] = {}
    bulk = indexes_built_after(db, schema_indexes(db, "USING hnsw")) if index_build == "bulk" else nullcontext()
    t0 = time.perf_counter()
    with bulk:
        for row, chunks, merged in documents(g):
            store.write_document(str(uuid.uuid4()), row, chunks, merged, g.vectors)
        timings["write_documents"] = time.perf_counter() - t0
        t0 = time.perf_counter()
    if index_build == "bulk":
        timings["hnsw_bulk_build"] = time.perf_counter() - t0
    else:
        with db.connection() as conn:
            conn.execute("ANALYZE")
    return timings


def table_counts(db: Database) -> dict[str, int]:
    with db.connection() as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("documents", "chunks", "nodes", "relations", "triples", "triple_provenance", "dedup_merges")}
