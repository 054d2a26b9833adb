"""Shared by the synthetic-graph benchmarks (dedup_synthetic, search_synthetic): documents as
merge_and_store would write them, and the schema's indexes dropped before a bulk write and built
again after it from their own definitions."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime

from kg.db import Database
from kg.graph import DocumentRow
from kg.merge import MergedGraph, NodeRow, ProvenanceRow, RelationRow, TripleRow
from kg.models import Chunk
from kg.normalize import document_id

TRIPLES_PER_CHUNK = 250

ChunkText = Callable[[int, list[TripleRow]], str]  # (chunk index, the chunk's triples) -> its text


def synthetic_document(
    source: str, source_type: str, source_date: datetime | None, triple_ids: Sequence[uuid.UUID],
    triples: Mapping[uuid.UUID, TripleRow], nodes: Mapping[uuid.UUID, NodeRow],
    relations: Mapping[uuid.UUID, RelationRow], chunk_text: ChunkText,
) -> tuple[DocumentRow, list[Chunk], MergedGraph]:
    """One document of `triple_ids`, TRIPLES_PER_CHUNK to a chunk: its row, its chunks and its graph."""
    doc_id = document_id(source)
    n_chunks = max(1, -(-len(triple_ids) // TRIPLES_PER_CHUNK))
    merged = MergedGraph()
    in_chunk: list[list[TripleRow]] = [[] for _ in range(n_chunks)]
    for k, t_id in enumerate(triple_ids):
        t = triples[t_id]
        merged.triples[t_id] = t
        for n in (t.subject_id, t.object_id):
            merged.nodes[n] = nodes[n]
        merged.relations[t.relation_id] = relations[t.relation_id]
        chunk = k * n_chunks // max(1, len(triple_ids))
        merged.provenance.append(ProvenanceRow(t_id, chunk, t.confidence))
        in_chunk[chunk].append(t)
    chunks, pos = [], 0
    for i in range(n_chunks):
        text = chunk_text(i, in_chunk[i])
        chunks.append(Chunk(document_id=str(doc_id), index=i, text=text, start_char=pos,
                            end_char=pos + len(text), tokens=len(text.split())))
        pos += len(text) + 1
    full = " ".join(c.text for c in chunks)
    row = DocumentRow(id=doc_id, source=source, source_type=source_type, source_date=source_date,
                      content_hash=hashlib.sha256(full.encode()).hexdigest(), chars=len(full),
                      tokens=sum(c.tokens for c in chunks))
    return row, chunks, merged


def schema_indexes(db: Database, *methods: str) -> dict[str, str]:
    """The schema's indexes whose definition names one of `methods` ("USING hnsw", "gin_trgm_ops"),
    by name, with their definitions."""
    with db.connection() as conn:
        return {name: sql for name, sql in conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'").fetchall()
            if any(m in sql for m in methods)}


@contextmanager
def indexes_built_after(db: Database, indexes: Mapping[str, str], hnsw_options: str | None = None) -> Iterator[None]:
    """`indexes` dropped for the writes in the block and created again after it (much faster than
    maintaining them row by row), HNSW ones `WITH (hnsw_options)` when given; then ANALYZE."""
    with db.connection() as conn:
        for name in indexes:
            conn.execute(f"DROP INDEX {name}")
    yield
    with db.connection() as conn:
        conn.execute("SET maintenance_work_mem = '2GB'")
        conn.execute("SET max_parallel_maintenance_workers = 1")  # leader + 1 worker on 2 cores
        for sql in indexes.values():
            conn.execute(f"{sql} WITH ({hnsw_options})" if hnsw_options and "USING hnsw" in sql else sql)
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")
        conn.autocommit = False
