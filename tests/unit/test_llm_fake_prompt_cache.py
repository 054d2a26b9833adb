"""The fake server's model of OpenAI's prompt caching, which the cached-token accounting tests and
bench/llm_tokens.py rely on: the longest prefix an answered request of the same model shares with
this one, schema first, in whole 128-token blocks, from 1,024 tokens."""

from __future__ import annotations

import openai
import pytest

from tests.support.fake_openai import CHARS_PER_TOKEN, FakeOpenAI

FORMAT = {"type": "json_schema", "json_schema": {"name": "triples", "strict": True, "schema": {
    "type": "object", "properties": {"triples": {"type": "array", "items": {"type": "string"}}},
    "required": ["triples"], "additionalProperties": False}}}


@pytest.fixture
def fake():
    with FakeOpenAI() as server:
        yield server


def ask(fake: FakeOpenAI, text: str, task: str, model: str = "gpt-4o-mini", fmt: dict = FORMAT):
    client = openai.OpenAI(api_key="test", base_url=fake.url, max_retries=0)
    reply = client.chat.completions.create(model=model, response_format=fmt, temperature=0, messages=[
        {"role": "system", "content": "instructions"}, {"role": "user", "content": text},
        {"role": "system", "content": task}])
    return reply.usage.prompt_tokens, reply.usage.prompt_tokens_details.cached_tokens


def test_a_repeated_prefix_is_reported_cached_in_128_token_blocks(fake):
    text = "Marie Curie worked in Paris. " * 400  # about 2,900 tokens at four characters a token
    first = ask(fake, text, "ENTITY_ENTITY")
    second = ask(fake, text, "EVENT_EVENT")
    assert first[1] == 0  # nothing before it
    prompt, cached = second
    assert cached % 128 == 0 and len(text) // CHARS_PER_TOKEN - 128 < cached < prompt
    assert fake.cached_tokens == cached
    assert ask(fake, text, "EVENT_EVENT", model="gpt-4.1")[1] == 0  # a cache per model
    other_format = {**FORMAT, "json_schema": {**FORMAT["json_schema"], "name": "other"}}
    assert ask(fake, text, "EVENT_EVENT", fmt=other_format)[1] == 0  # the schema opens the prefix


def test_a_shared_prefix_under_1024_tokens_is_not_cached(fake):
    ask(fake, "Marie Curie worked in Paris. " * 100, "ENTITY_ENTITY")  # about 730 tokens
    assert ask(fake, "Marie Curie worked in Paris. " * 100, "EVENT_EVENT")[1] == 0
    assert fake.cached_tokens == 0
