"""The Migrate function, as CloudFormation's custom resource calls it on deploy."""

from __future__ import annotations

import pytest

from kg.aws.ports import aws_ports
from kg.db import latest_schema_version
from kg.errors import StoreMismatch
from tests.aws.conftest import migrate
from tests.support.handlers import MIGRATE, HandlerDriver


def test_create_applies_every_migration_and_update_applies_none(graph_database):
    created = migrate()
    assert created["PhysicalResourceId"] == "kg-graph-schema"
    assert created["Data"]["SchemaVersion"] == str(latest_schema_version())
    assert created["Data"]["Applied"].startswith("001_graph.sql")
    assert migrate()["Data"]["Applied"] == "none"
    assert aws_ports().graph.stats().documents == 0  # the functions open it without migrating


def test_delete_leaves_the_database_alone(graph_database):
    migrate()
    event = {"RequestType": "Delete", "PhysicalResourceId": "kg-graph-schema",
             "ResourceProperties": {"EmbeddingModel": "text-embedding-3-small", "EmbeddingDimensions": "64"}}
    assert HandlerDriver().call(MIGRATE, event) == {"PhysicalResourceId": "kg-graph-schema"}
    assert aws_ports().graph.stats().documents == 0


def test_another_embedding_space_fails_the_deploy(graph_database, monkeypatch):
    migrate()
    monkeypatch.setenv("KG_EMBEDDING_PROVIDER", "openai")
    monkeypatch.setenv("KG_EMBEDDING_DIMENSIONS", "64")
    with pytest.raises(StoreMismatch, match="cannot take text-embedding-3-small vectors of 64"):
        migrate()
