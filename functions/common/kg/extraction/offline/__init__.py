"""The offline extractor: spaCy's dependency parse plus small lexicons, no network, no LLM.

Each chunk is parsed once (headings and bare title lines blanked first, so they do not fuse
with the next sentence); the four passes then read the same `Parsed` on their own threads
through `run_types_concurrently`, so a pass that raises costs only its own type.

Where things live
-----------------
`entity_entity`, `entity_event`, `event_event`, `emotional`
    One module per triple type; each `extract(p: Parsed) -> list[Triple]`, and its docstring
    says what the pass produces.
`copula`, `fallback`
    The rest of ENTITY_ENTITY: facts stated with "be" and "have" (relational nouns from owner to
    value, "is a", values with units), and ReVerb's relation-phrase pattern for the sentences
    whose parse the clause rules could not use.
`parsed`
    `Parsed`: the doc plus the shared lookups (`ent_at`, `chunk_at`, `ref` for names, values and
    noun phrases, `noun_text`, `triple`).
`clauses`
    Grammar of a token or verb: subjects, voice, negation, predicate, `clause_event` (the phrase
    naming what a clause says happened; ENTITY_EVENT and EVENT_EVENT build it the same way).
`pronouns`, `anaphora`
    People named in the chunk and the he/she/him/her/his -> name map; it/its/they/their and
    definite descriptions ("the city", "the club") -> the named thing they stand for.
`text`
    Phrase cleaning (trimmed to MAX_PHRASE_TOKENS words), `Ref`, confidence, heading masking, dedupe.
`lexicons`
    Every word list and table.

Confidence is a heuristic score, not a probability: it starts from how explicit the pattern is
(a subordinating "because" beats a bare "when") and drops for each end that is only a common
noun phrase or a pronoun resolved by a cheap heuristic (recent person of a compatible gender,
preferring subjects and the current paragraph; gender learnt from the chunk itself).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from kg.extraction import run_types_concurrently
from kg.extraction.offline import emotional, entity_entity, entity_event, event_event
from kg.extraction.offline.parsed import Parsed
from kg.extraction.offline.text import MAX_PHRASE_TOKENS, dedupe, mask_headings
from kg.models import Chunk, ChunkExtraction, Triple, TripleType
from kg.nlp import DEFAULT_MODEL, load_spacy, parse_text

if TYPE_CHECKING:  # spaCy is an optional dependency (the `local` extra)
    from spacy.tokens import Doc

__all__ = ["MAX_PHRASE_TOKENS", "PASSES", "SpacyExtractor"]

# Looked up at call time, so a test can replace one pass.
PASSES: dict[TripleType, Callable[[Parsed], list[Triple]]] = {
    TripleType.ENTITY_ENTITY: entity_entity.extract,
    TripleType.ENTITY_EVENT: entity_event.extract,
    TripleType.EVENT_EVENT: event_event.extract,
    TripleType.EMOTIONAL_CONTEXT: emotional.extract,
}


class SpacyExtractor:
    """Rule-based extraction over a spaCy parse; deterministic, offline, free."""

    name = "offline-spacy"

    def __init__(self, model: str = DEFAULT_MODEL) -> None:
        self.model = model  # loaded at the first parse, shared with every other user of the model

    def parse(self, text: str) -> Doc:
        return parse_text(load_spacy(self.model), mask_headings(text))

    def extract(self, chunk: Chunk, types: Sequence[TripleType]) -> ChunkExtraction:
        wanted = list(dict.fromkeys(types))
        if not wanted:
            return ChunkExtraction()
        parsed = Parsed(self.parse(chunk.text), chunk.index)

        def run(triple_type: TripleType) -> list[Triple]:
            return dedupe([t for t in PASSES[triple_type](parsed) if t.type == triple_type])

        return run_types_concurrently(wanted, run)
