"""ChunkFailed (the ExtractChunk Catch): record a chunk that failed past its retries, so the Map goes on."""

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from kg.aws.events import ChunkFailedEvent
from kg.aws.observability import powertools
from kg.aws.ports import aws_ports
from kg.stages import fail_chunk

observability = powertools()
logger, metrics = observability.logger, observability.metrics


@observability.lambda_handler
def handler(event: dict, context: LambdaContext) -> dict:
    failed = ChunkFailedEvent.model_validate(event)
    logger.append_keys(job_id=failed.job_id, chunk=failed.index)
    ports = aws_ports()
    chunk = fail_chunk(failed.chunk_failure(), ports.blobs, ports.ledger)
    metrics.add_metric(name="ChunksFailedPastRetries", unit=MetricUnit.Count, value=1)
    logger.warning("chunk failed past its retries", extra={"status": chunk.status.value, "error": chunk.error})
    return chunk.model_dump(mode="json")
