"""Estimated cost of a call from the price table setting (USD per million tokens, input and output)."""

from __future__ import annotations

import logging
from collections.abc import Mapping

log = logging.getLogger(__name__)
_warned: set[str] = set()

Prices = Mapping[str, tuple[float, float]]


def price_of(model: str, prices: Prices) -> tuple[float, float] | None:
    """Exact name first, then the longest listed prefix ('gpt-4o-mini-2024-07-18' -> 'gpt-4o-mini')."""
    if model in prices:
        return prices[model]
    prefixes = [name for name in prices if model.startswith(name)]
    return prices[max(prefixes, key=len)] if prefixes else None


def estimate_cost(model: str, input_tokens: int, output_tokens: int, prices: Prices) -> float:
    price = price_of(model, prices)
    if price is None:
        if model not in _warned:
            _warned.add(model)
            log.warning("no price for model %r in KG_LLM_PRICES: its cost is counted as 0", model)
        return 0.0
    return round((input_tokens * price[0] + output_tokens * price[1]) / 1_000_000, 8)
