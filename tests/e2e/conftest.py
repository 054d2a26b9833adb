"""The `kg` command as a user runs it: the installed console script, in a subprocess."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.cli import Run, kg_env, run_kg
from tests.support.embedded import fresh_database
from tests.support.fake_openai import FakeOpenAI

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "curie.txt"


def _runner(env: dict[str, str], cwd: Path) -> Callable[..., Run]:
    """`run(*args, extra_env=None, timeout=300)`: `kg *args` with `env` and `extra_env`, in `cwd`."""

    def run(*args: str, extra_env: dict[str, str] | None = None, timeout: float = 300) -> Run:
        return run_kg({**env, **(extra_env or {})}, *args, cwd=cwd, timeout=timeout)

    return run


@pytest.fixture
def kg(database_url: str, tmp_path: Path) -> Callable[..., Run]:
    return _runner(kg_env(database_url, tmp_path / "kg-data"), tmp_path)


@pytest.fixture
def document(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """The test module's TEXT, as the file curie.txt in the test's folder."""
    path = tmp_path / "curie.txt"
    path.write_text(request.module.TEXT)
    return path


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    """The fake OpenAI-compatible server (tests/support/fake_openai.py), answering as told."""
    with FakeOpenAI() as fake:
        yield fake


# -- `kg --engine aws`: a stack "deployed" on a moto server ----------------------------------------

STACK_NAME = "kg-e2e"
NO_API_STACK = "kg-e2e-no-api"  # the kg stack's outputs, its API URL on a port nobody listens on
OTHER_STACK = "kg-e2e-other"  # a stack that is not the kg stack
BUCKET = "kg-e2e-blobs"
TABLE = "kg-e2e-ledger"


@dataclass
class MotoStack:
    """What the fake deployment made, and the environment `kg` needs to reach it."""

    name: str
    bucket: str
    table: str
    state_machine_arn: str
    api: object  # tests.support.api_gateway.LocalRestApi
    env: dict[str, str]


def _outputs_template(outputs: dict[str, str]) -> str:
    """A stack with these outputs: deploying the CDK template itself into moto does not work
    (API Gateway stage, custom resources), so the deployment's outputs are stated as they would be."""
    return json.dumps({"Resources": {"Alarms": {"Type": "AWS::SNS::Topic"}},
                       "Outputs": {key: {"Value": value} for key, value in outputs.items()}})


@pytest.fixture(scope="module")
def moto_stack(pg_server, synth) -> Iterator[MotoStack]:
    """The stack's resources on a moto server: bucket, ledger table, the Lambda functions (each invoke
    runs its real handler in this process, with this process's environment: offline extraction and
    embeddings, the graph in a new database of the embedded PostgreSQL, reached through a Secrets
    Manager secret as in AWS), the synthesized state machine executing, the API as a local signed
    endpoint, and CloudFormation stacks whose outputs name them."""
    import boto3
    from aws_lambda_powertools.utilities import parameters
    from psycopg.conninfo import conninfo_to_dict

    from kg.aws.ports import embedding_space, reset_ports
    from kg.db import apply_migrations
    from kg.settings import Settings
    from tests.support.api_gateway import LocalRestApi
    from tests.support.aws import DUMMY_ENVIRONMENT, create_ledger_table, make_bucket, serialize_moto_dynamodb
    from tests.support.handlers import API, load_handler
    from tests.support.moto_server import free_port, moto_server
    from tests.support.pipeline import MotoPipeline

    with fresh_database(pg_server) as database_url, pytest.MonkeyPatch.context() as mp, moto_server() as server:
        for name in [n for n in os.environ if n.startswith(("KG_", "OPENAI_", "AWS_"))]:
            mp.delenv(name)
        aws_env = {**DUMMY_ENVIRONMENT, "AWS_ENDPOINT_URL": server.url}
        handler_env = {
            **aws_env, "MOTO_PORT": str(server.port), "POWERTOOLS_SERVICE_NAME": "kg-e2e",
            "POWERTOOLS_METRICS_NAMESPACE": "KgE2e", "POWERTOOLS_TRACE_DISABLED": "1",
            "KG_BLOB_BUCKET": BUCKET, "KG_LEDGER_TABLE": TABLE, "KG_LLM_PROVIDER": "offline",
            "KG_EMBEDDING_PROVIDER": "offline", "KG_CHUNK_TOKENS": "1000", "KG_CHUNK_OVERLAP_TOKENS": "100",
        }
        for name, value in handler_env.items():
            mp.setenv(name, value)
        serialize_moto_dynamodb(mp)
        make_bucket(boto3.client("s3"), BUCKET)
        create_ledger_table(boto3.client("dynamodb"), TABLE)

        parts = conninfo_to_dict(database_url)
        secret = {"engine": "postgres", "host": parts["host"], "port": pg_server.get_postmaster_info().port or 5432,
                  "username": parts["user"], "password": parts.get("password") or "", "dbname": parts["dbname"]}
        secret_arn = boto3.client("secretsmanager").create_secret(
            Name="kg/e2e-database", SecretString=json.dumps(secret))["ARN"]
        mp.setenv("KG_DATABASE_SECRET_ARN", secret_arn)
        apply_migrations(database_url, *embedding_space(Settings()))  # what the Migrate custom resource does

        parameters.clear_caches()
        reset_ports()
        try:
            with MotoPipeline(synth.template).running() as pipeline, LocalRestApi(load_handler(API).handler) as api:
                state_machine_arn = pipeline.arn
                mp.setenv("KG_STATE_MACHINE_ARN", state_machine_arn)
                outputs = {"BucketName": BUCKET, "LedgerTableName": TABLE, "StateMachineArn": state_machine_arn,
                           "ApiUrl": api.url, "DatabaseSecretArn": secret_arn}
                cloudformation = boto3.client("cloudformation")
                for name, stated in {
                    STACK_NAME: outputs,
                    NO_API_STACK: {**outputs, "ApiUrl": f"http://127.0.0.1:{free_port()}/v1/"},
                    OTHER_STACK: {"BucketName": BUCKET},
                }.items():
                    cloudformation.create_stack(StackName=name, TemplateBody=_outputs_template(stated))
                yield MotoStack(STACK_NAME, BUCKET, TABLE, state_machine_arn, api,
                                {**aws_env, "KG_STACK_NAME": STACK_NAME})
        finally:
            reset_ports()
            parameters.clear_caches()


@pytest.fixture
def kg_aws(moto_stack: MotoStack, tmp_path: Path) -> Callable[..., Run]:
    """The installed `kg` in a subprocess, as a user with AWS credentials runs it against the stack:
    only AWS's own settings and KG_STACK_NAME, none of the developer's KG_*, OPENAI_* or AWS_*."""
    env = kg_env(data_dir=tmp_path / "kg-data", scrub=("KG_", "OPENAI_", "AWS_", "MOTO_"), **moto_stack.env)
    return _runner(env, tmp_path)
