"""The pipeline's state machine definition: Plan -> [LlmBatch extract, Wait loop] -> Map(ExtractChunk)
-> MergeAndStore -> [[LlmBatch concepts, Wait loop] -> GenerateConcepts] -> [Deduplicate] -> Finalize,
with every unhandled error routed to FailJob -> Fail.

Batch mode (the job option `llm_batch`, kg.stages.llm_batch): before extraction, and before the
concepts, the LlmBatch task sends the phase's LLM requests as one OpenAI batch and answers `more`
while the provider works; the execution waits BATCH_POLL between polls (Wait states cost nothing
while they wait), then goes on with the stage, which finds the answers in the LLM cache.

Kept apart from the stack so that its shape is read in one place. Every task is
`LambdaInvoke(payload_response_only=True)`: the bare function ARN form, whose input is the payload and
whose output is the function's return value (moto's interpreter executes it too; see infra/asl.py).
Payloads are job ids, chunk indexes, S3 keys and counts, never text (a state's payload is capped
at 256 KB).
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

# Errors of the Lambda service itself (not of the handler): always worth another try.
LAMBDA_SERVICE_ERRORS = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
]
LAMBDA_THROTTLED = "Lambda.TooManyRequestsException"
# What an extract call raises when the LLM endpoint is briefly unavailable: kg.errors.ProviderUnavailable
# and the openai client's transient errors (their class names are the Step Functions error names).
TRANSIENT_LLM_ERRORS = [
    "ProviderUnavailable",
    "RateLimitError",
    "APIConnectionError",
    "APITimeoutError",
    "InternalServerError",
]
# kg.errors.StoreUnavailable: the database cannot be reached, e.g. while Aurora resumes from pause.
STORE_UNAVAILABLE = "StoreUnavailable"

# A stage that returns `state: more` is called again until `done`.
MORE = "more"
# Between two polls of a batch. An execution's history holds at most 25,000 events, and each poll
# takes about ten: at 5 minutes, a batch that runs its whole 24 h window takes about 2,900 of them.
BATCH_POLL = Duration.minutes(5)


@dataclass(frozen=True)
class PipelineFunctions:
    plan: lambda_.IFunction
    extract_chunk: lambda_.IFunction
    chunk_failed: lambda_.IFunction
    merge_and_store: lambda_.IFunction
    generate_concepts: lambda_.IFunction
    deduplicate: lambda_.IFunction
    llm_batch: lambda_.IFunction
    finalize: lambda_.IFunction
    fail_job: lambda_.IFunction


def _invoke(
    scope: Construct, id: str, fn: lambda_.IFunction, payload: dict | None, result_path: str | None
) -> tasks.LambdaInvoke:
    return tasks.LambdaInvoke(
        scope,
        id,
        lambda_function=fn,
        payload=None if payload is None else sfn.TaskInput.from_object(payload),
        payload_response_only=True,
        retry_on_service_exceptions=False,  # the retries are explicit, below
        result_path=result_path,
    )


def _retry_service_errors(task: tasks.LambdaInvoke) -> None:
    task.add_retry(
        errors=[LAMBDA_THROTTLED, *LAMBDA_SERVICE_ERRORS],
        interval=Duration.seconds(2),
        backoff_rate=2,
        max_attempts=4,
        jitter_strategy=sfn.JitterType.FULL,
    )


def _retry_unavailable(task: tasks.LambdaInvoke) -> None:
    # Aurora Serverless v2 resuming from 0 ACU takes about 15 s; an embedding or LLM endpoint that
    # is briefly down gets the same patience. A call after a retry continues where the last one
    # stopped (stage state is kept in S3), so nothing is done twice.
    task.add_retry(
        errors=[STORE_UNAVAILABLE, "ProviderUnavailable"],
        interval=Duration.seconds(5),
        backoff_rate=2,
        max_attempts=5,
        max_delay=Duration.seconds(60),
        jitter_strategy=sfn.JitterType.FULL,
    )


def _job_id() -> dict:
    return {"job_id": sfn.JsonPath.string_at("$.job_id")}


def build_definition(scope: Construct, fns: PipelineFunctions, max_concurrency: int) -> sfn.IChainable:
    """The whole definition, its states created in `scope`."""
    # -- the failure path: any unhandled error ends here, the job FAILED with its error in the ledger
    fail_job = _invoke(
        scope,
        "FailJob",
        fns.fail_job,
        {
            "job_id": sfn.JsonPath.string_at("$.job_id"),
            "source": sfn.JsonPath.string_at("$.source"),
            "failure": sfn.JsonPath.object_at("$.failure"),
        },
        result_path="$.outcome",
    )
    _retry_service_errors(fail_job)
    failed = sfn.Fail(scope, "JobFailed", error_path="$.failure.Error", cause_path="$.failure.Cause")
    fail_job.next(failed)

    def guarded(task: sfn.TaskStateBase | sfn.Map) -> None:
        task.add_catch(fail_job, errors=[sfn.Errors.ALL], result_path="$.failure")

    # -- Plan: the execution input in, the plan out (it becomes the state: job_id, source, options, items)
    plan = _invoke(scope, "Plan", fns.plan, None, result_path="$")
    _retry_service_errors(plan)
    guarded(plan)

    # -- ExtractChunks: one ExtractChunk per chunk index, at most `max_concurrency` at once for this job.
    # The global cap across jobs is the function's reserved concurrency: past it Lambda throttles, and
    # the throttled item waits (a retrier of its own, more patient than the one for failures).
    extract = _invoke(
        scope,
        "ExtractChunk",
        fns.extract_chunk,
        {"job_id": sfn.JsonPath.string_at("$.job_id"), "index": sfn.JsonPath.number_at("$.index")},
        result_path="$",
    )
    extract.add_retry(
        errors=[LAMBDA_THROTTLED],
        interval=Duration.seconds(2),
        backoff_rate=2,
        max_attempts=8,
        max_delay=Duration.seconds(60),
        jitter_strategy=sfn.JitterType.FULL,
    )
    extract.add_retry(
        errors=[*LAMBDA_SERVICE_ERRORS, *TRANSIENT_LLM_ERRORS],
        interval=Duration.seconds(2),
        backoff_rate=2,
        max_attempts=4,
        jitter_strategy=sfn.JitterType.FULL,
    )
    # A chunk that fails past its retries is recorded as failed, and the Map goes on with the others.
    chunk_failed = _invoke(
        scope,
        "ChunkFailed",
        fns.chunk_failed,
        {
            "job_id": sfn.JsonPath.string_at("$.job_id"),
            "index": sfn.JsonPath.number_at("$.index"),
            "failure": sfn.JsonPath.object_at("$.failure"),
        },
        result_path="$",
    )
    _retry_service_errors(chunk_failed)
    extract.add_catch(chunk_failed, errors=[sfn.Errors.ALL], result_path="$.failure")

    extract_chunks = sfn.Map(
        scope,
        "ExtractChunks",
        items_path="$.items",
        item_selector={
            "job_id": sfn.JsonPath.string_at("$.job_id"),
            "index": sfn.JsonPath.number_at("$$.Map.Item.Value"),
        },
        max_concurrency=max_concurrency,
        result_path=sfn.JsonPath.DISCARD,  # the chunk results are in S3 and the ledger
    )
    extract_chunks.item_processor(extract)
    guarded(extract_chunks)

    # -- the stages after extraction: each returns `more` until it is done, within one call's time
    def stage(id: str, fn: lambda_.IFunction, result_path: str) -> tasks.LambdaInvoke:
        task = _invoke(scope, id, fn, _job_id(), result_path=result_path)
        _retry_service_errors(task)
        _retry_unavailable(task)
        guarded(task)
        return task

    def more(path: str) -> sfn.Condition:
        return sfn.Condition.and_(
            sfn.Condition.is_present(f"{path}.state"), sfn.Condition.string_equals(f"{path}.state", MORE)
        )

    def option_on(name: str) -> sfn.Condition:
        path = f"$.options.{name}"
        return sfn.Condition.and_(sfn.Condition.is_present(path), sfn.Condition.boolean_equals(path, True))

    store = stage("MergeAndStore", fns.merge_and_store, "$.store")
    concepts = stage("GenerateConcepts", fns.generate_concepts, "$.concepts")
    dedup = stage("Deduplicate", fns.deduplicate, "$.dedup")

    finalize = _invoke(scope, "Finalize", fns.finalize, _job_id(), result_path="$.outcome")
    _retry_service_errors(finalize)
    guarded(finalize)
    finalize.next(sfn.Succeed(scope, "Done"))

    dedup_wanted = sfn.Choice(scope, "DedupWanted?").when(option_on("dedup"), dedup).otherwise(finalize)
    dedup.next(sfn.Choice(scope, "MoreDedup?").when(more("$.dedup"), dedup).otherwise(finalize))

    # -- batch mode: a phase's task, polled after a Wait until `done`, then the stage it prepares
    def batch_phase(name: str, phase: str, then: sfn.IChainable, items: bool) -> sfn.Choice:
        payload = {**_job_id(), "phase": phase}
        if items:
            payload["items"] = sfn.JsonPath.list_at("$.items")
        task = _invoke(scope, f"LlmBatch{name}", fns.llm_batch, payload, result_path="$.batch")
        _retry_service_errors(task)
        _retry_unavailable(task)
        guarded(task)
        wait = sfn.Wait(scope, f"WaitFor{name}Batch", time=sfn.WaitTime.duration(BATCH_POLL))
        wait.next(task)
        task.next(sfn.Choice(scope, f"{name}BatchDone?").when(more("$.batch"), wait).otherwise(then))
        return sfn.Choice(scope, f"{name}BatchWanted?").when(option_on("llm_batch"), task).otherwise(then)

    concepts_wanted = (
        sfn.Choice(scope, "ConceptsWanted?")
        .when(option_on("concepts"), batch_phase("Concepts", "concepts", concepts, items=False))
        .otherwise(dedup_wanted)
    )
    concepts.next(sfn.Choice(scope, "MoreConcepts?").when(more("$.concepts"), concepts).otherwise(dedup_wanted))

    store.next(sfn.Choice(scope, "MoreToStore?").when(more("$.store"), store).otherwise(concepts_wanted))

    extract_chunks.next(store)
    plan.next(batch_phase("Extract", "extract", extract_chunks, items=True))
    return sfn.Chain.start(plan)
