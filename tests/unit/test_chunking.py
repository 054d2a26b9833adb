"""Chunking properties: coverage, overlap, token limit, boundaries."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kg.chunking import chunk_text
from kg.tokenizer import count_tokens

WORDS = ["radium", "Curie", "Paris", "the", "of", "discovered", "élément", "naïve", "東京", "x-ray", "1903", "🙂", "a"]

word = st.sampled_from(WORDS)


sentences = st.lists(word, min_size=1, max_size=8).flatmap(
    lambda ws: st.sampled_from([". ", "! ", "? ", ".\n"]).map(lambda end: " ".join(ws) + end)
)
paragraph = st.lists(sentences, min_size=1, max_size=6).map(lambda ss: "".join(ss).strip())
document = st.lists(paragraph, min_size=1, max_size=30).map(lambda ps: "\n\n".join(ps))
limits = st.integers(min_value=40, max_value=200).flatmap(
    lambda m: st.tuples(st.just(m), st.integers(min_value=0, max_value=m // 3))
)

relaxed = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check_cover_and_limit(text: str, chunks, max_tokens: int) -> None:
    assert chunks[0].start_char == 0 and chunks[-1].end_char == len(text)
    for chunk in chunks:
        assert chunk.text == text[chunk.start_char:chunk.end_char]
        assert chunk.tokens == count_tokens(chunk.text) <= max_tokens
    for before, after in zip(chunks, chunks[1:]):
        assert before.start_char < after.start_char <= before.end_char  # no gap: every character is covered
        assert after.index == before.index + 1


@relaxed
@given(document, limits)
def test_chunks_cover_the_text_within_the_token_limit(text, limit):
    max_tokens, overlap = limit
    check_cover_and_limit(text, chunk_text(text, "doc", max_tokens, overlap), max_tokens)


@relaxed
@given(document, limits)
def test_consecutive_chunks_overlap_by_at_most_the_overlap(text, limit):
    max_tokens, overlap = limit
    chunks = chunk_text(text, "doc", max_tokens, overlap)
    for before, after in zip(chunks, chunks[1:]):
        shared = text[after.start_char:before.end_char]
        if overlap == 0:
            assert shared == ""
        else:
            assert shared, "chunks with an overlap setting must share some text"
            # The overlap is measured on the whole text's tokens; re-encoded alone it may differ by one or two.
            assert count_tokens(shared) <= overlap + 2


@relaxed
@given(st.lists(sentences, min_size=1, max_size=200).map("".join), st.integers(min_value=80, max_value=200))
def test_chunks_end_at_sentence_ends_when_sentences_are_short(text, max_tokens):
    # One long paragraph of sentences of at most ~8 words, far below half a window: a sentence end is
    # always in reach, so no chunk is cut mid-sentence.
    chunks = chunk_text(text, "doc", max_tokens, max_tokens // 10)
    for chunk in chunks[:-1]:
        assert re.search(r"[.!?]\s+$", chunk.text), repr(chunk.text[-30:])


def test_chunks_prefer_paragraph_ends_and_keep_headings_with_their_text():
    paragraph = " ".join(f"Sentence number {i} is about radium." for i in range(10))  # about 80 tokens
    text = "\n\n".join(f"== Part {p} ==\n\n{paragraph}" for p in range(8))
    chunks = chunk_text(text, "doc", max_tokens=250, overlap_tokens=20)
    assert len(chunks) > 2
    for chunk in chunks[:-1]:
        assert chunk.text.endswith("radium.\n\n"), repr(chunk.text[-40:])


def test_a_short_text_is_one_chunk():
    chunks = chunk_text("Marie Curie discovered radium.", "doc")
    assert [(c.start_char, c.end_char, c.index) for c in chunks] == [(0, 30, 0)]


def test_text_without_any_whitespace_is_still_cut_within_the_limit():
    text = "radium" * 2000
    chunks = chunk_text(text, "doc", max_tokens=100, overlap_tokens=10)
    check_cover_and_limit(text, chunks, 100)


def test_invalid_limits_are_refused():
    with pytest.raises(ValueError):
        chunk_text("text", "doc", max_tokens=100, overlap_tokens=100)
