"""Search on a planted graph (real MiniLM vectors, real PostgreSQL): fusion ranking, cosine against
L2, filters, concepts, neighbourhoods, and what is refused."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import numpy as np
import pytest

from kg.documents import decode_document
from kg.embeddings import Embedded
from kg.engine.local import LocalPorts, ingest, open_local_ports
from kg.errors import InvalidInput, NotFound, StoreMismatch
from kg.models import ConceptBatch, ConceptPhrase, TripleType
from kg.search import (
    ConceptRequest,
    NeighborsRequest,
    SearchRequest,
    neighbors,
    parse_request,
    search,
    search_concepts,
)
from tests.support.extractors import FactsExtractor, fact

EMO, VV = TripleType.EMOTIONAL_CONTEXT, TripleType.EVENT_EVENT

# Two documents of a small graph: A, a biography (2020), and B, news (2023).
TEXT_A = (
    "Marie Curie discovered radium. Marie Curie was born in Warsaw. Pierre Curie married Marie Curie. "
    "Pierre Curie worked at the Sorbonne. The Sorbonne is in Paris. Albert Einstein developed the theory of "
    "relativity. Alexander Fleming discovered penicillin. The Eiffel Tower is located in Paris. "
    "Marie Curie felt pride. Isaac Newton formulated the law of universal gravitation."
)
TEXT_B = (
    "Ada Lovelace wrote the first computer program. The Wright brothers flew the first powered aeroplane. "
    "Tim Berners-Lee invented the World Wide Web. The storm caused the flood."
)
FACTS_A = [
    fact("Marie Curie", "discovered", "radium"),
    fact("Marie Curie", "was born in", "Warsaw"),
    fact("Pierre Curie", "married", "Marie Curie"),
    fact("Pierre Curie", "worked at", "the Sorbonne"),
    fact("the Sorbonne", "is in", "Paris"),
    fact("Albert Einstein", "developed", "the theory of relativity"),
    fact("Alexander Fleming", "discovered", "penicillin"),
    fact("The Eiffel Tower", "is located in", "Paris"),
    fact("Marie Curie", "felt", "pride", EMO),
    fact("Isaac Newton", "formulated", "the law of universal gravitation"),
]
FACTS_B = [
    fact("Ada Lovelace", "wrote", "the first computer program"),
    fact("The Wright brothers", "flew", "the first powered aeroplane"),
    fact("Tim Berners-Lee", "invented", "the World Wide Web"),
    fact("the storm", "caused", "the flood", VV),
]
# The concepts the planted conceptualizer gives (element name -> phrases); nothing else gets one.
CONCEPTS = {
    "radium": [("chemical element", "medium"), ("radioactive metal", "low")],
    "penicillin": [("medicine", "medium"), ("antibiotic", "low")],
    "Marie Curie": [("scientist", "medium"), ("person", "high")],
    "Pierre Curie": [("scientist", "medium"), ("person", "high")],
    "Albert Einstein": [("scientist", "medium"), ("person", "high")],
    "Isaac Newton": [("scientist", "medium"), ("person", "high")],
    "Ada Lovelace": [("mathematician", "medium"), ("person", "high")],
    "Warsaw": [("city", "medium")],
    "Paris": [("city", "medium")],
}


class PlantedConceptualizer:
    name = "planted"

    def conceptualize(self, elements) -> ConceptBatch:
        return ConceptBatch(concepts=[[ConceptPhrase(phrase=p, level=level, confidence=0.9)
                                       for p, level in CONCEPTS.get(e.name, [])] for e in elements])


class ScaledEmbedder:
    """The same model, but the vectors of some texts stored at another length: a store whose
    vectors are not normalised (as some providers' and older pipelines' are)."""

    def __init__(self, inner, scale: dict[str, float]):
        self.inner, self.scale = inner, scale
        self.model, self.dimensions = inner.model, inner.dimensions

    def embed(self, texts) -> Embedded:
        vectors = self.inner.embed(texts).vectors.copy()
        for i, text in enumerate(texts):
            vectors[i] *= self.scale.get(text, 1.0)
        return Embedded(vectors=vectors)


def document(text: str, source: str, source_type: str, day: datetime):
    return decode_document(text.encode(), source, 100_000, source_type, day)


@pytest.fixture
def ports(settings, embedder) -> Iterator[LocalPorts]:
    """The planted graph: both documents ingested by the local engine, concepts included."""
    opened = open_local_ports(settings, extractor=FactsExtractor(FACTS_A + FACTS_B), embedder=embedder,
                              conceptualizer=PlantedConceptualizer())
    try:
        for text, source, kind, day in ((TEXT_A, "a.txt", "biography", datetime(2020, 1, 1, tzinfo=UTC)),
                                        (TEXT_B, "b.txt", "news", datetime(2023, 6, 1, tzinfo=UTC))):
            assert ingest(document(text, source, kind, day), opened, settings).status.value == "SUCCEEDED"
        yield opened
    finally:
        opened.close()


def run(ports: LocalPorts, query: str, **options):
    return search(SearchRequest(query=query, **options), ports.graph, ports.embedder)


def statement(hit) -> tuple[str, str, str]:
    return hit.subject, hit.predicate, hit.object


@pytest.mark.parametrize(("query", "intended"), [
    ("Who found the element radium?", ("Marie Curie", "discovered", "radium")),
    ("which physicist came up with relativity", ("Albert Einstein", "developed", "the theory of relativity")),
    ("the antibiotic Fleming identified", ("Alexander Fleming", "discovered", "penicillin")),
    ("who created the web", ("Tim Berners-Lee", "invented", "the World Wide Web")),
    ("where can the Eiffel Tower be found", ("The Eiffel Tower", "is located in", "Paris")),
    ("Curie's birthplace", ("Marie Curie", "was born in", "Warsaw")),
    ("Newton and gravity", ("Isaac Newton", "formulated", "the law of universal gravitation")),
])
def test_the_intended_triple_ranks_first_for_a_paraphrase(ports, query, intended):
    response = run(ports, query, limit=5)
    assert statement(response.hits[0]) == intended, [statement(h) for h in response.hits]
    top = response.hits[0]
    assert top.score == max(h.score for h in response.hits)
    assert [h.score for h in response.hits] == sorted((h.score for h in response.hits), reverse=True)
    assert top.ranks.semantic is not None and 0 < top.similarity <= 1


def test_a_hit_carries_its_ranks_confidence_and_the_sentence_that_states_it(ports):
    hit = run(ports, "Who found the element radium?", limit=3).hits[0]
    assert hit.type is TripleType.ENTITY_ENTITY and hit.confidence == pytest.approx(0.8)
    assert hit.ranks.entity is not None and hit.ranks.concept is not None
    (source,) = hit.sources
    assert (source.source, source.source_type, source.chunk_index) == ("a.txt", "biography", 0)
    assert source.text == "Marie Curie discovered radium."
    assert TEXT_A[source.start:source.end] == source.text
    assert hit.source_count == 1


def test_cosine_ranks_rightly_where_l2_on_vectors_not_normalised_does_not(settings, embedder):
    """The system this replaces ranked by L2 distance as if it were cosine. Stored vectors of other
    lengths than one then rank by their length: here the triple that answers the query is stored
    five times longer than its unit vector, and L2 puts an unrelated triple before it."""
    right, wrong = "Alexander Fleming discovered penicillin", "The Eiffel Tower is located in Paris"
    query = "which antibiotic did Fleming find"
    scaled = ScaledEmbedder(embedder, {right: 5.0})
    opened = open_local_ports(settings, extractor=FactsExtractor(FACTS_A), embedder=scaled,
                              conceptualizer=PlantedConceptualizer())
    try:
        ingest(document(TEXT_A, "a.txt", "biography", datetime(2020, 1, 1, tzinfo=UTC)), opened, settings)
        q = embedder.embed([query]).vectors[0]
        with opened.db.connection() as conn:
            norms = dict(conn.execute("SELECT statement, vector_norm(embedding) FROM triples").fetchall())
            by_l2 = [s for (s,) in conn.execute("SELECT statement FROM triples ORDER BY embedding <-> %s", (q,))]
            by_cosine = [s for (s,) in conn.execute("SELECT statement FROM triples ORDER BY embedding <=> %s", (q,))]
        assert norms[right] == pytest.approx(5.0, rel=1e-3) and norms[wrong] == pytest.approx(1.0, rel=1e-3)
        assert by_l2.index(wrong) < by_l2.index(right)  # L2 ranks the unrelated triple first ...
        assert by_cosine[0] == right  # ... cosine does not
        semantic_only = search(SearchRequest(query=query, search_types=["semantic"]), opened.graph, scaled)
        assert " ".join(statement(semantic_only.hits[0])) == right
        assert semantic_only.hits[0].similarity == pytest.approx(float(np.dot(q, embedder.embed([right]).vectors[0])),
                                                                 abs=1e-3)
        assert " ".join(statement(search(SearchRequest(query=query), opened.graph, scaled).hits[0])) == right
    finally:
        opened.close()


def test_the_type_filter_keeps_only_that_type(ports):
    hits = run(ports, "Marie Curie", types=["EMOTIONAL_CONTEXT"]).hits
    assert [statement(h) for h in hits] == [("Marie Curie", "felt", "pride")]


def test_the_source_and_source_type_filters_keep_only_those_documents(ports):
    b = {" ".join(f.statement.split()) for f in FACTS_B}
    by_source = run(ports, "who discovered or invented something", sources=["b.txt"], limit=20).hits
    by_type = run(ports, "who discovered or invented something", source_types=["news"], limit=20).hits
    assert by_source and {" ".join(statement(h)) for h in by_source} <= b
    assert {h.id for h in by_type} == {h.id for h in by_source}
    assert all(s.source == "b.txt" for h in by_source for s in h.sources)
    assert run(ports, "radium", sources=["nowhere.txt"]).hits == []


def test_the_date_range_keeps_triples_of_documents_dated_within_it(ports):
    later = run(ports, "discovered", date_from="2021-01-01", limit=20).hits
    assert later and all(h.sources[0].source == "b.txt" for h in later)
    earlier = run(ports, "discovered", date_to="2020-01-01", limit=20).hits  # a date alone: its whole day
    assert earlier and all(h.sources[0].source == "a.txt" for h in earlier)
    assert run(ports, "discovered", date_from="2021-01-01", date_to="2022-12-31").hits == []


def test_limit_and_threshold_bound_the_hits(ports):
    assert len(run(ports, "science", limit=3).hits) == 3
    everything = run(ports, "Who found the element radium?", limit=100, threshold=0).hits
    close = run(ports, "Who found the element radium?", limit=100, threshold=0.6).hits
    assert 0 < len(close) < len(everything)
    assert all(h.similarity >= 0.6 for h in close)
    assert statement(close[0]) == ("Marie Curie", "discovered", "radium")


def test_weights_choose_the_lists(ports):
    only_concepts = run(ports, "chemical element", search_types=["concept"]).hits
    assert only_concepts and all(h.ranks.concept and not h.ranks.semantic for h in only_concepts)
    assert statement(only_concepts[0]) == ("Marie Curie", "discovered", "radium")
    weighted = run(ports, "chemical element", weights={"entity": 0, "relationship": 0, "semantic": 0, "concept": 1})
    assert [h.id for h in weighted.hits] == [h.id for h in only_concepts]


def test_a_concept_query_finds_the_elements_under_that_concept(ports):
    response = search_concepts(ConceptRequest(query="famous scientists"), ports.graph, ports.embedder)
    top = response.concepts[0]
    assert (top.name, top.level) == ("scientist", "medium")
    assert top.element_count == 4
    assert {e.name for e in top.elements} == {"Marie Curie", "Pierre Curie", "Albert Einstein", "Isaac Newton"}
    low = search_concepts(ConceptRequest(query="drugs that kill bacteria", level="low"), ports.graph, ports.embedder)
    assert {c.level for c in low.concepts} == {"low"}
    assert (low.concepts[0].name, [e.name for e in low.concepts[0].elements]) == ("antibiotic", ["penicillin"])


def _within(centre: str, hops: int) -> set[tuple[str, str, str]]:
    """The planted facts within `hops` of a node, breadth first (names as the extractor gave them)."""
    facts = [(f.subject.lower(), f.predicate, f.object.lower()) for f in FACTS_A + FACTS_B]
    reached, found = {centre.lower()}, set()
    for _ in range(hops):
        touching = {f for f in facts if f[0] in reached or f[2] in reached}
        found |= touching
        reached |= {f[0] for f in touching} | {f[2] for f in touching}
    return found


@pytest.mark.parametrize("hops", [1, 2])
def test_a_neighbourhood_holds_exactly_the_triples_within_its_hops(ports, hops):
    response = neighbors(NeighborsRequest(node="Marie Curie", hops=hops), ports.graph)
    got = {(t.subject.lower(), t.predicate, t.object.lower()) for t in response.triples}
    assert got == _within("Marie Curie", hops)
    assert not response.truncated and [c.name for c in response.centres] == ["Marie Curie"]
    assert {t.hop for t in response.triples} == set(range(1, hops + 1))
    names = {n.name.lower(): n.hops for n in response.nodes}
    assert names["marie curie"] == 0 and names["radium"] == 1
    assert ("the sorbonne" in names) == (hops == 2)


def test_a_neighbourhood_is_cut_at_its_limit_and_filtered_by_type(ports):
    cut = neighbors(NeighborsRequest(node="marie curie", hops=2, limit=2), ports.graph)
    assert cut.truncated and len(cut.triples) == 2 and {t.hop for t in cut.triples} == {1}
    emotions = neighbors(NeighborsRequest(node="Marie Curie", types=["EMOTIONAL_CONTEXT"]), ports.graph)
    assert [(t.predicate, t.object) for t in emotions.triples] == [("felt", "pride")]


@pytest.mark.parametrize(("model", "fields", "message"), [
    (SearchRequest, {"query": ""}, "query: the query is empty"),
    (SearchRequest, {"query": "   "}, "query: the query is empty"),
    (SearchRequest, {"query": "x" * 2001}, "at most 2,000"),
    (SearchRequest, {"query": "radium", "limit": 0}, "limit"),
    (SearchRequest, {"query": "radium", "limit": 101}, "limit"),
    (SearchRequest, {"query": "radium", "threshold": 1.5}, "threshold"),
    (SearchRequest, {"query": "radium", "types": ["FRIENDSHIP"]}, "types.0"),
    (SearchRequest, {"query": "radium", "date_from": "2024-02-01", "date_to": "2024-01-01"}, "date_from is after"),
    (SearchRequest, {"query": "radium", "search_types": []}, "search_types"),
    (SearchRequest, {"query": "radium", "weights": {"entity": 0, "relationship": 0, "semantic": 0, "concept": 0}},
     "weight"),
    (SearchRequest, {"query": "radium\x00"}, "NUL"),
    (SearchRequest, {"query": "radium", "colour": "blue"}, "colour"),
    (ConceptRequest, {"query": "element", "level": "middling"}, "level"),
    (NeighborsRequest, {"node": "Marie Curie", "hops": 4}, "hops"),
    (NeighborsRequest, {"node": " "}, "node"),
])
def test_bad_input_is_refused_with_what_is_wrong(model, fields, message):
    with pytest.raises(InvalidInput, match=message):
        parse_request(model, **fields)


def test_an_unknown_node_is_not_found_with_the_names_it_may_mean(ports):
    with pytest.raises(NotFound, match="did you mean 'Marie Curie'"):
        neighbors(NeighborsRequest(node="Marie Curei"), ports.graph)


def test_a_query_is_never_embedded_with_another_model_than_the_stores(ports):
    class Other:
        model, dimensions = "another-model", 384

        def embed(self, texts):
            raise AssertionError("must not be called")

    with pytest.raises(StoreMismatch, match="another-model"):
        search(SearchRequest(query="radium"), ports.graph, Other())


@pytest.mark.parametrize("query", ["Marie Curie radium", "Einstein relativity Newton", "Paris tower"])
def test_the_shared_lexical_matches_are_the_lexical_halves_of_match_and_match_can_leave_them_out(ports, query):
    """search() takes the lexical halves of the node and statement matches from one lexical_matches
    call, and asks match for the nearest only: together they are what match gives with both."""
    from dataclasses import replace

    from kg.graph import MatchQuery
    from kg.normalize import normalise
    from kg.search import query_terms, query_vector

    base = MatchQuery(vector=query_vector(query, ports.embedder, ports.graph), text=normalise(query),
                      terms=query_terms(query), limit=5)
    nodes, statements = ports.graph.lexical_matches(base, 7)
    both = {"node": ports.graph.match("node", base), "triple": ports.graph.match("triple", replace(base, limit=7))}
    for kind, shared in (("node", nodes), ("triple", statements)):
        lexical_half = sorted((m.id, m.lexical_rank) for m in both[kind] if m.lexical_rank is not None)
        assert lexical_half and sorted((m.id, m.lexical_rank) for m in shared) == lexical_half
        nearest = ports.graph.match(kind, base if kind == "node" else replace(base, limit=7), lexical=False)
        assert all(m.vector_rank is not None and m.lexical_rank is None for m in nearest)
        assert {m.id for m in nearest} == {m.id for m in both[kind] if m.vector_rank is not None}
