"""The embedding map: every unique text of a document embedded once, stored vectors reused."""

from __future__ import annotations

import uuid
from collections.abc import Mapping

import numpy as np

from kg.graph import GraphStore


def missing_texts(texts_by_id: Mapping[uuid.UUID, str], graph: GraphStore) -> tuple[list[str], dict[str, np.ndarray]]:
    """The texts no stored row carries a vector for (sorted, each once), and the stored vectors by text."""
    stored = {texts_by_id[row_id]: vector for row_id, vector in graph.stored_vectors(texts_by_id.keys()).items()}
    return sorted(set(texts_by_id.values()) - stored.keys()), stored

