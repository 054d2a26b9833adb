"""The shared spaCy pipeline: loaded once per model for the extractor and the heuristic concepts alike."""

from __future__ import annotations

import subprocess
import sys

import pytest

from kg import nlp
from kg.concepts.offline import HeuristicConceptualizer
from kg.errors import ProviderUnavailable
from kg.extraction.offline import SpacyExtractor
from kg.models import ALL_TRIPLE_TYPES, Chunk, ConceptElement

pytest.importorskip("spacy")

ELEMENTS = [
    ConceptElement(id="1", kind="entity", name="Marie Curie"),
    ConceptElement(id="2", kind="entity", name="Nobel Prize in Physics"),
    ConceptElement(id="3", kind="event", name="Pierre Curie died"),
    ConceptElement(id="4", kind="emotion", name="grief"),
    ConceptElement(id="5", kind="relation", name="caused by"),
]


def test_the_extractor_and_the_concepts_share_one_load_of_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nlp, "_pipelines", {})
    loads: list[str] = []
    real_load = nlp._load
    monkeypatch.setattr(nlp, "_load", lambda name: loads.append(name) or real_load(name))
    text = "Marie Curie discovered radium in Paris."
    SpacyExtractor().extract(Chunk(document_id="d", index=0, text=text, start_char=0, end_char=len(text), tokens=8),
                             ALL_TRIPLE_TYPES)
    HeuristicConceptualizer().conceptualize(ELEMENTS)
    assert loads == [nlp.DEFAULT_MODEL]


def test_a_model_name_or_a_loaded_pipeline_give_the_same_concepts() -> None:
    by_name = HeuristicConceptualizer(nlp.DEFAULT_MODEL).conceptualize(ELEMENTS)
    by_pipeline = HeuristicConceptualizer(nlp.load_spacy(nlp.DEFAULT_MODEL)).conceptualize(ELEMENTS)
    assert by_name == by_pipeline
    assert ("high", "person") in {(c.level, c.phrase) for c in by_name.concepts[0]}


def test_the_model_is_loaded_at_first_use_not_at_construction() -> None:
    conceptualizer = HeuristicConceptualizer("no_such_spacy_model_xyz")
    assert conceptualizer.conceptualize([]).concepts == []
    with pytest.raises(ProviderUnavailable, match="no_such_spacy_model_xyz"):
        conceptualizer.conceptualize(ELEMENTS)


def test_the_heuristic_concepts_do_not_import_the_extractor() -> None:
    code = "import sys, kg.concepts.offline; print('kg.extraction.offline' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
