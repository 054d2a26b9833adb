"""S3Upload (an object created under incoming/): the job of each document, read where it lies."""

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser.models import S3Model
from aws_lambda_powertools.utilities.typing import LambdaContext

from kg.aws.jobs import start_uploads
from kg.aws.observability import powertools
from kg.aws.ports import aws_ports

observability = powertools()
logger, metrics = observability.logger, observability.metrics


@observability.lambda_handler
def handler(event: dict, context: LambdaContext) -> dict:
    jobs = start_uploads(S3Model.model_validate(event), aws_ports())
    started = [job.job_id for job in jobs if job.started]
    logger.append_keys(job_id=",".join(job.job_id for job in jobs))
    metrics.add_metric(name="JobsStarted", unit=MetricUnit.Count, value=len(started))
    logger.info("uploads", extra={"jobs": [job.model_dump(mode="json") for job in jobs]})
    return {"jobs": [job.job_id for job in jobs], "started": started}
