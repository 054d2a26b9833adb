"""Deduplication's pure rules: clustering candidate pairs into merges (union-find, then one
canonical row per cluster), and when two wordings cannot mean the same (negation, direction,
opposites)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable
from typing import TypeVar

from kg.graph import SimilarPair

K = TypeVar("K")


class UnionFind:
    def __init__(self) -> None:
        self.parent: dict[uuid.UUID, uuid.UUID] = {}

    def find(self, item: uuid.UUID) -> uuid.UUID:
        root = self.parent.setdefault(item, item)
        while root != self.parent[root]:
            root = self.parent[root]
        while item != root:  # path compression keeps later finds O(1)
            self.parent[item], item = root, self.parent[item]
        return root

    def union(self, a: uuid.UUID, b: uuid.UUID) -> None:
        root_a, root_b = self.find(a), self.find(b)
        if root_a != root_b:
            self.parent[max(root_a, root_b)] = min(root_a, root_b)

    def clusters(self) -> list[list[uuid.UUID]]:
        groups: dict[uuid.UUID, list[uuid.UUID]] = {}
        for item in self.parent:
            groups.setdefault(self.find(item), []).append(item)
        return [sorted(members) for members in groups.values() if len(members) > 1]


def plan_merges(
    pairs: Iterable[SimilarPair], rank: Callable[[uuid.UUID], K]
) -> list[tuple[uuid.UUID, uuid.UUID, float]]:
    """(kept, merged, similarity) for the members of each cluster of `pairs` that are themselves
    a candidate pair with the cluster's canonical member.

    Union-find alone links chains (A~B, B~C) whose ends may say different things; merging only the
    members close to the canonical one keeps a cluster from drifting. The canonical member is the
    one with the smallest `rank` key."""
    found = UnionFind()
    similarity: dict[tuple[uuid.UUID, uuid.UUID], float] = {}
    for pair in pairs:
        found.union(pair.a, pair.b)
        similarity[(pair.a, pair.b)] = similarity[(pair.b, pair.a)] = pair.similarity
    merges = []
    for members in found.clusters():
        kept = min(members, key=lambda m: (rank(m), m))
        merges.extend(
            (kept, member, round(similarity[(kept, member)], 6))
            for member in members
            if member != kept and (kept, member) in similarity
        )
    return merges


# -- when two triples may say the same thing ---------------------------------------------------------
#
# An embedding model places "presented" near "received", "won" near "did not win", "caused" near
# "caused by": vectors tell what a text is about, not which way it points. So a candidate pair found
# by its vectors merges only when its wordings also agree (docs/DESIGN.md, "Deduplication"):
#
# - negation agrees: "not", "no", "never", "n't", "cannot", "without", "neither", "nor" are in both
#   parts or in neither;
# - direction agrees: a passive "by" ("founded" / "founded by") or a relational "of" against a
#   possessive "has" ("member of" / "has member") in one predicate and not the other is a converse;
# - no word of one is the opposite of a word of the other: a curated list of antonyms and converses
#   (gave/took, bought/sold, before/after, employer/employee, ...), words that differ by a negating
#   prefix (agree/disagree, like/dislike, able/unable) or by opposing prefixes (increase/decrease,
#   import/export, include/exclude, overestimate/underestimate), and -er/-ee pairs (payer/payee).
#
# Words are compared by stem (lower case, inflection stripped, irregular verbs mapped to their base),
# so "gave" meets "take" and "sold" meets "buys". What is left after these checks is equal wording
# or a synonym by the store's test (the parts' own vectors are close, or one contains the other).

_NEGATIONS = frozenset({"not", "no", "never", "cannot", "without", "neither", "nor", "nobody", "nothing",
                        "none", "nowhere"})
_CONTRACTIONS = {"won't": "will not", "can't": "can not", "cannot": "can not", "shan't": "shall not"}
# Auxiliaries and articles change neither meaning nor direction ("was awarded" / "awarded").
_FILLER = frozenset({"a", "an", "the", "be", "is", "am", "are", "was", "were", "been", "being", "do", "does",
                     "did", "will", "would", "shall", "should", "can", "could", "may", "might", "must"})
_HAVE = frozenset({"has", "have", "had", "having"})

# Irregular forms -> base form (then stemmed like any other word).
_IRREGULAR = {
    "arose": "arise", "arisen": "arise", "ate": "eat", "eaten": "eat", "beat": "beat", "beaten": "beat",
    "became": "become", "began": "begin", "begun": "begin", "bent": "bend", "bet": "bet", "bit": "bite",
    "bitten": "bite", "bled": "bleed", "blew": "blow", "blown": "blow", "bore": "bear", "born": "bear",
    "borne": "bear", "bought": "buy", "bound": "bind", "broke": "break", "broken": "break", "brought": "bring",
    "built": "build", "burnt": "burn", "caught": "catch", "chose": "choose", "chosen": "choose", "came": "come",
    "clung": "cling", "crept": "creep", "dealt": "deal", "dug": "dig", "did": "do", "done": "do", "drew": "draw",
    "drawn": "draw", "drank": "drink", "drunk": "drink", "drove": "drive", "driven": "drive", "fed": "feed",
    "fell": "fall", "fallen": "fall", "felt": "feel", "fought": "fight", "found": "find", "fled": "flee",
    "flew": "fly", "flown": "fly", "forbade": "forbid", "forbidden": "forbid", "forgot": "forget",
    "forgotten": "forget", "forgave": "forgive", "forgiven": "forgive", "froze": "freeze", "frozen": "freeze",
    "got": "get", "gotten": "get", "gave": "give", "given": "give", "went": "go", "gone": "go", "grew": "grow",
    "grown": "grow", "hung": "hang", "had": "have", "has": "have", "heard": "hear", "hid": "hide",
    "hidden": "hide", "held": "hold", "kept": "keep", "knew": "know", "known": "know", "laid": "lay",
    "led": "lead", "left": "leave", "lent": "lend", "lost": "lose", "made": "make", "meant": "mean",
    "met": "meet", "paid": "pay", "proved": "prove", "proven": "prove", "ran": "run", "rang": "ring",
    "rung": "ring", "rode": "ride", "ridden": "ride", "rose": "rise", "risen": "rise", "said": "say",
    "sang": "sing", "sung": "sing", "sank": "sink", "sunk": "sink", "sat": "sit", "saw": "see", "seen": "see",
    "sought": "seek", "sold": "sell", "sent": "send", "shook": "shake", "shaken": "shake", "shone": "shine",
    "shot": "shoot", "showed": "show", "shown": "show", "shrank": "shrink", "shrunk": "shrink", "slept": "sleep",
    "slid": "slide", "spoke": "speak", "spoken": "speak", "spent": "spend", "spun": "spin", "stood": "stand",
    "stole": "steal", "stolen": "steal", "struck": "strike", "stricken": "strike", "strove": "strive",
    "swore": "swear", "sworn": "swear", "swept": "sweep", "swam": "swim", "swum": "swim", "took": "take",
    "taken": "take", "taught": "teach", "tore": "tear", "torn": "tear", "told": "tell", "thought": "think",
    "threw": "throw", "thrown": "throw", "understood": "understand", "woke": "wake", "woken": "wake",
    "wore": "wear", "worn": "wear", "won": "win", "wrote": "write", "written": "write", "withdrew": "withdraw",
    "withdrawn": "withdraw", "overcame": "overcome", "undertook": "undertake", "undertaken": "undertake",
    "died": "die", "dies": "die", "dying": "die", "goes": "go", "does": "do", "children": "child",
    "men": "man", "women": "woman", "better": "good", "best": "good", "worse": "bad", "worst": "bad",
}

# Opposites and converses, as base forms. A pair stands for every inflection of its words.
_OPPOSITES_TEXT = """
give take; give receive; present receive; send receive; offer receive; award receive; grant receive;
pay receive; lend borrow; donate receive; sell buy; sell purchase; sell acquire; import export;
win lose; defeat lose; beat lose; gain lose; succeed fail; pass fail; win fail;
increase decrease; increase reduce; increase cut; increase lower; increase drop; increase decline;
rise fall; rise drop; rise decline; rise sink; raise lower; raise cut; grow shrink; expand shrink;
expand contract; gain drop; strengthen weaken; improve worsen; accelerate decelerate; inflate deflate;
open close; open shut; start end; start finish; start stop; begin end; begin finish; begin stop;
launch end; create destroy; build destroy; build demolish; founded dissolved; founded closed;
enter leave; enter exit; arrive leave; arrive depart; join leave; join quit; hire fire; hire dismiss;
employ dismiss; appoint dismiss; elect defeat; promote demote; marry divorce; bear die; live die;
birth death; love hate; like hate; admire despise; praise criticize; praise blame; praise condemn;
reward punish; support oppose; support attack; attack defend; defend attack; accept reject; accept refuse;
accept decline; approve reject; approve veto; allow forbid; allow prohibit; allow ban; permit forbid;
permit prohibit; permit ban; confirm deny; admit deny; affirm deny; prove disprove; include exclude;
add remove; add subtract; add delete; attach detach; connect separate; unite divide; merge split;
remember forget; appear vanish; push pull; teach learn; lead follow; precede follow; command obey;
cause prevent; enable prevent; help hinder; help harm; help hurt; protect harm; protect endanger;
save kill; win concede; ascend descend; import export; maximize minimize;
before after; earlier later; early late; first last; above below; over under; up down; in out;
inside outside; into out; to from; toward away; with without; for against; pro anti; on off;
more less; more fewer; most least; higher lower; high low; larger smaller; large small; big small;
bigger smaller; greater lesser; greater smaller; long short; longer shorter; good bad; true false;
positive negative; success failure; victory defeat; profit loss; gain loss; win loss; friend enemy;
ally enemy; ally rival; north south; east west; upper lower; past future; old new; old young;
parent child; father son; father daughter; mother son; mother daughter; husband wife; teacher student;
teacher pupil; mentor protege; master servant; master apprentice; employer employee; buyer seller;
seller customer; seller purchaser; sender recipient; sender receiver; giver recipient; donor recipient;
agent recipient; agent patient; cause effect; cause result; predecessor successor; ancestor descendant;
leader follower; winner loser; host guest; lender borrower; landlord tenant; creditor debtor;
superior subordinate; owner property; supplier customer; provider client; attacker defender;
victim perpetrator; plaintiff defendant; prosecutor defendant; predator prey; source target;
origin destination; input output; whole part; container content; author reader
"""

# Prefixes that negate the rest of a word, and pairs of prefixes that oppose each other.
_NEGATING_PREFIXES = ("un", "dis", "non", "in", "im", "il", "ir", "mis", "anti", "de", "counter")
_OPPOSED_PREFIXES = (("in", "de"), ("in", "ex"), ("im", "ex"), ("in", "out"), ("over", "under"), ("up", "down"),
                     ("pre", "post"), ("as", "des"), ("en", "dis"), ("max", "min"), ("sub", "super"),
                     ("pro", "anti"), ("inter", "intra"), ("ac", "de"))
_MIN_ROOT = 3  # a shared remainder shorter than this is a coincidence ("in" + "n")


def stem(word: str) -> str:
    """An inflection-free key for a word: lower case, irregular forms mapped to their base, then the
    regular suffixes (-s, -es, -ies, -ed, -ied, -ing) and a final -e stripped, a doubled consonant
    undone ("stopped", "stops", "stop" -> "stop"; "received", "receive" -> "receiv")."""
    w = _IRREGULAR.get(word.lower(), word.lower())
    for suffix, replacement in (("ies", "y"), ("ied", "y"), ("sses", "ss"), ("ing", ""), ("ed", ""), ("es", "e"),
                                ("s", "")):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3 and not (suffix == "s" and w.endswith("ss")):
            w = w[: len(w) - len(suffix)] + replacement
            break
    if len(w) > 3 and w.endswith("e"):
        w = w[:-1]
    if len(w) > 3 and w[-1] == w[-2] and w[-1] not in "aeiouls":
        w = w[:-1]  # stopp -> stop, but keep "fall", "pass"
    return w


def _opposite_pairs(text: str) -> frozenset[frozenset[str]]:
    pairs = set()
    for entry in text.replace("\n", " ").split(";"):
        words = entry.split()
        if len(words) == 2:
            pairs.add(frozenset((stem(words[0]), stem(words[1]))))
    return frozenset(pairs)


_OPPOSITES = _opposite_pairs(_OPPOSITES_TEXT)


def words(text: str) -> list[str]:
    """Lower-case words, contractions spelled out ("didn't" -> "did not")."""
    text = text.lower().replace("’", "'")
    for contraction, full in _CONTRACTIONS.items():
        text = text.replace(contraction, full)
    text = text.replace("n't", " not")
    return re.findall(r"[a-z]+(?:'[a-z]+)?", text)


def negated(text: str) -> bool:
    return any(w in _NEGATIONS for w in words(text))


def opposed(a: str, b: str) -> bool:
    """Whether two words are opposites or converses: listed, or by prefix, or -er/-ee."""
    wa, wb = a.lower(), b.lower()
    sa, sb = stem(wa), stem(wb)
    if sa == sb:
        return False
    if frozenset((sa, sb)) in _OPPOSITES:
        return True
    for x, y in ((sa, sb), (sb, sa)):
        if any(x == p + y and len(y) >= _MIN_ROOT for p in _NEGATING_PREFIXES):
            return True
        for p, q in _OPPOSED_PREFIXES:
            if x.startswith(p) and y.startswith(q) and x[len(p):] == y[len(q):] and len(x) - len(p) >= _MIN_ROOT:
                return True
    for x, y in ((wa, wb), (wb, wa)):  # employer / employee, mentor / mentee
        for agent in ("er", "or"):
            if x.endswith(agent) and y.endswith("ee") and x[:-2] == y[:-2] and len(x) - 2 >= _MIN_ROOT:
                return True
    return False


def _content(text: str) -> list[str]:
    return [w for w in words(text) if w not in _FILLER and w not in _NEGATIONS]


def wordings_conflict(a: str, b: str) -> str | None:
    """Why two wordings of one part (a subject, an object) cannot mean the same, or None."""
    if negated(a) != negated(b):
        return "negation"
    only_a = sorted(set(_content(a)) - set(_content(b)))
    only_b = sorted(set(_content(b)) - set(_content(a)))
    for x in only_a:
        for y in only_b:
            if opposed(x, y):
                return f"opposites ({x} / {y})"
    return None


def predicates_conflict(a: str, b: str) -> str | None:
    """Why two predicates cannot state the same relation in the same direction, or None."""
    why = wordings_conflict(a, b)
    if why:
        return why
    wa, wb = words(a), words(b)
    if ("by" in wa) != ("by" in wb):
        return "direction (passive 'by')"
    of_a, of_b = bool(wa) and wa[-1] == "of", bool(wb) and wb[-1] == "of"
    has_a, has_b = bool(wa) and wa[0] in _HAVE and len(wa) > 1, bool(wb) and wb[0] in _HAVE and len(wb) > 1
    if (of_a and has_b) or (of_b and has_a):
        return "direction ('of' / 'has')"
    return None


def triples_conflict(a: tuple[str, str, str], b: tuple[str, str, str]) -> str | None:
    """Why two (subject, predicate, object) wordings are different facts, or None: their predicates
    conflict (negation, direction, opposites), or their subjects or objects do (negation, opposites:
    "prices rose" / "prices fell")."""
    return (predicates_conflict(a[1], b[1]) or wordings_conflict(a[0], b[0]) or wordings_conflict(a[2], b[2]))
