"""The document lifecycle: delete a document's contribution; re-ingest a changed document; export."""

from __future__ import annotations

import io

import networkx as nx
import pytest

from kg.documents import decode_document
from kg.engine.local import ingest
from kg.errors import NotFound
from kg.export import write_graphml, write_jsonl
from tests.integration.conftest import table_counts
from tests.support.extractors import FactsExtractor, fact

SHARED = fact("Marie Curie", "discovered", "radium")
ONLY_A = fact("Marie Curie", "married", "Pierre Curie")
ONLY_B = fact("Irène Curie", "won", "Nobel Prize")
TEXT = "Marie Curie and Irène Curie worked in Paris."


def doc(source: str, text: str = TEXT):
    return decode_document(text.encode(), source, 10_000)


@pytest.fixture
def two_documents(make_ports, settings):
    ports = make_ports(FactsExtractor([SHARED, ONLY_A]))
    ingest(doc("a"), ports, settings)
    ports.extractor = FactsExtractor([SHARED, ONLY_B])
    ingest(doc("b"), ports, settings)
    return ports


def statements_with_sources(ports) -> dict[str, list[str]]:
    with ports.db.connection() as conn:
        rows = conn.execute(
            "SELECT t.statement, array_agg(DISTINCT d.source ORDER BY d.source) FROM triples t"
            " JOIN triple_provenance p ON p.triple_id = t.id JOIN documents d ON d.id = p.document_id"
            " GROUP BY t.statement"
        ).fetchall()
    return dict(rows)


def test_deleting_one_document_keeps_shared_facts_and_removes_its_own(two_documents):
    ports = two_documents
    summary = ports.graph.delete_document("a")
    assert statements_with_sources(ports) == {
        "Marie Curie discovered radium": ["b"],
        "Irène Curie won Nobel Prize": ["b"],
    }
    assert summary.triples == 1 and summary.nodes == 1 and summary.relations == 1  # Pierre Curie, "married"
    with ports.db.connection() as conn:
        names = {n for (n,) in conn.execute("SELECT name FROM nodes")}
        relations = {r for (r,) in conn.execute("SELECT name FROM relations")}
        orphan_concepts = conn.execute(
            "SELECT count(*) FROM concepts c WHERE NOT EXISTS"
            " (SELECT 1 FROM conceptualizations e WHERE e.concept_id = c.id)").fetchone()[0]
        orphan_edges = conn.execute(
            "SELECT count(*) FROM conceptualizations e WHERE NOT EXISTS (SELECT 1 FROM nodes n WHERE n.id = e.element_id)"
            " AND NOT EXISTS (SELECT 1 FROM relations r WHERE r.id = e.element_id)").fetchone()[0]
    assert "Pierre Curie" not in names and "married" not in relations  # their rows, and so their vectors, are gone
    assert orphan_concepts == 0 and orphan_edges == 0


def test_deleting_every_document_empties_every_graph_table(two_documents):
    ports = two_documents
    ports.graph.delete_document("a")
    ports.graph.delete_document("b")
    assert set(table_counts(ports).values()) == {0}


def test_deleting_an_unknown_source_is_not_found_and_changes_nothing(two_documents):
    before = table_counts(two_documents)
    with pytest.raises(NotFound, match="no document"):
        two_documents.graph.delete_document("c")
    assert table_counts(two_documents) == before


def test_a_failure_inside_delete_leaves_the_graph_unchanged(two_documents, monkeypatch):
    ports = two_documents
    before = table_counts(ports)
    import kg.graph.postgres as store_module

    real = store_module._collect_unsupported

    def collect_then_fail(cur, candidates):
        real(cur, candidates)
        raise RuntimeError("power cut")

    monkeypatch.setattr(store_module, "_collect_unsupported", collect_then_fail)
    with pytest.raises(RuntimeError, match="power cut"):
        ports.graph.delete_document("a")
    assert table_counts(ports) == before


def test_reingesting_a_changed_document_replaces_its_contribution(make_ports, settings):
    ports = make_ports(FactsExtractor([SHARED, ONLY_A]))
    first = ingest(doc("a"), ports, settings)
    with ports.db.connection() as conn:
        created = conn.execute("SELECT created_at FROM triples WHERE statement = %s", (SHARED.statement,)).fetchone()
    ports.extractor = FactsExtractor([SHARED, ONLY_B])
    second = ingest(doc("a", TEXT + " Irène Curie won the prize later."), ports, settings)
    assert first.document_id == second.document_id
    assert statements_with_sources(ports) == {
        "Marie Curie discovered radium": ["a"],
        "Irène Curie won Nobel Prize": ["a"],
    }
    with ports.db.connection() as conn:
        still = conn.execute("SELECT created_at FROM triples WHERE statement = %s", (SHARED.statement,)).fetchone()
        names = {n for (n,) in conn.execute("SELECT name FROM nodes")}
        documents = conn.execute("SELECT count(*) FROM documents").fetchone()[0]
    assert still == created  # the unchanged fact stayed in place
    assert "Pierre Curie" not in names and documents == 1
    # Only what is new was embedded: Irène Curie, won, Nobel Prize and the new statement.
    assert second.embeddings.computed == 4


def test_graphml_export_loads_in_networkx_with_the_stored_counts(two_documents):
    ports = two_documents
    out = io.StringIO()
    nodes, edges = write_graphml(ports.graph.iter_nodes(), ports.graph.iter_triples(), out)
    graph = nx.read_graphml(io.StringIO(out.getvalue()))
    counts = table_counts(ports)
    assert graph.number_of_nodes() == nodes == counts["nodes"]
    assert graph.number_of_edges() == edges == counts["triples"]
    marie = next(data for _, data in graph.nodes(data=True) if data["name"] == "Marie Curie")
    assert marie["kind"] == "entity" and "high:person" in marie["concepts"]
    radium = next(data for _, _, data in graph.edges(data=True) if data["predicate"] == "discovered")
    assert radium["type"] == "ENTITY_ENTITY" and radium["sources"] == "a; b" and radium["confidence"] == 0.8


def test_jsonl_export_has_one_triple_per_line(two_documents):
    out = io.StringIO()
    count = write_jsonl(two_documents.graph.iter_triples(), out)
    lines = out.getvalue().splitlines()
    assert count == len(lines) == 3
    import json

    shared = next(json.loads(line) for line in lines if '"radium"' in line)
    assert shared["sources"] == ["a", "b"] and len(shared["chunks"]) == 2
