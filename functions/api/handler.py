"""Api (API Gateway REST, Lambda proxy): kg.api's routes over the AWS backend (kg.aws.api)."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from kg.aws.api import handle
from kg.aws.observability import powertools

logger, tracer, metrics = powertools()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict, context: LambdaContext) -> dict:
    return handle(event, context)
