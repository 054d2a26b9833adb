"""S3Upload (an object created under incoming/): start a job for each document, read where it lies."""

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser.models import S3Model
from aws_lambda_powertools.utilities.typing import LambdaContext

from kg.aws.jobs import start_uploads
from kg.aws.observability import powertools
from kg.aws.ports import aws_ports

logger, tracer, metrics = powertools()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    started = start_uploads(S3Model.model_validate(event), aws_ports())
    job_ids = [request.job_id for request in started]
    logger.append_keys(job_id=",".join(job_ids))
    metrics.add_metric(name="JobsStarted", unit=MetricUnit.Count, value=len(started))
    logger.info("jobs started", extra={"sources": [request.source for request in started]})
    return {"jobs": job_ids}
