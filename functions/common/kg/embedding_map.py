"""The embedding map: every unique text of a document embedded once, stored vectors reused."""

from __future__ import annotations

import uuid
from collections.abc import Mapping

import numpy as np

from kg.embeddings import Embedder
from kg.graph import GraphStore
from kg.models import EmbeddingCounts, LlmUsage


def missing_texts(texts_by_id: Mapping[uuid.UUID, str], graph: GraphStore) -> tuple[list[str], dict[str, np.ndarray]]:
    """The texts no stored row carries a vector for (sorted, each once), and the stored vectors by text."""
    stored = {texts_by_id[row_id]: vector for row_id, vector in graph.stored_vectors(texts_by_id.keys()).items()}
    return sorted(set(texts_by_id.values()) - stored.keys()), stored


def embed_texts(
    texts_by_id: Mapping[uuid.UUID, str], embedder: Embedder, graph: GraphStore
) -> tuple[dict[uuid.UUID, np.ndarray], EmbeddingCounts, LlmUsage]:
    """A vector for each row id: stored ones reused, each missing text embedded once; and what it cost."""
    missing, by_text = missing_texts(texts_by_id, graph)
    usage = LlmUsage()
    if missing:
        embedded = embedder.embed(missing)
        by_text.update(zip(missing, embedded.vectors, strict=True))
        usage = embedded.usage
    vectors = {row_id: by_text[text] for row_id, text in texts_by_id.items()}
    unique = len(set(texts_by_id.values()))
    return vectors, EmbeddingCounts(computed=len(missing), reused=unique - len(missing)), usage
