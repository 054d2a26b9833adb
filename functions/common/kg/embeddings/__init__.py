"""The embeddings port: texts in, L2-normalised float32 vectors out (so cosine is a dot product)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from kg.models import LlmUsage


@dataclass(frozen=True)
class Embedded:
    """The vectors of one `embed` call and what that call cost (zero offline): usage belongs to the
    caller's job, never to a counter the embedder keeps across jobs."""

    vectors: np.ndarray  # shape (len(texts), dimensions), one row per text, in order
    usage: LlmUsage = field(default_factory=LlmUsage)


class Embedder(Protocol):
    model: str
    dimensions: int

    def embed(self, texts: Sequence[str]) -> Embedded: ...
