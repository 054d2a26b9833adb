"""The embeddings port: texts in, L2-normalised float32 vectors out (so cosine is a dot product)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from kg.models import LlmUsage


class Embedder(Protocol):
    model: str
    dimensions: int
    usage: LlmUsage  # running total of what the embedder has cost (zero offline)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """An array of shape (len(texts), dimensions), one row per text, in order."""
        ...
