"""Merging chunk results: overlap duplicates collapse, provenance and the best confidence stay."""

from __future__ import annotations

from kg.merge import merge_chunk_results
from kg.models import ChunkResult, ChunkStatus, Triple, TripleType
from kg.normalize import node_id, normalise, triple_id


def triple(subject, predicate, obj, chunk, confidence=0.5, kind=TripleType.ENTITY_ENTITY):
    return Triple(type=kind, subject=subject, predicate=predicate, object=obj, subject_kind="entity",
                  object_kind="entity", confidence=confidence, chunk_index=chunk)


def result(chunk, *triples):
    return ChunkResult(job_id="j", chunk_index=chunk, status=ChunkStatus.SUCCEEDED, triples=list(triples))


def test_the_same_fact_in_overlapping_chunks_is_one_triple_with_provenance_from_each():
    merged = merge_chunk_results([
        result(0, triple("Marie Curie", "discovered", "radium", 0, 0.6)),
        result(1, triple("marie  curie", "Discovered", "Radium.", 1, 0.9)),
    ])
    assert len(merged.triples) == 1
    (row,) = merged.triples.values()
    assert row.confidence == 0.9
    assert row.id == triple_id("ENTITY_ENTITY", "Marie Curie", "discovered", "radium")
    assert sorted(p.chunk_index for p in merged.provenance) == [0, 1]
    assert len(merged.nodes) == 2 and len(merged.relations) == 1


def test_a_node_keeps_its_most_frequent_surface_form():
    merged = merge_chunk_results([
        result(0, triple("the Sorbonne", "hired", "Marie Curie", 0), triple("Marie Curie", "taught at", "Sorbonne", 0)),
        result(1, triple("Sorbonne", "honoured", "Marie Curie", 1)),
    ])
    assert merged.nodes[node_id("entity", "Sorbonne")].name == "Sorbonne"
    assert {n.normalised for n in merged.nodes.values()} == {"sorbonne", "marie curie"}


def test_types_stay_apart_and_self_loops_are_dropped():
    merged = merge_chunk_results([
        result(0, triple("A", "r", "B", 0), triple("A", "r", "B", 0, kind=TripleType.EMOTIONAL_CONTEXT),
               triple("The Curies", "met", "curies", 0)),
    ])
    assert sorted(t.type for t in merged.triples.values()) == ["EMOTIONAL_CONTEXT", "ENTITY_ENTITY"]
    assert merged.counts().total == 2


def test_embedding_texts_cover_every_row_once():
    merged = merge_chunk_results([result(0, triple("Pierre", "married", "Marie", 0))])
    texts = merged.embedding_texts()
    assert sorted(texts.values()) == ["Marie", "Pierre", "Pierre married Marie", "married"]


def test_normalise_folds_case_space_punctuation_and_leading_articles():
    assert normalise("  The   Nobel Prize. ") == "nobel prize"
    assert normalise("An “Element”") == "element"
    assert normalise("The") == "the"
