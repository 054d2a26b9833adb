"""ENTITY_ENTITY: relations between two things, from the verb and from appositions.

Subject-verb-object from the parse (nsubj/nsubjpass -> verb -> dobj, or a preposition's pobj;
a passive keeps its subject: "X was designed by Y" -> (X, designed by, Y)), with dates, numbers
and quantities as objects ("born on 1 May 1942"). Appositions of the form "X, the N of Y" /
"Y's N, X" -> (Y, N, X), the owner first as in `copula`. Predicates: the verb lemma for active
verbs, the participle for passives ("born in"), with particle and preposition, lower case,
prefixed by "not" when negated. A class noun the sentence puts before a named prepositional
object goes into a short predicate, the node staying the name ("plays for the club X" -> (_, play
for club, X)), as does the class "contains"/"includes" gives with "as" ("contains X as an
ingredient" -> contain ingredient). A date with no preposition is the verb's object ("died 5 May
1990"), and the verb of "X, where Y is spoken" takes place in X. At least one end must be a name,
a value or a pronoun resolved to one. `copula` adds the facts stated with "be" and "have";
`fallback` the sentences the parse left without any.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kg.extraction.offline import copula, fallback
from kg.extraction.offline.clauses import (
    as_role,
    is_passive,
    negated,
    object_of,
    predicate,
    relation_words,
    subjects_of,
    with_conjuncts,
)
from kg.extraction.offline.lexicons import LINKING_VERBS, LOOSE_PREPS, MEMBERSHIP_NOUNS, VALUE_LABELS
from kg.extraction.offline.parsed import Parsed
from kg.extraction.offline.text import Ref, confidence, place, with_role
from kg.models import Triple, TripleType

if TYPE_CHECKING:  # spaCy is an optional dependency (the `local` extra)
    from spacy.tokens import Token


def extract(p: Parsed) -> list[Triple]:
    out: list[Triple | None] = []
    for verb in p.tokens:
        if verb.pos_ != "VERB" or verb.lemma_ in ("be", "have") or verb.lemma_ in LINKING_VERBS - {"become"}:
            continue
        subjects = [r for s in subjects_of(verb) if (r := _subject(p, s)) and r.kind == "entity"]
        neg_penalty = 0.1 if negated(verb) else 0.0
        agent = next((c for c in verb.children if c.dep_ == "agent"), None)
        if agent is not None and is_passive(verb):
            # "Asterix was created by X" keeps the sentence's subject: (Asterix, created by, X).
            pred = f"{predicate(verb)} by"
            agents = [r for t in with_conjuncts(object_of(agent) or agent) if (r := p.ref(t)) and r.kind == "entity"]
            for a in agents:
                for s in subjects:
                    if a.named or s.named:
                        conf = confidence(0.85 - neg_penalty, a, s)
                        out.append(p.triple(TripleType.ENTITY_ENTITY, s, with_role(pred, a), a, conf))
        if not subjects:
            continue
        objects: list[tuple[str, Ref, float]] = []
        dobj = next((c for c in verb.children if c.dep_ == "dobj"), None)
        for c in verb.children:
            if c.dep_ in ("dobj", "dative"):
                for t in with_conjuncts(c):
                    r = p.ref(t, value=True)
                    if r is not None and r.kind == "entity":
                        # "contains X as an ingredient". A class in front of a direct object says
                        # what the object is, not how it relates ("accused the minister X").
                        role = as_role(verb, c)
                        objects.append((f"{predicate(verb)} {role}" if role else predicate(verb), r, 0.85))
            elif c.dep_ == "prep":
                pobj = object_of(c)
                if pobj is None:
                    continue
                # "offered his chair to Marie" reads better as "offer chair to" than "offer to".
                carried = dobj if dobj is not None and dobj.pos_ == "NOUN" and dobj.i not in p.ent_at else None
                pred = predicate(verb, c, carried)
                if (measured := p.measure(c)) is not None:
                    # "lies 310 metres above sea level" -> (_, lie above sea level, 310 metres)
                    objects.append((f"{pred} {p.noun_text(pobj, extend_of=False)}", measured, 0.8))
                    continue
                for t in with_conjuncts(pobj):
                    r = p.ref(t, value=True)
                    if r is None or r.kind != "entity":
                        continue
                    # Circumstantial prepositions with a common noun are rarely a relation.
                    if r.quality == "noun" and c.lower_ in LOOSE_PREPS:
                        continue
                    # "on the 23rd of July in 1927": an "in" inside the date is the date's own.
                    if c.i in p.ent_at and p.ent_at[c.i].label_ in VALUE_LABELS:
                        continue
                    objects.append((with_role(pred, r), r, 0.85))
                    if r.label in ("DATE", "TIME"):
                        objects.extend(_after_date(p, verb, t, carried))
            elif c.dep_ == "npadvmod" and c.i > verb.i and (when := p.value(c)) is not None \
                    and when.label in ("DATE", "TIME"):
                # "was established 1907-07-11", "died 5 May 1990": a date with no preposition
                # (after the verb: "1290 Alvina was found" starts with a name the parser cut).
                objects.append((predicate(verb), when, 0.8))
                objects.extend(_after_date(p, verb, c, None))
        if verb.dep_ == "relcl" and any(c.lower_ == "where" for c in verb.children) \
                and (where := p.ref(verb.head, allow_noun=False, extend_of=False)) is not None and place(where):
            # "Tunisia, where Arabic is spoken" -> (Arabic, spoken in, Tunisia)
            objects.append((f"{predicate(verb)} in", where, 0.8))
        for s in subjects:
            for pred, o, base in objects:
                if s.named or o.named:
                    out.append(p.triple(TripleType.ENTITY_ENTITY, s, pred, o, confidence(base - neg_penalty, s, o)))
    out.extend(_appositions(p))
    out.extend(copula.extract(p))
    found = [t for t in out if t is not None]
    return found + fallback.extract(p, found)


def _after_date(p: Parsed, verb: Token, date: Token, carried: Token | None) -> list[tuple[str, Ref, float]]:
    """"born on 23 July 1927 in Dallas": the parser hangs "in Dallas" on the date; it is the verb's."""
    out: list[tuple[str, Ref, float]] = []
    for pp in date.children:
        # Only a name: "the 23rd of July in 1927" keeps its own "of July" and "in 1927".
        if pp.dep_ == "prep" and (o := object_of(pp)) is not None and (r := p.ref(o)) is not None \
                and r.kind == "entity" and r.named:
            out.append((with_role(predicate(verb, pp, carried), r), r, 0.8))
    return out


def _subject(p: Parsed, tok: Token) -> Ref | None:
    """A name as it stands; a common noun with what it belongs to ("the ground of A.S. Gubbio")."""
    short = p.ref(tok, extend_of=False)
    if short is not None and short.quality == "noun":
        return p.ref(tok)
    return short


def _appositions(p: Parsed) -> list[Triple | None]:
    """'Svante Arrhenius, a member of the committee' and 'Her father, Władysław Skłodowski'."""
    out: list[Triple | None] = []
    for tok in p.tokens:
        if tok.dep_ != "appos":
            continue
        for name_tok, role_tok in ((tok.head, tok), (tok, tok.head)):
            if role_tok.pos_ != "NOUN" or role_tok.i in p.ent_at:
                continue
            name = p.ref(name_tok, allow_noun=False, extend_of=False)
            if name is None:
                continue
            owner: Ref | None = None
            for c in role_tok.children:
                if c.dep_ == "poss":
                    owner = p.ref(c, extend_of=False)
                elif c.dep_ == "prep" and c.lower_ == "of" and (o := object_of(c)) is not None:
                    owner = p.ref(o, extend_of=False)
            if owner is None:
                continue
            # "X, the capital of Y" says what "X is the capital of Y" says: (Y, capital, X).
            pred = relation_words(role_tok)
            if role_tok.lemma_.lower() in MEMBERSHIP_NOUNS:
                # "Abilene, part of Jones County," keeps its subject: (Abilene, part of, Jones County).
                out.append(p.triple(TripleType.ENTITY_ENTITY, name, f"{pred} of", owner, confidence(0.8, name, owner)))
            else:
                out.append(p.triple(TripleType.ENTITY_ENTITY, owner, pred, name, confidence(0.85, name, owner)))
            break
    return out
