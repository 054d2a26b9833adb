"""Migration 011 on a database that a racing delete left with orphans: they go, the good rows stay,
and from then on a concept link cannot outlive its element."""

from __future__ import annotations

import uuid

import psycopg
import pytest

import kg.db as db_module
from kg.db import migrate

DIMENSIONS = 8
VECTOR = "[" + ",".join(["0.1"] * DIMENSIONS) + "]"


@pytest.fixture
def before_011(database_url: str, monkeypatch: pytest.MonkeyPatch):
    """A database migrated up to (not including) 011, and a connection to it."""
    bundled = db_module._migrations()
    monkeypatch.setattr(db_module, "_migrations", lambda: [m for m in bundled if m[0] < 11])
    with psycopg.connect(database_url, autocommit=True) as conn:
        migrate(conn, "test-model", DIMENSIONS)
        monkeypatch.setattr(db_module, "_migrations", lambda: bundled)
        yield conn


def add_node(conn, name: str) -> uuid.UUID:
    node = uuid.uuid4()
    conn.execute("INSERT INTO nodes (id, kind, name, normalised, embedding) VALUES (%s, 'entity', %s, %s, %s)",
                 (node, name, name.lower(), VECTOR))
    return node


def add_concept(conn, name: str) -> uuid.UUID:
    concept = uuid.uuid4()
    conn.execute("INSERT INTO concepts (id, name, normalised, level, embedding) VALUES (%s, %s, %s, 'high', %s)",
                 (concept, name, name, VECTOR))
    return concept


def link(conn, element: uuid.UUID, kind: str, concept: uuid.UUID) -> None:
    conn.execute("INSERT INTO conceptualizations (element_id, element_kind, concept_id, confidence)"
                 " VALUES (%s, %s, %s, 0.9)", (element, kind, concept))


def test_011_removes_orphan_links_and_concepts_keeps_the_rest_and_cascades_from_then_on(before_011):
    conn = before_011
    marie = add_node(conn, "Marie Curie")
    person, ghost_only, shared = add_concept(conn, "person"), add_concept(conn, "ghost"), add_concept(conn, "thing")
    link(conn, marie, "node", person)
    link(conn, marie, "node", shared)
    deleted_node, deleted_relation = uuid.uuid4(), uuid.uuid4()  # what a racing delete removed
    link(conn, deleted_node, "node", ghost_only)
    link(conn, deleted_relation, "relation", shared)
    link(conn, marie, "relation", ghost_only)  # a node's id under the wrong kind names no relation

    assert "011_document_locks.sql" in migrate(conn, "test-model", DIMENSIONS)

    links = set(conn.execute("SELECT element_id, concept_id FROM conceptualizations").fetchall())
    assert links == {(marie, person), (marie, shared)}
    concepts = {name for (name,) in conn.execute("SELECT name FROM concepts")}
    assert concepts == {"person", "thing"}  # "ghost" (and its vector) had only orphan links

    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        link(conn, uuid.uuid4(), "node", person)
    conn.execute("DELETE FROM nodes WHERE id = %s", (marie,))
    assert conn.execute("SELECT count(*) FROM conceptualizations").fetchone()[0] == 0
