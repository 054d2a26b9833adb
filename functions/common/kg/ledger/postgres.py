"""The job ledger in the graph's PostgreSQL (local engine)."""

from __future__ import annotations

import uuid

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from kg.db import Database
from kg.errors import NotFound
from kg.ledger import STAGE_PROGRESS, Lease, LeaseHeld, check_resumable, extract_progress, when
from kg.models import ChunkState, ChunkStatus, JobRecord, JobStatus, LlmUsage, Stage

_FAILED_STATES = [ChunkStatus.FAILED.value, ChunkStatus.PARTIAL.value]
# The states a process may move on (set_stage, start_extraction): not ended, not interrupted.
_UNFINISHED = [JobStatus.QUEUED.value, JobStatus.RUNNING.value, JobStatus.WAITING.value]
# A job's row as read: the lease is compared with the database's clock, so that every process
# agrees on when it lapsed whatever its own clock says.
_SELECT_JOB = "SELECT *, lease_until < now() AS lapsed FROM jobs"


def _uuid(job_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(job_id)
    except ValueError as e:
        raise NotFound(f"no job {job_id!r}: a job id is a UUID") from e


class PostgresLedger:
    def __init__(self, db: Database):
        self.db = db

    def create_job(self, job_id: str, source: str, lease: Lease | None = None) -> None:
        job = _uuid(job_id)
        with self.db.connection() as conn, conn.transaction():
            created = conn.execute(
                "INSERT INTO jobs (id, source, status, stage, progress, lease_owner, lease_until)"
                " VALUES (%s, %s, %s, %s, 0, %s, now() + make_interval(secs => %s)) ON CONFLICT (id) DO NOTHING",
                (job, source, JobStatus.QUEUED.value, Stage.PLAN.value, lease.owner if lease else None,
                 lease.seconds if lease else None),
            ).rowcount
            if created or lease is None:
                return
            row = conn.execute("SELECT status, lease_owner, lease_until, lease_until < now() FROM jobs"
                               " WHERE id = %s FOR UPDATE", (job,)).fetchone()
            status, owner, until, lapsed = row
            if status not in _UNFINISHED:
                return  # ended or interrupted: plan's later writes leave it alone too
            if owner not in (None, lease.owner) and not lapsed:
                raise LeaseHeld(f"job {job} is held by {owner} until {when(until)}")
            _grant(conn, job, lease)

    def renew_lease(self, job_id: str, lease: Lease) -> bool:
        job = _uuid(job_id)
        with self.db.connection() as conn:
            renewed = conn.execute(
                "UPDATE jobs SET lease_until = now() + make_interval(secs => %s)"
                " WHERE id = %s AND lease_owner = %s AND status = ANY(%s)",
                (lease.seconds, job, lease.owner, _UNFINISHED),
            ).rowcount
            if not renewed:
                _must_exist(conn, job)
            return bool(renewed)

    def take_over(self, job_id: str, lease: Lease) -> JobRecord:
        job = _uuid(job_id)
        with self.db.connection() as conn, conn.transaction():
            # The row lock makes the check and the grant one step: of two resumes, the second waits
            # here and then finds the first one's live lease.
            row = conn.execute("SELECT status, lease_owner, lease_until, lease_until < now() FROM jobs"
                               " WHERE id = %s FOR UPDATE", (job,)).fetchone()
            if row is None:
                raise NotFound(f"no job {job_id}")
            status, owner, until, lapsed = JobStatus(row[0]), row[1], row[2], row[3]
            check_resumable(job_id, status, owner, until, lapsed)
            _grant(conn, job, lease)
            conn.execute("UPDATE jobs SET status = %s, error = NULL, updated_at = now() WHERE id = %s",
                         (JobStatus.RUNNING.value, job))
        return self.get(job_id, with_chunks=False)

    def interrupt(self, job_id: str, owner: str, error: str) -> bool:
        job = _uuid(job_id)
        with self.db.connection() as conn:
            stopped = conn.execute(
                "UPDATE jobs SET status = %s, error = %s, lease_owner = NULL, lease_until = NULL, updated_at = now()"
                " WHERE id = %s AND status = ANY(%s) AND (lease_owner = %s OR lease_owner IS NULL)",
                (JobStatus.INTERRUPTED.value, error, job, _UNFINISHED, owner),
            ).rowcount
            if not stopped:
                _must_exist(conn, job)
            return bool(stopped)

    def latest_job(self, source: str) -> JobRecord | None:
        with self.db.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(f"{_SELECT_JOB} WHERE source = %s ORDER BY created_at DESC, id DESC LIMIT 1",
                              (source,)).fetchone()
            if row is None:
                return None
            by_stage = _usage_by_job(conn, [row["id"]])[row["id"]]
        return _record(row, [], by_stage)

    def start_extraction(self, job_id: str, document_id: str, chunks_total: int) -> None:
        job = _uuid(job_id)
        with self.db.connection() as conn, conn.transaction():
            if _lock_job(conn, job) not in (JobStatus.QUEUED, JobStatus.RUNNING):
                return
            conn.execute(
                "UPDATE jobs SET status = %s, stage = %s, progress = GREATEST(progress, %s), document_id = %s,"
                " chunks_total = %s, updated_at = now() WHERE id = %s",
                (JobStatus.RUNNING.value, Stage.EXTRACT.value, STAGE_PROGRESS[Stage.EXTRACT],
                 uuid.UUID(document_id), chunks_total, job),
            )
            conn.execute(
                "INSERT INTO job_chunks (job_id, idx, status) SELECT %s, i, %s FROM generate_series(0, %s - 1) i"
                " ON CONFLICT DO NOTHING",
                (job, ChunkStatus.PENDING.value, chunks_total),
            )
            _recount(conn, job)

    def record_chunk(self, job_id: str, chunk: ChunkState, usage: LlmUsage | None = None) -> None:
        job = _uuid(job_id)
        with self.db.connection() as conn, conn.transaction():
            # The job row is locked before the chunk row is written, so that concurrent chunks of a
            # job serialise here (locking it after the insert's foreign-key share lock deadlocks).
            _lock_job(conn, job)
            conn.execute(
                "INSERT INTO job_chunks (job_id, idx, status, error, triples, llm, attempts)"
                " VALUES (%s, %s, %s, %s, %s, %s, 1)"
                " ON CONFLICT (job_id, idx) DO UPDATE SET status = EXCLUDED.status, error = EXCLUDED.error,"
                " triples = EXCLUDED.triples, llm = EXCLUDED.llm, attempts = job_chunks.attempts + 1,"
                " updated_at = now()",
                (job, chunk.index, chunk.status.value, chunk.error, chunk.triples,
                 Jsonb((usage or LlmUsage()).model_dump())),
            )
            _recount(conn, job)

    def record_usage(self, job_id: str, stage: Stage, usage: LlmUsage, part: str = "") -> None:
        job = _uuid(job_id)
        with self.db.connection() as conn, conn.transaction():
            _lock_job(conn, job)
            conn.execute(
                "INSERT INTO job_stage_llm (job_id, stage, part, llm) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (job_id, stage, part) DO UPDATE SET llm = EXCLUDED.llm, updated_at = now()",
                (job, stage.value, part, Jsonb(usage.model_dump())),
            )
            conn.execute("UPDATE jobs SET llm = %s, updated_at = now() WHERE id = %s",
                         (Jsonb(_total(_usage_by_job(conn, [job])[job]).model_dump()), job))

    def set_stage(self, job_id: str, stage: Stage, counts: dict[str, object] | None = None) -> None:
        job = _uuid(job_id)
        with self.db.connection() as conn:
            updated = conn.execute(
                "UPDATE jobs SET stage = %s, progress = GREATEST(progress, %s), counts = counts || %s,"
                " updated_at = now() WHERE id = %s AND status = ANY(%s)",
                (stage.value, STAGE_PROGRESS[stage], Jsonb(counts or {}), job, _UNFINISHED),
            ).rowcount
            if not updated:
                _must_exist(conn, job)

    def wait_for_batch(self, job_id: str, batch_id: str | None) -> None:
        job = _uuid(job_id)
        status = JobStatus.WAITING if batch_id else JobStatus.RUNNING
        with self.db.connection() as conn:
            updated = conn.execute(
                "UPDATE jobs SET status = %s, batch_id = COALESCE(%s, batch_id), updated_at = now()"
                " WHERE id = %s AND status = ANY(%s)",
                (status.value, batch_id, job, _UNFINISHED),
            ).rowcount
            if not updated:
                _must_exist(conn, job)

    def finish(
        self, job_id: str, status: JobStatus, counts: dict[str, object] | None = None, error: str | None = None
    ) -> bool:
        if not status.finished:
            raise ValueError(f"a job ends SUCCEEDED, PARTIAL or FAILED, not {status}")
        job = _uuid(job_id)
        with self.db.connection() as conn, conn.transaction():
            current = _lock_job(conn, job)
            if current.finished:
                # The same status again is a retried finalize whose first attempt got through.
                return current is status
            conn.execute(
                "UPDATE jobs SET status = %s, stage = %s, progress = 100, counts = counts || %s, error = %s,"
                " lease_owner = NULL, lease_until = NULL, updated_at = now() WHERE id = %s",
                (status.value, Stage.FINALIZE.value, Jsonb(counts or {}), error, job),
            )
            return True

    def get(self, job_id: str, with_chunks: bool = True) -> JobRecord:
        job = _uuid(job_id)
        with self.db.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(f"{_SELECT_JOB} WHERE id = %s", (job,)).fetchone()
            if row is None:
                raise NotFound(f"no job {job_id}")
            by_stage = _usage_by_job(conn, [job])[job]
            chunks = []
            if with_chunks:
                chunks = cur.execute(
                    "SELECT idx AS index, status, error, triples, attempts FROM job_chunks WHERE job_id = %s ORDER BY idx",
                    (job,),
                ).fetchall()
        return _record(row, chunks, by_stage)

    def list_jobs(self, limit: int = 20) -> list[JobRecord]:
        with self.db.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(f"{_SELECT_JOB} ORDER BY created_at DESC, id DESC LIMIT %s",
                               (max(limit, 0),)).fetchall()
            by_job = _usage_by_job(conn, [r["id"] for r in rows])
        return [_record(r, [], by_job[r["id"]]) for r in rows]


def _lock_job(conn: psycopg.Connection, job: uuid.UUID) -> JobStatus:
    row = conn.execute("SELECT status FROM jobs WHERE id = %s FOR UPDATE", (job,)).fetchone()
    if row is None:
        raise NotFound(f"no job {job}")
    return JobStatus(row[0])


def _grant(conn: psycopg.Connection, job: uuid.UUID, lease: Lease) -> None:
    conn.execute("UPDATE jobs SET lease_owner = %s, lease_until = now() + make_interval(secs => %s),"
                 " updated_at = now() WHERE id = %s", (lease.owner, lease.seconds, job))


def _must_exist(conn: psycopg.Connection, job: uuid.UUID) -> None:
    if conn.execute("SELECT 1 FROM jobs WHERE id = %s", (job,)).fetchone() is None:
        raise NotFound(f"no job {job}")


def _recount(conn: psycopg.Connection, job: uuid.UUID) -> None:
    """Counters, progress and cost recounted from the chunk rows (the caller holds the job row's
    lock): recording a chunk twice cannot count it twice."""
    total, done, failed = conn.execute(
        "SELECT j.chunks_total, count(c.idx) FILTER (WHERE c.status <> %s),"
        " count(c.idx) FILTER (WHERE c.status = ANY(%s))"
        " FROM jobs j LEFT JOIN job_chunks c ON c.job_id = j.id WHERE j.id = %s GROUP BY j.chunks_total",
        (ChunkStatus.PENDING.value, _FAILED_STATES, job),
    ).fetchone()
    conn.execute(
        "UPDATE jobs SET chunks_done = %s, chunks_failed = %s, progress = GREATEST(progress, %s),"
        " llm = %s, updated_at = now() WHERE id = %s",
        (done, failed, extract_progress(done, total) if total else 0,
         Jsonb(_total(_usage_by_job(conn, [job])[job]).model_dump()), job),
    )


def _usage_by_job(conn: psycopg.Connection, jobs: list[uuid.UUID]) -> dict[uuid.UUID, dict[str, LlmUsage]]:
    """Each job's usage by stage: EXTRACT from its chunk rows, the later stages from job_stage_llm
    (summed over their parts); stages without usage left out."""
    rows = conn.execute(
        "SELECT job_id, %s::text, llm FROM job_chunks WHERE job_id = ANY(%s)"
        " UNION ALL SELECT job_id, stage, llm FROM job_stage_llm WHERE job_id = ANY(%s)",
        (Stage.EXTRACT.value, jobs, jobs),
    ).fetchall()
    usage: dict[uuid.UUID, dict[str, LlmUsage]] = {job: {} for job in jobs}
    for job, stage, llm in rows:
        usage[job][stage] = usage[job].get(stage, LlmUsage()).add(LlmUsage.model_validate(llm or {}))
    return {job: {stage: u for stage, u in by_stage.items() if u != LlmUsage()} for job, by_stage in usage.items()}


def _total(by_stage: dict[str, LlmUsage]) -> LlmUsage:
    total = LlmUsage()
    for usage in by_stage.values():
        total = total.add(usage)
    return total


def _record(row: dict, chunks: list[dict], by_stage: dict[str, LlmUsage] | None = None) -> JobRecord:
    status = row["status"]
    if status in _UNFINISHED and row["lapsed"]:
        status = JobStatus.INTERRUPTED.value  # its process stopped renewing: it died
    return JobRecord(
        job_id=str(row["id"]),
        source=row["source"],
        document_id=str(row["document_id"]) if row["document_id"] else None,
        status=status,
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
        lease_owner=row["lease_owner"],
        lease_until=row["lease_until"],
        batch_id=row.get("batch_id"),
    )
