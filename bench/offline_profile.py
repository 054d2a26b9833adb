"""Where the offline ingest's time goes, end to end: `kg ingest` of the whole corpus in one process.

    .venv/bin/python bench/offline_profile.py                                  # this tree, once
    .venv/bin/python bench/offline_profile.py --src before=/tmp/old/functions/common --src after=functions/common --rounds 3
    .venv/bin/python bench/offline_profile.py --py-spy /path/to/py-spy          # plus a sampled profile

Each run is one child process, `kg ingest ../shared/corpus/*.txt --json` with default settings
(spaCy extractor, MiniLM embedder, concepts on) and a fresh KG_DATA_DIR of its own (so its own
embedded PostgreSQL, stopped afterwards). Measured per run:

- end to end: the child's wall seconds from process start to exit (start-up, model loads, the
  embedded server's initdb, every document) and its CPU seconds (user + system, from wait4);
  document tokens (o200k_base, the reports' `tokens`) per wall second;
- per stage, wall seconds of the engine's stage functions (plan, extract, store, concepts), and
  inside them the seconds spent running the MiniLM model (onnxruntime `InferenceSession.run`,
  with the texts and the token ids fed, padding included) and parsing with spaCy (the time
  holding kg.nlp's parse lock, for the extractor's chunks and the concepts' names), summed over
  threads;
- the load average when the run ended, since the machine may be shared.

With several `--src`, the rounds alternate which source runs first, so load drifts hit both.
With `--py-spy`, each run is sampled (50 Hz, all threads, CPU only) and the top entries by
inclusive samples are printed: cProfile sees only the main thread, and the extract and concepts
stages run on worker threads.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, machine, print_machine

# Runs in the child: wrap the engine's stage functions and the two model calls with timers, then
# run the real command line. Module attributes are looked up at call time, so wrapping them works.
_CHILD = r"""
import collections, json, sys, threading, time
import onnxruntime
import kg.engine.local as local
import kg.nlp
import kg.extraction.offline as extraction
import kg.concepts.offline as concepts

seconds = collections.Counter()
counts = collections.Counter()
lock = threading.Lock()
label = threading.local()

def add(name, dt, n=0):
    with lock:
        seconds[name] += dt
        counts[name] += n

def timed(name, fn):
    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            add(name, time.perf_counter() - started)
    return wrapper

def labelled(name, fn, count):
    # The parse functions wait for kg.nlp's parse lock: only the time holding it is parse time.
    def wrapper(*args, **kwargs):
        label.name = name
        add(name, 0, count(*args))
        return fn(*args, **kwargs)
    return wrapper

class TimedLock:
    def __init__(self, inner):
        self.inner = inner
    def __enter__(self):
        self.inner.acquire()
        self.started = time.perf_counter()
    def __exit__(self, *exc):
        add(getattr(label, "name", "spacy:other"), time.perf_counter() - self.started)
        self.inner.release()

for name in ("plan", "_extract", "merge_and_store", "generate_concepts", "finalize"):
    setattr(local, name, timed("stage:" + name, getattr(local, name)))
kg.nlp._parse_lock = TimedLock(kg.nlp._parse_lock)
extraction.parse_text = labelled("spacy:extract", extraction.parse_text, lambda nlp, text: 1)
concepts.parse_many = labelled("spacy:concepts", concepts.parse_many, lambda nlp, texts: len(texts))
run = onnxruntime.InferenceSession.run
def model_run(self, outputs, feeds, *args, **kwargs):
    started = time.perf_counter()
    try:
        return run(self, outputs, feeds, *args, **kwargs)
    finally:
        ids = feeds.get("input_ids")
        add("model", time.perf_counter() - started, 0 if ids is None else ids.shape[0])
        if ids is not None:
            add("model:tokens", 0, ids.size)
onnxruntime.InferenceSession.run = model_run

from kg import cli
sys.argv = ["kg", "ingest", *json.loads(sys.argv[1]), "--json"]
try:
    cli.main()
except SystemExit as e:
    if e.code:
        raise
print("PROFILE " + json.dumps({"seconds": seconds, "counts": counts}), flush=True)
"""

STAGES = [("plan", "stage:plan"), ("extract", "stage:_extract"), ("store", "stage:merge_and_store"),
          ("concepts", "stage:generate_concepts"), ("finalize", "stage:finalize")]


def run_once(src: Path, paths: list[str], py_spy: str | None, spy_out: Path | None) -> dict:
    data_dir = Path(tempfile.mkdtemp(prefix="offline-profile-"))
    data_dir.chmod(0o755)  # run as root, the embedded server's own user must be able to enter it
    env = {k: v for k, v in os.environ.items() if not k.startswith("KG_")}
    env["KG_DATA_DIR"] = str(data_dir)
    env["PYTHONPATH"] = str(src)
    cmd = [sys.executable, "-c", _CHILD, json.dumps(paths)]
    if py_spy:
        cmd = [py_spy, "record", "-r", "50", "-f", "raw", "-o", str(spy_out), "--", *cmd]
    try:
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            started = time.perf_counter()
            proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=REPO)
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - started
            out.seek(0)
            err.seek(0)
            stdout, stderr = out.read().decode(), err.read().decode()
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"run of {src} failed:\n{stderr[-3000:]}")
    finally:
        subprocess.run([str(Path(sys.executable).parent / "kg"), "db", "stop"], env=env, capture_output=True, check=False)
        shutil.rmtree(data_dir, ignore_errors=True)
    reports = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    profile = json.loads(next(line for line in stdout.splitlines() if line.startswith("PROFILE "))[8:])
    if any(r["status"] != "SUCCEEDED" for r in reports):
        raise SystemExit(f"a job of {src} did not succeed: {[r['error'] for r in reports]}")
    return {
        "wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "load": os.getloadavg()[0],
        "tokens": sum(r["tokens"] for r in reports), "ingest_s": sum(r["duration_s"] for r in reports),
        "triples": sum(r["triples"]["total"] for r in reports),
        "embeddings_computed": sum(r["embeddings"]["computed"] for r in reports),
        "seconds": profile["seconds"], "counts": profile["counts"],
    }


# Frames that only carry the call down (threads, the command line, this bench's wrappers): left
# out of the summary, which would otherwise open with twenty entries at 100%.
_PLUMBING = re.compile(r"\((threading\.py|concurrent/futures/|typer/|<frozen runpy>|<string>)|^<module> ")


def spy_summary(path: Path, top: int) -> list[tuple[float, str]]:
    """The functions in most samples (inclusive: counted once per sample whatever the depth)."""
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack:
            continue
        total += int(n)
        names = set()
        for frame in stack.split(";"):
            m = re.match(r"(.*) \((.*?)(?::\d+)?\)$", frame)
            if m:
                where = re.sub(r".*/(site-packages|functions/common|python3\.\d+)/", "", m.group(2))
                name = f"{m.group(1)} ({where})"
                if not _PLUMBING.search(name):
                    names.add(name)
        for name in names:
            inclusive[name] += int(n)
    return [(100 * n / total, name) for name, n in inclusive.most_common(top)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="*", help="documents (default: ../shared/corpus/*.txt)")
    ap.add_argument("--src", action="append", default=[], metavar="NAME=DIR",
                    help="a source root holding the kg package (default: this tree's functions/common)")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--py-spy", help="the py-spy program: sample every run")
    ap.add_argument("--top", type=int, default=15)
    args = ap.parse_args()
    paths = args.paths or sorted(str(p) for p in (REPO.parent / "shared" / "corpus").glob("*.txt"))
    sources = dict(s.split("=", 1) for s in args.src) or {"this tree": str(REPO / "functions" / "common")}
    runs: dict[str, list[dict]] = {name: [] for name in sources}
    spy_dir = Path(tempfile.mkdtemp(prefix="offline-profile-spy-")) if args.py_spy else None  # kept: raw stacks
    for k in range(args.rounds):
        order = list(sources.items())
        for name, src in order if k % 2 == 0 else reversed(order):
            spy_out = spy_dir / f"{re.sub(r'[^A-Za-z0-9]', '_', name)}-{k}.raw" if spy_dir else None
            run = run_once(Path(src).resolve(), paths, args.py_spy, spy_out)
            run["spy"] = spy_out
            runs[name].append(run)
            print(f"  round {k + 1} {name}: {run['wall_s']:.1f} s wall, {run['cpu_s']:.1f} s CPU, "
                  f"{run['tokens'] / run['wall_s']:,.0f} tokens/s, load {run['load']:.2f}", flush=True)

    first = next(iter(runs.values()))[0]
    print(f"\n{len(paths)} documents, {first['tokens']:,} document tokens")
    print_machine(machine())
    print()
    print("| source | run | wall s | CPU s | tokens/s (wall) | tokens/s (ingest s) | load | "
          + " | ".join(name for name, _ in STAGES) + " | model s (texts, tokens fed) | spaCy extract s | spaCy concepts s | triples |")
    print("|---|---:|---:|---:|---:|---:|---:|" + "---:|" * len(STAGES) + "---:|---:|---:|---:|")
    for name, rs in runs.items():
        for k, r in enumerate(rs):
            s, c = r["seconds"], r["counts"]
            print(f"| {name} | {k + 1} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | {r['tokens'] / r['wall_s']:,.0f} "
                  f"| {r['tokens'] / r['ingest_s']:,.0f} | {r['load']:.2f} | "
                  + " | ".join(f"{s.get(key, 0):.1f}" for _, key in STAGES)
                  + f" | {s.get('model', 0):.1f} ({c.get('model', 0):,}, {c.get('model:tokens', 0):,}) "
                  f"| {s.get('spacy:extract', 0):.1f} "
                  f"| {s.get('spacy:concepts', 0):.1f} | {r['triples']:,} |")
    if len(runs) > 1 or args.rounds > 1:
        print()
        for name, rs in runs.items():
            print(f"  {name}: median {statistics.median(r['tokens'] / r['wall_s'] for r in rs):,.0f} tokens/s "
                  f"(wall), median CPU {statistics.median(r['cpu_s'] for r in rs):.1f} s")
    if args.py_spy:
        for name, rs in runs.items():
            print(f"\nTop {args.top} by inclusive samples (py-spy, all threads), {name}, round 1 ({rs[0]['spy']}):")
            for share, fn in spy_summary(rs[0]["spy"], args.top):
                print(f"  {share:5.1f}%  {fn}")


if __name__ == "__main__":
    main()
