"""What the AWS engine's orchestration costs: one document through the synthesized state machine,
executed by moto with the real handlers in-process (tests/support/pipeline.py: moto's S3, DynamoDB,
Secrets Manager and Step Functions interpreter), against the local engine on the same document, in
one run, with the same fake OpenAI server (its own process, the same latency) and the same settings.

Both engines get `--concurrency` chunks at once (the Map's MaxConcurrency, synthesized with
kg:mapMaxConcurrency, and the local engine's KG_MAX_CONCURRENCY) and write into fresh databases of
one embedded PostgreSQL. The AWS run is timed from POST /jobs (the API handler) to the moment a
client polling describe_execution every 20 ms sees it end; the local one is `kg.engine.local.ingest`.
LLM requests in flight are capped per process (KG_LLM_CONCURRENCY, default 16) in both runs, since
the moto run's functions share this process (in AWS each function instance has its own cap).
Each engine first runs a small warm-up document (imports, clients, connection pools), not timed.
Powertools logging and metrics are turned off (they are the same in both and print a line per call).
Both graphs are compared (tests/support/stages.py graph_fingerprint) so that the two runs did the same work.

    .venv/bin/python bench/aws_overhead.py [--chunks 40] [--latency 0.2] [--concurrency 8] [--concepts]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import embedded_server, fresh_database, machine, print_machine
from _llm_common import FakeServerProcess, document_of
from kg.models import Stage

BUCKET = "kg-bench-blobs"
TABLE = "kg-bench-ledger"
OPENAI_SECRET = "kg/openai-api-key"
# Names the bench document never uses, so the warm-up leaves nothing in the LLM cache or the graph
# that the timed document could reuse.
WARM_UP = ("Ada Lovelace wrote notes with Charles Babbage in London. The Analytical Engine never ran, "
           "yet Lovelace described its programs. Babbage admired her work.")


class PhaseClock:
    """The local engine's extraction phase, from its progress observer."""

    def __init__(self) -> None:
        self.marks: dict[Stage, float] = {}

    def stage_started(self, stage: Stage, total: int) -> None:
        self.marks.setdefault(stage, time.perf_counter())

    def advanced(self, stage: Stage, amount: int = 1) -> None:
        pass


def environment(args: argparse.Namespace, fake_url: str) -> dict[str, str]:
    """The functions' environment (as the stack sets it), which the local engine's Settings read too."""
    from tests.support.aws import DUMMY_ENVIRONMENT

    return {
        **DUMMY_ENVIRONMENT,
        "POWERTOOLS_SERVICE_NAME": "kg-bench", "POWERTOOLS_METRICS_NAMESPACE": "KgBench",
        "POWERTOOLS_TRACE_DISABLED": "1", "POWERTOOLS_METRICS_DISABLED": "true", "POWERTOOLS_LOG_LEVEL": "WARNING",
        "KG_BLOB_BUCKET": BUCKET, "KG_LEDGER_TABLE": TABLE, "KG_OPENAI_SECRET_NAME": OPENAI_SECRET,
        "KG_LLM_PROVIDER": "openai", "KG_EMBEDDING_PROVIDER": "openai", "KG_OPENAI_BASE_URL": fake_url,
        "KG_EMBEDDING_DIMENSIONS": "256", "KG_CHUNK_TOKENS": "200", "KG_CHUNK_OVERLAP_TOKENS": "20",
        "KG_EXTRACTION_MODE": args.mode, "KG_MAX_CONCURRENCY": str(args.concurrency),
        "KG_CONCEPTS": str(args.concepts).lower(), "KG_DEDUP": "false",
    }


def run_local(server, root: Path, text: str, warm_up: str):
    """(wall seconds, extraction seconds, report, graph fingerprint) of the timed document."""
    from kg.documents import decode_document
    from kg.engine.local import ingest, open_local_ports
    from kg.settings import Settings
    from pydantic import SecretStr

    from tests.support.stages import graph_fingerprint

    settings = Settings(database_url=fresh_database(server, "aws_overhead_local"),
                        data_dir=Path(tempfile.mkdtemp(dir=root)), openai_api_key=SecretStr("bench"))
    ports = open_local_ports(settings)
    try:
        ingest(decode_document(warm_up.encode(), "warm-up", settings.max_document_bytes), ports, settings)
        clock = PhaseClock()
        started = time.perf_counter()
        report = ingest(decode_document(text.encode(), "bench-doc", settings.max_document_bytes), ports, settings,
                        clock)
        wall = time.perf_counter() - started
        extraction = clock.marks[Stage.STORE] - clock.marks[Stage.EXTRACT]
        return wall, extraction, report, graph_fingerprint(ports.db)
    finally:
        ports.close()


def run_aws(server, pg_server_port: int, template: dict, text: str, warm_up: str, timeout_s: float):
    """(wall seconds, extraction seconds, the job's ledger record, graph fingerprint, execution)."""
    import boto3
    import pytest
    from aws_lambda_powertools.utilities import parameters
    from kg.aws.ports import aws_ports, embedding_space, reset_ports
    from kg.db import apply_migrations
    from kg.settings import Settings
    from moto import mock_aws
    from psycopg.conninfo import conninfo_to_dict

    from tests.aws.conftest import api_event, call_api
    from tests.support.aws import (
        create_ledger_table,
        make_bucket,
        serialize_moto_dynamodb,
    )
    from tests.support.pipeline import MotoPipeline
    from tests.support.stages import graph_fingerprint

    url = fresh_database(server, "aws_overhead_aws")
    apply_migrations(url, *embedding_space(Settings()))  # what the Migrate custom resource does on deploy
    parts = conninfo_to_dict(url)
    secret = {"engine": "postgres", "host": parts["host"], "port": pg_server_port, "username": parts["user"],
              "password": parts.get("password") or "", "dbname": parts["dbname"]}

    def post(body_text: str, source: str) -> str:
        status, body = call_api(api_event("POST", "/jobs", {"source": source, "text": body_text}))
        assert status == 202, body
        return body["job_id"]

    with pytest.MonkeyPatch.context() as mp, mock_aws():
        serialize_moto_dynamodb(mp)
        make_bucket(boto3.client("s3"), BUCKET)
        create_ledger_table(boto3.client("dynamodb"), TABLE)
        secrets = boto3.client("secretsmanager")
        secrets.create_secret(Name=OPENAI_SECRET, SecretString="bench")
        arn = secrets.create_secret(Name="kg/database", SecretString=json.dumps(secret))["ARN"]
        mp.setenv("KG_DATABASE_SECRET_ARN", arn)
        with MotoPipeline(template).running(timeout_s) as pipeline:
            mp.setenv("KG_STATE_MACHINE_ARN", pipeline.arn)
            parameters.clear_caches()
            reset_ports()
            try:
                warm = pipeline.wait(post(warm_up, "warm-up"), timeout_s)
                assert warm["status"] == "SUCCEEDED", warm
                started = time.perf_counter()
                job_id = post(text, "bench-doc")
                execution = pipeline.wait(job_id, timeout_s)
                wall = time.perf_counter() - started
                assert execution["status"] == "SUCCEEDED", execution
                events = pipeline.history(job_id)
                at = {e["type"]: e["timestamp"] for e in events if e["type"] in ("MapStateEntered", "MapStateExited")}
                extraction = (at["MapStateExited"] - at["MapStateEntered"]).total_seconds()
                job = aws_ports().ledger.get(job_id)
                return wall, extraction, job, graph_fingerprint(aws_ports().db), execution
            finally:
                reset_ports()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chunks", type=int, default=40)
    parser.add_argument("--latency", type=float, default=0.2, help="the fake LLM's seconds per request")
    parser.add_argument("--concurrency", type=int, default=8,
                        help="chunks at once: the Map's MaxConcurrency and KG_MAX_CONCURRENCY (the stack's default 8)")
    parser.add_argument("--mode", default="per_type", choices=["per_type", "combined"])
    parser.add_argument("--concepts", action="store_true", help="run the concepts stage too (both engines)")
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args()

    from kg.settings import Settings

    from tests.support.cdk import cdk_json_context, synthesize_without_layer

    synth_started = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="kg-bench-cdk-"))
    synthesis = synthesize_without_layer({**cdk_json_context(), "kg:mapMaxConcurrency": args.concurrency}, root)
    print(f"synthesized {synthesis.stack_name} in {time.perf_counter() - synth_started:.1f} s (not timed)")

    with embedded_server() as (server, db_root), FakeServerProcess(args.latency) as fake:
        os.environ.update(environment(args, fake.url))
        for name in [n for n in os.environ if n.startswith("OPENAI_")]:
            del os.environ[name]
        facts = fresh_database(server, "aws_overhead_facts")
        with psycopg.connect(facts, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        print_machine(machine(facts))
        document = document_of(args.chunks, Settings())
        requests_before = len(fake.stats()["chat"])
        local_wall, local_extraction, report, local_graph = run_local(server, db_root, document.text, WARM_UP)
        local_requests = len(fake.stats()["chat"]) - requests_before
        requests_before = len(fake.stats()["chat"])
        port = server.get_postmaster_info().port or 5432
        aws_wall, aws_extraction, job, aws_graph, execution = run_aws(server, port, synthesis.template,
                                                                      document.text, WARM_UP, args.timeout)
        aws_requests = len(fake.stats()["chat"]) - requests_before

    assert report.status.value == job.status.value == "SUCCEEDED", (report, job)
    assert report.chunks == args.chunks == job.chunks_total, (report.chunks, job.chunks_total)
    same = aws_graph == local_graph
    print(f"\n{args.chunks} chunks, mode {args.mode}, {args.concurrency} chunks at once, fake LLM "
          f"{args.latency * 1000:.0f} ms a request, concepts {'on' if args.concepts else 'off'}; "
          f"chat requests (both runs, warm-up included): local {local_requests}, aws {aws_requests}; "
          f"same graph: {'yes' if same else 'NO'} ({aws_graph['triples']} triples)")
    ran = (execution["stopDate"] - execution["startDate"]).total_seconds()
    print(f"local engine:            wall {local_wall:.2f} s (extraction {local_extraction:.2f} s)")
    print(f"state machine in moto:   wall {aws_wall:.2f} s (extraction, the Map, {aws_extraction:.2f} s; "
          f"the execution's own start to stop {ran:.2f} s)")
    print(f"ratio aws / local: {aws_wall / local_wall:.3f} (extraction {aws_extraction / local_extraction:.3f})")
    if not same:
        raise SystemExit("the two engines built different graphs: the timing compares different work")


if __name__ == "__main__":
    main()
