"""`kg db migrate`: the schema as an explicit, idempotent step; other commands migrate on first use."""

from __future__ import annotations

import psycopg

from kg.db import _migrations


def applied_versions(database_url: str) -> list[int]:
    with psycopg.connect(database_url) as conn:
        return [v for (v,) in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]


def test_migrate_applies_every_migration_then_is_a_no_op(kg, database_url):
    bundled = _migrations()
    first = kg("db", "migrate", "--json")
    assert first.code == 0, first.stderr
    assert first.json() == {"applied": [name for _, name, _ in bundled], "schema_version": bundled[-1][0]}
    assert applied_versions(database_url) == [v for v, _, _ in bundled]

    second = kg("db", "migrate")
    assert second.code == 0, second.stderr
    assert f"schema version {bundled[-1][0]}: up to date, nothing applied" in second.stdout
    assert applied_versions(database_url) == [v for v, _, _ in bundled]


def test_read_commands_on_a_new_database_migrate_it_and_answer(kg, database_url):
    stats = kg("stats", "--json")
    assert stats.code == 0, stats.stderr
    assert stats.json()["triples"] == 0
    assert kg("jobs", "--json").json() == []
    assert kg("db", "migrate", "--json").json()["applied"] == []


def test_migrate_with_bad_settings_exits_2_and_writes_nothing(kg, database_url):
    run = kg("db", "migrate", extra_env={"KG_MAX_CONCURRENCY": "0"})
    assert run.code == 2 and "max_concurrency" in run.stderr and "Traceback" not in run.stderr
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT to_regclass('public.schema_migrations')").fetchone()[0] is None


def test_the_embedded_server_starts_in_a_data_dir_that_does_not_exist_yet(kg, tmp_path):
    """A new user's first command: no KG_DATABASE_URL, a KG_DATA_DIR nobody has made."""
    data_dir = tmp_path / "new" / "kg"
    env = {"KG_DATABASE_URL": "", "KG_DATA_DIR": str(data_dir)}
    try:
        run = kg("db", "migrate", "--json", extra_env=env)
        assert run.code == 0, run.stderr
        assert run.json()["applied"] and (data_dir / "pgdata" / "PG_VERSION").exists()
    finally:
        kg("db", "stop", extra_env=env)
