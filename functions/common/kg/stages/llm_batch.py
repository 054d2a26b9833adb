"""Batch mode: a job's LLM requests answered through the provider's Batch API before the stage that
would send them runs (`kg ingest --llm-batch`, the job option `llm_batch`).

A phase (`extract`, before extraction; `concepts`, after store and before concept generation) gathers
the chat requests its stage would send, exactly (the same model, messages and schema, under the same
cache key), and sends the ones not cached already as one batch. When the batch ends, each answer that
parses is put in the LLM cache under its request's key; the stage then runs as usual and reads those
answers from the cache. A request the batch did not answer (a failed line, a batch that expired, was
cancelled or failed, a batch the provider refused) misses the cache and the stage sends it the normal
way: batch mode changes what a job costs and how long it takes, not what it finds.

The job is WAITING, its record naming the batch, while the provider works. The phase's state (its
batch id, whether the answers were collected) is kept with the job's blobs as soon as the batch
exists, so a job resumed after its process died polls the same batch and never sends a second one.

Costs: every answered line is costed at the batch price table and recorded once as the phase's stage
usage (part `batch-<id>`); the cache hits that follow cost nothing, and count as `cached`.

`llm_batch` (`advance` on the job's ports) is one step for any engine: it submits, or polls once, or
collects, and answers `more` while the provider works. The local engine calls it again after a
growing wait (kg.engine.local_batch); in AWS the LlmBatch task is called again after a Wait state
(infra/state_machine.py).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from enum import StrEnum
from typing import Any, Protocol

import openai
from pydantic import BaseModel, Field

from kg.blobs import BlobStore, chunk_key, get_optional, result_key, stage_key
from kg.errors import ProviderUnavailable
from kg.graph import GraphStore
from kg.ledger import Ledger
from kg.llm.batch import PENDING, BatchAnswer, BatchClient, describe
from kg.llm.cache import CachedResponse, LlmCache, NoLlmCache
from kg.llm.client import LlmClient
from kg.llm.pricing import Prices, estimate_cost
from kg.models import ALL_TRIPLE_TYPES, Chunk, ConceptElement, LlmUsage, Stage, TripleType
from kg.stages.contract import MAX_CHUNKS, Payload, StageProgress, bounded

log = logging.getLogger(__name__)

# OpenAI takes at most 50,000 requests in a batch; beyond them, requests go the normal way.
MAX_BATCH_REQUESTS = 50_000
# Elements read for the concept phase at most: a document's own elements, far fewer in practice.
MAX_CONCEPT_ELEMENTS = 1_000_000

Requests = dict[str, dict[str, Any]]  # cache key (the line's custom_id) -> chat request body


class BatchPhase(StrEnum):
    EXTRACT = "extract"
    CONCEPTS = "concepts"

    @property
    def stage(self) -> Stage:
        return Stage.EXTRACT if self is BatchPhase.EXTRACT else Stage.CONCEPTS


class BatchState(BaseModel):
    """One phase of one job, kept with its blobs."""

    batch_id: str | None = None
    # Written before the batch is created and sent in its metadata: a process that died between the
    # creation and the next write finds its batch by this token instead of sending another.
    token: str | None = None
    submitted_at: float | None = None  # epoch seconds
    requests: int = 0
    cancel_requested: bool = False
    collected: bool = False  # the phase is over: its answers (if any) are in the cache
    outcome: str | None = None


class BatchableExtractor(Protocol):
    def batch_requests(self, chunk: Chunk, types: Sequence[TripleType]) -> Requests: ...


class BatchableConceptualizer(Protocol):
    def batch_requests(self, batches: Sequence[Sequence[ConceptElement]]) -> Requests: ...


def state_key(job_id: str, phase: BatchPhase) -> str:
    return stage_key(job_id, "llm-batch", f"{phase.value}.json")


def read_state(blobs: BlobStore, job_id: str, phase: BatchPhase) -> BatchState | None:
    stored = get_optional(blobs, state_key(job_id, phase))
    return BatchState.model_validate_json(stored) if stored else None


def extraction_requests(job_id: str, items: Iterable[int], extractor: BatchableExtractor,
                        blobs: BlobStore) -> Requests:
    """What extraction will ask of the model: the chunks of the plan without a stored result."""
    requests: Requests = {}
    for index in items:
        if get_optional(blobs, result_key(job_id, index)) is None:
            chunk = Chunk.model_validate_json(blobs.get(chunk_key(job_id, index)))
            requests.update(extractor.batch_requests(chunk, ALL_TRIPLE_TYPES))
    return requests


def concept_requests(job_id: str, conceptualizer: BatchableConceptualizer, graph: GraphStore, ledger: Ledger,
                     batch_size: int) -> Requests:
    """What the concepts stage will ask: its elements in the batches it forms. Its next batch is always
    the next `batch_size` elements in id order that are neither done nor in flight, so its batches are
    consecutive slices of this list (a batch that comes out otherwise, after a failed one, misses the
    cache and is asked the normal way, no more)."""
    record = ledger.get(job_id, with_chunks=False)
    scope = uuid.UUID(record.document_id) if record.document_id else None
    elements = graph.elements_to_conceptualize(scope, MAX_CONCEPT_ELEMENTS)
    return conceptualizer.batch_requests([elements[i:i + batch_size] for i in range(0, len(elements), batch_size)])


class BatchRequest(Payload):
    """One step of a phase: what the local engine's loop passes, and the LlmBatch task's event between
    the state machine's waits (ids only, as every stage payload)."""

    job_id: str
    phase: BatchPhase
    items: list[int] = Field(default_factory=list, max_length=MAX_CHUNKS)  # extract: the plan's chunks


def llm_batch(request: BatchRequest, extractor: object, conceptualizer: object, graph: GraphStore | None,
              ledger: Ledger, blobs: BlobStore, prices: Prices, concept_batch_size: int, max_wait_s: float,
              now: Callable[[], float] = time.time) -> StageProgress:
    """One step of the phase with the job's ports (see `advance`). An extractor or conceptualizer that
    cannot send batches (the offline ones: `kg ingest` refuses --llm-batch with them, but a job may be
    resumed under other settings), or one without an LLM cache (where the answers would be lost, and
    paid for twice), has nothing to send: the phase is `done` at once and its stage runs the normal way.
    `prices`: the batch price table (kg.llm.pricing.batch_prices)."""
    port = extractor if request.phase is BatchPhase.EXTRACT else conceptualizer
    llm, cache = getattr(port, "llm", None), getattr(port, "cache", None)
    if not hasattr(port, "batch_requests") or not isinstance(llm, LlmClient) or cache is None \
            or isinstance(cache, NoLlmCache):
        log.warning("job %s: %s cannot send batches: its %s requests go the normal way", request.job_id,
                    getattr(port, "name", port), request.phase.value)
        return StageProgress(job_id=request.job_id, stage=request.phase.stage, state="done")

    def requests() -> Requests:
        if request.phase is BatchPhase.EXTRACT:
            return extraction_requests(request.job_id, request.items, port, blobs)  # type: ignore[arg-type]
        assert graph is not None, "the concepts phase reads the graph"
        return concept_requests(request.job_id, port, graph, ledger, concept_batch_size)  # type: ignore[arg-type]

    return advance(request.job_id, request.phase, requests, BatchClient(llm), cache, ledger, blobs, prices,
                   max_wait_s, now)


def advance(job_id: str, phase: BatchPhase, requests: Callable[[], Requests], batches: BatchClient,
            cache: LlmCache, ledger: Ledger, blobs: BlobStore, prices: Prices, max_wait_s: float,
            now: Callable[[], float] = time.time) -> StageProgress:
    """One step of the phase: `done` once its answers are in the cache (or it has none to wait for)."""
    state = read_state(blobs, job_id, phase)
    if state is not None and state.collected:
        return _progress(job_id, phase, "done", state)
    if state is not None and state.batch_id is None and state.token is not None:
        found = batches.find(state.token)  # sent by a process that died before it could say so?
        if found is not None:
            state.batch_id, state.submitted_at = found.id, float(found.created_at)
            _save(blobs, job_id, phase, state)
    if state is None or state.batch_id is None:
        return _submit(job_id, phase, requests, batches, ledger, blobs, now, state.token if state else None)
    ledger.wait_for_batch(job_id, state.batch_id)  # again after a resume: the job waits on it
    try:
        batch = batches.retrieve(state.batch_id)
        if batch.status in PENDING:
            if (not state.cancel_requested and state.submitted_at is not None
                    and now() - state.submitted_at > max_wait_s):
                log.warning("job %s: batch %s still %s after %.0f s: cancelled, the rest goes the normal way",
                            job_id, batch.id, batch.status, max_wait_s)
                batches.cancel(batch.id)
                state.cancel_requested = True
                _save(blobs, job_id, phase, state)
            return _progress(job_id, phase, "more", state)
        answers = batches.answers(batch)
    except ProviderUnavailable as e:  # the endpoint is away for now: the batch is still there, wait on
        log.info("job %s: batch %s not polled: %s", job_id, state.batch_id, e)
        return _progress(job_id, phase, "more", state)
    except openai.APIStatusError as e:  # the batch cannot be read (gone, refused): the normal way
        return _end(job_id, phase, state, ledger, blobs, f"unreadable: HTTP {e.status_code}: {e.message}")
    _collect(job_id, phase, state.batch_id, answers, cache, ledger, prices)
    return _end(job_id, phase, state, ledger, blobs, describe(batch))


def _submit(job_id: str, phase: BatchPhase, requests: Callable[[], Requests], batches: BatchClient,
            ledger: Ledger, blobs: BlobStore, now: Callable[[], float], token: str | None) -> StageProgress:
    ledger.set_stage(job_id, phase.stage)
    wanted = requests()
    if len(wanted) > MAX_BATCH_REQUESTS:
        wanted = dict(list(wanted.items())[:MAX_BATCH_REQUESTS])
    state = BatchState(requests=len(wanted), token=token or uuid.uuid4().hex)
    if not wanted:  # all cached already: nothing to wait for
        return _end(job_id, phase, state, ledger, blobs, "nothing to send: every answer was cached")
    _save(blobs, job_id, phase, state)
    try:
        batch = batches.submit(wanted, {"kg_job_id": job_id, "kg_phase": phase.value, "kg_token": state.token})
    except openai.APIStatusError as e:  # refused (no Batch API there, a file it will not take)
        return _end(job_id, phase, state, ledger, blobs, f"not sent: HTTP {e.status_code}: {e.message}")
    # Kept before anything else: from here a resumed job polls this batch instead of sending another.
    state.batch_id, state.submitted_at = batch.id, now()
    _save(blobs, job_id, phase, state)
    ledger.wait_for_batch(job_id, batch.id)
    log.info("job %s: %d %s requests sent as batch %s", job_id, len(wanted), phase.value, batch.id)
    return _progress(job_id, phase, "more", state)


def _collect(job_id: str, phase: BatchPhase, batch_id: str, answers: list[BatchAnswer], cache: LlmCache,
             ledger: Ledger, prices: Prices) -> None:
    """Answers that parse go to the cache; every answered line is billed, so every one is counted."""
    fresh: dict[str, CachedResponse] = {}
    usage = LlmUsage()
    for answer in answers:
        if answer.status_code != 200:
            continue
        body = answer.body
        counted = body.get("usage") or {}
        model = str(body.get("model") or "")
        tokens_in, tokens_out = int(counted.get("prompt_tokens") or 0), int(counted.get("completion_tokens") or 0)
        cached_in = int((counted.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
        usage = usage.add(LlmUsage(calls=1, input_tokens=tokens_in, output_tokens=tokens_out,
                                   cached_input_tokens=cached_in,
                                   cost_usd=estimate_cost(model, tokens_in, tokens_out, prices, cached_in)))
        content = _content(body)
        if content is not None:
            fresh[answer.custom_id] = CachedResponse(model=model, content=content, input_tokens=tokens_in,
                                                     output_tokens=tokens_out)
    cache.put_many(fresh)
    ledger.record_usage(job_id, phase.stage, usage, part=f"batch-{batch_id}")


def _content(body: dict[str, Any]) -> str | None:
    """The reply's text, when it is a JSON object (what the cache holds); else None."""
    try:
        content = body["choices"][0]["message"]["content"]
        return content if isinstance(content, str) and isinstance(json.loads(content), dict) else None
    except (KeyError, IndexError, TypeError, ValueError):
        return None


def _end(job_id: str, phase: BatchPhase, state: BatchState, ledger: Ledger, blobs: BlobStore,
         outcome: str) -> StageProgress:
    state.collected, state.outcome = True, bounded(outcome)
    _save(blobs, job_id, phase, state)
    summary = {"batch_id": state.batch_id, "requests": state.requests, "outcome": state.outcome}
    ledger.set_stage(job_id, phase.stage, {f"llm_batch_{phase.value}": summary})
    ledger.wait_for_batch(job_id, None)
    if state.batch_id:
        log.info("job %s: batch %s ended %s", job_id, state.batch_id, state.outcome)
    return _progress(job_id, phase, "done", state)


def _save(blobs: BlobStore, job_id: str, phase: BatchPhase, state: BatchState) -> None:
    blobs.put(state_key(job_id, phase), state.model_dump_json().encode())


def _progress(job_id: str, phase: BatchPhase, state_: str, state: BatchState) -> StageProgress:
    return StageProgress(job_id=job_id, stage=phase.stage, state=state_,  # type: ignore[arg-type]
                         counts={"requests": state.requests})
