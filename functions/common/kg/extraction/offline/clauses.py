"""Grammar of one token or one verb: subjects, voice, negation, the predicate and event phrases.

Token helpers need only the parse; `clause_event` also needs the chunk's lookups (`Parsed`)
to name its subject and complement the same way every pass does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kg.extraction.offline.lexicons import NEGATIVE_SUBJECTS, POSSESSION_VERBS, PREP_LINKS, SUBJ_DEPS
from kg.extraction.offline.text import Ref, clean, join

if TYPE_CHECKING:  # spaCy is an optional dependency (the `local` extra)
    from spacy.tokens import Token

    from kg.extraction.offline.parsed import Parsed


# -- tokens -----------------------------------------------------------------------------------


def is_proper(tok: Token) -> bool:
    # The tagger calls some lower-case words PROPN ("from house to house").
    return tok.pos_ == "PROPN" and tok.text[:1].isupper()


def is_subject(tok: Token) -> bool:
    return tok.dep_ in SUBJ_DEPS or (tok.dep_ in ("appos", "compound") and tok.head.dep_ in SUBJ_DEPS)


def clause_of(tok: Token) -> int:
    head = tok
    while head.pos_ not in ("VERB", "AUX") and head.head.i != head.i:
        head = head.head
    return head.i


def relation_words(noun: Token, kinds: tuple[str, ...] = ("ADJ", "NOUN", "VERB")) -> str:
    """The relational noun with the words of `kinds` that make it specific: "full name", "ship beam"
    (a proper noun in front is the owner, "the Alhambra ship beam", unless `kinds` says otherwise)."""
    mods = [c for c in noun.lefts if c.dep_ in ("amod", "compound") and c.pos_ in kinds]
    return " ".join([*(m.lower_ for m in mods), noun.lower_])


def class_words(noun: Token) -> str:
    """A class noun with the nouns compounded into it, no adjectives: "record label", "engineer"
    (of "the Italian engineer")."""
    return " ".join([*(c.lower_ for c in noun.lefts if c.dep_ == "compound" and c.pos_ == "NOUN"), noun.lower_])


def as_role(verb: Token, obj: Token) -> str:
    """The class an object is had with "as": "contains X as an ingredient" -> "ingredient"."""
    if verb.lemma_.lower() not in POSSESSION_VERBS:
        return ""
    for holder in (obj, verb):
        for c in holder.children:
            if c.dep_ == "prep" and c.lower_ == "as" and (n := object_of(c)) is not None \
                    and n.pos_ == "NOUN" and not n.ent_type_:
                return relation_words(n)
    return ""


def with_conjuncts(tok: Token) -> list[Token]:
    return [tok, *(c for c in tok.conjuncts if c.pos_ in ("NOUN", "PROPN", "PRON") or c.ent_type_)]


def object_of(prep: Token | None) -> Token | None:
    if prep is None:
        return None
    return next((c for c in prep.children if c.dep_ == "pobj"), None)


# -- verbs ------------------------------------------------------------------------------------


def subjects_of(verb: Token) -> list[Token]:
    subj = [c for c in verb.children if c.dep_ in SUBJ_DEPS]
    if not subj:
        # "Marie felt deeply humiliated" comes out with "felt" as auxpass owning the subject.
        auxes = [c for c in verb.children if c.dep_ in ("aux", "auxpass")]
        subj = [g for c in auxes for g in c.children if g.dep_ in SUBJ_DEPS]
    if not subj and verb.dep_ == "conj" and verb.head.pos_ in ("VERB", "AUX"):
        return subjects_of(verb.head)
    if not subj and verb.dep_ == "acl" and verb.tag_ in ("VBN", "VBG") and verb.head.pos_ in ("NOUN", "PROPN"):
        # "Elliot See, born in Dallas,", "3Arena, owned by Live Nation,": the noun is the subject.
        return [verb.head]
    if not subj and verb.dep_ == "xcomp":
        obj = [c for c in verb.head.children if c.dep_ in ("dobj", "dative")]
        return obj or subjects_of(verb.head)
    out = []
    for s in subj:
        out.append(s)
        out.extend(c for c in s.conjuncts if c.pos_ in ("NOUN", "PROPN", "PRON"))
    return out


def is_passive(verb: Token) -> bool:
    # "soldiers killed in the battle": a past participle modifying its noun is passive too.
    if verb.dep_ == "acl" and verb.tag_ == "VBN":
        return True
    if any(c.dep_ in ("nsubjpass", "auxpass") for c in verb.children):
        return True
    # "X was made by A and designed by B": the second participle shares the first one's voice.
    return verb.dep_ == "conj" and verb.tag_ == "VBN" and verb.head.pos_ == "VERB" and is_passive(verb.head)


def negated(verb: Token) -> str:
    neg = next((c for c in verb.children if c.dep_ == "neg"), None)
    return "" if neg is None else ("never" if neg.lower_ == "never" else "not")


def realised(verb: Token) -> bool:
    """False for infinitives and participial modifiers: "wanted to see", "curium, discovered in"."""
    if verb.dep_ not in ("ROOT", "conj", "ccomp", "advcl", "relcl", "parataxis"):
        return False
    return not any(c.dep_ == "aux" and c.lower_ == "to" for c in verb.children)


def predicate(verb: Token, prep: Token | None = None, dobj: Token | None = None) -> str:
    passive = is_passive(verb)
    word = verb.lower_ if passive else verb.lemma_.lower()
    parts = [p for p in (negated(verb), word) if p]
    parts += [c.lower_ for c in verb.children if c.dep_ == "prt"]
    if dobj is not None:
        parts.append(dobj.lower_)
    if prep is not None:
        parts.append(prep.lower_)
    return " ".join(parts)


def clause_event(p: Parsed, verb: Token, *, with_subject: bool = True) -> str | None:
    """A short phrase naming what a clause says happened: subject, verb, first complement.

    The surface verb form is kept ("Pierre Curie died") because the phrase is a node name
    read by people; EVENT_EVENT and ENTITY_EVENT build it the same way so their nodes meet.
    """
    if verb.pos_ not in ("VERB", "AUX"):
        return None
    subj: Ref | None = None
    if with_subject:
        refs = []
        for s in subjects_of(verb):
            # "no one had seen them" must keep its "no one".
            if s.lower_ in NEGATIVE_SUBJECTS or any(c.dep_ == "det" and c.lower_ == "no" for c in s.children):
                refs.append(Ref(join([*(c for c in s.lefts if c.dep_ == "det"), s]).lower(), "noun"))
            elif (r := p.ref(s, extend_of=False)) is not None:
                refs.append(r)
        # "the physician Claudius Regaud" has two subjects in this parser; the name wins.
        subj = next((r for r in refs if r.named), refs[0] if refs else None)
        if subj is None and verb.lemma_ == "be":
            return None
    words = [subj.text] if subj else []
    neg = negated(verb)
    for c in verb.children:
        if c.dep_ == "aux" and (c.tag_ == "MD" or (neg and c.lemma_ == "do")):
            words.append(c.lower_)
    if neg:
        words.append(neg)
    words.append(verb.text if verb.lemma_ == "be" else verb.lower_)
    words += [c.lower_ for c in verb.children if c.dep_ == "prt"]
    complement = _complement(p, verb)
    if complement:
        words.append(complement)
    if subj is None and not complement:
        return None
    return clean(" ".join(words))


def _complement(p: Parsed, verb: Token) -> str:
    copula = verb.lemma_ == "be"
    for c in verb.children:
        if c.dep_ in ("dobj", "attr", "oprd"):
            if copula and c.pos_ == "NOUN" and c.i not in p.ent_at:
                return " ".join(p.noun_text(c, keep_article=True).split()[:5])
            r = p.ref(c)
            if r is not None:
                return " ".join(r.text.split()[:5])
    for c in verb.children:
        if c.dep_ == "acomp":
            return join([t for t in c.subtree if not t.is_punct][:4])
    for c in verb.children:
        # Connective prepositions ("after the war") are links between events, not content.
        if c.dep_ in ("prep", "agent") and c.lower_ not in PREP_LINKS and c.lower_ not in ("because", "as"):
            pobj = object_of(c)
            r = p.ref(pobj, extend_of=False) if pobj is not None else None
            if r is not None:
                return f"{c.lower_} {' '.join(r.text.split()[:4])}"
    for c in verb.children:
        if c.dep_ == "xcomp" and c.pos_ == "VERB" and any(a.lower_ == "to" for a in c.children):
            inner = clause_event(p, c, with_subject=False)
            if inner:
                return f"to {inner}"
        if c.dep_ == "ccomp":
            inner = clause_event(p, c)
            if inner:
                return inner
    return ""
