"""Plan: hash and chunk the document, leave the chunks in the blob store, open the job in the ledger."""

from __future__ import annotations

import hashlib
import uuid

from pydantic import BaseModel

from kg.blobs import BlobStore, chunk_key, document_key
from kg.chunking import chunk_text
from kg.graph import DocumentRow
from kg.ledger import Ledger
from kg.models import DocumentInput, JobPlan
from kg.normalize import document_id
from kg.tokenizer import count_tokens


class ChunkingParams(BaseModel):
    max_tokens: int = 3000
    overlap_tokens: int = 200
    encoding: str = "o200k_base"


class PlannedDocument(BaseModel):
    """The job's document as merge_and_store will write it (text lives in the chunks)."""

    document: DocumentRow
    chunk_count: int


def plan(
    document: DocumentInput,
    blobs: BlobStore,
    ledger: Ledger,
    chunking: ChunkingParams,
    job_id: str | None = None,
) -> JobPlan:
    job_id = job_id or str(uuid.uuid4())
    doc_id = document_id(document.source)
    ledger.create_job(job_id, document.source)
    chunks = chunk_text(document.text, str(doc_id), chunking.max_tokens, chunking.overlap_tokens, chunking.encoding)
    row = DocumentRow(
        id=doc_id,
        source=document.source,
        source_type=document.source_type,
        source_date=document.source_date,
        content_hash=hashlib.sha256(document.text.encode()).hexdigest(),
        chars=len(document.text),
        tokens=count_tokens(document.text, chunking.encoding),
    )
    for chunk in chunks:
        blobs.put(chunk_key(job_id, chunk.index), chunk.model_dump_json().encode())
    blobs.put(document_key(job_id), PlannedDocument(document=row, chunk_count=len(chunks)).model_dump_json().encode())
    ledger.start_extraction(job_id, str(doc_id), len(chunks))
    return JobPlan(
        job_id=job_id, document_id=str(doc_id), source=document.source,
        chunk_count=len(chunks), content_hash=row.content_hash, tokens=row.tokens,
    )
