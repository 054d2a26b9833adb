"""The offline extractor: spaCy's dependency parse plus small lexicons, no network, no LLM.

Each chunk is parsed once; the four passes then read the same `Doc` on their own threads
through `run_types_concurrently`, so a pass that raises costs only its own type.

What the passes produce
-----------------------
ENTITY_ENTITY
    Subject-verb-object from the parse (nsubj/nsubjpass -> verb -> dobj, or a preposition's
    pobj, or a passive agent turned back into the subject), plus appositions of the form
    "X, the N of Y" / "Y's N, X" -> (X, "N of", Y). Predicates: the verb lemma for active verbs,
    the participle for passives without an agent ("born in"), with particle and preposition,
    lower case, prefixed by "not" when negated.
ENTITY_EVENT
    Roles of named entities in events. Events are clause phrases ("Pierre Curie died",
    "Germany declared war on France"; the same phrases EVENT_EVENT links) or eventive noun
    phrases ("Nobel Prize in Physics", "election to French Academy of Sciences").
    Predicates: "agent of", "subject of" (passive subject or owner: "Pierre's death"),
    "recipient of", "participant in", "affected by" (harm verbs, undergo/suffer), "organiser of",
    "location of" (places).
EVENT_EVENT
    Links between two events marked by a connective. Fixed predicate vocabulary:
    "causes", "caused by", "precedes", "follows", "during", "contrasts with".
    because/as/since/(because of) -> caused by; so/therefore/thus/as a result/led to/caused/
    resulted in -> causes; after/following -> follows; before/until -> precedes;
    when/while/during -> during; although/though/despite/whereas -> contrasts with.
EMOTIONAL_CONTEXT
    A holder and a feeling or the target of an attitude, from an emotion lexicon: verbs
    (feared, admired, mourned, criticised, ...) give (holder, "<verb past>", target) plus
    (holder, "felt" | "expressed", emotion noun); adjectives and participles after a linking
    verb (proud, grateful, devastated, ...) give (holder, "felt", emotion noun) plus
    (holder, "<adjective> <prep>", target) when the target is stated.

Confidence is a heuristic score, not a probability: it starts from how explicit the pattern is
(a subordinating "because" beats a bare "when") and drops for each end that is only a common
noun phrase or a pronoun resolved by a cheap heuristic (recent person of a compatible gender,
preferring subjects and the current paragraph; gender learnt from the chunk itself).

Heading lines ("== Section ==") and bare title lines are blanked before parsing, so they do not
fuse with the next sentence. Phrases are trimmed to MAX_PHRASE_TOKENS words.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kg.extraction import run_types_concurrently
from kg.models import Chunk, ChunkExtraction, NodeKind, Triple, TripleType
from kg.nlp import DEFAULT_MODEL, load_spacy, parse_text

if TYPE_CHECKING:  # spaCy is an optional dependency (the `local` extra)
    from spacy.tokens import Doc, Span, Token

MAX_PHRASE_TOKENS = 8

# Entity labels that are values rather than things; they never become graph nodes here.
_VALUE_LABELS = frozenset({"DATE", "TIME", "PERCENT", "MONEY", "QUANTITY", "ORDINAL", "CARDINAL"})
_SUBJ_DEPS = ("nsubj", "nsubjpass")
_MALE = frozenset({"he", "him", "his", "himself"})
_FEMALE = frozenset({"she", "her", "hers", "herself"})
_RELATIVE = frozenset({"who", "whom", "which", "that"})
_DANGLING = frozenset(
    {"of", "to", "in", "on", "at", "for", "with", "by", "from", "and", "or", "the", "a", "an", "that", "into"}
)
_NEGATIVE_SUBJECTS = frozenset({"nobody", "nothing", "none", "noone", "neither"})
_PERSON_NOUNS = frozenset(
    """daughter son sister brother mother father wife husband widow friend cousin uncle aunt
    physicist chemist scientist mathematician engineer physician doctor journalist president
    professor student colleague teacher assistant author writer king queen""".split()
)
_MALE_CUES = frozenset(
    """mr mr. sir king lord monsieur prince father son brother husband uncle nephew widower""".split()
)
_FEMALE_CUES = frozenset(
    """mrs mrs. ms ms. miss madame lady queen princess mother daughter sister wife aunt niece widow""".split()
)

# Verbs that describe a state, not something that happened: no event node for them.
_STATIVE = frozenset(
    """be have belong contain seem appear know believe think remain own want need like love
    consist depend include mean resemble deserve exist matter lack hold suppose wonder do feel""".split()
)

# Nouns that name happenings; extend with care, every entry makes noun phrases events.
_EVENTIVE_NOUNS = frozenset(
    """war battle invasion attack revolution uprising strike protest riot election vote
    campaign award prize discovery invention experiment death funeral burial birth
    marriage wedding divorce founding foundation opening ceremony coronation flood fire
    earthquake storm famine epidemic outbreak accident crash collapse illness disease operation
    surgery treatment lecture conference congress meeting visit tour trip journey voyage
    expedition scandal trial arrest exile escape release defeat victory surrender treaty
    agreement merger acquisition launch celebration festival concert exhibition examination
    graduation appointment resignation retirement promotion isolation development exposure
    separation announcement publication explosion bombing shooting murder assassination
    recession crisis occupation liberation migration emigration evacuation""".split()
)

# Verb lemma -> role of the subject in the event named by the verb's object noun.
_OBJECT_EVENT_ROLE = {
    "win": "recipient of",
    "receive": "recipient of",
    "accept": "recipient of",
    "earn": "recipient of",
    "share": "recipient of",
    "suffer": "affected by",
    "survive": "affected by",
    "undergo": "affected by",
    "organise": "organiser of",
    "organize": "organiser of",
    "found": "organiser of",
    "lead": "organiser of",
    "launch": "organiser of",
    "declare": "organiser of",
    "start": "organiser of",
    "hold": "organiser of",
    "give": "organiser of",
    "deliver": "organiser of",
}
# Nouns too vague to be a node ("in the end", "from house to house", "for the rest of her life").
_GENERIC_NOUNS = frozenset(
    """time end turn result part rest middle way place house age year day week month moment
    honour honor course side point fact kind sort lot number deal case thing one spring summer
    autumn winter evening night morning period decade century while""".split()
)
# Prepositions that mostly give circumstances (when, why, how long), not a relation.
_LOOSE_PREPS = frozenset(
    {"for", "by", "over", "after", "before", "during", "until", "since", "through", "without",
     "throughout", "despite", "within", "than", "like", "because", "about"}
)
_HARM_VERBS = frozenset(
    """strike kill injure wound attack hit arrest exile expel banish defeat invade occupy capture
    destroy damage suppress ban imprison execute murder shoot bomb""".split()
)
_GIVE_VERBS = frozenset({"award", "give", "grant", "present", "offer", "hand", "confer"})
_PARTICIPATION_PREPS = frozenset({"in", "during", "at", "into", "to", "from"})

# Emotion verbs: lemma -> (predicate toward the target, "felt"/"expressed", emotion noun).
_EMOTION_VERBS: dict[str, tuple[str, str, str]] = {
    "fear": ("feared", "felt", "fear"),
    "dread": ("dreaded", "felt", "dread"),
    "worry": ("worried about", "felt", "worry"),
    "hope": ("hoped for", "felt", "hope"),
    "admire": ("admired", "felt", "admiration"),
    "respect": ("respected", "felt", "respect"),
    "love": ("loved", "felt", "love"),
    "adore": ("adored", "felt", "love"),
    "cherish": ("cherished", "felt", "love"),
    "enjoy": ("enjoyed", "felt", "enjoyment"),
    "hate": ("hated", "felt", "hatred"),
    "despise": ("despised", "felt", "contempt"),
    "dislike": ("disliked", "felt", "dislike"),
    "resent": ("resented", "felt", "resentment"),
    "envy": ("envied", "felt", "envy"),
    "pity": ("pitied", "felt", "pity"),
    "regret": ("regretted", "felt", "regret"),
    "mourn": ("mourned", "felt", "grief"),
    "grieve": ("grieved for", "felt", "grief"),
    "lament": ("lamented", "felt", "grief"),
    "doubt": ("doubted", "felt", "doubt"),
    "distrust": ("distrusted", "felt", "distrust"),
    "mistrust": ("distrusted", "felt", "distrust"),
    "celebrate": ("celebrated", "expressed", "joy"),
    "welcome": ("welcomed", "expressed", "approval"),
    "praise": ("praised", "expressed", "praise"),
    "applaud": ("applauded", "expressed", "approval"),
    "acclaim": ("acclaimed", "expressed", "praise"),
    "honour": ("honoured", "expressed", "respect"),
    "honor": ("honoured", "expressed", "respect"),
    "criticise": ("criticised", "expressed", "criticism"),
    "criticize": ("criticised", "expressed", "criticism"),
    "condemn": ("condemned", "expressed", "condemnation"),
    "denounce": ("denounced", "expressed", "condemnation"),
    "deplore": ("deplored", "expressed", "disapproval"),
    "mock": ("mocked", "expressed", "contempt"),
    "ridicule": ("ridiculed", "expressed", "contempt"),
    "thank": ("thanked", "expressed", "gratitude"),
}

# Emotion adjectives and participles after a linking verb: word -> emotion noun.
_EMOTION_ADJECTIVES = {
    "afraid": "fear",
    "fearful": "fear",
    "frightened": "fear",
    "scared": "fear",
    "terrified": "terror",
    "anxious": "anxiety",
    "nervous": "anxiety",
    "worried": "worry",
    "proud": "pride",
    "grateful": "gratitude",
    "thankful": "gratitude",
    "bitter": "bitterness",
    "delighted": "delight",
    "pleased": "pleasure",
    "glad": "gladness",
    "happy": "happiness",
    "joyful": "joy",
    "overjoyed": "joy",
    "thrilled": "excitement",
    "excited": "excitement",
    "hopeful": "hope",
    "relieved": "relief",
    "sad": "sadness",
    "unhappy": "unhappiness",
    "miserable": "misery",
    "depressed": "depression",
    "heartbroken": "grief",
    "devastated": "devastation",
    "grief-stricken": "grief",
    "lonely": "loneliness",
    "frustrated": "frustration",
    "disappointed": "disappointment",
    "angry": "anger",
    "furious": "anger",
    "outraged": "outrage",
    "indignant": "indignation",
    "upset": "distress",
    "distressed": "distress",
    "shocked": "shock",
    "horrified": "horror",
    "surprised": "surprise",
    "astonished": "astonishment",
    "amazed": "amazement",
    "ashamed": "shame",
    "embarrassed": "embarrassment",
    "humiliated": "humiliation",
    "jealous": "jealousy",
    "envious": "envy",
    "resentful": "resentment",
    "contemptuous": "contempt",
    "enthusiastic": "enthusiasm",
    "eager": "eagerness",
    "confident": "confidence",
    "determined": "determination",
}

_LINKING_VERBS = frozenset({"be", "feel", "become", "seem", "remain", "grow", "look", "appear", "get"})

# (connective, predicate linking the main clause to the marked clause, confidence).
_MARK_LINKS: dict[str, tuple[str, float]] = {
    "because": ("caused by", 0.85),
    "since": ("caused by", 0.6),
    "as": ("caused by", 0.5),
    "after": ("follows", 0.8),
    "once": ("follows", 0.7),
    "before": ("precedes", 0.8),
    "until": ("precedes", 0.65),
    "till": ("precedes", 0.65),
    "when": ("during", 0.65),
    "whenever": ("during", 0.6),
    "while": ("during", 0.65),
    "although": ("contrasts with", 0.75),
    "though": ("contrasts with", 0.7),
    "whereas": ("contrasts with", 0.7),
}
_PREP_LINKS: dict[str, tuple[str, float]] = {
    "after": ("follows", 0.7),
    "following": ("follows", 0.7),
    "before": ("precedes", 0.7),
    "during": ("during", 0.7),
    "until": ("precedes", 0.6),
    "despite": ("contrasts with", 0.7),
}
_RESULT_ADVERBS = frozenset({"so", "therefore", "thus", "consequently", "hence", "accordingly"})
# Causal verb lemma -> the preposition that introduces the effect (None: the direct object).
_CAUSAL_VERBS = {
    "cause": None,
    "lead": "to",
    "result": "in",
    "trigger": None,
    "provoke": None,
    "prompt": None,
    "spark": None,
}


@dataclass(frozen=True)
class _Ref:
    """A phrase standing for a graph node, and how much to trust it as one."""

    text: str
    quality: str  # "ne" (named), "pron" (pronoun resolved to a name), "noun" (common noun phrase)
    kind: NodeKind = "entity"
    label: str = ""  # the NER label when the phrase is a named entity

    @property
    def named(self) -> bool:
        return self.quality in ("ne", "pron")


_QUALITY_PENALTY = {"ne": 0.0, "pron": 0.1, "noun": 0.15}


def _conf(base: float, *refs: _Ref) -> float:
    return round(max(0.05, min(1.0, base - sum(_QUALITY_PENALTY[r.quality] for r in refs))), 3)


def _clean(text: str) -> str:
    text = " ".join(text.replace("\u201c", "").replace("\u201d", "").replace('"', "").split())
    words = text.split(" ")
    if len(words) > MAX_PHRASE_TOKENS:
        words = words[:MAX_PHRASE_TOKENS]
        # A cut phrase must not end mid-phrase ("... give up Marie's", "... capital of").
        while len(words) > 1 and (words[-1].lower() in _DANGLING or words[-1].endswith("'s")):
            words.pop()
    return " ".join(words).strip(" ,;:.-")


def _join(tokens: Sequence[Token]) -> str:
    """Tokens back to text with the document's own spacing ("X-rays", not "X - rays")."""
    parts: list[str] = []
    for k, t in enumerate(tokens):
        parts.append(t.text)
        if k + 1 < len(tokens) and (t.whitespace_ or tokens[k + 1].i != t.i + 1):
            parts.append(" ")
    return "".join(parts)


@dataclass(frozen=True)
class _Mention:
    pos: int
    name: str
    is_subject: bool
    clause: int  # token index of the verb that governs the mention


def _proper(tok: Token) -> bool:
    # The tagger calls some lower-case words PROPN ("from house to house").
    return tok.pos_ == "PROPN" and tok.text[:1].isupper()


def _is_subject(tok: Token) -> bool:
    return tok.dep_ in _SUBJ_DEPS or (tok.dep_ in ("appos", "compound") and tok.head.dep_ in _SUBJ_DEPS)


def _clause_of(tok: Token) -> int:
    head = tok
    while head.pos_ not in ("VERB", "AUX") and head.head.i != head.i:
        head = head.head
    return head.i


class _Parsed:
    """One parsed chunk plus the lookups every pass shares, built before the passes start."""

    def __init__(self, doc: Doc, chunk_index: int) -> None:
        self.doc = doc
        self.chunk_index = chunk_index
        self.ent_at: dict[int, Span] = {}
        for ent in doc.ents:
            for tok in ent:
                self.ent_at[tok.i] = ent
        self.chunk_at: dict[int, Span] = {}
        for nc in doc.noun_chunks:
            for tok in nc:
                self.chunk_at[tok.i] = nc
        self.person_texts = {self._ent_text(e) for e in doc.ents if e.label_ == "PERSON" or self._has_person_role(e)}
        self.name_words = {w for text in self.person_texts for w in text.split() if w[:1].isupper()}
        self.pronoun_ref: dict[int, str] = {}
        self._resolve_pronouns()

    # -- names and pronouns -------------------------------------------------------------------

    @staticmethod
    def _ent_text(ent: Span) -> str:
        toks = [t for t in ent if not (t.i == ent.start and t.lower_ in ("the", "a", "an")) and t.tag_ != "POS"]
        return _join(toks).strip()

    @staticmethod
    def _has_person_role(ent: Span) -> bool:
        """'her daughter Irène', 'the physicist Édouard Branly': a person whatever NER says."""
        root = ent.root
        if root.dep_ == "appos" and root.head.lemma_.lower() in _PERSON_NOUNS:
            return True
        return any(c.dep_ in ("appos", "compound") and c.lemma_.lower() in _PERSON_NOUNS for c in root.children)

    def _is_name(self, tok: Token) -> bool:
        """A word of a person's name seen elsewhere in the chunk, whatever the tagger says."""
        return tok.text in self.name_words and tok.pos_ in ("PROPN", "NOUN")

    def _person_mentions(self) -> list[_Mention]:
        out: list[_Mention] = []
        first_names = {text.split()[0] for text in self.person_texts if text}
        for ent in self.doc.ents:
            text = self._ent_text(ent)
            # The small model mislabels rare names (Irène as GPE, Ève Curie as PRODUCT); trust a
            # name, or a given name, seen elsewhere as a person.
            if ent.label_ in _VALUE_LABELS or not text:
                continue
            if ent.label_ == "PERSON" or text in self.person_texts or text.split()[0] in first_names:
                root = ent.root
                out.append(_Mention(ent.start, text, _is_subject(root), _clause_of(root)))
        # It also misses some: a bare "Pierre" the model left untagged is still Pierre.
        for tok in self.doc:
            if self._is_name(tok) and tok.i not in self.ent_at and tok.dep_ != "compound":
                out.append(_Mention(tok.i, tok.text, _is_subject(tok), _clause_of(tok)))
        return sorted(out, key=lambda m: m.pos)

    def _resolve_pronouns(self) -> None:
        """Map he/she/him/her/his to a person named earlier in the chunk; a cheap heuristic.

        Gender of a name is learnt from the chunk itself (pronouns that follow a sentence naming
        exactly one person). A subject pronoun prefers an earlier subject, a possessive prefers
        the subject of its own clause, an object pronoun never takes its own clause's subject.
        """
        mentions = self._person_mentions()
        if not mentions:
            return
        sents = list(self.doc.sents)
        sent_of = {t.i: k for k, s in enumerate(sents) for t in s}
        votes: dict[str, int] = {}
        for m in mentions:
            # "Lady Byron", "Mr Darcy", "her mother, Lady Byron", "his brother Jacques".
            cues = {self.doc[m.pos - 1].lower_} if m.pos > 0 else set()
            cues.add(m.name.split()[0].lower())
            root = self.doc[m.pos].head if self.doc[m.pos].dep_ == "compound" else self.doc[m.pos]
            if root.dep_ == "appos":
                cues.add(root.head.lemma_.lower())
            cues.update(c.lemma_.lower() for c in root.children if c.dep_ in ("appos", "compound"))
            if cues & _MALE_CUES:
                self._vote(votes, m.name, +3)
            elif cues & _FEMALE_CUES:
                self._vote(votes, m.name, -3)
        for tok in self.doc:
            if tok.lower_ in _MALE or tok.lower_ in _FEMALE:
                lo = sents[max(0, sent_of[tok.i] - 1)].start
                window = {m.name for m in mentions if lo <= m.pos < tok.i}
                if len(window) == 1:
                    self._vote(votes, next(iter(window)), +1 if tok.lower_ in _MALE else -1)

        # Paragraph number of every token: a blank line usually resets who "she" is.
        para_of: dict[int, int] = {}
        para = 0
        for tok in self.doc:
            if tok.is_space and tok.text.count("\n") >= 2:
                para += 1
            para_of[tok.i] = para

        mentions.sort(key=lambda m: m.pos)
        clause_names: dict[int, set[str]] = {}
        for m in mentions:
            clause_names.setdefault(m.clause, set()).update(m.name.split())
        for tok in self.doc:
            low = tok.lower_
            if low not in _MALE and low not in _FEMALE:
                continue
            want = +1 if low in _MALE else -1
            clause = _clause_of(tok)
            role = "subj" if tok.dep_ in _SUBJ_DEPS else "poss" if tok.dep_ == "poss" or tok.tag_ == "PRP$" else "obj"
            k = sent_of[tok.i]
            # "Her daughter Ève took her": a possessive never points inside its own noun phrase.
            own_phrase = range(tok.head.left_edge.i, tok.head.right_edge.i + 1) if role == "poss" else range(0)
            recent = [m for m in mentions if m.pos < tok.i and k - sent_of[m.pos] <= 3]
            # "Meloney, who admired her": not Meloney, whom "who" already stands for.
            verb = self.doc[clause]
            antecedent = range(0)
            if verb.dep_ == "relcl" and any(c.lower_ in _RELATIVE and c.dep_ in _SUBJ_DEPS for c in verb.children):
                antecedent = range(verb.head.left_edge.i, verb.head.i + 1)
            best: tuple[float, int, str] | None = None
            for m in recent:
                if m.pos in own_phrase:
                    continue
                g = self._gender(votes, m.name)
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
                # "Marie defended her thesis": only when the gender agrees for sure, since
                # "Lippmann presented her report" is just as grammatical.
                if role == "poss" and same_clause and g == want:
                    score += 3.0
                if best is None or (score, m.pos) >= best[:2]:
                    best = (score, m.pos, m.name)
            if best is not None:
                self.pronoun_ref[tok.i] = best[2]
                mentions.append(_Mention(tok.i, best[2], role == "subj", clause))
                mentions.sort(key=lambda m: m.pos)

    # Gender sits on the first word: given names carry it, shared family names ("Curie") do not.
    @staticmethod
    def _vote(votes: dict[str, int], name: str, amount: int) -> None:
        first = name.split()[0]
        votes[first] = votes.get(first, 0) + amount

    @staticmethod
    def _gender(votes: dict[str, int], name: str) -> int:
        total = votes.get(name.split()[0], 0)
        return (total > 0) - (total < 0)

    # -- phrases ------------------------------------------------------------------------------

    def ref(
        self, tok: Token, *, allow_noun: bool = True, extend_of: bool = True, named_only: bool = False
    ) -> _Ref | None:
        """The node a noun-ish token stands for, or None if it is not usable as one.

        `allow_noun=False` keeps proper nouns and resolved pronouns; `named_only` keeps only
        recognised entities and resolved pronouns (a capitalised "Tragedy" is not a name).
        """
        if tok.pos_ == "PRON" or tok.lower_ in _RELATIVE:
            if tok.i in self.pronoun_ref:
                return _Ref(self.pronoun_ref[tok.i], "pron", label="PERSON")
            if tok.lower_ in _RELATIVE and tok.head.dep_ == "relcl":
                return self.ref(tok.head.head, allow_noun=allow_noun, extend_of=extend_of, named_only=named_only)
            return None
        ent = self.ent_at.get(tok.i)
        if ent is not None:
            if ent.label_ in _VALUE_LABELS:
                return None
            text = _clean(self._ent_text(ent))
            kind: NodeKind = "event" if ent.label_ == "EVENT" else "entity"
            return _Ref(text, "ne", kind, ent.label_) if text else None
        if tok.pos_ not in ("NOUN", "PROPN"):
            return None
        proper = _proper(tok) or self._is_name(tok)
        # "her sister Bronisława", "a Polish physicist, Józef Kowalski": the name is the node.
        for c in tok.children:
            if c.dep_ == "appos" and (_proper(c) or c.i in self.ent_at):
                named = self.ref(c, allow_noun=False, extend_of=False)
                if named is not None:
                    return named
        if named_only or (not allow_noun and not proper):
            return None
        # "from house to house", "in the end": as objects of a preposition these are not things.
        if not proper and tok.dep_ == "pobj" and tok.lemma_.lower() in _GENERIC_NOUNS:
            return None
        text = self.noun_text(tok, extend_of=extend_of)
        if not text:
            return None
        if proper:
            return _Ref(text, "ne")
        kind = "event" if tok.lemma_.lower() in _EVENTIVE_NOUNS else "entity"
        return _Ref(text, "noun", kind)

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
            if t.tag_ == "PRP$" or (t.pos_ == "PRON" and t.dep_ == "poss"):
                name = self.pronoun_ref.get(t.i)
                if name:
                    words.append(f"{name}'s")
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
                    pobj = _pobj(child)
                    if pobj is not None:
                        inner = self.ref(pobj, extend_of=False)
                        if inner is not None and len(words) + 1 + len(inner.text.split()) <= MAX_PHRASE_TOKENS - 2:
                            words += ["of", inner.text]
                    break
        return _clean(" ".join(words))

    # -- verbs --------------------------------------------------------------------------------

    def subjects(self, verb: Token) -> list[Token]:
        subj = [c for c in verb.children if c.dep_ in _SUBJ_DEPS]
        if not subj:
            # "Marie felt deeply humiliated" comes out with "felt" as auxpass owning the subject.
            auxes = [c for c in verb.children if c.dep_ in ("aux", "auxpass")]
            subj = [g for c in auxes for g in c.children if g.dep_ in _SUBJ_DEPS]
        if not subj and verb.dep_ == "conj" and verb.head.pos_ in ("VERB", "AUX"):
            return self.subjects(verb.head)
        if not subj and verb.dep_ == "xcomp":
            obj = [c for c in verb.head.children if c.dep_ in ("dobj", "dative")]
            return obj or self.subjects(verb.head)
        out = []
        for s in subj:
            out.append(s)
            out.extend(c for c in s.conjuncts if c.pos_ in ("NOUN", "PROPN", "PRON"))
        return out

    @staticmethod
    def is_passive(verb: Token) -> bool:
        return any(c.dep_ in ("nsubjpass", "auxpass") for c in verb.children)

    @staticmethod
    def negated(verb: Token) -> str:
        neg = next((c for c in verb.children if c.dep_ == "neg"), None)
        return "" if neg is None else ("never" if neg.lower_ == "never" else "not")

    @staticmethod
    def realised(verb: Token) -> bool:
        """False for infinitives and participial modifiers: "wanted to see", "curium, discovered in"."""
        if verb.dep_ not in ("ROOT", "conj", "ccomp", "advcl", "relcl", "parataxis"):
            return False
        return not any(c.dep_ == "aux" and c.lower_ == "to" for c in verb.children)

    def predicate(self, verb: Token, prep: Token | None = None, dobj: Token | None = None) -> str:
        passive = self.is_passive(verb)
        word = verb.lower_ if passive else verb.lemma_.lower()
        parts = [p for p in (self.negated(verb), word) if p]
        parts += [c.lower_ for c in verb.children if c.dep_ == "prt"]
        if dobj is not None:
            parts.append(dobj.lower_)
        if prep is not None:
            parts.append(prep.lower_)
        return " ".join(parts)

    def clause_event(self, verb: Token, *, with_subject: bool = True) -> str | None:
        """A short phrase naming what a clause says happened: subject, verb, first complement.

        The surface verb form is kept ("Pierre Curie died") because the phrase is a node name
        read by people; EVENT_EVENT and ENTITY_EVENT build it the same way so their nodes meet.
        """
        if verb.pos_ not in ("VERB", "AUX"):
            return None
        subj: _Ref | None = None
        if with_subject:
            refs = []
            for s in self.subjects(verb):
                # "no one had seen them" must keep its "no one".
                if s.lower_ in _NEGATIVE_SUBJECTS or any(c.dep_ == "det" and c.lower_ == "no" for c in s.children):
                    refs.append(_Ref(_join([*(c for c in s.lefts if c.dep_ == "det"), s]).lower(), "noun"))
                elif (r := self.ref(s, extend_of=False)) is not None:
                    refs.append(r)
            # "the physician Claudius Regaud" has two subjects in this parser; the name wins.
            subj = next((r for r in refs if r.named), refs[0] if refs else None)
            if subj is None and verb.lemma_ == "be":
                return None
        words = [subj.text] if subj else []
        neg = self.negated(verb)
        for c in verb.children:
            if c.dep_ == "aux" and (c.tag_ == "MD" or (neg and c.lemma_ == "do")):
                words.append(c.lower_)
        if neg:
            words.append(neg)
        words.append(verb.text if verb.lemma_ == "be" else verb.lower_)
        words += [c.lower_ for c in verb.children if c.dep_ == "prt"]
        complement = self._complement(verb)
        if complement:
            words.append(complement)
        if subj is None and not complement:
            return None
        return _clean(" ".join(words))

    def _complement(self, verb: Token) -> str:
        copula = verb.lemma_ == "be"
        for c in verb.children:
            if c.dep_ in ("dobj", "attr", "oprd"):
                if copula and c.pos_ == "NOUN" and c.i not in self.ent_at:
                    return " ".join(self.noun_text(c, keep_article=True).split()[:5])
                r = self.ref(c)
                if r is not None:
                    return " ".join(r.text.split()[:5])
        for c in verb.children:
            if c.dep_ == "acomp":
                return _join([t for t in c.subtree if not t.is_punct][:4])
        for c in verb.children:
            # Connective prepositions ("after the war") are links between events, not content.
            if c.dep_ in ("prep", "agent") and c.lower_ not in _PREP_LINKS and c.lower_ not in ("because", "as"):
                pobj = _pobj(c)
                r = self.ref(pobj, extend_of=False) if pobj is not None else None
                if r is not None:
                    return f"{c.lower_} {' '.join(r.text.split()[:4])}"
        for c in verb.children:
            if c.dep_ == "xcomp" and c.pos_ == "VERB" and any(a.lower_ == "to" for a in c.children):
                inner = self.clause_event(c, with_subject=False)
                if inner:
                    return f"to {inner}"
            if c.dep_ == "ccomp":
                inner = self.clause_event(c)
                if inner:
                    return inner
        return ""

    def triple(
        self,
        kind: TripleType,
        subj: _Ref | str,
        pred: str,
        obj: _Ref | str,
        conf: float,
        subject_kind: NodeKind | None = None,
        object_kind: NodeKind | None = None,
    ) -> Triple | None:
        s = subj.text if isinstance(subj, _Ref) else subj
        o = obj.text if isinstance(obj, _Ref) else obj
        s, o, pred = _clean(s), _clean(o), " ".join(pred.split())
        if not s or not o or not pred or s.casefold() == o.casefold():
            return None
        return Triple(
            type=kind,
            subject=s,
            predicate=pred,
            object=o,
            subject_kind=subject_kind or (subj.kind if isinstance(subj, _Ref) else "event"),
            object_kind=object_kind or (obj.kind if isinstance(obj, _Ref) else "event"),
            confidence=conf,
            chunk_index=self.chunk_index,
        )


def _with_conjuncts(tok: Token) -> list[Token]:
    return [tok, *(c for c in tok.conjuncts if c.pos_ in ("NOUN", "PROPN", "PRON") or c.ent_type_)]


def _pobj(prep: Token | None) -> Token | None:
    if prep is None:
        return None
    return next((c for c in prep.children if c.dep_ == "pobj"), None)


def _place(r: _Ref) -> bool:
    return r.label in ("GPE", "LOC", "FAC")


# -- ENTITY_ENTITY ----------------------------------------------------------------------------


def _entity_entity(p: _Parsed) -> list[Triple]:
    out: list[Triple | None] = []
    for verb in p.doc:
        if verb.pos_ != "VERB" or verb.lemma_ in ("be", "have") or verb.lemma_ in _LINKING_VERBS - {"become"}:
            continue
        subjects = [r for s in p.subjects(verb) if (r := p.ref(s, extend_of=False)) and r.kind == "entity"]
        neg_penalty = 0.1 if p.negated(verb) else 0.0
        agent = next((c for c in verb.children if c.dep_ == "agent"), None)
        if agent is not None and p.is_passive(verb):
            # "X was struck by Y" states the fact (Y, strike, X).
            pred = " ".join(x for x in (p.negated(verb), verb.lemma_.lower()) if x)
            agents = [r for t in _with_conjuncts(_pobj(agent) or agent) if (r := p.ref(t)) and r.kind == "entity"]
            for a in agents:
                for s in subjects:
                    if a.named or s.named:
                        out.append(p.triple(TripleType.ENTITY_ENTITY, a, pred, s, _conf(0.85 - neg_penalty, a, s)))
            continue
        if not subjects:
            continue
        objects: list[tuple[str, _Ref, float]] = []
        dobj = next((c for c in verb.children if c.dep_ == "dobj"), None)
        for c in verb.children:
            if c.dep_ in ("dobj", "dative"):
                for t in _with_conjuncts(c):
                    r = p.ref(t)
                    if r is not None and r.kind == "entity":
                        objects.append((p.predicate(verb), r, 0.9))
            elif c.dep_ == "prep":
                pobj = _pobj(c)
                if pobj is None:
                    continue
                # "offered his chair to Marie" reads better as "offer chair to" than "offer to".
                carried = dobj if dobj is not None and dobj.pos_ == "NOUN" and dobj.i not in p.ent_at else None
                pred = p.predicate(verb, c, carried)
                for t in _with_conjuncts(pobj):
                    r = p.ref(t)
                    if r is None or r.kind != "entity":
                        continue
                    # Circumstantial prepositions with a common noun are rarely a relation.
                    if r.quality == "noun" and c.lower_ in _LOOSE_PREPS:
                        continue
                    objects.append((pred, r, 0.85))
        for s in subjects:
            for pred, o, base in objects:
                if s.named or o.named:
                    out.append(p.triple(TripleType.ENTITY_ENTITY, s, pred, o, _conf(base - neg_penalty, s, o)))
    out.extend(_appositions(p))
    return [t for t in out if t is not None]


def _appositions(p: _Parsed) -> list[Triple | None]:
    """'Svante Arrhenius, a member of the committee' and 'Her father, Władysław Skłodowski'."""
    out: list[Triple | None] = []
    for tok in p.doc:
        if tok.dep_ != "appos":
            continue
        for name_tok, role_tok in ((tok.head, tok), (tok, tok.head)):
            if role_tok.pos_ != "NOUN" or role_tok.i in p.ent_at:
                continue
            name = p.ref(name_tok, allow_noun=False, extend_of=False)
            if name is None:
                continue
            owner: _Ref | None = None
            for c in role_tok.children:
                if c.dep_ == "poss":
                    owner = p.ref(c, extend_of=False)
                elif c.dep_ == "prep" and c.lower_ == "of" and (o := _pobj(c)) is not None:
                    owner = p.ref(o, extend_of=False)
            if owner is None:
                continue
            mods = [c.lower_ for c in role_tok.lefts if c.dep_ in ("amod", "compound")]
            pred = " ".join([*mods, role_tok.lemma_.lower(), "of"])
            out.append(p.triple(TripleType.ENTITY_ENTITY, name, pred, owner, _conf(0.85, name, owner)))
            break
    return out


# -- ENTITY_EVENT -----------------------------------------------------------------------------


def _entity_event(p: _Parsed) -> list[Triple]:
    out: list[Triple | None] = []
    for verb in p.doc:
        if verb.pos_ != "VERB":
            continue
        lemma = verb.lemma_.lower()
        subjects = [r for s in p.subjects(verb) if (r := p.ref(s, named_only=True)) and r.kind == "entity"]
        if lemma not in _STATIVE and lemma not in _EMOTION_VERBS and p.realised(verb) and subjects:
            out.extend(_clause_roles(p, verb, subjects))
        # Eventive nouns: "won the Nobel Prize", "awarded the prize to X", "stood for election".
        for c in verb.children:
            if c.dep_ == "dobj":
                ev = p.ref(c)
                if ev is None or (ev.kind != "event" and c.lemma_.lower() not in _EVENTIVE_NOUNS):
                    continue
                ev = _Ref(ev.text, ev.quality, "event")
                if lemma in _GIVE_VERBS:
                    # "awarded the prize to X" and "awarded X the prize".
                    heads = [_pobj(x) for x in verb.children if x.dep_ == "prep" and x.lower_ == "to"]
                    heads += [x for x in verb.children if x.dep_ == "dative"]
                    recipients = [t for h in heads if h is not None for t in _with_conjuncts(h)]
                    for t in recipients:
                        r = p.ref(t, named_only=True)
                        if r is not None:
                            out.append(p.triple(TripleType.ENTITY_EVENT, r, "recipient of", ev, _conf(0.85, r)))
                    for s in subjects:
                        out.append(p.triple(TripleType.ENTITY_EVENT, s, "organiser of", ev, _conf(0.8, s)))
                else:
                    role = _OBJECT_EVENT_ROLE.get(lemma, "participant in")
                    for s in subjects:
                        out.append(p.triple(TripleType.ENTITY_EVENT, s, role, ev, _conf(0.8, s)))
            elif c.dep_ == "prep" and c.lower_ in _PARTICIPATION_PREPS and (o := _pobj(c)) is not None:
                ev = p.ref(o)
                if ev is None or ev.kind != "event":
                    continue
                role = "recipient of" if lemma in ("receive", "win", "accept") else "participant in"
                for s in subjects:
                    out.append(p.triple(TripleType.ENTITY_EVENT, s, role, ev, _conf(0.7, s)))
    # "Pierre's death", "her election": the owner is the one it happened to.
    for tok in p.doc:
        if tok.pos_ != "NOUN" or tok.lemma_.lower() not in _EVENTIVE_NOUNS or tok.i in p.ent_at:
            continue
        for c in tok.children:
            if c.dep_ == "poss" and (owner := p.ref(c, named_only=True)) is not None:
                ev_text = p.noun_text(tok)
                out.append(
                    p.triple(
                        TripleType.ENTITY_EVENT, owner, "subject of", ev_text, _conf(0.75, owner), object_kind="event"
                    )
                )
    return [t for t in out if t is not None]


def _clause_roles(p: _Parsed, verb: Token, subjects: list[_Ref]) -> list[Triple | None]:
    """The clause as an event node, linked to its named subject, objects and places."""
    event = p.clause_event(verb)
    if not event:
        return []
    lemma = verb.lemma_.lower()
    out: list[Triple | None] = []
    role = "subject of" if p.is_passive(verb) else "agent of"
    harm = lemma in _HARM_VERBS
    for s in subjects:
        if role == "agent of" and harm:
            out.append(p.triple(TripleType.ENTITY_EVENT, s, "agent of", event, _conf(0.8, s), object_kind="event"))
        else:
            out.append(p.triple(TripleType.ENTITY_EVENT, s, role, event, _conf(0.75, s), object_kind="event"))
    for c in verb.children:
        targets: list[tuple[Token, str]] = []
        if c.dep_ in ("dobj", "dative"):
            default = "recipient of" if c.dep_ == "dative" else "affected by" if harm else "participant in"
            targets = [(t, default) for t in _with_conjuncts(c)]
        elif c.dep_ == "prep" and (o := _pobj(c)) is not None and c.lower_ not in _LOOSE_PREPS:
            default = "recipient of" if c.lower_ == "to" and lemma in _GIVE_VERBS else "participant in"
            targets = [(t, default) for t in _with_conjuncts(o)]
        for t, default in targets:
            r = p.ref(t, named_only=True)
            if r is None or r.kind != "entity" or any(r.text == s.text for s in subjects):
                continue
            if t.lemma_.lower() in _EVENTIVE_NOUNS:
                continue
            obj_role = "location of" if _place(r) else default
            out.append(p.triple(TripleType.ENTITY_EVENT, r, obj_role, event, _conf(0.7, r), object_kind="event"))
    return out


# -- EVENT_EVENT ------------------------------------------------------------------------------


def _event_event(p: _Parsed) -> list[Triple]:
    out: list[Triple | None] = []

    def link(a: str | None, pred: str, b: str | None, conf: float) -> None:
        if a and b:
            out.append(p.triple(TripleType.EVENT_EVENT, a, pred, b, round(min(conf, 1.0), 3)))

    prev_root_event: str | None = None
    for sent in p.doc.sents:
        for tok in sent:
            if tok.dep_ == "advcl":
                # The parser labels "when" advmod, "because"/"after" mark.
                mark = next((c for c in tok.children if c.dep_ in ("mark", "advmod") and c.lower_ in _MARK_LINKS), None)
                if mark is not None:
                    pred, conf = _MARK_LINKS[mark.lower_]
                    link(p.clause_event(tok.head), pred, p.clause_event(tok), conf)
            elif tok.dep_ == "prep" and tok.lower_ in ("because", "due", "owing"):
                # "because of the war": the multi-word preposition hangs "of" under "because".
                of = next((c for c in tok.children if c.lower_ == "of" or c.lower_ == "to"), None)
                ev = p.ref(_pobj(of)) if of is not None and _pobj(of) is not None else None
                if ev is not None and tok.head.pos_ in ("VERB", "AUX"):
                    link(p.clause_event(tok.head), "caused by", ev.text, _conf(0.85, ev))
            elif tok.dep_ == "prep" and tok.lower_ in _PREP_LINKS and tok.head.pos_ in ("VERB", "AUX"):
                pobj = _pobj(tok)
                if pobj is None:
                    continue
                ent = p.ent_at.get(pobj.i)
                if pobj.lemma_.lower() in _EVENTIVE_NOUNS or (ent is not None and ent.label_ == "EVENT"):
                    ev = p.ref(pobj)
                    pred, conf = _PREP_LINKS[tok.lower_]
                    if ev is not None:
                        link(p.clause_event(tok.head), pred, ev.text, conf)
            elif tok.pos_ == "VERB" and tok.lemma_.lower() in _CAUSAL_VERBS:
                _causal_verb(p, tok, link)
            elif tok.pos_ == "VERB" and tok.lemma_.lower() == "attribute":
                dobj = next((c for c in tok.children if c.dep_ == "dobj"), None)
                to = next((c for c in tok.children if c.dep_ == "prep" and c.lower_ == "to"), None)
                cause = p.ref(_pobj(to)) if _pobj(to) is not None else None
                effect = p.ref(dobj) if dobj is not None else None
                if cause and effect:
                    link(effect.text, "caused by", cause.text, 0.7)
        # "X, so Y" / "X; therefore Y" / "As a result, Y" (then X is the previous sentence).
        for verb in sent:
            if verb.pos_ not in ("VERB", "AUX"):
                continue
            marker = next(
                (c for c in verb.children if c.lower_ in _RESULT_ADVERBS and c.dep_ in ("advmod", "cc")), None
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
                cause = p.clause_event(verb.head)
            elif earlier_ccomp is not None:
                cause = p.clause_event(earlier_ccomp)
            elif verb.dep_ == "ROOT":
                cause = prev_root_event
            link(cause, "causes", p.clause_event(verb), 0.8 if verb.dep_ != "ROOT" else 0.7)
        # What a following "As a result" points back to: the sentence's last main clause.
        last = sent.root
        while (conjs := [c for c in last.children if c.dep_ == "conj" and c.pos_ in ("VERB", "AUX")]):
            last = conjs[-1]
        prev_root_event = p.clause_event(last) or p.clause_event(sent.root)
    return [t for t in out if t is not None]


def _causal_verb(p: _Parsed, verb: Token, link: Callable[[str | None, str, str | None, float], None]) -> None:
    """'X led to Y', 'X caused Y', 'Y, which X had caused', 'X resulted in Y'."""
    lemma = verb.lemma_.lower()
    prep_word = _CAUSAL_VERBS[lemma]

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
                return p.clause_event(head.head)
            r = p.ref(head)
            return r.text if r else None
        r = p.ref(tok)
        if r is None or r.quality != "noun":
            return None
        return r.text

    subj = next((c for c in verb.children if c.dep_ == "nsubj"), None)
    passive_subj = next((c for c in verb.children if c.dep_ == "nsubjpass"), None)
    if prep_word:
        obj = _pobj(next((c for c in verb.children if c.dep_ == "prep" and c.lower_ == prep_word), None))
        if obj is None and lemma == "lead":
            # "led physicists to study the atom": the effect is the infinitive clause.
            xc = next((c for c in verb.children if c.dep_ in ("xcomp", "ccomp")), None)
            if xc is not None:
                link(node(subj), "causes", p.clause_event(xc), 0.7)
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
        link(node(_pobj(agent)), "causes", node(passive_subj), 0.8)
        return
    link(node(subj), "causes", node(obj), 0.8)


# -- EMOTIONAL_CONTEXT ------------------------------------------------------------------------


def _emotional_context(p: _Parsed) -> list[Triple]:
    out: list[Triple | None] = []
    for tok in p.doc:
        low = tok.lower_
        if tok.pos_ == "VERB" and tok.lemma_.lower() in _EMOTION_VERBS and low not in _EMOTION_ADJECTIVES:
            out.extend(_emotion_verb(p, tok))
        elif low in _EMOTION_ADJECTIVES and tok.pos_ in ("ADJ", "VERB"):
            out.extend(_emotion_adjective(p, tok))
    return [t for t in out if t is not None]


def _emotion_verb(p: _Parsed, verb: Token) -> list[Triple | None]:
    pred, felt, emotion = _EMOTION_VERBS[verb.lemma_.lower()]
    holders = [r for s in p.subjects(verb) if (r := p.ref(s, extend_of=False)) and r.kind == "entity"]
    targets: list[tuple[_Ref | str, NodeKind]]
    if p.is_passive(verb):
        # "was criticised by X": the agent holds the attitude, the subject is its target.
        targets = [(r, r.kind) for r in holders]
        agent = _pobj(next((c for c in verb.children if c.dep_ == "agent"), None))
        holders = []
        if agent is not None:
            holders = [r for t in _with_conjuncts(agent) if (r := p.ref(t)) and r.kind == "entity"]
    else:
        targets = _emotion_targets(p, verb)
    neg = p.negated(verb)
    out: list[Triple | None] = []
    for h in holders:
        if not neg:
            out.append(p.triple(TripleType.EMOTIONAL_CONTEXT, h, felt, emotion, _conf(0.75, h), object_kind="emotion"))
        for target, kind in targets:
            out.append(
                p.triple(
                    TripleType.EMOTIONAL_CONTEXT,
                    h,
                    f"{neg} {pred}" if neg else pred,
                    target,
                    _conf(0.8 if kind == "entity" else 0.75, h),
                    object_kind=kind,
                )
            )
    return out


def _emotion_adjective(p: _Parsed, tok: Token) -> list[Triple | None]:
    """'was proud of', 'felt lonely and frustrated', 'was devastated by his death'."""
    anchor = tok
    while anchor.dep_ == "conj":
        anchor = anchor.head
    if anchor.dep_ in ("acomp", "oprd") and anchor.head.lemma_ in _LINKING_VERBS:
        verb = anchor.head
    elif tok.pos_ == "VERB" and p.is_passive(tok):
        verb = tok
    else:
        return []
    if p.negated(verb) or p.negated(tok):
        return []
    holders = [r for s in p.subjects(verb) if (r := p.ref(s, extend_of=False)) and r.kind == "entity"]
    low = tok.lower_
    out: list[Triple | None] = []
    for h in holders:
        emotion = _EMOTION_ADJECTIVES[low]
        out.append(p.triple(TripleType.EMOTIONAL_CONTEXT, h, "felt", emotion, _conf(0.8, h), object_kind="emotion"))
        for c in tok.children:
            if c.dep_ in ("prep", "agent") and (o := _pobj(c)) is not None and (target := p.ref(o)) is not None:
                out.append(p.triple(TripleType.EMOTIONAL_CONTEXT, h, f"{low} {c.lower_}", target, _conf(0.75, h)))
            elif c.dep_ in ("ccomp", "xcomp") and (ev := p.clause_event(c)):
                out.append(
                    p.triple(TripleType.EMOTIONAL_CONTEXT, h, f"{low} about", ev, _conf(0.7, h), object_kind="event")
                )
    return out


def _emotion_targets(p: _Parsed, verb: Token) -> list[tuple[_Ref | str, NodeKind]]:
    targets: list[tuple[_Ref | str, NodeKind]] = []
    for c in verb.children:
        if c.dep_ == "dobj":
            for t in _with_conjuncts(c):
                r = p.ref(t)
                if r is not None:
                    targets.append((r, r.kind))
        elif c.dep_ == "prep" and c.lower_ in ("for", "about", "of", "at", "over") and (o := _pobj(c)) is not None:
            r = p.ref(o)
            if r is not None:
                targets.append((r, r.kind))
        elif c.dep_ in ("ccomp", "xcomp") and (ev := p.clause_event(c, with_subject=c.dep_ == "ccomp")):
            targets.append((ev, "event"))
    return targets


# -- the extractor ----------------------------------------------------------------------------

# Looked up at call time, so a test can replace one pass.
PASSES: dict[TripleType, Callable[[_Parsed], list[Triple]]] = {
    TripleType.ENTITY_ENTITY: _entity_entity,
    TripleType.ENTITY_EVENT: _entity_event,
    TripleType.EVENT_EVENT: _event_event,
    TripleType.EMOTIONAL_CONTEXT: _emotional_context,
}


def _dedupe(triples: list[Triple]) -> list[Triple]:
    best: dict[tuple[Any, ...], Triple] = {}
    for t in triples:
        key = (t.type, t.subject, t.predicate, t.object, t.subject_kind, t.object_kind)
        if key not in best or t.confidence > best[key].confidence:
            best[key] = t
    return list(best.values())


_HEADING = re.compile(r"^[ \t]*=+[^=\n]*=+[ \t]*$", re.MULTILINE)


def _mask_headings(text: str) -> str:
    """Blank out headings and titles (same length, offsets kept).

    A title glued to the first sentence of its section ("== Pierre's Death == On 19 April ...")
    parses as one sentence and yields nonsense subjects.
    """
    text = _HEADING.sub(lambda m: " " * len(m.group()), text)
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


class SpacyExtractor:
    """Rule-based extraction over a spaCy parse; deterministic, offline, free."""

    name = "offline-spacy"

    def __init__(self, model: str = DEFAULT_MODEL) -> None:
        self.model = model  # loaded at the first parse, shared with every other user of the model

    def parse(self, text: str) -> Doc:
        return parse_text(load_spacy(self.model), _mask_headings(text))

    def extract(self, chunk: Chunk, types: Sequence[TripleType]) -> ChunkExtraction:
        wanted = list(dict.fromkeys(types))
        if not wanted:
            return ChunkExtraction()
        parsed = _Parsed(self.parse(chunk.text), chunk.index)

        def run(triple_type: TripleType) -> list[Triple]:
            return _dedupe([t for t in PASSES[triple_type](parsed) if t.type == triple_type])

        return run_types_concurrently(wanted, run)
