"""ENTITY_EVENT: the roles named entities play in events.

Events are clause phrases ("Pierre Curie died", "Germany declared war on France"; the same
phrases EVENT_EVENT links, both built by `clauses.clause_event`) or eventive noun phrases
("Nobel Prize in Physics", "election to French Academy of Sciences"). Predicates: "agent of",
"subject of" (passive subject or owner: "Pierre's death"), "recipient of", "participant in",
"affected by" (harm verbs, undergo/suffer), "organiser of", "location of" (places).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kg.extraction.offline.clauses import clause_event, is_passive, object_of, realised, subjects_of, with_conjuncts
from kg.extraction.offline.lexicons import (
    EMOTION_VERBS,
    EVENTIVE_NOUNS,
    GIVE_VERBS,
    HARM_VERBS,
    LOOSE_PREPS,
    OBJECT_EVENT_ROLE,
    PARTICIPATION_PREPS,
    STATIVE,
)
from kg.extraction.offline.parsed import Parsed
from kg.extraction.offline.text import Ref, confidence, place
from kg.models import Triple, TripleType

if TYPE_CHECKING:  # spaCy is an optional dependency (the `local` extra)
    from spacy.tokens import Token


def extract(p: Parsed) -> list[Triple]:
    out: list[Triple | None] = []
    for verb in p.tokens:
        if verb.pos_ != "VERB":
            continue
        lemma = verb.lemma_.lower()
        subjects = [r for s in subjects_of(verb) if (r := p.ref(s, named_only=True)) and r.kind == "entity"]
        if lemma not in STATIVE and lemma not in EMOTION_VERBS and realised(verb) and subjects:
            out.extend(_clause_roles(p, verb, subjects))
        # Eventive nouns: "won the Nobel Prize", "awarded the prize to X", "stood for election".
        for c in verb.children:
            if c.dep_ == "dobj":
                ev = p.ref(c)
                if ev is None or (ev.kind != "event" and c.lemma_.lower() not in EVENTIVE_NOUNS):
                    continue
                ev = Ref(ev.text, ev.quality, "event")
                if lemma in GIVE_VERBS:
                    # "awarded the prize to X" and "awarded X the prize".
                    heads = [object_of(x) for x in verb.children if x.dep_ == "prep" and x.lower_ == "to"]
                    heads += [x for x in verb.children if x.dep_ == "dative"]
                    recipients = [t for h in heads if h is not None for t in with_conjuncts(h)]
                    for t in recipients:
                        r = p.ref(t, named_only=True)
                        if r is not None:
                            out.append(p.triple(TripleType.ENTITY_EVENT, r, "recipient of", ev, confidence(0.85, r)))
                    for s in subjects:
                        out.append(p.triple(TripleType.ENTITY_EVENT, s, "organiser of", ev, confidence(0.8, s)))
                else:
                    role = OBJECT_EVENT_ROLE.get(lemma, "participant in")
                    for s in subjects:
                        out.append(p.triple(TripleType.ENTITY_EVENT, s, role, ev, confidence(0.8, s)))
            elif c.dep_ == "prep" and c.lower_ in PARTICIPATION_PREPS and (o := object_of(c)) is not None:
                ev = p.ref(o)
                if ev is None or ev.kind != "event":
                    continue
                role = "recipient of" if lemma in ("receive", "win", "accept") else "participant in"
                for s in subjects:
                    out.append(p.triple(TripleType.ENTITY_EVENT, s, role, ev, confidence(0.7, s)))
    # "Pierre's death", "her election": the owner is the one it happened to.
    for tok in p.tokens:
        if tok.pos_ != "NOUN" or tok.lemma_.lower() not in EVENTIVE_NOUNS or tok.i in p.ent_at:
            continue
        for c in tok.children:
            if c.dep_ == "poss" and (owner := p.ref(c, named_only=True)) is not None:
                ev_text = p.noun_text(tok)
                out.append(
                    p.triple(
                        TripleType.ENTITY_EVENT,
                        owner,
                        "subject of",
                        ev_text,
                        confidence(0.75, owner),
                        object_kind="event",
                    )
                )
    return [t for t in out if t is not None]


def _clause_roles(p: Parsed, verb: Token, subjects: list[Ref]) -> list[Triple | None]:
    """The clause as an event node, linked to its named subject, objects and places."""
    event = clause_event(p, verb)
    if not event:
        return []
    lemma = verb.lemma_.lower()
    out: list[Triple | None] = []
    role = "subject of" if is_passive(verb) else "agent of"
    harm = lemma in HARM_VERBS
    for s in subjects:
        if role == "agent of" and harm:
            out.append(p.triple(TripleType.ENTITY_EVENT, s, "agent of", event, confidence(0.8, s), object_kind="event"))
        else:
            out.append(p.triple(TripleType.ENTITY_EVENT, s, role, event, confidence(0.75, s), object_kind="event"))
    for c in verb.children:
        targets: list[tuple[Token, str]] = []
        if c.dep_ in ("dobj", "dative"):
            default = "recipient of" if c.dep_ == "dative" else "affected by" if harm else "participant in"
            targets = [(t, default) for t in with_conjuncts(c)]
        elif c.dep_ == "prep" and (o := object_of(c)) is not None and c.lower_ not in LOOSE_PREPS:
            default = "recipient of" if c.lower_ == "to" and lemma in GIVE_VERBS else "participant in"
            targets = [(t, default) for t in with_conjuncts(o)]
        for t, default in targets:
            r = p.ref(t, named_only=True)
            if r is None or r.kind != "entity" or any(r.text == s.text for s in subjects):
                continue
            if t.lemma_.lower() in EVENTIVE_NOUNS:
                continue
            obj_role = "location of" if place(r) else default
            out.append(p.triple(TripleType.ENTITY_EVENT, r, obj_role, event, confidence(0.7, r), object_kind="event"))
    return out
