"""The whole-graph dedup pass's in-memory candidate search (kg.graph.knn) against the per-row HNSW
probe, on a planted graph of a few thousand triples in a real PostgreSQL: same pairs, same merges."""

from __future__ import annotations

import contextlib
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("faiss")

from kg.db import Database  # noqa: E402
from kg.embeddings import Embedded  # noqa: E402
from kg.graph import knn  # noqa: E402
from kg.graph.postgres import PostgresGraphStore  # noqa: E402
from kg.stages.deduplicate import DedupParams, deduplicate_graph  # noqa: E402
from tests.support.embedded import fresh_database  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from dedup_synthetic import DIMS, MODEL, Synthetic, build, write  # noqa: E402

TRIPLES = 3_000


class TextSeededEmbedder:
    """A unit vector seeded by each text: re-embeds the triples an entity merge rewrote."""

    model, dimensions = MODEL, DIMS

    def embed(self, texts):
        rows = [np.random.default_rng(list(t.encode())).standard_normal(DIMS) for t in texts]
        m = np.asarray(rows, dtype=np.float32).reshape(len(texts), DIMS)
        return Embedded(m / np.linalg.norm(m, axis=1, keepdims=True))


class ProbingStore(PostgresGraphStore):
    """The store as it searched before the in-memory path: one HNSW probe per row."""

    def similar_triples(self, threshold, neighbours, document_id=None, part_threshold=0.92, search="auto"):
        return super().similar_triples(threshold, neighbours, document_id, part_threshold, search="probe")

    def similar_entities(self, threshold, neighbours, document_id=None, search="auto"):
        return super().similar_entities(threshold, neighbours, document_id, search="probe")


class InMemoryStore(PostgresGraphStore):
    def similar_triples(self, threshold, neighbours, document_id=None, part_threshold=0.92, search="auto"):
        return super().similar_triples(threshold, neighbours, document_id, part_threshold, search="memory")

    def similar_entities(self, threshold, neighbours, document_id=None, search="auto"):
        return super().similar_entities(threshold, neighbours, document_id, search="memory")


@pytest.fixture(scope="module")
def planted(pg_server) -> Iterator[tuple[str, Synthetic]]:
    """A template database (its URL) holding the planted graph, written once (HNSW maintained by the writes)."""
    with fresh_database(pg_server) as url:
        g = build(TRIPLES, seed=5, n_docs=3)
        db = Database(url, MODEL, DIMS, migrate=True)
        try:
            write(db, g, index_build="insert")
        finally:
            db.close()
        yield url, g


@pytest.fixture
def copy_of(pg_server, planted) -> Iterator[Callable[[], Database]]:
    """Fresh copies of the planted graph (the same rows, byte for byte)."""
    template, _ = planted
    with contextlib.ExitStack() as made:

        def make() -> Database:
            url = made.enter_context(fresh_database(pg_server, copy_of=template))
            db = Database(url, MODEL, DIMS, migrate=True)
            made.callback(db.close)  # closed before its database is dropped
            return db

        yield make


def as_dict(pairs) -> dict[tuple[uuid.UUID, uuid.UUID], float]:
    return {(p.a, p.b): round(p.similarity, 6) for p in pairs}


@pytest.mark.parametrize("index", ["exact", "ivf"])
def test_the_in_memory_search_finds_the_same_pairs_as_the_per_row_probe(copy_of, planted, monkeypatch, index):
    _, g = planted
    if index == "ivf":  # the inverted-file index the large graphs use, on this small one
        monkeypatch.setattr(knn, "EXACT_MAX_ROWS", 0)
    graph = PostgresGraphStore(copy_of())
    probed = as_dict(graph.similar_triples(0.85, 8, search="probe"))
    in_memory = as_dict(graph.similar_triples(0.85, 8, search="memory"))
    assert in_memory == probed
    # Not trivially equal: the planted duplicates are there, the hard negatives are not.
    found = {frozenset(k) for k in in_memory}
    assert sum(frozenset((a, b)) in found for a, b, _ in g.planted) >= 0.95 * len(g.planted)
    assert not any(frozenset(p) in found for p in g.hard_negatives)

    entities_probed = as_dict(graph.similar_entities(0.92, 8, search="probe"))
    entities_in_memory = as_dict(graph.similar_entities(0.92, 8, search="memory"))
    assert entities_in_memory == entities_probed
    assert len(entities_in_memory) >= len(g.planted_nodes) * 0.95


def merge_log(db: Database) -> list[tuple]:
    with db.connection() as conn:
        return conn.execute(
            "SELECT kind, kept_id, merged_id, redirect_to, similarity, method FROM dedup_merges"
            " ORDER BY kind, merged_id").fetchall()


def test_a_whole_graph_pass_makes_the_same_merges_with_either_search(copy_of):
    params = DedupParams()
    probed_db, in_memory_db = copy_of(), copy_of()
    probed = deduplicate_graph(ProbingStore(probed_db), TextSeededEmbedder(), params)
    in_memory = deduplicate_graph(InMemoryStore(in_memory_db), TextSeededEmbedder(), params)
    assert in_memory == probed
    assert in_memory.semantic > 100 and in_memory.entities_merged > 0
    assert merge_log(in_memory_db) == merge_log(probed_db)


def test_a_whole_graph_pass_searches_in_memory_and_a_document_pass_probes(copy_of, monkeypatch):
    graph = PostgresGraphStore(copy_of())
    searched: list[int] = []
    real = knn.neighbour_rows

    def counting(vectors, neighbours, threshold):
        searched.append(len(vectors))
        return real(vectors, neighbours, threshold)

    monkeypatch.setattr(knn, "neighbour_rows", counting)
    with graph.db.connection() as conn:
        (doc,) = conn.execute("SELECT id FROM documents ORDER BY id LIMIT 1").fetchone()
    assert graph.similar_triples(0.85, 8, doc)
    assert searched == []
    graph.similar_triples(0.85, 8)
    assert searched == [TRIPLES]
