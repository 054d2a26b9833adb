"""OpenAI embeddings through the shared LLM client: batched, retried, L2-normalised float32.

The graph store records `model` and `dimensions` (kg_meta) and refuses a store opened with
either changed, so vectors of two spaces are never mixed.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from kg.embeddings import Embedded
from kg.errors import ProviderUnavailable
from kg.llm.client import EmbeddingReply, LlmClient
from kg.llm.pricing import Prices, estimate_cost
from kg.models import LlmUsage

NATIVE_DIMENSIONS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}


class OpenAiEmbedder:
    def __init__(
        self,
        llm: LlmClient,
        model: str = "text-embedding-3-small",
        dimensions: int | None = None,
        batch_size: int = 128,
        prices: Prices | None = None,
        concurrency: int = 4,
    ):
        native = NATIVE_DIMENSIONS.get(model)
        if dimensions is None and native is None:
            raise ProviderUnavailable(f"the dimension of {model!r} is unknown: set KG_EMBEDDING_DIMENSIONS")
        self.llm, self.batch_size, self.prices = llm, batch_size, prices or {}
        # Requests of one embed() in flight at once; the client's limiter and breaker still apply.
        self.concurrency = concurrency
        self.api_model = model
        self.dimensions = dimensions or native
        # Ask for a dimension only when it is not the native one: older models reject the parameter.
        self._requested = dimensions if dimensions and dimensions != native else None
        self.model = model

    def embed(self, texts: Sequence[str]) -> Embedded:
        batches = [[t if t.strip() else " " for t in texts[begin : begin + self.batch_size]]  # "" is refused
                   for begin in range(0, len(texts), self.batch_size)]
        if len(batches) > 1 and self.concurrency > 1:
            with ThreadPoolExecutor(max_workers=min(self.concurrency, len(batches)),
                                    thread_name_prefix="embed") as pool:
                replies = list(pool.map(self._embed_batch, batches))
        else:
            replies = [self._embed_batch(batch) for batch in batches]
        usage = LlmUsage()
        for reply in replies:
            usage = usage.add(LlmUsage(
                calls=1, input_tokens=reply.input_tokens,
                cost_usd=estimate_cost(self.api_model, reply.input_tokens, 0, self.prices),
            ))
        out = np.concatenate([r.vectors for r in replies]) if replies else np.empty((0, self.dimensions), np.float32)
        return Embedded(out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12), usage)

    def _embed_batch(self, batch: list[str]) -> EmbeddingReply:
        reply = self.llm.embed(self.api_model, batch, self._requested)
        if reply.vectors.shape != (len(batch), self.dimensions):
            raise ProviderUnavailable(
                f"{self.api_model} returned vectors of shape {reply.vectors.shape}, "
                f"expected {(len(batch), self.dimensions)}"
            )
        return reply
