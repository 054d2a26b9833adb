"""The graph store on PostgreSQL + pgvector.

Every write that changes the graph is one transaction: rows go through binary COPY into
temporary staging tables, then one set-based statement per table (INSERT ... ON CONFLICT,
UPDATE ... FROM, DELETE ... USING). A retried write inserts nothing twice and a failure anywhere
leaves the graph as it was.

Writers are serialised by transaction-scoped advisory locks (docs/DESIGN.md, "Deleting and
replacing documents"): whatever writes a document's rows (its write or replacement, its concepts,
its delete) holds that document's lock, and the graph lock shared; a dedup pass, which may merge
rows of any document, holds the graph lock alone. Locks are always taken graph first, then
document, so two writers never wait for each other in a circle. A write large enough to load in
bulk (its HNSW indexes dropped and built again after) takes the bulk lock third, then its tables
exclusively without queueing for them (_lock_exclusively).
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import threading
import time
import uuid
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Literal, NamedTuple

import numpy as np
import psycopg
from psycopg import sql

from kg.db import Database
from kg.errors import NotFound
from kg.graph import knn
from kg.graph import (
    ConceptCount,
    ConceptMember,
    ConceptMembers,
    DocumentRow,
    DocumentSummary,
    ExportNode,
    ExportTriple,
    FoundTriple,
    GraphEdge,
    GraphNode,
    GraphStats,
    Match,
    MatchKind,
    MatchQuery,
    Neighbourhood,
    NodeAttributes,
    Provenance,
    SimilarPair,
    TripleAttributes,
    TripleFilter,
    TripleMatch,
)
from kg.merge import MergedGraph
from kg.models import (
    ALL_TRIPLE_TYPES,
    Chunk,
    ConceptElement,
    ConceptPhrase,
    ConceptSummary,
    DedupSummary,
    DeleteSummary,
)
from kg.normalize import concept_id, normalise
from kg.settings import DEFAULT_BULK_LOAD_RATIO

logger = logging.getLogger(__name__)

_VECTOR_TABLES = ("nodes", "relations", "triples", "concepts")
# Advisory lock namespaces (the two-int form; kg.db's migration lock is a single bigint, another
# space): the graph lock is (_GRAPH_LOCK, 0), a document's is (_DOCUMENT_LOCK, 31 bits of its id).
_GRAPH_LOCK = 7_251_011
_DOCUMENT_LOCK = 7_251_012
# A write that may load in bulk (write_document) holds (_GRAPH_LOCK, 1) too, after its document's:
# two bulk loads would otherwise each wait for the other's hold on the tables.
_BULK_LOCK = 1
# Bulk loading (write_document): the tables whose HNSW index a large write drops and builds again.
_HNSW_TABLES = ("nodes", "relations", "triples")
# Fewer new rows than this in a table never take the bulk path: the exclusive table lock it needs
# (readers wait for it) buys nothing on a small write. BENCHMARKS.md §11 measures the crossover.
_BULK_MIN_ROWS = 1_000
# How long a bulk load tries for the exclusive table locks (without waiting in the lock queue, see
# _lock_exclusively) before it loads incrementally instead.
_BULK_LOCK_WAIT_S = 30.0
# The memory an HNSW build may use for its in-memory graph (maintenance_work_mem, this transaction
# only): about a vector and its neighbour lists per row, up to this cap.
_BULK_MAX_WORK_MEM_MB = 1024
# A concept with more members than this is searched through the HNSW index (members_near).
_EXACT_MEMBERS = 500

# The settings of a search's transaction (PostgresGraphStore._search_transaction).
_SEARCH_SETTINGS = (
    "SELECT set_config('hnsw.ef_search', %s, true), set_config('hnsw.iterative_scan', 'relaxed_order', true),"
    " set_config('plan_cache_mode', %s, true), set_config('pg_trgm.word_similarity_threshold', '0.6', true)")

# The statements' lexical half (`match` and `lexical_matches`): the node names that contain a query
# term, best covered first (`named`), and the statements naming them, scored by the sum (`stated`).
def _named_nodes(limit: str) -> str:
    return ("SELECT n.id, word_similarity(n.normalised, %(text)s) AS score FROM nodes n"
            f" WHERE n.normalised %%> ANY(%(terms)s) ORDER BY score DESC, n.id LIMIT %({limit})s")


_STATED = ("SELECT t.id, sum(nm.score) AS score FROM named nm"
           " JOIN triples t ON t.subject_id = nm.id OR t.object_id = nm.id GROUP BY t.id")

# What `match` searches for each kind: the table, and the text it names a match by.
_MATCH_TABLES: dict[str, tuple[str, str]] = {
    "node": ("nodes", "name"),
    "relation": ("relations", "name"),
    "concept": ("concepts", "name"),
    "triple": ("triples", "statement"),
}


class PostgresGraphStore:
    """`search_ef` is HNSW's ef_search for search queries: the candidates kept at each step of the
    graph walk, 200 rather than pgvector's 40 for recall: with the statements' index of migration 012
    (ef_construction 200), recall@10 0.96 at 100,000 triples (`bench/search_latency.py` measures
    recall@10 and latency for each setting). A filtered search scans the index further (pgvector's iterative
    scan) until enough rows pass the filter."""

    def __init__(self, db: Database, search_workers: int | None = None, search_ef: int = 200,
                 bulk_load_ratio: float = DEFAULT_BULK_LOAD_RATIO):
        self.db = db
        self.search_workers = max(1, min(search_workers or os.cpu_count() or 1, db.pool.max_size - 1))
        self.search_ef = search_ef
        # write_document loads a table without its HNSW index, and builds the index after, when the
        # rows it adds are at least this many times the rows already there (KG_BULK_LOAD_RATIO).
        self.bulk_load_ratio = bulk_load_ratio
        self._embedding_space: tuple[str, int] | None = None
        self._search_local = threading.local()  # the connection of this thread's search_session

    # -- vectors ---------------------------------------------------------------------------------

    def stored_vectors(self, ids: Collection[uuid.UUID]) -> dict[uuid.UUID, np.ndarray]:
        """Vectors already stored for these ids; an id that deduplication merged away is answered
        with the vector of the row that absorbed it."""
        if not ids:
            return {}
        wanted = list(ids)
        found: dict[uuid.UUID, np.ndarray] = {}
        with self.db.connection() as conn:
            for table in _VECTOR_TABLES:
                rows = conn.execute(
                    f"SELECT x.id, r.embedding FROM unnest(%s::uuid[]) AS x(id)"
                    f" LEFT JOIN dedup_merges m ON m.merged_id = x.id"
                    f" JOIN {table} r ON r.id = coalesce(m.redirect_to, x.id)",
                    (wanted,),
                )
                found.update((row_id, vector.to_numpy()) for row_id, vector in rows)
        return found

    # -- documents -------------------------------------------------------------------------------

    def write_document(
        self,
        job_id: str,
        document: DocumentRow,
        chunks: Sequence[Chunk],
        merged: MergedGraph,
        vectors: Mapping[uuid.UUID, np.ndarray],
    ) -> int:
        """Writes the document's rows in one transaction. When the write adds many rows relative to
        a table's size (bulk_load_ratio), that table's HNSW index is dropped before the insert and
        built again after it, in the same transaction: a failure anywhere rolls the drop back too."""
        job = uuid.UUID(job_id)
        doc_id = document.id
        with self.db.connection() as conn, conn.transaction(), conn.cursor() as cur:
            _lock_document(cur, doc_id)
            may_bulk = _may_bulk_load(cur, self.bulk_load_ratio, {
                "nodes": len(merged.nodes), "relations": len(merged.relations), "triples": len(merged.triples)})
            previous = cur.execute(
                "SELECT content_hash FROM documents WHERE id = %s FOR UPDATE", (doc_id,)
            ).fetchone()
            changed = previous is not None and previous[0] != document.content_hash
            if changed:
                # A new version of the document replaces the old one's contribution: its provenance
                # goes now, and what no other document supports is collected after the new rows are in.
                cur.execute(
                    "CREATE TEMP TABLE retracted ON COMMIT DROP AS"
                    " SELECT DISTINCT triple_id AS id FROM triple_provenance WHERE document_id = %s",
                    (doc_id,),
                )
                cur.execute("DELETE FROM triple_provenance WHERE document_id = %s", (doc_id,))
                cur.execute("DELETE FROM chunks WHERE document_id = %s AND idx >= %s", (doc_id, len(chunks)))

            inserted = self._upsert_document(cur, document, job)
            _stage(cur, "chunks",
                   ("id", "document_id", "idx", "start_char", "end_char", "tokens", "content_hash", "text"),
                   ("text", "uuid", "int4", "int4", "int4", "int4", "text", "text"),
                   ((_chunk_id(doc_id, c.index), doc_id, c.index, c.start_char, c.end_char, c.tokens,
                     hashlib.sha256(c.text.encode()).hexdigest(), c.text) for c in chunks))
            _stage(cur, "nodes", ("id", "kind", "name", "normalised", "embedding"),
                   ("uuid", "text", "text", "text", "vector"),
                   ((n.id, n.kind, n.name, n.normalised, vectors[n.id]) for n in merged.nodes.values()))
            _stage(cur, "relations", ("id", "name", "normalised", "embedding"),
                   ("uuid", "text", "text", "vector"),
                   ((r.id, r.name, r.normalised, vectors[r.id]) for r in merged.relations.values()))
            _stage(cur, "triples",
                   ("id", "type", "subject_id", "relation_id", "object_id", "subject", "predicate", "object",
                    "statement", "confidence", "embedding"),
                   ("uuid", "text", "uuid", "uuid", "uuid", "text", "text", "text", "text", "float4", "vector"),
                   ((t.id, t.type, t.subject_id, t.relation_id, t.object_id, t.subject, t.predicate, t.object,
                     t.statement, t.confidence, vectors[t.id]) for t in merged.triples.values()))
            _stage(cur, "triple_provenance",
                   ("triple_id", "chunk_id", "document_id", "job_id", "confidence", "grounded"),
                   ("uuid", "text", "uuid", "uuid", "float4", "bool"),
                   ((p.triple_id, _chunk_id(doc_id, p.chunk_index), doc_id, job, p.confidence, p.grounded)
                    for p in merged.provenance))
            _follow_merges(cur)
            rebuild = _drop_vector_indexes(cur, self.bulk_load_ratio) if may_bulk else []

            inserted += _insert_staged(
                cur, "chunks", "id",
                "ON CONFLICT (id) DO UPDATE SET start_char = EXCLUDED.start_char, end_char = EXCLUDED.end_char,"
                " tokens = EXCLUDED.tokens, content_hash = EXCLUDED.content_hash, text = EXCLUDED.text"
                " WHERE chunks.content_hash <> EXCLUDED.content_hash",
            )
            inserted += _insert_staged(cur, "nodes", "id", "ON CONFLICT (id) DO NOTHING")
            inserted += _insert_staged(cur, "relations", "id", "ON CONFLICT (id) DO NOTHING")
            # Another document may find the same fact with more certainty: keep the best.
            inserted += _insert_staged(
                cur, "triples", "id",
                "ON CONFLICT (id) DO UPDATE SET confidence = EXCLUDED.confidence"
                " WHERE triples.confidence < EXCLUDED.confidence",
            )
            inserted += _insert_staged(cur, "triple_provenance", "triple_id, chunk_id",
                                       "ON CONFLICT (triple_id, chunk_id) DO NOTHING")
            if changed:
                _collect_unsupported(cur, "retracted")
            if rebuild:
                _build_vector_indexes(cur, rebuild, self.db.dimensions)
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

    def delete_document(self, source: str) -> DeleteSummary:
        """Waits for any writer of the document (its ingest's write, a concepts batch, a dedup pass)
        to commit, then removes what it alone supported; the writer's next step finds it gone."""
        missing = f"no document with source {source!r} (kg jobs lists what was ingested)"
        with self.db.connection() as conn, conn.transaction(), conn.cursor() as cur:
            row = cur.execute("SELECT id FROM documents WHERE source = %s", (source,)).fetchone()
            if row is None:
                raise NotFound(missing)
            _lock_document(cur, row[0])
            # Looked up again under the lock: another delete may have removed it while we waited.
            row = cur.execute("SELECT id FROM documents WHERE source = %s FOR UPDATE", (source,)).fetchone()
            if row is None:
                raise NotFound(missing)
            doc_id = row[0]
            cur.execute(
                "CREATE TEMP TABLE retracted ON COMMIT DROP AS"
                " SELECT DISTINCT triple_id AS id FROM triple_provenance WHERE document_id = %s",
                (doc_id,),
            )
            provenance = cur.execute("DELETE FROM triple_provenance WHERE document_id = %s", (doc_id,)).rowcount
            counts = _collect_unsupported(cur, "retracted")
            chunks = cur.execute("DELETE FROM chunks WHERE document_id = %s", (doc_id,)).rowcount
            cur.execute("DELETE FROM documents WHERE id = %s", (doc_id,))
        return DeleteSummary(source=source, document_id=str(doc_id), provenance=provenance, chunks=chunks, **counts)

    # -- concepts --------------------------------------------------------------------------------

    def elements_to_conceptualize(
        self, document_id: uuid.UUID | None, limit: int, context_size: int = 3
    ) -> list[ConceptElement]:
        """Nodes and relations (of one document's triples, or of the whole graph) not yet conceptualized."""
        scope = (
            "JOIN triple_provenance p ON p.triple_id = t.id AND p.document_id = %(doc)s"
            if document_id is not None else ""
        )
        sql = f"""
            WITH scoped AS (SELECT DISTINCT t.subject_id, t.relation_id, t.object_id FROM triples t {scope}),
                 elements AS (
                    SELECT n.id, n.kind, n.name FROM nodes n
                    WHERE n.conceptualized_at IS NULL
                      AND n.id IN (SELECT subject_id FROM scoped UNION SELECT object_id FROM scoped)
                    UNION ALL
                    SELECT r.id, 'relation', r.name FROM relations r
                    WHERE r.conceptualized_at IS NULL AND r.id IN (SELECT relation_id FROM scoped)
                    ORDER BY 1 LIMIT %(limit)s)
            SELECT e.id, e.kind, e.name, c.statements, c.ids
            FROM elements e CROSS JOIN LATERAL (
                SELECT array_agg(x.statement ORDER BY x.id) AS statements, array_agg(x.id ORDER BY x.id) AS ids
                FROM (SELECT t.id, t.statement FROM (
                        -- one index lookup per role: with OR the planner walks all triples in id order
                        -- for each element until it finds its few (seconds a call on a 10,000-triple graph)
                        (SELECT id, statement FROM triples WHERE subject_id = e.id ORDER BY id LIMIT %(ctx)s)
                        UNION (SELECT id, statement FROM triples WHERE object_id = e.id ORDER BY id LIMIT %(ctx)s)
                        UNION (SELECT id, statement FROM triples WHERE relation_id = e.id ORDER BY id LIMIT %(ctx)s)
                      ) t ORDER BY t.id LIMIT %(ctx)s) x) c"""
        with self.db.connection() as conn:
            rows = conn.execute(sql, {"doc": document_id, "limit": limit, "ctx": context_size}).fetchall()
        return [
            ConceptElement(id=str(i), kind=kind, name=name, context=list(statements or []),
                           context_triples=[str(t) for t in triple_ids or []])
            for i, kind, name, statements, triple_ids in rows
        ]

    def write_concepts(
        self,
        job_id: str | None,
        elements: Sequence[ConceptElement],
        concepts: Sequence[Sequence[ConceptPhrase]],
        vectors: Mapping[uuid.UUID, np.ndarray],
        document_id: uuid.UUID | None = None,
    ) -> tuple[int, int]:
        """Concept nodes, element -> concept edges, and the elements marked done; returns (concepts, edges) new.

        Under `document_id`'s lock, and NotFound when that document was deleted since its elements
        were read (the conceptualizer call runs outside any transaction). Elements gone by now (a
        dedup pass merged them away) get no edge, and a concept no written edge uses is not written."""
        job = uuid.UUID(job_id) if job_id else None
        ids = [uuid.UUID(e.id) for e in elements]
        with self.db.connection() as conn, conn.transaction(), conn.cursor() as cur:
            if document_id is not None:
                _lock_document(cur, document_id)
                _require_document(cur, document_id, "its concepts were being written")
            else:
                cur.execute("SELECT pg_advisory_xact_lock_shared(%s, 0)", (_GRAPH_LOCK,))
            # Held to the commit, so that the elements the edges name cannot go before the edges are in.
            present = {i for (i,) in cur.execute(
                "SELECT id FROM nodes WHERE id = ANY(%s) FOR KEY SHARE", (ids,)).fetchall()}
            present.update(i for (i,) in cur.execute(
                "SELECT id FROM relations WHERE id = ANY(%s) FOR KEY SHARE", (ids,)).fetchall())
            concept_rows: dict[uuid.UUID, tuple] = {}
            edge_rows: dict[tuple[uuid.UUID, uuid.UUID], tuple] = {}
            for element, phrases in zip(elements, concepts, strict=True):
                element_id = uuid.UUID(element.id)
                if element_id not in present:
                    continue
                for phrase in phrases:
                    c_id = concept_id(phrase.level, phrase.phrase)
                    concept_rows.setdefault(
                        c_id, (c_id, phrase.phrase, normalise(phrase.phrase), phrase.level, vectors[c_id]))
                    edge_rows[(element_id, c_id)] = (
                        element_id, "relation" if element.kind == "relation" else "node", c_id, phrase.confidence,
                        [uuid.UUID(t) for t in element.context_triples], job,
                    )
            _stage(cur, "concepts", ("id", "name", "normalised", "level", "embedding", "job_id"),
                   ("uuid", "text", "text", "text", "vector", "uuid"), (row + (job,) for row in concept_rows.values()))
            edge_columns = ("element_id", "element_kind", "concept_id", "confidence", "context_triples", "job_id")
            _stage(cur, "conceptualizations", edge_columns,
                   ("uuid", "text", "uuid", "float4", "uuid[]", "uuid"), edge_rows.values())
            new_concepts = _insert_staged(cur, "concepts", "id", "ON CONFLICT (id) DO NOTHING")
            # Named columns: node_id and relation_id are generated from these.
            new_edges = _insert_staged(cur, "conceptualizations", "element_id, concept_id",
                                       "ON CONFLICT (element_id, concept_id) DO NOTHING", columns=edge_columns)
            for table in ("nodes", "relations"):
                cur.execute(f"UPDATE {table} SET conceptualized_at = now(), conceptualized_by = %s"
                            " WHERE id = ANY(%s) AND conceptualized_at IS NULL", (job, ids))
        return new_concepts, new_edges

    def concept_counts(self, job_id: str) -> ConceptSummary:
        job = uuid.UUID(job_id)
        with self.db.connection() as conn:
            elements, concepts, edges = conn.execute(
                "SELECT (SELECT count(*) FROM nodes WHERE conceptualized_by = %(job)s)"
                " + (SELECT count(*) FROM relations WHERE conceptualized_by = %(job)s),"
                " (SELECT count(*) FROM concepts WHERE job_id = %(job)s),"
                " (SELECT count(*) FROM conceptualizations WHERE job_id = %(job)s)", {"job": job},
            ).fetchone()
        return ConceptSummary(elements=elements, concepts_new=concepts, edges_new=edges)

    # -- deduplication ---------------------------------------------------------------------------

    def similar_triples(
        self, threshold: float, neighbours: int, document_id: uuid.UUID | None = None, part_threshold: float = 0.92,
        search: SearchPath = "auto",
    ) -> list[SimilarPair]:
        """Pairs of triples of the same type whose statement vectors have cosine >= threshold, found
        for each triple in scope (one document's, or all) among its nearest neighbours: by one HNSW
        probe per triple, or for the whole graph in memory (`_memory_pairs`, see `SearchPath`).

        Short statements of one shape ("X participant in Y") look alike to an embedding model
        however different their ends are, so a pair must also say it about the same things: each
        of subject, predicate and object is the same row, or its vector is within `part_threshold`,
        or one name contains the other ("radium" / "the element radium")."""
        scope = "AND t.id IN (SELECT triple_id FROM triple_provenance WHERE document_id = %(doc)s)"

        def alike(table: str, a: str, b: str) -> str:
            return (f"(t.{a} = n.{a} OR EXISTS (SELECT 1 FROM {table} x, {table} y WHERE x.id = t.{a} AND y.id = n.{a}"
                    f" AND ((x.embedding <=> y.embedding) <= %(part_distance)s"
                    f"  OR ' ' || x.normalised || ' ' LIKE '%% ' || y.normalised || ' %%'"
                    f"  OR ' ' || y.normalised || ' ' LIKE '%% ' || x.normalised || ' %%')))")

        columns = "u.id, u.type, u.subject_id, u.relation_id, u.object_id, u.embedding <=> t.embedding AS distance"
        where = f"""n.id <> t.id AND n.type = t.type AND n.distance <= %(max_distance)s {scope if document_id else ""}
              AND {alike("nodes", "subject_id", "")} AND {alike("relations", "relation_id", "")}
              AND {alike("nodes", "object_id", "")}"""
        if _in_memory(document_id, search):
            return self._memory_pairs("SELECT id, embedding FROM triples", "triples",
                                      f"SELECT {columns} FROM triples u WHERE u.id = c.b", where,
                                      threshold, neighbours, part_threshold)
        sql = f"""
            SELECT t.id, n.id, 1 - n.distance
            FROM triples t
            CROSS JOIN LATERAL (
                SELECT {columns} FROM triples u ORDER BY u.embedding <=> t.embedding LIMIT %(k)s) n
            WHERE {where}"""
        return self._pairs(sql, threshold, neighbours, document_id, part_threshold)

    def similar_entities(
        self, threshold: float, neighbours: int, document_id: uuid.UUID | None = None, search: SearchPath = "auto",
    ) -> list[SimilarPair]:
        """Pairs of entity nodes whose name vectors have cosine >= threshold (nearest neighbours: HNSW
        probes, or in memory for the whole graph, as in `similar_triples`)."""
        scope = ("AND t.id IN (SELECT x.subject_id FROM triples x JOIN triple_provenance p ON p.triple_id = x.id"
                 " WHERE p.document_id = %(doc)s UNION SELECT x.object_id FROM triples x"
                 " JOIN triple_provenance p ON p.triple_id = x.id WHERE p.document_id = %(doc)s)")
        where = f"t.kind = 'entity' AND n.id <> t.id AND n.distance <= %(max_distance)s {scope if document_id else ''}"
        if _in_memory(document_id, search):
            return self._memory_pairs(
                "SELECT id, embedding FROM nodes WHERE kind = 'entity'", "nodes",
                "SELECT u.id, u.embedding <=> t.embedding AS distance FROM nodes u"
                " WHERE u.id = c.b AND u.kind = 'entity'",
                where, threshold, neighbours)
        sql = f"""
            SELECT t.id, n.id, 1 - n.distance
            FROM nodes t
            CROSS JOIN LATERAL (
                SELECT u.id, u.embedding <=> t.embedding AS distance
                FROM nodes u WHERE u.kind = 'entity' ORDER BY u.embedding <=> t.embedding LIMIT %(k)s) n
            WHERE {where}"""
        return self._pairs(sql, threshold, neighbours, document_id)

    def _memory_pairs(
        self, vectors_sql: str, table: str, neighbour_sql: str, where: str, threshold: float, neighbours: int,
        part_threshold: float = 1.0,
    ) -> list[SimilarPair]:
        """The whole-graph search without per-row probes: every vector read once, each row's nearest
        neighbours found in memory (kg.graph.knn), then the candidate pairs checked in one statement
        by the same `where` as the per-row probe, so the rules and pgvector's arithmetic decide."""
        with self.db.connection() as conn:
            ids, vectors = knn.read_vectors(conn, vectors_sql, self.db.dimensions)
        queries, found = knn.neighbour_rows(vectors, neighbours, threshold)
        del vectors  # the largest thing this pass holds: free it before the check
        params = {"max_distance": 1 - threshold + 1e-6, "part_distance": 1 - part_threshold + 1e-6}
        with self.db.connection() as conn, conn.transaction(), conn.cursor() as cur:
            cur.execute("CREATE TEMP TABLE dedup_candidates (a uuid NOT NULL, b uuid NOT NULL) ON COMMIT DROP")
            with cur.copy("COPY dedup_candidates (a, b) FROM STDIN (FORMAT BINARY)") as copy:
                copy.write(knn.pairs_payload(ids, queries, found))
            rows = cur.execute(
                f"SELECT t.id, n.id, 1 - n.distance FROM dedup_candidates c JOIN {table} t ON t.id = c.a"
                f" CROSS JOIN LATERAL ({neighbour_sql}) n WHERE {where}", params,
            ).fetchall()
        return _similar_pairs(rows)

    def _pairs(
        self, sql: str, threshold: float, neighbours: int, document_id: uuid.UUID | None, part_threshold: float = 1.0
    ) -> list[SimilarPair]:
        params = {"k": neighbours + 1, "max_distance": 1 - threshold + 1e-6,
                  "part_distance": 1 - part_threshold + 1e-6, "doc": document_id}

        def search(id_range: tuple[uuid.UUID, uuid.UUID | None]) -> list[tuple]:
            low, high = id_range
            with self.db.connection() as conn, conn.transaction():
                # Neighbour lists only need to be good near the top; iterative scans keep filtered
                # queries (entities among all nodes) from coming back short.
                conn.execute(f"SET LOCAL hnsw.ef_search = {max(40, 2 * neighbours)}")
                conn.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
                ranged = sql + " AND t.id >= %(low)s" + ("" if high is None else " AND t.id < %(high)s")
                return conn.execute(ranged, {**params, "low": low, "high": high}).fetchall()

        # One backend runs one lateral kNN loop on one core: a whole-graph pass splits the rows it
        # probes into id ranges, one connection each.
        workers = 1 if document_id is not None else self.search_workers
        bounds = [uuid.UUID(int=i * (1 << 128) // workers) for i in range(workers)]
        ranges = list(zip(bounds, [*bounds[1:], None], strict=True))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="knn") as pool:
            rows = [row for part in pool.map(search, ranges) for row in part]
        return _similar_pairs(rows)

    def triple_attributes(self, ids: Collection[uuid.UUID]) -> dict[uuid.UUID, TripleAttributes]:
        with self.db.connection() as conn:
            rows = conn.execute(
                "SELECT id, confidence, created_at, subject, predicate, object FROM triples WHERE id = ANY(%s)",
                (list(ids),),
            ).fetchall()
        return {i: TripleAttributes(confidence=c, created_at=t, subject=s, predicate=p, object=o)
                for i, c, t, s, p, o in rows}

    def node_attributes(self, ids: Collection[uuid.UUID]) -> dict[uuid.UUID, NodeAttributes]:
        with self.db.connection() as conn:
            rows = conn.execute(
                "SELECT n.id, n.name, (SELECT count(*) FROM triples t WHERE t.subject_id = n.id)"
                " + (SELECT count(*) FROM triples t WHERE t.object_id = n.id)"
                " FROM nodes n WHERE n.id = ANY(%s)", (list(ids),)
            ).fetchall()
        return {i: NodeAttributes(name=name, triples=count) for i, name, count in rows}

    def apply_dedup(
        self,
        job_id: str | None,
        triple_merges: Sequence[tuple[uuid.UUID, uuid.UUID, float]],
        node_merges: Sequence[tuple[uuid.UUID, uuid.UUID, float]],
        document_id: uuid.UUID | None = None,
    ) -> DedupSummary:
        """In one transaction: fold semantically equal triples into their canonical one, merge
        near-identical entities (names kept as aliases; the triples that named a merged entity are
        rewritten with the kept name and marked for a new vector), then fold the triples those
        merges made equal. Every merge is logged in dedup_merges. Each merge is (kept id, merged id,
        similarity). Merges may touch any document's rows, so this holds the graph lock alone; NotFound
        when `document_id` (the job's document) was deleted."""
        job = uuid.UUID(job_id) if job_id else None
        with self.db.connection() as conn, conn.transaction(), conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s, 0)", (_GRAPH_LOCK,))
            if document_id is not None:
                _require_document(cur, document_id, "it was being deduplicated")
            semantic = _merge_triples(cur, triple_merges, "semantic", job)
            entities = _merge_nodes(cur, node_merges, job)
            # Entities merged above can make two triples say the same thing: fold those too.
            cur.execute(
                "SELECT (array_agg(id ORDER BY confidence DESC, created_at, id))[1] AS kept, unnest(array_agg(id))"
                " FROM triples GROUP BY type, subject_id, relation_id, object_id HAVING count(*) > 1"
            )
            exact_pairs = [(kept, merged, 1.0) for kept, merged in cur.fetchall() if kept != merged]
            exact = _merge_triples(cur, exact_pairs, "exact", job)
        return DedupSummary(triples_merged=semantic + exact, semantic=semantic, exact=exact,
                            entities_merged=entities, candidate_pairs=len(triple_merges) + len(node_merges))

    def dedup_counts(self, job_id: str) -> DedupSummary:
        with self.db.connection() as conn:
            rows = conn.execute(
                "SELECT kind, method, count(*) FROM dedup_merges WHERE job_id = %s GROUP BY kind, method",
                (uuid.UUID(job_id),),
            ).fetchall()
        count = {(kind, method): n for kind, method, n in rows}
        exact, semantic = count.get(("triple", "exact"), 0), count.get(("triple", "semantic"), 0)
        return DedupSummary(triples_merged=exact + semantic, exact=exact, semantic=semantic,
                            entities_merged=sum(n for (kind, _), n in count.items() if kind == "node"))

    # -- vectors of rewritten triples ---------------------------------------------------------------

    def stale_triples(self, limit: int, document_id: uuid.UUID | None = None) -> dict[uuid.UUID, str]:
        """Up to `limit` triples whose statement changed after their vector was made (of one
        document's, or all), with the statement their vector must be made from."""
        scope = ("AND t.id IN (SELECT triple_id FROM triple_provenance WHERE document_id = %(doc)s)"
                 if document_id is not None else "")
        with self.db.connection() as conn:
            rows = conn.execute(
                f"SELECT t.id, t.statement FROM triples t WHERE t.vector_stale {scope} ORDER BY t.id LIMIT %(limit)s",
                {"doc": document_id, "limit": limit},
            ).fetchall()
        return dict(rows)

    def write_triple_vectors(self, vectors: Mapping[uuid.UUID, tuple[str, np.ndarray]]) -> int:
        """Store each triple's new vector, made from the statement given with it, and clear its mark;
        a triple whose statement changed again since stays marked. Returns the triples updated."""
        if not vectors:
            return 0
        with self.db.connection() as conn, conn.transaction(), conn.cursor() as cur:
            cur.execute("CREATE TEMP TABLE staging_vectors (id uuid, statement text, embedding vector) ON COMMIT DROP")
            with cur.copy("COPY staging_vectors (id, statement, embedding) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["uuid", "text", "vector"])
                for triple, (statement, vector) in vectors.items():
                    copy.write_row((triple, statement, vector))
            updated = cur.execute(
                "UPDATE triples t SET embedding = s.embedding, vector_stale = false FROM staging_vectors s"
                " WHERE t.id = s.id AND t.statement = s.statement AND t.vector_stale"
            ).rowcount
            cur.execute("DROP TABLE staging_vectors")
        return updated

    def document_exists(self, document_id: uuid.UUID) -> bool:
        with self.db.connection() as conn:
            return conn.execute("SELECT 1 FROM documents WHERE id = %s", (document_id,)).fetchone() is not None

    # -- reading ---------------------------------------------------------------------------------

    def stats(self) -> GraphStats:
        with self.db.connection() as conn:
            by_type = dict(conn.execute("SELECT type, count(*) FROM triples GROUP BY type").fetchall())
            kinds = dict(conn.execute("SELECT kind, count(*) FROM nodes GROUP BY kind").fetchall())
            by_level = dict(conn.execute("SELECT level, count(*) FROM concepts GROUP BY level").fetchall())
            relations, documents, chunks, merges, last_updated = conn.execute(
                "SELECT (SELECT count(*) FROM relations), (SELECT count(*) FROM documents),"
                " (SELECT count(*) FROM chunks), (SELECT count(*) FROM dedup_merges),"
                " greatest((SELECT max(updated_at) FROM documents), (SELECT max(created_at) FROM concepts),"
                "          (SELECT max(merged_at) FROM dedup_merges))"
            ).fetchone()
        triples_by_type = {t.value: int(by_type.get(t.value, 0)) for t in ALL_TRIPLE_TYPES}
        concepts_by_level = {level: int(by_level.get(level, 0)) for level in ("high", "medium", "low")}
        triples = sum(triples_by_type.values())
        concepts = sum(concepts_by_level.values())
        return GraphStats(
            triples=triples,
            triples_by_type=triples_by_type,
            entities=int(kinds.get("entity", 0)),
            events=int(kinds.get("event", 0)),
            emotions=int(kinds.get("emotion", 0)),
            relations=relations,
            concepts=concepts,
            concepts_by_level=concepts_by_level,
            documents=documents,
            chunks=chunks,
            merges=merges,
            # Every node, relation, triple and concept row carries its vector (NOT NULL).
            vectors=sum(kinds.values()) + relations + triples + concepts,
            last_updated=last_updated,
        )

    # -- search ----------------------------------------------------------------------------------

    def embedding_space(self) -> tuple[str, int]:
        if self._embedding_space is None:  # kg_meta never changes once written
            with self.db.connection() as conn:
                meta = dict(conn.execute("SELECT key, value FROM kg_meta").fetchall())
            self._embedding_space = (meta["embedding_model"], int(meta["embedding_dimensions"]))
        return self._embedding_space

    @contextmanager
    def search_session(self) -> Iterator[None]:
        """The searches this thread makes in the block (match, triples_of, members_near) share one
        connection and one read transaction, in pipeline mode: a statement goes out with its
        settings and the results come back in one round trip, where each search alone costs a
        connection from the pool and four (BEGIN, settings, statement, COMMIT). Nested: a no-op."""
        if getattr(self._search_local, "conn", None) is not None:
            yield
            return
        with self.db.connection() as conn, conn.pipeline(), conn.transaction():
            self._search_local.conn = conn
            try:
                yield
            finally:
                self._search_local.conn = None

    @contextmanager
    def _search_transaction(self, ef_search: int = 0, custom_plans: bool = False) -> Iterator[psycopg.Connection]:
        """A read transaction with the search settings: HNSW's ef_search; iterative index scans, so
        that a filter applied after the index (a type, a source) still gets its rows; pg_trgm's word
        similarity threshold at its default (0.6) whatever the server's; with `custom_plans`, plans
        made for the ids sent (a hub relation and a rare one want different plans), not cached ones.
        In pipeline mode, the settings are sent with the statement that follows (one round trip);
        within a search_session, on the session's connection and transaction."""
        settings = (str(max(ef_search, self.search_ef)), "force_custom_plan" if custom_plans else "auto")
        session: psycopg.Connection | None = getattr(self._search_local, "conn", None)
        if session is not None:
            session.execute(_SEARCH_SETTINGS, settings)
            yield session
            return
        with self.db.connection() as conn, conn.pipeline(), conn.transaction():
            conn.execute(_SEARCH_SETTINGS, settings)
            yield conn

    def match(self, kind: MatchKind, query: MatchQuery, lexical: bool = True) -> list[Match]:
        table, name = _MATCH_TABLES[kind]
        params: dict[str, object] = {"vector": query.vector, "limit": query.limit, "text": query.text,
                                     "terms": list(query.terms),
                                     # 0 asks for no floor: a lexical match may point away from the query's vector.
                                     "min_similarity": query.threshold if query.threshold > 0 else -1.0}
        conditions = []
        if kind == "triple":
            conditions, filter_params = _triple_conditions("x", query.filters)
            params.update(filter_params)
        elif kind == "concept" and query.level is not None:
            conditions, params["level"] = ["x.level = %(level)s"], query.level
        where = " AND ".join(conditions) or "true"
        # Vector half: cosine kNN on the table's HNSW index (materialized, so that the iterative
        # scan's relaxed order is sorted again outside). Lexical half, as (id, score, tie-break):
        # names that contain a query term (trigram word similarity, GIN index), those the query
        # covers best first. A triple matches lexically through the names it states: statements
        # naming more of the query's entities first. (Comparing the query with every statement
        # that contains a term costs a trigram comparison each, and a common term is in thousands
        # of statements: BENCHMARKS.md.)
        if kind == "triple":
            lexical_sql = (f"WITH named AS ({_named_nodes('limit')}), stated AS ({_STATED})"
                           f" SELECT x.id, e.score, x.embedding <=> %(vector)b AS tiebreak FROM stated e"
                           f" JOIN triples x ON x.id = e.id WHERE {where}"
                           f" ORDER BY e.score DESC, tiebreak, x.id LIMIT %(limit)s")
        else:
            lexical_sql = (f"SELECT x.id, word_similarity(x.normalised, %(text)s) AS score, 0::float8 AS tiebreak"
                           f" FROM {table} x WHERE x.normalised %%> ANY(%(terms)s) AND {where}"
                           f" ORDER BY score DESC, x.id LIMIT %(limit)s")
        has_lexical = bool(query.terms) and lexical
        sql = f"""
            WITH vec AS MATERIALIZED (
                SELECT x.id, x.embedding <=> %(vector)b AS distance FROM {table} x WHERE {where}
                ORDER BY distance LIMIT %(limit)s),
            lex AS MATERIALIZED ({lexical_sql if has_lexical else
                                  "SELECT NULL::uuid AS id, 0::real AS score, 0::float8 AS tiebreak WHERE false"}),
            ranks AS (
                SELECT id, min(vr) AS vr, min(lr) AS lr FROM (
                    SELECT id, row_number() OVER (ORDER BY distance, id) AS vr, NULL::bigint AS lr FROM vec
                    UNION ALL
                    SELECT id, NULL, row_number() OVER (ORDER BY score DESC, tiebreak, id) FROM lex) r
                GROUP BY id)
            SELECT m.id, x.{name}, m.vr, m.lr,
                   1 - (x.embedding <=> %(vector)b), {'x.level' if kind == 'concept' else 'NULL'}
            FROM ranks m JOIN {table} x ON x.id = m.id
            WHERE 1 - (x.embedding <=> %(vector)b) >= %(min_similarity)s"""
        with self._search_transaction(query.limit) as conn:
            rows = conn.execute(sql, params).fetchall()
        return [Match(id=i, name=name, vector_rank=vr, lexical_rank=lr, similarity=float(sim), level=level)
                for i, name, vr, lr, sim, level in rows]

    def lexical_matches(self, query: MatchQuery, statements: int) -> tuple[list[Match], list[Match]]:
        # One trigram search of the node names serves both halves: the names that match are the
        # nodes' lexical half (the first query.limit of them) and what the statements' half is
        # made from (the first `statements`), as `match` makes each. A statement is named by two
        # nodes at most, so its score (a sum of two) does not depend on the order of the sum.
        if not query.terms:
            return [], []
        conditions, params = _triple_conditions("x", query.filters)
        params.update(vector=query.vector, text=query.text, terms=list(query.terms), nodes=query.limit,
                      statements=statements, named=max(query.limit, statements),
                      min_similarity=query.threshold if query.threshold > 0 else -1.0)
        sql = f"""
            WITH named AS MATERIALIZED ({_named_nodes('named')}),
            node_lex AS MATERIALIZED (
                SELECT id, row_number() OVER (ORDER BY score DESC, id) AS lr FROM named
                ORDER BY score DESC, id LIMIT %(nodes)s),
            stated AS ({_STATED}),
            triple_lex AS MATERIALIZED (
                SELECT x.id, e.score, x.embedding <=> %(vector)b AS tiebreak FROM stated e
                JOIN triples x ON x.id = e.id WHERE {" AND ".join(conditions) or "true"}
                ORDER BY e.score DESC, tiebreak, x.id LIMIT %(statements)s)
            SELECT 'node', x.id, x.name, l.lr, 1 - (x.embedding <=> %(vector)b)
            FROM node_lex l JOIN nodes x ON x.id = l.id
            WHERE 1 - (x.embedding <=> %(vector)b) >= %(min_similarity)s
            UNION ALL
            SELECT 'triple', x.id, x.statement, l.lr, 1 - (x.embedding <=> %(vector)b)
            FROM (SELECT id, row_number() OVER (ORDER BY score DESC, tiebreak, id) AS lr FROM triple_lex) l
            JOIN triples x ON x.id = l.id
            WHERE 1 - (x.embedding <=> %(vector)b) >= %(min_similarity)s"""
        with self._search_transaction(query.limit) as conn:
            rows = conn.execute(sql, params).fetchall()
        found: dict[str, list[Match]] = {"node": [], "triple": []}
        for kind, i, name, lr, sim in rows:
            found[kind].append(Match(id=i, name=name, vector_rank=None, lexical_rank=lr, similarity=float(sim)))
        return found["node"], found["triple"]

    def triples_of(
        self, node_ids: Collection[uuid.UUID], relation_ids: Collection[uuid.UUID], vector: np.ndarray,
        filters: TripleFilter, limit: int,
    ) -> list[TripleMatch]:
        if not node_ids and not relation_ids:
            return []
        conditions, params = _triple_conditions("t", filters)
        ends = []
        if node_ids:
            ends += ["t.subject_id = ANY(%(nodes)s)", "t.object_id = ANY(%(nodes)s)"]
        if relation_ids:
            ends.append("t.relation_id = ANY(%(relations)s)")
        params.update(nodes=list(node_ids), relations=list(relation_ids), vector=vector, limit=limit)
        # The ids are sent as values, so each plan is made for them: a handful of rare nodes is read
        # through the btree indexes and sorted, a hub relation through the HNSW index, filtered.
        sql = f"""
            WITH near AS MATERIALIZED (
                SELECT t.id, t.subject_id, t.relation_id, t.object_id, t.embedding <=> %(vector)b AS distance
                FROM triples t WHERE ({" OR ".join(ends)}) {"".join(" AND " + c for c in conditions)}
                ORDER BY distance LIMIT %(limit)s)
            SELECT id, subject_id, relation_id, object_id, 1 - distance FROM near ORDER BY distance, id"""
        with self._search_transaction(limit, custom_plans=True) as conn:
            rows = conn.execute(sql, params).fetchall()
        return [TripleMatch(id=i, subject_id=s, relation_id=r, object_id=o, similarity=float(sim))
                for i, s, r, o, sim in rows]

    def concept_members(
        self, concept_ids: Collection[uuid.UUID], limit: int, vector: np.ndarray | None = None
    ) -> dict[uuid.UUID, ConceptMembers]:
        if not concept_ids:
            return {}
        order = "distance, e.element_id" if vector is not None else "e.confidence DESC, name, e.element_id"
        distance = "coalesce(n.embedding, r.embedding) <=> %(vector)b" if vector is not None else "NULL::float8"
        sql = f"""
            SELECT c.id, total.count, m.id, m.kind, m.name, m.confidence, 1 - m.distance
            FROM unnest(%(ids)s::uuid[]) AS c(id)
            CROSS JOIN LATERAL (SELECT count(*) FROM conceptualizations e WHERE e.concept_id = c.id) total
            CROSS JOIN LATERAL (
                SELECT e.element_id AS id, coalesce(n.kind, 'relation') AS kind, coalesce(n.name, r.name) AS name,
                       e.confidence, {distance} AS distance
                FROM conceptualizations e
                LEFT JOIN nodes n ON e.element_kind = 'node' AND n.id = e.element_id
                LEFT JOIN relations r ON e.element_kind = 'relation' AND r.id = e.element_id
                WHERE e.concept_id = c.id AND coalesce(n.id, r.id) IS NOT NULL
                ORDER BY {order} LIMIT %(limit)s) m"""
        found: dict[uuid.UUID, ConceptMembers] = {}
        with self.db.connection() as conn:
            for concept, count, member, kind, name, confidence, similarity in conn.execute(
                sql, {"ids": list(concept_ids), "limit": limit, "vector": vector}
            ):
                entry = found.setdefault(concept, ConceptMembers(count=count, members=[]))
                entry.members.append(ConceptMember(id=member, kind=kind, name=name, confidence=confidence,
                                                   similarity=None if similarity is None else float(similarity)))
        return found

    def members_near(
        self, concept_ids: Collection[uuid.UUID], vector: np.ndarray, limit: int
    ) -> list[tuple[uuid.UUID, ConceptMember]]:
        if not concept_ids:
            return []
        concepts = list(concept_ids)
        with self._search_transaction(limit, custom_plans=True) as conn:
            sizes = dict(conn.execute(
                "SELECT concept_id, count(*) FROM conceptualizations WHERE concept_id = ANY(%s) AND element_kind = 'node'"
                " GROUP BY concept_id", (concepts,)).fetchall())
            # A concept of few members: all of them, by exact distance. One of many ("person"): a
            # walk of the nodes' HNSW index with membership as a filter (a subquery per candidate,
            # which the planner cannot turn into a join); it finds k members after about k / (its
            # share of the nodes) candidates, so it is asked for its share of `limit` only.
            # Relations are few: always exact.
            small = [c for c in concepts if sizes.get(c, 0) <= _EXACT_MEMBERS]
            large = [c for c in concepts if sizes.get(c, 0) > _EXACT_MEMBERS]
            share = -(-limit // len(concepts))
            searches = [("relations", "'relation'", "relation", "EXISTS", concepts, limit)]
            if small:
                searches.append(("nodes", "x.kind", "node", "EXISTS", small, limit))
            if large:
                searches.append(("nodes", "x.kind", "node", "FILTER", large, share * len(large)))
            pairs: list[tuple[float, str, str, uuid.UUID, ConceptMember]] = []
            for table, kind, element_kind, how, among, k in searches:
                membership = ("SELECT 1 FROM conceptualizations e WHERE e.concept_id = ANY(%(concepts)s)"
                              f" AND e.element_kind = '{element_kind}' AND e.element_id = x.id")
                condition = f"EXISTS ({membership})" if how == "EXISTS" else f"(SELECT true FROM ({membership} LIMIT 1) m)"
                rows = conn.execute(
                    f"WITH near AS MATERIALIZED ("
                    f" SELECT x.id, {kind} AS kind, x.name, x.embedding <=> %(vector)b AS distance FROM {table} x"
                    f" WHERE {condition} ORDER BY distance LIMIT %(limit)s)"
                    f" SELECT n.id, n.kind, n.name, n.distance, e.concept_id, e.confidence FROM near n"
                    f" JOIN conceptualizations e ON e.element_id = n.id AND e.concept_id = ANY(%(concepts)s)",
                    {"vector": vector, "concepts": among, "limit": k},
                ).fetchall()
                pairs += [(distance, str(element), str(concept), concept, ConceptMember(
                    id=element, kind=member_kind, name=name, confidence=confidence, similarity=1 - distance))
                    for element, member_kind, name, distance, concept, confidence in rows]
        pairs.sort(key=lambda p: p[:3])
        nearest = set(list(dict.fromkeys(p[4].id for p in pairs))[:limit])  # nodes and relations together
        return [(concept, member) for *_, concept, member in pairs if member.id in nearest]

    def found_triples(self, ids: Collection[uuid.UUID], max_provenance: int) -> dict[uuid.UUID, FoundTriple]:
        if not ids:
            return {}
        sql = """
            SELECT t.id, t.type, t.subject, t.predicate, t.object, t.confidence,
                   (SELECT count(*) FROM triple_provenance p WHERE p.triple_id = t.id),
                   p.document_id, p.source, p.source_type, p.source_date, p.idx, p.start_char, p.text
            FROM triples t
            LEFT JOIN LATERAL (
                SELECT p.document_id, d.source, d.source_type, d.source_date, c.idx, c.start_char, c.text
                FROM triple_provenance p JOIN documents d ON d.id = p.document_id JOIN chunks c ON c.id = p.chunk_id
                WHERE p.triple_id = t.id
                ORDER BY d.source_date DESC NULLS LAST, d.source, c.idx LIMIT %(n)s) p ON true
            WHERE t.id = ANY(%(ids)s)"""
        found: dict[uuid.UUID, FoundTriple] = {}
        # Pipeline mode: BEGIN, the statement and COMMIT in one round trip.
        with self.db.connection() as conn, conn.pipeline():
            with conn.transaction():
                cursor = conn.execute(sql, {"ids": list(ids), "n": max_provenance})
            rows = cursor.fetchall()
        for row in rows:
            triple = found.get(row[0])
            if triple is None:
                triple = found[row[0]] = FoundTriple(
                    id=row[0], type=row[1], subject=row[2], predicate=row[3], object=row[4],
                    confidence=row[5], provenance_count=row[6], provenance=[])
            if row[7] is not None:
                triple.provenance.append(Provenance(
                    document_id=row[7], source=row[8], source_type=row[9], source_date=row[10],
                    chunk_index=row[11], chunk_start=row[12], chunk_text=row[13]))
        return found

    def neighbourhood(
        self, node: str, hops: int, limit: int, types: Collection[str] | None = None, kind: str | None = None
    ) -> Neighbourhood:
        with self.db.connection() as conn, conn.transaction():
            centres = self._centres(conn, node, kind)
            distance = {c.id: 0 for c in centres}
            names = {c.id: (c.kind, c.name) for c in centres}
            edges: list[GraphEdge] = []
            frontier = list(distance)
            truncated = False
            type_condition = "AND t.type = ANY(%(types)s)" if types else ""
            for hop in range(1, hops + 1):
                if not frontier:
                    break
                room = limit - len(edges)
                # Breadth first: every triple touching the frontier that an earlier hop did not take,
                # most confident first; one more than there is room for tells that the limit cut.
                rows = conn.execute(
                    f"SELECT t.id, t.type, t.subject_id, t.subject, t.predicate, t.object_id, t.object, t.confidence,"
                    f" s.kind, o.kind FROM triples t JOIN nodes s ON s.id = t.subject_id JOIN nodes o ON o.id = t.object_id"
                    f" WHERE (t.subject_id = ANY(%(frontier)s) OR t.object_id = ANY(%(frontier)s))"
                    f" AND NOT t.id = ANY(%(seen)s) {type_condition}"
                    f" ORDER BY t.confidence DESC, t.id LIMIT %(room)s",
                    {"frontier": frontier, "seen": [e.id for e in edges], "types": list(types or ()),
                     "room": room + 1},
                ).fetchall()
                if len(rows) > room:
                    rows, truncated = rows[:room], True
                frontier = []
                for (t_id, t_type, s_id, subject, predicate, o_id, obj, confidence, s_kind, o_kind) in rows:
                    edges.append(GraphEdge(id=t_id, type=t_type, subject_id=s_id, subject=subject, predicate=predicate,
                                           object_id=o_id, object=obj, confidence=confidence, hop=hop))
                    for end, end_kind, end_name in ((s_id, s_kind, subject), (o_id, o_kind, obj)):
                        names.setdefault(end, (end_kind, end_name))
                        if end not in distance:
                            distance[end] = hop
                            frontier.append(end)
                if truncated:
                    break
            # A node's name is its own row's; the triple keeps the surface form it was found with.
            rows = conn.execute("SELECT id, kind, name FROM nodes WHERE id = ANY(%s)", (list(distance),)).fetchall()
        nodes = sorted((GraphNode(id=i, kind=k, name=n, hops=distance[i]) for i, k, n in rows),
                       key=lambda n: (n.hops, n.name.casefold(), str(n.id)))
        return Neighbourhood(centres=centres, nodes=nodes, triples=edges, truncated=truncated)

    @staticmethod
    def _centres(conn: psycopg.Connection, node: str, kind: str | None) -> list[GraphNode]:
        """The nodes `node` names: by id, or by normalised name (of `kind` when given)."""
        try:
            by_id: uuid.UUID | None = uuid.UUID(node.strip())
        except ValueError:
            by_id = None
        kind_condition = "AND kind = %(kind)s" if kind else ""
        rows = conn.execute(
            f"SELECT id, kind, name FROM nodes WHERE (id = %(id)s OR normalised = %(name)s) {kind_condition}"
            f" ORDER BY kind, id", {"id": by_id, "name": normalise(node), "kind": kind},
        ).fetchall()
        if rows:
            return [GraphNode(id=i, kind=k, name=n, hops=0) for i, k, n in rows]
        near = [name for (name,) in conn.execute(
            "SELECT name FROM nodes WHERE normalised %% %(name)s ORDER BY similarity(normalised, %(name)s) DESC, name"
            " LIMIT 3", {"name": normalise(node)})]
        hint = f"; did you mean {', '.join(repr(n) for n in near)}?" if near else ""
        raise NotFound(f"no {kind or 'node'} named {node!r} in the graph{hint}")

    # -- browsing (the web view) ---------------------------------------------------------------

    def documents(self, limit: int) -> list[DocumentSummary]:
        with self.db.connection() as conn:
            rows = conn.execute(
                "SELECT d.id, d.source, d.source_type, d.source_date, d.chars, d.tokens,"
                " (SELECT count(*) FROM chunks c WHERE c.document_id = d.id),"
                " (SELECT count(DISTINCT p.triple_id) FROM triple_provenance p WHERE p.document_id = d.id),"
                " d.job_id, d.created_at, d.updated_at"
                " FROM documents d ORDER BY d.updated_at DESC, d.source LIMIT %s", (limit,)).fetchall()
        return [DocumentSummary(id=r[0], source=r[1], source_type=r[2], source_date=r[3], chars=r[4], tokens=r[5],
                                chunks=r[6], triples=r[7], job_id=r[8], created_at=r[9], updated_at=r[10])
                for r in rows]

    def node(self, node_id: uuid.UUID) -> ExportNode:
        with self.db.connection() as conn:
            row = conn.execute(
                "SELECT n.id, n.kind, n.name, n.aliases,"
                " coalesce((SELECT array_agg(c.level || ':' || c.name ORDER BY c.level, c.name)"
                "  FROM conceptualizations e JOIN concepts c ON c.id = e.concept_id WHERE e.element_id = n.id), '{}')"
                " FROM nodes n WHERE n.id = %s", (node_id,)).fetchone()
        if row is None:
            raise NotFound(f"no node with id {str(node_id)!r}")
        return ExportNode(id=row[0], kind=row[1], name=row[2], aliases=row[3], concepts=row[4])

    def top_concepts(self, per_level: int) -> list[ConceptCount]:
        with self.db.connection() as conn:
            rows = conn.execute(
                "SELECT id, name, level, elements FROM ("
                " SELECT c.id, c.name, c.level, count(e.element_id) AS elements,"
                "  row_number() OVER (PARTITION BY c.level ORDER BY count(e.element_id) DESC, c.name, c.id) AS place"
                " FROM concepts c LEFT JOIN conceptualizations e ON e.concept_id = c.id"
                " GROUP BY c.id, c.name, c.level) ranked"
                " WHERE place <= %s ORDER BY level, place", (per_level,)).fetchall()
        return [ConceptCount(id=r[0], name=r[1], level=r[2], elements=r[3]) for r in rows]

    def iter_nodes(self) -> Iterator[ExportNode]:
        with self.db.connection() as conn, conn.transaction(), conn.cursor(name="export_nodes") as cur:
            cur.execute(
                "SELECT n.id, n.kind, n.name, n.aliases,"
                " coalesce((SELECT array_agg(c.level || ':' || c.name ORDER BY c.level, c.name)"
                "  FROM conceptualizations e JOIN concepts c ON c.id = e.concept_id WHERE e.element_id = n.id), '{}')"
                " FROM nodes n ORDER BY n.id"
            )
            for node_id, kind, name, aliases, concepts in cur:
                yield ExportNode(id=node_id, kind=kind, name=name, aliases=aliases, concepts=concepts)

    def iter_triples(self) -> Iterator[ExportTriple]:
        with self.db.connection() as conn, conn.transaction(), conn.cursor(name="export_triples") as cur:
            cur.execute(
                "SELECT t.id, t.type, t.subject_id, t.subject, t.predicate, t.object_id, t.object, t.confidence,"
                " array(SELECT DISTINCT d.source FROM triple_provenance p JOIN documents d ON d.id = p.document_id"
                "       WHERE p.triple_id = t.id ORDER BY 1),"
                " array(SELECT p.chunk_id FROM triple_provenance p WHERE p.triple_id = t.id ORDER BY 1),"
                " EXISTS (SELECT 1 FROM triple_provenance p WHERE p.triple_id = t.id AND p.grounded)"
                " FROM triples t ORDER BY t.id"
            )
            for row in cur:
                yield ExportTriple(id=row[0], type=row[1], subject_id=row[2], subject=row[3], predicate=row[4],
                                   object_id=row[5], object=row[6], confidence=row[7], sources=row[8], chunks=row[9],
                                   grounded=row[10])


def _triple_conditions(alias: str, filters: TripleFilter) -> tuple[list[str], dict[str, object]]:
    """SQL conditions on triple `alias` for a search filter, and their parameters."""
    conditions: list[str] = []
    params: dict[str, object] = {}
    if filters.types is not None:
        conditions.append(f"{alias}.type = ANY(%(types)s)")
        params["types"] = list(filters.types)
    documents = []
    for column, name, op, value in (("source", "sources", "= ANY", filters.sources),
                                    ("source_type", "source_types", "= ANY", filters.source_types),
                                    ("source_date", "date_from", ">=", filters.date_from),
                                    ("source_date", "date_to", "<=", filters.date_to)):
        if value is not None:
            documents.append(f"d.{column} {op}(%({name})s)")
            params[name] = list(value) if isinstance(value, tuple) else value
    if documents:
        conditions.append(
            f"EXISTS (SELECT 1 FROM triple_provenance p JOIN documents d ON d.id = p.document_id"
            f" WHERE p.triple_id = {alias}.id AND {' AND '.join(documents)})")
    return conditions, params


def _chunk_id(document_id: uuid.UUID, index: int) -> str:
    return f"{document_id}:{index}"


def _lock_document(cur: psycopg.Cursor, document_id: uuid.UUID) -> None:
    """Hold, to the end of the transaction, the graph lock shared (a dedup pass waits) and the
    document's lock (its other writers and its delete wait). Two documents whose ids share the 31
    bits only wait for each other."""
    cur.execute("SELECT pg_advisory_xact_lock_shared(%s, 0)", (_GRAPH_LOCK,))
    cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", (_DOCUMENT_LOCK, document_id.int & 0x7FFF_FFFF))


def _require_document(cur: psycopg.Cursor, document_id: uuid.UUID, during: str) -> None:
    """NotFound when the document is gone: a job must not write over a deleted document."""
    if cur.execute("SELECT 1 FROM documents WHERE id = %s", (document_id,)).fetchone() is None:
        raise NotFound(f"document {document_id} was deleted while {during}; this job's writes are not kept"
                       " (ingest it again to bring it back)")


def _stage(cur: psycopg.Cursor, table: str, columns: Sequence[str], types: Sequence[str], rows: Iterable[tuple]) -> None:
    """COPY rows into `staging_<table>`, a temporary twin of `table` dropped at commit."""
    cur.execute(f"CREATE TEMP TABLE staging_{table} (LIKE {table} INCLUDING DEFAULTS) ON COMMIT DROP")
    with cur.copy(f"COPY staging_{table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(list(types))
        for row in rows:
            copy.write_row(row)


def _insert_staged(
    cur: psycopg.Cursor, table: str, key: str, on_conflict: str, columns: Sequence[str] | None = None
) -> int:
    """Insert the staged rows (one per key) into `table` (all its columns, or `columns`); returns how
    many rows were new."""
    names = ", ".join(columns) if columns else "*"
    target = f"{table} ({names})" if columns else table
    # xmax = 0 only on a freshly inserted row version: it tells inserts from ON CONFLICT updates.
    cur.execute(
        f"WITH written AS (INSERT INTO {target} SELECT DISTINCT ON ({key}) {names} FROM staging_{table}"
        f" ORDER BY {key} {on_conflict} RETURNING (xmax = 0) AS fresh)"
        f" SELECT count(*) FILTER (WHERE fresh) FROM written"
    )
    (fresh,) = cur.fetchone()
    cur.execute(f"DROP TABLE staging_{table}")
    return int(fresh)


# -- bulk loading (write_document) -----------------------------------------------------------------


class _Rebuild(NamedTuple):
    table: str
    rows: int  # the table's rows once the write is in
    definitions: list[str]  # pg_get_indexdef of its HNSW indexes: the migrations' own definitions


def _may_bulk_load(cur: psycopg.Cursor, ratio: float, rows: Mapping[str, int]) -> bool:
    """Whether a write of `rows` (per table; an upper bound of the new ones) may load a table in
    bulk, going by the statistics' live row counts, which take no lock on the tables; if so, takes
    the bulk lock, so that bulk loads run one at a time. _drop_vector_indexes decides on exact counts."""
    if max(rows.values(), default=0) < _BULK_MIN_ROWS:
        return False
    live = dict(cur.execute(
        "SELECT relname, n_live_tup FROM pg_stat_user_tables WHERE schemaname = current_schema()"
        " AND relname = ANY(%s)", (list(_HNSW_TABLES),)).fetchall())
    if not any(n >= _BULK_MIN_ROWS and n >= ratio * live.get(table, 0) for table, n in rows.items()):
        return False
    cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", (_GRAPH_LOCK, _BULK_LOCK))
    return True


def _drop_vector_indexes(cur: psycopg.Cursor, ratio: float) -> list[_Rebuild]:
    """For each table whose staged rows new to it number at least `ratio` times the rows already
    in it (and at least _BULK_MIN_ROWS): takes the table for this transaction alone and drops its
    HNSW indexes, returning their definitions, read back from the catalog (so they are what the
    migrations made), for _build_vector_indexes. An empty list: load incrementally."""
    chosen: dict[str, int] = {}
    for table in _HNSW_TABLES:
        (new,) = cur.execute(
            f"SELECT count(DISTINCT s.id) FROM staging_{table} s"
            f" WHERE NOT EXISTS (SELECT 1 FROM {table} x WHERE x.id = s.id)").fetchone()
        if new < _BULK_MIN_ROWS:
            continue
        # Counted only as far as the decision needs: a large table is not scanned for a small write.
        limit = math.floor(new / ratio) + 1 if ratio > 0 else None
        (existing,) = cur.execute(f"SELECT count(*) FROM (SELECT 1 FROM {table} LIMIT %s) x", (limit,)).fetchone()
        if new >= ratio * existing:
            chosen[table] = existing + new
    if not chosen or not _lock_exclusively(cur, [t for t in _HNSW_TABLES if t in chosen]):
        return []
    rebuild = []
    for table, rows in chosen.items():
        indexes = cur.execute(
            "SELECT n.nspname, c.relname, pg_get_indexdef(c.oid) FROM pg_index i"
            " JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE i.indrelid = %s::regclass AND a.amname = 'hnsw' ORDER BY c.relname", (table,)).fetchall()
        for schema, name, _ in indexes:
            cur.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(schema, name)))
        if indexes:
            rebuild.append(_Rebuild(table, rows, [definition for _, _, definition in indexes]))
    logger.info("bulk load: %s without their HNSW indexes",
                ", ".join(f"{r.table} ({r.rows} rows after)" for r in rebuild))
    return rebuild


def _lock_exclusively(cur: psycopg.Cursor, tables: Sequence[str]) -> bool:
    """Takes the tables in ACCESS EXCLUSIVE mode (DROP INDEX needs it) for the rest of the
    transaction, trying with NOWAIT until _BULK_LOCK_WAIT_S has passed; False if they stayed busy.

    Never waiting in the lock queue is what keeps this free of deadlocks: readers and writers take
    these tables in different orders (a write: nodes, relations, triples; a delete: triples, nodes,
    relations; a search may read one, then another), so a bulk load that waited for one table while
    holding another could close a circle. Those that come after the lock is taken wait for the
    commit; the other bulk loads wait on the bulk lock."""
    deadline = time.monotonic() + _BULK_LOCK_WAIT_S
    pause = 0.05
    statement = f"LOCK TABLE {', '.join(tables)} IN ACCESS EXCLUSIVE MODE NOWAIT"
    while True:
        try:
            with cur.connection.transaction():  # a savepoint: a failed try keeps none of the locks
                cur.execute(statement)
            return True
        except psycopg.errors.LockNotAvailable:
            if time.monotonic() + pause > deadline:
                logger.info("bulk load: %s stayed in use for %ss; loading incrementally",
                            ", ".join(tables), _BULK_LOCK_WAIT_S)
                return False
            time.sleep(pause)
            pause = min(2 * pause, 1.0)


def _build_vector_indexes(cur: psycopg.Cursor, rebuild: Sequence[_Rebuild], dimensions: int) -> None:
    """Builds the dropped HNSW indexes again from their definitions, with PostgreSQL's parallel
    index build (pgvector builds HNSW indexes in parallel) and, for this transaction only, enough
    maintenance_work_mem for the graph to be built in memory."""
    (work_mem_kb, workers) = cur.execute(
        "SELECT pg_size_bytes(current_setting('maintenance_work_mem')) / 1024,"
        " current_setting('max_parallel_workers')::int").fetchone()
    for r in rebuild:
        # pgvector keeps the graph in memory while it fits: about a vector and its neighbour lists a row.
        wanted_kb = math.ceil(r.rows * (4 * dimensions + 1024) * 1.25 / 1024)
        cur.execute("SELECT set_config('maintenance_work_mem', %s, true),"
                    " set_config('max_parallel_maintenance_workers', %s, true)",
                    (f"{max(work_mem_kb, min(wanted_kb, _BULK_MAX_WORK_MEM_MB * 1024))}kB", str(workers)))
        for definition in r.definitions:
            started = time.perf_counter()
            try:
                with cur.connection.transaction():
                    cur.execute(definition)
            except (psycopg.errors.DiskFull, psycopg.errors.OutOfMemory):
                # A parallel build keeps its graph in shared memory, which a container may keep
                # small (/dev/shm): build it in this backend instead.
                cur.execute("SELECT set_config('max_parallel_maintenance_workers', '0', true)")
                cur.execute(definition)
            logger.info("bulk load: %s built in %.1fs", definition, time.perf_counter() - started)


def _follow_merges(cur: psycopg.Cursor) -> None:
    """Staged rows that deduplication merged away earlier land on the rows that absorbed them, as
    long as those are still there (a delete may have collected them since). A triple that lands on
    a kept entity is written with that entity's name, as the merge rewrote the others, and marked
    for a new vector (its staged one was made from the old wording)."""
    alive = "EXISTS (SELECT 1 FROM triples k WHERE k.id = m.redirect_to)"
    cur.execute(
        f"UPDATE staging_triples s SET id = m.redirect_to FROM dedup_merges m"
        f" WHERE m.kind = 'triple' AND m.merged_id = s.id AND {alive}"
    )
    cur.execute(
        f"UPDATE staging_triple_provenance s SET triple_id = m.redirect_to FROM dedup_merges m"
        f" WHERE m.kind = 'triple' AND m.merged_id = s.triple_id AND {alive}"
    )
    for end, text in (("subject_id", "subject"), ("object_id", "object")):
        cur.execute(
            f"UPDATE staging_triples s SET {end} = k.id, {text} = k.name, vector_stale = true"
            f" FROM dedup_merges m JOIN nodes k ON k.id = m.redirect_to"
            f" WHERE m.kind = 'node' AND m.merged_id = s.{end}"
        )
    # The statement from its parts, as kg.models.Triple.statement makes it.
    cur.execute("UPDATE staging_triples SET statement = subject || ' ' || predicate || ' ' || object"
                " WHERE vector_stale")
    cur.execute(
        "DELETE FROM staging_nodes s USING dedup_merges m WHERE m.kind = 'node' AND m.merged_id = s.id"
        " AND EXISTS (SELECT 1 FROM nodes k WHERE k.id = m.redirect_to)"
    )


def _collect_unsupported(cur: psycopg.Cursor, candidates: str) -> dict[str, int]:
    """Delete the candidate triples no provenance supports any more, then the nodes, relations,
    concept edges and concepts left without anything that uses them. Vectors live on the rows."""
    cur.execute(
        f"CREATE TEMP TABLE gone_triples ON COMMIT DROP AS WITH d AS ("
        f" DELETE FROM triples t USING {candidates} c WHERE t.id = c.id"
        f" AND NOT EXISTS (SELECT 1 FROM triple_provenance p WHERE p.triple_id = t.id)"
        f" RETURNING t.subject_id, t.relation_id, t.object_id) SELECT * FROM d"
    )
    triples = cur.execute("SELECT count(*) FROM gone_triples").fetchone()[0]
    return {"triples": triples, **_collect_unused_elements(cur)}


def _collect_unused_elements(cur: psycopg.Cursor) -> dict[str, int]:
    """The nodes and relations of the triples in `gone_triples` that no triple uses any more go,
    with their concept edges and the concepts left without edges (and so their vectors);
    `gone_triples` is dropped."""
    unused = cur.execute(
        "SELECT n.id FROM nodes n"
        " WHERE n.id IN (SELECT subject_id FROM gone_triples UNION SELECT object_id FROM gone_triples)"
        " AND NOT EXISTS (SELECT 1 FROM triples t WHERE t.subject_id = n.id)"
        " AND NOT EXISTS (SELECT 1 FROM triples t WHERE t.object_id = n.id)"
        " UNION ALL SELECT r.id FROM relations r WHERE r.id IN (SELECT relation_id FROM gone_triples)"
        " AND NOT EXISTS (SELECT 1 FROM triples t WHERE t.relation_id = r.id)"
    ).fetchall()
    cur.execute("DROP TABLE gone_triples")
    gone_elements = [r[0] for r in unused]
    # The edges go first, so that their concepts are known; the elements' foreign keys would
    # cascade to them anyway.
    edges = cur.execute(
        "DELETE FROM conceptualizations WHERE element_id = ANY(%s) RETURNING concept_id", (gone_elements,)
    ).fetchall()
    nodes = cur.execute("DELETE FROM nodes WHERE id = ANY(%s)", (gone_elements,)).rowcount
    relations = cur.execute("DELETE FROM relations WHERE id = ANY(%s)", (gone_elements,)).rowcount
    concepts = cur.execute(
        "DELETE FROM concepts c WHERE c.id = ANY(%s)"
        " AND NOT EXISTS (SELECT 1 FROM conceptualizations e WHERE e.concept_id = c.id)",
        (list({e[0] for e in edges}),),
    ).rowcount
    return {"nodes": nodes, "relations": relations, "concept_edges": len(edges), "concepts": concepts}


def _stage_merges(
    cur: psycopg.Cursor, staged: str, table: str, merges: Sequence[tuple[uuid.UUID, uuid.UUID, float]]
) -> None:
    """(kept, merged, similarity) rows in the temporary table `staged`, keeping only pairs whose two
    rows exist in `table` and whose kept row is not itself being merged."""
    cur.execute(f"CREATE TEMP TABLE {staged} (kept uuid, merged uuid PRIMARY KEY, similarity real) ON COMMIT DROP")
    with cur.copy(f"COPY {staged} FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(["uuid", "uuid", "float4"])
        for row in merges:
            copy.write_row(row)
    cur.execute(
        f"DELETE FROM {staged} m WHERE NOT EXISTS (SELECT 1 FROM {table} r WHERE r.id = m.kept)"
        f" OR NOT EXISTS (SELECT 1 FROM {table} r WHERE r.id = m.merged)"
        f" OR m.kept IN (SELECT merged FROM {staged})"
    )


def _log_merges(
    cur: psycopg.Cursor, staged: str, kind: str, table: str, text_column: str, method: str, job: uuid.UUID | None
) -> None:
    """Log the staged merges in dedup_merges, and point earlier redirects to a merged row at its keeper."""
    cur.execute(
        f"INSERT INTO dedup_merges (kind, kept_id, merged_id, redirect_to, similarity, method, merged_text, job_id)"
        f" SELECT %s, m.kept, m.merged, m.kept, m.similarity, %s, r.{text_column}, %s"
        f" FROM {staged} m JOIN {table} r ON r.id = m.merged"
        f" ON CONFLICT (kind, merged_id) DO UPDATE SET redirect_to = EXCLUDED.redirect_to",
        (kind, method, job),
    )
    cur.execute(
        f"UPDATE dedup_merges d SET redirect_to = m.kept FROM {staged} m WHERE d.kind = %s AND d.redirect_to = m.merged",
        (kind,),
    )


def _merge_triples(
    cur: psycopg.Cursor, merges: Sequence[tuple[uuid.UUID, uuid.UUID, float]], method: str, job: uuid.UUID | None
) -> int:
    """Fold each merged triple into the kept one: provenance moves, the best confidence stays, the
    merge is logged, and the merged row (with its vector) is deleted."""
    if not merges:
        return 0
    _stage_merges(cur, "triple_merge", "triples", merges)
    cur.execute(
        "INSERT INTO triple_provenance (triple_id, chunk_id, document_id, job_id, confidence, grounded)"
        " SELECT m.kept, p.chunk_id, p.document_id, p.job_id, p.confidence, p.grounded"
        " FROM triple_merge m JOIN triple_provenance p ON p.triple_id = m.merged"
        " ON CONFLICT (triple_id, chunk_id) DO NOTHING"
    )
    cur.execute(
        "UPDATE triples k SET confidence = best.confidence FROM ("
        " SELECT m.kept, max(t.confidence) AS confidence FROM triple_merge m JOIN triples t ON t.id = m.merged"
        " GROUP BY m.kept) best WHERE k.id = best.kept AND k.confidence < best.confidence"
    )
    _log_merges(cur, "triple_merge", "triple", "triples", "statement", method, job)
    cur.execute(
        "CREATE TEMP TABLE gone_triples ON COMMIT DROP AS WITH d AS ("
        " DELETE FROM triples t USING triple_merge m WHERE t.id = m.merged"
        " RETURNING t.subject_id, t.relation_id, t.object_id) SELECT * FROM d"
    )
    merged = cur.execute("SELECT count(*) FROM gone_triples").fetchone()[0]
    # An event or entity only the merged wording used ("Marie travelled") has nothing left to say.
    _collect_unused_elements(cur)
    cur.execute("DROP TABLE triple_merge")
    return merged


def _merge_nodes(
    cur: psycopg.Cursor, merges: Sequence[tuple[uuid.UUID, uuid.UUID, float]], job: uuid.UUID | None
) -> int:
    """Merge each merged entity into the kept one: triples re-pointed, name kept as an alias,
    concept edges moved, the merge logged, the merged node deleted."""
    if not merges:
        return 0
    _stage_merges(cur, "node_merge", "nodes", merges)
    # A triple that named a merged entity now names the kept one, in its ids and in its text (its
    # statement is what its vector and the lexical search are made from); its vector is made again
    # by the stage, from the new statement (vector_stale).
    # Two statements, one per end: the second sees the first's rewrite of a triple whose both ends merged.
    for end, statement in (("subject_id", "k.name || ' ' || t.predicate || ' ' || t.object"),
                           ("object_id", "t.subject || ' ' || t.predicate || ' ' || k.name")):
        text = end.removesuffix("_id")
        cur.execute(
            f"UPDATE triples t SET {end} = m.kept, {text} = k.name, statement = {statement}, vector_stale = true"
            f" FROM node_merge m JOIN nodes k ON k.id = m.kept WHERE t.{end} = m.merged"
        )
    cur.execute(
        "WITH extra AS (SELECT m.kept, x.alias FROM node_merge m JOIN nodes n ON n.id = m.merged,"
        "               unnest(array_append(n.aliases, n.name)) AS x(alias))"
        " UPDATE nodes k SET aliases = (SELECT array_agg(DISTINCT a ORDER BY a) FROM"
        "   (SELECT unnest(k.aliases) AS a UNION SELECT e.alias FROM extra e WHERE e.kept = k.id) names)"
        " WHERE k.id IN (SELECT kept FROM node_merge)"
    )
    cur.execute(
        "INSERT INTO conceptualizations (element_id, element_kind, concept_id, confidence, context_triples, job_id)"
        " SELECT m.kept, e.element_kind, e.concept_id, e.confidence, e.context_triples, e.job_id"
        " FROM node_merge m JOIN conceptualizations e ON e.element_id = m.merged ON CONFLICT DO NOTHING"
    )
    cur.execute("DELETE FROM conceptualizations e USING node_merge m WHERE e.element_id = m.merged")
    _log_merges(cur, "node_merge", "node", "nodes", "name", "semantic", job)
    merged = cur.execute("DELETE FROM nodes n USING node_merge m WHERE n.id = m.merged").rowcount
    cur.execute("DROP TABLE node_merge")
    return merged


# -- deduplication's candidate search ----------------------------------------------------------------

# "probe": one HNSW kNN query per row in scope. "memory": read every vector once and search in memory
# (kg.graph.knn); only for the whole graph. "auto": memory for a whole-graph pass when faiss is
# installed (the `local` extra), probes otherwise. A one-document pass always probes: it looks at a
# few hundred rows, and reading and indexing the whole graph's vectors for them would cost more
# (BENCHMARKS.md, "Deduplication in memory").
SearchPath = Literal["auto", "probe", "memory"]


def _in_memory(document_id: uuid.UUID | None, search: SearchPath) -> bool:
    if document_id is not None or search == "probe":
        return False
    return search == "memory" or knn.available()


def _similar_pairs(rows: Iterable[tuple[uuid.UUID, uuid.UUID, float]]) -> list[SimilarPair]:
    """One pair per unordered (a, b), a < b, at the larger similarity either side found it with."""
    pairs: dict[tuple[uuid.UUID, uuid.UUID], float] = {}
    for a, b, similarity in rows:
        key = (a, b) if a < b else (b, a)
        pairs[key] = max(pairs.get(key, 0.0), float(similarity))
    return [SimilarPair(a=a, b=b, similarity=sim) for (a, b), sim in pairs.items()]
