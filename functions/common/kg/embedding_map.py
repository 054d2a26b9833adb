"""The embedding map: every unique text of a document embedded once, stored vectors reused."""

from __future__ import annotations

import uuid

import numpy as np

from kg.embeddings import Embedder
from kg.graph import GraphStore
from kg.merge import MergedGraph
from kg.models import EmbeddingCounts


def embedding_map(
    merged: MergedGraph, embedder: Embedder, graph: GraphStore
) -> tuple[dict[uuid.UUID, np.ndarray], EmbeddingCounts]:
    return embed_texts(merged.embedding_texts(), embedder, graph)


def embed_texts(
    texts_by_id: dict[uuid.UUID, str], embedder: Embedder, graph: GraphStore
) -> tuple[dict[uuid.UUID, np.ndarray], EmbeddingCounts]:
    """A vector for each row id: stored ones reused, each missing text embedded once."""
    by_text = {texts_by_id[row_id]: vector for row_id, vector in graph.stored_vectors(texts_by_id.keys()).items()}
    unique_texts = set(texts_by_id.values())
    missing = sorted(unique_texts - by_text.keys())
    if missing:
        by_text.update(zip(missing, embedder.embed(missing), strict=True))
    vectors = {row_id: by_text[text] for row_id, text in texts_by_id.items()}
    return vectors, EmbeddingCounts(computed=len(missing), reused=len(unique_texts) - len(missing))
