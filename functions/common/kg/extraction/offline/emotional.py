"""EMOTIONAL_CONTEXT: a holder and a feeling, or the target of an attitude, from an emotion lexicon.

Verbs (feared, admired, mourned, criticised, ...) give (holder, "<verb past>", target) plus
(holder, "felt" | "expressed", emotion noun); adjectives and participles after a linking verb
(proud, grateful, devastated, ...) give (holder, "felt", emotion noun) plus
(holder, "<adjective> <prep>", target) when the target is stated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kg.extraction.offline.clauses import clause_event, is_passive, negated, object_of, subjects_of, with_conjuncts
from kg.extraction.offline.lexicons import EMOTION_ADJECTIVES, EMOTION_VERBS, LINKING_VERBS
from kg.extraction.offline.parsed import Parsed
from kg.extraction.offline.text import Ref, confidence
from kg.models import NodeKind, Triple, TripleType

if TYPE_CHECKING:  # spaCy is an optional dependency (the `local` extra)
    from spacy.tokens import Token


def extract(p: Parsed) -> list[Triple]:
    out: list[Triple | None] = []
    for tok in p.tokens:
        low = tok.lower_
        if tok.pos_ == "VERB" and tok.lemma_.lower() in EMOTION_VERBS and low not in EMOTION_ADJECTIVES:
            out.extend(_emotion_verb(p, tok))
        elif low in EMOTION_ADJECTIVES and tok.pos_ in ("ADJ", "VERB"):
            out.extend(_emotion_adjective(p, tok))
    return [t for t in out if t is not None]


def _emotion_verb(p: Parsed, verb: Token) -> list[Triple | None]:
    pred, felt, emotion = EMOTION_VERBS[verb.lemma_.lower()]
    holders = [r for s in subjects_of(verb) if (r := p.ref(s, extend_of=False)) and r.kind == "entity"]
    targets: list[tuple[Ref | str, NodeKind]]
    if is_passive(verb):
        # "was criticised by X": the agent holds the attitude, the subject is its target.
        targets = [(r, r.kind) for r in holders]
        agent = object_of(next((c for c in verb.children if c.dep_ == "agent"), None))
        holders = []
        if agent is not None:
            holders = [r for t in with_conjuncts(agent) if (r := p.ref(t)) and r.kind == "entity"]
    else:
        targets = _emotion_targets(p, verb)
    neg = negated(verb)
    out: list[Triple | None] = []
    for h in holders:
        if not neg:
            out.append(
                p.triple(TripleType.EMOTIONAL_CONTEXT, h, felt, emotion, confidence(0.75, h), object_kind="emotion")
            )
        for target, kind in targets:
            out.append(
                p.triple(
                    TripleType.EMOTIONAL_CONTEXT,
                    h,
                    f"{neg} {pred}" if neg else pred,
                    target,
                    confidence(0.8 if kind == "entity" else 0.75, h),
                    object_kind=kind,
                )
            )
    return out


def _emotion_adjective(p: Parsed, tok: Token) -> list[Triple | None]:
    """'was proud of', 'felt lonely and frustrated', 'was devastated by his death'."""
    anchor = tok
    while anchor.dep_ == "conj":
        anchor = anchor.head
    if anchor.dep_ in ("acomp", "oprd") and anchor.head.lemma_ in LINKING_VERBS:
        verb = anchor.head
    elif tok.pos_ == "VERB" and is_passive(tok):
        verb = tok
    else:
        return []
    if negated(verb) or negated(tok):
        return []
    holders = [r for s in subjects_of(verb) if (r := p.ref(s, extend_of=False)) and r.kind == "entity"]
    low = tok.lower_
    out: list[Triple | None] = []
    for h in holders:
        emotion = EMOTION_ADJECTIVES[low]
        out.append(
            p.triple(TripleType.EMOTIONAL_CONTEXT, h, "felt", emotion, confidence(0.8, h), object_kind="emotion")
        )
        for c in tok.children:
            if c.dep_ in ("prep", "agent") and (o := object_of(c)) is not None and (target := p.ref(o)) is not None:
                out.append(p.triple(TripleType.EMOTIONAL_CONTEXT, h, f"{low} {c.lower_}", target, confidence(0.75, h)))
            elif c.dep_ in ("ccomp", "xcomp") and (ev := clause_event(p, c)):
                out.append(
                    p.triple(
                        TripleType.EMOTIONAL_CONTEXT, h, f"{low} about", ev, confidence(0.7, h), object_kind="event"
                    )
                )
    return out


def _emotion_targets(p: Parsed, verb: Token) -> list[tuple[Ref | str, NodeKind]]:
    targets: list[tuple[Ref | str, NodeKind]] = []
    for c in verb.children:
        if c.dep_ == "dobj":
            for t in with_conjuncts(c):
                r = p.ref(t)
                if r is not None:
                    targets.append((r, r.kind))
        elif c.dep_ == "prep" and c.lower_ in ("for", "about", "of", "at", "over") and (o := object_of(c)) is not None:
            r = p.ref(o)
            if r is not None:
                targets.append((r, r.kind))
        elif c.dep_ in ("ccomp", "xcomp") and (ev := clause_event(p, c, with_subject=c.dep_ == "ccomp")):
            targets.append((ev, "event"))
    return targets
