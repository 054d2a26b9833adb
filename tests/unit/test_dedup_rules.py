"""When two wordings cannot state the same fact (kg.dedup): opposites, negation, converse direction;
and the paraphrases that must still be allowed to merge."""

from __future__ import annotations

import pytest

from kg.dedup import predicates_conflict, stem, triples_conflict, wordings_conflict

ANTONYMS = [
    ("presented", "received"), ("gave", "took"), ("gives", "taken"), ("increased", "decreased"),
    ("bought", "sold"), ("buys", "sold"), ("won", "lost"), ("rose", "fell"), ("opened", "closed"),
    ("sent to", "received from"), ("imported", "exported"), ("agreed with", "disagreed with"),
    ("overestimated", "underestimated"), ("included", "excluded"), ("hired", "fired"),
    ("supported", "opposed"), ("moved to", "moved from"), ("was born in", "died in"),
]
NEGATIONS = [
    ("won", "did not win"), ("won", "didn't win"), ("received", "never received"), ("can attend", "cannot attend"),
    ("has", "has no"), ("worked with", "worked without"),
]
CONVERSES = [
    ("caused", "caused by"), ("founded", "was founded by"), ("preceded", "followed"), ("parent of", "child of"),
    ("employer of", "employee of"), ("mentor of", "mentee of"), ("member of", "has member"), ("part of", "has part"),
    ("teacher of", "student of"), ("before", "after"),
]
PARAPHRASES = [
    ("discovered", "discovered"), ("received", "receives"), ("receiving", "received"), ("was awarded", "awarded"),
    ("founded by", "was founded by"), ("worked with", "collaborated with"), ("won", "has won"),
    ("stopped", "stops"), ("married", "was married to"), ("located in", "is located in"),
]


@pytest.mark.parametrize(("a", "b"), ANTONYMS + NEGATIONS + CONVERSES)
def test_opposite_negated_and_converse_predicates_conflict_in_either_order(a, b):
    assert predicates_conflict(a, b) is not None
    assert predicates_conflict(b, a) is not None


@pytest.mark.parametrize(("a", "b"), PARAPHRASES)
def test_paraphrased_predicates_do_not_conflict(a, b):
    assert predicates_conflict(a, b) is None and predicates_conflict(b, a) is None


def test_the_reason_names_the_kind_of_conflict():
    assert predicates_conflict("presented", "received").startswith("opposites")
    assert predicates_conflict("won", "did not win") == "negation"
    assert predicates_conflict("caused", "caused by").startswith("direction")
    assert predicates_conflict("member of", "has member").startswith("direction")


def test_stems_ignore_inflection_and_map_irregular_verbs():
    assert stem("received") == stem("receive") == stem("receives") == stem("receiving")
    assert stem("stopped") == stem("stops") == stem("stop")
    assert stem("gave") == stem("give") and stem("sold") == stem("sells") and stem("fell") == stem("fall")
    assert stem("pass") == "pass" and stem("fall") == "fall"


def test_subjects_and_objects_conflict_on_negation_and_opposites_only():
    assert wordings_conflict("prices rose", "prices fell") is not None
    assert wordings_conflict("the treaty was signed", "the treaty was not signed") == "negation"
    assert wordings_conflict("North Korea", "South Korea") is not None
    assert wordings_conflict("the element radium", "radium") is None
    assert wordings_conflict("Nobel Prize in Physics", "Nobel Prize in Chemistry") is None  # the vectors decide


def test_a_triple_conflicts_through_any_of_its_parts():
    fact = ("The committee", "presented", "Greta")
    assert triples_conflict(fact, ("The committee", "received", "Greta"))
    assert triples_conflict(("Exports", "caused", "prices rose"), ("Exports", "caused", "prices fell"))
    assert triples_conflict(fact, ("The committee", "presented", "the award to Greta")) is None
    assert triples_conflict(fact, fact) is None
