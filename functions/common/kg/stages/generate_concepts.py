"""Generate concepts (stage 2): conceptualize the job's elements that have no concepts yet.

Elements go in batches of `batch_size` to the conceptualizer, `workers` calls in flight at once: a
call that ends frees its place for the next batch at once (the LLM layer's limiter still caps
requests in flight). Each batch's new concept phrases are embedded in the background, so the next
calls do not wait for them, a phrase once per call of this stage; a batch is written as soon as its
vectors are there (those ready together in one transaction), which marks its elements done. The
writes run in one writer thread, one at a time and in the order the batches started. Once the
budget has run out no batch starts; those in flight are written and the call returns `more`. A
batch that fails is left for a later run (its elements stay unmarked) and counted; the job then
ends PARTIAL.

Safe to retry: an element is written once (a retry finds it marked), and the counts come from the
graph rows tagged with the job, not from what one call did.

A delete of the document may come at any time (the conceptualizer call holds no lock): each batch
is written under the document's lock and only while the document exists, and the stage ends with
NotFound (the job FAILED) when the document is gone, never `done` over a deleted graph.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

import numpy as np

from pydantic import BaseModel, Field

from kg.blobs import BlobStore, error_key, get_optional, stage_key
from kg.concepts import Conceptualizer
from kg.embedding_map import missing_texts
from kg.embeddings import Embedded, Embedder
from kg.errors import NotFound
from kg.graph import GraphStore
from kg.ledger import Ledger
from kg.models import ConceptBatch, ConceptElement, ConceptPhrase, LlmUsage, Stage
from kg.normalize import concept_id
from kg.stages.contract import Budget, StageProgress, StageRequest


class FailedBatches(BaseModel):
    """Batches whose conceptualizer call failed, kept between calls so they are not tried forever."""

    batches: int = 0
    element_ids: list[str] = Field(default_factory=list)
    last_error: str | None = None


def generate_concepts(
    request: StageRequest,
    conceptualizer: Conceptualizer,
    embedder: Embedder,
    graph: GraphStore,
    ledger: Ledger,
    blobs: BlobStore,
    batch_size: int = 50,
    workers: int = 4,
) -> StageProgress:
    job_id = request.job_id
    budget = Budget.of(request)
    ledger.set_stage(job_id, Stage.CONCEPTS)
    record = ledger.get(job_id, with_chunks=False)
    scope = uuid.UUID(record.document_id) if record.document_id else None
    failed_key = stage_key(job_id, "concepts", "failed.json")
    stored_failed = get_optional(blobs, failed_key)
    failed = FailedBatches.model_validate_json(stored_failed) if stored_failed else FailedBatches()

    window = _Window(conceptualizer, embedder, graph, workers)
    with window:
        while True:
            window.fill(scope, batch_size, failed.element_ids, budget)
            if window.idle():
                break
            failures = window.settle()
            for batch, error in failures:  # fail-forward: the other batches still get their concepts
                failed.batches += 1
                failed.element_ids.extend(element.id for element in batch)
                failed.last_error = f"{type(error).__name__}: {error}"
            if failures:
                blobs.put(failed_key, failed.model_dump_json().encode())
                blobs.put(error_key(job_id, "concepts"), (failed.last_error or "").encode())
            window.fill(scope, batch_size, failed.element_ids, budget)  # the places the ended calls freed
            ready = window.writable()
            if ready:
                window.write(ready, lambda ready=ready: _write(ready, job_id, scope, graph, ledger))
        if window.stopped and window.has_elements_left(scope, failed.element_ids):
            return StageProgress(job_id=job_id, stage=Stage.CONCEPTS, state="more",
                                 counts=graph.concept_counts(job_id).model_dump())

    if scope is not None and not graph.document_exists(scope):
        # Deleted between two rounds: the last round found nothing left to conceptualize.
        raise NotFound(f"document {scope} was deleted while its concepts were being generated; this job's"
                       " writes are not kept (ingest it again to bring it back)")
    summary = graph.concept_counts(job_id)
    summary.failed_batches = failed.batches
    ledger.set_stage(job_id, Stage.CONCEPTS, {"concepts": summary.model_dump(mode="json")})
    return StageProgress(job_id=job_id, stage=Stage.CONCEPTS, state="done", counts=summary.model_dump())


def _write(ready: Sequence[_Written], job_id: str, scope: uuid.UUID | None, graph: GraphStore, ledger: Ledger) -> None:
    """The batches ready together, in one transaction: when the writes are the slower side, more
    batches are ready at each turn and the per-transaction cost is shared."""
    for written in ready:
        ledger.record_usage(job_id, Stage.CONCEPTS, written.usage, part=_part(written.elements))
    graph.write_concepts(job_id, [e for w in ready for e in w.elements], [c for w in ready for c in w.concepts],
                         {i: v for w in ready for i, v in w.vectors.items()}, document_id=scope)


def _part(batch: Sequence[ConceptElement]) -> str:
    """A batch's name in the ledger's usage: the same elements, the same part, whichever call made it."""
    return "batch-" + hashlib.sha256(",".join(sorted(e.id for e in batch)).encode()).hexdigest()[:16]


@dataclass
class _Written:
    """A batch ready to be written: its concepts, their vectors, and what its calls cost."""

    elements: list[ConceptElement]
    concepts: list[list[ConceptPhrase]]
    texts: dict[uuid.UUID, str]  # concept id -> the phrase its vector is made from
    usage: LlmUsage
    embedding: Future[Embedded] | None  # the embedding request this batch's new phrases went out in
    vectors: dict[uuid.UUID, np.ndarray] = field(default_factory=dict)


class _Window:
    """The batches in flight: conceptualizer calls, then the embedding of their new phrases."""

    def __init__(self, conceptualizer: Conceptualizer, embedder: Embedder, graph: GraphStore, workers: int):
        self.conceptualizer, self.embedder, self.graph, self.workers = conceptualizer, embedder, graph, workers
        self.calls: dict[Future[ConceptBatch], tuple[int, list[ConceptElement]]] = {}
        self.embeddings: dict[Future[Embedded], list[str]] = {}
        self.order: deque[int] = deque()  # the batches started and not written or failed, in order
        self.waiting: dict[int, _Written] = {}  # answered, by their place in that order
        self.vectors: dict[str, np.ndarray] = {}  # by phrase: embedded or read from the graph by this call
        self.being_embedded: set[str] = set()
        self.busy: set[str] = set()  # ids of elements started and not written yet
        self.queued: list[ConceptElement] = []  # read from the graph, not started yet
        self._started = 0
        self.exhausted = False
        self.stopped = False  # by the budget, with elements maybe left
        self._call_pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="concepts")
        self._embedding_pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="concept-vectors")
        # One writer, so that writes stay one at a time and in order, off this thread, which starts
        # the next calls the moment places free up instead of after a write.
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="concept-writes")
        self.writes: dict[Future[None], list[_Written]] = {}

    def __enter__(self) -> _Window:
        return self

    def __exit__(self, *exc: object) -> None:
        self._call_pool.shutdown(cancel_futures=True)
        self._embedding_pool.shutdown(cancel_futures=True)
        self._writer.shutdown(cancel_futures=True)

    def fill(self, scope: uuid.UUID | None, batch_size: int, skip: Sequence[str], budget: Budget) -> None:
        """Starts batches while there is room, elements, and budget (at least one batch per stage
        call, so that every call moves on)."""
        while not self.exhausted and len(self.calls) < self.workers:
            if self._started and budget.expired():
                self.stopped = True
                return
            batch = self.next_batch(scope, batch_size, skip)
            if not batch:
                self.exhausted = True  # elements only leave the list while this stage runs
                return
            self.start(batch)

    def idle(self) -> bool:
        return not (self.calls or self.embeddings or self.waiting or self.writes)

    def next_batch(self, scope: uuid.UUID | None, batch_size: int, skip: Sequence[str]) -> list[ConceptElement]:
        """Up to `batch_size` elements not yet marked, not failed before, and not in flight; read
        from the graph a window's worth at a time."""
        if not self.queued:
            excluded = self.busy.union(skip)
            found = self.graph.elements_to_conceptualize(scope, batch_size * self.workers + len(excluded))
            self.queued = [e for e in found if e.id not in excluded]
        batch, self.queued = self.queued[:batch_size], self.queued[batch_size:]
        return batch

    def has_elements_left(self, scope: uuid.UUID | None, skip: Sequence[str]) -> bool:
        return bool(self.queued or self.next_batch(scope, 1, skip))

    def start(self, batch: list[ConceptElement]) -> None:
        self.busy.update(e.id for e in batch)
        number, self._started = self._started, self._started + 1
        self.order.append(number)
        self.calls[self._call_pool.submit(self.conceptualizer.conceptualize, batch)] = (number, batch)

    def settle(self) -> list[tuple[list[ConceptElement], Exception]]:
        """Waits for the next call or embedding to end and takes in what it brought; returns the
        batches whose call failed (an embedding that fails raises: the stage fails, as any store error)."""
        done, _ = wait([*self.calls, *self.embeddings, *self.writes], return_when=FIRST_COMPLETED)
        failures: list[tuple[list[ConceptElement], Exception]] = []
        for future in done:
            if future in self.writes:
                future.result()  # a write that failed fails the stage (NotFound: the document went)
                for written in self.writes.pop(future):
                    self.busy.difference_update(e.id for e in written.elements)
                continue
            if future in self.embeddings:
                phrases = self.embeddings.pop(future)
                self.vectors.update(zip(phrases, future.result().vectors, strict=True))
                self.being_embedded.difference_update(phrases)
                continue
            number, batch = self.calls.pop(future)
            try:
                result = future.result()
            except Exception as error:
                self.busy.difference_update(e.id for e in batch)
                self.order.remove(number)
                failures.append((batch, error))
                continue
            texts = {concept_id(p.level, p.phrase): p.phrase for phrases in result.concepts for p in phrases}
            unknown = {i: t for i, t in texts.items() if t not in self.vectors and t not in self.being_embedded}
            missing, stored = missing_texts(unknown, self.graph)
            self.vectors.update(stored)
            embedding = None
            if missing:
                embedding = self._embedding_pool.submit(self.embedder.embed, missing)
                self.embeddings[embedding] = missing
                self.being_embedded.update(missing)
            self.waiting[number] = _Written(batch, result.concepts, texts, result.usage, embedding)
        return failures

    def writable(self) -> list[_Written]:
        """The batches whose every phrase has its vector, with their vectors and whole usage, in the
        order they started: the first write of a concept names it, so the graph does not depend on
        which call came back first."""
        ready = []
        while self.order and (head := self.waiting.get(self.order[0])) is not None \
                and all(t in self.vectors for t in head.texts.values()):
            ready.append(self.waiting.pop(self.order.popleft()))
        for w in ready:
            w.vectors = {i: self.vectors[t] for i, t in w.texts.items()}
            if w.embedding is not None:
                w.usage = w.usage.add(w.embedding.result().usage)
        return ready

    def write(self, ready: list[_Written], write: Callable[[], None]) -> None:
        self.writes[self._writer.submit(write)] = ready
