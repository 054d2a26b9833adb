"""The events the AWS engine's handlers receive, as pydantic models, and what each becomes.

Step Functions sends the stage payloads of `kg.stages.contract` as they are (plan gets the
execution's input, a `PlanRequest`; a Map item is a `ChunkTask`), and three shapes of its own,
defined by infra/state_machine.py: a caught error (`{"Error", "Cause"}`) for ChunkFailed and FailJob,
and `{"job_id"}` for the looping stages and Finalize. CloudFormation sends the Migrate function a
custom resource event.
"""

from __future__ import annotations

import json
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from kg.stages.contract import ChunkFailure, FailRequest, StageRequest

# A stage call stops taking new work once its budget is spent, and the unit of work in hand (an
# embedding slice, a round of concept batches, a whole-graph kNN pass, the final transaction) must
# still end before the Lambda's timeout: a third of the time left is kept back, and at least a minute.
MARGIN_FRACTION = 1 / 3
MIN_MARGIN_S = 60.0
MIN_BUDGET_S = 1.0  # a call always does some work (each stage does at least one unit per call)


class LambdaContextLike(Protocol):
    def get_remaining_time_in_millis(self) -> int: ...


class Event(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StateFailure(BaseModel):
    """An error a Catch caught, as Step Functions passes it on (ResultPath `$.failure`)."""

    model_config = ConfigDict(extra="ignore")

    Error: str
    Cause: str | None = None

    def describe(self) -> str:
        """`<Error>: <message>`. A Lambda function's error arrives with a JSON Cause (errorMessage,
        errorType, stackTrace): its message is what a user acts on; the trace is in the function's log."""
        cause = (self.Cause or "").strip()
        try:
            parsed: Any = json.loads(cause) if cause.startswith("{") else None
        except ValueError:
            parsed = None
        if isinstance(parsed, dict) and parsed.get("errorMessage") is not None:
            cause = str(parsed["errorMessage"]).strip()
        return f"{self.Error}: {cause}" if cause else self.Error


class JobEvent(Event):
    """Finalize, and the looping stages (MergeAndStore, GenerateConcepts, Deduplicate)."""

    job_id: str

    def stage_request(self, context: LambdaContextLike) -> StageRequest:
        """The stage's request, its budget the invocation's remaining time less the safety margin."""
        remaining = context.get_remaining_time_in_millis() / 1000
        margin = max(MIN_MARGIN_S, remaining * MARGIN_FRACTION)
        return StageRequest(job_id=self.job_id, budget_s=max(MIN_BUDGET_S, remaining - margin))


class ChunkFailedEvent(Event):
    """A Map item that failed past its retries (the ExtractChunk Catch)."""

    job_id: str
    index: int = Field(ge=0)
    failure: StateFailure

    def chunk_failure(self) -> ChunkFailure:
        return ChunkFailure(job_id=self.job_id, index=self.index, error=self.failure.describe())


class JobFailedEvent(Event):
    """Any unhandled error of the execution (the Catch on every top-level state)."""

    job_id: str
    source: str | None = None
    failure: StateFailure

    def fail_request(self) -> FailRequest:
        return FailRequest(job_id=self.job_id, error=self.failure.describe(), source=self.source)


class MigrationsProperties(BaseModel):
    """What the stack's Custom::KgMigrations resource passes (a changed hash runs the migrations again)."""

    model_config = ConfigDict(extra="ignore")

    MigrationsHash: str = ""
    EmbeddingModel: str
    EmbeddingDimensions: int


class MigrationsEvent(BaseModel):
    """A CloudFormation custom resource event, as the CDK Provider framework hands it to its on_event function."""

    model_config = ConfigDict(extra="ignore")

    RequestType: Literal["Create", "Update", "Delete"]
    ResourceProperties: MigrationsProperties
    PhysicalResourceId: str | None = None
