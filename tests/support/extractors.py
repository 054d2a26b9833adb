"""Extractors for tests that need to steer what extraction returns or how it fails."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from kg.extraction import run_types_concurrently
from kg.models import Chunk, ChunkExtraction, Triple, TripleType

_KINDS = {
    TripleType.ENTITY_ENTITY: ("entity", "entity"),
    TripleType.ENTITY_EVENT: ("entity", "event"),
    TripleType.EVENT_EVENT: ("event", "event"),
    TripleType.EMOTIONAL_CONTEXT: ("entity", "emotion"),
}


def capitalised_pairs(chunk: Chunk, triple_type: TripleType) -> list[Triple]:
    """A deterministic toy extraction: consecutive capitalised words of the chunk, linked."""
    words = re.findall(r"\b[A-Z][a-z]{2,}\b", chunk.text)
    subject_kind, object_kind = _KINDS[triple_type]
    return [
        Triple(type=triple_type, subject=a, predicate=f"{triple_type.value.lower()} link", object=b,
               subject_kind=subject_kind, object_kind=object_kind, confidence=0.5, chunk_index=chunk.index)
        for a, b in zip(words, words[1:])
        if a != b
    ]


class ScriptedExtractor:
    """Runs `capitalised_pairs`, except where `fail(chunk, type)` says to raise."""

    name = "scripted"

    def __init__(self, fail: Callable[[Chunk, TripleType | None], bool] = lambda chunk, t: False):
        self.fail = fail
        self.calls: list[tuple[int, TripleType]] = []

    def extract(self, chunk: Chunk, types: Sequence[TripleType]) -> ChunkExtraction:
        if self.fail(chunk, None):
            raise RuntimeError(f"extractor crashed on chunk {chunk.index}")

        def one(triple_type: TripleType) -> list[Triple]:
            self.calls.append((chunk.index, triple_type))
            if self.fail(chunk, triple_type):
                raise RuntimeError(f"{triple_type} failed on chunk {chunk.index}")
            return capitalised_pairs(chunk, triple_type)

        return run_types_concurrently(types, one)


def fact(subject: str, predicate: str, obj: str, triple_type: TripleType = TripleType.ENTITY_ENTITY,
         confidence: float = 0.8) -> Triple:
    subject_kind, object_kind = _KINDS[triple_type]
    return Triple(type=triple_type, subject=subject, predicate=predicate, object=obj, subject_kind=subject_kind,
                  object_kind=object_kind, confidence=confidence, chunk_index=0)


class FactsExtractor:
    """Finds exactly the facts it is given, in every chunk whose text mentions the fact's subject."""

    name = "facts"

    def __init__(self, facts: Sequence[Triple]):
        self.facts = list(facts)

    def extract(self, chunk: Chunk, types: Sequence[TripleType]) -> ChunkExtraction:
        found = [f.model_copy(update={"chunk_index": chunk.index}) for f in self.facts
                 if f.type in types and f.subject.lower() in chunk.text.lower()]
        return ChunkExtraction(triples=found)
