"""Finalize (the last task): end the job SUCCEEDED, PARTIAL or FAILED by the rules of kg.stages.finalize."""

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from kg.aws.events import JobEvent
from kg.aws.observability import powertools
from kg.aws.ports import aws_ports
from kg.stages import finalize

observability = powertools()
logger, metrics = observability.logger, observability.metrics


@observability.lambda_handler
def handler(event: dict, context: LambdaContext) -> dict:
    job = JobEvent.model_validate(event)
    logger.append_keys(job_id=job.job_id)
    ports = aws_ports()
    outcome = finalize(job.job_id, ports.ledger, ports.blobs)
    metrics.add_metric(name=f"Jobs{outcome.status.value.title()}", unit=MetricUnit.Count, value=1)
    logger.info("job ended", extra={"status": outcome.status.value, "error": outcome.error})
    return outcome.model_dump(mode="json")
