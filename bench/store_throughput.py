"""Store throughput: PostgresGraphStore.write_document (binary COPY + INSERT ... ON CONFLICT) against
a naive baseline that inserts the same rows one INSERT statement at a time, in the same run.

A synthetic document: N distinct triples over the four types, found in chunks of a synthetic text
(about a quarter of them found again in the next chunk, as overlapping chunks do), merged by
kg.merge.merge_chunk_results, with seeded random L2-normalised 384-dim float32 vectors.

Each measurement gets its own fresh database on one embedded PostgreSQL started in a temp folder
(deleted at the end). Usage:

    .venv/bin/python bench/store_throughput.py --triples 20000
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import embedded_server, fresh_database, machine, print_machine  # noqa: E402

import kg.graph.postgres as pg_module  # noqa: E402
from kg.blobs import chunk_key, document_key, result_key  # noqa: E402
from kg.blobs.folder import FolderBlobStore  # noqa: E402
from kg.db import Database  # noqa: E402
from kg.graph import DocumentRow  # noqa: E402
from kg.graph.postgres import PostgresGraphStore, _chunk_id  # noqa: E402
from kg.ledger.postgres import PostgresLedger  # noqa: E402
from kg.merge import MergedGraph, merge_chunk_results  # noqa: E402
from kg.models import Chunk, ChunkResult, ChunkStatus, Triple  # noqa: E402
from kg.normalize import document_id  # noqa: E402
from kg.stages.plan import PlannedDocument  # noqa: E402

DIMS = 384
MODEL = "bench-random-384"
TRIPLES_PER_CHUNK = 250  # about what the spaCy extractor finds in a 3000-token chunk of examples/curie.txt
CHUNK_CHARS = 12_000
WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa "
         "quebec romeo sierra tango uniform victor whiskey xray yankee zulu marie pierre paris warsaw radium "
         "polonium nobel prize sorbonne physics chemistry laboratory discovery research").split()
KINDS_BY_TYPE = {
    "ENTITY_ENTITY": ("entity", "entity"),
    "ENTITY_EVENT": ("entity", "event"),
    "EVENT_EVENT": ("event", "event"),
    "EMOTIONAL_CONTEXT": ("entity", "emotion"),
}
TYPE_WEIGHTS = (0.40, 0.43, 0.07, 0.10)  # roughly the mix the spaCy extractor gives on examples/curie.txt


def synthetic(n_triples: int, seed: int):
    """Chunk results, chunks and a document row for n_triples distinct triples."""
    rng = np.random.default_rng(seed)

    def name(prefix: str, i: int) -> str:
        a, b = rng.choice(len(WORDS), 2)
        return f"{WORDS[a].title()} {WORDS[b]} {prefix}{i}"

    pools = {
        "entity": [name("e", i) for i in range(max(4, n_triples // 3))],
        "event": [name("v", i) for i in range(max(4, n_triples // 6))],
        "emotion": [name("m", i) for i in range(max(4, n_triples // 200))],
    }
    predicates = [f"{WORDS[i % len(WORDS)]} {name('r', i).split()[1]} r{i}" for i in range(max(4, n_triples // 20))]
    n_chunks = max(1, -(-n_triples // TRIPLES_PER_CHUNK))
    source = f"bench://synthetic/{n_triples}/{seed}"
    doc_id = document_id(source)
    types = list(KINDS_BY_TYPE)
    seen: set[tuple[str, str, str, str]] = set()
    per_chunk: list[list[Triple]] = [[] for _ in range(n_chunks)]
    while len(seen) < n_triples:
        ttype = types[rng.choice(4, p=TYPE_WEIGHTS)]
        sk, ok = KINDS_BY_TYPE[ttype]
        s = pools[sk][rng.integers(len(pools[sk]))]
        o = pools[ok][rng.integers(len(pools[ok]))]
        p = predicates[rng.integers(len(predicates))]
        key = (ttype, s, p, o)
        if s == o or key in seen:
            continue
        index = len(seen) * n_chunks // n_triples
        seen.add(key)
        found_in = [index] + ([index + 1] if index + 1 < n_chunks and rng.random() < 0.25 else [])
        for c in found_in:
            per_chunk[c].append(Triple(type=ttype, subject=s, predicate=p, object=o, subject_kind=sk,
                                       object_kind=ok, confidence=round(float(rng.uniform(0.4, 1.0)), 3),
                                       chunk_index=c))
    job_id = str(uuid.uuid4())
    results = [ChunkResult(job_id=job_id, chunk_index=i, status=ChunkStatus.SUCCEEDED, triples=ts)
               for i, ts in enumerate(per_chunk)]
    chunks, text_parts, pos = [], [], 0
    for i in range(n_chunks):
        words = [WORDS[w] for w in rng.integers(len(WORDS), size=CHUNK_CHARS // 7)]
        text = " ".join(words)[:CHUNK_CHARS]
        chunks.append(Chunk(document_id=str(doc_id), index=i, text=text, start_char=pos,
                            end_char=pos + len(text), tokens=len(words)))
        text_parts.append(text)
        pos += len(text)
    full = "".join(text_parts)
    document = DocumentRow(id=doc_id, source=source, source_type="text", source_date=None,
                           content_hash=hashlib.sha256(full.encode()).hexdigest(), chars=len(full),
                           tokens=sum(c.tokens for c in chunks))
    return job_id, document, chunks, results


def random_vectors(merged: MergedGraph, seed: int) -> dict[uuid.UUID, np.ndarray]:
    ids = list(merged.embedding_texts())
    rng = np.random.default_rng(seed + 1)
    m = rng.standard_normal((len(ids), DIMS), dtype=np.float32)
    m /= np.linalg.norm(m, axis=1, keepdims=True)
    return dict(zip(ids, m, strict=True))


def row_counts(merged: MergedGraph, chunks) -> dict[str, int]:
    return {"documents": 1, "chunks": len(chunks), "nodes": len(merged.nodes), "relations": len(merged.relations),
            "triples": len(merged.triples), "triple_provenance": len(merged.provenance)}


def table_counts(db: Database) -> dict[str, int]:
    with db.connection() as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("documents", "chunks", "nodes", "relations", "triples", "triple_provenance")}


def naive_write(db: Database, job_id: str, d: DocumentRow, chunks, merged: MergedGraph, vectors) -> int:
    """The same rows and ON CONFLICT clauses as write_document, one INSERT per row, one transaction.

    psycopg's default (text) parameter format, pgvector registered on the connection (the pool's
    configure), each statement sent with cur.execute (no executemany: psycopg 3 pipelines that).
    """
    job = uuid.UUID(job_id)
    doc_id = d.id
    written = 0
    with db.connection() as conn, conn.transaction(), conn.cursor() as cur:
        cur.execute(
            "INSERT INTO documents (id, source, source_type, source_date, content_hash, chars, tokens, job_id)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (id) DO UPDATE SET source_type = EXCLUDED.source_type,"
            "  source_date = EXCLUDED.source_date, content_hash = EXCLUDED.content_hash,"
            "  chars = EXCLUDED.chars, tokens = EXCLUDED.tokens, job_id = EXCLUDED.job_id, updated_at = now()"
            " WHERE (documents.content_hash, documents.source_type, documents.source_date)"
            "  IS DISTINCT FROM (EXCLUDED.content_hash, EXCLUDED.source_type, EXCLUDED.source_date)",
            (d.id, d.source, d.source_type, d.source_date, d.content_hash, d.chars, d.tokens, job),
        )
        written += cur.rowcount
        for c in chunks:
            cur.execute(
                "INSERT INTO chunks (id, document_id, idx, start_char, end_char, tokens, content_hash, text)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (id) DO UPDATE SET start_char = EXCLUDED.start_char, end_char = EXCLUDED.end_char,"
                " tokens = EXCLUDED.tokens, content_hash = EXCLUDED.content_hash, text = EXCLUDED.text"
                " WHERE chunks.content_hash <> EXCLUDED.content_hash",
                (_chunk_id(doc_id, c.index), doc_id, c.index, c.start_char, c.end_char, c.tokens,
                 hashlib.sha256(c.text.encode()).hexdigest(), c.text),
            )
            written += cur.rowcount
        for n in merged.nodes.values():
            cur.execute("INSERT INTO nodes (id, kind, name, normalised, embedding) VALUES (%s, %s, %s, %s, %s)"
                        " ON CONFLICT (id) DO NOTHING", (n.id, n.kind, n.name, n.normalised, vectors[n.id]))
            written += cur.rowcount
        for r in merged.relations.values():
            cur.execute("INSERT INTO relations (id, name, normalised, embedding) VALUES (%s, %s, %s, %s)"
                        " ON CONFLICT (id) DO NOTHING", (r.id, r.name, r.normalised, vectors[r.id]))
            written += cur.rowcount
        for t in merged.triples.values():
            cur.execute(
                "INSERT INTO triples (id, type, subject_id, relation_id, object_id, subject, predicate, object,"
                " statement, confidence, embedding) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (id) DO UPDATE SET confidence = EXCLUDED.confidence"
                " WHERE triples.confidence < EXCLUDED.confidence",
                (t.id, t.type, t.subject_id, t.relation_id, t.object_id, t.subject, t.predicate, t.object,
                 t.statement, t.confidence, vectors[t.id]),
            )
            written += cur.rowcount
        for p in merged.provenance:
            cur.execute(
                "INSERT INTO triple_provenance (triple_id, chunk_id, document_id, job_id, confidence)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (triple_id, chunk_id) DO NOTHING",
                (p.triple_id, _chunk_id(doc_id, p.chunk_index), doc_id, job, p.confidence),
            )
            written += cur.rowcount
    return written


class TableTimer:
    """Times each table's share of write_document by wrapping the module's private helpers in this process only.

    Works with either layout of kg.graph.postgres: `_copy_insert` (COPY + INSERT per table), or
    `_stage` (COPY into staging) and `_insert_staged` (INSERT ... ON CONFLICT from staging).
    """

    HELPERS = {"_copy_insert": "copy+insert", "_stage": "copy", "_insert_staged": "insert"}

    def __init__(self):
        self.originals = {name: getattr(pg_module, name) for name in self.HELPERS if hasattr(pg_module, name)}
        self.seconds: dict[str, float] = {}

    def __enter__(self):
        for name, original in self.originals.items():
            setattr(pg_module, name, self._timed(self.HELPERS[name], original))
        return self

    def _timed(self, what, original):
        def timed(cur, table, *args, **kwargs):
            t0 = time.perf_counter()
            try:
                return original(cur, table, *args, **kwargs)
            finally:
                key = f"{table} {what}"
                self.seconds[key] = self.seconds.get(key, 0.0) + time.perf_counter() - t0

        return timed

    def __exit__(self, *exc):
        for name, original in self.originals.items():
            setattr(pg_module, name, original)


class RandomEmbedder:
    """Seeded random unit vectors: merge_and_store without the cost of a model."""

    model = MODEL
    dimensions = DIMS

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed + 2)
        self.texts = 0

    def embed(self, texts):
        self.texts += len(texts)
        m = self.rng.standard_normal((len(texts), DIMS), dtype=np.float32)
        return m / np.linalg.norm(m, axis=1, keepdims=True)


def run_merge_and_store(server, root: Path, job_id, document, chunks, results, seed: int) -> dict:
    from kg.stages import merge_and_store

    db = Database(fresh_database(server, "mas"), MODEL, DIMS, migrate=True)
    try:
        blobs = FolderBlobStore(root / "blobs")
        ledger = PostgresLedger(db)
        ledger.create_job(job_id, document.source)
        ledger.start_extraction(job_id, str(document.id), len(chunks))
        for c in chunks:
            blobs.put(chunk_key(job_id, c.index), c.model_dump_json().encode())
        for r in results:
            blobs.put(result_key(job_id, r.chunk_index), r.model_dump_json().encode())
        blobs.put(document_key(job_id),
                  PlannedDocument(document=document, chunk_count=len(chunks)).model_dump_json().encode())
        embedder = RandomEmbedder(seed)
        graph = PostgresGraphStore(db)
        original_write = graph.write_document
        write_s = [0.0]

        def timed_write(*a, **k):
            t0 = time.perf_counter()
            try:
                return original_write(*a, **k)
            finally:
                write_s[0] += time.perf_counter() - t0

        graph.write_document = timed_write
        t0 = time.perf_counter()
        summary = merge_and_store(job_id, embedder, graph, blobs, ledger)
        total = time.perf_counter() - t0
        return {"seconds": total, "write_seconds": write_s[0], "triples": summary.triples.total,
                "embedded_texts": embedder.texts}
    finally:
        db.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--triples", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--hnsw-only", action="store_true", help="skip the pair on databases without HNSW indexes")
    ap.add_argument("--no-merge-and-store", action="store_true", help="skip the merge_and_store end-to-end timing")
    args = ap.parse_args()

    t0 = time.perf_counter()
    job_id, document, chunks, results = synthetic(args.triples, args.seed)
    merged = merge_chunk_results(results)
    vectors = random_vectors(merged, args.seed)
    expected = row_counts(merged, chunks)
    total_rows = sum(expected.values())
    print(f"synthetic document built in {time.perf_counter() - t0:.1f}s: {expected} = {total_rows} rows, "
          f"{len(vectors)} vectors of {DIMS} dims")

    with embedded_server() as (server, root):
        facts = None
        measured: dict[str, dict] = {}
        runs = [("copy", True), ("naive", True)]
        if not args.hnsw_only:
            runs += [("copy", False), ("naive", False)]
        for label, hnsw in runs:
            key = label if hnsw else f"{label}-no-hnsw"
            db = Database(fresh_database(server, label), MODEL, DIMS, migrate=True)
            facts = facts or machine(db.url)
            try:
                if not hnsw:
                    # Bench-only variant of the schema: the same tables without their vector indexes,
                    # to show how much of each path is HNSW index maintenance.
                    with db.connection() as conn:
                        for index in ("nodes_embedding", "relations_embedding", "triples_embedding"):
                            conn.execute(f"DROP INDEX {index}")
                        conn.commit()
                if label == "copy":
                    store = PostgresGraphStore(db)
                    with TableTimer() as tt:
                        t = time.perf_counter()
                        inserted = store.write_document(job_id, document, chunks, merged, vectors)
                        seconds = time.perf_counter() - t
                    per_table = dict(tt.seconds)
                    # The same document again: every row conflicts (a re-ingest's write).
                    t = time.perf_counter()
                    again = store.write_document(job_id, document, chunks, merged, vectors)
                    rewrite_s = time.perf_counter() - t
                    measured[key] = {"seconds": seconds, "inserted": inserted, "per_table": per_table,
                                     "rewrite_seconds": rewrite_s, "rewrite_inserted": again}
                else:
                    t = time.perf_counter()
                    inserted = naive_write(db, job_id, document, chunks, merged, vectors)
                    seconds = time.perf_counter() - t
                    measured[key] = {"seconds": seconds, "inserted": inserted}
                counts = table_counts(db)
                if counts != expected:
                    raise SystemExit(f"{key}: tables hold {counts}, expected {expected}")
                print(f"  measured {key}: {seconds:.2f}s", flush=True)
            finally:
                db.close()
        mas = None if args.no_merge_and_store else run_merge_and_store(
            server, root, job_id, document, chunks, results, args.seed)

    print_machine(facts)
    print()
    print("| schema | path | seconds | rows/s | triples/s |")
    print("|---|---|---:|---:|---:|")
    for suffix, schema in (("", "as migrated (HNSW on nodes, relations, triples)"),
                           ("-no-hnsw", "bench variant: HNSW indexes dropped")):
        for label, title in (("copy", "write_document (binary COPY + INSERT ... ON CONFLICT)"),
                             ("naive", "naive: one INSERT per row")):
            if label + suffix not in measured:
                continue
            s = measured[label + suffix]["seconds"]
            print(f"| {schema} | {title} | {s:.2f} | {total_rows / s:,.0f} | {expected['triples'] / s:,.0f} |")
    print()
    for suffix, schema in (("", "as migrated"), ("-no-hnsw", "without HNSW indexes")):
        if "copy" + suffix in measured:
            ratio = measured["naive" + suffix]["seconds"] / measured["copy" + suffix]["seconds"]
            print(f"ratio naive seconds / write_document seconds, {schema}: {ratio:.2f}x")
    c = measured["copy"]
    print(f"rows inserted: write_document {c['inserted']}, naive {measured['naive']['inserted']} (of {total_rows})")
    if "copy-no-hnsw" in measured:
        print("write_document seconds per table without HNSW: "
              + ", ".join(f"{k} {v:.2f}" for k, v in measured["copy-no-hnsw"]["per_table"].items()))
    print("write_document seconds per table (as migrated): "
          + ", ".join(f"{k} {v:.2f}" for k, v in c["per_table"].items()))
    print(f"write_document again, same document (every row conflicts): {c['rewrite_seconds']:.2f}s, "
          f"{c['rewrite_inserted']} rows inserted")
    if mas:
        print(f"merge_and_store end to end (pre-written chunk results, random-vector embedder, fresh db): "
              f"{mas['seconds']:.2f}s, of which write_document {mas['write_seconds']:.2f}s; "
              f"{mas['triples']} triples, {mas['embedded_texts']} texts embedded; "
              f"{mas['triples'] / mas['seconds']:,.0f} triples/s")


if __name__ == "__main__":
    main()
