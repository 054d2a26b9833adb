"""The tokenizer: tiktoken's encodings built from the shipped BPE files, without touching the environment."""

from __future__ import annotations

import os

import pytest
import tiktoken_ext.openai_public as openai_public

from kg import tokenizer
from kg.errors import InvalidInput


@pytest.mark.parametrize("name", ["cl100k_base", "o200k_base"])
def test_encoding_equals_tiktokens_own_definition(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # tiktoken's constructor, with its download replaced by the shipped file, is the reference.
    monkeypatch.setattr(openai_public, "load_tiktoken_bpe", lambda url, expected_hash: tokenizer._mergeable_ranks(name))
    reference = openai_public.ENCODING_CONSTRUCTORS[name]()
    encoding = tokenizer.get_encoding(name)
    assert encoding.name == reference["name"]
    assert encoding._pat_str == reference["pat_str"]
    assert encoding._special_tokens == reference["special_tokens"]
    assert encoding._mergeable_ranks == reference["mergeable_ranks"]


def test_known_token_ids() -> None:
    assert tokenizer.get_encoding("cl100k_base").encode("hello world") == [15339, 1917]
    assert tokenizer.count_tokens("Marie Curie discovered radium.") == len(
        tokenizer.get_encoding("o200k_base").encode("Marie Curie discovered radium."))
    # Special tokens in a document are text, not control tokens.
    assert tokenizer.count_tokens("<|endoftext|>") > 1


def test_building_an_encoding_leaves_the_environment_alone() -> None:
    before = dict(os.environ)
    tokenizer.get_encoding.cache_clear()
    tokenizer.get_encoding("o200k_base")
    assert dict(os.environ) == before


def test_an_unknown_encoding_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="o200k_base"):
        tokenizer.get_encoding("p50k_base")
