"""LLM calls and prompt tokens per 1,000 document tokens: per_type against combined.

The document is chunked as `kg ingest` chunks it, then every chunk goes through the OpenAI
extractor (no cache) against the fake server; prompt tokens are counted with tiktoken (o200k_base,
gpt-4o-mini's encoding) over the messages the server received: system prompt + chunk text,
without the few tokens of chat framing per message. Output tokens depend on the model and are
not measured here.

    .venv/bin/python bench/llm_tokens.py [PATH] [--chunk-tokens 3000 1000]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO  # noqa: E402
from _llm_common import FakeServerProcess  # noqa: E402
from pydantic import SecretStr  # noqa: E402

from kg.chunking import chunk_text  # noqa: E402
from kg.extraction.openai import OpenAiExtractor  # noqa: E402
from kg.llm.cache import NoLlmCache  # noqa: E402
from kg.llm.client import LlmClient  # noqa: E402
from kg.models import ALL_TRIPLE_TYPES  # noqa: E402
from kg.settings import Settings  # noqa: E402
from kg.tokenizer import count_tokens  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("path", nargs="?", default=str(REPO / "examples" / "curie.txt"))
    parser.add_argument("--chunk-tokens", type=int, nargs="+", default=[3000, 1000])
    args = parser.parse_args()
    text = Path(args.path).read_text(encoding="utf-8")
    doc_tokens = count_tokens(text, "o200k_base")
    print(f"{Path(args.path).name}: {doc_tokens} tokens")
    print(f"{'chunk tokens':>12} {'mode':>9} {'chunks':>6} {'calls/1k':>9} {'prompt tok/1k':>14} {'system share':>12}")
    with FakeServerProcess(0.0) as fake:
        settings = Settings(openai_api_key=SecretStr("bench"), openai_base_url=fake.url)
        llm = LlmClient.from_settings(settings)
        for size in args.chunk_tokens:
            chunks = chunk_text(text, "doc", size, min(200, size // 10), "o200k_base")
            for mode in ("per_type", "combined"):
                before = len(fake.stats()["chat"])
                extractor = OpenAiExtractor(llm, NoLlmCache(), mode=mode, prices=settings.llm_prices)
                for chunk in chunks:
                    extractor.extract(chunk, ALL_TRIPLE_TYPES)
                requests = fake.stats()["chat"][before:]
                system = sum(count_tokens(m["content"], "o200k_base") for r in requests
                             for m in r["messages"] if m["role"] == "system")
                user = sum(count_tokens(m["content"], "o200k_base") for r in requests
                           for m in r["messages"] if m["role"] == "user")
                per_k = 1000 / doc_tokens
                print(f"{size:>12} {mode:>9} {len(chunks):>6} {len(requests) * per_k:>9.2f} "
                      f"{(system + user) * per_k:>14.0f} {system / (system + user):>12.0%}")


if __name__ == "__main__":
    main()
