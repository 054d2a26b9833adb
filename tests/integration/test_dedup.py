"""Deduplication (stage 3) on a real PostgreSQL: planted near-duplicates merge, distinct facts stay."""

from __future__ import annotations

import pytest

from kg.documents import decode_document
from kg.engine.local import ingest
from kg.providers import dedup_params
from kg.models import TripleType
from kg.normalize import triple_id
from kg.stages import deduplicate_graph
from tests.integration.conftest import table_counts
from tests.support.extractors import FactsExtractor, fact

SHORT = fact("Marie Curie", "discovered", "radium", confidence=0.7)
LONG = fact("Marie Curie", "discovered", "the element radium", confidence=0.9)
DISTINCT = [
    fact("Marie Curie", "discovered", "polonium"),
    fact("Pierre Curie", "discovered", "radium"),
    fact("Royal Swedish Academy", "awarded", "Nobel Prize in Physics"),
    fact("Royal Swedish Academy", "awarded", "Nobel Prize in Chemistry"),
    fact("Marie Curie", "feared", "the war", TripleType.EMOTIONAL_CONTEXT),
]


def doc(text: str, source: str):
    return decode_document(text.encode(), source, 10_000)


def two_documents(make_ports, settings):
    """Document a states the short form, document b the long one; both state the distinct facts."""
    settings.concepts = False
    text = "Marie Curie and Pierre Curie worked in Paris; the Royal Swedish Academy took note."
    ports = make_ports(FactsExtractor([SHORT, *DISTINCT]))
    ingest(doc(text, "a"), ports, settings)
    ports.extractor = FactsExtractor([LONG, *DISTINCT])
    settings.dedup = True
    report = ingest(doc(text + " Again.", "b"), ports, settings)
    return ports, report


def statements(ports) -> set[str]:
    with ports.db.connection() as conn:
        return {s for (s,) in conn.execute("SELECT statement FROM triples")}


def test_planted_near_duplicates_merge_and_distinct_facts_stay(make_ports, settings):
    ports, report = two_documents(make_ports, settings)
    assert report.duplicates_removed == 1 and report.dedup.semantic == 1
    kept = statements(ports)
    assert "Marie Curie discovered the element radium" in kept  # the more confident one is canonical
    assert "Marie Curie discovered radium" not in kept
    for distinct in DISTINCT:
        assert distinct.statement in kept or distinct.statement.replace("the war", "war") in kept
    with ports.db.connection() as conn:
        sources = conn.execute(
            "SELECT array_agg(DISTINCT d.source ORDER BY d.source) FROM triple_provenance p"
            " JOIN documents d ON d.id = p.document_id WHERE p.triple_id = %s",
            (triple_id("ENTITY_ENTITY", "Marie Curie", "discovered", "element radium"),),
        ).fetchone()[0]
        log = conn.execute("SELECT kind, method, merged_text, similarity, job_id::text FROM dedup_merges").fetchall()
        unused_nodes = conn.execute(
            "SELECT count(*) FROM nodes n WHERE NOT EXISTS (SELECT 1 FROM triples t"
            " WHERE n.id IN (t.subject_id, t.object_id))").fetchone()[0]
    assert sources == ["a", "b"]  # the merged triple's provenance moved to the canonical one
    assert unused_nodes == 0  # a node only the merged wording used goes with it
    assert log == [("triple", "semantic", "Marie Curie discovered radium", pytest.approx(log[0][3]), report.job_id)]
    assert log[0][3] >= 0.85


def test_reingesting_a_merged_fact_lands_on_the_canonical_triple(make_ports, settings):
    ports, _ = two_documents(make_ports, settings)
    before = table_counts(ports)
    ports.extractor = FactsExtractor([SHORT, *DISTINCT])
    settings.dedup = False
    report = ingest(doc("Marie Curie and Pierre Curie worked in Paris; the Royal Swedish Academy took note.", "a"),
                    ports, settings)
    assert table_counts(ports) == before
    assert report.embeddings.computed == 0


def test_a_failure_inside_the_dedup_transaction_leaves_the_graph_unchanged(make_ports, settings, monkeypatch):
    settings.concepts = False
    ports = make_ports(FactsExtractor([SHORT, LONG, *DISTINCT]))
    ingest(doc("Marie Curie and Pierre Curie; the Royal Swedish Academy.", "a"), ports, settings)
    before, kept_before = table_counts(ports), statements(ports)

    import kg.graph.postgres as store_module

    def exploding(*args, **kwargs):
        raise RuntimeError("connection lost")

    monkeypatch.setattr(store_module, "_merge_nodes", exploding)  # runs after the triple merges
    with pytest.raises(RuntimeError, match="connection lost"):
        deduplicate_graph(ports.graph, dedup_params(settings))
    assert table_counts(ports) == before and statements(ports) == kept_before


def test_entities_with_near_identical_names_merge_and_keep_aliases(make_ports, settings):
    settings.concepts = False
    royal, swedish = "Royal Swedish Academy of Sciences", "Swedish Royal Academy of Sciences"
    ports = make_ports(FactsExtractor([
        fact(royal, "awarded", "Nobel Prize"),
        fact(swedish, "awarded", "Nobel Prize"),
        fact(swedish, "elected", "Marie Curie"),
        fact("Marie Curie", "discovered", "polonium"),
    ]))
    ingest(doc(f"The {royal}, also written {swedish}, honoured Marie Curie.", "a"), ports, settings)
    summary = deduplicate_graph(ports.graph, dedup_params(settings))
    assert summary.entities_merged == 1
    assert summary.triples_merged == 1  # the two "awarded Nobel Prize" triples now say the same thing
    with ports.db.connection() as conn:
        academies = conn.execute("SELECT name, aliases FROM nodes WHERE name LIKE '%%Academy%%'").fetchall()
        triples = conn.execute("SELECT subject, predicate, object FROM triples ORDER BY 1, 2").fetchall()
        dangling = conn.execute(
            "SELECT count(*) FROM triples t WHERE NOT EXISTS (SELECT 1 FROM nodes n WHERE n.id = t.subject_id)"
        ).fetchone()[0]
    assert academies == [(swedish, [royal])]  # the one more triples use is canonical
    assert len(triples) == 3 and dangling == 0
    assert ("Marie Curie", "discovered", "polonium") in triples
