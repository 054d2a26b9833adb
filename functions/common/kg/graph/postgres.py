"""The graph store on PostgreSQL + pgvector.

A document's whole graph is written in one transaction: each table's rows go through binary COPY
into a temporary table, then one INSERT ... ON CONFLICT per table, so a retried write inserts
nothing twice and a failure anywhere leaves the graph as it was.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence

import numpy as np
import psycopg

from kg.db import Database
from kg.graph import DocumentRow, GraphStats
from kg.merge import MergedGraph
from kg.models import ALL_TRIPLE_TYPES, Chunk

_VECTOR_TABLES = ("nodes", "relations", "triples")


class PostgresGraphStore:
    def __init__(self, db: Database):
        self.db = db

    def stored_vectors(self, ids: Collection[uuid.UUID]) -> dict[uuid.UUID, np.ndarray]:
        if not ids:
            return {}
        wanted = list(ids)
        found: dict[uuid.UUID, np.ndarray] = {}
        with self.db.connection() as conn:
            for table in _VECTOR_TABLES:
                rows = conn.execute(f"SELECT id, embedding FROM {table} WHERE id = ANY(%s)", (wanted,))
                found.update((row_id, vector.to_numpy()) for row_id, vector in rows)
        return found

    def write_document(
        self,
        job_id: str,
        document: DocumentRow,
        chunks: Sequence[Chunk],
        merged: MergedGraph,
        vectors: Mapping[uuid.UUID, np.ndarray],
    ) -> int:
        job = uuid.UUID(job_id)
        doc_id = document.id
        with self.db.connection() as conn, conn.transaction(), conn.cursor() as cur:
            inserted = self._upsert_document(cur, document, job)
            inserted += _copy_insert(
                cur, "chunks",
                ("id", "document_id", "idx", "start_char", "end_char", "tokens", "content_hash", "text"),
                ("text", "uuid", "int4", "int4", "int4", "int4", "text", "text"),
                ((_chunk_id(doc_id, c.index), doc_id, c.index, c.start_char, c.end_char, c.tokens,
                  hashlib.sha256(c.text.encode()).hexdigest(), c.text) for c in chunks),
                "ON CONFLICT (id) DO UPDATE SET start_char = EXCLUDED.start_char, end_char = EXCLUDED.end_char,"
                " tokens = EXCLUDED.tokens, content_hash = EXCLUDED.content_hash, text = EXCLUDED.text"
                " WHERE chunks.content_hash <> EXCLUDED.content_hash",
            )
            inserted += _copy_insert(
                cur, "nodes", ("id", "kind", "name", "normalised", "embedding"),
                ("uuid", "text", "text", "text", "vector"),
                ((n.id, n.kind, n.name, n.normalised, vectors[n.id]) for n in merged.nodes.values()),
                "ON CONFLICT (id) DO NOTHING",
            )
            inserted += _copy_insert(
                cur, "relations", ("id", "name", "normalised", "embedding"),
                ("uuid", "text", "text", "vector"),
                ((r.id, r.name, r.normalised, vectors[r.id]) for r in merged.relations.values()),
                "ON CONFLICT (id) DO NOTHING",
            )
            inserted += _copy_insert(
                cur, "triples",
                ("id", "type", "subject_id", "relation_id", "object_id", "subject", "predicate", "object",
                 "statement", "confidence", "embedding"),
                ("uuid", "text", "uuid", "uuid", "uuid", "text", "text", "text", "text", "float4", "vector"),
                ((t.id, t.type, t.subject_id, t.relation_id, t.object_id, t.subject, t.predicate, t.object,
                  t.statement, t.confidence, vectors[t.id]) for t in merged.triples.values()),
                # Another document may find the same fact with more certainty: keep the best.
                "ON CONFLICT (id) DO UPDATE SET confidence = EXCLUDED.confidence"
                " WHERE triples.confidence < EXCLUDED.confidence",
            )
            inserted += _copy_insert(
                cur, "triple_provenance", ("triple_id", "chunk_id", "document_id", "job_id", "confidence"),
                ("uuid", "text", "uuid", "uuid", "float4"),
                ((p.triple_id, _chunk_id(doc_id, p.chunk_index), doc_id, job, p.confidence)
                 for p in merged.provenance),
                "ON CONFLICT (triple_id, chunk_id) DO NOTHING",
            )
        return inserted

    @staticmethod
    def _upsert_document(cur: psycopg.Cursor, d: DocumentRow, job: uuid.UUID) -> int:
        cur.execute(
            "INSERT INTO documents (id, source, source_type, source_date, content_hash, chars, tokens, job_id)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (id) DO UPDATE SET source_type = EXCLUDED.source_type,"
            "  source_date = EXCLUDED.source_date, content_hash = EXCLUDED.content_hash,"
            "  chars = EXCLUDED.chars, tokens = EXCLUDED.tokens, job_id = EXCLUDED.job_id, updated_at = now()"
            " WHERE (documents.content_hash, documents.source_type, documents.source_date)"
            "  IS DISTINCT FROM (EXCLUDED.content_hash, EXCLUDED.source_type, EXCLUDED.source_date)"
            " RETURNING (xmax = 0)",
            (d.id, d.source, d.source_type, d.source_date, d.content_hash, d.chars, d.tokens, job),
        )
        row = cur.fetchone()
        return int(bool(row and row[0]))

    def stats(self) -> GraphStats:
        with self.db.connection() as conn:
            by_type = dict(conn.execute("SELECT type, count(*) FROM triples GROUP BY type").fetchall())
            kinds = dict(conn.execute("SELECT kind, count(*) FROM nodes GROUP BY kind").fetchall())
            relations, documents, chunks, last_updated = conn.execute(
                "SELECT (SELECT count(*) FROM relations), (SELECT count(*) FROM documents),"
                " (SELECT count(*) FROM chunks), (SELECT max(updated_at) FROM documents)"
            ).fetchone()
        triples_by_type = {t.value: int(by_type.get(t.value, 0)) for t in ALL_TRIPLE_TYPES}
        nodes = sum(kinds.values())
        return GraphStats(
            triples=sum(triples_by_type.values()),
            triples_by_type=triples_by_type,
            entities=int(kinds.get("entity", 0)),
            events=int(kinds.get("event", 0)),
            emotions=int(kinds.get("emotion", 0)),
            relations=relations,
            documents=documents,
            chunks=chunks,
            # Every node, relation and triple row carries its vector (NOT NULL).
            vectors=nodes + relations + sum(triples_by_type.values()),
            last_updated=last_updated,
        )


def _chunk_id(document_id: uuid.UUID, index: int) -> str:
    return f"{document_id}:{index}"


def _copy_insert(
    cur: psycopg.Cursor,
    table: str,
    columns: Sequence[str],
    types: Sequence[str],
    rows: Iterable[tuple],
    on_conflict: str,
) -> int:
    """COPY rows into a temporary twin of `table`, then insert them with `on_conflict`; returns rows inserted."""
    staging = f"staging_{table}"
    cols = ", ".join(columns)
    cur.execute(f"CREATE TEMP TABLE IF NOT EXISTS {staging} (LIKE {table} INCLUDING DEFAULTS) ON COMMIT DROP")
    with cur.copy(f"COPY {staging} ({cols}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(list(types))
        for row in rows:
            copy.write_row(row)
    # xmax = 0 only on a freshly inserted row version: it tells inserts from ON CONFLICT updates.
    cur.execute(
        f"WITH written AS (INSERT INTO {table} ({cols}) SELECT {cols} FROM {staging} {on_conflict}"
        f" RETURNING (xmax = 0) AS fresh) SELECT count(*) FILTER (WHERE fresh) FROM written"
    )
    (fresh,) = cur.fetchone()
    cur.execute(f"DROP TABLE {staging}")
    return int(fresh)
