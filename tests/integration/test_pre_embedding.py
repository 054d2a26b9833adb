"""Embedding ahead: the local engine embeds each chunk's new texts as its result lands
(pre_embed_chunks), and merge_and_store embeds only what is left; the graph is the one the store
alone would write, each text is embedded once, and the cost is in the job's account."""

from __future__ import annotations

import hashlib
import threading

import numpy as np
import pytest

from kg.documents import decode_document
from kg.embeddings import Embedded
from kg.engine.local import ingest, open_local_ports
from kg.errors import ProviderUnavailable
from kg.models import JobStatus, LlmUsage, Stage
from kg.stages import extract_chunk, finalize, merge_and_store
from kg.stages.contract import ChunkTask, StageRequest
from kg.stages.merge_and_store import ClaimedTexts, pre_embed_chunks
from tests.support.extractors import ScriptedExtractor
from tests.support.stages import graph_fingerprint, start_job

NAMES = ["Alder", "Birch", "Cedar", "Dogwood", "Elm", "Fir", "Ginkgo", "Hazel", "Juniper", "Larch", "Maple", "Oak"]
# Each part names people of its own and the same two cities, so that chunks share some texts.
TEXT = "\n\n".join(f"Part {i}. Ada {name} {kin} met Bo {name} {kin} in Paris. Then Ada {name} {kin} left Paris "
                   f"for Rome, and Cy {name} {kin} wrote to her from Rome."
                   for i, (name, kin) in enumerate((n, k) for k in ("Stone", "Brook") for n in NAMES))


class HashEmbedder:
    """The same text gives the same vector whatever it is batched with (a digest of the text); it
    records which thread embedded which texts, and bills a token a text. With `fail_ahead`, the
    calls of the engine's pre-embedding thread raise, as an endpoint that is down would."""

    model = "hash-embedder"
    dimensions = 16

    def __init__(self, fail_ahead: bool = False):
        self.fail_ahead = fail_ahead
        self.calls: list[tuple[str, list[str]]] = []
        self._lock = threading.Lock()

    def embed(self, texts) -> Embedded:
        thread = threading.current_thread().name
        with self._lock:
            self.calls.append((thread, list(texts)))
        if self.fail_ahead and thread.startswith("pre-embed"):
            raise ProviderUnavailable("the embedding endpoint is down")
        vectors = np.array([_vector(t) for t in texts], dtype=np.float32).reshape(len(texts), self.dimensions)
        return Embedded(vectors, LlmUsage(calls=1, input_tokens=len(texts)))

    def texts(self, ahead: bool) -> list[str]:
        return [t for thread, texts in self.calls if thread.startswith("pre-embed") == ahead for t in texts]


def _vector(text: str) -> np.ndarray:
    raw = np.frombuffer(hashlib.sha256(text.encode()).digest()[:16], dtype=np.uint8).astype(np.float32) + 1
    return raw / np.linalg.norm(raw)


@pytest.fixture
def open_ports(settings, conceptualizer):
    opened = []

    def open_(embedder: HashEmbedder, database_url: str | None = None):
        ports = open_local_ports(settings.model_copy(update={"database_url": database_url or settings.database_url}),
                                 extractor=ScriptedExtractor(), embedder=embedder, conceptualizer=conceptualizer)
        opened.append(ports)
        return ports

    yield open_
    for ports in opened:
        ports.close()


def extracted_job(ports, settings):
    """A job planned and every chunk extracted, as the Map leaves it."""
    job = start_job(ports, settings, TEXT, source="trees")
    for i in job.items:
        extract_chunk(ChunkTask(job_id=job.job_id, index=i), ports.extractor, ports.blobs, ports.ledger)
    return job


def store(ports, job, embedder) -> None:
    while merge_and_store(StageRequest(job_id=job.job_id), embedder, ports.graph, ports.blobs,
                          ports.ledger).state == "more":
        pass


def no_concepts(settings):
    return settings.model_copy(update={"concepts": False, "dedup": False})


def test_the_engine_embeds_each_text_once_mostly_ahead_and_writes_the_graph_the_store_alone_writes(
        open_ports, settings, new_database):
    embedder = HashEmbedder()
    ports = open_ports(embedder)
    report = ingest(decode_document(TEXT.encode(), "trees", 10_000_000), ports, no_concepts(settings))
    assert report.status is JobStatus.SUCCEEDED and report.chunks > 3

    ahead, in_store = embedder.texts(ahead=True), embedder.texts(ahead=False)
    assert len(ahead) == len(set(ahead)) > 0  # a text the chunks share is embedded by one of them
    assert not set(ahead) & set(in_store)
    with ports.db.connection() as conn:
        stored = {text for (text,) in conn.execute(
            "SELECT name FROM nodes UNION SELECT name FROM relations UNION SELECT statement FROM triples")}
    assert set(ahead) | set(in_store) == stored
    assert report.embeddings.computed == len(stored)
    assert report.embeddings.reused == 0
    # Every text embedded, ahead or not, is billed to the store's part of the job.
    assert ports.ledger.get(report.job_id).llm_by_stage[Stage.STORE.value].input_tokens == len(ahead) + len(in_store)

    # The same document through the stages alone (no pre-embedding), on another database: the same graph.
    alone = open_ports(HashEmbedder(), new_database())
    job = extracted_job(alone, settings)
    store(alone, job, alone.embedder)
    finalize(job.job_id, alone.ledger, alone.blobs)
    assert graph_fingerprint(alone.db) == graph_fingerprint(ports.db)


def test_a_pre_embedding_that_fails_is_done_by_the_store(open_ports, settings):
    embedder = HashEmbedder(fail_ahead=True)
    ports = open_ports(embedder)
    report = ingest(decode_document(TEXT.encode(), "trees", 10_000_000), ports, no_concepts(settings))
    assert report.status is JobStatus.SUCCEEDED
    assert any(thread.startswith("pre-embed") for thread, _ in embedder.calls)  # it was tried
    with ports.db.connection() as conn:
        assert conn.execute("SELECT count(*) FROM nodes WHERE embedding IS NULL").fetchone()[0] == 0
        stored = conn.execute("SELECT count(*) FROM triples").fetchone()[0]
    assert stored > 0 and report.embeddings.computed == len(set(embedder.texts(ahead=False)))


def test_pre_embed_chunks_skips_what_is_stored_taken_or_done_and_the_store_uses_what_it_saved(open_ports, settings):
    embedder = HashEmbedder()
    ports = open_ports(embedder)
    job = extracted_job(ports, settings)
    claimed = ClaimedTexts()

    def ahead(indexes, claims=claimed) -> int:
        return pre_embed_chunks(job.job_id, indexes, embedder, ports.graph, ports.blobs, ports.ledger, claims)

    first = ahead([0])
    assert first > 0
    assert ahead([0], ClaimedTexts()) == 0  # saved already: nothing again, even unclaimed (a resumed job)
    rest = ahead(job.items[1:])
    assert [len(texts) for _, texts in embedder.calls] == [first, rest]  # the other chunks in one call
    embedded = embedder.texts(ahead=False)  # this test's calls run on the main thread
    assert len(embedded) == len(set(embedded))  # "Paris", "Rome": taken by chunk 0 only
    embedder.calls.clear()

    store(ports, job, embedder)
    assert embedder.calls == []  # every text was embedded ahead
    record = ports.ledger.get(job.job_id)
    assert record.counts["embeddings"] == {"computed": len(embedded), "reused": 0}
    assert record.llm_by_stage[Stage.STORE.value].input_tokens == len(embedded)


def test_vectors_saved_by_another_model_are_not_used(open_ports, settings):
    embedder = HashEmbedder()
    ports = open_ports(embedder)
    job = extracted_job(ports, settings)
    other = HashEmbedder()
    other.model = "another-model"
    saved = pre_embed_chunks(job.job_id, [0], other, ports.graph, ports.blobs, ports.ledger, ClaimedTexts())
    assert saved > 0
    store(ports, job, embedder)
    assert set(other.texts(ahead=False)) <= set(embedder.texts(ahead=False))  # embedded again, by this model


def test_the_store_looks_for_vectors_embedded_ahead_only_when_some_were(open_ports, settings):
    """The AWS engine embeds nothing ahead: its store reads no per-chunk vector blob (an S3 request each)."""
    ports = open_ports(HashEmbedder())
    job = extracted_job(ports, settings)
    read: list[str] = []
    get = ports.blobs.get

    def recording_get(key: str) -> bytes:
        read.append(key)
        return get(key)

    ports.blobs.get = recording_get
    store(ports, job, ports.embedder)
    assert read and not [key for key in read if "vectors.npz" in key]
