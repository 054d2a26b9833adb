"""The offline embedder: the int8 MiniLM gives normalised 384-d vectors that mean something."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from kg.embeddings.onnx_minilm import MiniLmEmbedder  # noqa: E402


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
