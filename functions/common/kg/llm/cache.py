"""The LLM response cache port, and its key.

A cached response is the raw JSON text the model returned, stored only once it parsed; it is
validated again on every read, so a change of validation or grounding rules needs no new key.
Backends: `cache_postgres.PostgresLlmCache` (local engine, in the graph store); in AWS another
backend behind the same port. `MemoryLlmCache` is for tests and benchmarks.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Collection, Mapping
from typing import Protocol

from pydantic import BaseModel


class CachedResponse(BaseModel):
    model: str
    content: str
    input_tokens: int = 0
    output_tokens: int = 0


class LlmCache(Protocol):
    """Batched on purpose: a chunk's four per-type lookups are one round trip, not four."""

    def get_many(self, keys: Collection[str]) -> dict[str, CachedResponse]:
        """The cached responses among `keys`; missing keys are absent."""
        ...

    def put_many(self, responses: Mapping[str, CachedResponse]) -> None:
        """Store responses; a key already stored keeps its first response."""
        ...


def cache_key(model: str, prompt_version: str, mode: str, kind: str, text: str) -> str:
    payload = json.dumps([model, prompt_version, mode, kind, text], ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


class MemoryLlmCache:
    def __init__(self) -> None:
        self.entries: dict[str, CachedResponse] = {}
        self._lock = threading.Lock()

    def get_many(self, keys: Collection[str]) -> dict[str, CachedResponse]:
        with self._lock:
            return {k: self.entries[k] for k in keys if k in self.entries}

    def put_many(self, responses: Mapping[str, CachedResponse]) -> None:
        with self._lock:
            for key, response in responses.items():
                self.entries.setdefault(key, response)


class NoLlmCache:
    """Caches nothing: every call reaches the endpoint."""

    def get_many(self, keys: Collection[str]) -> dict[str, CachedResponse]:
        return {}

    def put_many(self, responses: Mapping[str, CachedResponse]) -> None:
        pass
