"""One structured question to the model, answered from the cache when it can be.

The caller looks the keys up in batches (`LlmCache.get_many`) and stores what was fresh in one
go (`put_many`); `answer` does the rest: a cached reply that parses costs nothing and counts as
`cached`; otherwise the model is asked, and a reply that is not a JSON object is asked for once
more (temperature 0 makes a third try rarely different), then the question fails.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from kg.errors import ExtractionFailed
from kg.llm.cache import CachedResponse, LlmCache, cache_key
from kg.llm.client import LlmClient
from kg.llm.pricing import Prices, estimate_cost
from kg.llm.prompts import Prompt
from kg.models import LlmUsage

ATTEMPTS = 2


class MalformedReply(ExtractionFailed):
    def __init__(self, message: str, usage: LlmUsage):
        super().__init__(message)
        self.usage = usage  # the calls it took still cost money


@dataclass
class StructuredReply:
    data: dict[str, Any]
    usage: LlmUsage
    fresh: CachedResponse | None = None  # what to cache; None when it came from the cache


def question_key(model: str, prompt: Prompt, mode: str, text: str) -> str:
    return cache_key(model, prompt.version, mode, prompt.name, text)


def answer(
    llm: LlmClient, model: str, prompt: Prompt, text: str, prices: Prices, hit: CachedResponse | None = None
) -> StructuredReply:
    if hit is not None and (data := _parse(hit.content)) is not None:
        return StructuredReply(data, LlmUsage(cached=1))
    usage = LlmUsage()
    for _ in range(ATTEMPTS):
        reply = llm.chat(model, prompt.messages(text), prompt.response_format)
        usage = usage.add(LlmUsage(
            calls=1, input_tokens=reply.input_tokens, output_tokens=reply.output_tokens,
            cached_input_tokens=reply.cached_input_tokens,
            cost_usd=estimate_cost(reply.model, reply.input_tokens, reply.output_tokens, prices,
                                   reply.cached_input_tokens),
        ))
        if (data := _parse(reply.content)) is not None:
            fresh = CachedResponse(model=reply.model, content=reply.content,
                                   input_tokens=reply.input_tokens, output_tokens=reply.output_tokens)
            return StructuredReply(data, usage, fresh)
    raise MalformedReply(f"{prompt.name}: the reply was not a JSON object, {ATTEMPTS} times", usage)


def ask(
    llm: LlmClient, cache: LlmCache, model: str, prompt: Prompt, text: str, mode: str, prices: Prices
) -> StructuredReply:
    """One question with its own cache lookup and store."""
    key = question_key(model, prompt, mode, text)
    reply = answer(llm, model, prompt, text, prices, cache.get_many([key]).get(key))
    if reply.fresh is not None:
        cache.put_many({key: reply.fresh})
    return reply


def _parse(content: str) -> dict[str, Any] | None:
    try:
        data = json.loads(content)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None
