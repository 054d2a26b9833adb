"""Contract fixtures: each port once per implementation (local ones on the embedded PostgreSQL or a
folder, AWS ones on moto), so that one test module states what every implementation must do."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import psycopg
import pytest

from kg.blobs import BlobStore
from kg.blobs.folder import FolderBlobStore
from kg.blobs.s3 import S3BlobStore
from kg.db import Database, migrate
from kg.graph import GraphStore
from kg.graph.postgres import PostgresGraphStore
from kg.ledger import Ledger
from kg.ledger.dynamodb import DynamoDbLedger
from kg.ledger.postgres import PostgresLedger
from kg.llm.cache import LlmCache, MemoryLlmCache
from kg.llm.cache_postgres import PostgresLlmCache
from kg.llm.cache_s3 import S3LlmCache
from tests.support.aws import DUMMY_ENVIRONMENT, create_ledger_table, make_bucket, serialize_moto_dynamodb


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto for every AWS service; dummy credentials set before any client is made."""
    for name, value in DUMMY_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    from moto import mock_aws

    with mock_aws():
        yield


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    """A migrated graph database (tiny vectors: these ports store none). Migrated here explicitly,
    since opening a Database need not migrate (migrating again is a no-op)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        migrate(conn, "test-model", 8)
    with Database(database_url, "test-model", 8) as db:
        yield db


@pytest.fixture
def dynamodb_ledger(aws: None, monkeypatch: pytest.MonkeyPatch) -> DynamoDbLedger:
    serialize_moto_dynamodb(monkeypatch)
    client = boto3.client("dynamodb")
    create_ledger_table(client, "kg-ledger")
    return DynamoDbLedger("kg-ledger", client)


@pytest.fixture(params=["postgres", "dynamodb"])
def ledger(request: pytest.FixtureRequest) -> Ledger:
    if request.param == "postgres":
        return PostgresLedger(request.getfixturevalue("database"))
    return request.getfixturevalue("dynamodb_ledger")


@pytest.fixture
def s3_blob_store(aws: None) -> S3BlobStore:
    client = boto3.client("s3")
    make_bucket(client, "kg-blobs")
    # A store under a prefix of a shared bucket, so that the contract also covers the prefix.
    return S3BlobStore("kg-blobs", prefix="store/", client=client)


@pytest.fixture(params=["folder", "s3"])
def blob_store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "folder":
        return FolderBlobStore(tmp_path / "blobs")
    return request.getfixturevalue("s3_blob_store")


@pytest.fixture
def s3_llm_cache(aws: None) -> S3LlmCache:
    client = boto3.client("s3")
    make_bucket(client, "kg-llm-cache")
    return S3LlmCache("kg-llm-cache", client=client)


@pytest.fixture(params=["memory", "postgres", "s3"])
def llm_cache(request: pytest.FixtureRequest) -> LlmCache:
    if request.param == "memory":
        return MemoryLlmCache()
    if request.param == "postgres":
        return PostgresLlmCache(request.getfixturevalue("database"))
    return request.getfixturevalue("s3_llm_cache")


@pytest.fixture(params=["postgres"])
def graph_store(request: pytest.FixtureRequest) -> GraphStore:
    """Every GraphStore implementation (one today: the suite is where a second one must pass)."""
    return PostgresGraphStore(request.getfixturevalue("database"))
