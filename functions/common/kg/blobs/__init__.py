"""The blob store port: where plan leaves the chunks and each extract step leaves its result.

Between stages only keys and counts travel (a Step Functions payload is capped at 256 KB); the
text and the triples sit here. Local engine: a folder. AWS: an S3 bucket.
"""

from __future__ import annotations

from typing import Protocol


class BlobStore(Protocol):
    def put(self, key: str, data: bytes) -> None: ...

    def get(self, key: str) -> bytes:
        """Raises NotFound for a missing key."""
        ...

    def delete_prefix(self, prefix: str) -> None: ...


def document_key(job_id: str) -> str:
    return f"jobs/{job_id}/document.json"


def chunk_key(job_id: str, index: int) -> str:
    return f"jobs/{job_id}/chunks/{index:06d}.json"


def result_key(job_id: str, index: int) -> str:
    return f"jobs/{job_id}/results/{index:06d}.json"


def text_key(job_id: str) -> str:
    """The submitted document's bytes, before plan has read and checked them."""
    return f"jobs/{job_id}/input.txt"


def stage_key(job_id: str, stage: str, name: str) -> str:
    """What a stage keeps between its calls (an embedding plan, embedded slices, candidate pairs),
    so that a call after `more`, or a retry, continues instead of starting again."""
    return f"jobs/{job_id}/{stage}/{name}"


def job_prefix(job_id: str) -> str:
    """Everything of a job that is only needed until it ends (the local engine deletes it at the end;
    in AWS a lifecycle rule expires it)."""
    return f"jobs/{job_id}/"


def error_key(job_id: str, name: str) -> str:
    """The whole text of an error whose bounded form is in the ledger; kept after the job ends."""
    return f"errors/{job_id}/{name}.txt"


def get_optional(blobs: BlobStore, key: str) -> bytes | None:
    """The blob, or None where there is none."""
    from kg.errors import NotFound

    try:
        return blobs.get(key)
    except NotFound:
        return None
