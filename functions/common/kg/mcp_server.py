"""`kg mcp`: the knowledge graph as an MCP server on stdio (the official `mcp` SDK).

Tools: process_knowledge (a document in, its job id out; the job runs in the background),
get_pipeline_status, search_knowledge_graph, search_concepts, get_knowledge_graph_stats.

Each tool's parameters are the fields of the request model the `kg` commands and the HTTP API
validate with (kg.search.SearchRequest, ConceptRequest, kg.api.JobSubmission): the schema the server
advertises is built from those fields, and every call is validated again by the model itself (its
cross-field rules too). A request that breaks them, or that the pipeline refuses, comes back as a
tool error with the reason; the server goes on.

The engine is KG_ENGINE: local (the jobs run in this process, kg.serve.LocalBackend), or aws (the
deployed stack KG_STACK_NAME: jobs start executions, searches go to its API).
"""

from __future__ import annotations

import inspect
import json
import threading
import typing
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import urlencode

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field, ValidationError

from kg.api import JobSubmission, JobSummary
from kg.errors import KgError
from kg.models import ChunkStatus, DocumentInput
from kg.search import (
    ConceptRequest,
    SearchRequest,
    describe_validation_error,
    search,
    search_concepts,
)
from kg.settings import Settings

INSTRUCTIONS = (
    "A knowledge graph of triples (subject, predicate, object) extracted from documents. "
    "process_knowledge adds a document and answers a job id at once; get_pipeline_status follows the job. "
    "search_knowledge_graph finds triples by meaning and words; search_concepts finds the concepts that "
    "group the graph's elements; get_knowledge_graph_stats counts what the graph holds."
)


def model_parameters(model: type[BaseModel], names: list[str], required: tuple[str, ...] = ()
                     ) -> list[inspect.Parameter]:
    """Keyword parameters for `names` of `model`, each with its field's type, constraints, description
    and default: what the SDK turns into the tool's advertised (and validated) input schema."""
    parameters = []
    for name in names:
        info = model.model_fields[name]
        kind = info.annotation
        if name in required:  # `str | None` in the model (it has alternatives), a plain `str` here
            kind = next(a for a in typing.get_args(kind) if a is not type(None)) if typing.get_args(kind) else kind
        annotation = Annotated[(kind, *info.metadata, Field(description=info.description))]
        if info.is_required() or name in required:
            default = inspect.Parameter.empty
        else:
            default = info.get_default(call_default_factory=True)
        parameters.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation,
                                            default=default))
    return parameters


def with_parameters(parameters: list[inspect.Parameter], call: Callable[..., Any]) -> Callable[..., str]:
    """`call` as a tool function with these parameters; its answer as JSON, a refusal as a tool error."""

    def tool(**arguments: Any) -> str:
        try:
            return json.dumps(call(**arguments), default=str)
        except ValidationError as e:
            raise ToolError(describe_validation_error(e)) from None
        except KgError as e:  # InvalidInput, NotFound, a store or provider out of reach: the reason, as is
            raise ToolError(str(e)) from None

    tool.__signature__ = inspect.Signature(parameters, return_annotation=str)  # type: ignore[attr-defined]
    return tool


class Engine:
    """The backend of the tools, opened at the first call that needs it (so that a database out of
    reach is a tool error, not a server that does not start)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._lock = threading.Lock()
        self._backend: Any = None
        self._stack: Any = None

    @property
    def aws(self) -> bool:
        return self.settings.engine == "aws"

    def backend(self) -> Any:
        with self._lock:
            if self._backend is None:
                from kg.serve import LocalBackend

                self._backend = LocalBackend(self.settings)
            return self._backend

    def stack(self) -> Any:
        with self._lock:
            if self._stack is None:
                from kg.engine.aws import DeployedStack

                self._stack = DeployedStack.connect(self.settings)
            return self._stack

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()


def build_server(settings: Settings) -> tuple[MCPServer, Engine]:
    engine = Engine(settings)
    server = MCPServer("kg", instructions=INSTRUCTIONS)

    def process_knowledge(**fields: Any) -> dict[str, Any]:
        submission = JobSubmission.model_validate(fields)
        if engine.aws:
            from kg.stages.contract import JobOptions

            stack = engine.stack()
            assert submission.text is not None
            document = DocumentInput(text=submission.text, source=submission.source,
                                     source_type=submission.source_type, source_date=submission.source_date)
            defaults = JobOptions(concepts=settings.concepts, dedup=settings.dedup)
            options = defaults.model_copy(update=submission.options.model_dump(exclude_none=True))
            job = stack.submit(document, options)
            return {"job_id": job.job_id, "status": job.status, "started": job.started}
        job = engine.backend().submit(submission)
        return {"job_id": job.job_id, "status": job.status, "started": job.started}

    def get_pipeline_status(job_id: str) -> dict[str, Any]:
        ledger = engine.stack().ports.ledger if engine.aws else engine.backend().ledger
        record = ledger.get(job_id, with_chunks=True)
        failed = [c.model_dump(mode="json") for c in record.chunks
                  if c.status in (ChunkStatus.FAILED, ChunkStatus.PARTIAL)]
        return {**JobSummary.of(record).model_dump(mode="json"), "finished": record.status.finished,
                "failed_chunks": failed}

    def search_knowledge_graph(**fields: Any) -> dict[str, Any]:
        request = SearchRequest.model_validate(fields)
        if engine.aws:
            params = request.model_dump(mode="json", exclude_none=True, exclude={"weights"})
            params.update({f"weight_{name}": value for name, value in request.weights.model_dump().items()})
            return engine.stack().call_api("GET", "search?" + urlencode(params, doseq=True))
        backend = engine.backend()
        return search(request, backend.graph, backend.embedder).model_dump(mode="json")

    def search_concepts_tool(**fields: Any) -> dict[str, Any]:
        request = ConceptRequest.model_validate(fields)
        if engine.aws:
            params = request.model_dump(mode="json", exclude_none=True)
            return engine.stack().call_api("GET", "concepts?" + urlencode(params))
        backend = engine.backend()
        return search_concepts(request, backend.graph, backend.embedder).model_dump(mode="json")

    def get_knowledge_graph_stats() -> dict[str, Any]:
        stats = engine.stack().stats() if engine.aws else engine.backend().graph.stats()
        return stats.model_dump(mode="json")

    job_id = inspect.Parameter("job_id", inspect.Parameter.KEYWORD_ONLY,
                               annotation=Annotated[str, Field(min_length=1, max_length=100,
                                                               description="The id process_knowledge answered")])
    tools: list[tuple[str, str, list[inspect.Parameter], Callable[..., Any]]] = [
        ("process_knowledge",
         ("Add a document to the knowledge graph. Answers at once with the job's id (the same document, "
          "type, date and options again is the same job); follow it with get_pipeline_status."),
         model_parameters(JobSubmission, ["text", "source", "source_type", "source_date", "options"],
                          required=("text",)), process_knowledge),
        ("get_pipeline_status",
         ("A job's status (QUEUED, RUNNING, WAITING, INTERRUPTED, SUCCEEDED, PARTIAL, FAILED), stage, progress, "
          "what it stored, and its error."), [job_id], get_pipeline_status),
        ("search_knowledge_graph",
         ("Find the triples that best answer a query: entity, relationship, statement and concept matches "
          "(cosine similarity and words), merged by weighted reciprocal-rank fusion, each with its sources."),
         model_parameters(SearchRequest, list(SearchRequest.model_fields)), search_knowledge_graph),
        ("search_concepts",
         ("Find the concepts (abstractions over the graph's entities, events and relations) nearest a query, "
          "of one abstraction level if asked, each with the elements it covers."),
         model_parameters(ConceptRequest, list(ConceptRequest.model_fields)), search_concepts_tool),
        ("get_knowledge_graph_stats", "Totals of the graph: documents, triples by type, entities, concepts, ...",
         [], get_knowledge_graph_stats),
    ]
    for name, description, parameters, call in tools:
        server.tool(name=name, description=description, structured_output=False)(with_parameters(parameters, call))
    return server, engine


def serve_stdio(settings: Settings) -> None:
    server, engine = build_server(settings)
    try:
        server.run()
    finally:
        engine.close()
