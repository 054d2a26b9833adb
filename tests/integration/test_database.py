"""The graph database: explicit migrations, the schema check on open, the embedding space, unreachable
servers, KG_DATABASE_URL checked and shown without its password."""

from __future__ import annotations

import psycopg
import pytest

from kg import db as kg_db
from kg.db import Database, apply_migrations
from kg.errors import InvalidInput, SchemaOutdated, StoreMismatch, StoreUnavailable
from kg.settings import Settings


def public_tables(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()[0]


def test_migrations_are_idempotent(database_url):
    bundled = [name for _, name, _ in kg_db._migrations()]
    assert apply_migrations(database_url, "model-a", 384) == bundled
    assert apply_migrations(database_url, "model-a", 384) == []
    with psycopg.connect(database_url) as conn:
        versions = [v for (v,) in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
    assert versions == [v for v, _, _ in kg_db._migrations()] and versions[:2] == [1, 2]
    assert public_tables(database_url) >= 8


def test_a_fresh_database_opened_without_migrating_is_refused_with_the_command_to_run(database_url):
    with pytest.raises(SchemaOutdated, match=r"no kg schema yet .*run `kg db migrate`"):
        Database(database_url, "model-a", 384)
    assert public_tables(database_url) == 0  # the check creates nothing


def test_opening_with_migrate_applies_them_and_later_opens_only_check(database_url):
    Database(database_url, "model-a", 384, migrate=True).close()
    with Database(database_url, "model-a", 384) as db, db.connection() as conn:
        assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] == len(kg_db._migrations())


def test_a_database_missing_the_latest_migration_is_detected_and_migrate_applies_only_it(database_url, monkeypatch):
    bundled = kg_db._migrations()
    *older, (latest, latest_name, _) = bundled
    with monkeypatch.context() as m:  # as an earlier release of kg migrated it
        m.setattr(kg_db, "_migrations", lambda: older)
        apply_migrations(database_url, "model-a", 384)
    with pytest.raises(SchemaOutdated) as refused:
        Database(database_url, "model-a", 384)
    message = str(refused.value)
    assert f"schema version {older[-1][0]}" in message and f"needs version {latest}" in message
    assert latest_name in message and "run `kg db migrate`" in message
    assert apply_migrations(database_url, "model-a", 384) == [latest_name]
    Database(database_url, "model-a", 384).close()


def test_a_store_refuses_another_embedding_dimension_or_model(database_url):
    apply_migrations(database_url, "model-a", 384)
    with pytest.raises(StoreMismatch, match="384 dimensions"):
        Database(database_url, "model-a", 1536)
    with pytest.raises(StoreMismatch, match="model-a"):
        Database(database_url, "model-b", 384)
    with pytest.raises(StoreMismatch, match="model-a"):
        apply_migrations(database_url, "model-b", 384)


def test_an_unreachable_database_is_a_clear_error(tmp_path):
    url = f"postgresql://nobody@/kg?host={tmp_path}&connect_timeout=2"
    with pytest.raises(StoreUnavailable, match="cannot reach the graph database"):
        Database(url, "model-a", 384)
    with pytest.raises(StoreUnavailable, match="cannot reach the graph database"):
        apply_migrations(url, "model-a", 384)


def test_more_dimensions_than_hnsw_can_index_is_refused_before_anything_is_written(database_url):
    with pytest.raises(InvalidInput, match="KG_EMBEDDING_DIMENSIONS"):
        Database(database_url, "text-embedding-3-large", 3072, migrate=True)
    with pytest.raises(InvalidInput, match="KG_EMBEDDING_DIMENSIONS"):
        apply_migrations(database_url, "text-embedding-3-large", 3072)
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT to_regclass('public.kg_meta')").fetchone()[0] is None


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://kg:s3cret@db.example:5432/kg?sslmode=require",
     "postgresql://kg:***@db.example:5432/kg?sslmode=require"),
    ("postgres://kg@/kg?host=/run/pg&password=s3cret", "postgres://kg@/kg?host=/run/pg&password=***"),
    ("postgresql://kg@db.example/kg", "postgresql://kg@db.example/kg"),
    ("host=db.example password=s3cret dbname=kg", "host=db.example password=*** dbname=kg"),
    ("host=db.example password = 'it\\'s secret' dbname=kg", "host=db.example password=*** dbname=kg"),
])
def test_urls_are_shown_without_their_password(url, shown):
    assert kg_db.redact_url(url) == shown


@pytest.mark.parametrize("url", ["not a url", "mysql://kg:s3cret@db/kg", "postgresql://kg:s3cret@db:five/kg",
                                 "postgresql://kg:s3cret@db:99999/kg"])
def test_a_url_that_is_no_postgresql_url_is_a_bad_setting_that_does_not_repeat_it(url):
    with pytest.raises(InvalidInput, match="KG_DATABASE_URL") as refused:
        kg_db.checked_database_url(url)
    assert "s3cret" not in str(refused.value) and "\n" not in str(refused.value)


def test_opening_a_database_with_a_bad_url_is_a_bad_setting(tmp_path):
    settings = Settings(database_url="postgresql://kg@db:port/kg", data_dir=tmp_path)
    with pytest.raises(InvalidInput, match="port"):
        kg_db.open_database(settings, "model-a", 384)
