"""The provider's Batch API (OpenAI's `/v1/files` and `/v1/batches`): many requests in one JSONL file,
answered within a day at half the price.

A line is `{"custom_id", "method": "POST", "url", "body"}`; its answer, in the batch's output file (or
its error file), is `{"id", "custom_id", "response": {"status_code", "body"}, "error"}` in any order,
matched back by `custom_id`. Every call goes through `LlmClient.call`, under its retries, limit and
breaker, like a chat request.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from openai.types import Batch

from kg.errors import InvalidInput
from kg.llm.client import LlmClient
from kg.settings import Settings

log = logging.getLogger(__name__)

CHAT_ENDPOINT = "/v1/chat/completions"
# The provider is still working on these; the others are final.
PENDING = frozenset({"validating", "in_progress", "finalizing", "cancelling"})


@dataclass(frozen=True)
class BatchAnswer:
    """One line of a batch's results."""

    custom_id: str
    status_code: int  # 0 when the line has no response (an expired or cancelled request)
    body: dict[str, Any]
    error: str | None = None


def check_batch_settings(settings: Settings) -> None:
    """Batch mode needs an LLM with a Batch API: refused (InvalidInput) before any job is opened."""
    if settings.llm_provider != "openai":
        raise InvalidInput("--llm-batch (llm_batch) sends the LLM requests through the OpenAI Batch API: it needs "
                           f"the openai provider (OPENAI_API_KEY), and KG_LLM_PROVIDER is {settings.llm_provider}")


def jsonl(requests: Mapping[str, dict[str, Any]], url: str = CHAT_ENDPOINT) -> bytes:
    """The batch's input file: one request per line, named by its key."""
    return b"".join(json.dumps({"custom_id": key, "method": "POST", "url": url, "body": body},
                               ensure_ascii=False).encode() + b"\n" for key, body in requests.items())


class BatchClient:
    def __init__(self, llm: LlmClient):
        self.llm = llm

    def submit(self, requests: Mapping[str, dict[str, Any]], metadata: Mapping[str, str]) -> Batch:
        """Upload the requests as a JSONL file and open a batch on it, for the 24 h window."""
        data = jsonl(requests)
        uploaded = self.llm.call(lambda: self.llm.client.files.create(
            file=("kg-batch.jsonl", data, "application/jsonl"), purpose="batch"))
        return self.llm.call(lambda: self.llm.client.batches.create(
            input_file_id=uploaded.id, endpoint=CHAT_ENDPOINT, completion_window="24h", metadata=dict(metadata)))

    def find(self, token: str, pages: int = 3) -> Batch | None:
        """The batch whose metadata carries `kg_token` = `token`, among the latest (newest first, 100 a
        page; a batch is looked for right after its process died, so it is among the newest)."""
        page = self.llm.call(lambda: self.llm.client.batches.list(limit=100))
        for _ in range(pages):
            for batch in page.data:
                if (batch.metadata or {}).get("kg_token") == token:
                    return batch
            if not page.has_next_page():
                return None
            page = self.llm.call(page.get_next_page)
        return None

    def retrieve(self, batch_id: str) -> Batch:
        return self.llm.call(lambda: self.llm.client.batches.retrieve(batch_id))

    def cancel(self, batch_id: str) -> Batch:
        return self.llm.call(lambda: self.llm.client.batches.cancel(batch_id))

    def answers(self, batch: Batch) -> list[BatchAnswer]:
        """Every line of the batch's output and error files (an expired or cancelled batch has the
        requests it finished in its output file)."""
        found: list[BatchAnswer] = []
        for file_id in (batch.output_file_id, batch.error_file_id):
            if file_id:
                text = self.llm.call(lambda f=file_id: self.llm.client.files.content(f).text)
                found.extend(_answer(line) for line in text.splitlines() if line.strip())
        return found


def _answer(line: str) -> BatchAnswer:
    record = json.loads(line)
    response = record.get("response") or {}
    error = record.get("error")
    return BatchAnswer(
        custom_id=str(record.get("custom_id")),
        status_code=int(response.get("status_code") or 0),
        body=response.get("body") if isinstance(response.get("body"), dict) else {},
        error=(error.get("message") or error.get("code")) if isinstance(error, dict) else None,
    )


def describe(batch: Batch) -> str:
    """What a batch's end says, for the job's counts and the log."""
    counts = batch.request_counts
    said = f"{batch.status}"
    if counts is not None:
        said += f": {counts.completed} of {counts.total} requests answered, {counts.failed} failed"
    if batch.errors and batch.errors.data:
        said += "; " + "; ".join(e.message or e.code or "" for e in batch.errors.data[:3])
    return said
