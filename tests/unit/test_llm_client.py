"""The resilient call layer without a network: retry decisions, AIMD concurrency, circuit breaker."""

from __future__ import annotations

import httpx
import openai
import pytest

from kg.errors import ProviderUnavailable
from kg.llm.client import AdaptiveLimit, CircuitBreaker, LlmClient, RetryPolicy, retry_after_seconds

_REQUEST = httpx.Request("POST", "http://llm.test/v1/chat/completions")


def status_error(status: int, headers: dict[str, str] | None = None) -> openai.APIStatusError:
    response = httpx.Response(status, headers=headers or {}, request=_REQUEST)
    cls = {429: openai.RateLimitError, 400: openai.BadRequestError}.get(status, openai.InternalServerError)
    return cls(f"HTTP {status}", response=response, body=None)


def client(max_retries: int = 5, threshold: int = 3) -> LlmClient:
    api = openai.OpenAI(api_key="test", base_url="http://llm.test/v1", max_retries=0)
    return LlmClient(api, RetryPolicy(max_retries, 0.0, 0.0), concurrency=8, breaker_threshold=threshold)


def scripted(*outcomes):
    """A `send` that raises or returns the outcomes in order."""
    remaining = list(outcomes)

    def send():
        outcome = remaining.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    return send


def test_retry_after_ms_wins_over_retry_after_and_dates_are_read():
    assert retry_after_seconds(httpx.Headers({"retry-after-ms": "250", "retry-after": "3"})) == 0.25
    assert retry_after_seconds(httpx.Headers({"retry-after": "2"})) == 2.0
    assert retry_after_seconds(httpx.Headers({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"})) == 0.0
    assert retry_after_seconds(httpx.Headers({})) is None


def test_backoff_is_jittered_exponential_capped_and_never_shorter_than_retry_after():
    policy = RetryPolicy(max_retries=9, backoff_base_s=0.5, backoff_max_s=4.0)
    assert all(0 <= policy.delay(attempt, None) <= min(4.0, 0.5 * 2**attempt) for attempt in range(9) for _ in range(50))
    assert all(3.0 <= policy.delay(0, 3.0) <= 3.5 for _ in range(50))


def test_429s_are_retried_and_halve_the_concurrency_limit():
    llm = client()
    assert llm.call(scripted(status_error(429), status_error(429), status_error(429), "ok")) == "ok"
    assert llm.attempts == 4
    # 8 -> 4 -> 2 -> 1 (each retry was sent after the previous decrease), then the success: 2.
    assert llm.limit.limit == 2


def test_5xx_timeouts_and_connection_errors_are_retried():
    llm = client()
    timeout = openai.APITimeoutError(request=_REQUEST)
    assert llm.call(scripted(status_error(500), timeout, status_error(503), "ok")) == "ok"
    assert llm.attempts == 4


def test_other_4xx_are_raised_at_once():
    llm = client()
    with pytest.raises(openai.BadRequestError):
        llm.call(scripted(status_error(400), "never"))
    assert llm.attempts == 1


def test_the_last_5xx_is_raised_when_retries_run_out():
    llm = client(max_retries=2)
    with pytest.raises(openai.InternalServerError):
        llm.call(scripted(*[status_error(500)] * 3))
    assert llm.attempts == 3


def test_consecutive_connection_errors_open_the_breaker_and_later_calls_fail_without_a_request():
    llm = client(max_retries=10, threshold=3)
    refused = openai.APIConnectionError(request=_REQUEST)
    with pytest.raises(ProviderUnavailable, match="unreachable"):
        llm.call(scripted(*[refused] * 11))
    assert llm.attempts == 3
    with pytest.raises(ProviderUnavailable, match="OPENAI_BASE_URL"):
        llm.call(scripted("never sent"))
    assert llm.attempts == 3


def test_an_answer_of_any_status_closes_the_breaker():
    breaker = CircuitBreaker(threshold=2, cooldown_s=600, endpoint="http://x")
    breaker.unreachable("refused")
    breaker.reached()
    breaker.unreachable("refused")
    breaker.check()  # one failure since the last answer: still closed


def test_after_the_cooldown_one_probe_goes_through():
    breaker = CircuitBreaker(threshold=1, cooldown_s=0, endpoint="http://x")
    breaker.unreachable("refused")
    breaker.check()  # the probe
    with pytest.raises(ProviderUnavailable):
        breaker.check()  # a second caller while the probe is out
    breaker.reached()
    breaker.check()


def test_the_limit_halves_once_per_window_and_grows_back_by_one_per_limit_successes():
    limit = AdaptiveLimit(8)
    sent = [limit.acquire() for _ in range(4)]
    for _ in sent:
        limit.release()
    for at in sent:  # four 429s of requests sent before the first decrease: one decrease
        limit.throttled(at)
    assert limit.limit == 4
    for _ in range(4):
        limit.succeeded()
    assert limit.limit == 5
    for _ in range(5 * 3 + 6 + 7):
        limit.succeeded()
    assert limit.limit == 8  # never above the configured maximum
