"""Driving the stage functions one by one, and what a test compares after a retry."""

from __future__ import annotations

import hashlib
import uuid

import psycopg

from kg.blobs import text_key
from kg.ledger import Ledger
from kg.providers import chunking_params
from kg.stages import plan
from kg.stages.contract import JobOptions, JobPlan, PlanRequest
from kg.stages.plan import ChunkingParams

# Every graph table, its key columns and what may differ only by time (left out).
_FINGERPRINT = {
    "documents": "id, source, content_hash, chars, tokens",
    "chunks": "id, document_id, idx, content_hash, start_char, end_char",  # with the span
    "nodes": "id, kind, name, aliases, conceptualized_at IS NOT NULL, embedding::text",
    "relations": "id, name, conceptualized_at IS NOT NULL, embedding::text",
    "triples": "id, type, subject_id, relation_id, object_id, subject, predicate, object, confidence,"
               " embedding::text",
    "triple_provenance": "triple_id, chunk_id, document_id, confidence, grounded",
    "concepts": "id, name, level, embedding::text",
    "conceptualizations": "element_id, concept_id, confidence, context_triples",
    "dedup_merges": "kind, kept_id, merged_id, redirect_to, method",
}


def graph_fingerprint(db) -> dict[str, str]:
    """A digest of every table's rows (without timestamps or serial ids), table by table, so that a
    difference names its table. `db`: a database's URL, or anything with `connection()` (kg.db.Database)."""
    digests = {}
    with psycopg.connect(db) if isinstance(db, str) else db.connection() as conn:
        for table, columns in _FINGERPRINT.items():
            rows = conn.execute(f"SELECT {columns} FROM {table} ORDER BY 1, 2, 3").fetchall()
            digests[table] = f"{len(rows)}:" + hashlib.sha256(repr(rows).encode()).hexdigest()[:16]
    return digests


def ledger_view(ledger: Ledger, job_id: str) -> dict[str, object]:
    """What a retry must leave as it was: status, counts, chunks and the job's LLM account."""
    record = ledger.get(job_id, with_chunks=True)
    return {
        "status": record.status,
        "error": record.error,
        "counts": record.counts,
        "chunks": [(c.index, c.status, c.triples, c.error) for c in record.chunks],
        "chunks_done": record.chunks_done,
        "chunks_failed": record.chunks_failed,
        "llm": record.llm.model_dump(),
        "llm_by_stage": {k: v.model_dump() for k, v in record.llm_by_stage.items()},
    }


def start_job(ports, settings, text: str, source: str = "curie-notes", options: JobOptions | None = None,
              chunking: ChunkingParams | None = None) -> JobPlan:
    """Put the text where plan reads it and plan the job (what the API or the local engine does first)."""
    job_id = str(uuid.uuid4())
    ports.blobs.put(text_key(job_id), text.encode())
    request = PlanRequest(job_id=job_id, source=source, text_key=text_key(job_id), options=options or JobOptions())
    return plan(request, ports.blobs, ports.ledger, chunking or chunking_params(settings))
