"""The stage functions: plain functions over ports, shared by the local engine and the Lambda handlers."""

from kg.stages.deduplicate import DedupParams, deduplicate
from kg.stages.extract_chunk import extract_chunk
from kg.stages.finalize import finalize
from kg.stages.generate_concepts import generate_concepts
from kg.stages.merge_and_store import merge_and_store
from kg.stages.plan import PlannedDocument, plan

__all__ = [
    "DedupParams", "PlannedDocument", "deduplicate", "extract_chunk", "finalize", "generate_concepts",
    "merge_and_store", "plan",
]
