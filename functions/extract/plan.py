"""Plan (the execution's first task): check and chunk the document, open its job; out: the Map's items."""

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from kg.aws.observability import powertools
from kg.aws.ports import aws_ports
from kg.stages import plan
from kg.stages.contract import PlanRequest

observability = powertools()
logger, metrics = observability.logger, observability.metrics


@observability.lambda_handler
def handler(event: dict, context: LambdaContext) -> dict:
    request = PlanRequest.model_validate(event)
    logger.append_keys(job_id=request.job_id)
    ports = aws_ports()
    job = plan(request, ports.blobs, ports.ledger, ports.chunking())
    metrics.add_metric(name="ChunksPlanned", unit=MetricUnit.Count, value=job.chunk_count)
    logger.info("planned", extra={"chunks": job.chunk_count, "tokens": job.tokens})
    return job.model_dump(mode="json")
