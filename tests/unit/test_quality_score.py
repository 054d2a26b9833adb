"""The scorer behind bench/quality.py: the figures in BENCHMARKS.md are only as good as it is."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("scipy")
pytest.importorskip("nltk")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from _quality_score import (  # noqa: E402
    as_triple,
    entity_found,
    match_entities,
    predicate_misses,
    roc_auc,
    score_text,
    text_stems,
    tokens,
)


def lemmatise(text: str) -> list[str]:
    # Enough of a lemmatiser for these cases; the bench uses spaCy's.
    table = {"located": "locate", "was": "be", "born": "bear", "leads": "lead", "led": "lead", "plays": "play"}
    return [table.get(w, w) for w in text.split()]


def t(s: str, p: str, o: str):
    return as_triple(s, p, o, lemmatise)


def test_normalising_splits_camel_case_and_drops_articles_punctuation_and_thousands_separators():
    assert tokens("The leaderName of A.C. Milan") == ("leader", "name", "of", "ac", "milan")
    assert tokens("has 29,000 employees") == ("has", "29000", "employees")
    assert tokens("3.0 (kilograms)") == ("3.0", "kilograms")


def test_an_entity_is_found_by_containment_or_half_overlap_and_not_otherwise():
    assert entity_found(tokens("Andrew White"), tokens("Andrew White (musician)"))
    assert entity_found(tokens("Trenton, New Jersey"), tokens("Trenton"))
    assert entity_found(tokens("New York City"), tokens("New York State"))  # Jaccard 2/4
    assert not entity_found(tokens("New York City Hall"), tokens("New York State"))  # 2/5
    assert not entity_found(tokens("Paris"), tokens("Texas"))
    assert not entity_found((), tokens("Texas"))


def test_predicates_meet_on_a_shared_content_stem_only():
    reference = t("Agra Airport", "location", "Agra")
    assert score_text([t("Agra Airport", "located in", "Agra")], [reference]).tally.found_triples == 1
    # "in" alone is a function word: the ends are right, the predicate says nothing.
    assert score_text([t("Agra Airport", "in", "Agra")], [reference]).tally.found_triples == 0
    # A verb stands for the nouns derived from it; other words do not meet.
    assert score_text([t("Xan", "born in", "Yeo")], [t("Xan", "birthPlace", "Yeo")]).tally.found_triples == 1
    assert score_text([t("Xan", "led by", "Yeo")], [t("Xan", "leaderName", "Yeo")]).tally.found_triples == 1
    assert score_text([t("Xan", "plays for", "Yeo")], [t("Xan", "club", "Yeo")]).tally.found_triples == 0
    assert score_text([t("Germany", "leader", "Tillich")], [t("Germany", "leaderName", "Tillich")]).tally.found_triples == 1


def test_direction_counts():
    reference = [t("Asterix", "creator", "Goscinny")]
    assert score_text([t("Goscinny", "creator", "Asterix")], reference).tally.found_triples == 0
    assert score_text([t("Asterix", "creator", "Goscinny")], reference).tally.found_triples == 1


def test_assignment_is_one_to_one():
    reference = [t("Ava", "capital", "Bo")]
    predicted = [t("Ava", "capital", "Bo"), t("Ava", "capital", "Bo city")]
    scored = score_text(predicted, reference)
    assert scored.tally.found_triples == 1
    assert scored.correct.count(True) == 1
    # Two predicted names for one reference entity find it once; the best pairing is kept.
    assert match_entities([tokens("New York"), tokens("York")], [tokens("New York"), tokens("Paris")]) == 1
    assert match_entities([tokens("York"), tokens("Paris")], [tokens("New York"), tokens("Paris")]) == 2


def test_tally_counts_empty_texts_and_distinct_entities():
    reference = [t("Ava", "p", "Bo"), t("Ava", "q", "Cy")]
    scored = score_text([], reference)
    assert scored.tally.texts_empty == 1
    assert scored.tally.reference_entities == 3
    assert score_text([t("Ava", "p", "Bo")], reference).tally.texts_empty == 0


def test_auc_orders_by_confidence():
    assert roc_auc([0.9, 0.8, 0.2, 0.1], [True, True, False, False]) == 1.0
    assert roc_auc([0.1, 0.2, 0.8, 0.9], [True, True, False, False]) == 0.0
    assert roc_auc([0.5, 0.5], [True, False]) == 0.5
    assert roc_auc([0.5], [True]) is None


def test_a_relation_needs_both_ends_in_order_but_no_common_predicate():
    reference = [t("Akeem Priestley", "club", "FK Mughan")]
    scored = score_text([t("Akeem Priestley", "play for", "FK Mughan")], reference)
    assert (scored.tally.found_ends, scored.tally.found_triples) == (1, 0)
    assert score_text([t("FK Mughan", "play for", "Akeem Priestley")], reference).tally.found_ends == 0


def test_a_predicate_miss_says_whether_the_references_word_is_written():
    reference = [t("Lena Holt", "club", "Oslo FC"), t("Lena Holt", "birthPlace", "Bergen"), t("Lena Holt", "spouse", "Ola")]
    predicted = [t("Lena Holt", "play for club", "Oslo FC"), t("Lena Holt", "play in", "Bergen"),
                 t("Ola", "marry", "Lena Holt")]
    written = text_stems("Lena Holt plays for the club Oslo FC and was raised in Bergen", lemmatise)
    # The first pair meets its predicate; the second misses it with "birth" nowhere in the text; the
    # third is the wrong way round, so it is no right pair at all.
    assert predicate_misses(predicted, reference, written) == [(1, False)]
    assert predicate_misses([t("Lena Holt", "play for", "Oslo FC")], reference, written) == [(0, True)]


def test_full_dates_compare_by_value_whatever_the_format():
    assert tokens("June 30th, 1953") == tokens("1953-06-30") == ("1953", "06", "30")
    assert tokens("the 28th of October 2014") == tokens("2014-10-28")
    assert tokens("1953") == ("1953",)  # a year alone is a number, not a full date
    assert tokens("Boeing 737") == ("boeing", "737")
