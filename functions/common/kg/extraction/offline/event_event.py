"""EVENT_EVENT: links between two events marked by a connective.

Fixed predicate vocabulary: "causes", "caused by", "precedes", "follows", "during",
"contrasts with". because/as/since/(because of) -> caused by; so/therefore/thus/as a result/
led to/caused/resulted in -> causes; after/following -> follows; before/until -> precedes;
when/while/during -> during; although/though/despite/whereas -> contrasts with.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from kg.extraction.offline.clauses import clause_event, object_of
from kg.extraction.offline.lexicons import CAUSAL_VERBS, EVENTIVE_NOUNS, MARK_LINKS, PREP_LINKS, RESULT_ADVERBS
from kg.extraction.offline.parsed import Parsed
from kg.extraction.offline.text import confidence
from kg.models import Triple, TripleType

if TYPE_CHECKING:  # spaCy is an optional dependency (the `local` extra)
    from spacy.tokens import Token


def extract(p: Parsed) -> list[Triple]:
    out: list[Triple | None] = []

    def link(a: str | None, pred: str, b: str | None, conf: float) -> None:
        if a and b:
            out.append(p.triple(TripleType.EVENT_EVENT, a, pred, b, round(min(conf, 1.0), 3)))

    prev_root_event: str | None = None
    for sent in p.doc.sents:
        for tok in p.tokens[sent.start : sent.end]:
            if tok.dep_ == "advcl":
                # The parser labels "when" advmod, "because"/"after" mark.
                mark = next((c for c in tok.children if c.dep_ in ("mark", "advmod") and c.lower_ in MARK_LINKS), None)
                if mark is not None:
                    pred, conf = MARK_LINKS[mark.lower_]
                    link(clause_event(p, tok.head), pred, clause_event(p, tok), conf)
            elif tok.dep_ == "prep" and tok.lower_ in ("because", "due", "owing"):
                # "because of the war": the multi-word preposition hangs "of" under "because".
                of = next((c for c in tok.children if c.lower_ == "of" or c.lower_ == "to"), None)
                ev = p.ref(object_of(of)) if of is not None and object_of(of) is not None else None
                if ev is not None and tok.head.pos_ in ("VERB", "AUX"):
                    link(clause_event(p, tok.head), "caused by", ev.text, confidence(0.85, ev))
            elif tok.dep_ == "prep" and tok.lower_ in PREP_LINKS and tok.head.pos_ in ("VERB", "AUX"):
                pobj = object_of(tok)
                if pobj is None:
                    continue
                ent = p.ent_at.get(pobj.i)
                if pobj.lemma_.lower() in EVENTIVE_NOUNS or (ent is not None and ent.label_ == "EVENT"):
                    ev = p.ref(pobj)
                    pred, conf = PREP_LINKS[tok.lower_]
                    if ev is not None:
                        link(clause_event(p, tok.head), pred, ev.text, conf)
            elif tok.pos_ == "VERB" and tok.lemma_.lower() in CAUSAL_VERBS:
                _causal_verb(p, tok, link)
            elif tok.pos_ == "VERB" and tok.lemma_.lower() == "attribute":
                dobj = next((c for c in tok.children if c.dep_ == "dobj"), None)
                to = next((c for c in tok.children if c.dep_ == "prep" and c.lower_ == "to"), None)
                cause = p.ref(object_of(to)) if object_of(to) is not None else None
                effect = p.ref(dobj) if dobj is not None else None
                if cause and effect:
                    link(effect.text, "caused by", cause.text, 0.7)
        # "X, so Y" / "X; therefore Y" / "As a result, Y" (then X is the previous sentence).
        for verb in p.tokens[sent.start : sent.end]:
            if verb.pos_ not in ("VERB", "AUX"):
                continue
            marker = next(
                (c for c in verb.children if c.lower_ in RESULT_ADVERBS and c.dep_ in ("advmod", "cc")), None
            )
            if marker is None:
                marker = next(
                    (
                        c
                        for c in verb.children
                        if c.dep_ == "prep" and c.lower_ == "as" and any(g.lower_ == "result" for g in c.children)
                    ),
                    None,
                )
            if marker is None:
                continue
            cause: str | None = None
            earlier_ccomp = next((c for c in verb.children if c.dep_ == "ccomp" and c.i < verb.i), None)
            if verb.dep_ == "conj":
                cause = clause_event(p, verb.head)
            elif earlier_ccomp is not None:
                cause = clause_event(p, earlier_ccomp)
            elif verb.dep_ == "ROOT":
                cause = prev_root_event
            link(cause, "causes", clause_event(p, verb), 0.8 if verb.dep_ != "ROOT" else 0.7)
        # What a following "As a result" points back to: the sentence's last main clause.
        last = sent.root
        while (conjs := [c for c in last.children if c.dep_ == "conj" and c.pos_ in ("VERB", "AUX")]):
            last = conjs[-1]
        prev_root_event = clause_event(p, last) or clause_event(p, sent.root)
    return [t for t in out if t is not None]


def _causal_verb(p: Parsed, verb: Token, link: Callable[[str | None, str, str | None, float], None]) -> None:
    """'X led to Y', 'X caused Y', 'Y, which X had caused', 'X resulted in Y'."""
    lemma = verb.lemma_.lower()
    prep_word = CAUSAL_VERBS[lemma]

    def antecedent() -> Token:
        head = verb.head
        # "a failure of the bone marrow, which ...": the relative clause is about "failure".
        while head.dep_ == "pobj" and head.head.lower_ == "of":
            head = head.head.head
        return head

    def node(tok: Token | None) -> str | None:
        if tok is None:
            return None
        if tok.lower_ in ("which", "that") and verb.dep_ == "relcl":
            head = antecedent()
            if lemma == "lead" and head.dep_ == "dobj":
                # "..., which led to Y" mostly points back at the whole clause.
                return clause_event(p, head.head)
            r = p.ref(head)
            return r.text if r else None
        r = p.ref(tok)
        if r is None or r.quality != "noun":
            return None
        return r.text

    subj = next((c for c in verb.children if c.dep_ == "nsubj"), None)
    passive_subj = next((c for c in verb.children if c.dep_ == "nsubjpass"), None)
    if prep_word:
        obj = object_of(next((c for c in verb.children if c.dep_ == "prep" and c.lower_ == prep_word), None))
        if obj is None and lemma == "lead":
            # "led physicists to study the atom": the effect is the infinitive clause.
            xc = next((c for c in verb.children if c.dep_ in ("xcomp", "ccomp")), None)
            if xc is not None:
                link(node(subj), "causes", clause_event(p, xc), 0.7)
            return
        link(node(subj), "causes", node(obj), 0.8)
        return
    obj = next((c for c in verb.children if c.dep_ == "dobj"), None)
    if passive_subj is not None:
        if obj is not None and obj.lower_ in ("which", "that"):
            # "which her exposure had caused": the parser makes the cause nsubjpass.
            link(node(passive_subj), "causes", node(obj), 0.75)
            return
        agent = next((c for c in verb.children if c.dep_ == "agent"), None)
        link(node(object_of(agent)), "causes", node(passive_subj), 0.8)
        return
    link(node(subj), "causes", node(obj), 0.8)
