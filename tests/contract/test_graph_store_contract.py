"""What every GraphStore must do: the writes the stages rely on to be atomic and safe to repeat,
and the per-job counts they read back after a retry."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pytest

from kg.errors import NotFound
from kg.graph import DocumentRow, GraphStore, MatchQuery, TripleFilter
from kg.merge import MergedGraph, merge_chunk_results
from kg.models import Chunk, ChunkResult, ChunkStatus, ConceptPhrase, TripleType
from kg.normalize import concept_id, document_id, triple_id
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


def test_concepts_of_a_deleted_document_are_refused_and_nothing_is_written(graph_store: GraphStore):
    job = str(uuid.uuid4())
    row, chunks, merged, vectors = document("a", TEXT, FACTS)
    graph_store.write_document(job, row, chunks, merged, vectors)
    elements = graph_store.elements_to_conceptualize(row.id, limit=100)  # read before the delete, as a stage does
    graph_store.delete_document("a")
    phrases = [[ConceptPhrase(phrase="thing", level="high", confidence=0.9)] for _ in elements]
    with pytest.raises(NotFound, match="deleted"):
        graph_store.write_concepts(job, elements, phrases, {concept_id("high", "thing"): vector("thing")},
                                   document_id=row.id)
    assert not graph_store.document_exists(row.id)
    stats = graph_store.stats()
    assert (stats.concepts, stats.triples, stats.entities, stats.relations) == (0, 0, 0, 0)


def test_concepts_of_elements_gone_since_they_were_read_are_not_written(graph_store: GraphStore):
    job = str(uuid.uuid4())
    graph_store.write_document(job, *document("a", TEXT, FACTS))
    elements = graph_store.elements_to_conceptualize(None, limit=100)
    graph_store.delete_document("a")  # every element goes; the concepts call (no document) comes after
    phrases = [[ConceptPhrase(phrase="thing", level="high", confidence=0.9)] for _ in elements]
    assert graph_store.write_concepts(job, elements, phrases, {concept_id("high", "thing"): vector("thing")}) == (0, 0)
    assert graph_store.stats().concepts == 0  # no concept without a link


def test_an_entity_merge_rewrites_its_triples_and_marks_them_until_their_new_vectors_are_in(graph_store: GraphStore):
    facts = [fact("Marie Curie", "discovered", "radium"), fact("Marie Sklodowska Curie", "discovered", "polonium")]
    row, chunks, merged, vectors = document("a", TEXT, facts)
    graph_store.write_document(str(uuid.uuid4()), row, chunks, merged, vectors)
    ids = ids_by_name(merged)
    kept, gone = ids["Marie Sklodowska Curie"], ids["Marie Curie"]
    assert graph_store.stale_triples(10) == {}
    graph_store.apply_dedup(str(uuid.uuid4()), [], [(kept, gone, 0.95)])
    radium = triple_id("ENTITY_ENTITY", "Marie Curie", "discovered", "radium")
    assert graph_store.stale_triples(10) == {radium: "Marie Sklodowska Curie discovered radium"}
    assert graph_store.stale_triples(10, document_id=row.id) == graph_store.stale_triples(10)
    # A vector made from another wording (the triple changed again since) is not taken.
    assert graph_store.write_triple_vectors({radium: ("Marie Curie discovered radium", vector("old"))}) == 0
    assert graph_store.write_triple_vectors(
        {radium: ("Marie Sklodowska Curie discovered radium", vector("new"))}) == 1
    assert graph_store.stale_triples(10) == {}
    assert np.allclose(graph_store.stored_vectors([radium])[radium], vector("new"), atol=1e-6)
    assert graph_store.write_triple_vectors({radium: ("Marie Sklodowska Curie discovered radium", vector("x"))}) == 0


def test_deleting_an_unknown_document_is_not_found(graph_store: GraphStore):
    with pytest.raises(NotFound):
        graph_store.delete_document("never ingested")


# -- search: what kg.search asks of a store ----------------------------------------------------------

SEARCH_FACTS = [
    fact("Marie Curie", "discovered", "radium", confidence=0.9),
    fact("Marie Curie", "discovered", "polonium", confidence=0.7),
    fact("Pierre Curie", "married", "Marie Curie", confidence=0.8),
    fact("Pierre Curie", "worked with", "Henri Becquerel", confidence=0.6),
    fact("Marie Curie", "felt", "pride", TripleType.EMOTIONAL_CONTEXT, confidence=0.5),
]
SEARCH_TEXT = ("Marie Curie discovered radium. Marie Curie discovered polonium. Pierre Curie married Marie Curie. "
               "Pierre Curie worked with Henri Becquerel. Marie Curie felt pride.")


def searchable(graph_store: GraphStore, source: str = "a", source_type: str = "text",
               source_date: datetime | None = None) -> MergedGraph:
    row, chunks, merged, vectors = document(source, SEARCH_TEXT, SEARCH_FACTS)
    row = row.model_copy(update={"source_type": source_type, "source_date": source_date})
    graph_store.write_document(str(uuid.uuid4()), row, chunks, merged, vectors)
    return merged


def ids_by_name(merged: MergedGraph) -> dict[str, uuid.UUID]:
    found = {n.name: n.id for n in merged.nodes.values()}
    found.update({r.name: r.id for r in merged.relations.values()})
    found.update({t.statement: t.id for t in merged.triples.values()})
    return found


def test_embedding_space_is_the_one_the_store_was_made_for(graph_store: GraphStore):
    assert graph_store.embedding_space() == ("test-model", DIMENSIONS)


def test_match_ranks_by_cosine_and_by_the_names_a_query_contains(graph_store: GraphStore):
    ids = ids_by_name(searchable(graph_store))
    query = MatchQuery(vector=vector("radium"), text="who discovered radium", terms=("discovered", "radium"), limit=3)
    nodes = {m.id: m for m in graph_store.match("node", query)}
    radium = nodes[ids["radium"]]
    assert (radium.vector_rank, radium.lexical_rank, radium.name) == (1, 1, "radium")
    assert radium.similarity == pytest.approx(1.0, abs=1e-5)
    assert len([m for m in nodes.values() if m.vector_rank]) == 3
    relations = {m.id: m for m in graph_store.match("relation", query)}
    assert relations[ids["discovered"]].lexical_rank == 1
    # Triples match lexically through the names they state; a filter keeps out the other types.
    statements = graph_store.match("triple", replace(query, filters=TripleFilter(types=("ENTITY_ENTITY",))))
    assert {m.id for m in statements if m.lexical_rank} == {ids["Marie Curie discovered radium"]}
    assert ids["Marie Curie felt pride"] not in {m.id for m in statements}
    # The threshold drops every candidate less similar than it.
    assert {m.id for m in graph_store.match("node", replace(query, threshold=0.999))} == {ids["radium"]}


def test_match_filters_triples_by_the_documents_that_support_them(graph_store: GraphStore):
    searchable(graph_store, "report", "report", datetime(2024, 5, 1, tzinfo=UTC))
    query = MatchQuery(vector=vector("radium"), text="radium", terms=("radium",), limit=10)
    everything = {m.id for m in graph_store.match("triple", query)}
    assert len(everything) == len(SEARCH_FACTS)
    for filters, expected in [
        (TripleFilter(sources=("report",)), everything),
        (TripleFilter(sources=("elsewhere",)), set()),
        (TripleFilter(source_types=("report",)), everything),
        (TripleFilter(source_types=("text",)), set()),
        (TripleFilter(date_from=datetime(2024, 5, 1, tzinfo=UTC), date_to=datetime(2024, 5, 2, tzinfo=UTC)), everything),
        (TripleFilter(date_to=datetime(2024, 4, 30, tzinfo=UTC)), set()),
    ]:
        assert {m.id for m in graph_store.match("triple", replace(query, filters=filters))} == expected, filters


def test_triples_of_gives_the_nearest_triples_of_nodes_and_relations(graph_store: GraphStore):
    ids = ids_by_name(searchable(graph_store))
    of_pierre = graph_store.triples_of([ids["Pierre Curie"]], [], vector("Pierre Curie married Marie Curie"),
                                       TripleFilter(), 10)
    assert [t.id for t in of_pierre][0] == ids["Pierre Curie married Marie Curie"]
    assert {t.id for t in of_pierre} == {ids["Pierre Curie married Marie Curie"], ids["Pierre Curie worked with Henri Becquerel"]}
    assert [t.similarity for t in of_pierre] == sorted((t.similarity for t in of_pierre), reverse=True)
    discovered = graph_store.triples_of([], [ids["discovered"]], vector("x"), TripleFilter(), 1)
    assert len(discovered) == 1 and discovered[0].relation_id == ids["discovered"]
    assert graph_store.triples_of([ids["pride"]], [], vector("x"), TripleFilter(types=("ENTITY_ENTITY",)), 10) == []


def test_concept_members_are_listed_most_confident_first_or_nearest_first(graph_store: GraphStore):
    searchable(graph_store)
    elements = {e.name: e for e in graph_store.elements_to_conceptualize(None, limit=100)}
    chosen = [elements["radium"], elements["polonium"], elements["discovered"]]
    phrases = [[ConceptPhrase(phrase="chemical element", level="medium", confidence=c)] for c in (0.6, 0.9, 0.3)]
    concept = concept_id("medium", "chemical element")
    graph_store.write_concepts(None, chosen, phrases, {concept: vector("chemical element")})
    listed = graph_store.concept_members([concept], 2)[concept]
    assert listed.count == 3
    assert [(m.name, m.kind, m.confidence) for m in listed.members] == [("polonium", "entity", pytest.approx(0.9)),
                                                                       ("radium", "entity", pytest.approx(0.6))]
    near = graph_store.members_near([concept], vector("discovered"), 2)
    assert [(c, m.name) for c, m in near][0] == (concept, "discovered")
    assert near[0][1].kind == "relation" and near[0][1].similarity == pytest.approx(1.0, abs=1e-5)
    assert len(near) == 2


def test_found_triples_carry_their_supporting_chunks(graph_store: GraphStore):
    ids = ids_by_name(searchable(graph_store, "a", "note", datetime(2024, 1, 2, tzinfo=UTC)))
    wanted = ids["Marie Curie discovered radium"]
    found = graph_store.found_triples([wanted, uuid.uuid4()], 3)
    assert list(found) == [wanted]
    triple = found[wanted]
    assert (triple.subject, triple.predicate, triple.object, triple.type) == (
        "Marie Curie", "discovered", "radium", "ENTITY_ENTITY")
    assert triple.provenance_count == 1
    (p,) = triple.provenance
    assert (p.source, p.source_type, p.chunk_index, p.chunk_start, p.chunk_text) == ("a", "note", 0, 0, SEARCH_TEXT)


def test_neighbourhood_is_exact_by_hop_and_an_unknown_node_is_not_found(graph_store: GraphStore):
    ids = ids_by_name(searchable(graph_store))
    one = graph_store.neighbourhood("pierre curie", hops=1, limit=50)
    assert [c.name for c in one.centres] == ["Pierre Curie"]
    assert {t.id for t in one.triples} == {ids["Pierre Curie married Marie Curie"],
                                           ids["Pierre Curie worked with Henri Becquerel"]}
    assert {n.name: n.hops for n in one.nodes} == {"Pierre Curie": 0, "Marie Curie": 1, "Henri Becquerel": 1}
    two = graph_store.neighbourhood(str(ids["Pierre Curie"]), hops=2, limit=50)
    assert len(two.triples) == len(SEARCH_FACTS) and not two.truncated
    assert {t.hop for t in two.triples if t.subject == "Marie Curie"} == {2}
    cut = graph_store.neighbourhood("Pierre Curie", hops=2, limit=3)
    assert cut.truncated and len(cut.triples) == 3 and {t.hop for t in cut.triples[:2]} == {1}
    typed = graph_store.neighbourhood("Marie Curie", hops=1, limit=50, types=["EMOTIONAL_CONTEXT"])
    assert [t.object for t in typed.triples] == ["pride"]
    with pytest.raises(NotFound, match="Marie Curie"):
        graph_store.neighbourhood("Marie Curiee", hops=1, limit=5)
