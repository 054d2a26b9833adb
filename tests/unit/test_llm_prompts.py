"""Prompts, strict schemas, cache keys, grounding, pricing and provider settings: pure functions."""

from __future__ import annotations

import dataclasses
import json
import os

import pytest

from kg.extraction.openai import grounded_in
from kg.llm.cache import cache_key
from kg.llm.pricing import estimate_cost
from kg.llm.prompts import COMBINED_PROMPT, CONCEPT_PROMPT, TYPE_PROMPTS
from kg.llm.schemas import CombinedExtraction, ConceptReply, ExtractedTriple, TypeExtraction, strict_schema
from kg.models import TripleType
from kg.normalize import normalise
from kg.settings import Settings


def objects(node):
    if isinstance(node, dict):
        if node.get("type") == "object":
            yield node
        for value in node.values():
            yield from objects(value)
    elif isinstance(node, list):
        for value in node:
            yield from objects(value)


@pytest.mark.parametrize("model", [TypeExtraction, CombinedExtraction, ConceptReply])
def test_strict_schemas_close_every_object_and_require_every_property(model):
    schema = strict_schema(model)
    found = list(objects(schema))
    assert len(found) >= 2
    for obj in found:
        assert obj["additionalProperties"] is False
        assert obj["required"] == list(obj["properties"])
    text = str(schema)
    assert "minLength" not in text and "maximum" not in text and "title" not in text


@pytest.mark.parametrize("triple_type", list(TripleType))
def test_each_type_prompt_names_its_own_type_only(triple_type):
    prompt = TYPE_PROMPTS[triple_type]
    assert triple_type.value in prompt.task and triple_type.value in prompt.name
    sent = json.dumps(prompt.messages("Marie Curie met Pierre Curie."))
    assert all(other.value not in sent for other in TripleType if other is not triple_type)
    assert "undefined" not in sent and "Example" in prompt.task
    assert prompt.response_format["json_schema"]["strict"] is True


def test_the_four_type_prompts_of_a_chunk_share_everything_up_to_the_end_of_the_chunk_text():
    """OpenAI caches the longest prefix an earlier request processed, and the structured-output schema
    opens it: the four requests on one chunk must agree on the schema, the instructions and the text,
    and differ only after it."""
    chunk = "Marie Curie worked in Paris with Pierre Curie. " * 100
    requests = [json.dumps({"response_format": p.response_format, "messages": p.messages(chunk)})
                for p in TYPE_PROMPTS.values()]
    shared = len(os.path.commonprefix(requests))
    text = json.dumps(chunk)
    end_of_text = requests[0].index(text) + len(text)
    assert shared >= end_of_text > len(chunk)  # the schema, the instructions and the whole text are shared
    for request, triple_type in zip(requests, TYPE_PROMPTS):
        assert request.index(triple_type.value) >= end_of_text  # the type is named after the text only
    assert len({json.dumps(p.response_format) for p in TYPE_PROMPTS.values()}) == 1
    for prompt in TYPE_PROMPTS.values():
        roles = [m["role"] for m in prompt.messages(chunk)]
        assert roles == ["system", "user", "system"]  # the type's task after the text


@pytest.mark.parametrize("prompt", [COMBINED_PROMPT, CONCEPT_PROMPT], ids=["combined", "concepts"])
def test_the_other_prompts_send_their_instructions_before_the_varying_text(prompt):
    first, second = prompt.messages("one text"), prompt.messages("another text")
    assert first[0] == second[0] and first[-1]["content"] == "one text"


def test_the_combined_prompt_names_every_type():
    assert all(t.value in COMBINED_PROMPT.system for t in TripleType)


def test_prompt_versions_differ_and_follow_the_text():
    prompts = [*TYPE_PROMPTS.values(), COMBINED_PROMPT, CONCEPT_PROMPT]
    assert len({p.version for p in prompts}) == len(prompts)
    # Editing a prompt's text invalidates its cached replies, though nobody bumped the revision.
    prompt = TYPE_PROMPTS[TripleType.ENTITY_ENTITY]
    same = dataclasses.replace(prompt)
    edited = dataclasses.replace(prompt, system=prompt.system.replace("Only facts", "Only the facts"))
    task_edited = dataclasses.replace(prompt, task=prompt.task.replace("Example", "For example"))
    assert same.version == prompt.version and edited.version != prompt.version
    assert task_edited.version not in (prompt.version, edited.version)  # the text after the chunk counts too
    assert edited.version.split(".")[0] == prompt.version.split(".")[0]  # the same revision number


def test_the_prompt_version_changes_with_the_reply_schema_and_only_with_what_shapes_the_reply():
    from pydantic import Field, create_model

    from kg.llm.prompts import Prompt

    # Models of one name, so that only the change under test differs.
    reply = create_model("Reply", triples=(list[ExtractedTriple], ...))
    same = create_model("Reply", triples=(list[ExtractedTriple], ...))
    new_field = create_model("Reply", triples=(list[ExtractedTriple], ...), notes=(str, ...))
    # A constraint strict mode leaves out of the request: cached replies would validate differently.
    loose = create_model("Reply", subject=(str, Field(min_length=1)))
    tight = create_model("Reply", subject=(str, Field(min_length=3)))

    system = TYPE_PROMPTS[TripleType.ENTITY_ENTITY].system

    def version(model, name="x_triples"):
        return Prompt(name=name, system=system, reply=model).version

    assert version(same) == version(reply)
    assert version(new_field) != version(reply)
    assert version(tight) != version(loose)
    assert version(reply, "y_triples") != version(reply)
    assert version(reply).startswith("2.")  # revision 2: the shared part first


def test_the_cache_key_changes_with_each_of_its_parts():
    base = ("gpt-4o-mini", "1.abc", "per_type", "ENTITY_ENTITY", "Marie Curie")
    keys = {cache_key(*base)}
    for i, other in enumerate(("gpt-4o", "1.abd", "combined", "EVENT_EVENT", "Marie Curie.")):
        keys.add(cache_key(*base[:i], other, *base[i + 1:]))
    assert len(keys) == 6 and cache_key(*base) == cache_key(*base)


def test_grounding_is_whole_words_after_normalisation():
    text = normalise("The  Nobel Prize in Physics went to Marie Curie, who was devastated.")
    assert grounded_in("the nobel prize", text)
    assert grounded_in("MARIE CURIE", text)
    assert grounded_in("devastated.", text)
    assert not grounded_in("Marie Cur", text)
    assert not grounded_in("Napoleon", text)
    assert not grounded_in("...", text)


def test_cost_uses_the_longest_matching_price_and_zero_for_unknown_models():
    prices = {"gpt-4o": (2.5, 10.0), "gpt-4o-mini": (0.15, 0.6)}
    assert estimate_cost("gpt-4o-mini-2024-07-18", 1_000_000, 1_000_000, prices) == pytest.approx(0.75)
    assert estimate_cost("gpt-4o", 1000, 0, prices) == pytest.approx(0.0025)
    assert estimate_cost("llama-3", 1000, 1000, prices) == 0.0


def test_prompt_cached_input_tokens_cost_the_cached_rate_and_a_price_without_one_the_full_rate():
    # gpt-4o-mini at (0.15 in, 0.60 out, 0.075 cached): 1M prompt tokens of which 600k cached.
    with_rate = {"gpt-4o-mini": (0.15, 0.60, 0.075)}
    assert estimate_cost("gpt-4o-mini", 1_000_000, 0, with_rate, 600_000) == pytest.approx(0.4 * 0.15 + 0.6 * 0.075)
    assert estimate_cost("gpt-4o-mini", 1_000_000, 0, with_rate) == pytest.approx(0.15)
    without = {"gpt-4o-mini": (0.15, 0.60)}  # an override written before cached rates: never under-reports
    assert estimate_cost("gpt-4o-mini", 1_000_000, 0, without, 600_000) == pytest.approx(0.15)


def test_the_default_prices_have_a_cached_rate_below_the_input_rate_for_every_chat_model():
    from kg.llm.pricing import DEFAULT_LLM_PRICES

    chat = {name: price for name, price in DEFAULT_LLM_PRICES.items() if name.startswith("gpt-")}
    assert {"gpt-4o-mini", "gpt-4o", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano"} <= set(chat)
    assert all(len(price) == 3 and 0 < price[2] < price[0] for price in chat.values())


def test_a_price_override_takes_two_or_three_numbers(monkeypatch):
    monkeypatch.setenv("KG_LLM_PRICES", '{"gpt-4o-mini": [1.0, 2.0], "my-model": [1.0, 2.0, 0.25]}')
    prices = Settings().llm_prices
    assert prices == {"gpt-4o-mini": (1.0, 2.0), "my-model": (1.0, 2.0, 0.25)}
    assert estimate_cost("my-model", 1_000_000, 0, prices, 1_000_000) == pytest.approx(0.25)
    monkeypatch.setenv("KG_LLM_PRICES", '{"my-model": [1.0]}')
    with pytest.raises(ValueError):
        Settings()


def test_the_provider_is_openai_when_a_key_is_set_and_offline_otherwise(monkeypatch):
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "KG_LLM_PROVIDER", "KG_EMBEDDING_PROVIDER"):
        monkeypatch.delenv(name, raising=False)
    assert (Settings().llm_provider, Settings().embedding_provider) == ("offline", "offline")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://localhost:4000/v1")
    settings = Settings()
    assert (settings.llm_provider, settings.embedding_provider) == ("openai", "openai")
    # The OpenAI client's own variable names reach the client kg makes: its endpoint and its key.
    from kg.llm.client import LlmClient

    client = LlmClient.from_settings(settings).client
    assert (str(client.base_url), client.api_key) == ("http://localhost:4000/v1/", "sk-test")
    monkeypatch.setenv("KG_LLM_PROVIDER", "offline")
    monkeypatch.setenv("KG_EMBEDDING_PROVIDER", "openai")
    assert (Settings().llm_provider, Settings().embedding_provider) == ("offline", "openai")
