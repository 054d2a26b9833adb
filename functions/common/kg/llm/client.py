"""Resilient calls to an OpenAI-compatible endpoint: retries, adaptive concurrency, circuit breaker.

- Retries (tenacity): 429, 408, 5xx, timeouts and connection errors. Each request has a deadline
  (`deadline_s` from its first attempt): it gives up only when the next wait would pass it. A
  wait is what `Retry-After-Ms` / `Retry-After` asks (plus a little jitter), else exponential
  backoff with full jitter. 429s are not counted: a rate limit that says when to come back is
  waited out up to the deadline. Other retryable errors (5xx, 408, timeouts, unreachable) are
  also capped at `max_retries`, since a broken server rarely heals within one request's patience.
  Other 4xx are the caller's fault and are raised at once.
- Concurrency: at most `limit` requests in flight per process. The limit adapts (AIMD): halved on
  a 429, grown by one after `limit` successes in a row. A 429 halves it only when its request was
  sent after the last decrease, so one burst of 429s from the same window counts once. A permit
  is held only while a request is on the wire, never while backing off.
- Circuit breaker: after `threshold` consecutive unreachable-endpoint errors (connection refused,
  DNS, timeout) every call fails at once with ProviderUnavailable for `cooldown_s`; then one call
  probes while the others wait for its outcome. A response of any status proves the endpoint alive
  and closes it.

The `openai` client's own retries stay off: they count attempts rather than keep a deadline, cap
Retry-After, and cannot release a permit or trip the breaker between attempts.
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
from tenacity import RetryCallState, Retrying, retry_if_exception
from tenacity.stop import stop_base
from tenacity.wait import wait_base, wait_random_exponential

from kg.errors import ProviderUnavailable
from kg.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    deadline_s: float = 300.0  # per request, from its first attempt
    max_retries: int = 6  # retries after errors other than 429 (5xx, 408, timeouts, unreachable)
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0

    def wait(self) -> wait_base:
        return _WaitRetryAfter(self.backoff_base_s, wait_random_exponential(self.backoff_base_s, self.backoff_max_s))


class _WaitRetryAfter(wait_base):
    """What the server asked for, plus up to `jitter_s` so that callers told the same instant do not
    all return at once; without an answer to read, `otherwise` (exponential backoff)."""

    def __init__(self, jitter_s: float, otherwise: wait_base):
        self.jitter_s = jitter_s
        self.otherwise = otherwise

    def __call__(self, retry_state: RetryCallState) -> float:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        asked = retry_after_seconds(error.response.headers) if isinstance(error, openai.APIStatusError) else None
        if asked is not None:
            return asked + random.uniform(0, self.jitter_s)
        return self.otherwise(retry_state)


class _StopAtDeadline(stop_base):
    """tenacity's stop_before_delay on a clock of our own (tests run it on a fake one): stop when
    the next wait would end past `deadline_s` after `started`."""

    def __init__(self, deadline_s: float, started: float, clock: Callable[[], float]):
        self.deadline_s, self.started, self.clock = deadline_s, started, clock

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self.clock() - self.started + retry_state.upcoming_sleep > self.deadline_s


class _StopAfterFaults(stop_base):
    """Stop once more than `max_retries` attempts failed with something other than a rate limit."""

    def __init__(self, max_retries: int):
        self.max_retries = max_retries
        self.faults = 0

    def __call__(self, retry_state: RetryCallState) -> bool:
        if not _is_rate_limit(retry_state.outcome.exception() if retry_state.outcome else None):
            self.faults += 1
        return self.faults > self.max_retries


def _is_rate_limit(error: BaseException | None) -> bool:
    return isinstance(error, openai.APIStatusError) and error.status_code == 429


def _retryable(error: BaseException) -> bool:
    if isinstance(error, openai.APIStatusError):
        return error.status_code in (408, 429) or error.status_code >= 500
    return isinstance(error, openai.APIConnectionError)  # timeouts included (a subclass)


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
        pass
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, parsed.timestamp() - time.time())


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
        self._settled = threading.Condition()

    def check(self) -> None:
        """Raise ProviderUnavailable while open; after the cooldown let one probe through, and hold
        the other calls until its answer: closed, they go on (an outage that has ended costs no
        chunk); open again, they fail at once."""
        with self._settled:
            while True:
                if self._opened_at is None:
                    return
                if self._probing:
                    self._settled.wait(timeout=1.0)  # timed: a probe ends with its request's own timeout
                    continue
                if time.monotonic() - self._opened_at >= self.cooldown_s:
                    self._probing = True
                    return
                raise ProviderUnavailable(
                    f"the LLM endpoint {self.endpoint} is unreachable ({self.failures} consecutive failures, "
                    f"last: {self.last_error}); check OPENAI_BASE_URL and the network"
                )

    def unreachable(self, error: str) -> None:
        with self._settled:
            self.failures += 1
            self.last_error = error
            self._probing = False
            if self.failures >= self.threshold:
                if self._opened_at is None:
                    log.warning("circuit open: %s unreachable (%s)", self.endpoint, error)
                self._opened_at = time.monotonic()
            self._settled.notify_all()

    def reached(self) -> None:
        with self._settled:
            self.failures = 0
            self._opened_at = None
            self._probing = False
            self._settled.notify_all()

    def abandoned(self) -> None:
        """A call ended without telling whether the endpoint answered: a probe it carried is over."""
        with self._settled:
            self._probing = False
            self._settled.notify_all()


@dataclass(frozen=True)
class ChatReply:
    content: str
    input_tokens: int  # all prompt tokens, the cached ones included
    output_tokens: int
    model: str
    cached_input_tokens: int = 0  # of input_tokens, those served from the provider's prompt cache


@dataclass(frozen=True)
class EmbeddingReply:
    vectors: np.ndarray  # float32, one row per input, in input order
    input_tokens: int


def chat_request(model: str, messages: list[dict[str, str]], response_format: dict[str, Any]) -> dict[str, Any]:
    """The body of a chat request, as `LlmClient.chat` sends it and as a Batch API line carries it."""
    return {"model": model, "messages": messages, "response_format": response_format, "temperature": 0}


class LlmClient:
    """One per process (see `shared_client`): the breaker is per endpoint, the concurrency limit per model."""

    def __init__(
        self,
        client: openai.OpenAI,
        retry: RetryPolicy = RetryPolicy(),
        concurrency: int = 16,
        breaker_threshold: int = 5,
        breaker_cooldown_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.client = client
        self.retry = retry
        self._clock, self._sleep = clock, sleep  # the retry deadline's; tests pass fake ones
        # A limit per model: a provider limits each model on its own (OpenAI's requests and tokens per
        # minute are per model), so embedding requests neither wait for chat calls' places nor shrink
        # them when they are throttled.
        self._concurrency = concurrency
        self._limits: dict[str, AdaptiveLimit] = {}
        self._limits_lock = threading.Lock()
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
        policy = RetryPolicy(settings.llm_retry_deadline_s, settings.llm_max_retries,
                             settings.llm_backoff_base_s, settings.llm_backoff_max_s)
        return cls(client, policy, settings.llm_concurrency,
                   settings.llm_breaker_threshold, settings.llm_breaker_cooldown_s)

    def chat(self, model: str, messages: list[dict[str, str]], response_format: dict[str, Any]) -> ChatReply:
        def send() -> ChatReply:
            completion = self.client.chat.completions.create(**chat_request(model, messages, response_format))
            usage = completion.usage
            # OpenAI reports its prompt-cache hits here; other compatible servers may leave it out.
            details = usage.prompt_tokens_details if usage else None
            return ChatReply(
                content=completion.choices[0].message.content or "",
                input_tokens=usage.prompt_tokens if usage else 0,
                output_tokens=usage.completion_tokens if usage else 0,
                model=completion.model or model,
                cached_input_tokens=(details.cached_tokens or 0) if details else 0,
            )

        return self.call(send, model)

    def embed(self, model: str, texts: Sequence[str], dimensions: int | None) -> EmbeddingReply:
        def send() -> EmbeddingReply:
            extra = {"dimensions": dimensions} if dimensions else {}
            response = self.client.embeddings.create(model=model, input=list(texts), **extra)
            rows = sorted(response.data, key=lambda d: d.index)
            vectors = np.asarray([r.embedding for r in rows], dtype=np.float32)
            return EmbeddingReply(vectors, response.usage.prompt_tokens if response.usage else 0)

        return self.call(send, model)

    def limit(self, model: str = "") -> AdaptiveLimit:
        """The concurrency limit of `model`'s requests ("": the requests of no model, such as files)."""
        with self._limits_lock:
            if model not in self._limits:
                self._limits[model] = AdaptiveLimit(self._concurrency)
            return self._limits[model]

    def call(self, send: Callable[[], T], model: str = "") -> T:
        """Run one request under `model`'s limit, the breaker and the retry policy."""
        attempts = 0
        limit = self.limit(model)

        def attempt() -> T:
            nonlocal attempts
            self.breaker.check()  # ProviderUnavailable while open: not retried
            sent_at = limit.acquire()
            attempts += 1
            with self._count_lock:
                self.attempts += 1
            try:
                result = send()
            except openai.APIStatusError as e:  # the endpoint answered: it is alive
                self.breaker.reached()
                if e.status_code == 429:
                    limit.throttled(sent_at)
                raise
            except openai.APIConnectionError as e:  # timeout subclasses connection
                self.breaker.unreachable(_describe(e))
                raise
            except BaseException:
                self.breaker.abandoned()
                raise
            finally:
                limit.release()
            self.breaker.reached()
            limit.succeeded()
            return result

        started = self._clock()
        retrying = Retrying(
            retry=retry_if_exception(_retryable),
            wait=self.retry.wait(),
            stop=_StopAtDeadline(self.retry.deadline_s, started, self._clock)
            | _StopAfterFaults(self.retry.max_retries),
            sleep=self._sleep,
            before_sleep=_log_retry,
            reraise=True,
        )
        try:
            return retrying(attempt)
        except openai.APIConnectionError as e:
            raise ProviderUnavailable(f"LLM endpoint unreachable after {attempts} attempts: {_describe(e)}") from e
        except openai.APIStatusError as e:
            if _retryable(e):
                log.warning("LLM request gave up after %d attempts over %.1f s: HTTP %d", attempts,
                            self._clock() - started, e.status_code)
            raise


def _describe(error: openai.APIConnectionError) -> str:
    if isinstance(error, openai.APITimeoutError):
        return "timeout"
    return f"{error}: {error.__cause__ or ''}".strip()


def _log_retry(retry_state: RetryCallState) -> None:
    error = retry_state.outcome.exception() if retry_state.outcome else None
    status = getattr(error, "status_code", None)
    log.info("LLM request attempt %d failed (%s); retrying in %.2f s", retry_state.attempt_number,
             f"HTTP {status}" if status else type(error).__name__, retry_state.upcoming_sleep)


_shared: dict[tuple[Any, ...], LlmClient] = {}
_shared_lock = threading.Lock()


def shared_client(settings: Settings) -> LlmClient:
    """The process's client for these settings: extraction and embeddings share its breaker, and a
    model's calls its limit."""
    key = (
        settings.openai_base_url, settings.openai_api_key, settings.llm_timeout_s, settings.llm_retry_deadline_s,
        settings.llm_max_retries, settings.llm_backoff_base_s, settings.llm_backoff_max_s, settings.llm_concurrency,
        settings.llm_breaker_threshold, settings.llm_breaker_cooldown_s,
    )
    with _shared_lock:
        if key not in _shared:
            _shared[key] = LlmClient.from_settings(settings)
        return _shared[key]
