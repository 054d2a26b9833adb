"""The resilient call layer without a network: retry decisions, AIMD concurrency, circuit breaker.

Retries run on a fake clock: `sleep` advances it, so deadlines of minutes are tested in microseconds."""

from __future__ import annotations

import threading

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


def throttled(**headers: str) -> openai.APIStatusError:
    return status_error(429, {k.replace("_", "-"): v for k, v in headers.items()})


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def client(max_retries: int = 5, threshold: int = 3, deadline_s: float = 300.0, backoff_base_s: float = 0.0,
           backoff_max_s: float = 0.0, clock: FakeClock | None = None) -> LlmClient:
    api = openai.OpenAI(api_key="test", base_url="http://llm.test/v1", max_retries=0)
    clock = clock or FakeClock()
    return LlmClient(api, RetryPolicy(deadline_s, max_retries, backoff_base_s, backoff_max_s), concurrency=8,
                     breaker_threshold=threshold, clock=clock, sleep=clock.sleep)


def scripted(*outcomes, clock: FakeClock | None = None, takes_s: float = 0.0):
    """A `send` that raises or returns the outcomes in order, each taking `takes_s` on the clock."""
    remaining = list(outcomes)

    def send():
        if clock is not None:
            clock.now += takes_s
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


def test_an_unreadable_retry_after_is_ignored():
    assert retry_after_seconds(httpx.Headers({"retry-after": "soon"})) is None
    assert retry_after_seconds(httpx.Headers({"retry-after-ms": "x", "retry-after": "4"})) == 4.0


def test_a_429_waits_what_retry_after_ms_asks_plus_at_most_the_jitter():
    clock = FakeClock()
    llm = client(backoff_base_s=0.5, clock=clock)
    assert llm.call(scripted(throttled(retry_after_ms="1500", retry_after="2"), "ok")) == "ok"
    assert len(clock.sleeps) == 1 and 1.5 <= clock.sleeps[0] <= 2.0


def test_a_429_waits_what_retry_after_asks_in_seconds_even_beyond_the_backoff_cap():
    clock = FakeClock()
    llm = client(backoff_max_s=1.0, clock=clock)
    assert llm.call(scripted(throttled(retry_after="45"), throttled(retry_after="45"), "ok")) == "ok"
    assert clock.sleeps == [45.0, 45.0]


def test_429s_are_not_counted_against_max_retries_only_the_deadline_bounds_them():
    clock = FakeClock()
    llm = client(max_retries=0, deadline_s=300, clock=clock)
    assert llm.call(scripted(*[throttled(retry_after="7.5")] * 30, "ok")) == "ok"
    assert llm.attempts == 31 and clock.now == 225.0


def test_retries_give_up_when_the_next_wait_would_pass_the_deadline_and_not_before():
    clock = FakeClock()
    llm = client(deadline_s=30, clock=clock)
    with pytest.raises(openai.RateLimitError):
        llm.call(scripted(*[throttled(retry_after="10")] * 10))
    # Attempts at 0, 10, 20 and 30 s: after the last, waiting 10 s more would end at 40 > 30.
    assert llm.attempts == 4 and clock.sleeps == [10.0, 10.0, 10.0] and clock.now == 30.0


def test_the_time_requests_take_counts_towards_the_deadline():
    clock = FakeClock()
    llm = client(deadline_s=60, clock=clock)
    with pytest.raises(openai.RateLimitError):
        llm.call(scripted(*[throttled(retry_after="5")] * 10, clock=clock, takes_s=16))
    # 16 s on the wire + 5 s waiting per attempt: the third ends at 58, and 58 + 5 > 60.
    assert llm.attempts == 3 and clock.now == 58.0


def test_a_retry_after_longer_than_the_deadline_gives_up_at_once_without_waiting():
    clock = FakeClock()
    llm = client(deadline_s=60, clock=clock)
    with pytest.raises(openai.RateLimitError):
        llm.call(scripted(throttled(retry_after="3600"), "never"))
    assert llm.attempts == 1 and clock.sleeps == []


def test_without_retry_after_backoff_is_jittered_exponential_and_capped():
    for _ in range(20):
        clock = FakeClock()
        llm = client(max_retries=9, backoff_base_s=0.5, backoff_max_s=4.0, clock=clock)
        assert llm.call(scripted(*[status_error(500)] * 9, "ok")) == "ok"
        assert len(clock.sleeps) == 9
        assert all(0 <= wait <= min(4.0, 0.5 * 2**n) for n, wait in enumerate(clock.sleeps))


def test_a_503_with_retry_after_waits_what_it_asks():
    clock = FakeClock()
    llm = client(backoff_max_s=0.1, clock=clock)
    assert llm.call(scripted(status_error(503, {"retry-after": "3"}), "ok")) == "ok"
    assert clock.sleeps == [3.0]


def test_5xx_are_capped_by_max_retries_and_429s_in_between_do_not_count():
    llm = client(max_retries=1)
    with pytest.raises(openai.InternalServerError):
        llm.call(scripted(status_error(500), throttled(retry_after="1"), throttled(retry_after="1"),
                          status_error(502), "never"))
    assert llm.attempts == 4


def test_5xx_are_bounded_by_the_deadline_too():
    clock = FakeClock()
    llm = client(max_retries=1000, deadline_s=100, backoff_base_s=1.0, backoff_max_s=30.0, clock=clock)
    with pytest.raises(openai.InternalServerError):
        llm.call(scripted(*[status_error(500)] * 1000, clock=clock, takes_s=1.0))
    assert 2 < llm.attempts < 1000 and clock.now <= 100


def test_429s_are_retried_and_halve_the_concurrency_limit():
    llm = client()
    assert llm.call(scripted(status_error(429), status_error(429), status_error(429), "ok")) == "ok"
    assert llm.attempts == 4
    # 8 -> 4 -> 2 -> 1 (each retry was sent after the previous decrease), then the success: 2.
    assert llm.limit().limit == 2


def test_a_model_throttled_leaves_the_other_models_limits_as_they_were():
    llm = client()
    assert llm.call(scripted(status_error(429), status_error(429), "ok"), "text-embedding-3-small") == "ok"
    assert llm.limit("text-embedding-3-small").limit == 2
    assert llm.limit("gpt-4o-mini").limit == llm.limit().limit == 8


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
    without_answer = CircuitBreaker(threshold=2, cooldown_s=600, endpoint="http://x")
    without_answer.unreachable("refused")
    without_answer.unreachable("refused")
    with pytest.raises(ProviderUnavailable):
        without_answer.check()  # two failures in a row: open
    breaker = CircuitBreaker(threshold=2, cooldown_s=600, endpoint="http://x")
    breaker.unreachable("refused")
    breaker.reached()
    breaker.unreachable("refused")
    breaker.check()  # one failure since the last answer: still closed
    breaker.unreachable("refused")
    with pytest.raises(ProviderUnavailable):
        breaker.check()
    breaker.reached()  # an answer closes an open breaker too
    breaker.check()


def _waiting_caller(breaker: CircuitBreaker) -> tuple[threading.Thread, list[str]]:
    outcome: list[str] = []

    def call() -> None:
        try:
            breaker.check()
            outcome.append("through")
        except ProviderUnavailable:
            outcome.append("refused")

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    return thread, outcome


def test_after_the_cooldown_one_probe_goes_through_and_the_others_wait_for_its_answer():
    breaker = CircuitBreaker(threshold=1, cooldown_s=0, endpoint="http://x")
    breaker.unreachable("refused")
    breaker.check()  # the probe
    thread, outcome = _waiting_caller(breaker)  # a second caller while the probe is out
    thread.join(timeout=0.5)
    assert thread.is_alive() and outcome == []  # held, neither refused nor let through
    breaker.reached()  # the probe was answered: the endpoint is back
    thread.join(timeout=30)
    assert outcome == ["through"]


def test_a_failed_probe_refuses_the_callers_that_waited_for_it():
    breaker = CircuitBreaker(threshold=1, cooldown_s=0, endpoint="http://x")
    breaker.unreachable("refused")
    breaker.check()  # the probe
    thread, outcome = _waiting_caller(breaker)
    thread.join(timeout=0.5)
    assert thread.is_alive()
    breaker.cooldown_s = 600
    breaker.unreachable("still refused")  # the probe failed: open again, for a whole cooldown
    thread.join(timeout=30)
    assert outcome == ["refused"]


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
