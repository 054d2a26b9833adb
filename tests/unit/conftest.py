"""Fixtures shared by the unit tests."""

from __future__ import annotations

import pytest

from kg.errors import ProviderUnavailable
from kg.extraction.offline import SpacyExtractor


@pytest.fixture(scope="module")
def extractor() -> SpacyExtractor:
    """The offline extractor, its spaCy model loaded; skipped without the local extra."""
    try:
        ex = SpacyExtractor()
        ex.parse("warm up")
    except ProviderUnavailable as exc:  # pragma: no cover - depends on the local extra
        pytest.skip(str(exc))
    return ex
