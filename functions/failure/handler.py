"""FailJob (the Catch of every top-level state): end the job FAILED with the unhandled error."""

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from kg.aws.events import JobFailedEvent
from kg.aws.observability import powertools
from kg.aws.ports import aws_ports
from kg.stages import fail_job

observability = powertools()
logger, metrics = observability.logger, observability.metrics


@observability.lambda_handler
def handler(event: dict, context: LambdaContext) -> dict:
    failed = JobFailedEvent.model_validate(event)
    logger.append_keys(job_id=failed.job_id)
    ports = aws_ports()
    outcome = fail_job(failed.fail_request(), ports.ledger, ports.blobs)
    metrics.add_metric(name="JobsFailed", unit=MetricUnit.Count, value=1)
    logger.error("job failed", extra={"error": outcome.error})
    return outcome.model_dump(mode="json")
