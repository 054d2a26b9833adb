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


def job_prefix(job_id: str) -> str:
    return f"jobs/{job_id}/"
