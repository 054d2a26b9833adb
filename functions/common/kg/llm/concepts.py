"""Conceptualization on the LLM: a batch of graph elements in, concept phrases at high, medium and
low abstraction out (the Conceptualizer port of `kg.concepts`, used by the concepts stage).

One request per batch: elements are numbered in the prompt and the reply refers to them by
number; items are validated one by one like extraction (invalid ones dropped and counted), and
the reply is cached under the batch's text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from kg.llm.cache import LlmCache
from kg.llm.client import LlmClient, chat_request
from kg.llm.pricing import Prices
from kg.llm.prompts import CONCEPT_PROMPT
from kg.llm.structured import ask, question_key
from kg.models import ConceptBatch, ConceptElement, ConceptPhrase
from kg.normalize import clean_surface

_MODE = "batch"  # the cache key's mode: one request for a batch of elements (not the Batch API)
_CONTEXT_CHARS = 300  # enough to tell "Mercury" the planet from the element; more only costs tokens


def render_elements(elements: Sequence[ConceptElement]) -> str:
    lines = []
    for number, element in enumerate(elements, start=1):
        context = clean_surface("; ".join(element.context))[:_CONTEXT_CHARS]
        lines.append(f"{number}. [{element.kind}] {clean_surface(element.name)}"
                     + (f" (context: {context})" if context else ""))
    return "\n".join(lines)


def conceptualize(
    llm: LlmClient, cache: LlmCache, model: str, elements: Sequence[ConceptElement], prices: Prices | None = None
) -> ConceptBatch:
    """Concepts for each element, in order; an element the reply skipped gets none. Raises
    ExtractionFailed after two replies that are not JSON, and whatever `LlmClient.call` raises."""
    if not elements:
        return ConceptBatch(concepts=[])
    reply = ask(llm, cache, model, CONCEPT_PROMPT, render_elements(elements), _MODE, prices or {})
    concepts: list[list[ConceptPhrase]] = [[] for _ in elements]
    seen: list[set[tuple[str, str]]] = [set() for _ in elements]
    dropped = 0
    entries = reply.data.get("elements")
    for entry in entries if isinstance(entries, list) else []:
        number = entry.get("element") if isinstance(entry, dict) else None
        items = entry.get("concepts") if isinstance(entry, dict) else None
        if not isinstance(number, int) or not 1 <= number <= len(elements) or not isinstance(items, list):
            dropped += 1
            continue
        for item in items:
            try:
                phrase = ConceptPhrase.model_validate(item)
            except ValidationError:
                dropped += 1
                continue
            key = (phrase.level, phrase.phrase.casefold())
            if key not in seen[number - 1]:
                seen[number - 1].add(key)
                concepts[number - 1].append(phrase)
    return ConceptBatch(concepts=concepts, dropped=dropped, usage=reply.usage)


class OpenAiConceptualizer:
    """The Conceptualizer port on the shared LLM client and the LLM cache."""

    def __init__(self, llm: LlmClient, cache: LlmCache, model: str = "gpt-4o-mini", prices: Prices | None = None):
        self.llm, self.cache, self.model, self.prices = llm, cache, model, prices or {}
        self.name = f"openai:{model}"

    def conceptualize(self, elements: Sequence[ConceptElement]) -> ConceptBatch:
        return conceptualize(self.llm, self.cache, self.model, elements, self.prices)

    def batch_requests(self, batches: Sequence[Sequence[ConceptElement]]) -> dict[str, dict[str, Any]]:
        """The chat requests `conceptualize` would send for these batches of elements, by their cache
        key, those cached already left out (see OpenAiExtractor.batch_requests)."""
        requests = {}
        for elements in batches:
            if elements:
                text = render_elements(elements)
                requests[question_key(self.model, CONCEPT_PROMPT, _MODE, text)] = chat_request(
                    self.model, CONCEPT_PROMPT.messages(text), CONCEPT_PROMPT.response_format)
        cached = self.cache.get_many(list(requests))
        return {key: body for key, body in requests.items() if key not in cached}
