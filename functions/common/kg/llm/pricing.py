"""Estimated cost of a call from the price table setting (USD per million tokens).

A price is (input, output) or (input, output, cached input). OpenAI bills the prompt tokens it
served from its prompt cache (`usage.prompt_tokens_details.cached_tokens`, a part of
`prompt_tokens`) at the cached-input rate; a price without one bills them at the full input rate,
so that a table entry written before cached rates existed never under-reports a cost.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

log = logging.getLogger(__name__)
_warned: set[str] = set()

Price = tuple[float, float] | tuple[float, float, float]
Prices = Mapping[str, Price]

# OpenAI's list prices, standard tier, USD per million tokens: (input, output, cached input), as
# looked up on 2026-12-03 (the model pages of developers.openai.com/api/docs/models and the pricing
# tables quoting developers.openai.com/api/docs/pricing). The cached rate is half the input rate for
# the gpt-4o family and a quarter for the gpt-4.1 family. Embeddings have no prompt cache.
# A model not listed is costed at zero, with a warning; KG_LLM_PRICES replaces the whole table and
# takes either form, e.g. '{"gpt-4o-mini": [0.15, 0.6, 0.075], "my-model": [1.0, 2.0]}'.
DEFAULT_LLM_PRICES: dict[str, Price] = {
    "gpt-4o-mini": (0.15, 0.60, 0.075),
    "gpt-4o": (2.50, 10.00, 1.25),
    "gpt-4.1-mini": (0.40, 1.60, 0.10),
    "gpt-4.1-nano": (0.10, 0.40, 0.025),
    "gpt-4.1": (2.00, 8.00, 0.50),
    "text-embedding-3-small": (0.02, 0.0),
    "text-embedding-3-large": (0.13, 0.0),
    "text-embedding-ada-002": (0.10, 0.0),
}


# The Batch API's prices (OpenAI's Batch tier, the same date and pages): half the standard rates, for
# input, output and cached input alike, as OpenAI states it ("50% off"). A model missing here is billed
# at half its standard price; KG_LLM_BATCH_PRICES replaces this table as KG_LLM_PRICES does the other.
BATCH_DISCOUNT = 0.5
DEFAULT_LLM_BATCH_PRICES: dict[str, Price] = {
    "gpt-4o-mini": (0.075, 0.30, 0.0375),
    "gpt-4o": (1.25, 5.00, 0.625),
    "gpt-4.1-mini": (0.20, 0.80, 0.05),
    "gpt-4.1-nano": (0.05, 0.20, 0.0125),
    "gpt-4.1": (1.00, 4.00, 0.25),
    "text-embedding-3-small": (0.01, 0.0),
    "text-embedding-3-large": (0.065, 0.0),
    "text-embedding-ada-002": (0.05, 0.0),
}


def batch_prices(prices: Prices, batch: Prices) -> dict[str, Price]:
    """The table a batch's calls are costed with: `batch`'s entries, and every model priced in
    `prices` only at BATCH_DISCOUNT of its standard rates."""
    table: dict[str, Price] = {name: tuple(rate * BATCH_DISCOUNT for rate in price)  # type: ignore[misc]
                               for name, price in prices.items()}
    table.update(batch)
    return table


def price_of(model: str, prices: Prices) -> Price | None:
    """Exact name first, then the longest listed prefix ('gpt-4o-mini-2024-07-18' -> 'gpt-4o-mini')."""
    if model in prices:
        return prices[model]
    prefixes = [name for name in prices if model.startswith(name)]
    return prices[max(prefixes, key=len)] if prefixes else None


def estimate_cost(
    model: str, input_tokens: int, output_tokens: int, prices: Prices, cached_input_tokens: int = 0
) -> float:
    """`input_tokens` counts every prompt token, the `cached_input_tokens` among them included (as
    OpenAI's `prompt_tokens` does)."""
    price = price_of(model, prices)
    if price is None:
        if model not in _warned:
            _warned.add(model)
            log.warning("no price for model %r in KG_LLM_PRICES: its cost is counted as 0", model)
        return 0.0
    cached = min(max(cached_input_tokens, 0), input_tokens)
    cached_rate = price[2] if len(price) > 2 else price[0]
    return round(((input_tokens - cached) * price[0] + cached * cached_rate + output_tokens * price[1])
                 / 1_000_000, 8)
