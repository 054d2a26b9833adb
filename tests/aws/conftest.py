"""The AWS engine's handlers on moto (S3, DynamoDB, Secrets Manager, Step Functions) and the real
embedded PostgreSQL: every test runs inside one moto mock, with the environment the stack gives the
functions, and the handlers' container state (ports, Powertools' secret cache) fresh."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from psycopg.conninfo import conninfo_to_dict

from kg.aws.ports import AwsPorts, aws_ports, embedding_space, reset_ports
from kg.settings import Settings
# The integration layer's text and session models, shared rather than copied (a conftest's names are its fixtures).
from tests.integration.conftest import conceptualizer, embedder, many_paragraphs  # noqa: F401
from tests.support.aws import DUMMY_ENVIRONMENT, create_ledger_table, make_bucket, serialize_moto_dynamodb
from tests.support.handlers import API, MIGRATE, HandlerDriver, load_handler
from tests.support.sfn import FakeLambdaContext

BUCKET = "kg-test-blobs"
TABLE = "kg-test-ledger"
STATE_MACHINE = "kg-pipeline"
OPENAI_SECRET = "kg/openai-api-key"
# Any definition will do: these tests drive the handlers themselves; the execution only records its input.
PASS_DEFINITION = json.dumps({"StartAt": "Wait", "States": {"Wait": {"Type": "Pass", "End": True}}})

@pytest.fixture(autouse=True)
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto for every service, the bucket, the ledger table and a state machine; the stack's
    environment (KG_*, POWERTOOLS_*) with small chunks; nothing of the developer's own settings."""
    for name in [n for n in os.environ if n.startswith(("KG_", "OPENAI_", "AWS_"))]:
        monkeypatch.delenv(name)
    for name, value in DUMMY_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "kg-test")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "KgTest")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "1")
    from aws_lambda_powertools.utilities import parameters
    from moto import mock_aws

    with mock_aws():
        serialize_moto_dynamodb(monkeypatch)
        make_bucket(boto3.client("s3"), BUCKET)
        create_ledger_table(boto3.client("dynamodb"), TABLE)
        machine = boto3.client("stepfunctions").create_state_machine(
            name=STATE_MACHINE, definition=PASS_DEFINITION, roleArn="arn:aws:iam::123456789012:role/kg-states")
        for name, value in {
            "KG_BLOB_BUCKET": BUCKET, "KG_LEDGER_TABLE": TABLE, "KG_STATE_MACHINE_ARN": machine["stateMachineArn"],
            "KG_LLM_PROVIDER": "offline", "KG_EMBEDDING_PROVIDER": "offline",
            "KG_CHUNK_TOKENS": "200", "KG_CHUNK_OVERLAP_TOKENS": "20", "KG_MAX_CONCURRENCY": "3",
        }.items():
            monkeypatch.setenv(name, value)
        parameters.clear_caches()
        reset_ports()
        yield
        reset_ports()
        parameters.clear_caches()


@pytest.fixture
def graph_database(new_database, pg_server, monkeypatch: pytest.MonkeyPatch) -> str:
    """A new database, reachable by the handlers only through a Secrets Manager secret shaped as the
    one RDS generates (KG_DATABASE_SECRET_ARN). Not migrated: `migrate()` does it as a deploy does."""
    url = new_database()
    parts = conninfo_to_dict(url)
    secret = {"engine": "postgres", "host": parts["host"], "port": pg_server.get_postmaster_info().port or 5432,
              "username": parts["user"], "password": parts.get("password") or "", "dbname": parts["dbname"]}
    arn = boto3.client("secretsmanager").create_secret(Name="kg/database", SecretString=json.dumps(secret))["ARN"]
    monkeypatch.setenv("KG_DATABASE_SECRET_ARN", arn)
    return url


@pytest.fixture
def openai_secret(monkeypatch: pytest.MonkeyPatch) -> str:
    """The OpenAI key in Secrets Manager as the deploy instructions store it (the plain key), named by
    KG_OPENAI_SECRET_NAME; never in the environment."""
    boto3.client("secretsmanager").create_secret(Name=OPENAI_SECRET, SecretString="test-key")
    monkeypatch.setenv("KG_OPENAI_SECRET_NAME", OPENAI_SECRET)
    return OPENAI_SECRET


@pytest.fixture
def fake_openai(monkeypatch: pytest.MonkeyPatch, openai_secret: str):
    """The openai provider for extraction, concepts and embeddings, on the fake server."""
    from tests.support.fake_openai import FakeOpenAI

    with FakeOpenAI() as fake:
        for name, value in {
            "KG_LLM_PROVIDER": "openai", "KG_EMBEDDING_PROVIDER": "openai", "KG_OPENAI_BASE_URL": fake.url,
            "KG_EMBEDDING_DIMENSIONS": "64", "KG_LLM_TIMEOUT_S": "10", "KG_LLM_BACKOFF_BASE_S": "0.001",
            "KG_LLM_BACKOFF_MAX_S": "0.01",
        }.items():
            monkeypatch.setenv(name, value)
        yield fake


@pytest.fixture
def offline_ports(embedder, conceptualizer) -> AwsPorts:  # noqa: F811 (the fixtures imported above)
    """The container's ports with the session's offline embedder and conceptualizer put in place
    (loaded once per session) and the scripted extractor; S3, DynamoDB and the database as built."""
    from tests.support.extractors import ScriptedExtractor

    ports = aws_ports()
    ports.extractor = ScriptedExtractor()
    ports.embedder = embedder
    ports.conceptualizer = conceptualizer
    return ports


def migrate(driver: HandlerDriver | None = None) -> dict[str, Any]:
    """The Migrate function's Create event, as CloudFormation sends it on the first deploy."""
    model, dimensions = embedding_space(Settings())
    event = {
        "RequestType": "Create", "RequestId": str(uuid.uuid4()), "ResponseURL": "https://cloudformation.invalid/",
        "ResourceType": "Custom::KgMigrations", "LogicalResourceId": "Migrations",
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/kg/1",
        "ResourceProperties": {"ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:provider",
                               "MigrationsHash": "test", "EmbeddingModel": model,
                               "EmbeddingDimensions": str(dimensions)},
    }
    return (driver or HandlerDriver()).call(MIGRATE, event)


def api_event(method: str, path: str, body: Any = None, query: dict[str, str] | None = None,
              resource: str | None = None, path_parameters: dict[str, str] | None = None) -> dict[str, Any]:
    """An API Gateway REST proxy event (path as the client sent it, path parameters decoded)."""
    return {
        "resource": resource or path, "path": path, "httpMethod": method,
        "headers": {"content-type": "application/json"}, "multiValueHeaders": {},
        "queryStringParameters": query, "multiValueQueryStringParameters": None,
        "pathParameters": path_parameters, "stageVariables": None,
        "requestContext": {"resourcePath": resource or path, "httpMethod": method, "stage": "v1",
                           "requestId": str(uuid.uuid4()), "accountId": "123456789012", "path": f"/v1{path}",
                           "identity": {"sourceIp": "127.0.0.1"}},
        "body": body if body is None or isinstance(body, str) else json.dumps(body),
        "isBase64Encoded": False,
    }


def call_api(event: dict[str, Any]) -> tuple[int, Any]:
    """The API function's answer: status code and decoded JSON body."""
    response = load_handler(API).handler(event, FakeLambdaContext(function_name="kg-api"))
    return response["statusCode"], json.loads(response["body"]) if response.get("body") else None


def submit(text: str, source: str, options: dict[str, bool] | None = None) -> dict[str, Any]:
    """POST /jobs, then the execution input the API started the pipeline with (its plan request)."""
    status, body = call_api(api_event("POST", "/jobs", {"source": source, "text": text, "options": options or {}}))
    assert status == 202, body
    sfn = boto3.client("stepfunctions")
    arn = os.environ["KG_STATE_MACHINE_ARN"].replace(":stateMachine:", ":execution:") + f":{body['job_id']}"
    return json.loads(sfn.describe_execution(executionArn=arn)["input"])


def ledger() -> Any:
    return aws_ports().ledger
