"""LLM calls, prompt tokens and prompt-cached tokens per 1,000 document tokens: per_type against
combined, and the prompt order before and after issue 13 (the shared part first).

The document is chunked as `kg ingest` chunks it, then every chunk goes through the OpenAI
extractor (no kg cache) against the fake server; prompt tokens are counted with tiktoken
(o200k_base, gpt-4o-mini's encoding) over the messages the server received, without the schema and
the few tokens of chat framing per message. Output tokens depend on the model and are not measured.

Cached tokens come from the fake server's model of OpenAI's prompt caching (tests/support/
fake_openai.py): the longest prefix, schema first, that a request shares with an answered request
of the same model, in whole 128-token blocks from 1,024 tokens, counted at four characters a token
over the schema and the messages (its own prompt-token count, `fake prompt`, uses the same unit).
Each row runs under its own model name (gpt-4o-mini-rowN, priced as gpt-4o-mini), so that no row
reads another's prefixes. The server answers after `--latency` seconds: requests sent together
miss each other's prefix, as at OpenAI.

Orders: `old` is the prompt layout before issue 13 (one schema name and one system text per type,
the type's definition before the chunk text), rebuilt here; `new` is kg.llm.prompts today, with the
per-type calls on a chunk sent together (`new, together`) or one first and the other three once it
has answered (`new, warm-up`, the default, KG_PROMPT_CACHE_WARMUP). The combined prompt's layout did
not change (instructions, then the text).

    .venv/bin/python bench/llm_tokens.py [PATH] [--chunk-tokens 3000 1000] [--latency 0.05]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO  # noqa: E402
from _llm_common import FakeServerProcess  # noqa: E402
from pydantic import SecretStr  # noqa: E402

import kg.extraction.openai as openai_extraction  # noqa: E402
from kg.chunking import chunk_text  # noqa: E402
from kg.extraction.openai import OpenAiExtractor  # noqa: E402
from kg.llm.cache import NoLlmCache  # noqa: E402
from kg.llm.client import LlmClient  # noqa: E402
from kg.llm.pricing import estimate_cost  # noqa: E402
from kg.llm.prompts import _RULES, DEFINITIONS, Prompt  # noqa: E402
from kg.llm.schemas import TypeExtraction  # noqa: E402
from kg.models import ALL_TRIPLE_TYPES, LlmUsage, TripleType  # noqa: E402
from kg.settings import Settings  # noqa: E402
from kg.tokenizer import count_tokens  # noqa: E402


def old_type_prompt(triple_type: TripleType) -> Prompt:
    """The per-type prompt as it was before issue 13 (kg.llm.prompts, revision 1)."""
    system = (
        f"You extract {triple_type.value} triples for a knowledge graph from the text the user sends.\n\n"
        f"{DEFINITIONS[triple_type]}\n\n{_RULES}\n\n"
        f'Return {{"triples": [...]}} with only {triple_type.value} triples.'
    )
    return Prompt(name=f"{triple_type.value}_triples", system=system, reply=TypeExtraction)


OLD_TYPE_PROMPTS = {t: old_type_prompt(t) for t in TripleType}
# (label, mode, prompt order, warm-up)
ROWS = [
    ("old", "per_type", "old", False),
    ("old, warm-up", "per_type", "old", True),  # waiting alone does not help: the prefixes part at the schema
    ("new, together", "per_type", "new", False),
    ("new, warm-up", "per_type", "new", True),
    ("unchanged", "combined", "new", False),
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("path", nargs="?", default=str(REPO / "examples" / "curie.txt"))
    parser.add_argument("--chunk-tokens", type=int, nargs="+", default=[3000, 1000])
    parser.add_argument("--latency", type=float, default=0.05, help="seconds the fake server takes per reply")
    args = parser.parse_args()
    text = Path(args.path).read_text(encoding="utf-8")
    doc_tokens = count_tokens(text, "o200k_base")
    per_k = 1000 / doc_tokens
    print(f"{Path(args.path).name}: {doc_tokens} tokens; fake server latency {args.latency} s")
    print(f"{'chunk tok':>9} {'mode':>8} {'order':>14} {'chunks':>6} {'calls/1k':>8} {'prompt/1k':>9} "
          f"{'system':>6} {'fake prompt/1k':>14} {'cached/1k':>9} {'cached':>6} {'input $/1M doc tok':>18}")
    with FakeServerProcess(args.latency) as fake:
        settings = Settings(openai_api_key=SecretStr("bench"), openai_base_url=fake.url)
        llm = LlmClient.from_settings(settings)
        row = 0
        for size in args.chunk_tokens:
            chunks = chunk_text(text, "doc", size, min(200, size // 10), "o200k_base")
            for label, mode, order, warm in ROWS:
                row += 1
                before = fake.stats()
                extractor = OpenAiExtractor(llm, NoLlmCache(), model=f"gpt-4o-mini-row{row}", mode=mode,
                                            prices=settings.llm_prices, warm_prompt_cache=warm)
                prompts = OLD_TYPE_PROMPTS if order == "old" else openai_extraction.TYPE_PROMPTS
                usage = LlmUsage()
                with mock.patch.object(openai_extraction, "TYPE_PROMPTS", prompts):
                    for chunk in chunks:
                        usage = usage.add(extractor.extract(chunk, ALL_TRIPLE_TYPES).usage)
                after = fake.stats()
                requests = after["chat"][len(before["chat"]):]
                system = sum(count_tokens(m["content"], "o200k_base") for r in requests
                             for m in r["messages"] if m["role"] == "system")
                user = sum(count_tokens(m["content"], "o200k_base") for r in requests
                           for m in r["messages"] if m["role"] == "user")
                prompt = after["prompt_tokens"] - before["prompt_tokens"]
                cached = after["cached_tokens"] - before["cached_tokens"]
                # What the extractor accounted is what the server reported, and its cost follows it.
                assert (usage.input_tokens, usage.cached_input_tokens) == (prompt, cached), (usage, prompt, cached)
                input_cost = estimate_cost("gpt-4o-mini", prompt, 0, settings.llm_prices, cached)
                print(f"{size:>9} {mode:>8} {label:>14} {len(chunks):>6} {len(requests) * per_k:>8.2f} "
                      f"{(system + user) * per_k:>9.0f} {system / (system + user):>6.0%} {prompt * per_k:>14.0f} "
                      f"{cached * per_k:>9.0f} {cached / prompt:>6.0%} {input_cost * 1e6 / doc_tokens:>18.4f}")


if __name__ == "__main__":
    main()
