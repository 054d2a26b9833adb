"""New vectors for triples whose text changed after they were embedded.

An entity merge rewrites the triples that named the merged entity ("Royal Swedish Academy awarded
…" becomes "Swedish Royal Academy awarded …"), and a re-ingested fact that names a merged-away
entity is written with the kept name. The transaction that changes a statement marks its triple
(`vector_stale`); the stage that made the change embeds the new statements right after, with
this. Safe to repeat: a vector is stored only while its triple still has the statement it was made
from, and only marked triples are embedded, so a retry embeds what is left and writes no row twice.
"""

from __future__ import annotations

import hashlib
import uuid

from kg.embeddings import Embedder
from kg.graph import GraphStore
from kg.ledger import Ledger
from kg.models import Stage
from kg.stages.contract import Budget

# Statements per embedding call: the same slice as merge_and_store's.
STALE_SLICE = 2048


def embed_stale_triples(
    graph: GraphStore,
    embedder: Embedder,
    document_id: uuid.UUID | None = None,
    budget: Budget | None = None,
    usage_to: tuple[Ledger, str, Stage] | None = None,
    slice_size: int = STALE_SLICE,
) -> bool:
    """Embed the marked triples (of one document's, or all), a slice at a time; True when none is
    left, False when `budget` ran out first (at least one slice is done per call). `usage_to`
    (ledger, job id, stage) records what the embedding cost, one part per slice."""
    budget = budget or Budget()
    done_one = False
    while True:
        stale = graph.stale_triples(slice_size, document_id)
        if not stale:
            return True
        if done_one and budget.expired():
            return False
        ids = sorted(stale)
        embedded = embedder.embed([stale[i] for i in ids])
        updated = graph.write_triple_vectors(
            {i: (stale[i], vector) for i, vector in zip(ids, embedded.vectors, strict=True)})
        if usage_to is not None:
            ledger, job_id, stage = usage_to
            # Keyed by what was embedded: a retry of the same slice replaces its usage.
            part = hashlib.sha256("".join(f"{i}{stale[i]}" for i in ids).encode()).hexdigest()[:16]
            ledger.record_usage(job_id, stage, embedded.usage, part=f"restate-{part}")
        done_one = True
        if updated == 0:  # every statement changed again under us: the next caller embeds them
            return False
