"""Deduplicate (called again while it answers `more`): merge the document's near-duplicates into the graph's."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from kg.aws.events import JobEvent
from kg.aws.observability import add_counts, powertools
from kg.aws.ports import aws_ports
from kg.stages import deduplicate

observability = powertools()
logger, metrics = observability.logger, observability.metrics


@observability.lambda_handler
def handler(event: dict, context: LambdaContext) -> dict:
    job = JobEvent.model_validate(event)
    logger.append_keys(job_id=job.job_id)
    ports = aws_ports()
    progress = deduplicate(job.stage_request(context), ports.graph, ports.ledger, ports.blobs, ports.dedup(),
                           ports.embedder)
    if progress.state == "done":
        add_counts(metrics, progress.counts, prefix="Dedup")
    logger.info("deduplicate", extra={"state": progress.state, "counts": progress.counts})
    return progress.model_dump(mode="json")
