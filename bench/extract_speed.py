"""Speed of the offline extractor's extract stage, this tree against an earlier commit, in one run.

    .venv/bin/python bench/extract_speed.py --before 25964c9 [--rounds 5] [PATH ...]
    .venv/bin/python bench/extract_speed.py --before-src /tmp/old/functions/common [PATH ...]

The documents (default: ../shared/corpus/*.txt and examples/*.txt) are cut into chunks with the
default settings (3,000 tokens, 200 overlap) and every chunk is extracted for all four triple
types, as the extract stage does. Each round runs both versions once, alternating which goes
first, each in its own process (the spaCy model is loaded and warmed before the clock starts);
the figure is document tokens per second of extraction, and the ratio is after / before per
round, so machine noise moves both alike. The earlier commit is checked out into a temporary
git worktree; `--before-src` names a source root holding the earlier `kg` package instead (no git).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, machine  # noqa: E402

_MEASURE = r"""
import json, sys, time
from kg.chunking import chunk_text
from kg.extraction.offline import SpacyExtractor
from kg.models import TripleType
paths = json.loads(sys.argv[1])
chunks = [c for k, p in enumerate(paths) for c in chunk_text(open(p, encoding="utf-8").read(), f"d{k}")]
ex = SpacyExtractor()
ex.extract(chunks[0], list(TripleType))  # load and warm the model
started = time.perf_counter()
triples = sum(len(ex.extract(c, list(TripleType)).triples) for c in chunks)
seconds = time.perf_counter() - started
print(json.dumps({"tokens": sum(c.tokens for c in chunks), "chunks": len(chunks), "seconds": seconds,
                  "triples": triples, "module": SpacyExtractor.__module__}))
"""


def run(src: Path, paths: list[str]) -> dict:
    """One measurement in a child process importing kg from the source root `src`."""
    env = {"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, json.dumps(paths)], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def compare(before: Path, paths: list[str], rounds: int) -> dict[str, list[dict]]:
    results: dict[str, list[dict]] = {"before": [], "after": []}
    for k in range(rounds):
        order = [("before", before), ("after", REPO / "functions" / "common")]
        for name, src in order if k % 2 == 0 else reversed(order):
            results[name].append(run(src, paths))
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="*")
    before = ap.add_mutually_exclusive_group(required=True)
    before.add_argument("--before", help="the commit to compare against")
    before.add_argument("--before-src", help="a source root holding the earlier kg package")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    paths = args.paths or sorted(
        str(p) for p in [*(REPO.parent / "shared" / "corpus").glob("*.txt"), *(REPO / "examples").glob("*.txt")]
    )
    if args.before_src:
        results = compare(Path(args.before_src).resolve(), paths, args.rounds)
    else:
        with tempfile.TemporaryDirectory(prefix="kg-extract-speed-") as tmp:
            worktree = Path(tmp) / "before"
            subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-q", str(worktree), args.before],
                           check=True)
            try:
                results = compare(worktree / "functions" / "common", paths, args.rounds)
            finally:
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(worktree)], check=False)
    tokens = results["after"][0]["tokens"]
    rate = {n: [tokens / r["seconds"] for r in rs] for n, rs in results.items()}
    ratios = [a / b for a, b in zip(rate["after"], rate["before"], strict=True)]
    print(f"{len(paths)} documents, {tokens:,} tokens, {results['after'][0]['chunks']} chunks, {args.rounds} rounds")
    for name in ("before", "after"):
        print(
            f"  {name:<6} median {statistics.median(rate[name]):8.1f} tokens/s"
            f"  (min {min(rate[name]):.1f}, max {max(rate[name]):.1f}), triples {results[name][0]['triples']}"
        )
    print(f"  after/before per round: {', '.join(f'{r:.3f}' for r in ratios)}; median {statistics.median(ratios):.3f}")
    print(f"  machine: {machine()}")


if __name__ == "__main__":
    main()
