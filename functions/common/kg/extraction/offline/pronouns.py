"""Who the chunk names as people, and which person each he/she/him/her/his stands for.

A cheap heuristic, no coreference model: a pronoun goes to a recent person of a compatible
gender, preferring subjects and the current paragraph; gender is learnt from the chunk itself.
`find_people` runs once per chunk, before the passes start.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kg.extraction.offline.clauses import clause_of, is_subject
from kg.extraction.offline.lexicons import (
    FEMALE,
    FEMALE_CUES,
    MALE,
    MALE_CUES,
    PERSON_NOUNS,
    RELATIVE,
    SUBJ_DEPS,
    VALUE_LABELS,
)
from kg.extraction.offline.text import ent_text

if TYPE_CHECKING:  # spaCy is an optional dependency (the `local` extra)
    from spacy.tokens import Doc, Span, Token


@dataclass
class People:
    texts: set[str]  # person names as the chunk writes them, articles and "'s" dropped
    name_words: set[str]  # the capitalised words of those names
    pronoun_ref: dict[int, str] = field(default_factory=dict)  # pronoun token index -> a name

    def is_name(self, tok: Token) -> bool:
        """A word of a person's name seen elsewhere in the chunk, whatever the tagger says."""
        return tok.text in self.name_words and tok.pos_ in ("PROPN", "NOUN")


def find_people(doc: Doc, ent_at: dict[int, Span]) -> People:
    """Person names (NER, or a name given a person role) and the pronoun -> name map."""
    texts = {ent_text(e) for e in doc.ents if e.label_ == "PERSON" or _has_person_role(e)}
    people = People(texts, {w for text in texts for w in text.split() if w[:1].isupper()})
    _resolve_pronouns(doc, ent_at, people)
    return people


@dataclass(frozen=True)
class _Mention:
    pos: int
    name: str
    is_subject: bool
    clause: int  # token index of the verb that governs the mention


def _has_person_role(ent: Span) -> bool:
    """'her daughter Irène', 'the physicist Édouard Branly': a person whatever NER says."""
    root = ent.root
    if root.dep_ == "appos" and root.head.lemma_.lower() in PERSON_NOUNS:
        return True
    return any(c.dep_ in ("appos", "compound") and c.lemma_.lower() in PERSON_NOUNS for c in root.children)


def _person_mentions(doc: Doc, ent_at: dict[int, Span], people: People) -> list[_Mention]:
    out: list[_Mention] = []
    first_names = {text.split()[0] for text in people.texts if text}
    for ent in doc.ents:
        text = ent_text(ent)
        # The small model mislabels rare names (Irène as GPE, Ève Curie as PRODUCT); trust a
        # name, or a given name, seen elsewhere as a person.
        if ent.label_ in VALUE_LABELS or not text:
            continue
        if ent.label_ == "PERSON" or text in people.texts or text.split()[0] in first_names:
            root = ent.root
            out.append(_Mention(ent.start, text, is_subject(root), clause_of(root)))
    # It also misses some: a bare "Pierre" the model left untagged is still Pierre.
    for tok in doc:
        if people.is_name(tok) and tok.i not in ent_at and tok.dep_ != "compound":
            out.append(_Mention(tok.i, tok.text, is_subject(tok), clause_of(tok)))
    return sorted(out, key=lambda m: m.pos)


def _resolve_pronouns(doc: Doc, ent_at: dict[int, Span], people: People) -> None:
    """Map he/she/him/her/his to a person named earlier in the chunk; a cheap heuristic.

    Gender of a name is learnt from the chunk itself (pronouns that follow a sentence naming
    exactly one person). A subject pronoun prefers an earlier subject, a possessive prefers
    the subject of its own clause, an object pronoun never takes its own clause's subject.
    """
    mentions = _person_mentions(doc, ent_at, people)
    if not mentions:
        return
    sents = list(doc.sents)
    sent_of = {t.i: k for k, s in enumerate(sents) for t in s}
    votes: dict[str, int] = {}
    for m in mentions:
        # "Lady Byron", "Mr Darcy", "her mother, Lady Byron", "his brother Jacques".
        cues = {doc[m.pos - 1].lower_} if m.pos > 0 else set()
        cues.add(m.name.split()[0].lower())
        root = doc[m.pos].head if doc[m.pos].dep_ == "compound" else doc[m.pos]
        if root.dep_ == "appos":
            cues.add(root.head.lemma_.lower())
        cues.update(c.lemma_.lower() for c in root.children if c.dep_ in ("appos", "compound"))
        if cues & MALE_CUES:
            _vote(votes, m.name, +3)
        elif cues & FEMALE_CUES:
            _vote(votes, m.name, -3)
    for tok in doc:
        if tok.lower_ in MALE or tok.lower_ in FEMALE:
            lo = sents[max(0, sent_of[tok.i] - 1)].start
            window = {m.name for m in mentions if lo <= m.pos < tok.i}
            if len(window) == 1:
                _vote(votes, next(iter(window)), +1 if tok.lower_ in MALE else -1)

    # Paragraph number of every token: a blank line usually resets who "she" is.
    para_of: dict[int, int] = {}
    para = 0
    for tok in doc:
        if tok.is_space and tok.text.count("\n") >= 2:
            para += 1
        para_of[tok.i] = para

    mentions.sort(key=lambda m: m.pos)
    clause_names: dict[int, set[str]] = {}
    for m in mentions:
        clause_names.setdefault(m.clause, set()).update(m.name.split())
    for tok in doc:
        low = tok.lower_
        if low not in MALE and low not in FEMALE:
            continue
        want = +1 if low in MALE else -1
        clause = clause_of(tok)
        role = "subj" if tok.dep_ in SUBJ_DEPS else "poss" if tok.dep_ == "poss" or tok.tag_ == "PRP$" else "obj"
        k = sent_of[tok.i]
        # "Her daughter Ève took her": a possessive never points inside its own noun phrase.
        own_phrase = range(tok.head.left_edge.i, tok.head.right_edge.i + 1) if role == "poss" else range(0)
        recent = [m for m in mentions if m.pos < tok.i and k - sent_of[m.pos] <= 3]
        # "Meloney, who admired her": not Meloney, whom "who" already stands for.
        verb = doc[clause]
        antecedent = range(0)
        if verb.dep_ == "relcl" and any(c.lower_ in RELATIVE and c.dep_ in SUBJ_DEPS for c in verb.children):
            antecedent = range(verb.head.left_edge.i, verb.head.i + 1)
        best: tuple[float, int, str] | None = None
        for m in recent:
            if m.pos in own_phrase:
                continue
            g = _gender(votes, m.name)
            if g == -want:
                continue
            same_clause = m.clause == clause and m.is_subject
            if role == "obj" and (same_clause or m.pos in antecedent):
                continue
            # "she would help Maria": a name in the pronoun's own clause is someone else.
            if role != "poss" and set(m.name.split()) & clause_names.get(clause, set()):
                continue
            first = m.name.split()[0]
            salience = sum(1 for o in recent if o is not m and o.name.split()[0] == first)
            score = (
                (2.0 if g == want else 0.0)
                - 0.75 * (k - sent_of[m.pos])
                - 1.5 * (para_of[tok.i] - para_of[m.pos])
                + 0.25 * min(salience, 4)
            )
            if role == "subj" and m.is_subject:
                score += 0.75
                # "Irène shared her mother's fate, and she died in 1956": the subject of the
                # clause this one is joined to, unless the gender says otherwise.
                joined = doc[clause]
                if joined.dep_ == "conj" and m.clause == joined.head.i and g != -want:
                    score += 3.0
            # "Marie defended her thesis": only when the gender agrees for sure, since
            # "Lippmann presented her report" is just as grammatical.
            if role == "poss" and same_clause and g == want:
                score += 3.0
            if best is None or (score, m.pos) >= best[:2]:
                best = (score, m.pos, m.name)
        if best is not None:
            people.pronoun_ref[tok.i] = best[2]
            mentions.append(_Mention(tok.i, best[2], role == "subj", clause))
            mentions.sort(key=lambda m: m.pos)


# Gender sits on the first word: given names carry it, shared family names ("Curie") do not.
def _vote(votes: dict[str, int], name: str, amount: int) -> None:
    first = name.split()[0]
    votes[first] = votes.get(first, 0) + amount


def _gender(votes: dict[str, int], name: str) -> int:
    total = votes.get(name.split()[0], 0)
    return (total > 0) - (total < 0)
