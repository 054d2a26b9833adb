"""Phrase text and node references: cleaning, joining tokens, confidence, heading masking, dedupe.

Small and pure: nothing here walks the parse beyond one span or token list.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kg.extraction.offline.lexicons import DANGLING
from kg.models import NodeKind, Triple

if TYPE_CHECKING:  # spaCy is an optional dependency (the `local` extra)
    from spacy.tokens import Span, Token

MAX_PHRASE_TOKENS = 8


@dataclass(frozen=True)
class Ref:
    """A phrase standing for a graph node, and how much to trust it as one."""

    text: str
    quality: str  # "ne" (named), "pron" (pronoun resolved to a name), "noun" (common noun phrase)
    kind: NodeKind = "entity"
    label: str = ""  # the NER label when the phrase is a named entity
    # The class noun the name stood behind: "country" in "the country of Denmark", "record label"
    # in "the record label EMI Records". The node is the name; the class tells the relation.
    role: str = ""

    @property
    def named(self) -> bool:
        return self.quality in ("ne", "pron")


def with_role(predicate: str, obj: Ref | None) -> str:
    """A verb's predicate with the class its object was introduced by: "play for the club X" ->
    "play for club", "is in the country of Y" -> "is in country" (unless the verb says it already)."""
    words = predicate.split()
    # A predicate that already carries an object ("translate article by") is specific enough.
    if obj is None or not obj.role or len(words) > 2 or set(obj.role.split()) <= set(words):
        return predicate
    return f"{predicate} {obj.role}"


QUALITY_PENALTY = {"ne": 0.0, "pron": 0.1, "noun": 0.15}


def confidence(base: float, *refs: Ref) -> float:
    return round(max(0.05, min(1.0, base - sum(QUALITY_PENALTY[r.quality] for r in refs))), 3)


def place(r: Ref) -> bool:
    return r.label in ("GPE", "LOC", "FAC")


def clean(text: str) -> str:
    text = " ".join(text.replace("\u201c", "").replace("\u201d", "").replace('"', "").split())
    words = text.split(" ")
    if len(words) > MAX_PHRASE_TOKENS:
        words = words[:MAX_PHRASE_TOKENS]
        # A cut phrase must not end mid-phrase ("... give up Marie's", "... capital of").
        while len(words) > 1 and (words[-1].lower() in DANGLING or words[-1].endswith("'s")):
            words.pop()
    phrase = " ".join(words).strip(" ,;:-")
    # The dot of an abbreviation stays ("10 a.m.", "Stoke City F.C."); a sentence's full stop goes.
    last = phrase.rsplit(" ", 1)[-1]
    if phrase.endswith(".") and not (last.count(".") > 1 and len(last) <= 6):
        phrase = phrase.rstrip(".").rstrip(" ,;:-")
    return phrase


def join(tokens: Sequence[Token]) -> str:
    """Tokens back to text with the document's own spacing ("X-rays", not "X - rays")."""
    parts: list[str] = []
    for k, t in enumerate(tokens):
        parts.append(t.text)
        if k + 1 < len(tokens) and (t.whitespace_ or tokens[k + 1].i != t.i + 1):
            parts.append(" ")
    return "".join(parts)


def possessive(name: str) -> str:
    """"Marie's", "the Curies'"."""
    return f"{name}'" if name.endswith("s") else f"{name}'s"


def ent_text(ent: Span) -> str:
    """An entity as a node name: no leading article, no possessive "'s"."""
    toks = [t for t in ent if not (t.i == ent.start and t.lower_ in ("the", "a", "an")) and t.tag_ != "POS"]
    return join(toks).strip()


def name_text(ent: Span) -> str:
    """A named entity with the words the tagger left outside it: "101 Helena" (NER saw
    "Helena"), "Acta Palaeontologica Polonica"; numbers and proper nouns that modify the name."""
    start = ent.start
    doc = ent.doc
    while start > 0:
        prev = doc[start - 1]
        attached = ent.start <= prev.head.i < ent.end
        # "107 Camilla was discovered": the parser hangs the number on the verb.
        numbered = prev.pos_ == "NUM" and prev.dep_ == "npadvmod" and prev.head.i == ent.root.head.i
        if prev.dep_ not in ("compound", "nummod", "npadvmod") or prev.pos_ not in ("PROPN", "NUM"):
            break
        if not (attached or numbered):
            break
        start -= 1
    end = ent.end
    # NER sometimes runs a name into the verb after it ("the Memorial is").
    while end - 1 > start and doc[end - 1].pos_ in ("AUX", "VERB", "ADP", "CCONJ", "PUNCT"):
        end -= 1
    if (start, end) == (ent.start, ent.end):
        return ent_text(ent)
    return ent_text(doc[start:end])


def dedupe(triples: list[Triple]) -> list[Triple]:
    best: dict[tuple[Any, ...], Triple] = {}
    for t in triples:
        key = (t.type, t.subject, t.predicate, t.object, t.subject_kind, t.object_kind)
        if key not in best or t.confidence > best[key].confidence:
            best[key] = t
    return list(best.values())


HEADING = re.compile(r"^[ \t]*=+[^=\n]*=+[ \t]*$", re.MULTILINE)


def mask_headings(text: str) -> str:
    """Blank out headings and titles (same length, offsets kept).

    A title glued to the first sentence of its section ("== Pierre's Death == On 19 April ...")
    parses as one sentence and yields nonsense subjects.
    """
    text = HEADING.sub(lambda m: " " * len(m.group()), text)
    lines = text.split("\n")
    for k, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped[-1] in ".!?:;\"')\u201d\u2019" or len(stripped) > 120:
            continue
        alone_before = k == 0 or not lines[k - 1].strip()
        alone_after = k == len(lines) - 1 or not lines[k + 1].strip()
        if alone_before and alone_after:
            lines[k] = " " * len(line)
    return "\n".join(lines)
