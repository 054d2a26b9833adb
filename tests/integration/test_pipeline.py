"""The local engine end to end on a real PostgreSQL: fail-forward, idempotence, atomicity."""

from __future__ import annotations

import pytest

from kg.documents import decode_document
from kg.engine.local import ingest
from kg.graph.postgres import PostgresGraphStore
from kg.models import ChunkStatus, JobStatus
from kg.stages import extract_chunk, finalize, merge_and_store
from kg.stages.contract import ChunkTask, StageRequest
from tests.integration.conftest import many_paragraphs, table_counts
from tests.support.extractors import ScriptedExtractor
from tests.support.stages import graph_fingerprint, ledger_view, start_job


def document(text: str | None = None, source: str = "curie-notes"):
    return decode_document((text or many_paragraphs()).encode(), source, 10_000_000)


def test_ingest_stores_every_type_with_provenance_and_vectors(make_ports, settings):
    ports = make_ports()
    report = ingest(document(), ports, settings)
    assert report.status is JobStatus.SUCCEEDED
    assert report.chunks > 3
    assert all(report.triples[t] > 0 for t in ("ENTITY_ENTITY", "ENTITY_EVENT", "EVENT_EVENT", "EMOTIONAL_CONTEXT"))
    counts = table_counts(ports)
    assert counts["triples"] == report.triples["total"]
    assert counts["chunks"] == report.chunks
    stats = ports.graph.stats()
    assert stats.vectors == counts["nodes"] + counts["relations"] + counts["triples"] + counts["concepts"]
    with ports.db.connection() as conn:
        orphans = conn.execute(
            "SELECT count(*) FROM triples t WHERE NOT EXISTS"
            " (SELECT 1 FROM triple_provenance p WHERE p.triple_id = t.id)"
        ).fetchone()[0]
        # The same fact is found in several chunks (the paragraphs repeat): one row, many provenance rows.
        assert counts["triple_provenance"] > counts["triples"]
    assert orphans == 0
    job = ports.ledger.get(report.job_id)
    assert job.status is JobStatus.SUCCEEDED and job.progress == 100
    assert [c.status for c in job.chunks] == [ChunkStatus.SUCCEEDED] * report.chunks


def test_reingesting_an_unchanged_document_adds_no_rows_and_embeds_nothing(make_ports, settings):
    ports = make_ports()
    first = ingest(document(), ports, settings)
    before = table_counts(ports)
    second = ingest(document(), ports, settings)
    assert table_counts(ports) == before
    assert first.embeddings.computed > 0
    assert second.embeddings.computed == 0
    assert second.embeddings.reused == first.embeddings.computed
    assert second.triples == first.triples


def test_a_chunk_whose_extraction_raises_leaves_the_job_partial_with_the_rest_stored(make_ports, settings):
    extractor = ScriptedExtractor(fail=lambda chunk, t: chunk.index == 1 and t is None)
    ports = make_ports(extractor)
    report = ingest(document(), ports, settings)
    assert report.status is JobStatus.PARTIAL
    assert report.chunks_failed == 1
    assert report.triples["total"] > 0
    job = ports.ledger.get(report.job_id)
    failed = [c for c in job.chunks if c.status is ChunkStatus.FAILED]
    assert [c.index for c in failed] == [1]
    assert "extractor crashed on chunk 1" in failed[0].error
    assert job.chunks_failed == 1
    with ports.db.connection() as conn:
        chunks_with_facts = {r[0] for r in conn.execute("SELECT DISTINCT c.idx FROM triple_provenance p"
                                                         " JOIN chunks c ON c.id = p.chunk_id")}
    assert 1 not in chunks_with_facts and 0 in chunks_with_facts and 2 in chunks_with_facts


def test_a_failing_type_is_recorded_and_the_other_types_kept(make_ports, settings):
    ports = make_ports(ScriptedExtractor(fail=lambda chunk, t: t is not None and t.value == "EVENT_EVENT"))
    report = ingest(document(), ports, settings)
    assert report.status is JobStatus.PARTIAL
    assert report.triples["EVENT_EVENT"] == 0 and report.triples["ENTITY_ENTITY"] > 0
    assert report.chunks_partial == report.chunks
    job = ports.ledger.get(report.job_id)
    assert all(c.status is ChunkStatus.PARTIAL and "EVENT_EVENT" in c.error for c in job.chunks)


def test_a_job_whose_every_chunk_fails_is_failed_and_writes_no_graph(make_ports, settings):
    ports = make_ports(ScriptedExtractor(fail=lambda chunk, t: True))
    report = ingest(document(), ports, settings)
    assert report.status is JobStatus.FAILED
    assert "nothing to store" in report.error
    assert set(table_counts(ports).values()) == {0}
    assert ports.ledger.get(report.job_id).status is JobStatus.FAILED


def _planned_and_extracted(ports, settings):
    job = start_job(ports, settings, many_paragraphs())
    for i in job.items:
        extract_chunk(ChunkTask(job_id=job.job_id, index=i), ports.extractor, ports.blobs, ports.ledger)
    return job


def test_merge_and_store_retried_for_the_same_job_leaves_the_same_rows(make_ports, settings):
    ports = make_ports()
    job = _planned_and_extracted(ports, settings)
    request = StageRequest(job_id=job.job_id)
    first = merge_and_store(request, ports.embedder, ports.graph, ports.blobs, ports.ledger)
    after_first, fingerprint, ledger = table_counts(ports), graph_fingerprint(ports.db), ledger_view(ports.ledger, job.job_id)
    second = merge_and_store(request, ports.embedder, ports.graph, ports.blobs, ports.ledger)
    assert table_counts(ports) == after_first and sum(after_first.values()) > 0
    assert graph_fingerprint(ports.db) == fingerprint
    assert ledger_view(ports.ledger, job.job_id) == ledger
    assert first == second and first.state == "done"
    assert first.counts["embeddings_computed"] > 0  # the retry reports the plan's work, not its own
    assert finalize(job.job_id, ports.ledger, ports.blobs).status is JobStatus.SUCCEEDED


def test_merge_and_store_is_atomic_when_a_write_fails_midway(make_ports, settings, monkeypatch):
    ports = make_ports()
    ingest(document(text=many_paragraphs(3), source="already-there"), ports, settings)
    before = table_counts(ports)
    job = _planned_and_extracted(ports, settings)

    import kg.graph.postgres as store_module

    real_insert_staged = store_module._insert_staged

    def failing_on_triples(cur, table, *args, **kwargs):
        if table == "triples":  # documents, chunks, nodes and relations are already written by now
            raise RuntimeError("disk full")
        return real_insert_staged(cur, table, *args, **kwargs)

    monkeypatch.setattr(store_module, "_insert_staged", failing_on_triples)
    with pytest.raises(RuntimeError, match="disk full"):
        merge_and_store(StageRequest(job_id=job.job_id), ports.embedder, ports.graph, ports.blobs, ports.ledger)
    assert table_counts(ports) == before


def test_the_graph_store_reuses_vectors_it_already_holds(make_ports, settings):
    ports = make_ports()
    ingest(document(), ports, settings)
    with ports.db.connection() as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM nodes LIMIT 5")]
    stored = PostgresGraphStore(ports.db).stored_vectors(ids)
    assert set(stored) == set(ids)
    assert all(v.shape == (384,) for v in stored.values())
