"""Validation and grounding of extraction replies, on one chunk, against the fake server."""

from __future__ import annotations

from kg.extraction.openai import OpenAiExtractor
from kg.llm.cache import MemoryLlmCache
from kg.llm.client import LlmClient
from kg.models import Chunk, TripleType
from tests.support.fake_openai import Reply

TEXT = "Marie Curie worked in Paris with Pierre Curie. She was devastated when Pierre died."
CHUNK = Chunk(document_id="d", index=0, text=TEXT, start_char=0, end_char=len(TEXT), tokens=20)
ITEMS = [
    {"subject": "Marie Curie", "predicate": "worked with", "object": "Pierre Curie", "confidence": 0.9},
    {"subject": "marie curie", "predicate": "worked in", "object": "PARIS.", "confidence": 0.8},
    {"subject": "Marie Curie", "predicate": "met", "object": "Napoleon", "confidence": 0.9},  # ungrounded
    {"subject": "Marie Curie", "predicate": "liked", "object": "Paris", "confidence": 7},  # invalid
    {"subject": "Marie Curie", "predicate": "", "object": "Paris", "confidence": 0.5},  # invalid
    {"subject": "Pierre Curie", "object": "Paris", "confidence": 0.5},  # a field missing
    "not an object",
]


def extractor(settings, grounding: str) -> OpenAiExtractor:
    return OpenAiExtractor(LlmClient.from_settings(settings), MemoryLlmCache(), grounding=grounding)


def test_invalid_and_ungrounded_items_are_dropped_and_counted(openai_settings, fake_openai):
    fake_openai.on(lambda r: True, Reply(data={"triples": ITEMS}))
    result = extractor(openai_settings, "drop").extract(CHUNK, [TripleType.ENTITY_ENTITY])
    assert [(t.subject, t.object) for t in result.triples] == [("Marie Curie", "Pierre Curie"),
                                                              ("marie curie", "PARIS.")]
    assert result.dropped == 5 and result.ungrounded == 1
    assert not result.failed_types


def test_with_the_flag_policy_ungrounded_triples_are_kept_and_marked(openai_settings, fake_openai):
    fake_openai.on(lambda r: True, Reply(data={"triples": ITEMS}))
    result = extractor(openai_settings, "flag").extract(CHUNK, [TripleType.ENTITY_ENTITY])
    assert [(t.object, t.grounded) for t in result.triples] == [
        ("Pierre Curie", True), ("PARIS.", True), ("Napoleon", False)]
    assert result.dropped == 4 and result.ungrounded == 1


def test_a_reply_without_its_list_counts_as_one_dropped_item_not_a_failure(openai_settings, fake_openai):
    fake_openai.on(lambda r: True, Reply(data={"facts": []}))
    result = extractor(openai_settings, "drop").extract(CHUNK, [TripleType.EVENT_EVENT])
    assert result.triples == [] and result.dropped == 1 and not result.failed_types


def test_a_timeout_is_retried(openai_settings, fake_openai):
    fake_openai.on(lambda r: True, Reply(delay_s=1.0), times=1)
    quick = openai_settings.model_copy(update={"llm_timeout_s": 0.3})
    result = extractor(quick, "drop").extract(CHUNK, [TripleType.ENTITY_ENTITY])
    assert result.triples and not result.failed_types
    assert len(fake_openai.chat_requests()) == 2 and result.usage.calls == 1


def test_flagged_triples_are_stored_and_exported_as_ungrounded(open_ports, openai_settings, fake_openai):
    import io
    import json

    from kg.documents import decode_document
    from kg.engine.local import ingest
    from kg.export import write_jsonl

    settings = openai_settings.model_copy(update={"grounding": "flag"})
    fake_openai.on(lambda r: r.triple_type == "ENTITY_ENTITY", Reply(data={"triples": ITEMS}))
    ports = open_ports(settings)
    ingest(decode_document(TEXT.encode(), "t", 10_000), ports, settings)
    out = io.StringIO()
    write_jsonl(ports.graph.iter_triples(), out)
    exported = {(t["subject"], t["object"]): t["grounded"] for t in map(json.loads, out.getvalue().splitlines())
                if t["type"] == "ENTITY_ENTITY"}
    assert exported[("Marie Curie", "Napoleon")] is False
    assert exported[("Marie Curie", "Pierre Curie")] is True
