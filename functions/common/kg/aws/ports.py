"""The AWS engine's ports, built once per Lambda container from Settings and the environment.

Each port is made on first use, so a function builds only what it touches: ExtractChunk never
opens the database (it runs outside the VPC, and its LLM cache is S3), and a function that calls
neither the LLM nor the embedding API never reads the OpenAI key (it is not granted it). `aws_ports()` is the container's one instance, kept
between invocations; `reset_ports()` drops it (tests, or after the settings changed). A test may
also put a fake in place by assigning the attribute (`aws_ports().extractor = ...`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any

import boto3
from psycopg.conninfo import make_conninfo
from pydantic import SecretStr

from kg.blobs.s3 import S3BlobStore
from kg.errors import KgError, ProviderUnavailable
from kg.ledger.dynamodb import DynamoDbLedger
from kg.llm.cache_s3 import S3LlmCache
from kg.providers import (
    chunking_params,
    dedup_params,
    default_conceptualizer,
    default_embedder,
    default_extractor,
    embedding_space,
)
from kg.settings import Settings
from kg.stages import ChunkingParams, DedupParams

if TYPE_CHECKING:
    from kg.concepts import Conceptualizer
    from kg.db import Database
    from kg.embeddings import Embedder
    from kg.extraction import Extractor
    from kg.graph.postgres import PostgresGraphStore

# The database the stack creates (infra/stack.py DATABASE_NAME), for a secret that names none.
DEFAULT_DATABASE = "kg"
# A Lambda serves one invocation at a time: a few connections cover a stage's threads, and many
# concurrent functions times a small pool stays within Aurora's connection limit.
POOL_SIZE = 4


class MissingSetting(KgError):
    """A setting the AWS engine needs is not in the function's environment (a deployment error)."""


class AwsPorts:
    def __init__(self, settings: Settings | None = None):
        self.settings = settings or Settings()

    # -- S3 and DynamoDB: every function ----------------------------------------------------------
    @cached_property
    def s3(self) -> Any:
        return boto3.client("s3")

    @cached_property
    def blobs(self) -> S3BlobStore:
        return S3BlobStore(self._required("blob_bucket"), client=self.s3)

    @cached_property
    def ledger(self) -> DynamoDbLedger:
        return DynamoDbLedger(self._required("ledger_table"))

    @cached_property
    def executions(self) -> Any:
        """The Step Functions client (the API and the S3 upload start executions)."""
        return boto3.client("stepfunctions")

    @property
    def state_machine_arn(self) -> str:
        return self._required("state_machine_arn")

    # -- the LLM and embeddings: the OpenAI key is read from Secrets Manager only here -------------
    @cached_property
    def llm_cache(self) -> S3LlmCache:
        """One cache for extraction and concepts, in the bucket (the extract step cannot reach the database)."""
        return S3LlmCache(self._required("blob_bucket"), client=self.s3)

    @cached_property
    def llm_settings(self) -> Settings:
        """The settings with the OpenAI key, when a provider is openai and the key is not in the environment."""
        s = self.settings
        if "openai" not in (s.llm_provider, s.embedding_provider) or s.openai_api_key or not s.openai_secret_name:
            return s
        return s.model_copy(update={"openai_api_key": SecretStr(openai_key(read_secret(s.openai_secret_name)))})

    @cached_property
    def extractor(self) -> Extractor:
        return default_extractor(self.llm_settings, self.llm_cache)

    @cached_property
    def embedder(self) -> Embedder:
        return default_embedder(self.llm_settings)

    @cached_property
    def conceptualizer(self) -> Conceptualizer:
        return default_conceptualizer(self.llm_settings, self.llm_cache)

    # -- the graph database: the functions in the VPC ----------------------------------------------
    @cached_property
    def database_url(self) -> str:
        if self.settings.database_url:
            return self.settings.database_url
        return database_conninfo(json.loads(read_secret(self._required("database_secret_arn"))))

    @cached_property
    def db(self) -> Database:
        """The graph database, its schema checked (never migrated here: the Migrate function does that)."""
        from kg.db import Database

        model, dimensions = embedding_space(self.settings)
        return Database(self.database_url, model, dimensions, max_size=POOL_SIZE)

    @cached_property
    def graph(self) -> PostgresGraphStore:
        from kg.graph.postgres import PostgresGraphStore

        return PostgresGraphStore(self.db, bulk_load_ratio=self.settings.bulk_load_ratio)

    # -- parameters of the stages --------------------------------------------------------------------
    def chunking(self) -> ChunkingParams:
        return chunking_params(self.settings)

    def dedup(self) -> DedupParams:
        return dedup_params(self.settings)

    def close(self) -> None:
        if "db" in self.__dict__:
            self.db.close()

    def _required(self, name: str) -> str:
        value = getattr(self.settings, name)
        if not value:
            raise MissingSetting(f"KG_{name.upper()} is not set: the AWS engine's functions get it from the stack")
        return value


_ports: AwsPorts | None = None


def aws_ports() -> AwsPorts:
    """The container's ports: built at the first invocation, reused by the next ones."""
    global _ports
    if _ports is None:
        _ports = AwsPorts()
    return _ports


def reset_ports() -> None:
    """Close and drop the container's ports; the next `aws_ports()` builds them again from the environment."""
    global _ports
    if _ports is not None:
        _ports.close()
    _ports = None


def read_secret(name: str) -> str:
    """A secret's string, through Powertools (cached for a few seconds within the container)."""
    from aws_lambda_powertools.utilities import parameters

    value = parameters.get_secret(name)
    if not isinstance(value, str):
        raise ProviderUnavailable(f"the secret {name} holds no string")
    return value


def openai_key(secret: str) -> str:
    """The key from its secret: the key itself, or JSON with `OPENAI_API_KEY` or `api_key`."""
    secret = secret.strip()
    if secret.startswith("{"):
        values = json.loads(secret)
        secret = str(values.get("OPENAI_API_KEY") or values.get("api_key") or "").strip()
    if not secret:
        raise ProviderUnavailable("the OpenAI secret is empty (KG_OPENAI_SECRET_NAME)")
    return secret


def database_conninfo(secret: Mapping[str, Any]) -> str:
    """A libpq connection string from a secret shaped as RDS generates it (host, port, username,
    password, dbname). TLS is required, since the cluster sets rds.force_ssl; a secret may say
    otherwise with `sslmode` (libpq ignores it on a Unix socket)."""
    missing = [key for key in ("host", "username", "password") if key not in secret]
    if missing:
        raise ProviderUnavailable(f"the database secret lacks {', '.join(missing)} (KG_DATABASE_SECRET_ARN)")
    return make_conninfo(
        host=str(secret["host"]),
        port=str(secret.get("port") or 5432),
        user=str(secret["username"]),
        password=str(secret["password"]),
        dbname=str(secret.get("dbname") or DEFAULT_DATABASE),
        sslmode=str(secret.get("sslmode") or "require"),
        application_name="kg",
    )
