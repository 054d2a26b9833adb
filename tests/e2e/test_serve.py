"""`kg serve` as a user runs it: the installed command in a subprocess, on a free port. Its OpenAPI
document validates; schemathesis's generated requests (valid and invalid) find no 5xx and no answer
that breaks the document; hostile queries are refused or answered safely; and the Lambda handler,
given API Gateway's events on the same database, answers the same bodies."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.e2e.conftest import EXAMPLE
from tests.support.cli import kg_env, start_kg
from tests.support.embedded import fresh_database
from tests.support.http import http_json, wait_until_serving

pytest.importorskip("schemathesis")

# Requests schemathesis sends at most, per operation and generation mode (13 operations, 2 modes;
# hypothesis stops early where it runs out of distinct requests).
EXAMPLES_PER_OPERATION = 40
SQL_LOOKING = "'; DROP TABLE triples; -- ' OR 1=1 UNION SELECT * FROM pg_user"


@dataclass
class Served:
    url: str
    database_url: str
    data_dir: Path
    process: subprocess.Popen

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return http_json(self.url + path, method, body)


def free_port() -> int:
    from tests.support.moto_server import free_port as port

    return port()


@pytest.fixture(scope="module")
def served(pg_server, tmp_path_factory) -> Iterator[Served]:
    """`kg serve` on a database of its own, with examples/curie.txt ingested through POST /jobs."""
    with fresh_database(pg_server) as database_url:
        data_dir = tmp_path_factory.mktemp("serve") / "kg-data"
        port = free_port()
        process = start_kg(kg_env(database_url, data_dir), "serve", "--port", str(port),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        server = Served(f"http://127.0.0.1:{port}", database_url, data_dir, process)
        try:
            wait_until_serving(server.url, process)
            status, accepted = server.request("POST", "/jobs",
                                              {"source": "curie.txt", "text": EXAMPLE.read_text()})
            assert status == 202 and accepted["started"] is True, accepted
            wait_for_job(server, accepted["job_id"])
            yield server
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.communicate(timeout=300)  # a guard against a hang, not a speed check
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()


def wait_for_job(server: Served, job_id: str, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status, job = server.request("GET", f"/jobs/{job_id}")
        assert status == 200, job
        if job["status"] in ("SUCCEEDED", "PARTIAL", "FAILED"):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.2)


def test_a_submitted_document_runs_in_the_background_and_the_same_submission_is_the_same_job(served):
    status, again = served.request("POST", "/jobs", {"source": "curie.txt", "text": EXAMPLE.read_text()})
    assert status == 202 and again["started"] is False and again["status"] == "SUCCEEDED"
    job = wait_for_job(served, again["job_id"])
    assert job["execution"] is None and job["counts"]["triples"]["total"] > 0
    status, stats = served.request("GET", "/stats")
    assert status == 200 and stats["documents"] >= 1 and stats["triples"] > 0


def test_the_openapi_document_validates_and_names_the_local_server(served):
    from openapi_spec_validator import validate

    with urllib.request.urlopen(served.url + "/openapi.json") as answer:
        document = json.loads(answer.read())
    validate(document)
    assert document["servers"][0]["url"] == served.url and "security" not in document
    assert {"/jobs", "/jobs/{id}", "/stats", "/documents/{source}", "/search", "/concepts", "/neighbors",
            "/documents", "/triples/{id}", "/nodes/{id}", "/overview"} == set(document["paths"])


def test_generated_requests_get_no_server_error_and_no_answer_outside_the_document(served):
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis.checks import not_a_server_error
    from schemathesis.generation import GenerationMode
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    schema = schemathesis.openapi.from_url(served.url + "/openapi.json")
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    sent: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                      phases=[Phase.generate], suppress_health_check=list(HealthCheck))
            def call(case) -> None:  # called at once, in this iteration
                sent.append(operation.label)  # noqa: B023
                case.call_and_validate(base_url=served.url, checks=checks)

            try:
                call()
            except Unsatisfiable:  # nothing to send wrong (GET /stats has no parameter)
                assert mode is GenerationMode.NEGATIVE, operation.label
    assert len(sent) >= 500, len(sent)


@pytest.mark.parametrize("query", ["", "   ", "x" * 10_000, SQL_LOOKING, "\u0000curie", "Curie%' --"])
def test_hostile_queries_are_refused_or_answered_safely(served, query):
    for method, path, body in (("GET", "/search?" + urllib.parse.urlencode({"query": query}), None),
                               ("POST", "/search", {"query": query}),
                               ("GET", "/concepts?" + urllib.parse.urlencode({"query": query}), None),
                               ("POST", "/neighbors", {"node": query})):
        status, answer = served.request(method, path, body)
        assert status in ((200, 400, 404) if "neighbors" in path else (200, 400)), (method, path, status, answer)
        if status != 200:
            assert answer["error"], answer
    status, found = served.request("GET", "/search?query=Marie+Curie")
    assert status == 200 and found["hits"]  # the graph is still there


def test_the_lambda_handler_answers_the_same_bodies_on_the_same_database(served, monkeypatch):
    """The API function, given API Gateway's events, over the database kg serve uses."""
    pytest.importorskip("moto")
    from kg.aws.ports import reset_ports

    from tests.support.api_gateway import proxy_event
    from tests.support.handlers import API, load_handler
    from tests.support.sfn import FakeLambdaContext

    for name in [n for n in os.environ if n.startswith(("KG_", "OPENAI_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("KG_DATABASE_URL", served.database_url)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "1")
    reset_ports()
    handler = load_handler(API).handler
    try:
        for method, path, query, body in (
            ("GET", "/stats", None, None),
            ("GET", "/search", {"query": "Who worked in Paris?", "limit": "5"}, None),
            ("POST", "/search", None, {"query": "radioactivity research", "limit": 3, "search_types": ["semantic"]}),
            ("GET", "/concepts", {"query": "science"}, None),
            ("POST", "/neighbors", None, {"node": "Marie Curie", "hops": 2}),
            ("GET", "/search", {"query": ""}, None),
            ("GET", "/documents", None, None),
            ("GET", "/overview", {"top": "3"}, None),
        ):
            response = handler(proxy_event(method, path, {"Content-Type": "application/json"}, query,
                                           None if body is None else json.dumps(body), "v1"),
                               FakeLambdaContext(function_name="kg-api"))
            lambda_body = json.loads(response["body"])
            suffix = "?" + urllib.parse.urlencode(query) if query else ""
            status, served_body = served.request(method, path + suffix, body)
            assert response["statusCode"] == status, (path, lambda_body, served_body)
            for answer in (lambda_body, served_body):
                answer.pop("took_ms", None)
            assert lambda_body == served_body, path
    finally:
        reset_ports()


def test_the_browsing_routes_give_documents_a_triples_sources_a_node_and_the_overview(served):
    """What the web view reads: each answer checked against the graph's own rows (psql)."""
    status, listed = served.request("GET", "/documents")
    [document] = [d for d in listed["documents"] if d["source"] == "curie.txt"]
    with psycopg.connect(served.database_url) as conn:
        triples, chunks, job_id = conn.execute(
            "SELECT (SELECT count(DISTINCT triple_id) FROM triple_provenance WHERE document_id = d.id),"
            " (SELECT count(*) FROM chunks WHERE document_id = d.id), d.job_id::text"
            " FROM documents d WHERE source = 'curie.txt'").fetchone()
    assert status == 200 and (document["triples"], document["chunks"], document["job_id"]) == (triples, chunks, job_id)

    status, job = served.request("GET", f"/jobs/{job_id}")
    assert status == 200 and [c["index"] for c in job["chunks"]] == list(range(job["chunks_total"]))
    assert sum(c["triples"] for c in job["chunks"]) > 0

    status, found = served.request("GET", "/search?query=Pierre+Curie&limit=1")
    [hit] = found["hits"]
    status, triple = served.request("GET", f"/triples/{hit['id']}")
    assert status == 200 and (triple["subject"], triple["object"]) == (hit["subject"], hit["object"])
    assert triple["source_count"] == len(triple["sources"]) >= 1
    for source in triple["sources"]:
        start, end = source["start"] - source["chunk_start"], source["end"] - source["chunk_start"]
        assert source["chunk_text"][start:end] == source["text"] and source["text"]
        assert EXAMPLE.read_text()[source["start"]:source["end"]] == source["text"]  # offsets into the document

    status, neighbourhood = served.request("POST", "/neighbors", {"node": "Pierre Curie"})
    centre = neighbourhood["centres"][0]
    status, node = served.request("GET", f"/nodes/{centre['id']}?limit=5")
    assert status == 200 and (node["name"], node["kind"]) == (centre["name"], centre["kind"])
    assert 1 <= len(node["triples"]) <= 5 and all(centre["id"] in (t["subject_id"], t["object_id"])
                                                  for t in node["triples"])
    with psycopg.connect(served.database_url) as conn:
        concepts = {tuple(row) for row in conn.execute(
            "SELECT c.level, c.name FROM conceptualizations e JOIN concepts c ON c.id = e.concept_id"
            " WHERE e.element_id = %s", (centre["id"],))}
    assert {(c["level"], c["name"]) for c in node["concepts"]} == concepts

    status, overview = served.request("GET", "/overview?top=2")
    assert status == 200 and overview["stats"]["triples"] > 0 and set(overview["top_concepts"]) == {"high", "medium", "low"}
    for level, top in overview["top_concepts"].items():
        assert len(top) <= 2 and [c["elements"] for c in top] == sorted((c["elements"] for c in top), reverse=True)
        assert all(c["level"] == level for c in top)


@pytest.mark.parametrize("path", ["/triples/not-a-uuid", f"/triples/{uuid.uuid4()}", f"/nodes/{uuid.uuid4()}",
                                  "/nodes/%00"])
def test_an_unknown_triple_or_node_is_404_with_a_reason(served, path):
    status, answer = served.request("GET", path)
    assert status == 404 and answer["error"].startswith(("no triple", "no node")), answer


def test_the_web_view_is_served_at_the_root_with_its_files_and_nothing_else(served):
    with urllib.request.urlopen(served.url + "/") as answer:
        page = answer.read().decode()
        assert answer.headers["Content-Type"].startswith("text/html")
        assert "default-src 'self'" in answer.headers["Content-Security-Policy"]
    assert '<script src="/web/app.js" type="module">' in page and "https://" not in page  # no CDN
    for path, kind in (("/web/app.js", "text/javascript"), ("/web/style.css", "text/css"),
                       ("/web/vendor/cytoscape.min.js", "text/javascript")):
        with urllib.request.urlopen(served.url + path) as answer:
            assert answer.headers["Content-Type"].startswith(kind) and answer.read()
    for path in ("/web/../api.py", "/web/__init__.py", "/web/package.json", "/web/%2e%2e/serve.py"):
        status, answer = served.request("GET", path)
        assert status == 404 and "no route" in answer["error"], path
