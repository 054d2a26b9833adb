"""Hostile text through the pipeline's pure parts: decoding, chunking, normalisation and ids, the
offline extractor, merging, and the LLM prompts and grounding. None crashes: a document is either
refused with one clear InvalidInput line, or goes through with its invariants kept.

Each input class (tests/properties/texts.py) is its own test case, so that RELIABILITY.md can say
how many examples of each were tried; `--hypothesis-show-statistics` prints the counts.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from kg.chunking import chunk_text
from kg.documents import decode_document
from kg.errors import InvalidInput
from kg.extraction.openai import grounded_in
from kg.llm.prompts import COMBINED_PROMPT, TYPE_PROMPTS
from kg.merge import merge_chunk_results
from kg.models import ALL_TRIPLE_TYPES, Chunk, ChunkResult, ChunkStatus, Triple, TripleType
from kg.normalize import clean_surface, node_id, normalise, triple_id
from tests.properties.texts import CLASSES, PEOPLE, SMALL, as_bytes, expected_text, one_mb_line

HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example]


def examples(n: int) -> settings:
    return settings(max_examples=n, deadline=None, suppress_health_check=HEALTH)


def decoded(data: bytes) -> str | None:
    """decode_document's text, or None when it refused with a one-line InvalidInput."""
    try:
        return decode_document(data, "property", 10_000_000).text
    except InvalidInput as e:
        message = str(e)
        assert message.startswith("property: ") and "\n" not in message
        return None


# -- decoding --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [*SMALL, "raw-bytes"])
@examples(60)
@given(data=st.data())
def test_decoding_accepts_exactly_the_utf8_text_without_nul_and_refuses_the_rest_in_one_line(name, data):
    raw = data.draw(st.binary(max_size=2000) if name == "raw-bytes" else SMALL[name].map(as_bytes))
    assert decoded(raw) == expected_text(raw)
    if name == "nul":
        with pytest.raises(InvalidInput, match="NUL bytes"):
            decode_document(raw, "property", 10_000_000)
    if name == "lone-surrogate":
        with pytest.raises(InvalidInput, match="not UTF-8"):
            decode_document(raw, "property", 10_000_000)


@examples(8)
@given(one_mb_line)
def test_a_one_megabyte_line_decodes_and_chunks_within_the_limit(line):
    raw = as_bytes(line)
    assert len(raw) >= 1_000_000 and b"\n" not in raw
    text = decoded(raw)
    assert text == expected_text(raw) and text is not None
    check_chunks(text, chunk_text(text, "doc", 3000, 200), 3000)


# -- chunking --------------------------------------------------------------------------------------


def check_chunks(text: str, chunks: list[Chunk], max_tokens: int) -> None:
    """Spans that hold their text, cover the whole document in order, and keep the token limit."""
    assert chunks and chunks[0].start_char == 0 and chunks[-1].end_char == len(text)
    for i, chunk in enumerate(chunks):
        assert chunk.index == i and chunk.text == text[chunk.start_char:chunk.end_char] and chunk.text
        assert 0 < chunk.tokens <= max_tokens
    for before, after in zip(chunks, chunks[1:]):
        assert before.start_char < after.start_char <= before.end_char  # no gap, always forward


@pytest.mark.parametrize("name", [n for n in SMALL if n not in ("nul", "lone-surrogate")])
@examples(30)
@given(data=st.data())
def test_chunks_of_any_text_cover_it_in_order_within_the_token_limit(name, data):
    text = decoded(as_bytes(data.draw(SMALL[name])))
    if text is None:  # blank: refused above, nothing to chunk
        return
    max_tokens = data.draw(st.integers(20, 300))
    overlap = data.draw(st.integers(0, max_tokens // 2))
    check_chunks(text, chunk_text(text, "doc", max_tokens, overlap), max_tokens)


# -- normalisation and ids ------------------------------------------------------------------------


@pytest.mark.parametrize("name", [n for n in SMALL if n != "lone-surrogate"])
@examples(40)
@given(data=st.data())
def test_normalised_names_are_trimmed_single_spaced_lower_case_and_ids_ignore_padding(name, data):
    text = data.draw(SMALL[name])
    folded = normalise(text)
    assert folded == folded.strip() and "  " not in folded and "\n" not in folded and "\t" not in folded
    assert folded == folded.casefold()
    assert node_id("entity", f" \t{text}\n ") == node_id("entity", text)
    assert triple_id("ENTITY_ENTITY", text, "p", "o") == triple_id("ENTITY_ENTITY", f"  {text}  ", "p", "o")


@examples(20)
@example("THE%A%0")
@given(st.text())
def test_normalising_twice_changes_nothing(text):
    assert normalise(normalise(text)) == normalise(text)


# -- the offline extractor and merging ------------------------------------------------------------


@pytest.fixture(scope="module")
def spacy_extractor():
    pytest.importorskip("spacy")
    from kg.extraction.offline import SpacyExtractor

    return SpacyExtractor()


def check_merge(results: list[ChunkResult]) -> None:
    """Nothing lost, nothing duplicated, nothing dangling."""
    merged = merge_chunk_results(results)
    for t in merged.triples.values():
        assert {t.subject_id, t.object_id} <= merged.nodes.keys() and t.relation_id in merged.relations
        assert t.subject_id != t.object_id
    keys = [(p.triple_id, p.chunk_index) for p in merged.provenance]
    assert len(keys) == len(set(keys)) and {k for k, _ in keys} == merged.triples.keys()
    assert all(n.normalised == normalise(n.name) and n.normalised for n in merged.nodes.values())
    for r in results:  # every fact with two distinct, non-blank ends is kept
        for t in r.triples:
            s, p, o = clean_surface(t.subject), clean_surface(t.predicate), clean_surface(t.object)
            if normalise(s) and normalise(p) and normalise(o) and \
                    node_id(t.subject_kind, s) != node_id(t.object_kind, o):
                assert triple_id(t.type, s, p, o) in merged.triples
    # The same results twice (a retried chunk), or in another order, merge to the same graph.
    shuffled = results * 2
    random.Random(len(keys)).shuffle(shuffled)
    again = merge_chunk_results(shuffled)
    assert again.triples == merged.triples and again.nodes == merged.nodes
    assert sorted(again.provenance, key=repr) == sorted(merged.provenance, key=repr)


@pytest.mark.parametrize("name", [n for n in SMALL if n not in ("nul", "lone-surrogate")])
@examples(40)
@given(data=st.data())
def test_the_offline_extractor_takes_any_text_and_its_triples_merge_cleanly(spacy_extractor, name, data):
    text = decoded(as_bytes(data.draw(SMALL[name])))
    if text is None:
        return
    results = []
    for chunk in chunk_text(text[:4000], "doc", 300, 30):
        extraction = spacy_extractor.extract(chunk, ALL_TRIPLE_TYPES)
        assert not extraction.failed_types
        assert all(t.chunk_index == chunk.index for t in extraction.triples)
        results.append(ChunkResult(job_id="job", chunk_index=chunk.index, status=ChunkStatus.SUCCEEDED,
                                   triples=extraction.triples))
    check_merge(results)


_KINDS = {TripleType.ENTITY_ENTITY: ("entity", "entity"), TripleType.ENTITY_EVENT: ("entity", "event"),
          TripleType.EVENT_EVENT: ("event", "event"), TripleType.EMOTIONAL_CONTEXT: ("entity", "emotion")}


@st.composite
def hostile_triples(draw, name: str) -> Triple | None:
    texts = SMALL[name].map(lambda t: t[:200])
    triple_type = draw(st.sampled_from(list(TripleType)))
    subject_kind, object_kind = _KINDS[triple_type]
    fields = dict(type=triple_type, subject=draw(texts), predicate=draw(st.sampled_from(["worked with", "x"]) | texts),
                  object=draw(st.sampled_from(["Paris", "Marie Curie"]) | texts), subject_kind=subject_kind,
                  object_kind=object_kind, confidence=draw(st.floats(0, 1)), chunk_index=draw(st.integers(0, 3)))
    try:
        return Triple(**fields)
    except ValueError as e:  # a blank end, or a lone surrogate: refused by the model, as an LLM reply's item is
        assert any(reason in str(e) for reason in ("blank", "at least 1 character", "unicode"))
        return None


@pytest.mark.parametrize("name", list(SMALL))
@examples(40)
@given(data=st.data())
def test_merging_hostile_triples_loses_and_duplicates_nothing(name, data):
    triples = [t for t in data.draw(st.lists(hostile_triples(name), max_size=12)) if t is not None]
    by_chunk: dict[int, list[Triple]] = {}
    for t in triples:
        by_chunk.setdefault(t.chunk_index, []).append(t)
    check_merge([ChunkResult(job_id="job", chunk_index=i, status=ChunkStatus.SUCCEEDED, triples=ts)
                 for i, ts in sorted(by_chunk.items())])


# -- the LLM's side: prompts and grounding --------------------------------------------------------


@pytest.mark.parametrize("name", ["prompt-injection", "rtl-emoji", "any-unicode"])
@examples(40)
@given(data=st.data())
def test_the_text_is_only_ever_the_user_message_and_invented_ends_are_not_grounded(name, data):
    text = data.draw(SMALL[name])
    for prompt in [*TYPE_PROMPTS.values(), COMBINED_PROMPT]:
        messages = prompt.messages(text)  # instructions, the text, then (per type) the type's task
        assert [m for m in messages if m["role"] == "user"] == [{"role": "user", "content": text}]
        systems = [m["content"] for m in messages if m["role"] == "system"]
        assert systems == [prompt.system, prompt.task][:len(messages) - 1]
    # What an injected instruction asks the model to invent is not in the chunk, so it is dropped.
    folded = normalise(text)
    for invented in ("Mallory", "Eve", "Admin", "the graph", "Everything"):
        if normalise(invented) not in folded:
            assert not grounded_in(invented, folded)
    for person in PEOPLE:  # and a name the text does hold, as it wrote it, is
        if f" {person} " in f" {text} ":
            assert grounded_in(person, folded)


def test_every_input_class_is_exercised():
    assert set(CLASSES) == {"nul", "lone-surrogate", "rtl-emoji", "one-mb-line", "punctuation",
                            "prompt-injection", "any-unicode"}
