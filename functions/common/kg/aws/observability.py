"""Powertools for every handler: a JSON Logger (each line carries the job id the handler appends),
a Tracer (X-Ray, active in Lambda) and Metrics (CloudWatch EMF, namespace from
POWERTOOLS_METRICS_NAMESPACE, service from POWERTOOLS_SERVICE_NAME)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit


class Powertools(NamedTuple):
    logger: Logger
    tracer: Tracer
    metrics: Metrics

    def lambda_handler(self, handler: Callable[[dict, Any], dict]) -> Callable[[dict, Any], dict]:
        """A stage's handler with its Lambda context logged (state cleared per call), traced, and
        its metrics flushed when it returns."""
        return self.logger.inject_lambda_context(clear_state=True)(
            self.tracer.capture_lambda_handler(self.metrics.log_metrics(handler)))


def powertools() -> Powertools:
    logger = Logger()
    if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        # In a Lambda container the library's own lines (kg.*) go through the same JSON handler, so
        # they carry the job id too. Elsewhere (tests, a laptop) the process's logging is left as it is.
        copy_config_to_registered_loggers(source_logger=logger, include={"kg"})
    return Powertools(logger, Tracer(), Metrics())


def add_counts(metrics: Metrics, counts: Mapping[str, object], prefix: str = "") -> None:
    """One Count metric per integer count, named in CamelCase after `prefix` (`embeddings_computed` ->
    EmbeddingsComputed; `concepts_new` with prefix Concepts -> ConceptsNew)."""
    for key, value in counts.items():
        if isinstance(value, int) and not isinstance(value, bool):
            name = _camel(key)
            metrics.add_metric(name=name if name.startswith(prefix) else prefix + name, unit=MetricUnit.Count,
                               value=value)


def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^0-9A-Za-z]+", name) if part)
