"""Which named thing each it/its/they/their and each "the city"/"this club" stands for.

A cheap heuristic, no coreference model, the counterpart for things of `pronouns` (which
handles he/she for people). A pronoun or a definite description goes to a named entity
earlier in the same or the two previous sentences whose label fits: never a value, never a
person for it/its/they, and for "the city" a place, for "the club" an organisation, and so on
(`DESCRIPTION_LABELS`). A subject named with a proper noun that NER left untagged ("the Torvik
Bridge") counts as a named thing without a label: it fits it/its/they and "the ship", not "the
city". Subjects are preferred, then recency. `resolve_things` runs once per chunk, before the
passes start; every resolution points at the antecedent's head token, so `Parsed.ref` names it
exactly as it names the entity itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from kg.extraction.offline.clauses import clause_of, is_subject, subjects_of
from kg.extraction.offline.lexicons import (
    DESCRIPTION_DETERMINERS,
    DESCRIPTION_LABELS,
    GROUP_PRONOUNS,
    PERSON_NOUNS,
    SUBJ_DEPS,
    THING_PRONOUNS,
    VALUE_LABELS,
    WORK_NOUNS,
)

if TYPE_CHECKING:  # spaCy is an optional dependency (the `local` extra)
    from spacy.tokens import Doc, Span, Token

# How far back an antecedent may be, in sentences (0 = the pronoun's own sentence).
MAX_SENTENCE_DISTANCE = 2
# Verbs whose "it" subject is usually a placeholder ("it is likely that", "it seems to").
_EXPLETIVE_VERBS = frozenset({"be", "seem", "appear", "happen", "become", "take", "remain", "rain", "snow"})


@dataclass(frozen=True)
class _Mention:
    pos: int  # where the mention is: the entity's root, or a resolved pronoun/description
    head: int  # the named entity's root token index (what the map points to)
    label: str
    salience: float  # subjects first, then direct objects, then the rest
    plural: bool


def resolve_things(doc: Doc, ent_at: dict[int, Span], noun_chunks: list[Span]) -> dict[int, int]:
    """Token index of a resolved it/its/they/their or "the <class noun>" -> antecedent root index."""
    sents = list(doc.sents)
    sent_of = {t.i: k for k, s in enumerate(sents) for t in s}
    # A blank line (or a heading, blanked before parsing) ends what "it" and "they" can reach.
    paragraph = 0
    para_of: dict[int, int] = {}
    for t in doc:
        if t.is_space and t.text.count("\n") >= 2:
            paragraph += 1
        para_of[t.i] = paragraph
    mentions: list[_Mention] = []
    for ent in doc.ents:
        root = ent.root
        if ent.label_ in VALUE_LABELS or root.pos_ == "PRON":
            continue
        # "the Antares rocket": the name is the rocket, as salient as the rocket.
        head = root.head if root.dep_ == "compound" and root.head.lemma_.lower() in DESCRIPTION_LABELS else root
        # "Italian" in "the Italian club", "Google" in "Google engineers", "Texas" in "Abilene,
        # Texas": a modifier of something else, not a referent.
        if head.dep_ in ("amod", "compound") or (head.dep_ == "appos" and head.head.pos_ == "PROPN"):
            continue
        mentions.append(_Mention(root.i, root.i, ent.label_, _salience(head), root.tag_ in ("NNS", "NNPS")))
    # "Bramley sauce comes from Southwell. It is made with ...": a subject named with a proper noun,
    # which NER did not tag as a whole, is a thing "it" can stand for (without a label).
    for nc in noun_chunks:
        root = nc.root
        if root.i in ent_at or root.dep_ not in SUBJ_DEPS or root.pos_ not in ("NOUN", "PROPN"):
            continue
        # The name must be the root's own ("the Torvik Bridge"), not an owner ("Ariane 5's flight").
        if root.pos_ == "PROPN" or any(c.dep_ == "compound" and c.pos_ == "PROPN" for c in root.lefts):
            mentions.append(_Mention(root.i, root.i, "", _SUBJECT, root.tag_ in ("NNS", "NNPS")))
    mentions.sort(key=lambda m: m.pos)
    if not mentions:
        return {}
    out: dict[int, int] = {}
    for tok in doc:
        low = tok.lower_
        if tok.pos_ == "PRON" and (low in THING_PRONOUNS or low in GROUP_PRONOUNS):
            if low in ("it", "they") and _expletive(tok):
                continue
            best = _best(doc, tok, ent_at, mentions, sent_of, para_of, out, nouns=None)
        elif _is_description(tok, ent_at):
            best = _best(doc, tok, ent_at, mentions, sent_of, para_of, out, nouns=tok.lemma_.lower())
        else:
            continue
        if best is None:
            continue
        out[tok.i] = best.head
        mentions.append(_Mention(tok.i, best.head, best.label, _salience(tok), best.plural))
        mentions.sort(key=lambda m: m.pos)
    return out


_SUBJECT = 1.5


def _salience(tok: Token) -> float:
    """'Anna founded Lumen in Oslo. It ...': a subject, else an object, beats a place in passing."""
    if is_subject(tok):
        return _SUBJECT
    head = tok.head if tok.dep_ == "conj" else tok
    return 0.5 if head.dep_ in ("dobj", "dative", "attr") else 0.0


def _is_description(tok: Token, ent_at: dict[int, Span]) -> bool:
    """'the city', 'this club': not 'the city of Lyon', 'the band's city', 'the club that won'."""
    if tok.pos_ != "NOUN" or tok.tag_ != "NN" or tok.i in ent_at or tok.lemma_.lower() not in DESCRIPTION_LABELS:
        return False
    # "Sacramento is the city ...": a predicate noun says what something is, it does not point back.
    if tok.dep_ in ("compound", "attr", "appos", "npadvmod"):
        return False
    if not any(c.dep_ == "det" and c.lower_ in DESCRIPTION_DETERMINERS for c in tok.children):
        return False
    for c in tok.children:
        # An own possessor or "of"-complement names it already; a relative clause or a named
        # apposition ("the band Queen") introduces a new one.
        if c.dep_ in ("poss", "relcl", "acl") or (c.dep_ == "prep" and c.lower_ == "of"):
            return False
        if c.dep_ in ("appos", "compound") and (c.i in ent_at or c.pos_ == "PROPN"):
            return False
    # "the capital is Washington": the name that follows says which one it is.
    if tok.dep_ in SUBJ_DEPS and any(c.dep_ == "attr" and c.pos_ == "PROPN" for c in tok.head.children):
        return False
    return True


def _expletive(tok: Token) -> bool:
    """'It is likely that ...', 'it was announced that ...': a placeholder, not a thing."""
    if tok.dep_ == "expl":
        return True
    if tok.dep_ not in SUBJ_DEPS:
        return False
    verb = tok.head
    clausal = any(c.dep_ in ("ccomp", "xcomp", "csubj", "csubjpass") for c in verb.children)
    if verb.lemma_ in _EXPLETIVE_VERBS and (clausal or verb.lemma_ in ("rain", "snow")):
        return True
    # "it was a good year": a time, not a thing.
    if verb.lemma_ == "be" and any(c.dep_ == "attr" and c.ent_type_ in VALUE_LABELS for c in verb.children):
        return True
    # "it was reported that ...": a passive with a clause for its content.
    return tok.dep_ == "nsubjpass" and any(c.dep_ == "ccomp" for c in verb.children)


def _best(
    doc: Doc,
    tok: Token,
    ent_at: dict[int, Span],
    mentions: list[_Mention],
    sent_of: dict[int, int],
    para_of: dict[int, int],
    resolved: dict[int, int],
    nouns: str | None,
) -> _Mention | None:
    low = tok.lower_
    group = nouns is None and low in GROUP_PRONOUNS
    role = "subj" if tok.dep_ in SUBJ_DEPS else "poss" if tok.dep_ == "poss" or low in ("its", "itself", "their", "themselves") else "obj"
    if nouns is not None:
        # "Houston is the largest city in the state": not Houston, which the clause is about.
        role = "subj" if tok.dep_ in SUBJ_DEPS else "obj"
    k = sent_of[tok.i]
    # The heads the pronoun's own clause already has as subjects ("Paris praised it": not Paris).
    own_subjects: set[int] = set()
    for s in subjects_of(doc[clause_of(tok)]):
        if s.i in resolved:
            own_subjects.add(resolved[s.i])
        elif s.i in ent_at and s.i != tok.i:
            own_subjects.add(ent_at[s.i].root.i)
    own_phrase = range(tok.head.left_edge.i, tok.head.right_edge.i + 1) if role == "poss" else range(0)
    best: tuple[float, int, _Mention] | None = None
    for m in mentions:
        if m.pos >= tok.i or k - sent_of[m.pos] > MAX_SENTENCE_DISTANCE or m.pos in own_phrase:
            continue
        if para_of[m.pos] != para_of[tok.i]:
            continue
        if role == "obj" and m.head in own_subjects:
            continue
        bonus = _fit(m, low, nouns)
        if bonus is None:
            continue
        score = bonus - 0.5 * (k - sent_of[m.pos]) + m.salience
        if role == "poss" and m.head in own_subjects:
            score += 1.0  # "Northwind moved its offices": its own subject first
        if best is None or (score, m.pos) > best[:2]:
            best = (score, m.pos, m)
    if best is None:
        return None
    # "Marie and Pierre moved to Paris. They ...": a plural pronoun right after people, or
    # after a plural common noun subject ("the workers"), is about them, not the place.
    if nouns is None and _rival_closer(doc, tok, best[2], ent_at, resolved, group):
        return None
    return best[2]


def _fit(m: _Mention, low: str, noun: str | None) -> float | None:
    """How well a mention's label fits the pronoun or class noun; None when it cannot."""
    if m.label == "PERSON":
        return None
    if noun is not None:
        if m.label in DESCRIPTION_LABELS[noun]:
            return 1.0
        return 0.0 if noun in WORK_NOUNS else None
    if low in GROUP_PRONOUNS:
        return 1.0 if m.label in ("ORG", "NORP") or m.plural else 0.0
    # "the Italian club ... it": nationality words are never "it".
    return None if m.label == "NORP" else 0.0


def _rival_closer(
    doc: Doc, tok: Token, best: _Mention, ent_at: dict[int, Span], resolved: dict[int, int], group: bool
) -> bool:
    """An unnamed subject since the previous sentence, not outranked by `best`, that fits better.

    "Marie and Pierre moved to Paris. They ...": people (or a plural noun) for they/their.
    "The runway is 4/22 and it has ...": a singular thing the model did not name, for it/its.
    Better no answer than the wrong name.
    """
    start = tok.sent.start
    previous = doc[start - 1].sent.start if start > 0 else 0
    # "He started his career ... and ended it": an object pronoun also looks at objects.
    deps = (*SUBJ_DEPS, "dobj") if tok.dep_ == "dobj" and not group else SUBJ_DEPS
    for t in doc[max(previous, doc[best.pos].sent.start) : tok.i]:
        if t.dep_ not in deps and not (t.dep_ == "conj" and t.head.dep_ in deps):
            continue
        if t.i in resolved or (t.i <= best.pos and best.salience >= _SUBJECT):
            continue
        person = t.ent_type_ == "PERSON" or t.lemma_.lower() in PERSON_NOUNS
        if group:
            rival = person or (t.tag_ == "NNS" and t.i not in ent_at)
        else:
            rival = t.pos_ in ("NOUN", "PROPN") and t.tag_ in ("NN", "NNP") and t.i not in ent_at and not person
        if rival:
            return True
    return False
