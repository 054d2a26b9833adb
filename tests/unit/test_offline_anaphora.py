"""it/its/they/their and "the city"/"the club" resolved to the named thing they stand for."""

from __future__ import annotations

import pytest

from kg.extraction.offline import SpacyExtractor
from kg.extraction.offline.anaphora import resolve_things
from kg.models import Chunk, Triple, TripleType

pytest.importorskip("spacy")


def _resolved(extractor: SpacyExtractor, text: str) -> dict[str, str]:
    """Anaphor as 'word@index' -> the text of the named entity its antecedent head belongs to."""
    doc = extractor.parse(text)
    ent_at = {t.i: e for e in doc.ents for t in e}
    chunks = list(doc.noun_chunks)
    # An antecedent is a named entity, or a subject phrase with a proper noun that NER left untagged.
    named = {nc.root.i: nc.text.removeprefix("The ").removeprefix("the ") for nc in chunks}
    named.update({i: e.text for i, e in ent_at.items()})
    return {f"{doc[a].text}@{a}": named[b] for a, b in resolve_things(doc, ent_at, chunks).items()}


def _entity_entity(extractor: SpacyExtractor, text: str) -> list[Triple]:
    chunk = Chunk(document_id="doc", index=0, text=text, start_char=0, end_char=len(text), tokens=len(text.split()))
    result = extractor.extract(chunk, [TripleType.ENTITY_ENTITY])
    assert result.failed_types == {}
    return result.triples


def _has(triples: list[Triple], subject: str, obj: str) -> bool:
    return any(t.subject == subject and t.object == obj for t in triples)


# -- the map ----------------------------------------------------------------------------------


def test_it_takes_the_company_not_the_person_or_the_place(extractor: SpacyExtractor) -> None:
    got = _resolved(extractor, "Anna Berg founded Lumen Systems in Oslo in 1998. It now employs nine hundred people.")
    assert got == {"It@10": "Lumen Systems"}


def test_the_city_takes_a_place_not_the_organisation_in_between(extractor: SpacyExtractor) -> None:
    got = _resolved(extractor, "Anna Berg moved to Sacramento and joined Lumen Systems. The city is located in California.")
    assert got == {"city@11": "Sacramento"}


def test_they_takes_an_organisation(extractor: SpacyExtractor) -> None:
    got = _resolved(extractor, "The Labour Party won the election in 2001. They formed a government with Northwind Traders.")
    assert got == {"They@9": "The Labour Party"}


def test_they_after_people_is_left_alone(extractor: SpacyExtractor) -> None:
    # "They" is Anna and Erik here, not Bergen: better no answer than the place.
    assert _resolved(extractor, "Anna Berg and Erik Lund moved to Bergen in 1995. They had two daughters.") == {}


def test_object_it_never_takes_its_own_clause_subject(extractor: SpacyExtractor) -> None:
    got = _resolved(extractor, "Northwind Traders bought Lumen Systems and later sold it.")
    assert got == {"it@8": "Lumen Systems"}


def test_its_may_take_its_own_clause_subject(extractor: SpacyExtractor) -> None:
    got = _resolved(extractor, "Northwind Traders moved its offices to Bergen.")
    assert got == {"its@3": "Northwind Traders"}


def test_no_compatible_antecedent_resolves_nothing(extractor: SpacyExtractor) -> None:
    # Only people and a date before "it"; only an organisation and a person before "the city".
    assert _resolved(extractor, "Anna Berg met Erik Lund in 1998. She found it difficult.") == {}
    assert _resolved(extractor, "Lumen Systems hired Anna Berg. The city grew quickly.") == {}


def test_an_antecedent_more_than_two_sentences_back_is_too_far(extractor: SpacyExtractor) -> None:
    near = "Lumen Systems was founded in 1991. Prices rose. It opened a new office."
    far = "Lumen Systems was founded in 1991. The weather was cold. Prices rose. It opened a new office."
    assert _resolved(extractor, near) == {"It@10": "Lumen Systems"}
    assert _resolved(extractor, far) == {}


def test_placeholder_it_is_not_a_thing(extractor: SpacyExtractor) -> None:
    got = _resolved(extractor, "Lumen Systems opened an office in Oslo. It is likely that prices will rise.")
    assert not any(k.startswith("It@") for k in got)


def test_it_takes_a_named_subject_that_ner_left_untagged(extractor: SpacyExtractor) -> None:
    # "The Torvik Bridge" is no entity to the small model, but it is the subject and has a name.
    text = "The Torvik Bridge crosses the river Alna in Norway. It was opened in 1962."
    assert _resolved(extractor, text) == {"It@10": "Torvik Bridge"}


# -- end to end -------------------------------------------------------------------------------


def test_it_carries_the_fact_to_the_company(extractor: SpacyExtractor) -> None:
    triples = _entity_entity(extractor, "Northwind Traders was founded in Oslo. It is headquartered in Bergen.")
    assert _has(triples, "Northwind Traders", "Bergen")
    assert not any(t.subject.lower() == "it" for t in triples)
    # A resolved pronoun is trusted less than the name itself.
    direct = next(t for t in triples if _has([t], "Northwind Traders", "Oslo"))
    resolved = next(t for t in triples if _has([t], "Northwind Traders", "Bergen"))
    assert resolved.confidence < direct.confidence


def test_the_city_carries_the_fact_to_the_city(extractor: SpacyExtractor) -> None:
    text = "Anna Berg moved to Sacramento and joined Lumen Systems. The city is located in California."
    triples = _entity_entity(extractor, text)
    assert _has(triples, "Sacramento", "California")
    assert not any(t.subject.lower() in ("city", "the city") for t in triples)


def test_it_carries_the_fact_to_an_untagged_named_subject(extractor: SpacyExtractor) -> None:
    triples = _entity_entity(extractor, "The Torvik Bridge crosses the river Alna in Norway. It was opened in 1962.")
    assert _has(triples, "Torvik Bridge", "1962")
    assert not _has(triples, "Norway", "1962") and not _has(triples, "Alna", "1962")


@pytest.mark.parametrize("name", ["571 Helga Berg", "316 Hera"], ids=["cut-into-number-and-person", "one-person-span"])
def test_a_numbered_name_is_nobodys_so_he_takes_the_person(extractor: SpacyExtractor, name: str) -> None:
    # The model tags "571 Helga Berg" (an asteroid) a CARDINAL and a PERSON, "316 Hera" a PERSON.
    triples = _entity_entity(extractor, f"{name} was discovered by Tom Lind. He was a Welsh astronomer who died in Cardiff.")
    assert _has(triples, name, "Tom Lind")
    assert _has(triples, "Tom Lind", "Cardiff")
    assert not any(t.object == "Cardiff" and t.subject != "Tom Lind" for t in triples)


def test_a_fact_stated_through_a_pronoun_is_not_stated_again_by_the_fallback(extractor: SpacyExtractor) -> None:
    triples = _entity_entity(extractor, "1290 Alvina was found by Tomas Berg. He was born in Lund.")
    assert [(t.subject, t.predicate) for t in triples if t.object == "Lund"] == [("Tomas Berg", "born in")]
    assert not [t for t in triples if t.object == "1290"]  # the parser cut the name; no date here


def test_its_names_the_owner(extractor: SpacyExtractor) -> None:
    triples = _entity_entity(extractor, "Northwind Traders was founded in Oslo. Its founder later moved to Bergen.")
    assert any(t.subject.startswith("Northwind Traders") and "founder" in t.subject and t.object == "Bergen" for t in triples)


def test_the_bands_owner_names_the_band(extractor: SpacyExtractor) -> None:
    triples = _entity_entity(extractor, "Lumen Records was founded in Oslo. The band's singer moved to Rome.")
    assert any(t.subject.startswith("Lumen Records") and "singer" in t.subject and t.object == "Rome" for t in triples)


def test_an_unnamed_thing_in_between_blocks_it(extractor: SpacyExtractor) -> None:
    # "it" is the project, which has no name: better no answer than Lumen Systems.
    assert _resolved(extractor, "Lumen Systems moved to Oslo. The project was a success and it ended in 2004.") == {}
    assert _resolved(extractor, "Lumen Systems moved to Oslo. Anna Berg started a project there and ended it in 2004.") == {}
