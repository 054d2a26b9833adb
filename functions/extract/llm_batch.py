"""LlmBatch (batch mode; called again after a Wait while it answers `more`): send the job's LLM
requests of one phase as an OpenAI batch, poll it, and put its answers in the LLM cache."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from kg.aws.observability import powertools
from kg.aws.ports import aws_ports
from kg.llm.pricing import batch_prices
from kg.stages.llm_batch import BatchPhase, BatchRequest, llm_batch

observability = powertools()
logger, metrics = observability.logger, observability.metrics


@observability.lambda_handler
def handler(event: dict, context: LambdaContext) -> dict:
    request = BatchRequest.model_validate(event)
    logger.append_keys(job_id=request.job_id)
    ports, settings = aws_ports(), aws_ports().settings
    # The graph only for the concepts phase: extraction's requests come from the chunks in S3.
    graph = ports.graph if request.phase is BatchPhase.CONCEPTS else None
    progress = llm_batch(request, ports.extractor, ports.conceptualizer, graph, ports.ledger, ports.blobs,
                         batch_prices(settings.llm_prices, settings.llm_batch_prices),
                         settings.concept_batch_size, settings.llm_batch_max_wait_s)
    logger.info("llm batch", extra={"phase": request.phase.value, "state": progress.state, "counts": progress.counts})
    return progress.model_dump(mode="json")
