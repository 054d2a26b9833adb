"""The offline spaCy extractor: each triple type on its own, failure isolation, determinism."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from kg import nlp
from kg.errors import ProviderUnavailable
from kg.extraction import offline
from kg.extraction.offline import MAX_PHRASE_TOKENS, SpacyExtractor
from kg.models import ALL_TRIPLE_TYPES, Chunk, ChunkExtraction, Triple, TripleType

pytest.importorskip("spacy")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "curie.txt"

PARAGRAPH = (
    "Ada Lovelace was born in London in 1815. Her mother, Lady Byron, encouraged her studies in "
    "mathematics because she feared that poetry would make her daughter unstable. In 1833 Ada "
    "Lovelace met Charles Babbage at a party in London. Babbage showed her the Difference Engine, "
    "and Lovelace admired the machine. After Babbage designed the Analytical Engine, Lovelace "
    "translated an article by the Italian engineer Luigi Menabrea. She added long notes to the "
    "translation, and Babbage praised her work. Lovelace was proud of her notes. The British "
    "government refused to fund the engine because the costs had grown too high. Lovelace died of "
    "cancer in 1852, and her friends mourned her death."
)

PRONOUNS = {"he", "she", "it", "they", "him", "her", "them", "his", "its", "their", "who", "which", "that"}


def _chunk(text: str, index: int = 0) -> Chunk:
    return Chunk(document_id="doc", index=index, text=text, start_char=0, end_char=len(text), tokens=len(text.split()))


def _only(extractor: SpacyExtractor, triple_type: TripleType, text: str = PARAGRAPH) -> list[Triple]:
    result = extractor.extract(_chunk(text), [triple_type])
    assert result.failed_types == {}
    assert result.triples, f"no {triple_type} triples"
    assert {t.type for t in result.triples} == {triple_type}
    return result.triples


def _find(triples: list[Triple], subject: str, predicate: str | None = None, obj: str | None = None) -> list[Triple]:
    return [
        t
        for t in triples
        if t.subject == subject and (predicate is None or t.predicate == predicate) and (obj is None or obj in t.object)
    ]


# -- one type at a time -----------------------------------------------------------------------


def test_entity_entity_links_the_planted_names(extractor: SpacyExtractor) -> None:
    triples = _only(extractor, TripleType.ENTITY_ENTITY)
    met = _find(triples, "Ada Lovelace", "meet", "Charles Babbage")
    assert len(met) == 1 and met[0].object == "Charles Babbage"
    assert met[0].subject_kind == met[0].object_kind == "entity"
    # A passive participle keeps its surface form: "born in", not "bear in".
    assert _find(triples, "Ada Lovelace", "born in", "London")
    # "Her mother, Lady Byron" is an apposition naming a relation, from its owner to the value.
    assert _find(triples, "Ada Lovelace", "mother", "Lady Byron")
    # A preposition carries the direct object into the predicate.
    assert _find(triples, "Lovelace", "translate article by", "Luigi Menabrea")
    # "Babbage showed her ...": the pronoun resolves to the woman named before, not to Babbage.
    shown = _find(triples, "Babbage", "show")
    assert {t.object for t in shown} == {"Ada Lovelace", "Difference Engine"}


def test_entity_entity_confidence_prefers_two_names(extractor: SpacyExtractor) -> None:
    triples = _only(extractor, TripleType.ENTITY_ENTITY)
    both_named = _find(triples, "Ada Lovelace", "meet", "Charles Babbage")[0]
    common_noun = _find(triples, "Lovelace", "admire", "machine")[0]
    assert both_named.confidence > common_noun.confidence


def test_entity_event_roles(extractor: SpacyExtractor) -> None:
    triples = _only(extractor, TripleType.ENTITY_EVENT)
    assert all(t.subject_kind == "entity" and t.object_kind == "event" for t in triples)
    assert _find(triples, "Lovelace", "agent of", "Lovelace translated article")
    assert _find(triples, "Charles Babbage", "participant in", "Ada Lovelace met Charles Babbage")
    assert _find(triples, "London", "location of", "Ada Lovelace born in London")
    assert _find(triples, "Lovelace", "subject of", "Lovelace's death")


def test_event_event_because_and_after(extractor: SpacyExtractor) -> None:
    triples = _only(extractor, TripleType.EVENT_EVENT)
    assert all(t.subject_kind == t.object_kind == "event" for t in triples)
    because = [t for t in triples if "refused to fund engine" in t.subject]
    assert len(because) == 1
    assert because[0].predicate == "caused by"
    assert "costs" in because[0].object
    after = [t for t in triples if t.predicate == "follows"]
    assert after and after[0].subject == "Lovelace translated article"
    assert after[0].object == "Babbage designed Analytical Engine"


def test_event_event_vocabulary(extractor: SpacyExtractor) -> None:
    text = (
        "The river flooded the valley after the storm destroyed the dam. The farmers lost their crops, "
        "so the government sent food. The village celebrated before the harvest began. The mayor "
        "resigned although the council supported him. The bridge collapsed when the truck crossed it."
    )
    triples = _only(extractor, TripleType.EVENT_EVENT, text)
    predicates = {t.predicate for t in triples}
    assert {"follows", "causes", "precedes", "contrasts with", "during"} <= predicates
    causes = [t for t in triples if t.predicate == "causes"]
    assert any("farmers lost" in t.subject and "government sent food" in t.object for t in causes)


def test_emotional_context_holders(extractor: SpacyExtractor) -> None:
    triples = _only(extractor, TripleType.EMOTIONAL_CONTEXT)
    # "... Lady Byron ... because she feared that ...": the holder is Lady Byron.
    feared = _find(triples, "Lady Byron", "feared")
    assert feared and feared[0].object_kind == "event" and "poetry" in feared[0].object
    assert _find(triples, "Lady Byron", "felt", "fear")[0].object_kind == "emotion"
    pride = _find(triples, "Lovelace", "felt", "pride")
    assert pride and pride[0].object == "pride" and pride[0].object_kind == "emotion"
    assert _find(triples, "Lovelace", "proud of", "notes")
    praised = _find(triples, "Babbage", "praised")
    assert praised and praised[0].object == "Lovelace's work"
    assert _find(triples, "Babbage", "expressed", "praise")


def test_emotional_context_adjectives_and_passive_participles(extractor: SpacyExtractor) -> None:
    text = (
        "Marie felt lonely and frustrated in Paris. Pierre was devastated by the fire. "
        "Albert Einstein, who admired Marie, wrote her a letter."
    )
    triples = _only(extractor, TripleType.EMOTIONAL_CONTEXT, text)
    felt = {t.object for t in _find(triples, "Marie", "felt")}
    assert {"loneliness", "frustration"} <= felt
    assert _find(triples, "Pierre", "felt", "devastation")
    assert _find(triples, "Pierre", "devastated by", "fire")
    # The relative pronoun resolves to its antecedent.
    assert _find(triples, "Albert Einstein", "admired", "Marie")


# -- contract ---------------------------------------------------------------------------------


def test_failing_pass_is_recorded_and_others_kept(extractor: SpacyExtractor, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(parsed: object) -> list[Triple]:
        raise RuntimeError("pass exploded")

    monkeypatch.setitem(offline.PASSES, TripleType.EVENT_EVENT, boom)
    result = extractor.extract(_chunk(PARAGRAPH), ALL_TRIPLE_TYPES)
    assert result.failed_types == {TripleType.EVENT_EVENT: "RuntimeError: pass exploded"}
    assert {t.type for t in result.triples} == set(ALL_TRIPLE_TYPES) - {TripleType.EVENT_EVENT}


def test_deterministic(extractor: SpacyExtractor) -> None:
    first = extractor.extract(_chunk(PARAGRAPH), ALL_TRIPLE_TYPES)
    second = extractor.extract(_chunk(PARAGRAPH), ALL_TRIPLE_TYPES)
    assert first.model_dump() == second.model_dump()
    assert len(first.triples) > 20


def test_chunk_index_confidence_and_shape(extractor: SpacyExtractor) -> None:
    result = extractor.extract(_chunk(PARAGRAPH, index=7), ALL_TRIPLE_TYPES)
    assert result.triples
    keys = set()
    for t in result.triples:
        assert t.chunk_index == 7
        assert 0.0 <= t.confidence <= 1.0
        assert t.subject.strip() and t.object.strip() and t.predicate.strip()
        assert t.subject.casefold() != t.object.casefold()
        assert t.subject.lower() not in PRONOUNS and t.object.lower() not in PRONOUNS
        assert len(t.subject.split()) <= MAX_PHRASE_TOKENS and len(t.object.split()) <= MAX_PHRASE_TOKENS
        key = (t.type, t.subject, t.predicate, t.object)
        assert key not in keys, f"duplicate {key}"
        keys.add(key)
    assert len({t.confidence for t in result.triples}) > 3  # scores carry information


def test_only_requested_types_and_empty_request(extractor: SpacyExtractor) -> None:
    result = extractor.extract(_chunk(PARAGRAPH), [TripleType.EMOTIONAL_CONTEXT, TripleType.ENTITY_ENTITY])
    assert {t.type for t in result.triples} == {TripleType.EMOTIONAL_CONTEXT, TripleType.ENTITY_ENTITY}
    assert extractor.extract(_chunk(PARAGRAPH), []).triples == []


def test_pronoun_only_subject_is_skipped(extractor: SpacyExtractor) -> None:
    # No person is named, so "She" cannot be resolved and must not become a node.
    result = extractor.extract(_chunk("She visited Vienna in the spring. It rained."), ALL_TRIPLE_TYPES)
    assert all(t.subject.lower() not in PRONOUNS for t in result.triples)
    assert not [t for t in result.triples if t.type == TripleType.ENTITY_ENTITY]


def test_missing_model_raises_provider_unavailable() -> None:
    ex = SpacyExtractor(model="no_such_spacy_model_xyz")
    with pytest.raises(ProviderUnavailable, match="local"):
        ex.extract(_chunk(PARAGRAPH), ALL_TRIPLE_TYPES)


def test_concurrent_first_use_loads_once_and_agrees(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nlp, "_pipelines", {})  # as in a new process: nothing loaded yet
    ex = SpacyExtractor()
    loads = 0
    real_load = nlp._load

    def counting_load(model_name: str) -> object:
        nonlocal loads
        loads += 1
        return real_load(model_name)

    monkeypatch.setattr(nlp, "_load", counting_load)
    results: list[ChunkExtraction | None] = [None] * 6
    barrier = threading.Barrier(len(results))

    def work(k: int) -> None:
        barrier.wait()
        results[k] = ex.extract(_chunk(PARAGRAPH, index=k), ALL_TRIPLE_TYPES)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(len(results))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert loads == 1
    assert all(r is not None and not r.failed_types for r in results)
    # chunk_index differs per thread by design; everything else must agree.
    dumps = [[(t.type, t.subject, t.predicate, t.object, t.confidence) for t in r.triples] for r in results if r]
    assert len(dumps) == len(results) and all(d == dumps[0] for d in dumps)


# -- the example document ---------------------------------------------------------------------


def _example_chunks() -> list[Chunk]:
    text = EXAMPLE.read_text(encoding="utf-8")
    middle = text.index("\n\n", len(text) // 2)
    return [
        Chunk(document_id="curie", index=0, text=text[:middle], start_char=0, end_char=middle, tokens=0),
        Chunk(document_id="curie", index=1, text=text[middle:], start_char=middle, end_char=len(text), tokens=0),
    ]


def test_example_document_yields_every_type(extractor: SpacyExtractor) -> None:
    counts = {t: 0 for t in ALL_TRIPLE_TYPES}
    triples: list[Triple] = []
    for chunk in _example_chunks():
        result = extractor.extract(chunk, ALL_TRIPLE_TYPES)
        assert result.failed_types == {}
        assert {t.chunk_index for t in result.triples} == {chunk.index}
        for t in result.triples:
            counts[t.type] += 1
        triples += result.triples
    assert all(n >= 10 for n in counts.values()), counts
    # Headings are masked, not glued to the next sentence.
    assert not [t for t in triples if "==" in t.statement]
    statements = {(t.subject, t.predicate, t.object) for t in triples}
    assert ("Maria Salomea Skłodowska", "born in", "Warsaw") in statements
    assert ("Marie", "marry", "Pierre") in statements
    assert ("Wilhelm Röntgen", "discover", "X-rays") in statements
    assert ("Marie", "felt", "pride") in statements
    assert ("Pierre", "resented", "interruptions") in statements
    assert any(
        t.type == TripleType.EVENT_EVENT and t.predicate == "follows" and t.object == "Pierre died" for t in triples
    )
