"""Deleting one document from a graph of N triples: PostgresGraphStore.delete_document seconds and
the rows it removed, for a typical document and for one that shares most of its facts.

The graph (bench/dedup_synthetic.py, no planted duplicates): N distinct triples over D documents,
each document home to N/D of them; each document also states 10% of its triples' facts again in
the next document (a fact with two sources), and document 0 states 90% of its facts again in
other documents. Written with PostgresGraphStore.write_document (HNSW indexes re-created in bulk
after the writes, same definitions as migrated) into a fresh database on an embedded PostgreSQL
in a temp folder. Each delete is checked against the counts expected from the synthetic graph.

Usage:

    .venv/bin/python bench/delete_document.py --triples 100000 --docs 100
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import embedded_server, fresh_database, machine, print_machine  # noqa: E402
from dedup_synthetic import DIMS, MODEL, Synthetic, build, source_of, table_counts, write  # noqa: E402

from kg.db import Database  # noqa: E402
from kg.graph.postgres import PostgresGraphStore  # noqa: E402


class StatementTimer:
    """Times every statement psycopg sends while active (bench process only): which part of
    delete_document takes the time. Foreign-key cascades run inside the statement that fires them."""

    def __init__(self):
        self.seconds: list[tuple[str, float]] = []
        self.original = psycopg.Cursor.execute

    def __enter__(self):
        timer = self

        def execute(cur, query, params=None, **kwargs):
            t0 = time.perf_counter()
            try:
                return timer.original(cur, query, params, **kwargs)
            finally:
                text = query if isinstance(query, str) else str(query)
                timer.seconds.append((" ".join(text.split())[:90], time.perf_counter() - t0))

        psycopg.Cursor.execute = execute
        return self

    def __exit__(self, *exc):
        psycopg.Cursor.execute = self.original


def expected_removal(g: Synthetic, d: int, deleted_before: set[int]) -> dict[str, int]:
    """Triples, nodes and relations deleting document d should remove, after `deleted_before`."""
    alive = lambda t: any(x not in deleted_before for x in g.docs_of[t])  # noqa: E731
    before = {t for t in g.order if alive(t)}
    after = {t for t in before if any(x not in deleted_before and x != d for x in g.docs_of[t])}

    def parts(ts):
        nodes = {n for t in ts for n in (g.triples[t].subject_id, g.triples[t].object_id)}
        return nodes, {g.triples[t].relation_id for t in ts}

    nb, rb = parts(before)
    na, ra = parts(after)
    return {"triples": len(before - after), "nodes": len(nb - na), "relations": len(rb - ra),
            "provenance": sum(1 for t in g.order if d in g.docs_of[t])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--triples", type=int, default=100_000)
    ap.add_argument("--docs", type=int, default=100)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--index-build", choices=("bulk", "insert"), default="bulk")
    args = ap.parse_args()

    t0 = time.perf_counter()
    g = build(args.triples, args.seed, dup_fraction=0.0, hard_fraction=0.0, n_docs=args.docs,
              share_fraction=0.10, heavy_share_docs=1, heavy_share_fraction=0.90)
    print(f"synthetic graph: {len(g.triples)} triples, {len(g.nodes)} nodes, {len(g.relations)} relations,"
          f" {sum(len(d) for d in g.docs_of.values())} (triple, document) statements over {args.docs} documents"
          f" ({time.perf_counter() - t0:.1f}s)", flush=True)

    typical = [args.docs // 2, args.docs // 2 + 10, args.docs // 2 + 20]
    plan = [(d, "typical: 10% of its facts also in the next document") for d in typical]
    plan.append((0, "sharing: 90% of its facts also in other documents"))
    runs = []
    with embedded_server("kg-bench-delete-") as (server, _root):
        db = Database(fresh_database(server, "delete"), MODEL, DIMS, migrate=True)
        try:
            facts = machine(db.url)
            setup = write(db, g, args.index_build)
            before = table_counts(db)
            print(f"written: {setup}; tables {before}", flush=True)
            store = PostgresGraphStore(db)
            deleted: set[int] = set()
            for d, what in plan:
                expect = expected_removal(g, d, deleted)
                with StatementTimer() as st:
                    t = time.perf_counter()
                    summary = store.delete_document(source_of(d))
                    seconds = time.perf_counter() - t
                deleted.add(d)
                got = {k: getattr(summary, k) for k in expect}
                if got != expect:
                    raise SystemExit(f"document {d}: delete_document removed {got}, expected {expect}")
                slowest = sorted(st.seconds, key=lambda x: -x[1])[:4]
                runs.append({"doc": d, "what": what, "seconds": seconds, "summary": summary.model_dump(),
                             "statements": len(st.seconds), "slowest": slowest})
                print(f"  deleted document {d} ({what}): {seconds:.3f}s {got}", flush=True)
            after = table_counts(db)
            with db.connection() as conn:
                orphans = conn.execute(
                    "SELECT count(*) FROM triples t WHERE NOT EXISTS"
                    " (SELECT 1 FROM triple_provenance p WHERE p.triple_id = t.id)").fetchone()[0]
        finally:
            db.close()

    print()
    print_machine(facts)
    print(f"    graph: {before}")
    print()
    print("| document | facts shared | seconds | provenance | triples | nodes | relations | chunks | rows removed |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in runs:
        s = r["summary"]
        rows = sum(s[k] for k in ("provenance", "triples", "nodes", "relations", "concept_edges", "concepts", "chunks")) + 1
        print(f"| doc{r['doc']:04d} | {r['what']} | {r['seconds']:.3f} | {s['provenance']} | {s['triples']} |"
              f" {s['nodes']} | {s['relations']} | {s['chunks']} | {rows} |")
    print("(rows removed counts the document row too)")
    for r in runs:
        print(f"doc{r['doc']:04d}: {r['statements']} statements; slowest: "
              + "; ".join(f"{sec * 1000:.0f} ms `{sql}`" for sql, sec in r["slowest"]))
    print(f"tables after the deletes: {after}; triples without provenance: {orphans}")


if __name__ == "__main__":
    main()
