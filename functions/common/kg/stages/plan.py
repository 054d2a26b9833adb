"""Plan: read and check the document, chunk it, leave the chunks in the blob store, open the job.

Everything that can refuse the document (bytes that are not text, too many chunks) runs before the
job is opened, so a refused document leaves no job behind; the chunking parameters are checked when
they are made (ChunkingParams), before any document is read. Calling plan again with the same request
and parameters writes the same blobs and changes nothing in the ledger: that is how `kg resume`
picks a job up again.
"""

from __future__ import annotations

import hashlib

from pydantic import BaseModel, Field, model_validator

from kg.blobs import BlobStore, chunk_key, document_key
from kg.chunking import chunk_text
from kg.documents import decode_document
from kg.errors import InvalidInput
from kg.graph import DocumentRow
from kg.ledger import Lease, Ledger
from kg.normalize import document_id
from kg.stages.contract import MAX_CHUNKS, JobPlan, PlanRequest
from kg.settings import TokenizerEncoding
from kg.tokenizer import count_tokens


class ChunkingParams(BaseModel):
    max_tokens: int = Field(default=3000, ge=1)
    overlap_tokens: int = Field(default=200, ge=0)
    encoding: TokenizerEncoding = "o200k_base"
    max_document_bytes: int = Field(default=10_000_000, ge=1)

    @model_validator(mode="after")
    def _overlap_below_size(self) -> ChunkingParams:
        if self.overlap_tokens >= self.max_tokens:
            raise ValueError(f"an overlap of {self.overlap_tokens} tokens must be below the chunk size "
                             f"({self.max_tokens})")
        return self


class PlannedDocument(BaseModel):
    """The job's document as merge_and_store will write it (text lives in the chunks)."""

    document: DocumentRow
    chunk_count: int


def plan(request: PlanRequest, blobs: BlobStore, ledger: Ledger, chunking: ChunkingParams,
         lease: Lease | None = None) -> JobPlan:
    """`lease`: the local engine's process holds the job from its creation (the AWS engine takes none)."""
    document = decode_document(blobs.get(request.text_key), request.source, chunking.max_document_bytes,
                               request.source_type, request.source_date)
    doc_id = document_id(document.source)
    chunks = chunk_text(document.text, str(doc_id), chunking.max_tokens, chunking.overlap_tokens, chunking.encoding)
    if len(chunks) > MAX_CHUNKS:
        raise InvalidInput(
            f"{document.source}: {len(chunks):,} chunks of {chunking.max_tokens} tokens is over the limit of "
            f"{MAX_CHUNKS:,} per document; split it, or raise KG_CHUNK_TOKENS"
        )
    row = DocumentRow(
        id=doc_id,
        source=document.source,
        source_type=document.source_type,
        source_date=document.source_date,
        content_hash=hashlib.sha256(document.text.encode()).hexdigest(),
        chars=len(document.text),
        tokens=count_tokens(document.text, chunking.encoding),
    )
    ledger.create_job(request.job_id, document.source, lease)
    for chunk in chunks:
        blobs.put(chunk_key(request.job_id, chunk.index), chunk.model_dump_json().encode())
    planned = PlannedDocument(document=row, chunk_count=len(chunks))
    blobs.put(document_key(request.job_id), planned.model_dump_json().encode())
    ledger.start_extraction(request.job_id, str(doc_id), len(chunks))
    return JobPlan(
        job_id=request.job_id, document_id=str(doc_id), source=document.source, chunk_count=len(chunks),
        tokens=row.tokens, content_hash=row.content_hash, options=request.options, items=list(range(len(chunks))),
    )
