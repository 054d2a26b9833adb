"""Finalize: SUCCEEDED, PARTIAL (some chunks or types failed, the rest stored) or FAILED."""

from __future__ import annotations

from kg.ledger import Ledger
from kg.models import JobStatus, StoreSummary


def finalize(
    job_id: str,
    ledger: Ledger,
    summary: StoreSummary | None,
    error: str | None = None,
    extra_counts: dict[str, object] | None = None,
) -> JobStatus:
    """FAILED when nothing was stored; PARTIAL when a chunk, a type or a later stage failed (`error`
    then says what) but the graph holds the rest; SUCCEEDED otherwise."""
    if summary is None:
        status = JobStatus.FAILED
    elif summary.chunks_failed or summary.chunks_partial or error:
        status = JobStatus.PARTIAL
    else:
        status = JobStatus.SUCCEEDED
    counts = {} if summary is None else {
        "triples": summary.triples.as_dict(),
        "entities": summary.entities,
        "events": summary.events,
        "relations": summary.relations,
        "embeddings": summary.embeddings.model_dump(),
        "new_rows": summary.new_rows,
        **(extra_counts or {}),
    }
    ledger.finish(job_id, status, counts, error)
    return status
