"""Deduplication at scale: kg.stages.deduplicate_graph over the whole graph (kNN candidates, in memory
or by pgvector HNSW probes with --search probe; union-find, one apply transaction) on synthetic
graphs of N triples with planted near-duplicates, against the seed design's greedy pairwise pass
(Python loop, one numpy dot per pair) on the same vectors, in the same run.

The graph (bench/dedup_synthetic.py): 5% of the triples are planted near-duplicates of another
triple (same type, statement cosine 0.90-0.97, ends and predicate the same row, a name containing
the other's, or a vector at cosine >= 0.93), 1% are hard negatives (same subject and relation,
statement cosine 0.86-0.95, another object) that must not merge; everything else has independent
random unit vectors. Written with PostgresGraphStore.write_document into a fresh database on an
embedded PostgreSQL in a temp folder.

Usage:

    .venv/bin/python bench/dedup_scale.py --sizes 10000 --greedy
    .venv/bin/python bench/dedup_scale.py --sizes 100000
"""

from __future__ import annotations

import argparse
import functools
import os
import resource
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import embedded_server, fresh_database, machine, print_machine  # noqa: E402
from dedup_synthetic import DIMS, MODEL, Synthetic, build, table_counts, write  # noqa: E402

from kg.db import Database  # noqa: E402
from kg.graph import knn  # noqa: E402
from kg.graph.postgres import PostgresGraphStore  # noqa: E402
from kg.stages.deduplicate import DedupParams, deduplicate_graph  # noqa: E402

FACTS: dict | None = None
TIMED = ("similar_triples", "triple_attributes", "similar_entities", "node_attributes", "apply_dedup")
# Inside the in-memory search (kg.graph.knn): the COPY of the vectors and the faiss search.
TIMED_KNN = ("read_vectors", "neighbour_rows")


class TextSeededEmbedder:
    """A unit vector seeded by each text: what re-embeds the triples an entity merge rewrote."""

    model, dimensions = MODEL, DIMS

    def embed(self, texts):
        from kg.embeddings import Embedded

        rows = [np.random.default_rng(list(t.encode())).standard_normal(DIMS) for t in texts]
        m = np.asarray(rows, dtype=np.float32).reshape(len(texts), DIMS)
        return Embedded(m / np.linalg.norm(m, axis=1, keepdims=True).clip(1e-12))


def timed_graph(graph: PostgresGraphStore, search: str = "auto") -> dict[str, float]:
    """Wrap the store's dedup methods on this instance only (and kg.graph.knn's two steps, for the
    process); `search` is passed to the two candidate searches. Returns the dict the timings land in."""
    seconds: dict[str, float] = {}
    for name in ("similar_triples", "similar_entities"):
        setattr(graph, name, functools.partial(getattr(graph, name), search=search))
    targets = [(graph, name) for name in TIMED] + [(knn, name) for name in TIMED_KNN]
    for owner, name in targets:
        original = getattr(owner, name)

        def wrapper(*a, _original=original, _name=name, **k):
            t0 = time.perf_counter()
            try:
                return _original(*a, **k)
            finally:
                seconds[_name] = seconds.get(_name, 0.0) + time.perf_counter() - t0

        setattr(owner, name, wrapper)
    return seconds


class PeakRss:
    """The process's resident set size sampled every 20 ms while the block runs (/proc/self/statm):
    peak and the value when it started, in MiB."""

    def __enter__(self) -> PeakRss:
        self.page = os.sysconf("SC_PAGE_SIZE")
        self.start = self.peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _rss(self) -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self.page / 2**20

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self._rss())

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())


def score(db: Database, g: Synthetic) -> dict:
    """Recall and precision of the triple merges against the planted pairs, read from the graph."""
    with db.connection() as conn:
        existing = {i for (i,) in conn.execute("SELECT id FROM triples")}
        merges = {m: (k, r, method) for k, m, r, method in conn.execute(
            "SELECT kept_id, merged_id, redirect_to, method FROM dedup_merges WHERE kind = 'triple'")}
        node_merges = {(k, m) for k, m in conn.execute(
            "SELECT kept_id, merged_id FROM dedup_merges WHERE kind = 'node'")}

    def final(x: uuid.UUID) -> uuid.UUID:
        return merges[x][1] if x in merges else x

    found, by_method, missed_by_variant, total_by_variant = 0, Counter(), Counter(), Counter()
    for a, b, variant in g.planted:
        total_by_variant[variant] += 1
        gone = b if b in merges else a if a in merges else None
        if gone is not None and final(a) == final(b) and final(a) in existing:
            found += 1
            by_method[merges[gone][2]] += 1
        else:
            missed_by_variant[variant] += 1
    pair_set = {frozenset((a, b)) for a, b, _ in g.planted}
    hard_set = {frozenset(p) for p in g.hard_negatives}
    correct = sum(1 for m, (k, _, _) in merges.items() if frozenset((k, m)) in pair_set)
    hard_merged = sum(1 for m, (k, _, _) in merges.items() if frozenset((k, m)) in hard_set)
    planted_nodes = {frozenset(p) for p in g.planted_nodes}
    return {
        "planted": len(g.planted), "found": found, "recall": found / max(1, len(g.planted)),
        "found_by_method": dict(by_method), "merges": len(merges), "correct_merges": correct,
        "precision": correct / len(merges) if merges else float("nan"),
        "hard_negatives": len(g.hard_negatives), "hard_negatives_merged": hard_merged,
        "missed_by_variant": {v: f"{missed_by_variant[v]}/{n}" for v, n in total_by_variant.items()
                              if missed_by_variant[v]},
        "node_merges": len(node_merges),
        "node_merges_planted": sum(1 for p in node_merges if frozenset(p) in planted_nodes),
        "planted_nodes": len(g.planted_nodes),
    }


def greedy_pairwise(g: Synthetic, n: int | None, threshold: float = 0.85) -> dict:
    """The seed design's pass: each triple in ingest order against every kept triple, one pair at a
    time (cosine by numpy dot per pair), merged into the first kept one at cosine >= threshold."""
    order = g.order if n is None else g.order[:n]
    vecs = [g.vectors[t] for t in order]
    kept: list[int] = []
    merged: list[tuple[int, int]] = []
    pairs = 0
    t0 = time.perf_counter()
    for i, v in enumerate(vecs):
        for j in kept:
            pairs += 1
            if float(np.dot(v, vecs[j])) >= threshold:
                merged.append((j, i))
                break
        else:
            kept.append(i)
    seconds = time.perf_counter() - t0
    pair_set = {frozenset((a, b)) for a, b, _ in g.planted}
    hard_set = {frozenset(p) for p in g.hard_negatives}
    ids = [order[j] for j in range(len(order))]
    in_scope = set(ids)
    planted = [p for p in g.planted if p[0] in in_scope and p[1] in in_scope]
    correct = sum(1 for j, i in merged if frozenset((ids[j], ids[i])) in pair_set)
    return {"triples": len(order), "seconds": seconds, "pairs_compared": pairs, "merges": len(merged),
            "planted_in_scope": len(planted), "correct_merges": correct,
            "recall": correct / max(1, len(planted)), "precision": correct / len(merged) if merged else float("nan"),
            "hard_negatives_merged": sum(1 for j, i in merged if frozenset((ids[j], ids[i])) in hard_set),
            "us_per_pair": seconds / max(1, pairs) * 1e6}


def greedy_pair_count(g: Synthetic, threshold: float = 0.85) -> int:
    """How many pairs the greedy pass compares on all of g, computed with matrix products (same merges)."""
    vecs = np.stack([g.vectors[t] for t in g.order])
    kept: list[int] = []
    pairs = 0
    for i in range(len(vecs)):
        if kept:
            sims = vecs[kept] @ vecs[i]
            hit = np.nonzero(sims >= threshold)[0]
            if hit.size:
                pairs += int(hit[0]) + 1
                continue
            pairs += len(kept)
        kept.append(i)
    return pairs


def run_dedup(server, g: Synthetic, label: str, index_build: str, params: DedupParams, search: str = "auto") -> dict:
    db = Database(fresh_database(server, label), MODEL, DIMS, migrate=True)
    try:
        global FACTS
        FACTS = FACTS or machine(db.url)
        setup = write(db, g, index_build)
        before = table_counts(db)
        graph = PostgresGraphStore(db)
        seconds = timed_graph(graph, search)
        with PeakRss() as rss:
            t0 = time.perf_counter()
            summary = deduplicate_graph(graph, TextSeededEmbedder(), params)
            total = time.perf_counter() - t0
        after = table_counts(db)
        result = {"setup": setup, "before": before, "after": after, "seconds": total, "split": dict(seconds),
                  "summary": summary.model_dump(), "score": score(db, g),
                  "rss_mib": {"before": round(rss.start), "peak": round(rss.peak),
                              "peak_minus_before": round(rss.peak - rss.start)}}
        return result
    finally:
        db.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="10000", help="comma-separated triple counts (default 10000)")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--docs", type=int, default=10, help="documents the graph is written as")
    ap.add_argument("--index-build", choices=("bulk", "insert"), default="bulk",
                    help="bulk: drop the HNSW indexes, write, re-create them (default); insert: as migrated")
    ap.add_argument("--greedy", action="store_true", help="also run the greedy pairwise baseline on the first size")
    ap.add_argument("--greedy-budget", type=float, default=240.0,
                    help="seconds the greedy pass may take; above it (estimated) run a subset and extrapolate")
    ap.add_argument("--neighbours", type=int, default=None, help="DedupParams.neighbours (default: the product's)")
    ap.add_argument("--search", choices=("auto", "probe", "memory"), default="auto",
                    help="candidate search: per-row HNSW probes, in memory (kg.graph.knn), or the product's choice")
    args = ap.parse_args()
    params = DedupParams() if args.neighbours is None else DedupParams(neighbours=args.neighbours)
    sizes = [int(s) for s in args.sizes.split(",")]

    results: dict[int, dict] = {}
    greedy = None
    with embedded_server("kg-bench-dedup-") as (server, _root):
        for n in sizes:
            t0 = time.perf_counter()
            g = build(n, args.seed, n_docs=args.docs)
            gen_s = time.perf_counter() - t0
            print(f"[{n}] synthetic graph: {len(g.triples)} triples, {len(g.nodes)} nodes, {len(g.relations)}"
                  f" relations, {len(g.planted)} planted pairs, {len(g.hard_negatives)} hard negatives,"
                  f" {len(g.planted_nodes)} planted entity pairs ({gen_s:.1f}s)", flush=True)
            results[n] = r = run_dedup(server, g, f"dedup{n}", args.index_build, params, args.search)
            print(f"[{n}] setup {', '.join(f'{k} {v:.1f}s' for k, v in r['setup'].items())}; "
                  f"dedup {r['seconds']:.2f}s", flush=True)
            if args.greedy and greedy is None:
                # Estimate first, from a small subset, so a slow machine does not run for an hour.
                probe = greedy_pairwise(g, min(1500, n))
                total_pairs = greedy_pair_count(g)
                estimate = total_pairs * probe["us_per_pair"] / 1e6
                print(f"[{n}] greedy probe: {probe['pairs_compared']} pairs in {probe['seconds']:.2f}s"
                      f" ({probe['us_per_pair']:.2f} us/pair); full pass compares {total_pairs} pairs,"
                      f" estimated {estimate:.0f}s", flush=True)
                if estimate <= args.greedy_budget:
                    greedy = greedy_pairwise(g, None)
                    greedy["extrapolated"] = False
                else:
                    m = int(n * (args.greedy_budget / estimate) ** 0.5)
                    sub = greedy_pairwise(g, m)
                    greedy = dict(sub, extrapolated=True, measured_triples=m, measured_seconds=sub["seconds"],
                                  seconds=sub["seconds"] * total_pairs / max(1, sub["pairs_compared"]),
                                  triples=n, pairs_compared=total_pairs)
                greedy["ours_seconds"] = r["seconds"]
                print(f"[{n}] greedy {greedy['seconds']:.1f}s"
                      f"{' (extrapolated)' if greedy['extrapolated'] else ''}", flush=True)
            del g

    print()
    print_machine(FACTS)
    print(f"    params: {params.model_dump()}, index build: {args.index_build}, documents: {args.docs},"
          f" search: {args.search}")
    print()
    print("| triples | dedup s | similar_triples s | similar_entities s | attributes + plan s | apply_dedup s"
          " | recall | precision | merges (semantic/exact) | entities merged | hard negatives merged |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n, r in results.items():
        sp, sc, su = r["split"], r["score"], r["summary"]
        rest = r["seconds"] - sp.get("similar_triples", 0) - sp.get("similar_entities", 0) - sp.get("apply_dedup", 0)
        print(f"| {n:,} | {r['seconds']:.2f} | {sp.get('similar_triples', 0):.2f} | {sp.get('similar_entities', 0):.2f}"
              f" | {rest:.2f} | {sp.get('apply_dedup', 0):.2f} | {sc['recall']:.4f} ({sc['found']}/{sc['planted']})"
              f" | {sc['precision']:.4f} ({sc['correct_merges']}/{sc['merges']})"
              f" | {su['triples_merged']} ({su['semantic']}/{su['exact']}) | {su['entities_merged']}"
              f" | {sc['hard_negatives_merged']}/{sc['hard_negatives']} |")
    for n, r in results.items():
        print(f"[{n}] setup: {r['setup']}; tables before {r['before']}; after {r['after']}")
        print(f"[{n}] split: {r['split']}; summary {r['summary']}")
        print(f"[{n}] resident set size during the pass (MiB): {r['rss_mib']}; process peak (ru_maxrss)"
              f" {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
        print(f"[{n}] score: {r['score']}")
    if greedy:
        print()
        print(f"greedy pairwise on {greedy['triples']:,} triples: {greedy['seconds']:.2f}s"
              + (f" EXTRAPOLATED from {greedy['measured_triples']:,} triples measured in"
                 f" {greedy['measured_seconds']:.2f}s, scaled by pairs compared" if greedy["extrapolated"] else "")
              + f"; {greedy['pairs_compared']:,} pairs, {greedy['us_per_pair']:.2f} us/pair;"
              f" merges {greedy['merges']}, recall {greedy['recall']:.4f}, precision {greedy['precision']:.4f},"
              f" hard negatives merged {greedy['hard_negatives_merged']}")
        print(f"ratio greedy seconds / deduplicate seconds on {greedy['triples']:,}: "
              f"{greedy['seconds'] / greedy['ours_seconds']:.2f}x")


if __name__ == "__main__":
    main()
