"""Versioned prompts: one per extraction type (definition and a short example), a combined one, and
the conceptualization prompt.

Every prompt is ordered for the provider's prompt cache: what calls share comes first, what varies
last. OpenAI caches the longest prefix (from 1,024 tokens, in 128-token steps) that an earlier
request of the same model has already processed, and a request's prefix starts with its
structured-output schema: "The structured output schema serves as a prefix to the system message
and can be cached" (OpenAI's prompt caching guide, "What can be cached"). So a request reads
[response_format schema][system: instructions][user: the text][system: the task], and:
- the four per-type prompts carry one identical `response_format` (one schema name, "triples") and
  one system text, so that the four calls on a chunk share schema + instructions + chunk text, and
  only the type's definition and example (`task`) come after the text;
- the combined and conceptualization prompts share their schema and instructions between chunks
  and batches, the text last (shorter than 1,024 tokens, so a provider caches none of it today).

A prompt's `version` is its revision number plus a hash of everything that shapes the reply: its
name, its system text and task, the strict `response_format` the request carries, and the full JSON
schema of the pydantic model the reply is validated with (the constraints strict mode leaves out).
It is part of the cache key: editing a prompt or its reply's schema invalidates its cached responses
even if nobody bumps the number.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from kg.llm.schemas import CombinedExtraction, ConceptReply, TypeExtraction, response_format
from kg.models import TripleType

# 2: the shared part first (one schema and one system text for the four types, the chunk text, then
# the type's task); replies cached under revision 1 answered the old order and are not reused.
REVISION = 2


@dataclass(frozen=True)
class Prompt:
    name: str  # the question's name in the cache key; the json_schema name unless `schema_name` is set
    system: str  # the instructions, before the text: shared by every call of this prompt (and its kin)
    reply: type[BaseModel]
    task: str = ""  # what this prompt asks of the text, after it (a per-type prompt's type); "" for none
    schema_name: str = ""  # the json_schema name, when prompts share one response_format

    @functools.cached_property
    def version(self) -> str:
        shaped_by = json.dumps(
            {"name": self.name, "system": self.system, "task": self.task,
             "response_format": self.response_format, "reply_schema": self.reply.model_json_schema()},
            sort_keys=True, ensure_ascii=False,
        )
        return f"{REVISION}.{hashlib.sha256(shaped_by.encode()).hexdigest()[:12]}"

    @functools.cached_property
    def response_format(self) -> dict[str, Any]:
        return response_format(self.schema_name or self.name, self.reply)

    def messages(self, user_text: str) -> list[dict[str, str]]:
        """Instructions, the text, then the task: the text is only ever the user message, and a
        request's prefix is shared as far as it can be (see the module's docstring)."""
        messages = [{"role": "system", "content": self.system}, {"role": "user", "content": user_text}]
        if self.task:
            messages.append({"role": "system", "content": self.task})
        return messages


_RULES = """Rules:
- Only facts the text states; nothing from outside knowledge.
- Copy subjects and objects from the text as they are written (same words, same spelling), short
  noun or clause phrases, never pronouns: resolve "she", "he", "it" to the name they refer to.
- Predicates are short and lower case ("worked with", "caused by").
- confidence is 0 to 1: how clearly the text states the fact.
- The whole user message is the text. If it holds no such fact, return an empty list."""

DEFINITIONS: dict[TripleType, str] = {
    TripleType.ENTITY_ENTITY: """ENTITY_ENTITY triples: relations between two entities (people, organisations,
places, things, ideas). Subject and object are both entities.
Example text: "Marie Curie worked in Paris with Pierre Curie."
Example triples: ("Marie Curie", "worked with", "Pierre Curie", 0.95), ("Marie Curie", "worked in", "Paris", 0.9)""",
    TripleType.ENTITY_EVENT: """ENTITY_EVENT triples: how an entity takes part in, causes or is affected by an event.
The subject is the entity; the object is the event, as a phrase from the text.
Predicates such as "agent of", "recipient of", "participant in", "affected by", "location of".
Example text: "In 1903 Marie Curie received the Nobel Prize in Physics in Stockholm."
Example triples: ("Marie Curie", "recipient of", "Nobel Prize in Physics", 0.95),
("Stockholm", "location of", "Nobel Prize in Physics", 0.7)""",
    TripleType.EVENT_EVENT: """EVENT_EVENT triples: causal, temporal or logical links between two events. Subject
and object are both events, each a clause or event phrase from the text.
Predicates: "causes", "caused by", "precedes", "follows", "during", "contrasts with".
Example text: "Pierre Curie died after he was struck by a carriage."
Example triples: ("Pierre Curie died", "caused by", "struck by a carriage", 0.85)""",
    TripleType.EMOTIONAL_CONTEXT: """EMOTIONAL_CONTEXT triples: feelings and attitudes attached to entities or events.
The subject is who or what holds the feeling; the object is the feeling itself, in the text's words.
Example text: "Marie was devastated, and Warsaw remembered her with pride."
Example triples: ("Marie", "felt", "devastated", 0.9), ("Warsaw", "remembered with", "pride", 0.8)""",
}


# The system text of all four per-type prompts: the same bytes, so that it is part of the prefix
# their four requests on one chunk share.
TYPE_SYSTEM = (
    "You extract triples of one type for a knowledge graph from the text the user sends. The message\n"
    "after the text names the type, with its definition and an example.\n\n"
    f"{_RULES}"
)
TYPE_SCHEMA_NAME = "triples"  # one response_format for the four types: the schema opens the prefix


def _type_prompt(triple_type: TripleType) -> Prompt:
    task = (
        f"Extract only {triple_type.value} triples from the text above.\n\n"
        f"{DEFINITIONS[triple_type]}\n\n"
        f'Return {{"triples": [...]}} with only {triple_type.value} triples.'
    )
    return Prompt(name=f"{triple_type.value}_triples", system=TYPE_SYSTEM, reply=TypeExtraction, task=task,
                  schema_name=TYPE_SCHEMA_NAME)


TYPE_PROMPTS: dict[TripleType, Prompt] = {t: _type_prompt(t) for t in TripleType}

COMBINED_PROMPT = Prompt(
    name="ALL_TYPES_triples",
    system=(
        "You extract triples of four types for a knowledge graph from the text the user sends:\n\n"
        + "\n\n".join(DEFINITIONS[t] for t in TripleType)
        + f"\n\n{_RULES}\n\nReturn one object with a list per type: "
        + ", ".join(f'"{t.value.lower()}" for {t.value}' for t in TripleType)
        + "."
    ),
    reply=CombinedExtraction,
)

CONCEPT_PROMPT = Prompt(
    name="concepts",
    system="""You conceptualize the elements of a knowledge graph. For each numbered element (an entity,
an event or a relation, with a line of context), give the concepts it is an instance of, at three
levels of abstraction:
- high: very general categories ("person", "disaster", "causal relation");
- medium: categories of moderate scope ("scientist", "natural disaster", "award");
- low: specific categories ("physicist", "earthquake", "Nobel Prize").
Give one to three phrases per level, lower case unless a proper name, with a confidence from 0 to 1.
Example element: 1. [entity] Marie Curie (context: Marie Curie won the Nobel Prize in Physics.)
Example concepts: high "person" 0.95; medium "scientist" 0.9; low "physicist" 0.9, "nobel laureate" 0.85
Return {"elements": [{"element": <number>, "concepts": [...]}, ...]} with one entry per element.""",
    reply=ConceptReply,
)
