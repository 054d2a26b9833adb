"""What every GraphStore must do: the writes the stages rely on to be atomic and safe to repeat,
and the per-job counts they read back after a retry."""

from __future__ import annotations

import hashlib
import uuid

import numpy as np
import pytest

from kg.errors import NotFound
from kg.graph import DocumentRow, GraphStore
from kg.merge import MergedGraph, merge_chunk_results
from kg.models import Chunk, ChunkResult, ChunkStatus, ConceptPhrase
from kg.normalize import concept_id, document_id
from tests.support.extractors import fact

DIMENSIONS = 8  # the contract database's embedding space (tests/contract/conftest.py)


def vector(text: str) -> np.ndarray:
    v = np.random.default_rng(int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)).standard_normal(DIMENSIONS)
    return (v / np.linalg.norm(v)).astype(np.float32)


def document(source: str, text: str, facts) -> tuple[DocumentRow, list[Chunk], MergedGraph, dict]:
    doc_id = document_id(source)
    row = DocumentRow(id=doc_id, source=source, source_type="text", source_date=None,
                      content_hash=hashlib.sha256(text.encode()).hexdigest(), chars=len(text), tokens=10)
    chunks = [Chunk(document_id=str(doc_id), index=0, text=text, start_char=0,
                    end_char=len(text), tokens=10)]
    merged = merge_chunk_results([ChunkResult(job_id="j", chunk_index=0, status=ChunkStatus.SUCCEEDED,
                                              triples=list(facts))])
    vectors = {row_id: vector(t) for row_id, t in merged.embedding_texts().items()}
    return row, chunks, merged, vectors


FACTS = [fact("Marie Curie", "discovered", "radium"), fact("Pierre Curie", "worked with", "Marie Curie")]
TEXT = "Marie Curie discovered radium. Pierre Curie worked with Marie Curie."


def test_writing_a_document_twice_inserts_its_rows_once(graph_store: GraphStore):
    job = str(uuid.uuid4())
    first = graph_store.write_document(job, *document("a", TEXT, FACTS))
    stats = graph_store.stats()
    assert first > 0 and (stats.triples, stats.documents, stats.chunks) == (2, 1, 1)
    assert graph_store.write_document(job, *document("a", TEXT, FACTS)) == 0
    assert graph_store.stats().model_dump(exclude={"last_updated"}) == stats.model_dump(exclude={"last_updated"})


def test_stored_vectors_are_returned_for_known_ids_only(graph_store: GraphStore):
    row, chunks, merged, vectors = document("a", TEXT, FACTS)
    graph_store.write_document(str(uuid.uuid4()), row, chunks, merged, vectors)
    unknown = uuid.uuid4()
    stored = graph_store.stored_vectors([*vectors, unknown])
    assert set(stored) == set(vectors)
    assert all(np.allclose(stored[i], vectors[i], atol=1e-6) for i in vectors)


def test_a_failed_write_leaves_the_graph_as_it_was(graph_store: GraphStore):
    graph_store.write_document(str(uuid.uuid4()), *document("a", TEXT, FACTS))
    before = graph_store.stats().model_dump(exclude={"last_updated"})
    row, chunks, merged, vectors = document("b", TEXT + " Again.", [*FACTS, fact("Irene", "married", "Frederic")])
    missing_one = dict(list(vectors.items())[:-1])  # the write needs a vector it was not given
    with pytest.raises(KeyError):
        graph_store.write_document(str(uuid.uuid4()), row, chunks, merged, missing_one)
    assert graph_store.stats().model_dump(exclude={"last_updated"}) == before


def test_concepts_are_written_once_and_counted_for_their_job(graph_store: GraphStore):
    job = str(uuid.uuid4())
    row, chunks, merged, vectors = document("a", TEXT, FACTS)
    graph_store.write_document(job, row, chunks, merged, vectors)
    elements = graph_store.elements_to_conceptualize(row.id, limit=100)
    assert {e.name for e in elements} >= {"Marie Curie", "radium", "discovered"}
    phrases = [[ConceptPhrase(phrase="thing", level="high", confidence=0.9)] for _ in elements]
    concept_vectors = {concept_id("high", "thing"): vector("thing")}
    assert graph_store.write_concepts(job, elements, phrases, concept_vectors) == (1, len(elements))
    counts = graph_store.concept_counts(job)
    assert (counts.elements, counts.concepts_new, counts.edges_new) == (len(elements), 1, len(elements))
    # Written again (a retried batch): nothing new, and the job's counts stay what they were.
    assert graph_store.write_concepts(job, elements, phrases, concept_vectors) == (0, 0)
    assert graph_store.concept_counts(job) == counts
    assert graph_store.elements_to_conceptualize(row.id, limit=100) == []
    assert graph_store.concept_counts(str(uuid.uuid4())).elements == 0


def test_dedup_applied_twice_merges_once_and_is_counted_for_its_job(graph_store: GraphStore):
    short, long = fact("Marie Curie", "discovered", "radium", confidence=0.7), fact(
        "Marie Curie", "discovered", "the element radium", confidence=0.9)
    row, chunks, merged, vectors = document("a", TEXT, [short, long])
    graph_store.write_document(str(uuid.uuid4()), row, chunks, merged, vectors)
    by_statement = {t.statement: t.id for t in merged.triples.values()}
    kept, gone = by_statement["Marie Curie discovered the element radium"], by_statement["Marie Curie discovered radium"]
    job = str(uuid.uuid4())
    first = graph_store.apply_dedup(job, [(kept, gone, 0.9)], [])
    assert (first.triples_merged, first.semantic) == (1, 1)
    again = graph_store.apply_dedup(job, [(kept, gone, 0.9)], [])
    assert again.triples_merged == 0
    assert graph_store.stats().triples == 1
    counts = graph_store.dedup_counts(job)
    assert (counts.triples_merged, counts.semantic, counts.exact, counts.entities_merged) == (1, 1, 0, 0)


def test_deleting_an_unknown_document_is_not_found(graph_store: GraphStore):
    with pytest.raises(NotFound):
        graph_store.delete_document("never ingested")
