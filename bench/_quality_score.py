"""Scoring extracted triples against reference triples (used by bench/quality.py).

The references (WebNLG, DBpedia predicate names) are paired with the predictions text by text,
by the best one-to-one assignment (the Hungarian method):

- an *entity* (a subject or an object) is found when its normalised tokens overlap a reference
  entity's: one token set contains the other, or their Jaccard index is at least 0.5. Entities
  are the distinct subjects and objects of a text, on each side;
- a *relation* is found when its subject and object are found in the reference's subject and
  object, in that order, whatever the predicate says;
- a *triple* is found when its subject is found in the reference's subject, its object in the
  reference's object (direction counts: a reversed passive is wrong), and the predicates share a
  content word, compared by Porter stem of the lemma, a verb also standing for the nouns English
  derives from it: "located in" meets "location", "leader of" meets "leaderName", "owned by"
  meets "owner", "born in" meets "birthPlace"; "plays for" does not meet "club".

Normalising: initials joined ("A.C." = "AC"), camelCase split, lower case, parentheses and punctuation dropped, articles dropped,
thousands separators removed from numbers ("29,000" = "29000"); a full date in any format
becomes its year, month and day ("June 30th, 1953" = "1953-06-30").
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from dateutil import parser as dateutil_parser
from nltk.stem.porter import PorterStemmer
from scipy.optimize import linear_sum_assignment

_ARTICLES = frozenset({"a", "an", "the"})
# Function words a predicate shares with almost any other ("is part of" vs "born in").
_PREDICATE_STOP = frozenset(
    """a an the of in on at to for by with from into as is are was were be been being has have had
    and or its it his her their this that which who s""".split()
)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")
_TOKEN = re.compile(r"\d+(?:\.\d+)?|[^\W_]+")
_INITIALS = re.compile(r"\b(?:[A-Za-z]\.){2,}")  # "A.C. Milan" = "AC Milan"
_STEMMER = PorterStemmer()
_DATE_HINT = re.compile(r"\b\d{4}\b")
_DATE_FILLER = re.compile(r"\b(?:the|of|on)\b", re.IGNORECASE)
_NO_DATE = datetime.datetime(1, 1, 1)
_OTHER_NO_DATE = datetime.datetime(2, 2, 2)


def _iso_date(text: str) -> str | None:
    """"June 30th, 1953" and "1953-06-30" alike: dates are compared by value, not by format."""
    if not _DATE_HINT.search(text):
        return None
    text = _DATE_FILLER.sub(" ", text)  # "the 28th of October 2014"
    try:
        day = dateutil_parser.parse(text, default=_NO_DATE)
    except (ValueError, OverflowError):
        return None
    parsed = dateutil_parser.parse(text, default=_OTHER_NO_DATE)
    if day != parsed:  # a part was missing and filled from the default: not a full date
        return None
    return day.strftime("%Y %m %d")


def tokens(text: str) -> tuple[str, ...]:
    if (iso := _iso_date(text)) is not None:
        return tuple(iso.split())
    text = _INITIALS.sub(lambda m: m.group().replace(".", ""), text)
    text = _THOUSANDS.sub("", _CAMEL.sub(" ", text)).lower()
    return tuple(t for t in _TOKEN.findall(text) if t not in _ARTICLES)


def entity_found(predicted: Sequence[str], reference: Sequence[str]) -> bool:
    a, b = set(predicted), set(reference)
    if not a or not b:
        return False
    return a <= b or b <= a or len(a & b) / len(a | b) >= 0.5


def _overlap(predicted: Sequence[str], reference: Sequence[str]) -> float:
    a, b = set(predicted), set(reference)
    return len(a & b) / len(a | b) if a and b else 0.0


@dataclass(frozen=True)
class Triple3:
    subject: tuple[str, ...]
    predicate: frozenset[str]
    object: tuple[str, ...]


Lemmatise = Callable[[str], list[str]]


def predicate_stems(predicate: str, lemmatise: Lemmatise) -> frozenset[str]:
    """Stems of the predicate's content words and of the nouns derived from its verbs."""
    words = " ".join(tokens(predicate))
    lemmas = [w for w in lemmatise(words) if w not in _PREDICATE_STOP and w.isalpha()]
    return frozenset(_stem(form) for w in lemmas for form in (w, *_derived_nouns(w)))


# Nouns English derives irregularly from a verb ("born in" states a birthplace).
_IRREGULAR_NOUNS = {"bear": ("birth",), "die": ("death",), "marry": ("marriage",)}


def _derived_nouns(verb: str) -> tuple[str, ...]:
    """The agent nouns of a verb ("lead" -> "leader", "operate" -> "operator", "own" -> "owner")
    and its irregular nominalisation: "led by" names the leader, "born in" the birth place."""
    forms = [verb + "er", verb + "or"]
    if verb.endswith("e"):
        forms += [verb + "r", verb[:-1] + "or"]
    return (*forms, *_IRREGULAR_NOUNS.get(verb, ()))


@lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    return _STEMMER.stem(word)


def as_triple(subject: str, predicate: str, object_: str, lemmatise: Lemmatise) -> Triple3:
    return Triple3(tokens(subject), predicate_stems(predicate, lemmatise), tokens(object_))


def triple_found(predicted: Triple3, reference: Triple3) -> bool:
    return (
        entity_found(predicted.subject, reference.subject)
        and entity_found(predicted.object, reference.object)
        and bool(predicted.predicate & reference.predicate)
    )


def _assign(n_pred: int, n_ref: int, weight: Callable[[int, int], float]) -> list[tuple[int, int]]:
    """Index pairs of the best one-to-one assignment; only pairs of positive weight count."""
    if not n_pred or not n_ref:
        return []
    w = np.array([[weight(i, j) for j in range(n_ref)] for i in range(n_pred)], dtype=float)
    rows, cols = linear_sum_assignment(w, maximize=True)
    return [(int(i), int(j)) for i, j in zip(rows, cols, strict=True) if w[i, j] >= 1.0]


def match_entities(predicted: Iterable[tuple[str, ...]], reference: Iterable[tuple[str, ...]]) -> int:
    pred = sorted({p for p in predicted if p})
    ref = sorted({r for r in reference if r})
    # Found pairs weigh 1 plus a tie-break by overlap, so the assignment prefers the closer name.
    return len(
        _assign(len(pred), len(ref), lambda i, j: (1.0 + _overlap(pred[i], ref[j])) if entity_found(pred[i], ref[j]) else 0.0)
    )


def match_triples(predicted: Sequence[Triple3], reference: Sequence[Triple3]) -> list[tuple[int, int]]:
    return _assign(
        len(predicted), len(reference), lambda i, j: 1.0 if triple_found(predicted[i], reference[j]) else 0.0
    )


def ends_matched(predicted: Sequence[Triple3], reference: Sequence[Triple3]) -> list[tuple[int, int]]:
    """Pairs whose subject and object are both found, whatever the predicate."""
    return _assign(
        len(predicted),
        len(reference),
        lambda i, j: 1.0
        if entity_found(predicted[i].subject, reference[j].subject) and entity_found(predicted[i].object, reference[j].object)
        else 0.0,
    )


def text_stems(text: str, lemmatise: Lemmatise) -> frozenset[str]:
    """Stems of every word of a text, to ask whether a reference's predicate word is written in it."""
    return frozenset(_stem(w) for w in lemmatise(text))


def predicate_misses(predicted: Sequence[Triple3], reference: Sequence[Triple3],
                     written: frozenset[str]) -> list[tuple[int, bool]]:
    """The references whose subject and object a prediction found, in order, but not the predicate:
    (reference index, whether one of its predicate stems is among the text's stems `written`)."""
    return [(j, bool(reference[j].predicate & written)) for i, j in ends_matched(predicted, reference)
            if not predicted[i].predicate & reference[j].predicate]


@dataclass
class Tally:
    """Micro-averaged counts over a set of texts."""

    texts: int = 0
    texts_empty: int = 0  # texts with references but no prediction at all
    predicted_triples: int = 0
    reference_triples: int = 0
    found_triples: int = 0
    found_ends: int = 0  # pairs whose subject and object are found, in order, whatever the predicate
    predicted_entities: int = 0
    reference_entities: int = 0
    found_entities: int = 0

    def add(self, other: Tally) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @staticmethod
    def _prf(found: int, predicted: int, reference: int) -> tuple[float, float, float]:
        p = found / predicted if predicted else 0.0
        r = found / reference if reference else 0.0
        f = 2 * p * r / (p + r) if p + r else 0.0
        return round(p, 3), round(r, 3), round(f, 3)

    def ends_prf(self) -> tuple[float, float, float]:
        return self._prf(self.found_ends, self.predicted_triples, self.reference_triples)

    def entity_prf(self) -> tuple[float, float, float]:
        return self._prf(self.found_entities, self.predicted_entities, self.reference_entities)

    def triple_prf(self) -> tuple[float, float, float]:
        return self._prf(self.found_triples, self.predicted_triples, self.reference_triples)


@dataclass
class TextScore:
    tally: Tally
    correct: list[bool] = field(default_factory=list)  # per predicted triple: part of a found pair


def score_text(predicted: Sequence[Triple3], reference: Sequence[Triple3]) -> TextScore:
    pred_entities = [e for t in predicted for e in (t.subject, t.object)]
    ref_entities = [e for t in reference for e in (t.subject, t.object)]
    found = match_triples(predicted, reference)
    correct = [False] * len(predicted)
    for i, _ in found:
        correct[i] = True
    tally = Tally(
        texts=1,
        texts_empty=int(bool(reference) and not predicted),
        predicted_triples=len(predicted),
        reference_triples=len(reference),
        found_triples=len(found),
        found_ends=len(ends_matched(predicted, reference)),
        predicted_entities=len({e for e in pred_entities if e}),
        reference_entities=len({e for e in ref_entities if e}),
        found_entities=match_entities(pred_entities, ref_entities),
    )
    return TextScore(tally, correct)


def roc_auc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """Probability that a right triple has a higher confidence than a wrong one (ties count half)."""
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    if not pos or not neg:
        return None
    neg_sorted = np.sort(np.array(neg))
    wins = 0.0
    for s in pos:
        below = np.searchsorted(neg_sorted, s, side="left")
        equal = np.searchsorted(neg_sorted, s, side="right") - below
        wins += below + 0.5 * equal
    return round(wins / (len(pos) * len(neg)), 3)
