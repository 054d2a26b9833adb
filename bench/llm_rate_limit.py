"""Throughput under a provider rate limit: the fake server (in its own process, fixed latency) answers
429 with Retry-After beyond R requests per minute; a document goes through the whole local engine.

Achieved rate = chat requests answered 200 / the span from the first to the last admitted
request, per minute, as a fraction of R (goal >= 0.9), with zero failed chunks. The span leaves
out the plan before and the store after; the server's bucket starts full (one second's worth),
which is taken out of the count.

    .venv/bin/python bench/llm_rate_limit.py [--rate 600] [--chunks 60] [--latency 0.2]
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import embedded_server  # noqa: E402
from _llm_common import FakeServerProcess, timed_ingest  # noqa: E402
from kg.llm.client import shared_client  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=600, help="R, requests per minute")
    parser.add_argument("--chunks", type=int, default=60)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=4, help="chunks at once (KG_MAX_CONCURRENCY)")
    parser.add_argument("--mode", default="per_type", choices=["per_type", "combined"])
    args = parser.parse_args()

    with embedded_server() as (server, root), FakeServerProcess(args.latency, args.rate) as fake:
        report, wall, _, settings = timed_ingest(server, root, fake, "llm_rate", args.chunks,
                                                 max_concurrency=args.concurrency, extraction_mode=args.mode)
        seen = fake.stats()
    statuses = Counter(c["status"] for c in seen["chat"])
    admitted = sorted(c["at"] for c in seen["chat"] if c["status"] == 200)
    span = admitted[-1] - admitted[0]
    burst = max(1.0, args.rate / 60)  # the server's bucket starts full: not earned at the rate
    achieved = (len(admitted) - 1 - burst) / span * 60
    llm = shared_client(settings)
    print(f"\nR = {args.rate:.0f}/min, {args.latency * 1000:.0f} ms latency, mode {args.mode}, "
          f"{args.concurrency} chunks at once, {report.chunks} chunks, status {report.status.value}, "
          f"{report.chunks_failed} failed, {report.chunks_partial} partial")
    print(f"chat requests: {statuses[200]} answered, {statuses[429]} refused with 429; wall {wall:.1f} s")
    print(f"achieved {achieved:.0f}/min over {span:.1f} s = {achieved / args.rate:.3f} of R (goal >= 0.9); "
          f"adaptive limit ended at {llm.limit.limit} of {llm.limit.maximum}")


if __name__ == "__main__":
    main()
