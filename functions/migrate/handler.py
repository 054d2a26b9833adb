"""Migrate (the Custom::KgMigrations resource's provider, on deploy): apply the graph schema's migrations."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from kg.aws.events import MigrationsEvent
from kg.aws.migrations import on_migrations_event
from kg.aws.observability import powertools
from kg.aws.ports import aws_ports

logger, tracer, metrics = powertools()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict, context: LambdaContext) -> dict:
    request = MigrationsEvent.model_validate(event)
    logger.append_keys(request_type=request.RequestType)
    response = on_migrations_event(request, aws_ports().database_url)
    logger.info("migrations", extra=response)
    return response
