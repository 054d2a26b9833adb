"""A last resort for sentences the grammar rules gave nothing: ReVerb's relation-phrase pattern.

When the parse of a sentence is too broken for the clause rules (the small model tags an
unknown dish name as an adjective, or makes a verb the root of a noun phrase), the sentence's
noun phrases are still found in order. Two neighbouring phrases are linked when the words
between them form a relation phrase: a verb, optionally followed by nouns, adjectives or
adverbs and ending in a preposition ("originates from", "is a dish from", "has died in"),
as in ReVerb (Fader et al., 2011). The predicate is the phrase's verb lemma and particles;
confidence is low and drops further for common-noun ends, so these triples rank last.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kg.extraction.offline.lexicons import VALUE_LABELS
from kg.extraction.offline.parsed import Parsed
from kg.extraction.offline.text import Ref, clean, confidence, name_text
from kg.models import Triple, TripleType

if TYPE_CHECKING:  # spaCy is an optional dependency (the `local` extra)
    from spacy.tokens import Span, Token

_MAX_GAP = 6  # words between two phrases; longer gaps are rarely one relation
_GAP_POS = frozenset({"VERB", "AUX", "ADP", "PART", "ADV", "ADJ", "NOUN", "DET"})


def extract(p: Parsed, covered: list[Triple]) -> list[Triple]:
    """Triples for the sentences none of `covered` comes from (judged by their ends' text)."""
    out: list[Triple] = []
    sents = list(p.doc.sents)
    sent_of = [0] * len(p.doc)
    for k, sent in enumerate(sents):
        sent_of[sent.start : sent.end] = [k] * (sent.end - sent.start)
    ents: dict[int, list[Span]] = {}
    for ent in p.doc.ents:
        ents.setdefault(sent_of[ent.start], []).append(ent)
    chunks: dict[int, list[Span]] = {}
    for nc in p.noun_chunks:
        if sent_of[nc.start] == sent_of[nc.end - 1]:
            chunks.setdefault(sent_of[nc.start], []).append(nc)
    for k, sent in enumerate(sents):
        text = sent.text
        # The names the sentence's pronouns stand for count as written in it ("He was born in Lund").
        resolved = {p.pronoun_ref[i] for i in range(sent.start, sent.end) if i in p.pronoun_ref}
        if any(t.object in text and (t.subject in text or t.subject in resolved) for t in covered):
            continue
        phrases = _phrases(p, ents.get(k, []), chunks.get(k, []))
        for (left, left_ref), (right, right_ref) in zip(phrases, phrases[1:], strict=False):
            if left_ref.label in VALUE_LABELS or left.root.pos_ == "ADJ":
                # A date or a number is an object, never the one a relation starts from; an
                # adjective ("American newspapers") is not the subject either.
                continue
            gap = p.doc[left.end : right.start]
            pred = _relation(gap)
            # Between two names only: with a common-noun end, 1 in 30 was right on the development set.
            if pred is None or not (left_ref.named and right_ref.named):
                continue
            triple = p.triple(TripleType.ENTITY_ENTITY, left_ref, pred, right_ref, confidence(0.5, left_ref, right_ref))
            if triple is not None:
                out.append(triple)
    return out


def _phrases(p: Parsed, ents: list[Span], chunks: list[Span]) -> list[tuple[Span, Ref]]:
    """Named entities, values and noun chunks of one sentence, left to right, not overlapping."""
    spans: list[tuple[Span, Ref]] = []
    taken: set[int] = set()
    for ent in ents:
        if ent.label_ in VALUE_LABELS:
            ref = p.value(ent.root)
        else:
            ref = Ref(clean(name_text(ent)), "ne", "entity", ent.label_)
        taken.update(range(ent.start, ent.end))
        if ref is not None and ref.text:
            spans.append((ent, ref))
    for nc in chunks:
        if any(i in taken for i in range(nc.start, nc.end)):
            continue
        if nc.root.pos_ == "PRON" and nc.root.i not in p.pronoun_ref:
            continue
        ref = p.ref(nc.root, extend_of=False)
        if ref is None:
            continue
        spans.append((nc, ref))
        taken.update(range(nc.start, nc.end))
    spans.sort(key=lambda pair: pair[0].start)
    return spans


def _relation(gap: Span) -> str | None:
    """The predicate of a ReVerb relation phrase (V | V P | V W* P), or None."""
    words: list[Token] = [t for t in gap if not t.is_punct or t.text == "-"]
    if not words or len(words) > _MAX_GAP or len(words) != len(gap):
        return None
    if any(t.pos_ not in _GAP_POS for t in words):
        return None
    verbs = [t for t in words if t.pos_ in ("VERB", "AUX") or (t.tag_.startswith("VB"))]
    if not verbs:
        return None
    first = verbs[0]
    tail = words[words.index(first) + 1 :]
    if tail and tail[-1].pos_ not in ("ADP", "PART") and any(t.pos_ in ("NOUN", "ADJ") for t in tail):
        return None  # "V W*" must end in a preposition to name a relation
    kept = [first.lemma_.lower() if first.lemma_ != "be" else "is"]
    kept += [t.lower_ for t in tail if t.pos_ in ("ADP", "PART", "NOUN", "ADJ", "VERB")]
    return " ".join(kept) if kept else None
