"""Shared by the LLM benchmarks: the fake OpenAI server, settings pointing at it, a document of N chunks."""

from __future__ import annotations

import re
import sys
import tempfile
import time
from pathlib import Path

from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.support.fake_openai

from _common import fresh_database, machine, print_machine  # noqa: E402

from kg.chunking import chunk_text  # noqa: E402
from kg.documents import decode_document  # noqa: E402
from kg.engine.local import ingest, open_local_ports  # noqa: E402
from kg.models import DocumentInput, IngestReport  # noqa: E402
from kg.settings import Settings  # noqa: E402

PARAGRAPH = (
    "Marie Curie worked in Paris with Pierre Curie. Henri Becquerel found rays in Uranium salts. "
    "The Sorbonne hired Marie after Pierre died. Irene Curie later married Frederic Joliot. "
    "Warsaw remembered Marie with pride, and Poland honoured her."
)


def llm_settings(url: str, database_url: str, data_dir: Path, **overrides) -> Settings:
    values = {
        "database_url": database_url, "data_dir": data_dir, "llm_provider": "openai",
        "embedding_provider": "openai", "openai_api_key": SecretStr("bench"), "openai_base_url": url,
        "embedding_dimensions": 256, "chunk_tokens": 200, "chunk_overlap_tokens": 20,
        "concepts": False, "dedup": False,  # extraction and store only: the stages this measures
    }
    return Settings(**{**values, **overrides})


_SYLLABLES = ("ka", "lo", "mi", "ren", "to", "vi", "sa", "du", "ne", "po", "ri", "gu", "fe", "ba", "zo", "the")


def _name(number: int) -> str:
    """A made-up capitalised name, a different one for each number."""
    parts = []
    while True:
        number, digit = divmod(number, len(_SYLLABLES))
        parts.append(_SYLLABLES[digit])
        if number == 0:
            break
    return ("".join(parts) + "n").capitalize()


def paragraph(part: int, distinct: bool) -> str:
    """PARAGRAPH, or with names of its own (so its facts, vectors and concepts are new to the graph)."""
    if not distinct:
        return PARAGRAPH
    names = {word: _name(part * 64 + k) for k, word in enumerate(sorted(set(re.findall(r"\b[A-Z][a-z]+", PARAGRAPH))))}
    return re.sub(r"\b[A-Z][a-z]+", lambda m: names[m.group(0)], PARAGRAPH)


def document_of(chunks: int, settings: Settings, source: str = "bench-doc", distinct: bool = False) -> DocumentInput:
    """A document that chunks into exactly `chunks` chunks under these settings; `distinct`: each
    part names its own people and places, as a real document's chunks do, instead of repeating one."""
    paragraphs = chunks
    while True:
        text = "\n\n".join(f"Part {i}. {paragraph(i, distinct)}" for i in range(paragraphs))
        found = len(chunk_text(text, "d", settings.chunk_tokens, settings.chunk_overlap_tokens,
                               settings.tokenizer_encoding))
        if found == chunks:
            return decode_document(text.encode(), source, 10_000_000)
        paragraphs += 1 if found < chunks else -1


class FakeServerProcess:
    """tests.support.fake_openai in a child process: its CPU does not compete for this one's GIL."""

    def __init__(self, latency_s: float, rate_per_minute: float | None = None, distinct_concepts: bool = False):
        import subprocess

        cmd = [sys.executable, "-m", "tests.support.fake_openai", "--latency", str(latency_s)]
        if rate_per_minute:
            cmd += ["--rate", str(rate_per_minute)]
        if distinct_concepts:
            cmd.append("--distinct-concepts")
        root = Path(__file__).resolve().parent.parent
        self.process = subprocess.Popen(cmd, cwd=root, stdout=subprocess.PIPE, text=True)
        self.url = self.process.stdout.readline().strip()

    def stats(self) -> dict:
        import json
        import urllib.request

        with urllib.request.urlopen(self.url.removesuffix("/v1") + "/_stats") as response:
            return json.load(response)

    def __enter__(self) -> FakeServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def timed_ingest(
    server, root: Path, fake: FakeServerProcess, label: str, chunks: int, observer=None, distinct: bool = False,
    **overrides,
) -> tuple[IngestReport, float, float, Settings]:
    """A document of `chunks` chunks through the whole local engine against the fake server, into a
    fresh database: (report, wall seconds, monotonic clock at the start, settings)."""
    url = fresh_database(server, label)
    print_machine(machine(url))
    settings = llm_settings(fake.url, url, Path(tempfile.mkdtemp(dir=root)), **overrides)
    document = document_of(chunks, settings, distinct=distinct)
    ports = open_local_ports(settings)
    try:
        started, started_mono = time.perf_counter(), time.monotonic()
        report = ingest(document, ports, settings, observer)
        return report, time.perf_counter() - started, started_mono, settings
    finally:
        ports.close()
