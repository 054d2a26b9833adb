"""The OpenAI extractor: structured outputs from any OpenAI-compatible endpoint.

Modes: `per_type` sends one request per type, the four concurrently (smaller, sharper prompts);
`combined` sends one request per chunk for all types (fewer calls, one prompt's tokens).

Prompt caching (per_type): the four requests on a chunk share their prefix up to the end of the
chunk text (kg.llm.prompts). A provider caches a prefix once it has processed a request, so four
requests sent at once all miss; with `warm_prompt_cache`, a chunk long enough to be cached sends one
type's request first and the others once it has answered.

Every reply is validated item by item: an invalid item is dropped and counted, the rest kept. A
reply that is not JSON is asked for once more, then its types are recorded failed for the chunk.
Grounding: a triple whose subject or object does not occur in the chunk (both normalised) is an
invention of the model; it is dropped, or kept with `grounded=False`, per setting, and counted.

It never touches the graph database, only the LlmCache port it is given.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Sequence
from typing import Any, Literal

from pydantic import ValidationError

from kg.extraction import run_types_concurrently
from kg.llm.cache import LlmCache
from kg.llm.client import LlmClient, chat_request
from kg.llm.pricing import Prices
from kg.llm.cache import CachedResponse
from kg.llm.prompts import COMBINED_PROMPT, TYPE_PROMPTS, Prompt
from kg.llm.schemas import ExtractedTriple
from kg.llm.structured import MalformedReply, answer, question_key
from kg.models import Chunk, ChunkExtraction, LlmUsage, NodeKind, Triple, TripleType
from kg.normalize import normalise

Mode = Literal["per_type", "combined"]
Grounding = Literal["drop", "flag"]

KINDS: dict[TripleType, tuple[NodeKind, NodeKind]] = {
    TripleType.ENTITY_ENTITY: ("entity", "entity"),
    TripleType.ENTITY_EVENT: ("entity", "event"),
    TripleType.EVENT_EVENT: ("event", "event"),
    TripleType.EMOTIONAL_CONTEXT: ("entity", "emotion"),
}


def grounded_in(phrase: str, normalised_text: str) -> bool:
    """Whether `phrase` occurs in the text as whole words, both normalised."""
    needle = normalise(phrase)
    return bool(needle) and re.search(rf"(?<!\w){re.escape(needle)}(?!\w)", normalised_text) is not None


class OpenAiExtractor:
    def __init__(
        self,
        llm: LlmClient,
        cache: LlmCache,
        model: str = "gpt-4o-mini",
        mode: Mode = "per_type",
        grounding: Grounding = "drop",
        prices: Prices | None = None,
        warm_prompt_cache: bool = False,
    ):
        self.llm, self.cache, self.model = llm, cache, model
        self.mode, self.grounding, self.prices = mode, grounding, prices or {}
        self.warm_prompt_cache = warm_prompt_cache
        self.name = f"openai:{model}:{mode}"

    def extract(self, chunk: Chunk, types: Sequence[TripleType]) -> ChunkExtraction:
        wanted = list(dict.fromkeys(types))
        if not wanted:
            return ChunkExtraction()
        prompts = [COMBINED_PROMPT] if self.mode == "combined" else [TYPE_PROMPTS[t] for t in wanted]
        keys = {p.name: question_key(self.model, p, self.mode, chunk.text) for p in prompts}
        hits = self.cache.get_many(list(keys.values()))  # one round trip for the chunk
        tally = _Tally()

        def ask(prompt: Prompt) -> dict[str, Any]:
            key = keys[prompt.name]
            try:
                reply = answer(self.llm, self.model, prompt, chunk.text, self.prices, hits.get(key))
            except MalformedReply as e:
                tally.add(e.usage)
                raise
            tally.add(reply.usage, key, reply.fresh)
            return reply.data

        if self.mode == "combined":
            result = self._combined(chunk, wanted, ask, tally)
        else:
            def extract_type(t: TripleType) -> list[Triple]:
                return self._triples(chunk, t, ask(TYPE_PROMPTS[t]).get("triples"), tally)

            asked = [t for t in wanted if keys[TYPE_PROMPTS[t].name] not in hits]  # the calls to make
            if self.warm_prompt_cache and len(asked) > 1 and _cacheable(TYPE_PROMPTS[asked[0]], chunk.text):
                first = run_types_concurrently(asked[:1], extract_type)
                rest = run_types_concurrently([t for t in wanted if t != asked[0]], extract_type)
                result = ChunkExtraction(triples=first.triples + rest.triples,
                                         failed_types={**first.failed_types, **rest.failed_types})
            else:
                result = run_types_concurrently(wanted, extract_type)
        self.cache.put_many(tally.fresh)
        result.usage, result.dropped, result.ungrounded = tally.usage, tally.dropped, tally.ungrounded
        return result

    def batch_requests(self, chunk: Chunk, types: Sequence[TripleType]) -> dict[str, dict[str, Any]]:
        """The chat requests `extract` would send for `chunk`, by their cache key, those cached already
        left out. Answered through the provider's Batch API and put in the cache under these keys,
        they make the chunk's `extract` a cache hit (kg.stages.llm_batch)."""
        wanted = list(dict.fromkeys(types))
        if not wanted:
            return {}
        prompts = [COMBINED_PROMPT] if self.mode == "combined" else [TYPE_PROMPTS[t] for t in wanted]
        requests = {question_key(self.model, p, self.mode, chunk.text):
                    chat_request(self.model, p.messages(chunk.text), p.response_format) for p in prompts}
        cached = self.cache.get_many(list(requests))
        return {key: body for key, body in requests.items() if key not in cached}

    def _combined(
        self, chunk: Chunk, types: list[TripleType], ask: Callable[[Prompt], dict[str, Any]], tally: _Tally
    ) -> ChunkExtraction:
        result = ChunkExtraction()
        try:
            data = ask(COMBINED_PROMPT)
        except Exception as e:  # one request for all types: they fail together
            result.failed_types = {t: f"{type(e).__name__}: {e}" for t in types}
            return result
        for triple_type in types:
            result.triples.extend(self._triples(chunk, triple_type, data.get(triple_type.value.lower()), tally))
        return result

    def _triples(self, chunk: Chunk, triple_type: TripleType, items: Any, tally: _Tally) -> list[Triple]:
        if not isinstance(items, list):
            tally.drop(1)  # the list itself is missing or not a list: the reply broke its schema
            return []
        text = normalise(chunk.text)
        subject_kind, object_kind = KINDS[triple_type]
        out: list[Triple] = []
        for item in items:
            try:
                extracted = ExtractedTriple.model_validate(item)
                grounded = grounded_in(extracted.subject, text) and grounded_in(extracted.object, text)
                if not grounded and self.grounding == "drop":
                    tally.drop(1, ungrounded=True)
                    continue
                out.append(Triple(
                    type=triple_type, subject=extracted.subject, predicate=extracted.predicate,
                    object=extracted.object, subject_kind=subject_kind, object_kind=object_kind,
                    confidence=extracted.confidence, chunk_index=chunk.index, grounded=grounded,
                ))
                if not grounded:
                    tally.flagged()
            except ValidationError:
                tally.drop(1)
        return out


# OpenAI caches prompts from 1,024 tokens; the prefix the per-type calls share is the schema, the
# instructions and the text. Four characters a token is close enough to decide whether to wait.
_CACHE_MIN_TOKENS = 1024
_CHARS_PER_TOKEN = 4


def _cacheable(prompt: Prompt, text: str) -> bool:
    shared = len(json.dumps(prompt.response_format)) + len(prompt.system) + len(text)
    return shared >= _CACHE_MIN_TOKENS * _CHARS_PER_TOKEN


class _Tally:
    """Usage and drop counts of one chunk, added to from the per-type threads."""

    def __init__(self) -> None:
        self.usage = LlmUsage()
        self.fresh: dict[str, CachedResponse] = {}  # replies to cache once the chunk is done
        self.dropped = 0
        self.ungrounded = 0
        self._lock = threading.Lock()

    def add(self, usage: LlmUsage, key: str | None = None, fresh: CachedResponse | None = None) -> None:
        with self._lock:
            self.usage = self.usage.add(usage)
            if key is not None and fresh is not None:
                self.fresh[key] = fresh

    def drop(self, n: int, ungrounded: bool = False) -> None:
        with self._lock:
            self.dropped += n
            self.ungrounded += n if ungrounded else 0

    def flagged(self) -> None:
        with self._lock:
            self.ungrounded += 1
