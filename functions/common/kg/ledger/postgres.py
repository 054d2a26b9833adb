"""The job ledger in the graph's PostgreSQL (local engine)."""

from __future__ import annotations

import uuid

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from kg.db import Database
from kg.errors import NotFound
from kg.ledger import STAGE_PROGRESS, extract_progress
from kg.models import ChunkState, ChunkStatus, JobRecord, JobStatus, LlmUsage, Stage

_FAILED_STATES = [ChunkStatus.FAILED.value, ChunkStatus.PARTIAL.value]


def _uuid(job_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(job_id)
    except ValueError as e:
        raise NotFound(f"no job {job_id!r}: a job id is a UUID") from e


class PostgresLedger:
    def __init__(self, db: Database):
        self.db = db

    def create_job(self, job_id: str, source: str) -> None:
        with self.db.connection() as conn:
            conn.execute(
                "INSERT INTO jobs (id, source, status, stage, progress) VALUES (%s, %s, %s, %s, 0)"
                " ON CONFLICT (id) DO NOTHING",
                (_uuid(job_id), source, JobStatus.QUEUED.value, Stage.PLAN.value),
            )

    def start_extraction(self, job_id: str, document_id: str, chunks_total: int) -> None:
        job = _uuid(job_id)
        with self.db.connection() as conn, conn.transaction():
            conn.execute(
                "UPDATE jobs SET status = %s, stage = %s, progress = %s, document_id = %s, chunks_total = %s,"
                " updated_at = now() WHERE id = %s",
                (JobStatus.RUNNING.value, Stage.EXTRACT.value, STAGE_PROGRESS[Stage.EXTRACT],
                 uuid.UUID(document_id), chunks_total, job),
            )
            conn.execute(
                "INSERT INTO job_chunks (job_id, idx, status) SELECT %s, i, %s FROM generate_series(0, %s - 1) i"
                " ON CONFLICT DO NOTHING",
                (job, ChunkStatus.PENDING.value, chunks_total),
            )

    def record_chunk(self, job_id: str, chunk: ChunkState, usage: LlmUsage | None = None) -> None:
        job = _uuid(job_id)
        with self.db.connection() as conn, conn.transaction():
            conn.execute(
                "INSERT INTO job_chunks (job_id, idx, status, error, triples, llm) VALUES (%s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (job_id, idx) DO UPDATE SET status = EXCLUDED.status, error = EXCLUDED.error,"
                " triples = EXCLUDED.triples, llm = EXCLUDED.llm, updated_at = now()",
                (job, chunk.index, chunk.status.value, chunk.error, chunk.triples,
                 Jsonb((usage or LlmUsage()).model_dump())),
            )
            # Counters and cost are recounted from the chunk rows (the job row locked first, so that
            # concurrent chunks serialise here): recording a chunk twice cannot count it twice.
            (total,) = conn.execute("SELECT chunks_total FROM jobs WHERE id = %s FOR UPDATE", (job,)).fetchone()
            rows = conn.execute("SELECT status, llm FROM job_chunks WHERE job_id = %s", (job,)).fetchall()
            done = sum(status != ChunkStatus.PENDING for status, _ in rows)
            failed = sum(status in _FAILED_STATES for status, _ in rows)
            conn.execute(
                "UPDATE jobs SET chunks_done = %s, chunks_failed = %s, progress = GREATEST(progress, %s),"
                " llm = %s, updated_at = now() WHERE id = %s",
                (done, failed, extract_progress(done, total),
                 Jsonb(_total(_usage_by_stage(conn, job, [llm for _, llm in rows])).model_dump()), job),
            )

    def record_usage(self, job_id: str, stage: Stage, usage: LlmUsage) -> None:
        job = _uuid(job_id)
        with self.db.connection() as conn, conn.transaction():
            conn.execute("SELECT 1 FROM jobs WHERE id = %s FOR UPDATE", (job,))
            conn.execute(
                "INSERT INTO job_stage_llm (job_id, stage, llm) VALUES (%s, %s, %s)"
                " ON CONFLICT (job_id, stage) DO UPDATE SET llm = EXCLUDED.llm, updated_at = now()",
                (job, stage.value, Jsonb(usage.model_dump())),
            )
            conn.execute("UPDATE jobs SET llm = %s, updated_at = now() WHERE id = %s",
                         (Jsonb(_total(_usage_by_stage(conn, job)).model_dump()), job))

    def set_stage(self, job_id: str, stage: Stage, counts: dict[str, object] | None = None) -> None:
        with self.db.connection() as conn:
            conn.execute(
                "UPDATE jobs SET stage = %s, progress = GREATEST(progress, %s), counts = counts || %s,"
                " updated_at = now() WHERE id = %s",
                (stage.value, STAGE_PROGRESS[stage], Jsonb(counts or {}), _uuid(job_id)),
            )

    def finish(
        self, job_id: str, status: JobStatus, counts: dict[str, object] | None = None, error: str | None = None
    ) -> None:
        with self.db.connection() as conn:
            conn.execute(
                "UPDATE jobs SET status = %s, stage = %s, progress = 100, counts = counts || %s, error = %s,"
                " updated_at = now() WHERE id = %s",
                (status.value, Stage.FINALIZE.value, Jsonb(counts or {}), error, _uuid(job_id)),
            )

    def get(self, job_id: str, with_chunks: bool = True) -> JobRecord:
        job = _uuid(job_id)
        with self.db.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute("SELECT * FROM jobs WHERE id = %s", (job,)).fetchone()
            if row is None:
                raise NotFound(f"no job {job_id}")
            by_stage = _usage_by_stage(conn, job)
            chunks = []
            if with_chunks:
                chunks = cur.execute(
                    "SELECT idx AS index, status, error, triples FROM job_chunks WHERE job_id = %s ORDER BY idx",
                    (job,),
                ).fetchall()
        return _record(row, chunks, by_stage)

    def list_jobs(self, limit: int = 20) -> list[JobRecord]:
        with self.db.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute("SELECT * FROM jobs ORDER BY created_at DESC LIMIT %s", (limit,)).fetchall()
        return [_record(r, []) for r in rows]


def _usage_by_stage(conn, job: uuid.UUID, chunk_llm: list | None = None) -> dict[str, LlmUsage]:
    """EXTRACT from the chunk rows (unless the caller has read them), the later stages from
    job_stage_llm; stages without usage left out."""
    usage: dict[str, LlmUsage] = {}
    if chunk_llm is None:
        chunk_llm = [r[0] for r in conn.execute("SELECT llm FROM job_chunks WHERE job_id = %s", (job,))]
    stage_rows = conn.execute("SELECT stage, llm FROM job_stage_llm WHERE job_id = %s", (job,)).fetchall()
    for stage, llm in [(Stage.EXTRACT.value, c) for c in chunk_llm] + [tuple(r) for r in stage_rows]:
        usage[stage] = usage.get(stage, LlmUsage()).add(LlmUsage.model_validate(llm or {}))
    return {stage: u for stage, u in usage.items() if u != LlmUsage()}


def _total(by_stage: dict[str, LlmUsage]) -> LlmUsage:
    total = LlmUsage()
    for usage in by_stage.values():
        total = total.add(usage)
    return total


def _record(row: dict, chunks: list[dict], by_stage: dict[str, LlmUsage] | None = None) -> JobRecord:
    return JobRecord(
        job_id=str(row["id"]),
        source=row["source"],
        document_id=str(row["document_id"]) if row["document_id"] else None,
        status=row["status"],
        stage=row["stage"],
        progress=row["progress"],
        chunks_total=row["chunks_total"],
        chunks_done=row["chunks_done"],
        chunks_failed=row["chunks_failed"],
        counts=row["counts"] or {},
        llm=LlmUsage.model_validate(row["llm"] or {}),
        llm_by_stage=by_stage or {},
        error=row["error"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        chunks=[ChunkState.model_validate(c) for c in chunks],
    )
