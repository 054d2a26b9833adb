"""The stage functions: plain functions over ports, shared by the local engine and the Lambda handlers."""

from kg.stages.extract_chunk import extract_chunk
from kg.stages.finalize import finalize
from kg.stages.merge_and_store import merge_and_store
from kg.stages.plan import PlannedDocument, plan

__all__ = ["PlannedDocument", "extract_chunk", "finalize", "merge_and_store", "plan"]
