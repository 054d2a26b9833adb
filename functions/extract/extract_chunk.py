"""ExtractChunk (one Map item): extract one chunk's triples with the LLM; never the database."""

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from kg.aws.observability import powertools
from kg.aws.ports import aws_ports
from kg.stages import extract_chunk
from kg.stages.contract import ChunkTask

observability = powertools()
logger, metrics = observability.logger, observability.metrics


@observability.lambda_handler
def handler(event: dict, context: LambdaContext) -> dict:
    task = ChunkTask.model_validate(event)
    logger.append_keys(job_id=task.job_id, chunk=task.index)
    ports = aws_ports()
    chunk = extract_chunk(task, ports.extractor, ports.blobs, ports.ledger)
    metrics.add_metric(name=f"Chunks{chunk.status.value.title()}", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="TriplesExtracted", unit=MetricUnit.Count, value=chunk.triples)
    logger.info("chunk extracted", extra={"status": chunk.status.value, "triples": chunk.triples})
    return chunk.model_dump(mode="json")
