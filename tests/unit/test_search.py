"""The pure parts of search: lexical terms, reciprocal-rank fusion, supporting spans, request bounds."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from kg.graph import Match
from kg.search import (
    RRF_K,
    SearchRequest,
    SearchWeights,
    fuse,
    query_terms,
    rank_matches,
    supporting_span,
)


def test_query_terms_are_the_words_that_can_name_something():
    assert query_terms("Who discovered the element Radium, and where?") == ("discovered", "element", "radium")
    assert query_terms("who is it") == ()


def test_fusion_sums_weighted_reciprocal_ranks():
    a, b, c = (uuid.UUID(int=i) for i in (1, 2, 3))
    weights = SearchWeights()
    fused = fuse({"entity": [a, b], "semantic": [b, c], "concept": [c]}, weights)
    scores = {triple: score for triple, score, _ in fused}
    assert scores[a] == pytest.approx(0.3 / (RRF_K + 1))
    assert scores[b] == pytest.approx(0.3 / (RRF_K + 2) + 0.3 / (RRF_K + 1))
    assert scores[c] == pytest.approx(0.3 / (RRF_K + 2) + 0.2 / (RRF_K + 1))
    assert [triple for triple, _, _ in fused] == [b, c, a]
    ranks = {triple: r for triple, _, r in fused}
    assert (ranks[b].entity, ranks[b].semantic, ranks[b].relationship) == (2, 1, None)


def test_elements_rank_by_both_halves_then_by_similarity():
    def match(i: int, vector: int | None, lexical: int | None, similarity: float) -> Match:
        return Match(id=uuid.UUID(int=i), name=str(i), vector_rank=vector, lexical_rank=lexical, similarity=similarity)

    ranked = rank_matches([match(1, 1, None, 0.9), match(2, 2, 1, 0.8), match(3, None, 2, 0.1), match(4, 1, None, 0.95)])
    assert [m.name for m in ranked] == ["2", "4", "1", "3"]


TEXT = ("Marie Curie was born in Warsaw. She moved to Paris! There, Marie  Curie discovered radium "
        "with Pierre.\n\nLater she won a prize.")


@pytest.mark.parametrize(("subject", "obj", "expected"), [
    ("Marie Curie", "radium", "There, Marie  Curie discovered radium with Pierre."),
    ("marie curie", "Warsaw", "Marie Curie was born in Warsaw."),
    ("Pierre", "nobody", "There, Marie  Curie discovered radium with Pierre."),
    ("she", "prize", "Later she won a prize."),
])
def test_the_supporting_span_is_the_sentence_naming_both_ends(subject, obj, expected):
    start, end = supporting_span(TEXT, subject, obj)
    assert TEXT[start:end] == expected


def test_a_long_sentence_gives_a_window_around_the_names():
    text = "x " * 500 + "Marie discovered radium " + "y " * 500
    start, end = supporting_span(text, "Marie", "radium")
    assert end - start == 400 and "Marie discovered radium" in text[start:end]
    assert supporting_span("nothing here", "Marie", "radium") == (0, 12)


def test_a_date_alone_covers_its_whole_day():
    request = SearchRequest(query="radium", date_from="2024-05-01", date_to="2024-05-01")
    assert request.date_from == datetime(2024, 5, 1, tzinfo=UTC)
    assert request.date_to is not None and request.date_to.date() == request.date_from.date()
    assert request.date_to.hour == 23 and request.date_to.tzinfo is UTC
