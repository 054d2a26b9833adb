"""Whatever the document's size, every payload between states stays under the contract's 8 KB: a
document of over 200 chunks, one of them failed with a huge error, through every handler."""

from __future__ import annotations

import uuid

import pytest

from kg.ledger.postgres import PostgresLedger
from kg.settings import Settings
from kg.stages.contract import MAX_ERROR_CHARS, MAX_PAYLOAD_BYTES
from tests.aws.conftest import migrate, submit
from tests.support.extractors import FactsExtractor, fact
from tests.support.handlers import CHUNK_FAILED, EXTRACT_CHUNK, FAIL_JOB, HandlerDriver

NAMES = ("Ada", "Bruno", "Clara", "Dmitri", "Elena", "Farid", "Greta", "Hugo")
PLACES = ("Rome", "Oslo", "Lima", "Kyiv")
# Step Functions' own part of these events: the Cause of a caught error, up to its 256 KB limit.
CARRY_A_CAUSE = {CHUNK_FAILED, FAIL_JOB}


def long_document(sentences: int = 1800) -> str:
    """About 210 chunks of 100 tokens; few names, so that the graph (and the test) stays small."""
    return " ".join(f"{NAMES[i % 8]} met {NAMES[(3 * i + 1) % 8]} in {PLACES[i % 4]} on day {i}."
                    for i in range(sentences))


def test_no_handler_input_or_output_exceeds_the_payload_limit_for_200_chunks(
        graph_database, offline_ports, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("KG_CHUNK_TOKENS", "100")
    monkeypatch.setenv("KG_CHUNK_OVERLAP_TOKENS", "0")
    offline_ports.settings = Settings()
    migrate()
    # The one port swapped: moto copies the whole DynamoDB table in every transaction (one per chunk
    # recorded), which would make 200 chunks take half a minute; no payload depends on the ledger's backend.
    offline_ports.ledger = PostgresLedger(offline_ports.db)
    # One fact per chunk: the merge of 200 chunks' results stays quick; the payloads are the same.
    offline_ports.extractor = FactsExtractor([fact("Ada", "met", "Bruno")])
    driver = HandlerDriver()
    huge = {"Error": "Lambda.Unknown", "Cause": "out of memory; " + "x" * 100_000}
    state = driver.run(submit(long_document(), "notes/days.txt", {"concepts": True, "dedup": True}),
                       chunk_failures={7: huge})

    assert state["chunk_count"] >= 200
    assert len(driver.of(EXTRACT_CHUNK)) == state["chunk_count"] - 1
    assert state["outcome"]["status"] == "PARTIAL"
    # A job that failed with an error of the same size, as the failure handler sees it.
    driver.call(FAIL_JOB, {"job_id": str(uuid.uuid4()), "source": "notes/other.txt", "failure": huge})

    for call in driver.calls:
        assert call.size("result") <= MAX_PAYLOAD_BYTES, (call.handler_file, call.size("result"))
        if call.handler_file not in CARRY_A_CAUSE:
            assert call.size("event") <= MAX_PAYLOAD_BYTES, (call.handler_file, call.size("event"))
    failed_chunk = driver.of(CHUNK_FAILED)[0].result
    assert failed_chunk["index"] == 7 and len(failed_chunk["error"]) <= MAX_ERROR_CHARS
    assert len(driver.of(FAIL_JOB)[0].result["error"]) <= MAX_ERROR_CHARS
    largest = max(driver.calls, key=lambda c: c.size("result"))
    assert largest.handler_file == "extract/plan.py"  # the Map's items: one index per chunk
