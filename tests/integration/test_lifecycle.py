"""The document lifecycle: delete a document's contribution; re-ingest a changed document; export."""

from __future__ import annotations

import io
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import networkx as nx
import pytest

from kg.documents import decode_document
from kg.engine.local import ingest
from kg.errors import NotFound
from kg.export import write_graphml, write_jsonl
from kg.models import JobStatus
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


# -- a delete racing the same document's ingest ------------------------------------------------------

# Long enough for any step of these tests on a loaded machine; only a hang reaches it.
PATIENCE_S = 120


def orphans(ports) -> dict[str, int]:
    """Rows that name something no longer there: concept links to missing elements, concepts (with
    their vectors) no link uses, triples of missing nodes."""
    with ports.db.connection() as conn:
        return {
            "links": conn.execute(
                "SELECT count(*) FROM conceptualizations e"
                " WHERE NOT EXISTS (SELECT 1 FROM nodes n WHERE n.id = e.element_id)"
                " AND NOT EXISTS (SELECT 1 FROM relations r WHERE r.id = e.element_id)").fetchone()[0],
            "concepts": conn.execute(
                "SELECT count(*) FROM concepts c WHERE NOT EXISTS"
                " (SELECT 1 FROM conceptualizations e WHERE e.concept_id = c.id)").fetchone()[0],
        }


class BlockingConceptualizer:
    """Conceptualizes as `inner` does, once the test lets it: its calls wait for `release`."""

    def __init__(self, inner):
        self.inner, self.name = inner, inner.name
        self.entered, self.release = threading.Event(), threading.Event()

    def conceptualize(self, elements):
        self.entered.set()
        if not self.release.wait(PATIENCE_S):
            raise TimeoutError("the test never released the conceptualizer")
        return self.inner.conceptualize(elements)


def test_a_delete_while_the_concepts_stage_waits_for_its_llm_fails_the_ingest_and_leaves_nothing(
    make_ports, settings, conceptualizer
):
    ports = make_ports(FactsExtractor([SHARED, ONLY_A]))
    blocking = BlockingConceptualizer(conceptualizer)
    ports.conceptualizer = blocking
    with ThreadPoolExecutor(max_workers=1) as pool:
        running = pool.submit(ingest, doc("a"), ports, settings)
        assert blocking.entered.wait(PATIENCE_S)  # the concepts stage is waiting for its reply
        deleted = ports.graph.delete_document("a")
        blocking.release.set()
        report = running.result(PATIENCE_S)
    assert deleted.triples == 2 and deleted.concepts == 0  # nothing of the concepts was written yet
    assert report.status is JobStatus.FAILED
    assert "deleted" in report.error and "concepts" in report.error
    assert set(table_counts(ports).values()) == {0}  # no concept, link or vector written over the delete
    assert orphans(ports) == {"links": 0, "concepts": 0}


def test_a_delete_during_a_concepts_write_waits_for_it_then_removes_what_it_wrote(
    make_ports, settings, monkeypatch
):
    """The delete comes while a batch's transaction is open: it waits on the document's lock, and
    once the batch commits it removes the batch's concepts too; the ingest then ends FAILED."""
    import kg.graph.postgres as store_module

    ports = make_ports(FactsExtractor([SHARED, ONLY_A]))
    in_write, go_on, deleted = threading.Event(), threading.Event(), threading.Event()
    real_insert = store_module._insert_staged

    def insert_then_wait(cur, table, *args, **kwargs):
        fresh = real_insert(cur, table, *args, **kwargs)
        if table == "conceptualizations" and not in_write.is_set():
            in_write.set()  # the batch's links are in, its transaction still open
            if not go_on.wait(PATIENCE_S):
                raise TimeoutError("the test never let the write go on")
        return fresh

    monkeypatch.setattr(store_module, "_insert_staged", insert_then_wait)
    real_exists = ports.graph.document_exists

    def exists_after_the_delete(document_id):
        # The stage's next look at the document comes after the delete, as it would on a busy machine.
        if not deleted.wait(PATIENCE_S):
            raise TimeoutError("the delete never finished")
        return real_exists(document_id)

    monkeypatch.setattr(ports.graph, "document_exists", exists_after_the_delete)

    with ThreadPoolExecutor(max_workers=2) as pool:
        running = pool.submit(ingest, doc("a"), ports, settings)
        assert in_write.wait(PATIENCE_S)
        deleting = pool.submit(ports.graph.delete_document, "a")
        wait_until_a_backend_waits_on_an_advisory_lock(ports)
        assert not deleting.done()  # it waits for the write, it did not go ahead of it
        go_on.set()
        summary = deleting.result(PATIENCE_S)
        deleted.set()
        report = running.result(PATIENCE_S)
    assert summary.concept_edges > 0 and summary.concepts > 0  # it removed what the write had just added
    assert report.status is JobStatus.FAILED and "deleted" in report.error
    assert set(table_counts(ports).values()) == {0}
    assert orphans(ports) == {"links": 0, "concepts": 0}


def wait_until_a_backend_waits_on_an_advisory_lock(ports) -> None:
    """Poll pg_stat_activity until some session of this database waits on an advisory lock."""
    deadline = time.monotonic() + PATIENCE_S
    with ports.db.connection() as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock' AND wait_event = 'advisory'").fetchone()[0]
            if waiting:
                return
            time.sleep(0.01)
    raise TimeoutError("no session ever waited on the document's lock")

