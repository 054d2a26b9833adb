"""What the settings choose, built the same way for every engine: the extractor, the embedder, the
conceptualizer, and the stages' parameters. Providers are imported only when chosen, so a function
that never extracts offline never loads spaCy."""

from __future__ import annotations

from kg.concepts import Conceptualizer
from kg.embeddings import Embedder
from kg.errors import InvalidInput, ProviderUnavailable
from kg.extraction import Extractor
from kg.llm.cache import LlmCache
from kg.settings import Settings
from kg.stages import ChunkingParams, DedupParams


def default_embedder(settings: Settings) -> Embedder:
    if settings.embedding_provider == "openai":
        from kg.embeddings.openai import OpenAiEmbedder
        from kg.llm.client import shared_client

        return OpenAiEmbedder(shared_client(settings), settings.embedding_model, settings.embedding_dimensions,
                              settings.embedding_batch_size, settings.llm_prices,
                              settings.embedding_concurrency)
    from kg.embeddings.onnx_minilm import MiniLmEmbedder

    return MiniLmEmbedder(batch_size=settings.embedding_batch_size)


def embedding_space(settings: Settings) -> tuple[str, int]:
    """The embedding model and dimensions the settings choose, without building an embedder (which
    for OpenAI needs the key that the API, Deduplicate and the reading commands may not have)."""
    if settings.embedding_provider == "openai":
        from kg.embeddings.openai import NATIVE_DIMENSIONS

        dimensions = settings.embedding_dimensions or NATIVE_DIMENSIONS.get(settings.embedding_model)
        if dimensions is None:
            raise ProviderUnavailable(
                f"the dimension of {settings.embedding_model!r} is unknown: set KG_EMBEDDING_DIMENSIONS")
        return settings.embedding_model, dimensions
    from kg.embeddings.onnx_minilm import DIMENSIONS, MODEL_NAME

    return MODEL_NAME, DIMENSIONS


def store_embedder(settings: Settings, model: str, dimensions: int) -> Embedder:
    """The embedder of a store's own embedding space (its kg_meta), for the queries that search it.

    The settings' provider choice plays no part: a store built offline is searched with MiniLM
    even when OPENAI_API_KEY is set, and a store built with an OpenAI model (or a model of an
    OpenAI-compatible endpoint) with that model, through OPENAI_BASE_URL."""
    from kg.embeddings.onnx_minilm import DIMENSIONS, MODEL_NAME

    if (model, dimensions) == (MODEL_NAME, DIMENSIONS):
        from kg.embeddings.onnx_minilm import MiniLmEmbedder

        return MiniLmEmbedder(batch_size=settings.embedding_batch_size)
    if not settings.openai_api_key:
        raise InvalidInput(f"this graph store holds {model} vectors of {dimensions} dimensions: a query is embedded "
                           "with that model, through OpenAI (or OPENAI_BASE_URL), and OPENAI_API_KEY is not set")
    from kg.embeddings.openai import OpenAiEmbedder
    from kg.llm.client import shared_client

    return OpenAiEmbedder(shared_client(settings), model, dimensions, settings.embedding_batch_size,
                          settings.llm_prices, settings.embedding_concurrency)


def default_extractor(settings: Settings, cache: LlmCache | None = None) -> Extractor:
    """The extractor the settings choose; an LLM extractor caches its replies in `cache` (none: no cache)."""
    if settings.llm_provider == "openai":
        from kg.extraction.openai import OpenAiExtractor
        from kg.llm.cache import NoLlmCache
        from kg.llm.client import shared_client

        return OpenAiExtractor(shared_client(settings), cache or NoLlmCache(), settings.llm_model,
                               settings.extraction_mode, settings.grounding, settings.llm_prices,
                               warm_prompt_cache=settings.prompt_cache_warmup)
    from kg.extraction.offline import SpacyExtractor

    return SpacyExtractor(settings.spacy_model)


def default_conceptualizer(settings: Settings, cache: LlmCache | None = None) -> Conceptualizer:
    if settings.llm_provider == "openai":
        from kg.llm.cache import NoLlmCache
        from kg.llm.client import shared_client
        from kg.llm.concepts import OpenAiConceptualizer

        return OpenAiConceptualizer(shared_client(settings), cache or NoLlmCache(), settings.llm_model,
                                    settings.llm_prices)
    from kg.concepts.offline import HeuristicConceptualizer

    # The same model name as the offline extractor: kg.nlp loads it once for both.
    return HeuristicConceptualizer(settings.spacy_model)


def chunking_params(settings: Settings) -> ChunkingParams:
    return ChunkingParams(
        max_tokens=settings.chunk_tokens,
        overlap_tokens=settings.chunk_overlap_tokens,
        encoding=settings.tokenizer_encoding,
        max_document_bytes=settings.max_document_bytes,
    )


def dedup_params(settings: Settings) -> DedupParams:
    return DedupParams(
        triple_threshold=settings.dedup_threshold,
        entity_threshold=settings.entity_dedup_threshold,
        neighbours=settings.dedup_neighbours,
    )
