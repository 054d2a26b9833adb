"""End-to-end local ingest through the real `kg` command, one child process per document.

For each document: `kg ingest PATH --json` into a fresh database of a bench-owned embedded
PostgreSQL (KG_DATABASE_URL) with a bench-owned KG_DATA_DIR (never the user's), then the very same
command again (a re-ingest of the unchanged document). Measured per child: wall seconds (process
start to exit: interpreter start-up, model loading and ingest), the ingest's own `duration_s` from
the JSON report, document tokens per second, peak RSS (ru_maxrss of that one child, from wait4),
triples per type, embeddings computed and reused.

    .venv/bin/python bench/ingest.py                      # examples/curie.txt and ../shared/corpus/*.txt
    .venv/bin/python bench/ingest.py --no-corpus
    .venv/bin/python bench/ingest.py --corpus DIR
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, embedded_server, fresh_database, machine, print_machine  # noqa: E402

TYPES = ("ENTITY_ENTITY", "ENTITY_EVENT", "EVENT_EVENT", "EMOTIONAL_CONTEXT")


def run_child(cmd: list[str], env: dict[str, str], workdir: Path) -> dict:
    """Run cmd in its own process; wall seconds and that child's own peak RSS (wait4, not RUSAGE_CHILDREN)."""
    out_path, err_path = workdir / "stdout.txt", workdir / "stderr.txt"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=REPO)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    stdout = out_path.read_text()
    return {
        "rc": proc.returncode,
        "wall_s": wall,
        "maxrss_mib": usage.ru_maxrss / 1024,  # kilobytes on Linux
        "user_s": usage.ru_utime,
        "sys_s": usage.ru_stime,
        "reports": [json.loads(line) for line in stdout.splitlines() if line.startswith("{")],
        "stderr": err_path.read_text(),
    }


def child_env(url: str, data_dir: Path) -> dict[str, str]:
    # Settings at their defaults: drop any KG_* the caller's shell carries, then point at the bench's own places.
    env = {k: v for k, v in os.environ.items() if not k.startswith("KG_")}
    env["KG_DATABASE_URL"] = url
    env["KG_DATA_DIR"] = str(data_dir)
    return env


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kg", default=str(Path(sys.executable).parent / "kg"), help="the kg command")
    ap.add_argument("--example", default=str(REPO / "examples" / "curie.txt"))
    ap.add_argument("--corpus", default=str(REPO.parent / "shared" / "corpus"))
    ap.add_argument("--no-corpus", action="store_true")
    args = ap.parse_args()

    documents = [Path(args.example)]
    corpus = Path(args.corpus)
    if not args.no_corpus:
        if corpus.is_dir() and sorted(corpus.glob("*.txt")):
            documents += sorted(corpus.glob("*.txt"))
        else:
            print(f"corpus folder {corpus} missing or without *.txt: skipped", file=sys.stderr)

    rows = []
    with embedded_server() as (server, root):
        facts = None
        for doc in documents:
            url = fresh_database(server, doc.stem[:20])
            data_dir = root / f"data-{doc.stem}"
            env = child_env(url, data_dir)
            cmd = [args.kg, "ingest", str(doc), "--json"]
            runs = {}
            for phase in ("ingest", "re-ingest"):
                with tempfile.TemporaryDirectory(dir=root) as work:
                    result = run_child(cmd, env, Path(work))
                if result["rc"] != 0 or len(result["reports"]) != 1:
                    raise SystemExit(f"{doc.name} {phase}: exit {result['rc']}\n{result['stderr'][-3000:]}")
                runs[phase] = result
                report = result["reports"][0]
                print(f"  {doc.name} {phase}: {result['wall_s']:.1f}s wall, ingest {report['duration_s']:.1f}s, "
                      f"{result['maxrss_mib']:.0f} MiB, embeddings {report['embeddings']}", flush=True)
            facts = facts or machine(url)
            rows.append((doc, runs))

    print_machine(facts)
    print()
    print("| document | tokens | chunks | wall s | ingest s | tokens/s (ingest s) | tokens/s (wall) | peak RSS MiB "
          "| triples EE / EV / VV / EMO = total | embeddings computed |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|---:|")
    for doc, runs in rows:
        r, rep = runs["ingest"], runs["ingest"]["reports"][0]
        t = rep["triples"]
        print(f"| {doc.name} | {rep['tokens']:,} | {rep['chunks']} | {r['wall_s']:.1f} | {rep['duration_s']:.1f} "
              f"| {rep['tokens'] / rep['duration_s']:,.0f} | {rep['tokens'] / r['wall_s']:,.0f} "
              f"| {r['maxrss_mib']:.0f} | {' / '.join(str(t[k]) for k in TYPES)} = {t['total']} "
              f"| {rep['embeddings']['computed']:,} |")
    if len(rows) > 1:
        corpus_rows = rows[1:]
        tokens = sum(runs["ingest"]["reports"][0]["tokens"] for _, runs in corpus_rows)
        ingest_s = sum(runs["ingest"]["reports"][0]["duration_s"] for _, runs in corpus_rows)
        wall_s = sum(runs["ingest"]["wall_s"] for _, runs in corpus_rows)
        peak = max(runs["ingest"]["maxrss_mib"] for _, runs in corpus_rows)
        triples = sum(runs["ingest"]["reports"][0]["triples"]["total"] for _, runs in corpus_rows)
        print(f"| corpus, {len(corpus_rows)} documents (sum; peak = max) | {tokens:,} | | {wall_s:.1f} | {ingest_s:.1f} "
              f"| {tokens / ingest_s:,.0f} | {tokens / wall_s:,.0f} | {peak:.0f} | {triples} | |")
    print()
    print("Re-ingest of the same document (same command again, same database):")
    print()
    print("| document | wall s | ingest s | re-ingest / ingest (ingest s) | embeddings computed | reused "
          "| triples equal | peak RSS MiB |")
    print("|---|---:|---:|---:|---:|---:|---|---:|")
    bad = []
    for doc, runs in rows:
        r, rep, first = runs["re-ingest"], runs["re-ingest"]["reports"][0], runs["ingest"]["reports"][0]
        if rep["embeddings"]["computed"] != 0:
            bad.append(doc.name)
        print(f"| {doc.name} | {r['wall_s']:.1f} | {rep['duration_s']:.1f} "
              f"| {rep['duration_s'] / first['duration_s']:.2f} | {rep['embeddings']['computed']} "
              f"| {rep['embeddings']['reused']:,} | {rep['triples'] == first['triples']} | {r['maxrss_mib']:.0f} |")
    if bad:
        print(f"\nFAIL: a re-ingest computed embeddings for {', '.join(bad)} (must be 0)")
        raise SystemExit(1)
    print("\nre-ingest embeddings computed: 0 for every document")


if __name__ == "__main__":
    main()
