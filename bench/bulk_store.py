"""Bulk store: write_document loading a table without its HNSW index and building the index after,
against inserting into the index row by row (incremental), for batches of several sizes into graphs
of several sizes; the crossover ratio (new rows / rows already there) that KG_BULK_LOAD_RATIO defaults to.

Then, in the same run: a 100,000-triple load into an empty graph through write_document (which takes
the bulk path) against one INSERT per row (bench/store_throughput.py's naive path, HNSW as migrated);
an incremental store into that graph (the bulk path turned off) against the HNSW insert floor (the same
vectors inserted into tables that hold only the vector and its index, as many rows there already) and
against the same store with no HNSW index present; recall@10 of the rebuilt statements' index against
the incrementally built one.

Documents are bench/store_throughput.py's synthetic ones (random unit 384-dim vectors, seeded). Each
measurement gets its own database, cloned (CREATE DATABASE ... TEMPLATE) from one holding the graph
it starts from, on one embedded PostgreSQL started in a temp folder. Usage:

    .venv/bin/python bench/bulk_store.py --graphs 4000 16000 --ratios 0.03 0.1 0.25 0.5 1 2 --big 100000
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import embedded_server, fresh_database, machine, print_machine  # noqa: E402
from store_throughput import DIMS, MODEL, naive_write, random_vectors, synthetic  # noqa: E402

import kg.graph.postgres as pg_module  # noqa: E402
from kg.db import Database  # noqa: E402
from kg.graph.postgres import PostgresGraphStore  # noqa: E402
from kg.merge import merge_chunk_results  # noqa: E402
from kg.settings import DEFAULT_BULK_LOAD_RATIO  # noqa: E402

NEVER = math.inf  # bulk_load_ratio that never takes the bulk path
ALWAYS = 0.0  # ... that always does (with _BULK_MIN_ROWS set to 0 below)
VECTOR_TABLES = ("nodes", "relations", "triples")


class Doc:
    """One synthetic document, merged, with its vectors."""

    def __init__(self, triples: int, seed: int):
        self.job_id, self.document, self.chunks, results = synthetic(triples, seed)
        self.merged = merge_chunk_results(results)
        self.vectors = random_vectors(self.merged, seed)
        self.rows = {"nodes": len(self.merged.nodes), "relations": len(self.merged.relations),
                     "triples": len(self.merged.triples)}
        self.total_rows = (1 + len(self.chunks) + sum(self.rows.values()) + len(self.merged.provenance))


def write(url: str, doc: Doc, ratio: float) -> tuple[float, set[str]]:
    """Seconds write_document took, and which tables' HNSW index it built again (their OIDs changed)."""
    db = Database(url, MODEL, DIMS)
    try:
        before = index_oids(db)
        t = time.perf_counter()
        PostgresGraphStore(db, bulk_load_ratio=ratio).write_document(
            doc.job_id, doc.document, doc.chunks, doc.merged, doc.vectors)
        seconds = time.perf_counter() - t
        after = index_oids(db)
        return seconds, {name for name, oid in after.items() if before.get(name) != oid}
    finally:
        db.close()


def index_oids(db: Database) -> dict[str, int]:
    with db.connection() as conn:
        return dict(conn.execute(
            "SELECT c.relname, c.oid::bigint FROM pg_class c JOIN pg_am a ON a.oid = c.relam WHERE a.amname = 'hnsw'"
        ).fetchall())


def clone(server, template: str, label: str) -> str:
    name = f"bench_{label}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return server.get_uri(database=name)


def db_name(url: str) -> str:
    return psycopg.conninfo.conninfo_to_dict(url)["dbname"]


def drop(server, url: str) -> None:
    name = db_name(url)
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def base_graph(server, triples: int, seed: int) -> tuple[str, str]:
    """A migrated database holding one document of `triples` triples (loaded in bulk); (url, name)."""
    url = fresh_database(server, f"base{triples}")
    Database(url, MODEL, DIMS, migrate=True).close()
    if triples:
        write(url, Doc(triples, seed), ALWAYS)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return url, db_name(url)


def crossover(cells: list[dict]) -> float | None:
    """Where bulk becomes faster than incremental, as new triples / existing triples: the geometric
    interpolation between the last batch where incremental won and the first where bulk won."""
    cells = sorted(cells, key=lambda c: c["ratio"])
    for a, b in zip(cells, cells[1:], strict=False):
        da, db = math.log(a["bulk"] / a["incremental"]), math.log(b["bulk"] / b["incremental"])
        if da > 0 >= db:
            f = da / (da - db)
            return math.exp(math.log(a["ratio"]) + f * (math.log(b["ratio"]) - math.log(a["ratio"])))
    if cells and cells[0]["bulk"] <= cells[0]["incremental"]:
        return 0.0  # bulk won at every batch: at or below the smallest ratio measured
    return None


def recall_at_10(url: str, queries: np.ndarray, ef_search: int = 200) -> float:
    """recall@10 of the statements' HNSW index (at the store's ef_search) against exact search."""
    db = Database(url, MODEL, DIMS)
    try:
        with db.connection() as conn:
            rows = conn.execute("SELECT id, embedding FROM triples").fetchall()
            ids = np.array([str(r[0]) for r in rows])
            m = np.stack([r[1].to_numpy() for r in rows])
            hits = 0
            with conn.transaction():
                conn.execute(f"SET LOCAL hnsw.ef_search = {ef_search}")
                for q in queries:
                    exact = set(ids[np.argsort(-(m @ q))[:10]])
                    found = {str(r[0]) for r in conn.execute(
                        "SELECT id FROM triples ORDER BY embedding <=> %s LIMIT 10", (q,)).fetchall()}
                    hits += len(exact & found)
        return hits / (10 * len(queries))
    finally:
        db.close()


def clustered(doc: Doc, seed: int, centres: int = 200, spread: float = 1.0) -> None:
    """Gives the document's rows vectors grouped around `centres` random directions, as embeddings of
    related text are (random unit vectors in 384 dims are all about equally far apart, the worst case
    for any approximate index, and a test of little else)."""
    rng = np.random.default_rng(seed + 3)
    c = rng.standard_normal((centres, DIMS), dtype=np.float32)
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    for row_id in doc.vectors:
        v = c[rng.integers(centres)] + spread * rng.standard_normal(DIMS, dtype=np.float32) / math.sqrt(DIMS)
        doc.vectors[row_id] = (v / np.linalg.norm(v)).astype(np.float32)


def recall_comparison(server, triples: int, seed: int) -> dict[str, float]:
    """recall@10 of the statements' index built incrementally and rebuilt by the bulk path, on the same
    rows with clustered vectors, for queries near stored statements."""
    doc = Doc(triples, seed + 7000)
    clustered(doc, seed)
    rng = np.random.default_rng(seed + 8)
    stored = np.stack([doc.vectors[t] for t in doc.merged.triples])
    # A stored statement moved by noise of norm about 0.3 (a paraphrase, as it were).
    queries = stored[rng.choice(len(stored), 200, replace=False)] + 0.3 / math.sqrt(DIMS) * rng.standard_normal(
        (200, DIMS), dtype=np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    out = {}
    for mode, ratio in (("incremental", NEVER), ("bulk", ALWAYS)):
        url = fresh_database(server, f"recall{mode}")
        Database(url, MODEL, DIMS, migrate=True).close()
        out[f"{mode}_s"], _ = write(url, doc, ratio)
        # At the store's ef_search, and at small ones, where a worse-built graph would show.
        for ef in (10, 20, 200):
            out[f"{mode}@{ef}"] = recall_at_10(url, queries, ef)
        drop(server, url)
    return out


def hnsw_floor(url: str, doc: Doc) -> float:
    """Seconds to insert only the document's new vectors into tables that hold only an id, the vector
    and the migrations' HNSW index, already filled with the graph's vectors: the index inserts alone."""
    db = Database(url, MODEL, DIMS)
    try:
        with db.connection() as conn:
            # The floor tables' indexes are built the way the bulk path builds them (in memory, in parallel).
            conn.execute("SET maintenance_work_mem = '1GB'")
            conn.execute("SET max_parallel_maintenance_workers = 8")
            for table in VECTOR_TABLES:
                conn.execute(f"CREATE TABLE floor_{table} AS SELECT id, embedding FROM {table}")
                conn.execute(f"CREATE TABLE floor_new_{table} (id uuid, embedding vector({DIMS}))")
                definition = conn.execute(
                    "SELECT pg_get_indexdef(c.oid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
                    " JOIN pg_am a ON a.oid = c.relam WHERE i.indrelid = %s::regclass AND a.amname = 'hnsw'",
                    (table,)).fetchone()[0]
                conn.execute(definition.replace(f" ON public.{table} ", f" ON public.floor_{table} ", 1)
                             .replace("INDEX ", "INDEX floor_", 1))
                items = {"nodes": doc.merged.nodes, "relations": doc.merged.relations,
                         "triples": doc.merged.triples}[table]
                with conn.cursor() as cur, cur.copy(
                        f"COPY floor_new_{table} (id, embedding) FROM STDIN (FORMAT BINARY)") as copy:
                    copy.set_types(["uuid", "vector"])
                    for row_id in items:
                        copy.write_row((row_id, doc.vectors[row_id]))
            conn.commit()
            t = time.perf_counter()
            with conn.transaction():
                for table in VECTOR_TABLES:
                    conn.execute(f"INSERT INTO floor_{table} SELECT n.id, n.embedding FROM floor_new_{table} n"
                                 f" WHERE NOT EXISTS (SELECT 1 FROM {table} x WHERE x.id = n.id)")
            return time.perf_counter() - t
    finally:
        db.close()


def without_indexes(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for table in VECTOR_TABLES:
            conn.execute(f"DROP INDEX {table}_embedding")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--graphs", type=int, nargs="*", default=[4000, 16000], help="triples already in the graph")
    ap.add_argument("--ratios", type=float, nargs="+", default=[0.03, 0.1, 0.25, 0.5, 1.0, 2.0],
                    help="triples written, as a multiple of the graph's")
    ap.add_argument("--big", type=int, default=100_000, help="triples of the load into an empty graph (0: skip)")
    ap.add_argument("--increment", type=int, default=10_000, help="triples of the incremental store into it")
    ap.add_argument("--no-naive", action="store_true", help="skip the row-by-row load of --big triples")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--recall", type=int, default=0, metavar="N",
                    help="only compare recall@10 of incremental and rebuilt indexes on N triples of clustered vectors")
    args = ap.parse_args()
    # The store logs each index build and its seconds (kg.graph.postgres).
    logging.basicConfig(format="%(asctime)s %(message)s", level=logging.WARNING)
    logging.getLogger("kg.graph.postgres").setLevel(logging.INFO)
    pg_module._BULK_MIN_ROWS = 0  # the grid measures small batches too: the ratio alone decides here
    queries = np.random.default_rng(args.seed + 99).standard_normal((100, DIMS), dtype=np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)

    if args.recall:
        with embedded_server() as (server, _root):
            r = recall_comparison(server, args.recall, args.seed)
        print(f"{args.recall} triples, clustered vectors, 200 queries near stored statements: write "
              f"incremental {r['incremental_s']:.1f}s, bulk {r['bulk_s']:.1f}s")
        for ef in (10, 20, 200):
            print(f"  recall@10 at ef_search {ef}: incremental {r[f'incremental@{ef}']:.3f}, "
                  f"bulk (rebuilt) {r[f'bulk@{ef}']:.3f}")
        return
    with embedded_server() as (server, _root):
        facts = None
        grid: list[dict] = []
        recalls: list[str] = []
        for graph in args.graphs:
            base_url, base_name = base_graph(server, graph, args.seed)
            facts = facts or machine(base_url)
            for i, ratio in enumerate(args.ratios):
                batch = round(ratio * graph)
                doc = Doc(batch, args.seed + 1000 + i)
                cell = {"graph": graph, "batch": batch, "ratio": batch / graph if graph else math.inf}
                urls = {}
                for mode, ratio in (("incremental", NEVER), ("bulk", ALWAYS)):
                    urls[mode] = clone(server, base_name, mode)
                    cell[mode], rebuilt = write(urls[mode], doc, ratio)
                    expected = set() if mode == "incremental" else {f"{t}_embedding" for t in VECTOR_TABLES}
                    if rebuilt != expected:
                        raise SystemExit(f"{mode}: indexes rebuilt {rebuilt}, expected {expected}")
                cell["rows"] = doc.total_rows
                print(f"graph {graph:>7} + batch {batch:>7} (ratio {cell['ratio']:.3g}): incremental "
                      f"{cell['incremental']:.2f}s, bulk {cell['bulk']:.2f}s", flush=True)
                if i == len(args.ratios) - 1:
                    r_inc, r_bulk = recall_at_10(urls["incremental"], queries), recall_at_10(urls["bulk"], queries)
                    recalls.append(f"graph {graph} + batch {batch}: recall@10 incremental {r_inc:.3f}, "
                                   f"bulk (rebuilt) {r_bulk:.3f}")
                    print(recalls[-1], flush=True)
                for url in urls.values():
                    drop(server, url)
                grid.append(cell)
            drop(server, base_url)

        big: dict[str, float] = {}
        if args.big:
            doc = Doc(args.big, args.seed + 5000)
            empty_url, empty_name = base_graph(server, 0, args.seed)
            facts = facts or machine(empty_url)
            url = clone(server, empty_name, "big")
            big["bulk"], rebuilt = write(url, doc, DEFAULT_BULK_LOAD_RATIO)
            big["rows"] = doc.total_rows
            big["triples"] = len(doc.merged.triples)
            print(f"{args.big} triples into an empty graph, write_document (default ratio): {big['bulk']:.1f}s, "
                  f"indexes rebuilt {sorted(rebuilt)}", flush=True)
            big["recall"] = recall_at_10(url, queries)
            print(f"recall@10 of the rebuilt statements' index at {args.big}: {big['recall']:.3f}", flush=True)
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("VACUUM ANALYZE")
            big_name = db_name(url)
            if args.increment:
                inc = Doc(args.increment, args.seed + 6000)
                big["inc_triples"], big["inc_rows"] = len(inc.merged.triples), inc.total_rows
                inc_url = clone(server, big_name, "inc")
                big["incremental"], rebuilt = write(inc_url, inc, NEVER)
                if rebuilt:
                    raise SystemExit(f"the incremental store rebuilt {rebuilt}")
                drop(server, inc_url)
                noidx_url = clone(server, big_name, "noidx")
                without_indexes(noidx_url)
                big["no_index"], _ = write(noidx_url, inc, NEVER)
                drop(server, noidx_url)
                floor_url = clone(server, big_name, "floor")
                big["floor"] = hnsw_floor(floor_url, inc)
                drop(server, floor_url)
                big["inc_new_vectors"] = sum(inc.rows.values())
                print(f"incremental store of {args.increment} triples into {args.big}: {big['incremental']:.1f}s; "
                      f"without HNSW indexes {big['no_index']:.1f}s; HNSW inserts alone {big['floor']:.1f}s",
                      flush=True)
            drop(server, url)
            if not args.no_naive:
                naive_url = clone(server, empty_name, "naive")
                db = Database(naive_url, MODEL, DIMS)
                try:
                    t = time.perf_counter()
                    naive_write(db, doc.job_id, doc.document, doc.chunks, doc.merged, doc.vectors)
                    big["naive"] = time.perf_counter() - t
                finally:
                    db.close()
                drop(server, naive_url)
                print(f"{args.big} triples row by row: {big['naive']:.1f}s", flush=True)

    print_machine(facts)
    print()
    print("| graph (triples) | batch (triples) | new / existing | incremental s | bulk s | bulk / incremental |")
    print("|---:|---:|---:|---:|---:|---:|")
    for c in grid:
        print(f"| {c['graph']:,} | {c['batch']:,} | {c['ratio']:.3g} | {c['incremental']:.2f} | {c['bulk']:.2f} |"
              f" {c['bulk'] / c['incremental']:.2f} |")
    print()
    for graph in args.graphs:
        x = crossover([c for c in grid if c["graph"] == graph])
        print(f"crossover at graph {graph}: " + ("not reached" if x is None else f"new/existing = {x:.3g}"))
    for line in recalls:
        print(line)
    if big:
        rows = big["rows"]
        print(f"\n{args.big} triples ({rows} rows) into an empty graph: write_document {big['bulk']:.1f}s "
              f"= {rows / big['bulk']:,.0f} rows/s")
        if "naive" in big:
            print(f"row by row {big['naive']:.1f}s = {rows / big['naive']:,.0f} rows/s; "
                  f"ratio {big['naive'] / big['bulk']:.1f}x")
        if "incremental" in big:
            r = big["inc_rows"]
            v = big["inc_new_vectors"]
            print(f"incremental store of {big['inc_triples']} triples ({r} rows, {v} vectors) into the graph: "
                  f"{big['incremental']:.1f}s = {r / big['incremental']:,.0f} rows/s; the same store without "
                  f"HNSW indexes {big['no_index']:.1f}s, so the HNSW inserts (floor) take "
                  f"{big['incremental'] - big['no_index']:.1f}s = {v / (big['incremental'] - big['no_index']):,.0f} "
                  f"vectors/s, {(big['incremental'] - big['no_index']) / big['incremental']:.1%} of the store; "
                  f"inserted alone into tables holding only the vectors and their index: {big['floor']:.1f}s")
        print(f"recall@10 at {args.big} (rebuilt index, ef_search 200): {big['recall']:.3f}")


if __name__ == "__main__":
    main()
