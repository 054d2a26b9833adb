"""The Lambda handlers under functions/, loaded as the Lambda runtime loads them, and run in the
state machine's order (infra/state_machine.py) without Step Functions.

Five handler files are called `handler.py`, so each is loaded from its path under a module name of
its own (`load_handler("concepts/handler.py")`). `HandlerDriver` calls them with a fake Lambda
context, passes every event and result through JSON as Step Functions does, records each call, and
routes errors as the definition's Catches do: an ExtractChunk that raises goes to ChunkFailed (the
Map goes on), any other state that raises goes to FailJob.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from tests.support.sfn import FakeLambdaContext

FUNCTIONS_DIR = Path(__file__).resolve().parents[2] / "functions"

PLAN = "extract/plan.py"
EXTRACT_CHUNK = "extract/extract_chunk.py"
CHUNK_FAILED = "extract/chunk_failed.py"
MERGE_AND_STORE = "extract/merge_and_store.py"
GENERATE_CONCEPTS = "concepts/handler.py"
DEDUPLICATE = "dedup/handler.py"
FINALIZE = "extract/finalize.py"
FAIL_JOB = "failure/handler.py"
API = "api/handler.py"
S3_UPLOAD = "api/s3_upload.py"
MIGRATE = "migrate/handler.py"

MAX_ROUNDS = 50  # a looping stage that never says `done` fails the test instead of hanging it


_loading = threading.Lock()  # Map items call handlers from several threads: one loads, the others wait


def load_handler(handler_file: str) -> ModuleType:
    """The module of functions/<handler_file>, loaded once per test session."""
    name = "kg_function_" + handler_file.removesuffix(".py").replace("/", "_")
    with _loading:
        return sys.modules.get(name) or _load(name, handler_file)


def _load(name: str, handler_file: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, FUNCTIONS_DIR / handler_file)
    assert spec is not None and spec.loader is not None, handler_file
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def function_name(handler_file: str) -> str:
    return "kg-" + handler_file.removesuffix(".py").replace("/", "-").replace("_", "-")


def lambda_failure(error: BaseException) -> dict[str, str]:
    """What a Catch puts in `$.failure` for a Lambda function's unhandled error."""
    cause = {"errorMessage": str(error), "errorType": type(error).__name__,
             "stackTrace": traceback.format_exception(error)[-3:]}
    return {"Error": type(error).__name__, "Cause": json.dumps(cause)}


@dataclass
class Call:
    handler_file: str
    event: dict
    result: Any = None
    error: str | None = None

    def size(self, what: str) -> int:
        return len(json.dumps(getattr(self, what)).encode())


@dataclass
class HandlerDriver:
    """`run(plan_request)` drives one execution; `calls` holds every invocation, in order."""

    timeout_ms: int = 900_000
    calls: list[Call] = field(default_factory=list)

    def call(self, handler_file: str, event: Mapping[str, Any]) -> Any:
        event = json.loads(json.dumps(event))
        call = Call(handler_file, event)
        self.calls.append(call)
        context = FakeLambdaContext(function_name=function_name(handler_file), timeout_ms=self.timeout_ms)
        try:
            call.result = json.loads(json.dumps(load_handler(handler_file).handler(event, context)))
        except Exception as e:
            call.error = type(e).__name__
            raise
        return call.result

    def run(self, plan_request: Mapping[str, Any],
            chunk_failures: Mapping[int, Mapping[str, str]] | None = None) -> dict[str, Any]:
        """The execution's final state. `chunk_failures`: Map items that fail past their retries
        with this `{"Error", "Cause"}` (ExtractChunk is not called for them)."""
        chunk_failures = chunk_failures or {}
        state: dict[str, Any] = dict(plan_request)
        try:
            state = self.call(PLAN, plan_request)
            for index in state["items"]:
                item = {"job_id": state["job_id"], "index": index}
                failure = chunk_failures.get(index)
                if failure is None:
                    try:
                        self.call(EXTRACT_CHUNK, item)
                        continue
                    except Exception as e:
                        failure = lambda_failure(e)
                self.call(CHUNK_FAILED, {**item, "failure": failure})
            job = {"job_id": state["job_id"]}
            state["store"] = self.until_done(MERGE_AND_STORE, job)
            if state["options"].get("concepts"):
                state["concepts"] = self.until_done(GENERATE_CONCEPTS, job)
            if state["options"].get("dedup"):
                state["dedup"] = self.until_done(DEDUPLICATE, job)
            state["outcome"] = self.call(FINALIZE, job)
        except Exception as e:
            state["failure"] = lambda_failure(e)
            state["outcome"] = self.call(FAIL_JOB, {"job_id": state["job_id"], "source": state["source"],
                                                    "failure": state["failure"]})
        return state

    def until_done(self, handler_file: str, job: dict[str, str]) -> dict[str, Any]:
        for _ in range(MAX_ROUNDS):
            progress = self.call(handler_file, job)
            if progress["state"] != "more":
                return progress
        raise AssertionError(f"{handler_file} still says `more` after {MAX_ROUNDS} calls")

    def of(self, handler_file: str) -> list[Call]:
        return [c for c in self.calls if c.handler_file == handler_file]


def raising(error: Exception) -> Callable[..., Any]:
    """A stand-in for a stage function that raises `error` (monkeypatched into a handler module)."""

    def fail(*args: Any, **kwargs: Any) -> Any:
        raise error

    return fail
