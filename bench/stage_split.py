"""Where the time of one local ingest goes, in process: kg.engine.local.ingest with the real spaCy
extractor and MiniLM embedder, on a fresh database of a bench-owned embedded PostgreSQL.

Stage boundaries come from the engine's own progress observer; inside merge_and_store the merge,
the stored-vector lookup, the embedding and write_document are timed by wrapping them in this
process only (no product code is changed). The models are loaded before the clock starts. The
document is ingested twice (the second time unchanged: a re-ingest).

    .venv/bin/python bench/stage_split.py [PATH ...]      # default: examples/curie.txt
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, embedded_server, fresh_database, machine, print_machine  # noqa: E402


class Clock:
    def __init__(self):
        self.seconds: dict[str, float] = {}

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    def wrap(self, name: str, fn):
        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.add(name, time.perf_counter() - t0)

        return timed


class StageObserver:
    """Records when each stage starts; the stage ends when the next one starts (or ingest returns)."""

    def __init__(self):
        self.starts: list[tuple[str, float]] = []

    def stage_started(self, stage, total: int) -> None:
        self.starts.append((stage.value, time.perf_counter()))

    def advanced(self, stage, amount: int = 1) -> None:
        pass

    def split(self, began: float, ended: float) -> dict[str, float]:
        marks = [*self.starts, ("end", ended)]
        out = {"before plan": marks[0][1] - began}
        for (name, t), (_, t_next) in zip(marks, marks[1:], strict=False):
            out[name] = t_next - t
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("paths", nargs="*", default=[str(REPO / "examples" / "curie.txt")])
    args = ap.parse_args()

    with embedded_server() as (server, root):
        from kg.documents import decode_document
        from kg.engine import local
        from kg.graph.postgres import PostgresGraphStore
        from kg.settings import Settings

        mas_module = importlib.import_module("kg.stages.merge_and_store")
        facts = None
        for path in map(Path, args.paths):
            url = fresh_database(server, "split")
            settings = Settings(database_url=url, data_dir=root / f"data-{path.stem}")
            t0 = time.perf_counter()
            ports = local.open_local_ports(settings)
            opened = time.perf_counter() - t0
            facts = facts or machine(url)
            t0 = time.perf_counter()
            ports.embedder.embed(["warm up"])
            if hasattr(ports.extractor, "_pipeline"):
                ports.extractor._pipeline()
            loaded = time.perf_counter() - t0
            print(f"{path.name}: ports opened in {opened:.2f}s, models loaded in {loaded:.2f}s (not counted below)")
            document = decode_document(path.read_bytes(), str(path.resolve()), settings.max_document_bytes)
            try:
                for run in ("ingest", "re-ingest"):
                    clock = Clock()
                    mas_original = local.merge_and_store
                    local.merge_and_store = clock.wrap("merge_and_store", mas_original)
                    originals = (mas_module.merge_chunk_results, mas_module.embedding_map,
                                 PostgresGraphStore.write_document, ports.embedder.embed,
                                 ports.graph.stored_vectors)
                    mas_module.merge_chunk_results = clock.wrap("merge_chunk_results", originals[0])
                    mas_module.embedding_map = clock.wrap("embedding_map (lookup + embed)", originals[1])
                    ports.graph.write_document = clock.wrap("write_document", ports.graph.write_document)
                    ports.graph.stored_vectors = clock.wrap("stored_vectors (every call)", originals[4])
                    ports.embedder.embed = clock.wrap("embedder.embed (every stage)", originals[3])
                    observer = StageObserver()
                    began = time.perf_counter()
                    try:
                        report = local.ingest(document, ports, settings, observer)
                    finally:
                        ended = time.perf_counter()
                        mas_module.merge_chunk_results, mas_module.embedding_map = originals[0], originals[1]
                        local.merge_and_store = mas_original
                        del ports.graph.write_document, ports.graph.stored_vectors, ports.embedder.embed
                    split = observer.split(began, ended)
                    total = ended - began
                    print(f"\n{path.name} {run}: {report.tokens:,} tokens, {report.chunks} chunks, "
                          f"{report.triples['total']} triples, embeddings {report.embeddings.model_dump()}, "
                          f"{total:.2f}s")
                    print("| part | seconds | share |")
                    print("|---|---:|---:|")
                    parts = dict(clock.seconds)
                    mas = parts.pop("merge_and_store")
                    embed = parts.pop("embedder.embed (every stage)", None)
                    names = {"EXTRACT": "EXTRACT (spaCy; chunks in a thread pool)"}
                    stages = list(split.items())
                    for i, (name, s) in enumerate(stages):
                        last = i == len(stages) - 1 and name != "before plan"
                        label = names.get(name, name) + (" (+ finalize, blob cleanup, report)" if last else "")
                        print(f"| {label} | {s:.2f} | {s / total:.0%} |")
                        if name == "STORE":
                            print(f"| &nbsp;&nbsp;merge_and_store | {mas:.2f} | {mas / total:.0%} |")
                            for part, ps in parts.items():
                                print(f"| &nbsp;&nbsp;&nbsp;&nbsp;{part.strip()} | {ps:.2f} | {ps / total:.0%} |")
                    if embed is not None:
                        print(f"| embedder.embed, every stage (inside the rows above) | {embed:.2f} | {embed / total:.0%} |")
            finally:
                ports.close()
    print()
    print_machine(facts)


if __name__ == "__main__":
    main()
