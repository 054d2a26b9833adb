"""Bulk store (issue 13): a write that adds many rows relative to a table's size drops the table's
HNSW index and builds it again after the insert, in the same transaction; a smaller one inserts into
the index. On the real embedded PostgreSQL: which path a write took is seen in the catalog (a rebuilt
index has a new OID), and what it leaves is compared row by row, vectors included."""

from __future__ import annotations

import hashlib
import threading
import time
import types
import uuid
from collections.abc import Iterator

import numpy as np
import psycopg
import pytest

import kg.graph.postgres as pg_module
from kg.db import Database
from kg.graph import DocumentRow
from kg.graph.postgres import PostgresGraphStore
from kg.merge import merge_chunk_results
from kg.models import Chunk, ChunkResult, ChunkStatus
from kg.normalize import document_id
from tests.support.extractors import fact

DIMENSIONS = 8
MIN_ROWS = 5  # _BULK_MIN_ROWS for these tests, so that documents of tens of triples can take the bulk path
RATIO = 0.5
VECTOR_INDEXES = {"nodes": "nodes_embedding", "relations": "relations_embedding", "triples": "triples_embedding"}
PATIENCE_S = 60  # how long a test waits for another thread to reach a state before failing


@pytest.fixture(autouse=True)
def small_bulk_floor(monkeypatch):
    monkeypatch.setattr(pg_module, "_BULK_MIN_ROWS", MIN_ROWS)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    with Database(database_url, "m", DIMENSIONS, migrate=True) as database:
        yield database


@pytest.fixture
def other_db(new_database) -> Iterator[Database]:
    with Database(new_database(), "m", DIMENSIONS, migrate=True) as database:
        yield database


def vector(text: str) -> np.ndarray:
    v = np.random.default_rng(int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)).standard_normal(DIMENSIONS)
    return (v / np.linalg.norm(v)).astype(np.float32)


def document(source: str, triples: int, relations: int = 12):
    """A one-chunk document of `triples` facts of its own: 2 nodes a fact, `relations` relations shared
    with the other documents; (job id, row, chunks, merged, vectors), as write_document takes them."""
    facts = [fact(f"{source} person {i}", f"relation {i % relations}", f"{source} place {i}") for i in range(triples)]
    text = " ".join(f"{f.subject} {f.predicate} {f.object}." for f in facts)
    doc_id = document_id(source)
    row = DocumentRow(id=doc_id, source=source, source_type="text", source_date=None,
                      content_hash=hashlib.sha256(text.encode()).hexdigest(), chars=len(text), tokens=len(facts))
    chunks = [Chunk(document_id=str(doc_id), index=0, text=text, start_char=0, end_char=len(text), tokens=len(facts))]
    merged = merge_chunk_results([ChunkResult(job_id="j", chunk_index=0, status=ChunkStatus.SUCCEEDED, triples=facts)])
    vectors = {row_id: vector(t) for row_id, t in merged.embedding_texts().items()}
    return str(uuid.uuid4()), row, chunks, merged, vectors


def indexes(db: Database) -> dict[str, tuple[int, str]]:
    """Every HNSW index: name -> (OID, definition)."""
    with db.connection() as conn:
        rows = conn.execute(
            "SELECT c.relname, c.oid::bigint, pg_get_indexdef(c.oid) FROM pg_class c"
            " JOIN pg_am a ON a.oid = c.relam WHERE a.amname = 'hnsw'").fetchall()
    return {name: (oid, definition) for name, oid, definition in rows}


def rebuilt(before: dict[str, tuple[int, str]], after: dict[str, tuple[int, str]]) -> set[str]:
    assert {n: d for n, (_, d) in after.items()} == {n: d for n, (_, d) in before.items()}  # same definitions
    return {name for name in after if after[name][0] != before[name][0]}


def fingerprint(db: Database) -> dict[str, list[str]]:
    """Every row of the graph's tables, vectors as their text, without the times rows were written."""
    out = {}
    with db.connection() as conn:
        for table in ("documents", "chunks", "nodes", "relations", "triples", "triple_provenance"):
            rows = conn.execute(f"SELECT to_jsonb(t) FROM {table} t").fetchall()
            out[table] = sorted(str({k: v for k, v in r[0].items() if not k.endswith("_at")}) for r in rows)
    return out


def test_bulk_path_above_the_ratio_and_not_below(db: Database):
    store = PostgresGraphStore(db, bulk_load_ratio=RATIO)
    first = indexes(db)
    assert set(first) >= set(VECTOR_INDEXES.values())
    store.write_document(*document("a", 40))  # into an empty graph: every table above the ratio
    second = indexes(db)
    assert rebuilt(first, second) == set(VECTOR_INDEXES.values())
    assert "ef_construction='200'" in second["triples_embedding"][1]  # migration 012's definition, kept

    store.write_document(*document("b", 10))  # 10 new triples, 20 nodes into 40 and 80: below 0.5
    third = indexes(db)
    assert rebuilt(second, third) == set()

    store.write_document(*document("c", 30))  # 30 triples into 50, 60 nodes into 100: above
    # The 12 relations are shared: none is new, so their index stays as it is.
    assert rebuilt(third, indexes(db)) == {"nodes_embedding", "triples_embedding"}
    stats = store.stats()
    assert (stats.triples, stats.documents, stats.relations) == (80, 3, 12)


def test_a_bulk_load_leaves_what_an_incremental_load_leaves(db: Database, other_db: Database):
    bulk, incremental = PostgresGraphStore(db, bulk_load_ratio=RATIO), PostgresGraphStore(other_db, bulk_load_ratio=1e9)
    base, big = document("base", 20), document("big", 60, relations=40)
    for store in (bulk, incremental):
        store.write_document(*base)
    before_bulk, before_incremental = indexes(db), indexes(other_db)
    bulk.write_document(*big)
    incremental.write_document(*big)
    assert rebuilt(before_bulk, indexes(db)) == set(VECTOR_INDEXES.values())
    assert rebuilt(before_incremental, indexes(other_db)) == set()
    a, b = fingerprint(db), fingerprint(other_db)
    assert len(a["triples"]) == 80 and len(a["triple_provenance"]) == 80
    assert a == b
    # The rebuilt index serves searches: a stored vector finds its own triple through it.
    some = next(iter(big[3].triples))
    with db.connection() as conn, conn.transaction():
        conn.execute("SET LOCAL enable_seqscan = off")
        plan = "\n".join(r[0] for r in conn.execute(
            "EXPLAIN SELECT id FROM triples ORDER BY embedding <=> %s LIMIT 1", (big[4][some],)).fetchall())
        found = conn.execute("SELECT id FROM triples ORDER BY embedding <=> %s LIMIT 1", (big[4][some],)).fetchone()
    assert "triples_embedding" in plan and found[0] == some


def test_a_failure_after_the_indexes_are_dropped_leaves_them_and_the_graph_as_they_were(db: Database, monkeypatch):
    store = PostgresGraphStore(db, bulk_load_ratio=RATIO)
    store.write_document(*document("base", 10))
    before, graph = indexes(db), fingerprint(db)
    seen_without: list[set[str]] = []

    def fail_after_the_drop(cur, rebuild, dimensions):
        names = {r[0] for r in cur.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_am a ON a.oid = c.relam WHERE a.amname = 'hnsw'").fetchall()}
        seen_without.append(set(VECTOR_INDEXES.values()) - names)
        raise RuntimeError("injected after the drop")

    monkeypatch.setattr(pg_module, "_build_vector_indexes", fail_after_the_drop)
    with pytest.raises(RuntimeError, match="injected"):
        store.write_document(*document("big", 60, relations=40))
    assert seen_without == [set(VECTOR_INDEXES.values())]  # the failure came with all three dropped
    assert indexes(db) == before  # the same indexes, the same OIDs: the drop was rolled back
    assert fingerprint(db) == graph


def test_a_connection_lost_after_the_drop_leaves_the_indexes(db: Database, monkeypatch):
    """The process or its connection dying mid-load: the server rolls the transaction back."""
    store = PostgresGraphStore(db, bulk_load_ratio=RATIO)
    store.write_document(*document("base", 10))
    before, graph = indexes(db), fingerprint(db)

    def terminated(cur, rebuild, dimensions):
        with psycopg.connect(db.url, autocommit=True) as other:
            other.execute("SELECT pg_terminate_backend(%s)", (cur.connection.info.backend_pid,))
        cur.execute("SELECT 1")

    monkeypatch.setattr(pg_module, "_build_vector_indexes", terminated)
    with pytest.raises(psycopg.OperationalError):
        store.write_document(*document("big", 60, relations=40))
    assert indexes(db) == before
    assert fingerprint(db) == graph


class PausedBuild:
    """Holds a bulk load after its drop, before its build, until released."""

    def __init__(self, monkeypatch):
        self.dropped, self.release = threading.Event(), threading.Event()
        real = pg_module._build_vector_indexes

        def paused(cur, rebuild, dimensions):
            if not self.dropped.is_set():  # only the first bulk load pauses
                self.pid = cur.connection.info.backend_pid
                self.dropped.set()
                assert self.release.wait(PATIENCE_S)
            real(cur, rebuild, dimensions)

        monkeypatch.setattr(pg_module, "_build_vector_indexes", paused)


class Writer(threading.Thread):
    def __init__(self, store: PostgresGraphStore, doc):
        super().__init__(daemon=True)
        self.store, self.doc, self.error = store, doc, None

    def run(self):
        try:
            self.store.write_document(*self.doc)
        except BaseException as e:  # noqa: BLE001 - reported by the test
            self.error = e


def waiting(db: Database, condition: str) -> bool:
    """Whether a backend of this database (other than ours) matches `condition` in pg_stat_activity a
    joined with pg_locks l."""
    with psycopg.connect(db.url, autocommit=True) as conn:
        return conn.execute(
            "SELECT 1 FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid"
            f" WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() AND {condition}"
        ).fetchone() is not None


def wait_until(predicate, what: str) -> None:
    deadline = time.monotonic() + PATIENCE_S
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"never: {what}")
        time.sleep(0.05)


def wait_for(db: Database, condition: str) -> None:
    wait_until(lambda: waiting(db, condition), condition)


def test_an_incremental_writer_waits_for_a_bulk_load_and_both_land(db: Database, monkeypatch):
    store = PostgresGraphStore(db, bulk_load_ratio=RATIO)
    store.write_document(*document("base", 20))
    before = indexes(db)
    pause = PausedBuild(monkeypatch)
    bulk = Writer(store, document("big", 60, relations=40))
    bulk.start()
    assert pause.dropped.wait(PATIENCE_S)
    small = Writer(store, document("small", 2))  # too small to try the bulk path
    small.start()
    # The incremental writer waits in the lock queue for a table the bulk load holds.
    wait_for(db, f"NOT l.granted AND l.locktype = 'relation' AND a.pid <> {pause.pid}")
    assert small.is_alive()
    pause.release.set()
    bulk.join(PATIENCE_S)
    small.join(PATIENCE_S)
    assert (bulk.error, small.error) == (None, None)
    assert rebuilt(before, indexes(db)) == set(VECTOR_INDEXES.values())
    stats = store.stats()
    assert (stats.documents, stats.triples) == (3, 82)


def test_two_bulk_loads_at_once_both_land(db: Database, monkeypatch):
    store = PostgresGraphStore(db, bulk_load_ratio=RATIO)
    before = indexes(db)
    pause = PausedBuild(monkeypatch)
    first = Writer(store, document("first", 40, relations=30))
    first.start()
    assert pause.dropped.wait(PATIENCE_S)
    second = Writer(store, document("second", 60, relations=40))
    second.start()
    wait_for(db, "NOT l.granted AND l.locktype = 'advisory'")  # on the bulk lock
    pause.release.set()
    first.join(PATIENCE_S)
    second.join(PATIENCE_S)
    assert (first.error, second.error) == (None, None)
    assert set(indexes(db)) == set(before)
    assert rebuilt(before, indexes(db)) == set(VECTOR_INDEXES.values())
    assert (store.stats().documents, store.stats().triples) == (2, 100)


def _signalling_time(event: threading.Event):
    def sleep(seconds):
        event.set()
        time.sleep(seconds)

    return types.SimpleNamespace(monotonic=time.monotonic, perf_counter=time.perf_counter, sleep=sleep)


def test_a_bulk_load_does_not_wait_holding_a_table_another_transaction_needs(db: Database, monkeypatch):
    """A reader holding triples, then wanting nodes, while the bulk load wants all three tables: a
    load that took nodes and waited for triples would deadlock with it. The load waits holding none
    of them, so the reader goes on, and the load gets its tables after the reader's commit."""
    store = PostgresGraphStore(db, bulk_load_ratio=RATIO)
    store.write_document(*document("base", 10))
    before = indexes(db)
    tried = threading.Event()
    monkeypatch.setattr(pg_module, "time", _signalling_time(tried))
    with psycopg.connect(db.url) as reader:
        reader.execute("SELECT count(*) FROM triples").fetchone()
        bulk = Writer(store, document("big", 60, relations=40))
        bulk.start()
        # Its try has failed (the reader holds triples), or it waits in the queue holding nodes.
        wait_until(lambda: tried.is_set() or waiting(db, "NOT l.granted"), "the bulk load tried the tables")
        assert reader.execute("SELECT count(*) FROM nodes").fetchone()[0] == 20
        reader.commit()
    bulk.join(PATIENCE_S)
    assert bulk.error is None
    assert rebuilt(before, indexes(db)) == set(VECTOR_INDEXES.values())


def test_a_bulk_load_whose_tables_stay_busy_loads_incrementally(db: Database, monkeypatch):
    store = PostgresGraphStore(db, bulk_load_ratio=RATIO)
    store.write_document(*document("base", 10))
    before = indexes(db)
    monkeypatch.setattr(pg_module, "_BULK_LOCK_WAIT_S", 0.2)
    with psycopg.connect(db.url) as reader:
        reader.execute("SELECT count(*) FROM triples").fetchone()  # held to the end of this block
        store.write_document(*document("big", 60, relations=40))
        reader.commit()
    assert rebuilt(before, indexes(db)) == set()
    assert store.stats().triples == 70
