"""The price of one document in normal and in batch mode (`kg ingest --llm-batch`), from the usage the
ledger records.

The document goes through the whole local engine twice, into two fresh databases, against the fake
server (tests/support/fake_openai.py), each run with a fake server of its own (so that neither reads
the other's prompt-cache prefixes): once the normal way, once through the fake server's Batch API.
The same requests are sent either way, so the token counts should match; the prices are those of
kg.llm.pricing (OpenAI list prices looked up on 2026-12-03; the Batch API at half of each rate).

What is the fake server's and not OpenAI's: the replies (a few triples built from capitalised words,
so output tokens are far below a real model's), prompt tokens counted at four characters a token
(schema included), and its prompt-cache model (it applies to batch lines too, answered one after
another). Embeddings are not sent as a batch: their cost is the same in both rows.

    .venv/bin/python bench/llm_batch_price.py [PATH] [--chunk-tokens 3000] [--model gpt-4o-mini]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, embedded_server, fresh_database, machine, print_machine  # noqa: E402
from _llm_common import llm_settings  # noqa: E402

from kg.documents import decode_document  # noqa: E402
from kg.engine.local import ingest, open_local_ports  # noqa: E402
from kg.models import JobStatus, LlmUsage  # noqa: E402
from kg.stages.contract import JobOptions  # noqa: E402
from kg.tokenizer import count_tokens  # noqa: E402
from tests.support.fake_openai import FakeOpenAI  # noqa: E402


def run(server, root: Path, text: str, batch: bool, args: argparse.Namespace) -> tuple[dict[str, LlmUsage], int]:
    with FakeOpenAI() as fake:
        url = fresh_database(server, "batch" if batch else "normal")
        settings = llm_settings(fake.url, url, Path(tempfile.mkdtemp(dir=root)), chunk_tokens=args.chunk_tokens,
                                chunk_overlap_tokens=min(200, args.chunk_tokens // 10), llm_model=args.model,
                                llm_batch_poll_s=0.05, llm_batch_poll_max_s=0.2)
        ports = open_local_ports(settings)
        try:
            report = ingest(decode_document(text.encode(), "bench-doc", 10_000_000), ports, settings,
                            options=JobOptions(concepts=True, llm_batch=batch))
            assert report.status is JobStatus.SUCCEEDED, report.error
            record = ports.ledger.get(report.job_id, with_chunks=False)
        finally:
            ports.close()
        assert not batch or (len(fake.batches) >= 1 and not fake.direct_chat_requests()), "not all in a batch"
        return record.llm_by_stage, report.chunks


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("path", nargs="?", default=str(REPO / "examples" / "curie.txt"))
    parser.add_argument("--chunk-tokens", type=int, default=3000)
    parser.add_argument("--model", default="gpt-4o-mini")
    args = parser.parse_args()
    text = Path(args.path).read_text(encoding="utf-8")
    print(f"document {args.path}: {count_tokens(text, 'o200k_base')} tokens, chunks of {args.chunk_tokens}, "
          f"model {args.model}")
    with embedded_server() as (server, root):
        print_machine(machine(server.get_uri()))
        normal, chunks = run(server, root, text, False, args)
        batched, _ = run(server, root, text, True, args)
    print(f"{chunks} chunks\n")
    print("| mode | stage | LLM calls | input tokens | of which prompt-cached | output tokens | USD |")
    print("|---|---|---|---|---|---|---|")
    for label, by_stage in (("normal", normal), ("batch", batched)):
        total = LlmUsage()
        for stage, usage in sorted(by_stage.items()):
            total = total.add(usage)
            print(f"| {label} | {stage} | {usage.calls} | {usage.input_tokens:,} | {usage.cached_input_tokens:,} | "
                  f"{usage.output_tokens:,} | {usage.cost_usd:.6f} |")
        print(f"| **{label}** | **all** | {total.calls} | {total.input_tokens:,} | {total.cached_input_tokens:,} | "
              f"{total.output_tokens:,} | **{total.cost_usd:.6f}** |")
    chat = [sum(u.cost_usd for s, u in by.items() if s in ("EXTRACT",)) for by in (normal, batched)]
    print(f"\nextraction: {chat[0]:.6f} USD normal, {chat[1]:.6f} USD batch ({chat[1] / chat[0]:.0%} of normal)")


if __name__ == "__main__":
    main()
