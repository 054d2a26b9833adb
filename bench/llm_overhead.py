"""Overhead of the pipeline around the LLM calls: a 40-chunk document through the whole local engine
(OpenAI extractor and embedder against the fake server at a fixed latency, embedded PostgreSQL),
wall time against the lower bound the calls alone set at the configured concurrency.

Lower bound: chunks go max_concurrency at a time and a chunk's four per-type calls run together,
so extraction cannot take less than ceil(chunks / max_concurrency) x latency; the embedding
requests of merge-and-store run one after another: + requests x latency.

Then the concepts stage, on its own clock (an observer marks its start and end), run twice on the
same document: its batches one at a time (KG_CONCEPT_WORKERS=1, as before concurrent batches) and
`--concurrency` at a time. Its lower bound: ceil(batches / workers) x latency for the
conceptualizer calls, plus its embedding requests, which run one per batch after it.

    .venv/bin/python bench/llm_overhead.py [--chunks 40] [--latency 0.2] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import embedded_server  # noqa: E402
from _llm_common import FakeServerProcess, timed_ingest  # noqa: E402

from kg.models import Stage  # noqa: E402


class ConceptsClock:
    """Times the concepts stage and counts the requests the fake server saw during it."""

    def __init__(self, fake: FakeServerProcess):
        self.fake = fake
        self.started = self.ended = 0.0
        self.before: dict = {}
        self.after: dict = {}

    def stage_started(self, stage: Stage, total: int) -> None:
        if stage is Stage.CONCEPTS:
            self.before = self.fake.stats()
            self.started = time.perf_counter()

    def advanced(self, stage: Stage, amount: int = 1) -> None:
        if stage is Stage.CONCEPTS:
            self.ended = time.perf_counter()
            self.after = self.fake.stats()

    def requests(self) -> tuple[int, int]:
        """(conceptualizer calls, embedding requests) during the stage."""
        chats = len(self.after["chat"]) - len(self.before["chat"])
        return chats, self.after["embeddings"] - self.before["embeddings"]


def concepts_run(server, root, fake, args, workers: int) -> tuple[float, float, int, int]:
    clock = ConceptsClock(fake)
    report, _, _, _ = timed_ingest(server, root, fake, f"llm_overhead_concepts_{workers}", args.chunks,
                                   observer=clock, max_concurrency=args.concurrency, extraction_mode=args.mode,
                                   concepts=True, concept_workers=workers, concept_batch_size=args.batch)
    assert report.status.value == "SUCCEEDED" and report.concepts.elements > 0, report
    batches, embeddings = clock.requests()
    wall = clock.ended - clock.started
    bound = (math.ceil(batches / workers) + embeddings) * args.latency
    return wall, bound, batches, embeddings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chunks", type=int, default=40)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=4, help="chunks at once (KG_MAX_CONCURRENCY)")
    parser.add_argument("--mode", default="per_type", choices=["per_type", "combined"])
    parser.add_argument("--batch", type=int, default=4,
                        help="elements per concept batch (KG_CONCEPT_BATCH_SIZE; small, so the bench document makes many)")
    args = parser.parse_args()

    with embedded_server() as (server, root), FakeServerProcess(args.latency) as fake:
        report, wall, started_mono, _ = timed_ingest(server, root, fake, "llm_overhead", args.chunks,
                                                     max_concurrency=args.concurrency, extraction_mode=args.mode)
        seen = fake.stats()
    assert report.chunks == args.chunks and report.chunks_failed == 0, report
    extraction_bound = math.ceil(args.chunks / args.concurrency) * args.latency
    embedding_bound = seen["embeddings"] * args.latency
    bound = extraction_bound + embedding_bound
    print(f"\nmode {args.mode}: {report.chunks} chunks, {len(seen['chat'])} chat + "
          f"{seen['embeddings']} embedding requests at {args.latency * 1000:.0f} ms, "
          f"{args.concurrency} chunks at once")
    print(f"wall {wall:.2f} s, lower bound {bound:.2f} s (extraction {extraction_bound:.2f} + "
          f"embeddings {embedding_bound:.2f}), ratio {wall / bound:.3f} (goal <= 1.10)")
    # Where the rest went, from the server's arrival times (CLOCK_MONOTONIC is system-wide).
    arrivals = sorted(c["at"] - started_mono for c in seen["chat"])
    extraction = arrivals[-1] + args.latency - arrivals[0]
    print(f"  before the first LLM call (plan) {arrivals[0]:.2f} s; extraction {extraction:.2f} s against "
          f"{extraction_bound:.2f} (ratio {extraction / extraction_bound:.3f}); after it (merge, embed, write, "
          f"finalize) {wall - arrivals[-1] - args.latency:.2f} s, of which embedding calls {embedding_bound:.2f}")

    with embedded_server() as (server, root), FakeServerProcess(args.latency) as fake:
        one = concepts_run(server, root, fake, args, workers=1)
        many = concepts_run(server, root, fake, args, workers=args.concurrency)
    print(f"\nconcepts stage, {one[2]} batches of up to {args.batch} elements, {one[3]} embedding requests:")
    for label, (wall, bound, batches, embeddings), workers in (("one batch at a time", one, 1),
                                                               (f"{args.concurrency} batches at once", many,
                                                                args.concurrency)):
        print(f"  {label}: wall {wall:.2f} s, lower bound {bound:.2f} s "
              f"(ceil({batches}/{workers}) + {embeddings} requests at {args.latency * 1000:.0f} ms), "
              f"ratio {wall / bound:.3f}")
    print(f"  concurrent / sequential wall: {many[0] / one[0]:.3f}")


if __name__ == "__main__":
    main()
