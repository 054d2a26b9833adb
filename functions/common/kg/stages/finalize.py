"""Finalize: SUCCEEDED, PARTIAL (some chunks or types failed, the rest stored) or FAILED."""

from __future__ import annotations

from kg.ledger import Ledger
from kg.models import JobStatus, StoreSummary


def finalize(job_id: str, ledger: Ledger, summary: StoreSummary | None, error: str | None = None) -> JobStatus:
    if summary is None:
        status = JobStatus.FAILED
    elif summary.chunks_failed or summary.chunks_partial:
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
    }
    ledger.finish(job_id, status, counts, error)
    return status
