"""A fake OpenAI-compatible HTTP server on 127.0.0.1 that the official `openai` client talks to.

It answers POST /v1/chat/completions and /v1/embeddings. By default a chat request gets a valid,
grounded reply built from the request itself (triples between consecutive capitalised words of
the user text, in the shape the request's json_schema names), embeddings are deterministic
vectors seeded by the text. Tests script exceptions with `on(match, reply, times)`: a status
(429 with Retry-After, 500), a delay (a timeout is a delay past the client's timeout), raw
content (malformed JSON), or a body. It records every request it received and the token usage
it reported, so tests assert on what really reached it.

Prompt caching, modelled on OpenAI's rule: a chat request's prompt is its structured-output schema
followed by its messages (the schema is a prefix to the system message), four characters a token.
Once a request has been answered, its prefixes are cached for the model; a later request reports
as `usage.prompt_tokens_details.cached_tokens` the longest prefix it shares with one of them, in
whole 128-token blocks and only from 1,024 tokens. A request that arrives while the one it shares a
prefix with is still being answered misses, as at OpenAI. Entries never expire here.
"""

from __future__ import annotations

import base64
import email.policy
import hashlib
import json
import re
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

TYPES = ("ENTITY_ENTITY", "ENTITY_EVENT", "EVENT_EVENT", "EMOTIONAL_CONTEXT")


@dataclass
class Received:
    path: str
    body: dict[str, Any]
    at: float  # time.monotonic() on arrival
    batch_id: str | None = None  # a line of this batch (Batch API), not a request of its own

    @property
    def schema_name(self) -> str | None:
        fmt = self.body.get("response_format") or {}
        return (fmt.get("json_schema") or {}).get("name")

    @property
    def triple_type(self) -> str | None:
        """The extraction type a request is for (per_type), 'ALL' (combined), or None. The per-type
        requests share one schema name ("triples") and name their type in the message after the text."""
        name = self.schema_name or ""
        if name.startswith("ALL_TYPES"):
            return "ALL"
        if name == "triples":
            messages = self.body.get("messages") or [{}]
            found = re.search("|".join(TYPES), messages[-1].get("content", ""))
            return found.group(0) if found else None
        return next((t for t in TYPES if name.startswith(t)), None)

    def prompt_text(self) -> str:
        """The prompt as the prompt cache sees it: the schema, then each message in order."""
        fmt = json.dumps(self.body.get("response_format") or {}, sort_keys=True)
        return fmt + "".join(f"<|{m.get('role')}|>{m.get('content', '')}" for m in self.body.get("messages", []))

    def message(self, role: str) -> str:
        return next((m["content"] for m in self.body.get("messages", []) if m.get("role") == role), "")


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    content: str | None = None  # chat: the message content as is (e.g. malformed JSON)
    data: dict[str, Any] | None = None  # chat: the JSON object to return as content
    body: dict[str, Any] | None = None  # the whole response body


@dataclass
class _Rule:
    match: Callable[[Received], bool]
    reply: Callable[[Received], Reply]
    times: int | None  # None: forever


def capitalised_pairs(text: str) -> list[dict[str, Any]]:
    words = re.findall(r"\b[A-Z][a-z]{2,}\b", text)
    return [{"subject": a, "predicate": "related to", "object": b, "confidence": 0.8}
            for a, b in zip(words, words[1:]) if a != b]


DISTINCT_CONCEPTS = False


def default_chat_data(request: Received) -> dict[str, Any]:
    text = request.message("user")
    kind = request.triple_type
    if kind == "ALL":
        return {t.lower(): capitalised_pairs(text) for t in TYPES}
    if kind is not None:
        return {"triples": capitalised_pairs(text)}
    if request.schema_name == "concepts":
        elements = re.findall(r"^(\d+)\. \[\w+\] ([^(\n]*)", text, re.MULTILINE)
        return {"elements": [{"element": int(n), "concepts": [
            {"phrase": "thing", "level": "high", "confidence": 0.9},
            {"phrase": f"kind {n}", "level": "medium", "confidence": 0.8},
            # --distinct-concepts (the benchmarks): a low-level concept of each element's own, as
            # a real model's are, so that each batch brings phrases to embed
            {"phrase": f"sort of {name.strip()}" if DISTINCT_CONCEPTS else f"sort {n}", "level": "low",
             "confidence": 0.7},
        ]} for n, name in elements]}
    return {}


CHARS_PER_TOKEN = 4
CACHE_BLOCK_TOKENS = 128  # OpenAI caches in steps of 128 tokens...
CACHE_MIN_TOKENS = 1024  # ...from 1,024


def prompt_tokens_of(request: Received) -> int:
    return len(request.prompt_text()) // CHARS_PER_TOKEN + 1


def _block_digests(text: str) -> list[bytes]:
    """A digest of each prefix of `text` that ends on a 128-token block boundary, shortest first."""
    block = CACHE_BLOCK_TOKENS * CHARS_PER_TOKEN
    running = hashlib.blake2b(digest_size=16)
    digests = []
    for end in range(block, len(text) + 1, block):
        running.update(text[end - block:end].encode())
        digests.append(running.copy().digest())
    return digests


def fake_vector(text: str, dimensions: int) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    return np.random.default_rng(seed).standard_normal(dimensions).astype(np.float32)


class FakeOpenAI:
    def __init__(self, latency_s: float = 0.0, port: int = 0):
        self.latency_s = latency_s
        self.requests: list[Received] = []
        self._statuses: list[int] = []  # the status each request was answered with
        self.prompt_tokens = 0  # chat usage it reported, summed over the 200 replies
        self.cached_tokens = 0  # of prompt_tokens, those it reported as served from its prompt cache
        self.completion_tokens = 0
        self._prompt_cache: dict[str, set[bytes]] = {}  # model -> digests of the prefixes it processed
        self.embedding_tokens = 0
        self.ok_chat = 0  # chat requests answered 200
        self.rate_per_minute: float | None = None  # beyond it: 429 with Retry-After
        self._bucket = 0.0
        self._bucket_at = time.monotonic()
        self._rules: list[_Rule] = []
        self._lock = threading.Lock()
        # The Batch API (see _create_batch): what it holds, and how its batches end.
        self.files: dict[str, dict[str, Any]] = {}
        self._file_data: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self._batch_due: dict[str, float] = {}
        self.batch_delay_s = 0.0
        self.hold_batches = False
        self.batch_end = "completed"  # or "expired", "cancelled", "failed"
        self.batch_lines_done = 0  # lines an expired or cancelled batch answered before it ended
        self.refuse_batches = False  # POST /v1/batches answers 400, as an endpoint without a Batch API would
        self.batch_polls = 0  # GET /v1/batches/{id} received
        # `port`: a fixed port, for an endpoint that goes away and comes back at the same URL.
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-openai", daemon=True)

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    # -- scripting ---------------------------------------------------------------------------
    def on(self, match: Callable[[Received], bool], reply: Reply | Callable[[Received], Reply],
           times: int | None = None) -> None:
        """For requests matching `match`, reply with `reply` (at most `times` times); first rule wins."""
        make = reply if callable(reply) else (lambda _request, r=reply: r)
        with self._lock:
            self._rules.append(_Rule(match, make, times))

    def rate_limit(self, per_minute: float) -> None:
        """A token bucket of one second's worth: requests beyond the rate get 429 with Retry-After-Ms."""
        with self._lock:
            self.rate_per_minute = per_minute
            self._bucket, self._bucket_at = self._capacity(), time.monotonic()

    def direct_chat_requests(self) -> list[Received]:
        """The chat requests sent one by one (not as lines of a batch)."""
        return [r for r in self.chat_requests() if r.batch_id is None]

    def chat_requests(self, triple_type: str | None = None) -> list[Received]:
        with self._lock:
            chats = [r for r in self.requests if r.path.endswith("/chat/completions")]
        return chats if triple_type is None else [r for r in chats if r.triple_type == triple_type]

    def embedding_requests(self) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if r.path.endswith("/embeddings")]

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "chat": [{"at": r.at, "type": r.triple_type, "status": status, "messages": r.body.get("messages")}
                         for r, status in zip(self.requests, self._statuses) if r.path.endswith("/chat/completions")],
                "embeddings": sum(r.path.endswith("/embeddings") for r in self.requests),
                "ok_chat": self.ok_chat, "prompt_tokens": self.prompt_tokens, "cached_tokens": self.cached_tokens,
                "completion_tokens": self.completion_tokens, "embedding_tokens": self.embedding_tokens,
            }

    # -- serving -----------------------------------------------------------------------------
    def _capacity(self) -> float:
        return max(1.0, (self.rate_per_minute or 0) / 60)

    def _admit(self) -> float | None:
        """None when the rate allows the request now, else seconds until it would."""
        if self.rate_per_minute is None:
            return None
        rate = self.rate_per_minute / 60
        now = time.monotonic()
        self._bucket = min(self._capacity(), self._bucket + (now - self._bucket_at) * rate)
        self._bucket_at = now
        if self._bucket >= 1:
            self._bucket -= 1
            return None
        return (1 - self._bucket) / rate

    def _decide(self, request: Received) -> Reply:
        with self._lock:
            reply = self._choose(request)
            self.requests.append(request)
            self._statuses.append(reply.status)
        return reply

    def _choose(self, request: Received) -> Reply:
        wait = self._admit()
        if wait is not None:
            return Reply(status=429, headers={"Retry-After-Ms": str(int(wait * 1000) + 1),
                                              "Retry-After": str(int(wait + 0.999))})
        for rule in self._rules:
            if (rule.times is None or rule.times > 0) and rule.match(request):
                if rule.times is not None:
                    rule.times -= 1
                return rule.reply(request)
        return Reply()

    def forget_prompt_cache(self) -> None:
        """A cold prompt cache, as a provider's is after its entries expire (5 to 10 minutes at OpenAI)."""
        with self._lock:
            self._prompt_cache.clear()

    def _cached_tokens(self, request: Received, digests: list[bytes]) -> int:
        """The prompt-cache hit on arrival: the longest cached prefix, in whole blocks, from the minimum."""
        with self._lock:
            cached = self._prompt_cache.get(request.body.get("model", ""), set())
            blocks = next((n for n in range(len(digests), 0, -1) if digests[n - 1] in cached), 0)
        tokens = blocks * CACHE_BLOCK_TOKENS
        return tokens if tokens >= CACHE_MIN_TOKENS else 0

    def _remember_prompt(self, request: Received, digests: list[bytes]) -> None:
        with self._lock:
            self._prompt_cache.setdefault(request.body.get("model", ""), set()).update(digests)

    def _respond(self, request: Received) -> tuple[int, dict[str, str], bytes]:
        reply = self._decide(request)
        chat = request.path.endswith("/chat/completions") and reply.status == 200 and reply.body is None
        digests = _block_digests(request.prompt_text()) if chat else []
        cached = self._cached_tokens(request, digests) if chat else 0  # looked up on arrival
        time.sleep(self.latency_s + reply.delay_s)
        if reply.status != 200:
            error = {"error": {"message": f"fake error {reply.status}", "type": "fake", "code": str(reply.status)}}
            return reply.status, reply.headers, json.dumps(error).encode()
        if reply.body is not None:
            body = reply.body
        elif request.path.endswith("/embeddings"):
            body = self._embeddings(request)
        else:
            body = self._chat(request, reply, cached)
            self._remember_prompt(request, digests)  # processed: later requests can read it from the cache
        return 200, reply.headers, json.dumps(body).encode()

    def _chat(self, request: Received, reply: Reply, cached: int = 0) -> dict[str, Any]:
        content = reply.content if reply.content is not None else json.dumps(reply.data or default_chat_data(request))
        prompt = prompt_tokens_of(request)
        completion = len(content) // 4 + 1
        with self._lock:
            self.prompt_tokens += prompt
            self.cached_tokens += cached
            self.completion_tokens += completion
            self.ok_chat += 1
        return {
            "id": f"chatcmpl-{len(self.requests)}", "object": "chat.completion", "created": int(time.time()),
            "model": request.body.get("model", "fake"),
            "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                         "message": {"role": "assistant", "content": content, "refusal": None}}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
                      "prompt_tokens_details": {"cached_tokens": cached}},
        }

    def _embeddings(self, request: Received) -> dict[str, Any]:
        inputs = request.body["input"]
        inputs = [inputs] if isinstance(inputs, str) else inputs
        dimensions = request.body.get("dimensions") or 1536
        base64_out = request.body.get("encoding_format") == "base64"
        data = []
        for i, text in enumerate(inputs):
            vector = fake_vector(text, dimensions)
            embedding: Any = base64.b64encode(vector.tobytes()).decode() if base64_out else vector.tolist()
            data.append({"object": "embedding", "index": i, "embedding": embedding})
        tokens = sum(len(t) // 4 + 1 for t in inputs)
        with self._lock:
            self.embedding_tokens += tokens
        return {"object": "list", "data": data, "model": request.body.get("model"),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}

    # -- the Batch API: /v1/files and /v1/batches ------------------------------------------------
    # A batch is `validating` when created, then `in_progress` until `batch_delay_s` has passed (and
    # for as long as `hold_batches` is set); then its lines are answered one by one through the same
    # logic (and rules) as requests of their own, and it ends `batch_end`: completed; or expired or
    # cancelled with only its first `batch_lines_done` lines answered (the rest in the error file); or
    # failed (its input refused, no output). A line whose rule answers non-200 is in the error file.

    def _new_file(self, data: bytes, purpose: str, filename: str) -> dict[str, Any]:
        with self._lock:
            file_id = f"file-{len(self.files) + 1:06d}"
            self.files[file_id] = {"id": file_id, "object": "file", "bytes": len(data), "created_at": int(time.time()),
                                   "filename": filename, "purpose": purpose, "status": "processed"}
            self._file_data[file_id] = data
            return dict(self.files[file_id])

    def _create_batch(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            if self.refuse_batches:
                return 400, {"error": {"message": "fake: batches are not supported", "type": "invalid_request_error"}}
            if body.get("input_file_id") not in self._file_data:
                return 404, {"error": {"message": f"no file {body.get('input_file_id')}",
                                       "type": "invalid_request_error"}}
            batch_id = f"batch_{len(self.batches) + 1:06d}"
            now = int(time.time())
            self.batches[batch_id] = {
                "id": batch_id, "object": "batch", "endpoint": body.get("endpoint"), "errors": None,
                "input_file_id": body["input_file_id"], "completion_window": body.get("completion_window", "24h"),
                "status": "validating", "output_file_id": None, "error_file_id": None, "created_at": now,
                "in_progress_at": None, "expires_at": now + 86_400, "finalizing_at": None, "completed_at": None,
                "failed_at": None, "expired_at": None, "cancelling_at": None, "cancelled_at": None,
                "request_counts": {"total": 0, "completed": 0, "failed": 0}, "metadata": body.get("metadata"),
            }
            self._batch_due[batch_id] = time.monotonic() + self.batch_delay_s
            return 200, dict(self.batches[batch_id])

    def _batch_view(self, batch_id: str, cancel: bool = False) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.batch_polls += not cancel
            batch = self.batches.get(batch_id)
            if batch is None:
                return 404, {"error": {"message": f"no batch {batch_id}", "type": "invalid_request_error"}}
            pending = batch["status"] in ("validating", "in_progress", "cancelling")
            if cancel and pending:
                batch["status"], batch["cancelling_at"] = "cancelling", int(time.time())
                return 200, dict(batch)
            due = not self.hold_batches and time.monotonic() >= self._batch_due[batch_id]
            if not pending or not (due or batch["status"] == "cancelling"):
                if batch["status"] == "validating":
                    batch["status"], batch["in_progress_at"] = "in_progress", int(time.time())
                return 200, dict(batch)
            end = "cancelled" if batch["status"] == "cancelling" else self.batch_end
            lines = [json.loads(line) for line in self._file_data[batch["input_file_id"]].splitlines() if line.strip()]
            answered = len(lines) if end == "completed" else min(self.batch_lines_done, len(lines))
            batch["status"], batch["finalizing_at"] = "finalizing", int(time.time())  # answered once
        if end == "failed":
            with self._lock:
                batch.update(status="failed", failed_at=int(time.time()), errors={"object": "list", "data": [
                    {"code": "invalid_request", "message": "fake: the batch was refused", "param": None, "line": 1}]})
                return 200, dict(batch)
        outputs, errors = [], []
        for number, line in enumerate(lines):
            if number >= answered:  # never started: expired or cancelled
                errors.append({"id": f"batch_req_{number}", "custom_id": line["custom_id"], "response": None,
                               "error": {"code": f"batch_{end}", "message": f"This request was {end}."}})
                continue
            status, _, payload = self._respond(Received(line["url"], line["body"], time.monotonic(), batch_id))
            record = {"id": f"batch_req_{number}", "custom_id": line["custom_id"],
                      "response": {"status_code": status, "request_id": f"req_{number}", "body": json.loads(payload)},
                      "error": None}
            (outputs if status == 200 else errors).append(record)
        output_id = self._new_file(_jsonl(outputs), "batch_output", "output.jsonl")["id"] if outputs else None
        error_id = self._new_file(_jsonl(errors), "batch_output", "errors.jsonl")["id"] if errors else None
        with self._lock:
            done = len(outputs)
            batch.update(status=end, output_file_id=output_id, error_file_id=error_id,
                         request_counts={"total": len(lines), "completed": done, "failed": len(lines) - done},
                         **{f"{end}_at": int(time.time())})
            return 200, dict(batch)

    def _batch_list(self, url: str) -> dict[str, Any]:
        """GET /v1/batches?limit=&after=: newest first, a page at a time."""
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
        limit = int((query.get("limit") or ["20"])[0])
        after = (query.get("after") or [None])[0]
        with self._lock:
            batches = [dict(b) for b in reversed(self.batches.values())]
        if after is not None:
            batches = batches[[b["id"] for b in batches].index(after) + 1:]
        page = batches[:limit]
        return {"object": "list", "data": page, "first_id": page[0]["id"] if page else None,
                "last_id": page[-1]["id"] if page else None, "has_more": len(batches) > limit}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes; with Nagle on, the body waits for the
            # client's delayed ACK (~40 ms), which would dwarf what the benchmarks measure.
            disable_nagle_algorithm = True

            def do_POST(self) -> None:  # noqa: N802 (the http.server API)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                path = self.path.split("?", 1)[0]
                if path == "/v1/files":
                    fields = _multipart(self.headers.get("Content-Type", ""), raw)
                    data, filename = fields.get("file", (b"", "upload"))
                    self._send(200, {}, json.dumps(fake._new_file(
                        data, fields.get("purpose", (b"", ""))[0].decode(), filename)).encode())
                    return
                if path == "/v1/batches":
                    status, body = fake._create_batch(json.loads(raw or b"{}"))
                    self._send(status, {}, json.dumps(body).encode())
                    return
                if (found := re.fullmatch(r"/v1/batches/([^/]+)/cancel", path)) is not None:
                    status, body = fake._batch_view(found.group(1), cancel=True)
                    self._send(status, {}, json.dumps(body).encode())
                    return
                body = json.loads(raw or b"{}")
                status, headers, payload = fake._respond(Received(self.path, body, time.monotonic()))
                self._send(status, headers, payload)

            def _send(self, status: int, headers: dict[str, str], payload: bytes,
                      content_type: str = "application/json") -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(payload)))
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (its timeout): nothing to answer

            def do_GET(self) -> None:  # noqa: N802
                """GET /_stats: what it received, for a caller in another process (the benchmarks);
                GET /v1/batches/{id} and /v1/files/{id}/content: the Batch API."""
                path = self.path.split("?", 1)[0]
                if path == "/v1/batches":
                    self._send(200, {}, json.dumps(fake._batch_list(self.path)).encode())
                    return
                if (found := re.fullmatch(r"/v1/batches/([^/]+)", path)) is not None:
                    status, body = fake._batch_view(found.group(1))
                    self._send(status, {}, json.dumps(body).encode())
                    return
                if (found := re.fullmatch(r"/v1/files/([^/]+)/content", path)) is not None:
                    with fake._lock:
                        data = fake._file_data.get(found.group(1))
                    if data is None:
                        self._send(404, {}, json.dumps({"error": {"message": "no such file"}}).encode())
                    else:
                        self._send(200, {}, data, "application/octet-stream")
                    return
                self._send(200, {}, json.dumps(fake.stats()).encode())

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


def _jsonl(records: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def _multipart(content_type: str, raw: bytes) -> dict[str, tuple[bytes, str]]:
    """A multipart/form-data body's fields: name -> (bytes, file name or "")."""
    message = BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
    fields = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name:
            fields[str(name)] = (part.get_payload(decode=True) or b"", part.get_filename() or "")
    return fields


def free_port_refusing_connections() -> str:
    """A base URL on 127.0.0.1 where nothing listens (connection refused)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def main() -> None:
    """Serve in this process until killed: `python -m tests.support.fake_openai --latency 0.2 --rate 600`.

    Prints its base URL on the first line of stdout. The benchmarks run it in its own process, so
    its CPU does not compete with the client's for the GIL."""
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--rate", type=float, default=None, help="requests per minute before 429s")
    parser.add_argument("--distinct-concepts", action="store_true", help="a low-level concept per element name")
    args = parser.parse_args()
    global DISTINCT_CONCEPTS
    DISTINCT_CONCEPTS = args.distinct_concepts
    fake = FakeOpenAI(latency_s=args.latency)
    if args.rate:
        fake.rate_limit(args.rate)
    print(fake.url, flush=True)
    fake._server.serve_forever()


if __name__ == "__main__":
    main()
