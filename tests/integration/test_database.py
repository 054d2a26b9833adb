"""Opening the graph database: migrations, the embedding space it was made for, unreachable servers."""

from __future__ import annotations

import psycopg
import pytest

from kg.db import Database
from kg.errors import StoreMismatch, StoreUnavailable


def test_migrations_are_idempotent(database_url):
    from kg.db import _migrations

    for _ in range(2):
        Database(database_url, "model-a", 384).close()
    with psycopg.connect(database_url) as conn:
        versions = [v for (v,) in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()[0]
    assert versions == [v for v, _, _ in _migrations()] and versions[:2] == [1, 2]
    assert tables >= 8


def test_a_store_refuses_another_embedding_dimension_or_model(database_url):
    Database(database_url, "model-a", 384).close()
    with pytest.raises(StoreMismatch, match="384 dimensions"):
        Database(database_url, "model-a", 1536)
    with pytest.raises(StoreMismatch, match="model-a"):
        Database(database_url, "model-b", 384)


def test_an_unreachable_database_is_a_clear_error(tmp_path):
    with pytest.raises(StoreUnavailable, match="cannot reach the graph database"):
        Database(f"postgresql://nobody@/kg?host={tmp_path}&connect_timeout=2", "model-a", 384)


def test_more_dimensions_than_hnsw_can_index_is_refused_before_anything_is_written(database_url):
    from kg.errors import InvalidInput

    with pytest.raises(InvalidInput, match="KG_EMBEDDING_DIMENSIONS"):
        Database(database_url, "text-embedding-3-large", 3072)
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT to_regclass('public.kg_meta')").fetchone()[0] is None
