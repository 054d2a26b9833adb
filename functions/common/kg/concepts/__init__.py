"""The conceptualizer port: elements (entities, events, emotions, relations) in, concept phrases at
three abstraction levels out. Implementations: `offline.HeuristicConceptualizer` (spaCy, no
network) and the LLM one in `kg.llm.concepts`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from kg.models import ConceptBatch, ConceptElement


class Conceptualizer(Protocol):
    name: str

    def conceptualize(self, elements: Sequence[ConceptElement]) -> ConceptBatch: ...
