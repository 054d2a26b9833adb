"""Deduplication (stage 3) on a real PostgreSQL: planted near-duplicates merge, distinct facts stay."""

from __future__ import annotations

import re

import numpy as np
import pytest

from kg.documents import decode_document
from kg.engine.local import ingest
from kg.errors import NotFound
from kg.models import TripleType
from kg.normalize import triple_id
from kg.providers import dedup_params
from kg.stages import deduplicate, deduplicate_graph, extract_chunk, merge_and_store
from kg.stages.contract import ChunkTask, JobOptions, StageRequest
from tests.integration.conftest import table_counts
from tests.support.extractors import FactsExtractor, fact
from tests.support.stages import start_job

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
        deduplicate_graph(ports.graph, ports.embedder, dedup_params(settings))
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
    summary = deduplicate_graph(ports.graph, ports.embedder, dedup_params(settings))
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


# -- entity merges rewrite the triples that named the merged entity -------------------------------

ROYAL, SWEDISH = "Royal Swedish Academy of Sciences", "Swedish Royal Academy of Sciences"
ACADEMY_FACTS = [
    fact(SWEDISH, "awarded", "Nobel Prize"),
    fact(SWEDISH, "elected", "Marie Curie"),
    fact(SWEDISH, "honoured", "Pierre Curie"),
    fact(ROYAL, "founded", "Nobel Institute"),  # only the merged wording names these two
    fact("Marie Curie", "visited", ROYAL),
]
ACADEMY_TEXT = f"The {ROYAL}, also written {SWEDISH}, honoured Marie Curie."


def triple_rows(ports) -> list[tuple]:
    with ports.db.connection() as conn:
        return conn.execute(
            "SELECT id, subject, predicate, object, statement, embedding, vector_stale, subject_id, object_id"
            " FROM triples ORDER BY statement").fetchall()


def assert_every_triple_is_embedded_from_its_own_statement(ports) -> None:
    rows = triple_rows(ports)
    expected = ports.embedder.embed([r[4] for r in rows]).vectors
    for row, vector in zip(rows, expected, strict=True):
        _, subject, predicate, obj, statement, stored, stale, _, _ = row
        assert statement == f"{subject} {predicate} {obj}"
        assert not stale, statement
        assert np.allclose(stored.to_numpy(), vector, atol=1e-5), statement


def merged_academies(make_ports, settings):
    settings.concepts = False
    ports = make_ports(FactsExtractor(ACADEMY_FACTS))
    ingest(doc(ACADEMY_TEXT, "a"), ports, settings)
    summary = deduplicate_graph(ports.graph, ports.embedder, dedup_params(settings))
    assert summary.entities_merged == 1
    with ports.db.connection() as conn:
        ((kept_id, kept, aliases),) = conn.execute(
            "SELECT id, name, aliases FROM nodes WHERE name LIKE '%%Academy%%'").fetchall()
    assert (kept, aliases) == (SWEDISH, [ROYAL])  # the one more triples use is canonical
    return ports, kept_id


def test_an_entity_merge_rewrites_the_text_and_vector_of_the_triples_that_named_it(make_ports, settings):
    ports, kept_id = merged_academies(make_ports, settings)
    rows = triple_rows(ports)
    assert len(rows) == 5
    assert not [r[4] for r in rows if ROYAL in " ".join(r[1:5])]  # nothing names the merged-away entity
    by_predicate = {r[2]: r for r in rows}
    founded, visited = by_predicate["founded"], by_predicate["visited"]
    assert (founded[1], founded[4], founded[7]) == (SWEDISH, f"{SWEDISH} founded Nobel Institute", kept_id)
    assert (visited[3], visited[4], visited[8]) == (SWEDISH, f"Marie Curie visited {SWEDISH}", kept_id)
    # The vector is the embedder's vector of the new statement, not of the old one.
    new, old = ports.embedder.embed([founded[4], f"{ROYAL} founded Nobel Institute"]).vectors
    assert np.allclose(founded[5].to_numpy(), new, atol=1e-5) and not np.allclose(founded[5].to_numpy(), old, atol=1e-3)
    assert_every_triple_is_embedded_from_its_own_statement(ports)


def test_reingesting_a_fact_that_names_a_merged_entity_writes_it_with_the_kept_name(make_ports, settings):
    ports, kept_id = merged_academies(make_ports, settings)
    ports.extractor = FactsExtractor([fact(ROYAL, "funded", "Radium Institute")])
    report = ingest(doc(f"The {ROYAL} funded the Radium Institute.", "b"), ports, settings)
    assert report.status.value == "SUCCEEDED"
    funded = next(r for r in triple_rows(ports) if r[2] == "funded")
    assert (funded[1], funded[4], funded[7]) == (SWEDISH, f"{SWEDISH} funded Radium Institute", kept_id)
    with ports.db.connection() as conn:
        assert conn.execute("SELECT count(*) FROM nodes WHERE name = %s", (ROYAL,)).fetchone()[0] == 0
    assert_every_triple_is_embedded_from_its_own_statement(ports)


def test_a_merged_entity_whose_keeper_was_deleted_comes_back_as_itself(make_ports, settings):
    ports, _ = merged_academies(make_ports, settings)
    ports.graph.delete_document("a")
    ports.extractor = FactsExtractor([fact(ROYAL, "funded", "Radium Institute")])
    report = ingest(doc(f"The {ROYAL} funded the Radium Institute.", "b"), ports, settings)
    assert report.status.value == "SUCCEEDED", report.error
    assert [(r[1], r[4]) for r in triple_rows(ports)] == [(ROYAL, f"{ROYAL} funded Radium Institute")]
    assert_every_triple_is_embedded_from_its_own_statement(ports)


class FailsOnce:
    """The embedder, but its next call after `arm()` fails: the stage dies after the merge's commit."""

    def __init__(self, inner):
        self.inner, self.model, self.dimensions, self.armed = inner, inner.model, inner.dimensions, False

    def arm(self) -> None:
        self.armed = True

    def embed(self, texts):
        if self.armed:
            self.armed = False
            raise ConnectionError("embedding endpoint went away")
        return self.inner.embed(texts)


def test_a_dedup_retried_after_its_merge_committed_embeds_the_rewritten_triples_once(make_ports, settings):
    settings.concepts = False
    ports = make_ports(FactsExtractor(ACADEMY_FACTS))
    flaky = FailsOnce(ports.embedder)
    ports.embedder = flaky
    job = start_job(ports, settings, ACADEMY_TEXT, "a", JobOptions(concepts=False, dedup=True))
    for i in job.items:
        extract_chunk(ChunkTask(job_id=job.job_id, index=i), ports.extractor, ports.blobs, ports.ledger)
    request = StageRequest(job_id=job.job_id)
    assert merge_and_store(request, ports.embedder, ports.graph, ports.blobs, ports.ledger).state == "done"
    flaky.arm()
    with pytest.raises(ConnectionError):
        deduplicate(request, ports.graph, ports.ledger, ports.blobs, dedup_params(settings), ports.embedder)
    # The merge is in, its rewritten triples wait for their vectors.
    with ports.db.connection() as conn:
        assert conn.execute("SELECT count(*) FROM triples WHERE vector_stale").fetchone()[0] == 2
    before = table_counts(ports)
    assert deduplicate(request, ports.graph, ports.ledger, ports.blobs, dedup_params(settings),
                       ports.embedder).state == "done"
    assert table_counts(ports) == before  # nothing merged twice, no triple written twice
    assert_every_triple_is_embedded_from_its_own_statement(ports)
    assert ports.ledger.get(job.job_id).counts["dedup"]["entities_merged"] == 1


def test_dedup_of_a_deleted_document_fails_instead_of_merging_over_it(make_ports, settings):
    settings.concepts = False
    ports = make_ports(FactsExtractor(ACADEMY_FACTS))
    report = ingest(doc(ACADEMY_TEXT, "a"), ports, settings)
    ports.graph.delete_document("a")
    with pytest.raises(NotFound, match="deleted"):
        deduplicate(StageRequest(job_id=report.job_id), ports.graph, ports.ledger, ports.blobs,
                    dedup_params(settings), ports.embedder)
    assert set(table_counts(ports).values()) == {0}


# -- a pair found by its vectors merges only when its wordings agree ------------------------------

# Pairs an embedding model may place together: each must stay two triples.
DIFFERENT_FACTS = [
    (fact("The committee", "presented", "Greta"), fact("The committee", "received", "Greta")),  # opposites
    (fact("Greta", "won", "the final"), fact("Greta", "did not win", "the final")),  # negation
    (fact("The flood", "caused", "the famine"), fact("The flood", "was caused by", "the famine")),  # converse
    (fact("The storm", "preceded", "the landslide"), fact("The storm", "followed", "the landslide")),  # converse
]
# True paraphrases: each pair must become one triple.
SAME_FACTS = [
    (fact("Greta", "accepted", "the award", confidence=0.9), fact("Greta", "accepts", "the award", confidence=0.6)),
    (LONG, SHORT),
]


BLIND = {"received": "presented", "did not win": "won", "was caused by": "caused", "followed": "preceded",
         "accepts": "accepted"}


class OppositeBlindEmbedder:
    """The model, but each wording of BLIND embedded as its counterpart: the worst case of a model that
    cannot tell them apart, so that only the wording rule keeps them apart."""

    def __init__(self, inner):
        self.inner, self.model, self.dimensions = inner, inner.model, inner.dimensions

    def embed(self, texts):
        blind = []
        for text in texts:
            for word, counterpart in BLIND.items():
                text = re.sub(rf"\b{word}\b", counterpart, text)
            blind.append(text)
        return self.inner.embed(blind)


def test_opposite_negated_and_converse_facts_never_merge_and_paraphrases_do(make_ports, settings):
    settings.concepts = False
    pairs = DIFFERENT_FACTS + SAME_FACTS
    ports = make_ports(FactsExtractor([f for pair in pairs for f in pair]))
    ports.embedder = OppositeBlindEmbedder(ports.embedder)
    ingest(doc("The committee, Greta, The flood, The storm and Marie Curie.", "a"), ports, settings)
    ids = {f.statement: triple_id(f.type, f.subject, f.predicate, f.object) for pair in pairs for f in pair}
    # Every pair is a candidate by its vectors: what keeps the different ones apart is the rule alone.
    candidates = {frozenset((p.a, p.b)) for p in ports.graph.similar_triples(0.85, 8)}
    assert all(frozenset((ids[a.statement], ids[b.statement])) in candidates for a, b in pairs)

    summary = deduplicate_graph(ports.graph, ports.embedder, dedup_params(settings))
    kept = statements(ports)
    for a, b in DIFFERENT_FACTS:
        assert {a.statement, b.statement} <= kept
    for a, b in SAME_FACTS:
        assert a.statement in kept and b.statement not in kept
    assert (summary.semantic, summary.exact, summary.entities_merged) == (2, 0, 0)
