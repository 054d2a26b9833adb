"""The stack's settings, read once from CDK context (`cdk.json`, or `cdk deploy -c key=value`).

Context rather than CloudFormation parameters: every value shapes resources at synth time (the Map's
MaxConcurrency is written into the state machine definition, the reserved concurrency into the
function), and a wrong value should fail `cdk synth` with a message, not a half-made deployment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Any

# Context key -> (field name, default). cdk.json repeats these defaults so that they are visible.
CONTEXT_KEYS: dict[str, tuple[str, Any]] = {
    "kg:stackName": ("stack_name", "kg"),
    "kg:mapMaxConcurrency": ("map_max_concurrency", 8),
    "kg:extractReservedConcurrency": ("extract_reserved_concurrency", 16),
    "kg:llmProvider": ("llm_provider", "openai"),
    "kg:llmModel": ("llm_model", "gpt-4o-mini"),
    "kg:extractionMode": ("extraction_mode", "per_type"),
    "kg:embeddingModel": ("embedding_model", "text-embedding-3-small"),
    "kg:embeddingDimensions": ("embedding_dimensions", 1536),
    "kg:openaiSecretName": ("openai_secret_name", "kg/openai-api-key"),
    "kg:dedupDefault": ("dedup_default", False),
    "kg:natGateways": ("nat_gateways", 1),
    "kg:dbMinCapacity": ("db_min_capacity", 0),
    "kg:dbMaxCapacity": ("db_max_capacity", 4),
    "kg:intermediateExpiryDays": ("intermediate_expiry_days", 7),
    "kg:metricsNamespace": ("metrics_namespace", "KnowledgeGraph"),
    "kg:layerDir": ("layer_dir", "build/layer"),
    "kg:strict": ("strict", False),
    "kg:alarmEmail": ("alarm_email", ""),
}


# Step Functions runs at most 40 iterations of an inline Map at once, whatever MaxConcurrency says.
INLINE_MAP_MAX_CONCURRENCY = 40


class ConfigError(ValueError):
    """A context value the stack cannot be built with."""


@dataclass(frozen=True)
class StackConfig:
    stack_name: str = "kg"
    map_max_concurrency: int = 8
    extract_reserved_concurrency: int = 16
    llm_provider: str = "openai"
    llm_model: str = "gpt-4o-mini"
    extraction_mode: str = "per_type"
    embedding_model: str = "text-embedding-3-small"
    embedding_dimensions: int = 1536
    openai_secret_name: str = "kg/openai-api-key"
    dedup_default: bool = False
    nat_gateways: int = 1
    db_min_capacity: float = 0
    db_max_capacity: float = 4
    intermediate_expiry_days: int = 7
    metrics_namespace: str = "KnowledgeGraph"
    layer_dir: str = "build/layer"
    # A deployable build: the layer built and every handler file present, or synth fails.
    strict: bool = False
    alarm_email: str = ""

    @property
    def prefix(self) -> str:
        """Function names, log groups and the state machine are named `<prefix>-<what>`."""
        return self.stack_name.lower()

    @classmethod
    def from_context(cls, get: Any) -> StackConfig:
        """`get` is `node.try_get_context`; values given on the command line arrive as strings."""
        types = {f.name: f.type for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, (name, default) in CONTEXT_KEYS.items():
            raw = get(key)
            values[name] = default if raw is None else _coerce(key, raw, types[name])
        config = cls(**values)
        config.validate()
        return config

    def validate(self) -> None:
        if not re.fullmatch(r"[a-zA-Z][a-zA-Z0-9-]{0,30}", self.stack_name):
            raise ConfigError("kg:stackName: a letter, then up to 30 letters, digits or hyphens")
        if not 1 <= self.map_max_concurrency <= INLINE_MAP_MAX_CONCURRENCY:
            raise ConfigError(
                f"kg:mapMaxConcurrency must be between 1 and {INLINE_MAP_MAX_CONCURRENCY} (an inline Map's limit)"
            )
        if self.extract_reserved_concurrency < 1:
            raise ConfigError("kg:extractReservedConcurrency must be at least 1")
        if self.extract_reserved_concurrency < self.map_max_concurrency:
            raise ConfigError(
                "kg:extractReservedConcurrency is below kg:mapMaxConcurrency: one job alone would be throttled"
            )
        if self.llm_provider not in ("openai", "offline"):
            raise ConfigError("kg:llmProvider is 'openai' or 'offline'")
        if self.extraction_mode not in ("per_type", "combined"):
            raise ConfigError("kg:extractionMode is 'per_type' or 'combined'")
        if not 1 <= self.embedding_dimensions <= 2000:
            raise ConfigError("kg:embeddingDimensions must be between 1 and 2000 (pgvector's HNSW limit)")
        if not self.openai_secret_name:
            raise ConfigError("kg:openaiSecretName must name a Secrets Manager secret")
        if not 0 <= self.nat_gateways <= 3:
            raise ConfigError("kg:natGateways must be between 0 and 3")
        if self.nat_gateways == 0:
            raise ConfigError(
                "kg:natGateways is 0: the database functions reach the embedding API through a NAT gateway"
            )
        if not 0 <= self.db_min_capacity <= self.db_max_capacity <= 256:
            raise ConfigError("kg:dbMinCapacity <= kg:dbMaxCapacity <= 256 (Aurora capacity units)")
        if self.intermediate_expiry_days < 1:
            raise ConfigError("kg:intermediateExpiryDays must be at least 1")


def _coerce(key: str, raw: Any, kind: Any) -> Any:
    kind = kind if isinstance(kind, str) else kind.__name__
    try:
        if kind == "bool":
            if isinstance(raw, bool):
                return raw
            if str(raw).lower() in ("true", "1", "yes"):
                return True
            if str(raw).lower() in ("false", "0", "no"):
                return False
            raise ValueError(raw)
        if kind == "int":
            if isinstance(raw, bool):
                raise ValueError(raw)
            return int(raw)
        if kind == "float":
            return float(raw)
        return str(raw)
    except ValueError as e:
        raise ConfigError(f"{key}: {raw!r} is not a {kind}") from e
