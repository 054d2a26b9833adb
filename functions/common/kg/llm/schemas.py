"""Strict `json_schema` response formats generated from pydantic models.

OpenAI's strict mode accepts a subset of JSON Schema: every object must list all its properties
as required and forbid additional ones, and value constraints (minLength, minimum, ...) and
titles/defaults are not part of it. So the pydantic schema is post-processed; the constraints
still hold because every response is validated with the same pydantic model afterwards.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from kg.models import ConceptPhrase

# Keywords strict mode rejects or ignores; pydantic re-checks them on the response.
_DROPPED = frozenset({
    "title", "default", "examples", "minLength", "maxLength", "pattern", "format",
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minItems", "maxItems", "uniqueItems",
})


def strict_schema(model: type[BaseModel]) -> dict[str, Any]:
    return _strict(model.model_json_schema())


def _strict(node: Any) -> Any:
    if isinstance(node, list):
        return [_strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: _strict(v) for k, v in node.items() if k not in _DROPPED or k == "properties"}
    if "properties" in node:  # property names are data, not keywords: keep every one
        out["properties"] = {name: _strict(sub) for name, sub in node["properties"].items()}
    if out.get("type") == "object" or "properties" in out:
        out["additionalProperties"] = False
        out["required"] = list(out.get("properties", {}))
    return out


def response_format(name: str, model: type[BaseModel]) -> dict[str, Any]:
    """The `response_format` argument of a chat completion that must return `model`."""
    return {"type": "json_schema", "json_schema": {"name": name, "strict": True, "schema": strict_schema(model)}}


# -- what the models are asked to return -------------------------------------------------------


class ExtractedTriple(BaseModel):
    subject: str = Field(min_length=1, description="copied from the text")
    predicate: str = Field(min_length=1, description="short, lower case")
    object: str = Field(min_length=1, description="copied from the text")
    confidence: float = Field(ge=0.0, le=1.0)


class TypeExtraction(BaseModel):
    """The reply of a per-type extraction call."""

    triples: list[ExtractedTriple]


class CombinedExtraction(BaseModel):
    """The reply of a combined extraction call: the four types at once (field = type, lower case)."""

    entity_entity: list[ExtractedTriple]
    entity_event: list[ExtractedTriple]
    event_event: list[ExtractedTriple]
    emotional_context: list[ExtractedTriple]


class ElementConcepts(BaseModel):
    element: int = Field(ge=1, description="the element's number in the list")
    concepts: list[ConceptPhrase]


class ConceptReply(BaseModel):
    elements: list[ElementConcepts]
