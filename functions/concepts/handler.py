"""GenerateConcepts (called again while it answers `more`): conceptualize the document's new elements."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from kg.aws.events import JobEvent
from kg.aws.observability import add_counts, powertools
from kg.aws.ports import aws_ports
from kg.stages import generate_concepts

observability = powertools()
logger, metrics = observability.logger, observability.metrics


@observability.lambda_handler
def handler(event: dict, context: LambdaContext) -> dict:
    job = JobEvent.model_validate(event)
    logger.append_keys(job_id=job.job_id)
    ports = aws_ports()
    progress = generate_concepts(job.stage_request(context), ports.conceptualizer, ports.embedder, ports.graph,
                                 ports.ledger, ports.blobs, ports.settings.concept_batch_size,
                                 ports.settings.concept_workers or ports.settings.max_concurrency)
    if progress.state == "done":
        add_counts(metrics, progress.counts, prefix="Concepts")
    logger.info("concepts", extra={"state": progress.state, "counts": progress.counts})
    return progress.model_dump(mode="json")
