"""Hostile text through a real ingest on the offline engine (spaCy, MiniLM, the embedded PostgreSQL):
from bytes, as `kg ingest` reads a file, and from a JSON body, as `kg serve` and the API take it.
Every case ends one of two ways: a clear InvalidInput (HTTP 400) with nothing written, or a job
that ends SUCCEEDED or PARTIAL whose chunks are all in the graph.
"""

from __future__ import annotations

import hashlib
import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kg import api
from kg.documents import decode_document
from kg.engine.local import ingest
from kg.errors import InvalidInput
from kg.models import JobStatus
from kg.normalize import document_id
from tests.properties.texts import MB, SMALL, as_bytes, expected_text
from tests.support.api_gateway import proxy_event

# The connection pool's and the LLM client's threads use `random` while hypothesis draws; harmless here.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Do not use the `random` module:hypothesis.errors.HypothesisDeprecationWarning")

ENDED_WELL = (JobStatus.SUCCEEDED, JobStatus.PARTIAL)
HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example]
# Each example is a whole job (a second or so): a few per class.
few = settings(max_examples=8, deadline=None, suppress_health_check=HEALTH, database=None)


def source_of(name: str, data: bytes) -> str:
    return f"{name}-{hashlib.sha256(data).hexdigest()[:16]}"


def graph_rows(ports, source: str) -> tuple[int, int]:
    """(documents, chunks) the graph holds for `source`."""
    with ports.db.connection() as conn:
        return conn.execute(
            "SELECT (SELECT count(*) FROM documents WHERE source = %(s)s),"
            " (SELECT count(*) FROM chunks WHERE document_id = %(d)s)",
            {"s": source, "d": document_id(source)},
        ).fetchone()


def ingest_bytes(ports, settings_, source: str, data: bytes) -> None:
    """One file's ingest as `kg ingest` does it, and the outcome's checks."""
    jobs_before = len(ports.ledger.list_jobs(1000))
    try:
        document = decode_document(data, source, settings_.max_document_bytes)
    except InvalidInput as e:
        assert str(e).startswith(source) and "\n" not in str(e)
        assert graph_rows(ports, source) == (0, 0) and len(ports.ledger.list_jobs(1000)) == jobs_before
        return
    report = ingest(document, ports, settings_)
    assert report.status in ENDED_WELL, report.error
    assert ports.ledger.get(report.job_id).status is report.status
    assert graph_rows(ports, source) == (1, report.chunks)


@pytest.mark.parametrize("name", list(SMALL))
@few
@given(data=st.data())
def test_any_file_is_refused_clearly_or_its_job_ends_succeeded_or_partial(offline_ports, offline_settings, name, data):
    raw = as_bytes(data.draw(SMALL[name]))
    ingest_bytes(offline_ports, offline_settings, source_of(name, raw), raw)


# A megabyte of one-character tokens or of sentences is hundreds of chunks through spaCy: minutes
# each on two cores (RELIABILITY.md has the times), so they run only when asked for.
LARGE = pytest.mark.skipif(os.environ.get("KG_LARGE_INPUTS") != "1",
                           reason="minutes each: set KG_LARGE_INPUTS=1 to run it")


@pytest.mark.parametrize("unit", ["a", pytest.param("!?", marks=LARGE), pytest.param("😀", marks=LARGE),
                                  pytest.param("Marie Curie worked in Paris. ", marks=LARGE)],
                         ids=["letters", "punctuation", "emoji", "sentences"])
def test_a_one_megabyte_single_line_file_is_ingested(offline_ports, offline_settings, unit):
    raw = (unit * (MB // len(unit.encode()) + 1)).encode()
    assert len(raw) >= MB and b"\n" not in raw
    ingest_bytes(offline_ports, offline_settings, source_of("one-mb-line", raw), raw)


@pytest.fixture(scope="module")
def local_backend(offline_settings, offline_ports):
    from kg.serve import LocalBackend

    backend = LocalBackend(offline_settings, offline_ports)
    yield backend
    backend.close()


@pytest.mark.parametrize("name", ["lone-surrogate", "nul", "rtl-emoji", "prompt-injection"])
@few
@given(data=st.data())
def test_any_json_text_is_refused_with_400_or_its_job_ends_succeeded_or_partial(local_backend, name, data):
    text = data.draw(SMALL[name])
    source = source_of(name, as_bytes(text))
    body = json.dumps({"source": source, "text": text})  # a lone surrogate travels as a \ud8xx escape
    answer = api.handle(proxy_event("POST", "/jobs", {"Content-Type": "application/json"}, None, body, "v1"),
                        None, local_backend)
    reply = json.loads(answer["body"])
    if answer["statusCode"] == 400:
        assert reply["error"] and "\n" not in reply["error"]
        assert name == "lone-surrogate" or expected_text(text.encode()) is None  # what decoding refuses
        assert graph_rows(local_backend.ports, source) == (0, 0)
        return
    assert answer["statusCode"] == 202, reply
    assert name != "lone-surrogate" and expected_text(text.encode()) is not None
    local_backend.wait(300)
    job = local_backend.get_job(reply["job_id"])
    assert job.status in ENDED_WELL, job.error
    assert graph_rows(local_backend.ports, source) == (1, job.chunks_total)
