"""Search latency and recall: kg.search.search (fusion of the entity, relationship, semantic and
concept lists) on synthetic graphs of N triples (bench/search_synthetic.py), and recall@10 of each
HNSW list (nodes, relations, triples, concepts) against an exact scan.

Each size gets a fresh database on one embedded PostgreSQL started in a temp folder (deleted at the
end). By default every row's vector is the offline MiniLM embedding of its text (cached under
--cache for the next run), as ingest would store it; `--vectors synthetic` keeps the generator's
structured random vectors. Queries are a few words of a random triple, embedded the same way.
The store-side search is timed with a fixed-vector embedder (the query's vector given); embedding a
query with MiniLM is timed on its own. With `--baseline FOLDER` (another version's search.py and
postgres.py), each query is also searched by that version on the same graph, the two alternating,
and the responses compared: a before/after under the same load.

Usage:

    .venv/bin/python bench/search_latency.py --sizes 10000,100000
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import embedded_server, fresh_database, machine, print_machine  # noqa: E402
from search_synthetic import (  # noqa: E402
    DIMS,
    MODEL,
    SearchGraph,
    build,
    embed_for_real,
    queries,
    source_type_of,
    write,
)

from kg.db import Database  # noqa: E402
from kg.embeddings import Embedded  # noqa: E402
from kg.graph.postgres import PostgresGraphStore  # noqa: E402
from kg.search import SearchRequest, search  # noqa: E402

TIMED = ("match", "lexical_matches", "triples_of", "members_near", "found_triples")
TABLES = ("nodes", "relations", "triples", "concepts")


class InThisThread:
    """A stand-in for kg.search's thread pool (bench only, --sequential): the lists one after another."""

    def __init__(self, **_):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def submit(self, fn, *args):
        from concurrent.futures import Future

        future = Future()
        future.set_result(fn(*args))
        return future


class FixedEmbedder:
    """Answers with the vector of the query being timed: the store's side of a search, alone."""

    dimensions = DIMS

    def __init__(self, model: str):
        self.model = model
        self.vector: np.ndarray | None = None

    def embed(self, texts):
        return Embedded(vectors=np.stack([self.vector]))


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def timed_store(graph: PostgresGraphStore) -> dict[str, list[float]]:
    """Wrap the store's search methods on this instance; returns where their seconds land."""
    seconds: dict[str, list[float]] = {}
    for name in TIMED:
        original = getattr(graph, name)

        def wrapper(*a, _original=original, _name=name, **k):
            label = f"{_name} {a[0]}" if _name == "match" else _name
            t0 = time.perf_counter()
            try:
                return _original(*a, **k)
            finally:
                seconds.setdefault(label, []).append(time.perf_counter() - t0)

        setattr(graph, name, wrapper)
    return seconds


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def load_baseline(folder: Path):
    """Another version's kg.search and kg.graph.postgres (search.py and postgres.py in `folder`, e.g.
    written by `git show REV:functions/common/kg/search.py`), imported beside this one's."""
    import importlib.util

    modules = []
    for name, file in (("kg_baseline_postgres", "postgres.py"), ("kg_baseline_search", "search.py")):
        spec = importlib.util.spec_from_file_location(name, folder / file)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        modules.append(module)
    return modules  # [postgres, search]


def summary(latencies: list[float], top1: int, top10: int) -> dict:
    return {"n": len(latencies), "p50_ms": percentile(latencies, 50) * 1000, "p95_ms": percentile(latencies, 95) * 1000,
            "mean_ms": statistics.fmean(latencies) * 1000, "max_ms": max(latencies) * 1000,
            "top1": top1 / len(latencies), "top10": top10 / len(latencies)}


def run_searches(graph: PostgresGraphStore, g: SearchGraph, n_queries: int, seed: int, warmup: int,
                 among=None, real=None, baseline=None, **options) -> dict:
    """Timed searches; with `baseline` (its search module and its store on the same database), each
    query is searched by both, in alternating order, and their responses compared."""
    embedder = FixedEmbedder(real.model if real else MODEL)
    qs = queries(g, n_queries + warmup, seed, among=among, embedder=real)
    variants = [("current", search, SearchRequest, graph)]
    if baseline is not None:
        module, store = baseline
        variants.append(("baseline", module.search, module.SearchRequest, store))
    latencies: dict[str, list[float]] = {name: [] for name, *_ in variants}
    top1 = dict.fromkeys(latencies, 0)
    top10 = dict.fromkeys(latencies, 0)
    differing = 0
    for i, q in enumerate(qs):
        embedder.vector = q.vector
        responses = {}
        for name, run, request, store in variants if i % 2 == 0 else variants[::-1]:
            t0 = time.perf_counter()
            response = run(request(query=q.text, **options), store, embedder)
            elapsed = time.perf_counter() - t0
            responses[name] = response.model_dump(exclude={"took_ms"})
            if i < warmup:
                continue
            latencies[name].append(elapsed)
            ids = [h.id for h in response.hits]
            top1[name] += ids[:1] == [str(q.target)]
            top10[name] += str(q.target) in ids[:10]
        differing += len({repr(r) for r in responses.values()}) > 1
    result = summary(latencies["current"], top1["current"], top10["current"])
    if baseline is not None:
        result["baseline"] = summary(latencies["baseline"], top1["baseline"], top10["baseline"])
        result["differing"] = differing
    return result


def kept_by_the_filter(g: SearchGraph):
    """Whether a triple passes the filtered searches' filter: ENTITY_EVENT, in a "report" document."""
    return lambda t: g.triples[t].type == "ENTITY_EVENT" and source_type_of(g.doc_of[t]) == "report"


def loose_queries(g: SearchGraph, n: int, seed: int) -> list[np.ndarray]:
    """Queries about two things at once: the normalised sum of two random nodes' vectors (near
    nothing stored in particular: a harder case for HNSW than a paraphrase)."""
    rng = np.random.default_rng(seed)
    nodes = list(g.nodes)
    out = []
    for _ in range(n):
        a, b = (g.vectors[nodes[int(i)]] for i in rng.choice(len(nodes), 2, replace=False))
        v = a + b
        out.append((v / np.linalg.norm(v)).astype(np.float32))
    return out


def random_queries(n: int, seed: int) -> list[np.ndarray]:
    """Directions drawn uniformly on the sphere: near nothing at all, the hardest case for HNSW."""
    v = np.random.default_rng(seed).standard_normal((n, DIMS))
    return list((v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32))


def recall_at_10(db: Database, vectors: list[np.ndarray], ef_values: list[int]) -> dict[tuple[str, int], float]:
    """Recall@10 of each table's HNSW kNN against an exact scan (index scans off: a sequential
    scan and a sort on the same cosine distance). Nothing is prepared: a prepared statement keeps
    the plan it was made with, whatever enable_indexscan says later."""
    def top10(conn, table: str, v: np.ndarray) -> set:
        return {r[0] for r in conn.execute(f"SELECT id FROM {table} ORDER BY embedding <=> %s LIMIT 10", (v,),
                                           prepare=False)}

    def plan(conn, table: str) -> str:
        return " ".join(line for (line,) in conn.execute(
            f"EXPLAIN SELECT id FROM {table} ORDER BY embedding <=> %s LIMIT 10", (vectors[0],), prepare=False))

    found: dict[tuple[str, int], float] = {}
    with db.connection() as conn:
        conn.execute("SET enable_indexscan = off")
        conn.execute("SET enable_bitmapscan = off")
        exact = {}
        for table in TABLES:
            assert "Seq Scan" in plan(conn, table), f"{table}: the exact scan is not a sequential scan"
            exact[table] = [top10(conn, table, v) for v in vectors]
        conn.execute("RESET enable_indexscan")
        conn.execute("RESET enable_bitmapscan")
        conn.execute("SET enable_seqscan = off")  # a small table would be scanned: measure its index
        for ef in ef_values:
            conn.execute(f"SET hnsw.ef_search = {ef}")
            for table in TABLES:
                assert f"{table}_embedding" in plan(conn, table), f"{table}: the HNSW index is not used"
                hits = sum(len(exact[table][i] & top10(conn, table, v)) for i, v in enumerate(vectors))
                found[(table, ef)] = hits / (10 * len(vectors))
        conn.rollback()
    return found


def index_settings(db: Database) -> dict[str, str]:
    """m and ef_construction of each HNSW index (pgvector's defaults, 16 and 64, when not set)."""
    with db.connection() as conn:
        rows = conn.execute(
            "SELECT c.relname, coalesce(array_to_string(c.reloptions, ','), '') FROM pg_index i"
            " JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam WHERE a.amname = 'hnsw'"
            " ORDER BY 1").fetchall()
    return {name: options or "m=16,ef_construction=64 (defaults)" for name, options in rows}


def embedding_latency(n: int) -> dict | None:
    """One query at a time through the offline MiniLM embedder (what `kg search` adds)."""
    try:
        from kg.embeddings.onnx_minilm import MiniLmEmbedder
    except ImportError:
        return None
    embedder = MiniLmEmbedder()
    texts = [f"who discovered element number {i} in the laboratory" for i in range(n + 5)]
    times = []
    for i, text in enumerate(texts):
        t0 = time.perf_counter()
        embedder.embed([text])
        if i >= 5:
            times.append(time.perf_counter() - t0)
    return {"p50_ms": percentile(times, 50) * 1000, "p95_ms": percentile(times, 95) * 1000}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="10000,100000", help="comma-separated triple counts")
    ap.add_argument("--queries", type=int, default=200, help="timed searches per configuration")
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--ef", default="40,100,200,400", help="hnsw.ef_search values to measure recall at")
    ap.add_argument("--vectors", choices=("minilm", "synthetic"), default="minilm",
                    help="minilm: every row embedded from its text, as ingest would (default); synthetic: the "
                         "generator's structured random vectors")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/kg-bench-search-vectors"),
                    help="where MiniLM vectors of a graph are kept between runs")
    ap.add_argument("--threshold", type=float, default=0.0,
                    help="SearchRequest.threshold of the timed searches (default 0: no floor, every list full)")
    ap.add_argument("--search-ef", type=int, default=None,
                    help="PostgresGraphStore(search_ef=...) for the timed searches (default: the store's)")
    ap.add_argument("--hnsw-options", default=None,
                    help='build the HNSW indexes WITH these options, e.g. "m = 16, ef_construction = 200" '
                         "(default: as the migrations define them)")
    ap.add_argument("--baseline", type=Path, default=None,
                    help="a folder holding another version's search.py and graph/postgres.py (as postgres.py): "
                         "timed on the same graph, query by query alternating with this one, hits compared")
    ap.add_argument("--sequential", action="store_true",
                    help="search the four lists one after another (patches kg.search in this process)")
    args = ap.parse_args()
    if args.sequential:
        import kg.search

        kg.search.ThreadPoolExecutor = InThisThread
    sizes = [int(s) for s in args.sizes.split(",")]
    ef_values = [int(e) for e in args.ef.split(",")]

    real = None
    if args.vectors == "minilm":
        from kg.embeddings.onnx_minilm import MiniLmEmbedder

        real = MiniLmEmbedder(batch_size=256)
    facts = None
    results: dict[int, dict] = {}
    with embedded_server("kg-bench-search-") as (server, _root):
        for n in sizes:
            t0 = time.perf_counter()
            g = build(n, args.seed)
            print(f"[{n}] synthetic graph: {len(g.triples)} triples, {len(g.nodes)} nodes, {len(g.relations)} relations,"
                  f" {sum(len(v) for v in g.concepts.values())} concepts ({time.perf_counter() - t0:.1f}s)", flush=True)
            embedding_s = embed_for_real(g, real, args.cache / f"{n}-{args.seed}.npy") if real else 0.0
            if real:
                print(f"[{n}] every row embedded with {real.model} ({embedding_s:.0f}s; 0: from {args.cache})", flush=True)
            db = Database(fresh_database(server, f"search{n}"), real.model if real else MODEL, DIMS, migrate=True,
                          max_size=8)
            try:
                facts = facts or machine(db.url)
                setup = write(db, g, args.hnsw_options)
                print(f"[{n}] written: {', '.join(f'{k} {v:.1f}s' for k, v in setup.items())}", flush=True)
                graph = PostgresGraphStore(db) if args.search_ef is None else PostgresGraphStore(
                    db, search_ef=args.search_ef)
                seconds = timed_store(graph)
                r: dict = {"setup": setup, "load_before": loadavg(), "search_ef": graph.search_ef}
                options = {"threshold": args.threshold, "real": real}
                if args.baseline:
                    old_postgres, old_search = load_baseline(args.baseline)
                    options["baseline"] = (old_search, old_postgres.PostgresGraphStore(db, search_ef=graph.search_ef))
                r["plain"] = run_searches(graph, g, args.queries, args.seed + 1, args.warmup, **options)
                split = {k: (percentile(v, 50) * 1000, percentile(v, 95) * 1000) for k, v in seconds.items()}
                seconds.clear()
                # Paraphrases of triples the filter keeps: an ENTITY_EVENT triple of a "report" document.
                r["filtered"] = run_searches(
                    graph, g, args.queries, args.seed + 2, args.warmup,
                    among=kept_by_the_filter(g), types=["ENTITY_EVENT"], source_types=["report"], **options)
                r["limit100"] = run_searches(graph, g, max(50, args.queries // 4), args.seed + 3, 10, limit=100,
                                             **options)
                r["default_threshold"] = run_searches(graph, g, max(50, args.queries // 4), args.seed + 6, 10, real=real,
                                                      baseline=options.get("baseline"))
                r["split"] = split
                r["load_after"] = loadavg()
                paraphrases = [q.vector for q in queries(g, 100, args.seed + 4, embedder=real)]
                r["recall_paraphrase"] = recall_at_10(db, paraphrases, ef_values)
                r["recall_loose"] = recall_at_10(db, loose_queries(g, 100, args.seed + 5), ef_values)
                r["recall_random"] = recall_at_10(db, random_queries(100, args.seed + 7), ef_values)
                r["indexes"] = index_settings(db)
                results[n] = r
                p = r["plain"]
                print(f"[{n}] search p50 {p['p50_ms']:.1f} ms, p95 {p['p95_ms']:.1f} ms (load {r['load_before']}"
                      f" -> {r['load_after']})", flush=True)
            finally:
                db.close()
            del g
    embedding = embedding_latency(50)

    print()
    print_machine(facts)
    print()
    print("| triples | search | queries | p50 ms | p95 ms | mean ms | max ms | target first | target in top 10 |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for n, r in results.items():
        for key, label in (("plain", f"limit 10, threshold {args.threshold:g}"),
                           ("filtered", "the same, type and source type filters"),
                           ("limit100", f"limit 100, threshold {args.threshold:g}"),
                           ("default_threshold", "limit 10, default threshold (0.3)")):
            for m, version in ((r[key], ""), (r[key].get("baseline"), " (baseline)")):
                if m is None:
                    continue
                print(f"| {n:,} | {label}{version} | {m['n']} | {m['p50_ms']:.1f} | {m['p95_ms']:.1f} | {m['mean_ms']:.1f}"
                      f" | {m['max_ms']:.1f} | {m['top1']:.2f} | {m['top10']:.2f} |")
    print()
    print("| triples | queries | ef_search | " + " | ".join(f"{t} recall@10" for t in TABLES) + " |")
    print("|---:|---|---:|" + "---:|" * len(TABLES))
    for n, r in results.items():
        for kind in ("paraphrase", "loose", "random"):
            for ef in ef_values:
                print(f"| {n:,} | {kind} | {ef} | "
                      + " | ".join(f"{r[f'recall_{kind}'][(t, ef)]:.3f}" for t in TABLES) + " |")
    for n, r in results.items():
        print()
        print(f"[{n}] setup: {r['setup']}; store search_ef {r['search_ef']}; load {r['load_before']} -> {r['load_after']}")
        print(f"[{n}] per store call, limit 10 unfiltered (p50 / p95 ms, lists run "
              f"{'one after another' if args.sequential else 'concurrently'}): "
              + "; ".join(f"{k} {a:.1f} / {b:.1f}" for k, (a, b) in sorted(r["split"].items())))
        print(f"[{n}] HNSW indexes: " + "; ".join(f"{k}: {v}" for k, v in r["indexes"].items()))
        if args.baseline:
            print(f"[{n}] queries whose response differs from the baseline's (warm-up included): "
                  + ", ".join(f"{key} {r[key]['differing']}" for key in ("plain", "filtered", "limit100",
                                                                        "default_threshold")))
    if embedding:
        print(f"embedding one query with MiniLM (offline): p50 {embedding['p50_ms']:.1f} ms, p95 {embedding['p95_ms']:.1f} ms")


if __name__ == "__main__":
    main()
