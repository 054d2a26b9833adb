"""One parsed chunk plus the lookups every pass shares: entity and noun-chunk spans by token,
the people and pronoun map, and the two ways a token becomes a node name (`ref`, `noun_text`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from kg.extraction.offline.anaphora import resolve_things
from kg.extraction.offline.clauses import class_words, is_proper, object_of
from kg.extraction.offline.lexicons import CLASS_NOUNS, EVENTIVE_NOUNS, GENERIC_NOUNS, RELATIVE, VALUE_LABELS
from kg.extraction.offline.pronouns import find_people
from kg.extraction.offline.text import MAX_PHRASE_TOKENS, Ref, clean, join, name_text, possessive
from kg.models import NodeKind, Triple, TripleType

if TYPE_CHECKING:  # spaCy is an optional dependency (the `local` extra)
    from spacy.tokens import Doc, Span, Token


def _names_not_numbers(doc: Doc) -> None:
    """"3Arena", "4 Vesta" tagged CARDINAL: a number-looking proper noun is a name, not a value.
    "103 Hera" cut into CARDINAL "103" and PERSON "Hera": the number counts nothing, it is the
    first word of the name (of an asteroid, a building), which is then no person's."""
    from spacy.tokens import Span

    ents = list(doc.ents)
    fixed = []
    changed = False
    k = 0
    while k < len(ents):
        ent = ents[k]
        root = ent.root
        following = ents[k + 1] if k + 1 < len(ents) else None
        if ent.label_ in ("CARDINAL", "ORDINAL", "QUANTITY") and root.pos_ == "PROPN" and any(
            ch.isalpha() for ch in root.text
        ):
            fixed.append(Span(doc, ent.start, ent.end, label="NAME"))
            changed = True
        elif ent.label_ == "CARDINAL" and following is not None and following.start == ent.end \
                and root.dep_ == "nummod" and root.head.i in range(following.start, following.end) \
                and following.root.pos_ == "PROPN":
            label = "NAME" if following.label_ == "PERSON" else following.label_
            fixed.append(Span(doc, ent.start, following.end, label=label))
            changed = True
            k += 1
        elif ent.label_ == "PERSON" and doc[ent.start].like_num:
            fixed.append(Span(doc, ent.start, ent.end, label="NAME"))  # "316 Hera" in one piece
            changed = True
        else:
            fixed.append(ent)
        k += 1
    if changed:
        doc.ents = fixed


class Parsed:
    """One parsed chunk plus the lookups every pass shares, built before the passes start."""

    def __init__(self, doc: Doc, chunk_index: int) -> None:
        self.doc = doc
        self.chunk_index = chunk_index
        _names_not_numbers(doc)
        self.ent_at: dict[int, Span] = {}
        for ent in doc.ents:
            for tok in ent:
                self.ent_at[tok.i] = ent
        self.chunk_at: dict[int, Span] = {}
        self._refs: dict[tuple[int, bool, bool, bool, bool], Ref | None] = {}
        # spaCy makes a new Token object on every access; the passes walk the chunk many times.
        self.tokens: list[Token] = list(doc)
        self.noun_chunks: list[Span] = list(doc.noun_chunks)  # spaCy recomputes them on every access
        for nc in self.noun_chunks:
            for tok in nc:
                self.chunk_at[tok.i] = nc
        self.people = find_people(doc, self.ent_at)
        self.pronoun_ref = self.people.pronoun_ref  # token index of a resolved pronoun -> name
        # it/its/they and "the city" -> the head token of the named thing they stand for.
        self.thing_ref = resolve_things(doc, self.ent_at, self.noun_chunks)

    def ref(
        self,
        tok: Token,
        *,
        allow_noun: bool = True,
        extend_of: bool = True,
        named_only: bool = False,
        value: bool = False,
    ) -> Ref | None:
        """The node a noun-ish token stands for, or None if it is not usable as one.

        `allow_noun=False` keeps proper nouns and resolved pronouns; `named_only` keeps only
        recognised entities and resolved pronouns (a capitalised "Tragedy" is not a name);
        `value` also accepts dates, numbers and quantities (as objects: "born on 1 May 1942").
        """
        # Every rule asks about the same few tokens: one answer per token and question.
        key = (tok.i, allow_noun, extend_of, named_only, value)
        if key not in self._refs:
            self._refs[key] = self._ref(tok, allow_noun, extend_of, named_only, value)
        return self._refs[key]

    def _ref(self, tok: Token, allow_noun: bool, extend_of: bool, named_only: bool, value: bool) -> Ref | None:
        if tok.pos_ == "PRON" or tok.lower_ in RELATIVE:
            if tok.i in self.pronoun_ref:
                return Ref(self.pronoun_ref[tok.i], "pron", label="PERSON")
            if tok.i in self.thing_ref:
                thing = self.ref(self.doc[self.thing_ref[tok.i]], extend_of=extend_of)
                return replace(thing, quality="pron") if thing is not None else None
            if tok.lower_ in RELATIVE or tok.lower_ == "whose":
                # "Chicago, the leader of which is X", "Uruguay, whose leader is X": the clause's antecedent.
                clause = next((a for a in tok.ancestors if a.dep_ in ("relcl", "acl")), None)
                if clause is not None and clause.head.pos_ in ("NOUN", "PROPN"):
                    antecedent = clause.head
                    # "X was a fighter pilot who was born in Y": the one born is X.
                    if antecedent.dep_ == "attr" and antecedent.pos_ == "NOUN" and antecedent.head.lemma_ == "be":
                        subject = next((c for c in antecedent.head.children if c.dep_ == "nsubj"), None)
                        if subject is not None:
                            antecedent = subject
                    return self.ref(antecedent, allow_noun=allow_noun, extend_of=extend_of, named_only=named_only)
            return None
        # "The city is located in ...": a definite description of a thing named before.
        if tok.i in self.thing_ref:
            thing = self.ref(self.doc[self.thing_ref[tok.i]], extend_of=extend_of)
            return replace(thing, quality="pron") if thing is not None else None
        ent = self.ent_at.get(tok.i)
        if ent is not None:
            if ent.label_ in VALUE_LABELS:
                return self.value(tok) if value else None
            text = clean(name_text(ent))
            kind: NodeKind = "event" if ent.label_ == "EVENT" else "entity"
            return Ref(text, "ne", kind, ent.label_, self._class_before(ent)) if text else None
        if value and (measured := self.value(tok)) is not None:
            return measured
        if tok.pos_ not in ("NOUN", "PROPN"):
            return None
        # "the country of Denmark": the class noun gives way to the name.
        if tok.lemma_.lower() in CLASS_NOUNS and (of := next((c for c in tok.children if c.lower_ == "of"), None)):
            named_place = object_of(of)
            if named_place is not None and is_proper(named_place):
                named = self.ref(named_place, allow_noun=False, extend_of=False)
                return replace(named, role=class_words(tok)) if named is not None else None
        proper = is_proper(tok) or self.people.is_name(tok)
        # "her sister Bronisława", "a Polish physicist, Józef Kowalski": the name is the node.
        for c in tok.children:
            if c.dep_ == "appos" and (is_proper(c) or c.i in self.ent_at):
                named = self.ref(c, allow_noun=False, extend_of=False)
                if named is not None:
                    # "the record label EMI Records" classes its name; "her sister X" is a relation
                    # of her own, which the appositions pass states; "hot dry rock (HDR)" only
                    # abbreviates.
                    owned = any(o.dep_ == "poss" for o in tok.children)
                    bracketed = c.i > 0 and self.tokens[c.i - 1].text == "("
                    return named if owned or proper or bracketed else replace(named, role=class_words(tok))
        if named_only or (not allow_noun and not proper):
            return None
        # "from house to house", "in the end": as objects of a preposition these are not things.
        if not proper and tok.dep_ == "pobj" and tok.lemma_.lower() in GENERIC_NOUNS:
            return None
        text = self.noun_text(tok, extend_of=extend_of)
        if not text:
            return None
        if proper:
            return Ref(text, "ne")
        kind = "event" if tok.lemma_.lower() in EVENTIVE_NOUNS else "entity"
        return Ref(text, "noun", kind)

    def _class_before(self, ent: Span) -> str:
        """The common nouns classing a name from its left, after a determiner: "record label" in "the
        record label Northwind Records", "club" in "the club Riverside United" (the NER span leaves
        them out); not "13th-century" in "in 13th-century Bruges"."""
        words: list[str] = []
        k = ent.start - 1
        while k >= 0 and (t := self.tokens[k]).pos_ == "NOUN" and t.dep_ == "compound" and t.text.islower() \
                and k < t.head.i < ent.end:
            words.append(t.lower_)
            k -= 1
        if k < 0 or self.tokens[k].dep_ not in ("det", "poss"):
            return ""
        return " ".join(reversed(words))

    def value(self, tok: Token) -> Ref | None:
        """A date, time, number, quantity or amount of money, with its unit: "3.0 kg",
        "29,000 employees", "two hundred radiology posts", "1 January 1942"; None when the token
        is not part of one, and for dates without a number ("years", "the following winter"),
        which place nothing on a time line."""
        ent = self.ent_at.get(tok.i)
        if ent is not None and ent.label_ in VALUE_LABELS:
            if ent.label_ == "ORDINAL":
                return None  # "the first", "second": a rank, not a value that stands alone
            head = ent.root.head
            # "29,000 employees", "8.3 m": the counted noun is the unit and stays with the number.
            if ent.root.dep_ == "nummod" and head.pos_ in ("NOUN", "PROPN") and head.i >= ent.end:
                return self._measured(head, ent)
            if ent.label_ in ("DATE", "TIME") and not any(ch.isdigit() for ch in ent.text):
                return None
            return Ref(clean(join(self._with_currency(ent.start, list(ent)))), "ne", "entity", ent.label_)
        numbers = [c for c in tok.children if c.dep_ == "nummod" and c.i < tok.i]
        if tok.pos_ in ("NOUN", "PROPN") and numbers and (num := self.ent_at.get(numbers[0].i)) is not None:
            if num.label_ in VALUE_LABELS:
                return self._measured(tok, num)
        if tok.pos_ == "NUM" and tok.like_num:
            return Ref(tok.text, "ne", "entity", "CARDINAL")
        return None

    def measure(self, prep: Token) -> Ref | None:
        """The distance a preposition is measured by: "310 metres" in "310 metres above sea level"."""
        for c in prep.children:
            if c.dep_ == "npadvmod" and c.i < prep.i and (r := self.value(c)) is not None:
                return r
        return None

    def _measured(self, noun: Token, number: Span) -> Ref:
        """The number and the noun it counts, with the words between ("two hundred fixed posts")."""
        start = min(number.start, noun.left_edge.i)
        toks = [t for t in self.doc[start : noun.i + 1] if t.dep_ != "det" and t.tag_ != "POS" and not t.is_punct]
        return Ref(clean(join(self._with_currency(start, toks))), "ne", "entity", number.label_)

    def _with_currency(self, start: int, toks: list[Token]) -> list[Token]:
        # "$40,000": NER may leave the currency sign outside the amount.
        if start > 0 and self.doc[start - 1].tag_ == "$":
            return [self.doc[start - 1], *toks]
        return toks

    def noun_text(self, tok: Token, *, extend_of: bool = True, keep_article: bool = False) -> str:
        nc = self.chunk_at.get(tok.i)
        if nc is not None and nc.root.i == tok.i:
            toks = list(nc)
        else:
            toks = sorted(
                [t for t in tok.lefts if t.dep_ in ("compound", "amod", "poss", "nummod", "det")] + [tok],
                key=lambda t: t.i,
            )
        kept: list[Token] = []
        words: list[str] = []
        for t in toks:
            if t.tag_ in ("WDT", "WP", "WP$") or t.is_punct or t.is_space:
                continue
            # "no X-ray equipment" must not lose its "no"; "the" and "a" carry nothing here.
            if t.dep_ in ("det", "predet") and t.lower_ not in ("no", "neither") and not (
                keep_article and t.lower_ in ("a", "an")
            ):
                continue
            # "its capital", "the band's genre": the thing named before, as the owner.
            if t.i in self.thing_ref and (thing := self.ref(t, extend_of=False)) is not None:
                words.append(possessive(thing.text) if t.tag_ == "PRP$" else thing.text)
                kept.append(t)
                continue
            if t.tag_ == "PRP$" or (t.pos_ == "PRON" and t.dep_ == "poss"):
                name = self.pronoun_ref.get(t.i)
                if name:
                    words.append(possessive(name))
                continue
            if t.tag_ == "POS":
                if words:
                    words[-1] += t.text
                continue
            if kept and kept[-1].i == t.i - 1 and not kept[-1].whitespace_ and words:
                words[-1] += t.text
            else:
                words.append(t.text)
            kept.append(t)
        if extend_of:
            for child in tok.rights:
                if child.dep_ == "prep" and child.lower_ == "of":
                    pobj = object_of(child)
                    if pobj is not None:
                        inner = self.ref(pobj, extend_of=False)
                        if inner is not None and len(words) + 1 + len(inner.text.split()) <= MAX_PHRASE_TOKENS - 2:
                            words += ["of", inner.text]
                    break
        return clean(" ".join(words))

    def triple(
        self,
        kind: TripleType,
        subj: Ref | str,
        pred: str,
        obj: Ref | str,
        conf: float,
        subject_kind: NodeKind | None = None,
        object_kind: NodeKind | None = None,
    ) -> Triple | None:
        """A triple from this chunk, or None when an end is empty or both ends are the same."""
        s = subj.text if isinstance(subj, Ref) else subj
        o = obj.text if isinstance(obj, Ref) else obj
        s, o, pred = clean(s), clean(o), " ".join(pred.split())
        if not s or not o or not pred or s.casefold() == o.casefold():
            return None
        return Triple(
            type=kind,
            subject=s,
            predicate=pred,
            object=o,
            subject_kind=subject_kind or (subj.kind if isinstance(subj, Ref) else "event"),
            object_kind=object_kind or (obj.kind if isinstance(obj, Ref) else "event"),
            confidence=conf,
            chunk_index=self.chunk_index,
        )

