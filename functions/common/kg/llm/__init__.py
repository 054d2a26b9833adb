"""The LLM layer on the official `openai` client: resilient calls, prompts, strict schemas, cache, cost.

`client.LlmClient` owns retries (tenacity, a deadline per request), concurrency and the circuit
breaker (the `openai` client's own retries are switched off: they count attempts instead of keeping
a deadline, and cannot adapt concurrency or trip a breaker). Everything that calls
a model (extraction, embeddings, conceptualization) goes through one client per process, so the
limits hold across all of them.
"""
