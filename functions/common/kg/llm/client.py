"""Resilient calls to an OpenAI-compatible endpoint: retries, adaptive concurrency, circuit breaker.

- Retries: 429, 5xx, timeouts and connection errors, with exponential backoff and full jitter,
  waiting at least what `Retry-After` / `Retry-After-Ms` asks. Other 4xx are the caller's fault
  and are raised at once.
- Concurrency: at most `limit` requests in flight per process. The limit adapts (AIMD): halved on
  a 429, grown by one after `limit` successes in a row. A 429 halves it only when its request was
  sent after the last decrease, so one burst of 429s from the same window counts once. A permit
  is held only while a request is on the wire, never while backing off.
- Circuit breaker: after `threshold` consecutive unreachable-endpoint errors (connection refused,
  DNS, timeout) every call fails at once with ProviderUnavailable for `cooldown_s`; then one call
  at a time may probe. A response of any status proves the endpoint alive and closes it.
"""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import openai

from kg.errors import ProviderUnavailable
from kg.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 6
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before retry number `attempt` (0-based): full jitter, never below Retry-After."""
        if retry_after is None:
            return random.uniform(0, min(self.backoff_max_s, self.backoff_base_s * 2**attempt))
        # A little jitter on top, so that callers told the same instant do not all return at once.
        return min(retry_after, self.backoff_max_s * 4) + random.uniform(0, self.backoff_base_s)


def retry_after_seconds(headers: Any) -> float | None:
    """`Retry-After-Ms`, else `Retry-After` as seconds or an HTTP date; None when absent or unreadable."""
    if headers is None:
        return None
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return None if parsed is None else max(0.0, parsed.timestamp() - time.time())


class AdaptiveLimit:
    """A semaphore whose size follows AIMD between 1 and `maximum`."""

    def __init__(self, maximum: int):
        self.maximum = maximum
        self.limit = maximum
        self.in_flight = 0
        self._successes = 0
        self._last_decrease = float("-inf")
        self._cond = threading.Condition()

    def acquire(self) -> float:
        """Wait for a permit; returns the send time, which `throttled` needs."""
        with self._cond:
            while self.in_flight >= self.limit:
                self._cond.wait()
            self.in_flight += 1
            return time.monotonic()

    def release(self) -> None:
        with self._cond:
            self.in_flight -= 1
            self._cond.notify()

    def succeeded(self) -> None:
        with self._cond:
            self._successes += 1
            if self._successes >= self.limit and self.limit < self.maximum:
                self.limit += 1
                self._successes = 0
                self._cond.notify()

    def throttled(self, sent_at: float) -> None:
        with self._cond:
            self._successes = 0
            if sent_at > self._last_decrease:
                self.limit = max(1, self.limit // 2)
                self._last_decrease = time.monotonic()


class CircuitBreaker:
    def __init__(self, threshold: int, cooldown_s: float, endpoint: str):
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self.endpoint = endpoint
        self.failures = 0
        self.last_error = ""
        self._opened_at: float | None = None
        self._probing = False
        self._lock = threading.Lock()

    def check(self) -> None:
        """Raise ProviderUnavailable while open; after the cooldown let one probe through."""
        with self._lock:
            if self._opened_at is None:
                return
            if not self._probing and time.monotonic() - self._opened_at >= self.cooldown_s:
                self._probing = True
                return
            raise ProviderUnavailable(
                f"the LLM endpoint {self.endpoint} is unreachable ({self.failures} consecutive failures, "
                f"last: {self.last_error}); check OPENAI_BASE_URL and the network"
            )

    def unreachable(self, error: str) -> None:
        with self._lock:
            self.failures += 1
            self.last_error = error
            self._probing = False
            if self.failures >= self.threshold:
                if self._opened_at is None:
                    log.warning("circuit open: %s unreachable (%s)", self.endpoint, error)
                self._opened_at = time.monotonic()

    def reached(self) -> None:
        with self._lock:
            self.failures = 0
            self._opened_at = None
            self._probing = False


@dataclass(frozen=True)
class ChatReply:
    content: str
    input_tokens: int
    output_tokens: int
    model: str


@dataclass(frozen=True)
class EmbeddingReply:
    vectors: np.ndarray  # float32, one row per input, in input order
    input_tokens: int


class LlmClient:
    """One per process (see `shared_client`): the concurrency limit and the breaker are per endpoint."""

    def __init__(
        self,
        client: openai.OpenAI,
        retry: RetryPolicy = RetryPolicy(),
        concurrency: int = 16,
        breaker_threshold: int = 5,
        breaker_cooldown_s: float = 30.0,
    ):
        self.client = client
        self.retry = retry
        self.limit = AdaptiveLimit(concurrency)
        self.breaker = CircuitBreaker(breaker_threshold, breaker_cooldown_s, str(client.base_url))
        self.attempts = 0  # HTTP requests sent, retries included
        self._count_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> LlmClient:
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
        if not key:
            raise ProviderUnavailable("the openai provider needs OPENAI_API_KEY (any value for a local endpoint)")
        client = openai.OpenAI(
            api_key=key, base_url=settings.openai_base_url, timeout=settings.llm_timeout_s, max_retries=0
        )
        policy = RetryPolicy(settings.llm_max_retries, settings.llm_backoff_base_s, settings.llm_backoff_max_s)
        return cls(client, policy, settings.llm_concurrency,
                   settings.llm_breaker_threshold, settings.llm_breaker_cooldown_s)

    def chat(self, model: str, messages: list[dict[str, str]], response_format: dict[str, Any]) -> ChatReply:
        def send() -> ChatReply:
            completion = self.client.chat.completions.create(
                model=model, messages=messages, response_format=response_format, temperature=0
            )
            usage = completion.usage
            return ChatReply(
                content=completion.choices[0].message.content or "",
                input_tokens=usage.prompt_tokens if usage else 0,
                output_tokens=usage.completion_tokens if usage else 0,
                model=completion.model or model,
            )

        return self.call(send)

    def embed(self, model: str, texts: Sequence[str], dimensions: int | None) -> EmbeddingReply:
        def send() -> EmbeddingReply:
            extra = {"dimensions": dimensions} if dimensions else {}
            response = self.client.embeddings.create(model=model, input=list(texts), **extra)
            rows = sorted(response.data, key=lambda d: d.index)
            vectors = np.asarray([r.embedding for r in rows], dtype=np.float32)
            return EmbeddingReply(vectors, response.usage.prompt_tokens if response.usage else 0)

        return self.call(send)

    def call(self, send: Callable[[], T]) -> T:
        """Run one request under the limit, the breaker and the retry policy."""
        attempt = 0
        while True:
            self.breaker.check()
            sent_at = self.limit.acquire()
            with self._count_lock:
                self.attempts += 1
            retry_after: float | None = None
            try:
                result = send()
            except openai.APIStatusError as e:  # the endpoint answered: it is alive
                self.breaker.reached()
                if e.status_code == 429:
                    self.limit.throttled(sent_at)
                elif e.status_code < 500 and e.status_code != 408:
                    raise
                retry_after = retry_after_seconds(e.response.headers)
                error = f"HTTP {e.status_code}"
                cause: Exception = e
            except (openai.APITimeoutError, openai.APIConnectionError) as e:  # timeout subclasses connection
                error = "timeout" if isinstance(e, openai.APITimeoutError) else f"{e}: {e.__cause__ or ''}".strip()
                self.breaker.unreachable(error)
                cause = e
            else:
                self.breaker.reached()
                self.limit.succeeded()
                return result
            finally:
                self.limit.release()
            if attempt >= self.retry.max_retries:
                raise _final_error(cause, error, attempt + 1)
            time.sleep(self.retry.delay(attempt, retry_after))
            attempt += 1


def _final_error(cause: Exception, error: str, attempts: int) -> Exception:
    if isinstance(cause, openai.APIConnectionError):
        return ProviderUnavailable(f"LLM endpoint unreachable after {attempts} attempts: {error}")
    return cause


_shared: dict[tuple[Any, ...], LlmClient] = {}
_shared_lock = threading.Lock()


def shared_client(settings: Settings) -> LlmClient:
    """The process's client for these settings: extraction and embeddings share its limit and breaker."""
    key = (
        settings.openai_base_url, settings.openai_api_key, settings.llm_timeout_s, settings.llm_max_retries,
        settings.llm_backoff_base_s, settings.llm_backoff_max_s, settings.llm_concurrency,
        settings.llm_breaker_threshold, settings.llm_breaker_cooldown_s,
    )
    with _shared_lock:
        if key not in _shared:
            _shared[key] = LlmClient.from_settings(settings)
        return _shared[key]
