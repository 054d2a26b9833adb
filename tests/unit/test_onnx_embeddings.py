"""The offline embedder: the int8 MiniLM gives normalised 384-d vectors that mean something."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from kg.embeddings import onnx_minilm
from kg.embeddings.onnx_minilm import MiniLmEmbedder


@pytest.fixture(scope="module")
def embedder():
    return MiniLmEmbedder(batch_size=2)


def test_vectors_are_normalised_and_in_input_order(embedder):
    texts = ["a much longer sentence about the discovery of polonium in 1898", "radium", "Paris"]
    vectors = embedder.embed(texts).vectors
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # Batches are sorted by length inside; the output must still follow the input order.
    assert np.allclose(vectors[1], embedder.embed(["radium"]).vectors[0], atol=1e-5)


def test_paraphrases_are_closer_than_unrelated_text(embedder):
    a, b, c = embedder.embed([
        "Marie Curie discovered radium",
        "Marie Curie discovered the element radium",
        "The stock market fell sharply on Monday",
    ]).vectors
    assert a @ b > 0.85 > a @ c


def test_no_texts_give_an_empty_matrix(embedder):
    assert embedder.embed([]).vectors.shape == (0, 384)


def test_embedders_of_one_process_share_one_load_of_the_model(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(onnx_minilm, "_models", {})
    loads: list[int] = []
    real_load = onnx_minilm._load
    monkeypatch.setattr(onnx_minilm, "_load", lambda threads: loads.append(threads) or real_load(threads))
    first, second = MiniLmEmbedder(), MiniLmEmbedder(batch_size=7)
    assert np.array_equal(first.embed(["radium"]).vectors, second.embed(["radium"]).vectors)
    assert len(loads) == 1


MIXED = [
    "radium",
    "Marie Curie discovered polonium and radium in Paris in 1898, with Pierre Curie",
    "Nobel Prize",
    "the Sorbonne",
    "radium",  # the same text twice in one call
    "She was the first woman to win a Nobel Prize, and the only person to win it in two sciences.",
    "Warsaw",
    "Pierre Curie died in a street accident in Paris in 1906",
]


class _CountingSession:
    """The real onnxruntime session, recording the input_ids of every run."""

    def __init__(self, session):
        self.session, self.runs = session, []

    def run(self, outputs, feeds):
        self.runs.append(feeds["input_ids"])
        return self.session.run(outputs, feeds)


def _count_runs(embedder: MiniLmEmbedder) -> _CountingSession:
    session, tokenizer = embedder._model
    embedder._model = (counting := _CountingSession(session), tokenizer)
    return counting


def _padded_batch_vectors(embedder: MiniLmEmbedder, texts: list[str]) -> np.ndarray:
    """The vectors of one padded batch, every text padded to the longest with its mask (how a
    batch of mixed lengths is embedded without grouping)."""
    session, tokenizer = embedder._model
    encodings = [tokenizer.encode(t).ids for t in texts]
    longest = max(map(len, encodings))
    ids = np.array([e + [0] * (longest - len(e)) for e in encodings], dtype=np.int64)
    mask = np.array([[1] * len(e) + [0] * (longest - len(e)) for e in encodings], dtype=np.int64)
    (hidden,) = session.run(
        ["last_hidden_state"], {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})
    pooled = (hidden * mask[:, :, None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)
    return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


def test_mixed_lengths_batched_give_the_vectors_of_one_text_at_a_time():
    batched = MiniLmEmbedder(batch_size=3, cache_size=0).embed(MIXED).vectors
    alone_embedder = MiniLmEmbedder(batch_size=1, cache_size=0)
    alone = np.stack([alone_embedder.embed([t]).vectors[0] for t in MIXED])
    padded = _padded_batch_vectors(alone_embedder, MIXED)
    assert (batched * alone).sum(axis=1).min() >= 1 - 1e-5
    assert (padded * alone).sum(axis=1).min() >= 1 - 1e-5
    # And the order is the input's: different texts are far apart.
    assert batched[0] @ batched[1] < 0.9


def test_no_batch_carries_padding_and_each_distinct_text_runs_once():
    embedder = MiniLmEmbedder(batch_size=2, cache_size=0)
    embedder.embed(["warm up"])
    counting = _count_runs(embedder)
    vectors = embedder.embed(MIXED).vectors
    assert all(ids.shape[0] <= 2 and (ids != 0).all() for ids in counting.runs)  # 0 is [PAD]
    assert sum(ids.shape[0] for ids in counting.runs) == len(set(MIXED))
    assert np.array_equal(vectors[0], vectors[4])


def test_a_text_embedded_recently_is_not_run_again():
    embedder = MiniLmEmbedder(batch_size=4)
    first = embedder.embed(["Marie Curie", "radium"]).vectors
    counting = _count_runs(embedder)
    again = embedder.embed(["radium", "Paris", "Marie Curie"]).vectors
    assert sum(ids.shape[0] for ids in counting.runs) == 1  # "Paris" only
    assert np.array_equal(again[0], first[1]) and np.array_equal(again[2], first[0])


def test_the_cache_keeps_the_most_recent_texts_only():
    embedder = MiniLmEmbedder(batch_size=4, cache_size=2)
    embedder.embed(["one", "two", "three"])
    counting = _count_runs(embedder)
    embedder.embed(["one", "three"])
    assert sum(ids.shape[0] for ids in counting.runs) == 1  # "one" was evicted, "three" kept
