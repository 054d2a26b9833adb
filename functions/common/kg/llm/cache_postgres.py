"""The LLM response cache in the graph's PostgreSQL (table llm_cache, migration 003)."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from kg.db import Database
from kg.llm.cache import CachedResponse


class PostgresLlmCache:
    def __init__(self, db: Database):
        self.db = db

    def get_many(self, keys: Collection[str]) -> dict[str, CachedResponse]:
        if not keys:
            return {}
        with self.db.connection() as conn:
            rows = conn.execute(
                "SELECT key, model, content, input_tokens, output_tokens FROM llm_cache WHERE key = ANY(%s)",
                (list(keys),),
            ).fetchall()
        return {
            key: CachedResponse(model=model, content=content, input_tokens=i, output_tokens=o)
            for key, model, content, i, o in rows
        }

    def put_many(self, responses: Mapping[str, CachedResponse]) -> None:
        if not responses:
            return
        with self.db.connection() as conn, conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO llm_cache (key, model, content, input_tokens, output_tokens)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (key) DO NOTHING",
                [(key, r.model, r.content, r.input_tokens, r.output_tokens) for key, r in responses.items()],
            )
