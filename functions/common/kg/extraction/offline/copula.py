"""ENTITY_ENTITY facts stated with "be" and "have" rather than an action verb.

Relational nouns become the predicate, pointing from the owner to the value, however the
sentence puts it:
    "Cape Town is the capital of South Africa"   -> (South Africa, capital, Cape Town)
    "The leader of Germany is X" / "Germany's leader is X" / "X is Germany's leader"
                                                 -> (Germany, leader, X)
    "The Alhambra ship beam is 8.3 m"            -> (Alhambra, ship beam, 8.3 m)
    "Amsterdam, where the mayor is X"            -> (Amsterdam, mayor, X)
    "In Ohio, the capital city is Columbus"      -> (Ohio, capital city, Columbus)
    "X is 5.4 m in diameter" / "X is 95 m tall"  -> (X, diameter, 5.4 m) / (X, height, 95 m)
    "X has the ISBN number 0-7156-3648-0"        -> (X, isbn number, 0-7156-3648-0)
    "101 Helena has a mass of 3.0 kg"            -> (101 Helena, mass, 3.0 kg)
A definite "the N of Y" names one value of Y; an indefinite or bare "N of" is membership:
    "Amarillo is part of Potter County"          -> (Amarillo, part of, Potter County)
    "Ice cream is a type of dessert"             -> (Ice cream, type of, dessert)
Class membership and the rest:
    "X is a sludge metal band" / "X, a band,"    -> (X, is a, sludge metal band)
    "Agra Airport is in Agra"                    -> (Agra Airport, is in, Agra)
    "X is comparable to Y"                       -> (X, comparable to, Y)
    "X has 29,000 employees"                     -> (X, number of employees, 29,000 employees)
    "X has a V8 engine" / "X has Y as an ingredient" -> (X, has engine, V8 engine) / (X, has ingredient, Y)
At least one end must be a name, a value or a pronoun resolved to a name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kg.extraction.offline.clauses import as_role, negated, object_of, relation_words, subjects_of, with_conjuncts
from kg.extraction.offline.lexicons import DIMENSION_ADJECTIVES, MEMBERSHIP_NOUNS, VALUE_LABELS
from kg.extraction.offline.parsed import Parsed
from kg.extraction.offline.text import Ref, confidence, join, with_role
from kg.models import Triple, TripleType

if TYPE_CHECKING:  # spaCy is an optional dependency (the `local` extra)
    from spacy.tokens import Token

_DEFINITE = frozenset({"the", "this", "that"})
_INDEFINITE = frozenset({"a", "an", "another", "one"})


def extract(p: Parsed) -> list[Triple]:
    out: list[Triple | None] = []
    for verb in p.tokens:
        if verb.lemma_ == "be" and verb.dep_ != "auxpass" and verb.dep_ != "aux":
            out.extend(_be(p, verb))
        elif verb.lemma_ == "have" and verb.pos_ == "VERB":
            out.extend(_have(p, verb))
    for tok in p.tokens:
        if tok.dep_ == "appos":
            out.extend(_apposition(p, tok))
    return [t for t in out if t is not None]


def _add(
    p: Parsed, out: list[Triple | None], s: Ref | None, pred: str, o: Ref | None, base: float, *, definition: bool = False
) -> None:
    """`definition`: "Ice cream is a type of dessert" holds between two common nouns as well."""
    if s is None or o is None or not (s.named or o.named or definition):
        return
    out.append(p.triple(TripleType.ENTITY_ENTITY, s, pred, o, confidence(base, s, o)))


def _owner(p: Parsed, noun: Token) -> Ref | None:
    """Y in "the N of Y", "Y's N", "the Y N" (a proper noun compound: "the Alhambra ship beam")
    or "the largest N in Y" (a superlative or ordinal picks one N of Y's)."""
    for c in noun.children:
        if c.dep_ == "poss":
            return p.ref(c, extend_of=False)
    prep = _owner_preposition(noun)
    if prep is not None:
        return p.ref(object_of(prep), extend_of=False)
    # "the Alhambra ship beam": the name may hang on another modifier ("Alhambra" -> "ship").
    names = [t for c in noun.lefts if c.dep_ == "compound" for t in c.subtree if t.pos_ == "PROPN"]
    if names:
        r = p.ref(names[-1], allow_noun=False, extend_of=False)
        if r is not None:
            return r
    # "Amsterdam, where the mayor is X (and the currency is Y)": the place "where" points back to
    # owns the mayor, and the currency of the clause joined to it.
    clause = noun.head
    while clause.dep_ == "conj" and clause.head.i != clause.i:
        clause = clause.head
    if clause.dep_ == "relcl" and any(c.lower_ == "where" for c in clause.children):
        return p.ref(clause.head, extend_of=False)
    # "In Ohio, the capital city is Columbus": a place put before the clause owns its subject.
    if noun.dep_ == "nsubj" and noun.head.lemma_ == "be" and _determiner(noun) in _DEFINITE:
        for c in noun.head.children:
            if c.dep_ == "prep" and c.lower_ == "in" and c.i < noun.i and (place := object_of(c)) is not None:
                return p.ref(place, allow_noun=False, extend_of=False)
    return None


def _owner_preposition(noun: Token) -> Token | None:
    """The preposition introducing the noun's owner: "of", a superlative's or ordinal's "in" ("the
    largest city in Y"), a definite subject's "for" ("the opening date for Y is ...")."""
    unique = any(c.tag_ == "JJS" or c.ent_type_ == "ORDINAL" for c in noun.lefts)
    definite_subject = noun.dep_ in ("nsubj", "nsubjpass") and _determiner(noun) in _DEFINITE
    for c in noun.children:
        owning = c.lower_ == "of" or (unique and c.lower_ == "in") or (definite_subject and c.lower_ == "for")
        if c.dep_ == "prep" and owning and object_of(c) is not None:
            return c
    return None


def _determiner(noun: Token) -> str:
    det = next((c for c in noun.children if c.dep_ == "det"), None)
    return det.lower_ if det is not None else ""


def _be(p: Parsed, verb: Token) -> list[Triple | None]:
    out: list[Triple | None] = []
    neg = negated(verb)
    if neg:
        return out  # "X is not the capital of Y" states no relation worth a node pair
    subjects = subjects_of(verb)
    if not subjects:
        return out
    for attr in (c for c in verb.children if c.dep_ in ("attr", "acomp")):
        for a in with_conjuncts(attr):
            for s in subjects:
                out.extend(_be_attr(p, s, a))
    for prep in (c for c in verb.children if c.dep_ == "prep"):
        pobj = object_of(prep)
        if pobj is None:
            continue
        for s in subjects:
            if (measured := p.measure(prep)) is not None:
                # "is 34 metres above sea level" -> (_, above sea level, 34 metres)
                place = f"{prep.lower_} {p.noun_text(pobj, extend_of=False)}"
                _add(p, out, p.ref(s, extend_of=False), place, measured, 0.75)
                continue
            owner = _owner(p, s) if s.pos_ == "NOUN" and s.i not in p.ent_at else None
            for t in with_conjuncts(pobj):
                if owner is not None:
                    # "The rocket's final flight was on 28 October 2014".
                    _add(p, out, owner, relation_words(s), p.ref(t, value=True), 0.8)
                else:
                    value = p.ref(t, value=True)
                    _add(p, out, p.ref(s, extend_of=False), with_role(f"is {prep.lower_}", value), value, 0.75)
    return out


def _be_attr(p: Parsed, s: Token, a: Token) -> list[Triple | None]:
    out: list[Triple | None] = []
    subject_is_relation = s.pos_ == "NOUN" and s.i not in p.ent_at
    value = p.ref(a, value=True)
    if value is None and a.dep_ == "acomp" and not any(c.dep_ == "prep" for c in a.children):
        # "The genus of the avocado is persea": the tagger takes an unknown word for an adjective.
        value = Ref(a.text, "noun")
    if (dimension := _dimension(p, a, value)) is not None:
        # "X is 125 metres in length" -> (X, length, 125 metres); "the Kestrel tower" is one thing here.
        relation, measure = dimension
        _add(p, out, p.ref(s) if subject_is_relation else p.ref(s, extend_of=False), relation, measure, 0.8)
        return out
    # "Ajo soup is a dish": an indefinite class says what the subject is, not one value of a relation.
    classed = a.pos_ == "NOUN" and _determiner(a) in _INDEFINITE
    if subject_is_relation and not classed and (owner := _owner(p, s)) is not None and value is not None:
        # "The leader of Germany is X", "Buzz Aldrin's nationality is the United States" (and
        # "Switzerland's capital is Bern", where the parser makes "Bern" an adjective).
        _add(p, out, owner, relation_words(s), value, 0.85, definition=True)
        return out
    if a.dep_ == "acomp" or a.pos_ == "ADJ":
        # "X is comparable to Y", "X is affiliated with Y".
        subj = p.ref(s, extend_of=False)
        for prep in (c for c in a.children if c.dep_ == "prep"):
            for t in with_conjuncts(object_of(prep) or prep):
                if t.dep_ != "prep":
                    value = p.ref(t, value=True)
                    _add(p, out, subj, with_role(f"{a.lower_} {prep.lower_}", value), value, 0.8)
        return out
    subj = p.ref(s, extend_of=False)
    if a.pos_ == "NOUN" and a.i not in p.ent_at:
        det = _determiner(a)
        owner = _owner(p, a)
        of = _owner_preposition(a)
        if owner is not None and (det in _DEFINITE or of is None):
            # "X is the capital of Y", "X is Y's capital".
            _add(p, out, owner, relation_words(a), subj, 0.85, definition=True)
        elif owner is not None and a.lemma_.lower() in MEMBERSHIP_NOUNS:
            # "X is part of Y", "X is a member of Y", "X is a type of Y".
            _add(p, out, subj, f"{relation_words(a)} of", owner, 0.8, definition=True)
        elif owner is not None:
            # "Acura is a division of Honda": one of Y's divisions, (Honda, division, Acura).
            _add(p, out, owner, relation_words(a), subj, 0.8, definition=True)
        elif det not in _DEFINITE:
            _add(p, out, subj, "is a", Ref(p.noun_text(a, extend_of=False), "noun"), 0.8, definition=True)
        # "a dish from the region of Visayas": the class's own attachments describe the subject.
        for prep in (c for c in a.children if c.dep_ == "prep" and c.lower_ != "of" and (owner is None or c != of)):
            for t in with_conjuncts(object_of(prep) or prep):
                if t.dep_ != "prep":
                    value = p.ref(t, value=True)
                    _add(p, out, subj, with_role(f"{a.lemma_.lower()} {prep.lower_}", value), value, 0.7)
        return out
    # "X is Y" between two names is left out: on the development set 1 in 6 was right (mostly
    # misparsed coordinations), and "the capital is Paris" with no owner says nothing to store.
    return out


def _have(p: Parsed, verb: Token) -> list[Triple | None]:
    out: list[Triple | None] = []
    if negated(verb):
        return out
    subjects = [p.ref(s, extend_of=False) for s in subjects_of(verb)]
    for d in (c for c in verb.children if c.dep_ == "dobj"):
        for obj in with_conjuncts(d):
            of = next((c for c in obj.children if c.dep_ == "prep" and c.lower_ == "of"), None)
            value_tok = object_of(of) if of is not None else None
            for s in subjects:
                values = [p.ref(v, value=True) for v in with_conjuncts(value_tok)] if value_tok is not None else []
                # "had its final flight on 16 March 1998": the date belongs to the flight.
                values += [
                    p.ref(v, value=True)
                    for prep in obj.children
                    if prep.dep_ == "prep" and prep.lower_ in ("on", "in", "at")
                    for v in with_conjuncts(object_of(prep) or prep)
                    if v.dep_ != "prep" and v.ent_type_ in VALUE_LABELS
                ]
                values += [
                    p.ref(v, value=True)
                    for prep in verb.children
                    if prep.dep_ == "prep" and prep.lower_ in ("on", "in", "at") and obj.pos_ == "NOUN"
                    for v in with_conjuncts(object_of(prep) or prep)
                    if v.dep_ != "prep" and v.ent_type_ in VALUE_LABELS
                ]
                if obj.pos_ == "NOUN" and (code := _code_after(obj)) is not None:
                    # "has the ISBN number 0-7156-3648-0", "has the postal code 4021": "ISBN" is no owner.
                    _add(p, out, s, relation_words(obj, ("ADJ", "NOUN", "VERB", "PROPN")), code, 0.8)
                    continue
                if values and obj.pos_ == "NOUN":
                    # "has a mass of 3.0 kg", "has a population of 5,000", "has the capital of X".
                    for v in values:
                        _add(p, out, s, relation_words(obj), v, 0.8)
                else:
                    value = p.ref(obj, value=True)
                    _add(p, out, s, _have_predicate(p, verb, obj, value), value, 0.7)
    return out


def _have_predicate(p: Parsed, verb: Token, obj: Token, value: Ref | None) -> str:
    """What is had, named by the object's noun, so that a graph's "has" facts do not all share one
    relation: "has 29,000 employees" -> number of employees, "has a V8 engine" -> has engine,
    "has bread as an ingredient" -> has ingredient; a bare "has a daughter" or a name stays "has"."""
    role = as_role(verb, obj)
    if role:
        return f"has {role}"
    if value is None or obj.pos_ != "NOUN" or obj.i in p.ent_at:
        return "has"
    counted = obj.tag_ == "NNS" and any(c.dep_ == "nummod" and c.i < obj.i for c in obj.children)
    if counted and value.text.lower().endswith(obj.lower_):
        return f"number of {obj.lower_}"
    if value.text.lower() != obj.lower_:
        return f"has {obj.lemma_.lower()}"
    return "has"


def _dimension(p: Parsed, attr: Token, value: Ref | None) -> tuple[str, Ref] | None:
    """What a measure measures, and the measure: "5.4 m in diameter" -> (diameter, 5.4 m),
    "95 metres tall" -> (height, 95 metres)."""
    if attr.lower_ in DIMENSION_ADJECTIVES:
        for c in attr.children:
            if c.dep_ == "npadvmod" and (measure := p.ref(c, value=True)) is not None:
                return DIMENSION_ADJECTIVES[attr.lower_], measure
    if value is None or value.label not in VALUE_LABELS:
        return None
    for c in attr.children:
        if c.dep_ == "prep" and c.lower_ == "in" and (n := object_of(c)) is not None and n.pos_ == "NOUN" \
                and not n.ent_type_ and not any(k.dep_ in ("det", "poss") for k in n.children):
            return n.lower_, value
    return None


def _code_after(noun: Token) -> Ref | None:
    """A number or code written after the noun it is the value of: "the ISBN number 0-7156-3648-0"."""
    after = [t for t in noun.subtree if t.i > noun.i]
    while after and after[-1].is_punct:
        after.pop()
    if not after or after[0].pos_ != "NUM" or any(t.pos_ not in ("NUM", "PUNCT", "SYM", "X") for t in after):
        return None
    if any(after[k + 1].i != after[k].i + 1 for k in range(len(after) - 1)):
        return None
    return Ref(join(after), "ne", "entity", "CARDINAL")


def _apposition(p: Parsed, tok: Token) -> list[Triple | None]:
    """"Year of No Light, a sludge metal band," -> (Year of No Light, is a, sludge metal band)."""
    out: list[Triple | None] = []
    role, name_tok = tok, tok.head
    if role.pos_ != "NOUN" or role.i in p.ent_at or _determiner(role) in _DEFINITE:
        return out
    if any(c.dep_ == "poss" or (c.dep_ == "prep" and c.lower_ == "of") for c in role.children):
        return out  # "X, the N of Y" is a relation: entity_entity's appositions own it
    name = p.ref(name_tok, allow_noun=False, extend_of=False)
    if name is not None:
        _add(p, out, name, "is a", Ref(p.noun_text(role, extend_of=False), "noun"), 0.75)
    return out
