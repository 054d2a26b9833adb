"""Heuristic concepts without an LLM: the entity label, the phrase head, the verb lemma.

high   the coarse class: person, organization, place, event, emotion, causation, ...
medium a finer class: the head noun of a common-noun phrase ("prize", "institute"), the verb
       lemma of an event ("die"), the polarity of an emotion, the verb of a relation
low    the most specific abstraction: the head with its compounds ("Nobel Prize"), verb + object
       ("discover radium"), the emotion's lemma, the whole predicate

Confidence is lower where the class is a guess (no entity label) than where spaCy named it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from kg.models import ConceptBatch, ConceptElement, ConceptPhrase
from kg.nlp import DEFAULT_MODEL, load_spacy, parse_many
from kg.normalize import clean_surface

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.tokens import Doc, Token

_LABEL_CLASSES: dict[str, tuple[str, str]] = {  # entity label -> (high, medium)
    "PERSON": ("person", "individual"),
    "ORG": ("organization", "institution"),
    "GPE": ("place", "political region"),
    "LOC": ("place", "geographic location"),
    "FAC": ("place", "facility"),
    "NORP": ("group", "nationality or group"),
    "EVENT": ("event", "named event"),
    "WORK_OF_ART": ("creative work", "titled work"),
    "LAW": ("law", "legal document"),
    "LANGUAGE": ("language", "language"),
    "PRODUCT": ("product", "product"),
    "DATE": ("time", "date"),
    "TIME": ("time", "time of day"),
    "MONEY": ("quantity", "amount of money"),
    "QUANTITY": ("quantity", "measurement"),
    "PERCENT": ("quantity", "percentage"),
    "CARDINAL": ("quantity", "number"),
    "ORDINAL": ("quantity", "rank"),
}
_POSITIVE = frozenset(
    "admiration affection delight gratitude happiness hope joy love pleasure pride relief "
    "satisfaction trust enthusiasm excitement respect praise comfort".split()
)
_NEGATIVE = frozenset(
    "anger anxiety bitterness criticism despair devastation disappointment disgust distress fear "
    "frustration grief guilt hatred humiliation jealousy loneliness resentment sadness shame "
    "sorrow suspicion worry dislike contempt hostility".split()
)
_RELATION_CLASSES = {
    "causes": "causation", "caused by": "causation",
    "precedes": "temporal order", "follows": "temporal order", "during": "temporal order",
    "contrasts with": "contrast",
    "agent of": "participation", "subject of": "participation", "participant in": "participation",
    "recipient of": "participation", "affected by": "participation", "organiser of": "participation",
    "location of": "location",
    "felt": "attitude", "expressed": "attitude",
}


def _phrase(*tokens: Token) -> str:
    words = [t.text if t.pos_ == "PROPN" else t.lemma_.lower() for t in tokens]
    return clean_surface(" ".join(words[-3:]))


def _head_with_compounds(root: Token) -> str:
    compounds = [c for c in root.lefts if c.dep_ in ("compound", "amod") and c.pos_ != "DET"]
    return _phrase(*compounds[-2:], root)


class HeuristicConceptualizer:
    name = "offline-heuristic"

    def __init__(self, nlp: str | Language = DEFAULT_MODEL):
        """`nlp`: a spaCy model name (loaded at first use, shared with the offline extractor) or a
        loaded pipeline."""
        self._nlp = nlp

    def conceptualize(self, elements: Sequence[ConceptElement]) -> ConceptBatch:
        if not elements:
            return ConceptBatch(concepts=[])
        nlp = load_spacy(self._nlp) if isinstance(self._nlp, str) else self._nlp
        docs = parse_many(nlp, [e.name for e in elements])
        concepts = [self._concepts(element, doc) for element, doc in zip(elements, docs, strict=True)]
        return ConceptBatch(concepts=concepts)

    def _concepts(self, element: ConceptElement, doc: Doc) -> list[ConceptPhrase]:
        root = next((t for t in doc if t.dep_ == "ROOT"), None)
        if root is None:
            return []
        if element.kind == "relation":
            found = self._relation(element.name, root)
        elif element.kind == "emotion":
            found = self._emotion(root)
        elif element.kind == "event" or root.pos_ in ("VERB", "AUX"):
            found = self._event(root)
        else:
            found = self._entity(doc, root)
        seen: set[tuple[str, str]] = set()
        phrases = []
        for level, phrase, confidence in found:
            key = (level, phrase.casefold())
            # A high or medium concept that merely repeats the name abstracts nothing; at the low
            # level the name's head itself ("radium") is a fair concept.
            if phrase and key not in seen and (level == "low" or phrase.casefold() != element.name.casefold()):
                seen.add(key)
                phrases.append(ConceptPhrase(phrase=phrase, level=level, confidence=confidence))
        return phrases

    @staticmethod
    def _entity(doc: Doc, root: Token) -> list[tuple[str, str, float]]:
        ent = max(doc.ents, key=len, default=None)
        label = ent.label_ if ent is not None and len(ent) * 2 >= len(doc) else None
        if label in _LABEL_CLASSES:
            high, medium = _LABEL_CLASSES[label]
            found = [("high", high, 0.85), ("medium", medium, 0.7)]
            if root.pos_ == "NOUN" or (label not in ("PERSON", "GPE", "NORP") and len(doc) > 1):
                found.append(("low", _head_with_compounds(root), 0.6))
            return found
        if root.pos_ == "PROPN":
            return [("high", "named entity", 0.5), ("low", _head_with_compounds(root), 0.5)]
        return [("high", "entity", 0.4), ("medium", _phrase(root), 0.6), ("low", _head_with_compounds(root), 0.7)]

    @staticmethod
    def _event(root: Token) -> list[tuple[str, str, float]]:
        if root.pos_ in ("VERB", "AUX"):
            objects = [c for c in root.children if c.dep_ in ("dobj", "attr", "oprd")]
            found = [("high", "event", 0.8), ("medium", root.lemma_.lower(), 0.7)]
            if objects:
                found.append(("low", _phrase(root, objects[0]), 0.6))
            return found
        return [("high", "event", 0.7), ("medium", root.lemma_.lower(), 0.6), ("low", _head_with_compounds(root), 0.6)]

    @staticmethod
    def _emotion(root: Token) -> list[tuple[str, str, float]]:
        lemma = root.lemma_.lower()
        polarity = "positive emotion" if lemma in _POSITIVE else "negative emotion" if lemma in _NEGATIVE else "feeling"
        return [("high", "emotion", 0.9), ("medium", polarity, 0.7 if polarity != "feeling" else 0.5),
                ("low", lemma, 0.8)]

    @staticmethod
    def _relation(name: str, root: Token) -> list[tuple[str, str, float]]:
        key = clean_surface(name).lower()
        high = _RELATION_CLASSES.get(key) or ("action" if root.pos_ == "VERB" else "relation")
        lemmas = " ".join(t.lemma_.lower() for t in root.doc)
        return [("high", high, 0.8 if key in _RELATION_CLASSES else 0.4),
                ("medium", root.lemma_.lower(), 0.6), ("low", lemmas, 0.8)]
