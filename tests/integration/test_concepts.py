"""Concepts (stage 2) on a real PostgreSQL: three levels, idempotent, one conceptualization per element."""

from __future__ import annotations

import threading

from kg.documents import decode_document
from kg.engine.local import ingest
from kg.models import ConceptBatch
from kg.stages import generate_concepts
from kg.stages.contract import StageRequest
from tests.integration.conftest import table_counts
from tests.support.extractors import FactsExtractor, fact

MARIE = "Marie Curie"
TEXT_A = "Marie Curie discovered radium in Paris. Marie Curie married Pierre Curie."
TEXT_B = "Marie Curie founded the Radium Institute. Marie Curie won the Nobel Prize."
FACTS = [fact(MARIE, "discovered", "radium"), fact(MARIE, "married", "Pierre Curie"),
         fact(MARIE, "founded", "Radium Institute"), fact(MARIE, "won", "Nobel Prize")]


class CountingConceptualizer:
    """Wraps a conceptualizer and remembers every element it was asked about."""

    def __init__(self, inner):
        self.inner = inner
        self.name = inner.name
        self.seen: list[str] = []

    def conceptualize(self, elements) -> ConceptBatch:
        self.seen.extend(e.name for e in elements)
        return self.inner.conceptualize(elements)


def doc(text: str, source: str):
    return decode_document(text.encode(), source, 10_000)


def test_concepts_have_all_three_levels_with_vectors_and_edges(make_ports, settings):
    ports = make_ports(FactsExtractor(FACTS))
    report = ingest(doc(TEXT_A, "a"), ports, settings)
    assert report.concepts is not None and report.concepts.concepts_new > 0
    stats = ports.graph.stats()
    assert all(stats.concepts_by_level[level] > 0 for level in ("high", "medium", "low"))
    with ports.db.connection() as conn:
        person = conn.execute(
            "SELECT c.level, c.name FROM conceptualizations e JOIN concepts c ON c.id = e.concept_id"
            " JOIN nodes n ON n.id = e.element_id WHERE n.name = %s ORDER BY c.level", (MARIE,)
        ).fetchall()
        unmarked = conn.execute("SELECT count(*) FROM nodes WHERE conceptualized_at IS NULL").fetchone()[0]
        contexts = conn.execute("SELECT min(cardinality(context_triples)) FROM conceptualizations").fetchone()[0]
    assert ("high", "person") in person
    assert unmarked == 0
    assert contexts >= 1  # each edge remembers the triples that gave the element its context


def test_generating_concepts_again_adds_nothing(make_ports, settings):
    ports = make_ports(FactsExtractor(FACTS))
    report = ingest(doc(TEXT_A, "a"), ports, settings)
    before = table_counts(ports)
    again = generate_concepts(StageRequest(job_id=report.job_id), ports.conceptualizer, ports.embedder,
                              ports.graph, ports.ledger, ports.blobs)
    # Nothing new is written, and the counts are still the job's own (read from the graph).
    assert table_counts(ports) == before
    assert again.state == "done" and again.counts == report.concepts.model_dump()
    assert report.concepts.elements > 0 and report.concepts.concepts_new > 0


def test_an_element_shared_by_two_documents_is_conceptualized_once(make_ports, settings, conceptualizer):
    counting = CountingConceptualizer(conceptualizer)
    ports = make_ports(FactsExtractor(FACTS))
    ports.conceptualizer = counting
    ingest(doc(TEXT_A, "a"), ports, settings)
    ingest(doc(TEXT_B, "b"), ports, settings)
    assert counting.seen.count(MARIE) == 1
    assert "Radium Institute" in counting.seen and "radium" in counting.seen


def test_a_failing_concept_batch_leaves_the_job_partial_and_its_elements_for_later(make_ports, settings):
    class Broken:
        name = "broken"

        def conceptualize(self, elements):
            raise RuntimeError("model unavailable")

    ports = make_ports(FactsExtractor(FACTS))
    ports.conceptualizer = Broken()
    report = ingest(doc(TEXT_A, "a"), ports, settings)
    assert report.status.value == "PARTIAL" and "concepts" in report.error
    assert report.triples["total"] == 4
    assert report.concepts.failed_batches == 1 and report.concepts.elements == 0
    with ports.db.connection() as conn:
        assert conn.execute("SELECT count(*) FROM nodes WHERE conceptualized_at IS NULL").fetchone()[0] == 5


class CountingEmbedder:
    """Wraps an embedder and remembers every text it embedded."""

    def __init__(self, inner):
        self.inner, self.model, self.dimensions = inner, inner.model, inner.dimensions
        self.texts: list[str] = []

    def embed(self, texts):
        self.texts.extend(texts)
        return self.inner.embed(texts)


def test_batches_in_flight_together_embed_each_new_phrase_once(make_ports, settings):
    facts = [fact(f"Person {i}", "met", f"City {i}") for i in range(12)]
    ports = make_ports(FactsExtractor(facts))
    text = " ".join(f"Person {i} met City {i}." for i in range(12))
    report = ingest(doc(text, "many"), ports, settings.model_copy(update={"concepts": False}))
    counting = CountingEmbedder(ports.embedder)
    progress = generate_concepts(StageRequest(job_id=report.job_id), ports.conceptualizer, counting, ports.graph,
                                 ports.ledger, ports.blobs, batch_size=2, workers=4)
    assert progress.state == "done" and progress.counts["elements"] == 25  # 12 people, 12 cities, "met"
    with ports.db.connection() as conn:
        phrases = conn.execute("SELECT count(DISTINCT name) FROM concepts").fetchone()[0]  # a vector each
        uses = conn.execute("SELECT count(*) FROM conceptualizations").fetchone()[0]
    assert uses > phrases  # batches shared phrases ("person", "city"...): each could have embedded them
    assert len(counting.texts) == len(set(counting.texts)) == phrases


def test_the_next_concept_call_does_not_wait_for_the_last_batch_embedding(make_ports, settings):
    """A batch's phrases are embedded while the next calls go out: here the first embedding request
    only returns once a call beyond the first `workers` has started, which never happens if the
    stage waits for embeddings before it starts more calls."""
    facts = [fact(f"Person {i}", "met", f"City {i}") for i in range(12)]
    ports = make_ports(FactsExtractor(facts))
    text = " ".join(f"Person {i} met City {i}." for i in range(12))
    report = ingest(doc(text, "many"), ports, settings.model_copy(update={"concepts": False}))
    workers, third_call = 2, threading.Event()
    calls = CountingConceptualizer(ports.conceptualizer)

    class Gated(CountingConceptualizer):
        def conceptualize(self, elements):
            if len(calls.seen) >= workers * 2:  # two batches of two elements went out before this one
                third_call.set()
            return calls.conceptualize(elements)

    class WaitingEmbedder(CountingEmbedder):
        def embed(self, texts):
            if not self.texts:
                assert third_call.wait(timeout=60), "no call started while an embedding was in flight"
            return super().embed(texts)

    progress = generate_concepts(StageRequest(job_id=report.job_id), Gated(ports.conceptualizer),
                                 WaitingEmbedder(ports.embedder), ports.graph, ports.ledger, ports.blobs,
                                 batch_size=2, workers=workers)
    assert progress.state == "done" and progress.counts["elements"] == 25 and third_call.is_set()
