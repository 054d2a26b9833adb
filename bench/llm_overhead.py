"""Overhead of the pipeline around the LLM calls: a 40-chunk document through the whole local engine
(OpenAI extractor and embedder against the fake server at a fixed latency, embedded PostgreSQL),
wall time against the lower bound the calls alone set at the configured concurrency.

Lower bound: chunks go max_concurrency at a time and a chunk's four per-type calls run together,
so extraction cannot take less than ceil(chunks / max_concurrency) x latency; the embedding
requests of merge-and-store run one after another: + requests x latency.

Then end to end with concepts on (the issue 13 goal: wall <= 1.10 x the bound): the bound is the
calls that must follow one another whatever the code does: the extraction rounds; one embedding
request for the texts of the last chunks (the texts of earlier chunks can be embedded while later
ones are extracted); the concept rounds (ceil(batches / workers) x latency, the phrases' embeddings
overlapping the next calls); the last concept batch's embedding request. The store's embedding
requests are counted too (those made during extraction, and those after it); with
`--store-rounds` the bound also counts the store's requests after extraction,
KG_EMBEDDING_CONCURRENCY at once, as BENCHMARKS §12 did before embedding moved ahead.

Then the concepts stage, on its own clock (an observer marks its start and end), run twice on the
same document: its batches one at a time (KG_CONCEPT_WORKERS=1, as before concurrent batches) and
`--concurrency` at a time. Its lower bound: ceil(batches / workers) x latency for the
conceptualizer calls, plus its embedding requests, which run one per batch after it.

    .venv/bin/python bench/llm_overhead.py [--chunks 40] [--latency 0.2] [--concurrency 4] [--parts all|e2e]
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


class StageClock:
    """The fake server's counts at the start of each stage (and at the end of the last)."""

    def __init__(self, fake: FakeServerProcess):
        self.fake = fake
        self.at: dict[Stage, tuple[float, dict]] = {}
        self.ended = 0.0

    def stage_started(self, stage: Stage, total: int) -> None:
        self.at[stage] = (time.perf_counter(), self.fake.stats())

    def advanced(self, stage: Stage, amount: int = 1) -> None:
        self.ended = time.perf_counter()

    def embeddings(self, stage: Stage, until: Stage | None) -> int:
        end = self.at[until][1] if until else self.fake.stats()
        return end["embeddings"] - self.at[stage][1]["embeddings"]

    def chats(self, stage: Stage, until: Stage | None) -> int:
        end = self.at[until][1] if until else self.fake.stats()
        return len(end["chat"]) - len(self.at[stage][1]["chat"])


def end_to_end(args) -> None:
    """The whole job with concepts on, against the bound its LLM calls set."""
    from kg.settings import Settings

    embedding_concurrency = Settings.model_fields["embedding_concurrency"].default
    # Parts with names of their own and a concept per element: each chunk's facts, each batch's
    # phrases new to the graph, as in a real document (the repeated paragraph embeds almost nothing).
    with embedded_server() as (server, root), FakeServerProcess(args.latency, distinct_concepts=True) as fake:
        clock = StageClock(fake)
        report, wall, _, settings = timed_ingest(
            server, root, fake, "llm_overhead_e2e", args.chunks, observer=clock, distinct=True,
            max_concurrency=args.concurrency, extraction_mode=args.mode, concepts=True)  # batches of 50, the default
        assert report.status.value == "SUCCEEDED" and report.concepts.elements > 0, report
        ahead_embeddings = clock.embeddings(Stage.EXTRACT, Stage.STORE)
        store_embeddings = clock.embeddings(Stage.STORE, Stage.CONCEPTS)
        concept_calls = clock.chats(Stage.CONCEPTS, None)
        concept_embeddings = clock.embeddings(Stage.CONCEPTS, None)
        stage_walls = {stage.value: round(later[0] - at[0], 2) for (stage, at), later in
                       zip(clock.at.items(), [*list(clock.at.values())[1:], (clock.ended, {})], strict=True)}
    workers = settings.concept_workers or settings.max_concurrency
    rounds = {
        "extraction": math.ceil(args.chunks / args.concurrency),
        "store embeddings": (math.ceil(store_embeddings / embedding_concurrency) if args.store_rounds
                             else 1 if ahead_embeddings + store_embeddings else 0),
        "concept calls": math.ceil(concept_calls / workers),
        "last concept embedding": 1 if concept_embeddings else 0,
    }
    bound = sum(rounds.values()) * args.latency
    print(f"\nend to end with concepts ({args.mode}, {args.chunks} chunks, {args.latency * 1000:.0f} ms): "
          f"{ahead_embeddings} embedding requests during extraction, {store_embeddings} in the store, "
          f"{concept_calls} concept calls + {concept_embeddings} embedding requests")
    print(f"  rounds on the critical path: {rounds}")
    ratio = f"{wall / bound:.3f}" if bound else "-"
    print(f"  wall {wall:.2f} s, lower bound {bound:.2f} s, ratio {ratio} (goal <= 1.10)")
    print(f"  stages (s): {stage_walls}")


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
    parser.add_argument("--parts", default="all", choices=["all", "e2e"])
    parser.add_argument("--store-rounds", action="store_true",
                        help="e2e: the bound counts the store's embedding requests after extraction, 4 at once "
                             "(the bound of BENCHMARKS §12 before embedding moved ahead)")
    args = parser.parse_args()
    end_to_end(args)
    if args.parts == "e2e":
        return

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
