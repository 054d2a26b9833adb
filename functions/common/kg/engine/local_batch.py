"""Batch mode in the local engine: a phase of kg.stages.llm_batch, polled in this process until done.

The wait between polls starts at KG_LLM_BATCH_POLL_S and grows by half each time up to
KG_LLM_BATCH_POLL_MAX_S (a batch takes minutes to hours: polling it every few seconds all along
would only spend requests). The job's lease is renewed by the engine's LeaseKeeper meanwhile;
`check` (LeaseKeeper.check) is called at every poll, so a job taken over elsewhere is left at once.
Ctrl-C or SIGTERM in a wait ends the job INTERRUPTED as anywhere else; `kg resume` polls the same batch.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence

from kg.blobs import BlobStore
from kg.concepts import Conceptualizer
from kg.extraction import Extractor
from kg.graph import GraphStore
from kg.ledger import Ledger
from kg.llm.pricing import batch_prices
from kg.settings import Settings
from kg.stages.llm_batch import BatchPhase, BatchRequest, llm_batch


def batch_phase(phase: BatchPhase, job_id: str, items: Sequence[int], extractor: Extractor,
                conceptualizer: Conceptualizer, graph: GraphStore, ledger: Ledger, blobs: BlobStore,
                settings: Settings, check: Callable[[], None], sleep: Callable[[float], None] = time.sleep) -> None:
    """Run one phase to its end (kg.stages.llm_batch.llm_batch, step after step)."""
    request = BatchRequest(job_id=job_id, phase=phase, items=list(items) if phase is BatchPhase.EXTRACT else [])
    prices = batch_prices(settings.llm_prices, settings.llm_batch_prices)
    wait = settings.llm_batch_poll_s
    while True:
        check()
        progress = llm_batch(request, extractor, conceptualizer, graph, ledger, blobs, prices,
                             settings.concept_batch_size, settings.llm_batch_max_wait_s)
        if progress.state == "done":
            return
        # A little jitter, so that the jobs of one `kg serve` do not poll in step.
        sleep(wait * random.uniform(0.9, 1.1))
        wait = min(wait * 1.5, settings.llm_batch_poll_max_s)
