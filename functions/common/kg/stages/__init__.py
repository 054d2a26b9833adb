"""The stage functions: plain functions over ports, shared by the local engine and the Lambda handlers.

Their inputs and outputs are the payloads of `kg.stages.contract`; docs/DESIGN.md has the table.
"""

from kg.stages.deduplicate import DedupParams, deduplicate, deduplicate_graph
from kg.stages.extract_chunk import extract_chunk, fail_chunk
from kg.stages.finalize import fail_job, finalize
from kg.stages.generate_concepts import generate_concepts
from kg.stages.merge_and_store import merge_and_store
from kg.stages.plan import ChunkingParams, PlannedDocument, plan

__all__ = [
    "ChunkingParams", "DedupParams", "PlannedDocument", "deduplicate", "deduplicate_graph", "extract_chunk",
    "fail_chunk", "fail_job", "finalize", "generate_concepts", "merge_and_store", "plan",
]
