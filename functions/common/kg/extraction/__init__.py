"""The extractor port: turns one chunk into triples of the four types.

Implementations: `offline.SpacyExtractor` (no network, the default without an API key) and,
later, the OpenAI provider. The stage function `extract_chunk` calls `extract`; running the
types of one chunk concurrently is the extractor's job because only it knows whether that means
four calls (per type) or one (combined, or one parse shared by four passes).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from kg.models import Chunk, ChunkExtraction, Triple, TripleType


class Extractor(Protocol):
    name: str

    def extract(self, chunk: Chunk, types: Sequence[TripleType]) -> ChunkExtraction: ...


def run_types_concurrently(
    types: Sequence[TripleType], extract_type: Callable[[TripleType], list[Triple]]
) -> ChunkExtraction:
    """Run `extract_type` for each type on its own thread; a type that raises is recorded, the rest kept."""
    result = ChunkExtraction()
    if not types:
        return result
    if len(types) == 1:  # nothing to overlap: spare the thread
        try:
            result.triples.extend(extract_type(types[0]))
        except Exception as error:
            result.failed_types[types[0]] = f"{type(error).__name__}: {error}"
        return result
    with ThreadPoolExecutor(max_workers=len(types), thread_name_prefix="extract-type") as pool:
        futures = {t: pool.submit(extract_type, t) for t in types}
    for triple_type, future in futures.items():
        error = future.exception()
        if error is None:
            result.triples.extend(future.result())
        else:
            result.failed_types[triple_type] = f"{type(error).__name__}: {error}"
    return result
