"""Word lists and tables the offline passes read; plain data, no spaCy needed to import.

Every entry changes what the rules produce: extend with care, and add a test for the new word.
"""

from __future__ import annotations

# Entity labels that are values rather than things; they never become graph nodes here.
VALUE_LABELS = frozenset({"DATE", "TIME", "PERCENT", "MONEY", "QUANTITY", "ORDINAL", "CARDINAL"})
SUBJ_DEPS = ("nsubj", "nsubjpass")
MALE = frozenset({"he", "him", "his", "himself"})
FEMALE = frozenset({"she", "her", "hers", "herself"})
# "X is a N of Y" says X belongs to Y with these nouns; with any other, Y owns X ("a division of Y").
MEMBERSHIP_NOUNS = frozenset(
    """part member type kind sort form variety example one piece unit national citizen resident
    native graduate alumnus student""".split()
)
# "the country of Denmark", "the city of Agra": the noun only classes the name that follows.
CLASS_NOUNS = frozenset(
    """city town village country state nation region county province district island river lake
    mountain municipality borough parish""".split()
)
RELATIVE = frozenset({"who", "whom", "which", "that"})
DANGLING = frozenset(
    {"of", "to", "in", "on", "at", "for", "with", "by", "from", "and", "or", "the", "a", "an", "that", "into"}
)
NEGATIVE_SUBJECTS = frozenset({"nobody", "nothing", "none", "noone", "neither"})
PERSON_NOUNS = frozenset(
    """daughter son sister brother mother father wife husband widow friend cousin uncle aunt
    physicist chemist scientist mathematician engineer physician doctor journalist president
    professor student colleague teacher assistant author writer king queen""".split()
)
MALE_CUES = frozenset(
    """mr mr. sir king lord monsieur prince father son brother husband uncle nephew widower""".split()
)
FEMALE_CUES = frozenset(
    """mrs mrs. ms ms. miss madame lady queen princess mother daughter sister wife aunt niece widow""".split()
)

# Verbs that describe a state, not something that happened: no event node for them.
STATIVE = frozenset(
    """be have belong contain seem appear know believe think remain own want need like love
    consist depend include mean resemble deserve exist matter lack hold suppose wonder do feel""".split()
)

# Nouns that name happenings; extend with care, every entry makes noun phrases events.
EVENTIVE_NOUNS = frozenset(
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
OBJECT_EVENT_ROLE = {
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
GENERIC_NOUNS = frozenset(
    """time end turn result part rest middle way place house age year day week month moment
    honour honor course side point fact kind sort lot number deal case thing one spring summer
    autumn winter evening night morning period decade century while""".split()
)
# Prepositions that mostly give circumstances (when, why, how long), not a relation.
# "contains X as an ingredient": with these verbs the "as" class names the relation; with others
# it describes the object ("celebrated Marie as a heroine").
POSSESSION_VERBS = frozenset({"have", "contain", "include", "require"})
# "95 metres tall" states a height: the adjective of a measure and the dimension it names.
DIMENSION_ADJECTIVES = {
    "long": "length", "tall": "height", "high": "height", "wide": "width", "deep": "depth",
    "thick": "thickness", "old": "age",
}
LOOSE_PREPS = frozenset(
    {"for", "by", "over", "after", "before", "during", "until", "since", "through", "without",
     "throughout", "despite", "within", "than", "like", "because", "about"}
)
HARM_VERBS = frozenset(
    """strike kill injure wound attack hit arrest exile expel banish defeat invade occupy capture
    destroy damage suppress ban imprison execute murder shoot bomb""".split()
)
GIVE_VERBS = frozenset({"award", "give", "grant", "present", "offer", "hand", "confer"})
PARTICIPATION_PREPS = frozenset({"in", "during", "at", "into", "to", "from"})

# Emotion verbs: lemma -> (predicate toward the target, "felt"/"expressed", emotion noun).
EMOTION_VERBS: dict[str, tuple[str, str, str]] = {
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
EMOTION_ADJECTIVES = {
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

LINKING_VERBS = frozenset({"be", "feel", "become", "seem", "remain", "grow", "look", "appear", "get"})

# (connective, predicate linking the main clause to the marked clause, confidence).
MARK_LINKS: dict[str, tuple[str, float]] = {
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
PREP_LINKS: dict[str, tuple[str, float]] = {
    "after": ("follows", 0.7),
    "following": ("follows", 0.7),
    "before": ("precedes", 0.7),
    "during": ("during", 0.7),
    "until": ("precedes", 0.6),
    "despite": ("contrasts with", 0.7),
}
RESULT_ADVERBS = frozenset({"so", "therefore", "thus", "consequently", "hence", "accordingly"})
# Causal verb lemma -> the preposition that introduces the effect (None: the direct object).
CAUSAL_VERBS = {
    "cause": None,
    "lead": "to",
    "result": "in",
    "trigger": None,
    "provoke": None,
    "prompt": None,
    "spark": None,
}

# -- anaphora of things (anaphora.py) ---------------------------------------------------------
# Pronouns for things: "it"/"its" never take a person; "they"/"their" prefer groups.
THING_PRONOUNS = frozenset({"it", "its", "itself"})
GROUP_PRONOUNS = frozenset({"they", "them", "their", "theirs", "themselves"})
# "the city", "this club", "that band": the determiners that point back to something named.
DESCRIPTION_DETERMINERS = frozenset({"the", "this", "that"})
_PLACE_LABELS = frozenset({"GPE", "LOC"})
_SITE_LABELS = frozenset({"FAC", "ORG", "LOC"})
_WORK_LABELS = frozenset({"PRODUCT", "WORK_OF_ART", "ORG"})
# Common noun -> entity labels it can stand for. Nouns in WORK_NOUNS also accept any other
# non-person label (the small model labels titles and vessels erratically), after these.
DESCRIPTION_LABELS: dict[str, frozenset[str]] = {
    **dict.fromkeys(
        """city town village capital country state nation region county province area
        municipality district kingdom republic island""".split(),
        _PLACE_LABELS,
    ),
    **dict.fromkeys(
        """club team company firm university college school party airline organisation
        organization institution council""".split(),
        frozenset({"ORG"}),
    ),
    **dict.fromkeys(["band", "group"], frozenset({"ORG", "NORP"})),
    **dict.fromkeys("airport stadium building bridge hotel museum station church castle palace".split(), _SITE_LABELS),
    **dict.fromkeys("ship car rocket aircraft book album song film novel dish".split(), _WORK_LABELS),
}
WORK_NOUNS = frozenset("ship car rocket aircraft book album song film novel dish".split())
